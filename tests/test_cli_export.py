"""`tcc export` and `tcc path` end to end, as a user runs them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tcc.runtime.export import find_c_compiler


def tcc_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tcc.cli", *args], capture_output=True,
                          text=True, cwd=cwd)


@pytest.mark.skipif(find_c_compiler() is None, reason="needs a C compiler")
def test_export_writes_library_and_header(tmp_path):
    result = tcc_cli("export", "ik,kj->ij", "--shape", "i=16,k=8,j=4", "-o",
                     str(tmp_path / "libgemm.so"), "--cpu", "generic")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "libgemm.so").exists()
    assert "int gemm(const float *op0, const float *op1, float *out);" in \
        (tmp_path / "libgemm.h").read_text()


def test_export_bad_input_is_one_line(tmp_path):
    result = tcc_cli("export", "ik,kj->ij", "--shape", "i=16", "-o", str(tmp_path / "libx.so"))
    assert result.returncode == 1
    assert result.stderr.startswith("tcc: error:") and result.stderr.count("\n") == 1
    result = tcc_cli("export", "ik,kj->ij", "--shape", "i=2,k=2,j=2", "-o",
                     str(tmp_path / "libx.dll"))
    assert result.returncode == 1 and "'.so', '.a' or '.o'" in result.stderr or \
        ".so, .a or .o" in result.stderr


def test_path_report_and_json():
    result = tcc_cli("path", "pi,qj,ijkl,rk,sl->pqrs", "--shape",
                     "p=5,q=5,r=5,s=5,i=6,j=6,k=6,l=6")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("['einsum_path'")
    assert "Optimized FLOP count" in result.stdout
    result = tcc_cli("path", "ab,bc,cd->ad", "--shape", "a=4,b=5,c=6,d=7", "--json")
    assert result.returncode == 0 and result.stdout.lstrip().startswith("{")

"""The ``tcc`` command line, end to end in a subprocess (``python -m tcc.cli``).

No timing assertions: the demo's numbers are printed, never checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tcc
from tcc.cli import main, parse_sizes
from tcc.demo_suite import SUITE, check, select_cases, shapes_from_sizes
from tcc.report import format_ratio, format_seconds, format_table

REPO = Path(__file__).resolve().parents[1]


def run_tcc(*args: str, cache_dir: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, TCC_CACHE_DIR=str(cache_dir))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "tcc.cli", *args], capture_output=True, text=True, env=env,
        timeout=timeout, cwd=REPO,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, status: int) -> str:
    assert result.returncode == status, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tcc: error: "), lines[0]
    return lines[0]


# -- demo ---------------------------------------------------------------------------------


def test_demo_quick_prints_table(tmp_path: Path) -> None:
    result = run_tcc("demo", "--quick", cache_dir=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for column in ("case", "equation", "shapes", "compile", "tcc", "np opt", "opt_einsum"):
        assert column in out
    for case in SUITE:
        assert case.name in out and case.equation in out
    assert "FAIL" not in out
    assert out.count(" OK ") >= len(SUITE)
    assert "numpy BLAS:" in out
    assert f"{len(SUITE)}/{len(SUITE)} OK" in out


def test_demo_quiet_one_case(tmp_path: Path) -> None:
    result = run_tcc("demo", "--quick", "--repeat", "1", "--case", "trace", "-q",
                     cache_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("case") and len(lines) == 3  # header, rule, one row
    assert "trace" in lines[2] and "OK" in lines[2]


def test_demo_list(tmp_path: Path) -> None:
    result = run_tcc("demo", "--list", cache_dir=tmp_path)
    assert result.returncode == 0
    assert len(result.stdout.strip().splitlines()) == len(SUITE)


def test_demo_unknown_case(tmp_path: Path) -> None:
    line = assert_one_line_error(run_tcc("demo", "--case", "nope", cache_dir=tmp_path), 1)
    assert "'nope'" in line and "gemm" in line


def test_demo_bad_repeat(tmp_path: Path) -> None:
    line = assert_one_line_error(run_tcc("demo", "--repeat", "0", cache_dir=tmp_path), 2)
    assert "--repeat" in line


# -- compile ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("emit", "expected"),
    [
        ("ir", ["out[a, c] = sum_{b} in0[a, b] * in1[b, c]", "kernel ", "for a in 0..16"]),
        ("llvm", ["define ", "float"]),
        ("llvm-opt", ["define ", "float"]),
        ("asm", [".text", "ret"]),
    ],
)
def test_compile_emits(tmp_path: Path, emit: str, expected: list[str]) -> None:
    result = run_tcc("compile", "ik,kj->ij", "--shape", "i=16,k=8,j=4", "--emit", emit,
                     cache_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    for text in expected:
        assert text in result.stdout
    assert result.stderr == ""


def test_compile_output_file_and_dtype(tmp_path: Path) -> None:
    target = tmp_path / "trace.ll"
    result = run_tcc("compile", "ii", "-s", "i=5", "--dtype", "float64", "--emit", "llvm",
                     "-o", str(target), cache_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    text = target.read_text()
    assert "define " in text and "double" in text


def test_compile_ir_shows_shapes_and_optimize_false(tmp_path: Path) -> None:
    result = run_tcc("compile", "ij,ij,ij->i", "-s", "i=3", "-s", "j=7", "--optimize",
                     "false", cache_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "float32[3, 7]" in result.stdout
    assert result.stdout.count("kernel ") == 1


@pytest.mark.parametrize(
    ("args", "status", "fragment"),
    [
        (["ik,kj->ij", "-s", "i=4,k=4"], 1, "'j'"),
        (["ik,kj->ij", "-s", "i=4,k=4,j=x"], 2, "not an integer"),
        (["ik,kj->ij", "-s", "i4"], 2, "INDEX=SIZE"),
        (["ik,kj->ij", "-s", "i=4,k=4,j=4", "--dtype", "floaty"], 1, "floaty"),
        (["ik,kj->ij", "-s", "i=4,k=4,j=4", "--dtype", "object"], 1, "object"),
        (["ik,kj->iq", "-s", "i=4,k=4,j=4"], 1, "q"),
        (["ik,k2->ij", "-s", "i=4,k=4,j=4"], 1, "'2'"),
        (["ik,kj->ij", "-s", "i=4,k=4,j=4", "--emit", "png"], 2, "--emit"),
        (["ik,kj->ij", "-s", "i=4,k=4,j=4", "-o", "/nonexistent-dir/x.ll"], 1, "cannot write"),
        ([], 2, "EQ"),
    ],
)
def test_compile_bad_input(tmp_path: Path, args: list[str], status: int, fragment: str) -> None:
    line = assert_one_line_error(run_tcc("compile", *args, cache_dir=tmp_path), status)
    assert fragment in line


# -- version, help, usage -----------------------------------------------------------------


def test_version(tmp_path: Path) -> None:
    result = run_tcc("version", cache_dir=tmp_path)
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == f"tcc {tcc.__version__}"
    assert "llvmlite" in result.stdout
    assert run_tcc("--version", cache_dir=tmp_path).stdout.strip() == f"tcc {tcc.__version__}"


@pytest.mark.parametrize("command", [[], ["demo"], ["compile"], ["version"]])
def test_help(tmp_path: Path, command: list[str]) -> None:
    result = run_tcc(*command, "--help", cache_dir=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: tcc")


def test_unknown_command_and_no_command(tmp_path: Path) -> None:
    assert_one_line_error(run_tcc("frobnicate", cache_dir=tmp_path), 2)
    result = run_tcc(cache_dir=tmp_path)
    assert result.returncode == 2 and "usage: tcc" in result.stderr


def test_main_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version", "-q"]) == 0
    assert capsys.readouterr().out == f"tcc {tcc.__version__}\n"
    assert main(["compile", "ab,bc->ac", "-s", "a=2,b=2"]) == 1
    assert capsys.readouterr().err.startswith("tcc: error: ")


def test_demo_failure_exits_nonzero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tcc.options
    from tcc import demo_suite

    monkeypatch.setattr(tcc.options, "_default", tcc.options.default_options())
    monkeypatch.setattr(demo_suite, "check", lambda *args: False)
    status = main(["demo", "--quick", "--repeat", "1", "--case", "trace", "--case", "gemm"])
    captured = capsys.readouterr()
    assert status == 1
    assert "FAIL" in captured.out
    assert "FAIL trace" in captured.err
    assert captured.err.strip().splitlines()[-1] == (
        "tcc: error: 2 case(s) differ from numpy.einsum: trace, gemm"
    )


# -- helpers ------------------------------------------------------------------------------


def test_parse_sizes() -> None:
    assert parse_sizes(["i=1024,k=512", "j=3", " a = 2 ,"]) == {
        "i": 1024, "k": 512, "j": 3, "a": 2,
    }


def test_shapes_from_sizes() -> None:
    sizes = {"a": 2, "b": 3, "c": 4, "i": 5, "j": 6, "k": 7}
    assert shapes_from_sizes("abc,ia,jb,kc->ijk", sizes) == ((2, 3, 4), (5, 2), (6, 3), (7, 4))
    assert shapes_from_sizes("ii", {"i": 3}) == ((3, 3),)
    with pytest.raises(tcc.ShapeError, match="'c'"):
        shapes_from_sizes("ab,bc", {"a": 1, "b": 2})


def test_suite_is_well_formed() -> None:
    names = [case.name for case in SUITE]
    assert len(names) == len(set(names))
    for case in SUITE:
        operands = case.operands(quick=True)
        assert [a.shape for a in operands] == list(case.shapes(quick=True))
        assert all(a.dtype == case.dtype for a in operands)
        full = case.shapes(quick=False)
        assert len(full) == len(operands)
        assert sum(np.prod(s) for s in full) * np.dtype(case.dtype).itemsize < 2**28
    assert select_cases(["trace", "gemm"])[1].name == "gemm"


def test_check_tolerances() -> None:
    reference = np.linspace(-1, 1, 50, dtype=np.float32)
    assert check(reference + 1e-6, reference, "float32")
    assert not check(reference + 1e-2, reference, "float32")
    assert not check(reference[:-1], reference, "float32")
    assert check(np.arange(5), np.arange(5), "int64")
    assert not check(np.arange(5) + 1, np.arange(5), "int64")


def test_report_formatting() -> None:
    assert format_seconds(None) == "-"
    assert format_seconds(1.5) == "1.5 s"
    assert format_seconds(0.00123) == "1.23 ms"
    assert format_seconds(4.2e-6) == "4.2 us"
    assert format_ratio(2.0, 1.0) == "2x"
    assert format_ratio(None, 1.0) == "-"
    assert format_seconds(float("nan")) == "-" and format_ratio(1.0, float("nan")) == "-"
    table = format_table(["a", "bb"], [["x", "1"], ["yyy", "22"]], [False, True])
    assert table.splitlines() == ["a    bb", "---  --", "x     1", "yyy  22"]



def test_run_case_reports_tcc_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from tcc import demo_suite
    from tcc.report import demo_table

    def broken(*args: object, **kwargs: object) -> None:
        raise tcc.CompileError("LLVM said no")

    monkeypatch.setattr(tcc, "einsum", broken)
    result = demo_suite.run_case(select_cases(["trace"])[0], quick=True, repeat=1)
    assert not result.ok
    assert result.error == "CompileError: LLVM said no"
    row = demo_table([result]).splitlines()[2]
    assert "FAIL" in row and "nan" not in row

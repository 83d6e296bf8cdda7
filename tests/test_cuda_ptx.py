"""The CUDA backend without a GPU: PTX for the corpus, the CLI, and clear errors when the
runtime is asked for on a machine that has no cuda-python or no device."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from corpus import CORPUS

import tcc
from tcc.errors import BackendUnavailableError, TccError
from tcc.frontend.einsum_program import einsum_program
from tcc.ir import program as P
from tcc.passes.paths import choose_path
from tcc.plan import parse_operands as _parse
from tcc.runtime.cuda import GpuTarget, cuda_available, render_cuda_program

no_gpu = pytest.mark.skipif(cuda_available(), reason="a usable CUDA GPU is present")


def corpus_program(case, dtype: str) -> P.Program:
    arrays = case.operands(np.random.default_rng(0), dtype)
    parsed, checked = _parse(case.equation, tuple(arrays))
    choice = choose_path(parsed, "auto", None)
    return einsum_program(parsed, [a.shape for a in checked], [a.dtype.name for a in checked],
                          dtype, dtype, choice.path if choice else None)


@pytest.mark.parametrize("tiled", ["never", "always"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_corpus_ptx(dtype: str, tiled: str) -> None:
    tiled_cases = 0
    for case in CORPUS:
        rendered = render_cuda_program(corpus_program(case, dtype), tiled=tiled)
        ptx = rendered.ptx
        assert ".target sm_90" in ptx and ".version 8.0" in ptx, case.name
        assert ptx.count(".visible .entry") == len(rendered.kernels), case.name
        assert ".ptr .global" in ptx, case.name
        assert '!"kernel", i32 1' in rendered.llvm_text, case.name
        if any(k.schedule.template == "tiled" for k in rendered.kernels):
            tiled_cases += 1
            assert ".shared" in ptx and "bar.sync" in ptx, case.name
            assert "ld.shared" in ptx and "st.shared" in ptx, case.name
        else:
            assert ".shared" not in ptx, case.name
    assert (tiled_cases > 20) == (tiled == "always")


def test_gemm_ptx_shape() -> None:
    kernel = tcc.compile("ik,kj->ij", (256, 128), (128, 512), dtype="float32", target="cuda",
                         load=False)
    ptx = kernel.ptx()
    assert ".maxntid 8, 8, 1" in ptx and ".minnctapersm 2" in ptx  # 32 x 64: 8 x 8 threads
    assert "fma.rn.f32" in ptx and "ld.global" in ptx and "st.global" in ptx
    assert "%tid.x" in ptx and "%ctaid.y" in ptx
    assert "tiled: grid (8, 8, 1), block (8, 8, 1)" in kernel.ir()
    assert "addrspace(3)" in kernel.llvm_ir() and "addrspace(1)" in kernel.llvm_ir()
    assert kernel.asm() == ptx


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128", "int64"])
def test_tiled_gemm_ptx_every_dtype(dtype: str) -> None:
    # a shared buffer too small for complex parts once made LLVM drop the whole body
    kernel = tcc.compile("ik,kj->ij", (256, 128), (128, 512), dtype=dtype, target="cuda",
                         load=False)
    ptx = kernel.ptx()
    assert "tiled:" in kernel.ir()
    for op in ("ld.global", "ld.shared", "st.shared", "st.global", "bar.sync"):
        assert op in ptx, (dtype, op)


def test_other_architecture() -> None:
    program = corpus_program(next(c for c in CORPUS if "matmul" in c.tags), "float32")
    ptx = render_cuda_program(program, target=GpuTarget("sm_80", "+ptx70")).ptx
    assert ".target sm_80" in ptx and ".version 7.0" in ptx


def unary_program(op: str, dtype: str, size: int = 8) -> P.Program:
    return P.Program(
        (P.Tensor("in0", (size,), dtype), P.Tensor("out", (size,), dtype)), ("in0",), ("out",),
        (P.Statement("out", ("i",), None, P.Unary(op, P.Read("in0", ("i",))), dtype),),
        (("i", size),))


@pytest.mark.parametrize("op", ["exp", "log", "tanh", "sigmoid", "sqrt", "abs", "relu", "neg"])
def test_float32_unary_lowers(op: str) -> None:
    ptx = render_cuda_program(unary_program(op, "float32")).ptx
    assert ".entry" in ptx
    if op in ("exp", "tanh", "sigmoid"):
        assert "ex2.approx" in ptx
    if op == "log":
        assert "lg2.approx" in ptx


@pytest.mark.parametrize("op", ["exp", "log", "tanh"])
def test_float64_transcendental_is_a_clear_error(op: str) -> None:
    # LLVM would abort the process on these; tcc must refuse them first
    with pytest.raises(TccError, match=f"cannot compute {op} in float64"):
        render_cuda_program(unary_program(op, "float64"))


def test_cli_emits_ptx(capsys) -> None:
    from tcc.cli import main

    assert main(["compile", "ik,kj->ij", "-s", "i=64,k=64,j=64", "--target", "cuda",
                 "--emit", "ptx"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("//") and ".visible .entry" in out and ".shared" in out
    assert main(["compile", "ij->i", "-s", "i=5,j=7", "--emit", "ptx", "--dtype",
                 "float64"]) == 0
    assert ".entry" in capsys.readouterr().out
    assert main(["compile", "ij->j", "-s", "i=5,j=7", "--target", "cuda"]) == 0
    assert "loops: grid" in capsys.readouterr().out
    assert main(["compile", "ij->i", "-s", "i=5,j=7", "--target", "cuda", "--emit", "ptx"]) == 0
    assert "shfl.sync.bfly" in capsys.readouterr().out
    assert main(["compile", "ij->i", "-s", "i=5,j=7", "--target", "cpu", "--emit",
                 "ptx"]) == 2
    assert "--emit ptx needs --target cuda" in capsys.readouterr().err


def test_import_tcc_imports_no_cuda() -> None:
    code = ("import sys, tcc; tcc.einsum('ij->j', __import__('numpy').ones((2, 3))); "
            "bad = [m for m in sys.modules if m == 'cuda' or m.startswith('cuda.') "
            "or m == 'tcc.runtime.cuda']; print(bad); assert not bad")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


@no_gpu
def test_runtime_without_gpu_raises_backend_unavailable() -> None:
    with pytest.raises(BackendUnavailableError, match="cuda-python|CUDA device"):
        tcc.compile("ik,kj->ij", (4, 5), (5, 6), dtype="float32", target="cuda")
    with pytest.raises(BackendUnavailableError, match="emit ptx"):
        tcc.einsum("ij->i", np.ones((3, 4)), device="cuda")
    kernel = tcc.compile("ik,kj->ij", (4, 5), (5, 6), dtype="float32", target="cuda",
                         load=False)
    assert ".entry" in kernel.ptx()
    with pytest.raises(BackendUnavailableError):
        kernel(np.ones((4, 5), np.float32), np.ones((5, 6), np.float32))


def test_bad_target_and_device() -> None:
    with pytest.raises(tcc.TccError, match="target must be"):
        tcc.compile("ij->i", (3, 4), target="tpu")
    with pytest.raises(tcc.TccError, match="device must be"):
        tcc.einsum("ij->i", np.ones((3, 4)), device="tpu")
    with pytest.raises(tcc.TccError, match="dynamic"):
        tcc.compile("bi->b", (3, 4), target="cuda", load=False, dynamic=["b"])
    with pytest.raises(tcc.TccError, match="target='cuda'"):
        tcc.compile("ij->i", (3, 4)).ptx()


def test_tensor_core_ptx() -> None:
    kernel = tcc.compile("ik,kj->ij", (512, 256), (256, 384), dtype="float32", target="cuda",
                         load=False, precision="tf32")
    ptx = kernel.ptx()
    assert "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32" in ptx
    assert "cvt.rna.tf32.f32" in ptx and "bar.sync" in ptx
    exact = tcc.compile("ik,kj->ij", (512, 256), (256, 384), dtype="float32", target="cuda",
                        load=False)
    assert "mma" not in exact.ptx()
    with pytest.raises(TccError, match="precision must be"):
        tcc.compile("ik,kj->ij", (2, 2), (2, 2), precision="fp8")


@pytest.mark.skipif(cuda_available(), reason="a usable CUDA GPU is present")
def test_program_for_gpu_without_one_is_a_clear_error() -> None:
    prog = tcc.program("Y[b,o] = sum_i X[b,i] * W[o,i]", shapes=dict(b=2, i=3, o=4))
    with pytest.raises(BackendUnavailableError, match="cuda"):
        tcc.compile(prog, target="cuda")

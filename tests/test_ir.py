"""Golden printed IR for the lowering of einsums, and the verifiers of both IR levels."""

# ruff: noqa: E501 (golden kernel headers are long lines)

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from corpus import CORPUS, Case

import tcc
from tcc.frontend.einsum import parse_einsum
from tcc.frontend.einsum_program import einsum_program
from tcc.ir import loops as L
from tcc.ir import program as P
from tcc.ir.printer import format_kernel, format_program
from tcc.ir.verify import VerificationError, verify_kernel, verify_program
from tcc.options import default_options
from tcc.passes.lower import lower, lower_statement


def lowered(equation: str, shapes, dtypes=None, compute="float64", layouts=None) -> str:
    parsed = parse_einsum(equation, shapes)
    dtypes = dtypes or [compute] * len(shapes)
    program = einsum_program(parsed, shapes, dtypes, compute, compute)
    verify_program(program)
    kernel = verify_kernel(lower_statement(program, program.statements[0], layouts=layouts))
    return format_program(program) + "\n" + format_kernel(kernel)


def golden(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


GOLDEN = {
    "gemm": (("ij,jk->ik", [(3, 4), (4, 5)]), """
        in  in0: float64[3, 4]
        in  in1: float64[4, 5]
        out out: float64[3, 5]
        out[a, c] = sum_{b} in0[a, b] * in1[b, c]  : float64
        kernel kernel(in in0: float64[3, 4] strides [4, 1], in in1: float64[4, 5] strides [5, 1], out out: float64[3, 5] strides [5, 1]):
          for a in 0..3:
            for c in 0..5:
              out[5*a + c] = 0.0
          for a in 0..3:
            for b in 0..4:
              for c in 0..5:
                out[5*a + c] = (out[5*a + c] +~ (in0[4*a + b] * in1[5*b + c]))
    """),
    "hadamard_reduce": (("ij,ij,ij->i", [(3, 4)] * 3), """
        in  in0: float64[3, 4]
        in  in1: float64[3, 4]
        in  in2: float64[3, 4]
        out out: float64[3]
        out[a] = sum_{b} in0[a, b] * in1[a, b] * in2[a, b]  : float64
        kernel kernel(in in0: float64[3, 4] strides [4, 1], in in1: float64[3, 4] strides [4, 1], in in2: float64[3, 4] strides [4, 1], out out: float64[3] strides [1]):
          for a in 0..3:
            acc: float64 = 0.0
            for b in 0..4:
              acc = (acc +~ ((in0[4*a + b] * in1[4*a + b]) * in2[4*a + b]))
            out[a] = acc
    """),
    "trace": (("ii", [(3, 3)]), """
        in  in0: float64[3, 3]
        out out: float64[]
        out[] = sum_{a} in0[a, a]  : float64
        kernel kernel(in in0: float64[3, 3] strides [3, 1], out out: float64[] strides []):
          acc: float64 = 0.0
          for a in 0..3:
            acc = (acc +~ in0[4*a])
          out[0] = acc
    """),
    "diagonal_reduce": (("iij->j", [(3, 3, 4)]), """
        in  in0: float64[3, 3, 4]
        out out: float64[4]
        out[b] = sum_{a} in0[a, a, b]  : float64
        kernel kernel(in in0: float64[3, 3, 4] strides [12, 4, 1], out out: float64[4] strides [1]):
          for b in 0..4:
            out[b] = 0.0
          for a in 0..3:
            for b in 0..4:
              out[b] = (out[b] +~ in0[16*a + b])
    """),
    "broadcast": (("ij,jk->ik", [(3, 1), (1, 5)]), """
        in  in0: float64[3, 1]
        in  in1: float64[1, 5]
        out out: float64[3, 5]
        out[a, c] = sum_{b} in0[a, b] * in1[b, c]  : float64
        kernel kernel(in in0: float64[3, 1] strides [1, 1], in in1: float64[1, 5] strides [5, 1], out out: float64[3, 5] strides [5, 1]):
          for a in 0..3:
            for c in 0..5:
              out[5*a + c] = (in0[a] * in1[c])
    """),
    "ellipsis_broadcast": (("...i,i->...", [(2, 1, 3), (3,)]), """
        in  in0: float64[2, 1, 3]
        in  in1: float64[3]
        out out: float64[2, 1]
        out[a, b] = sum_{c} in0[a, b, c] * in1[c]  : float64
        kernel kernel(in in0: float64[2, 1, 3] strides [3, 3, 1], in in1: float64[3] strides [1], out out: float64[2, 1] strides [1, 1]):
          for a in 0..2:
            acc: float64 = 0.0
            for c in 0..3:
              acc = (acc +~ (in0[3*a + c] * in1[c]))
            out[a] = acc
    """),
}


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_lowering(name):
    (equation, shapes), expected = GOLDEN[name]
    assert lowered(equation, shapes) == golden(expected)


def test_golden_complex_with_a_cast():
    text = lowered("ij,j->i", [(3, 4), (4,)], dtypes=["complex64", "float32"],
                   compute="complex64")
    assert text == golden("""
        in  in0: complex64[3, 4]
        in  in1: float32[4]
        out out: complex64[3]
        out[a] = sum_{b} in0[a, b] * complex64(in1[b])  : complex64
        kernel kernel(in in0: complex64[3, 4] strides [4, 1], in in1: float32[4] strides [1], out out: complex64[3] strides [1]):
          for a in 0..3:
            acc: complex64 = 0j
            for b in 0..4:
              acc = (acc +~ (in0[4*a + b] * complex64(in1[b])))
            out[a] = acc
    """)


def test_golden_float16_computes_in_float32():
    text = lowered("i,i->", [(4,), (4,)], compute="float16")
    assert "sum_{a} float32(in0[a]) * float32(in1[a])  : float32" in text
    assert "out[0] = float16(acc)" in text


def test_golden_negative_stride_layout():
    text = lowered("ij->ji", [(3, 4)], layouts={"in0": (-1, 3)})
    assert text.endswith(golden("""
        kernel kernel(in in0: float64[3, 4] strides [-1, 3], out out: float64[4, 3] strides [3, 1]):
          for b in 0..4:
            for a in 0..3:
              out[a + 3*b] = in0[-1*a + 3*b]
    """))


def test_compiled_kernel_ir_starts_with_the_program():
    text = tcc.compile("ij,jk->ik", (3, 4), (4, 5)).ir()
    assert text.startswith(golden("""
        in  in0: float64[3, 4]
        in  in1: float64[4, 5]
        out out: float64[3, 5]
        out[a, c] = sum_{b} in0[a, b] * in1[b, c]  : float64
    """))
    assert "kernel tcc_" in text


def test_alpha_renaming_gives_identical_ir():
    assert lowered("ij,jk->ik", [(3, 4), (4, 5)]) == lowered("pq,qr->pr", [(3, 4), (4, 5)])
    assert lowered("ba,ac->bc", [(3, 4), (4, 5)]) == lowered("ij,jk->ik", [(3, 4), (4, 5)])


# ---- the verifier runs on every lowering ----------------------------------------------------


def test_tests_run_with_verifiers_on():
    assert default_options().verify


def _strides(shape, rng) -> tuple[int, ...]:
    """Random (possibly negative or padded) element strides for ``shape``."""
    strides, step = [], 1
    for size in reversed(shape):
        sign = -1 if rng.random() < 0.3 else 1
        strides.append(sign * step)
        step *= max(size, 1) * (2 if rng.random() < 0.3 else 1)
    return tuple(reversed(strides))


@pytest.mark.parametrize("case", CORPUS, ids=str)
def test_every_corpus_lowering_verifies(case: Case):
    rng = np.random.default_rng(len(case.name))
    parsed = parse_einsum(case.equation, case.shapes)
    for path in (None, [(0, 1)] * (case.n_operands - 1)):
        program = einsum_program(parsed, case.shapes, ["float64"] * case.n_operands,
                                 "float64", "float64", path)
        verify_program(program)
        layouts = {f"in{k}": _strides(s, rng) for k, s in enumerate(case.shapes)}
        for kernel in lower(program, layouts=layouts):
            verify_kernel(kernel)


# ---- the kernel verifier rejects bad kernels ------------------------------------------------


def _buffer(name: str, role: str, size: int = 4) -> L.Buffer:
    return L.Buffer(name, "float64", role, (size,), (1,))


def _kernel(*body: L.Stmt) -> L.Kernel:
    return L.Kernel("bad", (_buffer("x", "in"), _buffer("y", "out")), tuple(body))


def _i(coefficient: int = 1, const: int = 0) -> L.Affine:
    return L.Affine.of({"i": coefficient}, const)


def test_verifier_accepts_a_good_kernel():
    good = _kernel(L.For("i", 4, (L.Store("y", _i(), L.Load("x", _i(-1, 3))),)))
    assert verify_kernel(good) is good


@pytest.mark.parametrize("body, message", [
    ((L.For("i", 5, (L.Store("y", _i(), L.Load("x", _i())),)),), "outside the buffer"),
    ((L.For("i", 4, (L.Store("y", _i(), L.Load("x", _i(1, 1))),)),), "outside the buffer"),
    ((L.For("i", 4, (L.Store("y", _i(), L.Load("x", _i(-1))),)),), "outside the buffer"),
    ((L.For("i", 4, (L.Store("x", _i(), L.Const(0.0, "float64")),)),), "input buffer"),
    ((L.Store("y", _i(), L.Const(0.0, "float64")),), "outside its loop"),
    ((L.For("i", 4, (L.Store("z", _i(), L.Const(0.0, "float64")),)),), "unknown buffer"),
    ((L.Store("y", L.Affine(), L.Local("acc")),), "before it is declared"),
    ((L.Assign("acc", L.Const(0.0, "float64")),), "undeclared local"),
    ((L.For("i", 2, (L.For("i", 2, ()),)),), "shadows"),
    ((L.For("i", 2, (), kind="sideways"),), "bad extent or kind"),
    ((L.Store("y", L.Affine(), L.Cast("float128", L.Const(0.0, "float64"))),), "dtype"),
])
def test_verifier_rejects(body, message):
    with pytest.raises(VerificationError, match=message) as info:
        verify_kernel(_kernel(*body))
    assert isinstance(info.value, tcc.TccError)


def test_verifier_allows_loops_that_never_run_and_zero_size_buffers():
    empty = L.Kernel("empty", (L.Buffer("x", "float64", "in", (0,), (1,)),
                               _buffer("y", "out")),
                     (L.For("i", 0, (L.Store("y", _i(), L.Load("x", _i())),)),))
    verify_kernel(empty)
    load = L.Load("x", L.Affine())
    touching = L.Kernel("touch", empty.buffers, (L.Store("y", L.Affine(), load),))
    with pytest.raises(VerificationError, match="outside the buffer"):
        verify_kernel(touching)


def test_verifier_rejects_bad_buffers():
    duplicate = L.Kernel("dup", (_buffer("x", "in"), _buffer("x", "out")), ())
    with pytest.raises(VerificationError, match="duplicate"):
        verify_kernel(duplicate)
    mismatch = L.Kernel("bad", (L.Buffer("x", "float64", "in", (2, 2), (1,)),), ())
    with pytest.raises(VerificationError, match="shape/strides"):
        verify_kernel(mismatch)


# ---- the program verifier -------------------------------------------------------------------


def _program(*statements: P.Statement, outputs=("c",)) -> P.Program:
    return P.Program(
        tensors=(P.Tensor("a", (3, 4), "float64"), P.Tensor("b", (4, 5), "float64"),
                 P.Tensor("t", (3, 5), "float64"), P.Tensor("c", (3, 5), "float64")),
        inputs=("a", "b"),
        outputs=outputs,
        statements=statements,
        index_sizes=(("i", 3), ("j", 4), ("k", 5)),
    )


def _matmul(target: str = "c", left: str = "a", indices=("i", "k"), reduce="sum",
            dtype="float64") -> P.Statement:
    expr = P.Binary("mul", P.Read(left, ("i", "j")), P.Read("b", ("j", "k")))
    return P.Statement(target, indices, reduce, expr, dtype)


def test_program_verifier_accepts_a_good_program():
    program = _program(_matmul("t"), _matmul("c", indices=("i", "k")))
    verify_program(_program(_matmul()))
    verify_program(program)


@pytest.mark.parametrize("program, message", [
    (_program(), "never computed"),
    (_program(_matmul(), outputs=("zz",)), "unknown tensor"),
    (_program(_matmul(target="zz")), "unknown tensor"),
    (_program(_matmul(dtype="float128")), "unknown tensor or dtype"),
    (_program(_matmul(reduce="mean")), "unknown reduction"),
    (_program(_matmul(indices=("i", "i"))), "index i has size 3|bad output indices"),
    (_program(_matmul(indices=("i",))), "wrong number of indices"),
    (_program(_matmul(indices=("k", "i"))), "index k has size 5"),
    (_program(_matmul(left="t")), "read before it is computed"),
])
def test_program_verifier_rejects(program, message):
    with pytest.raises(VerificationError, match=message):
        verify_program(program)

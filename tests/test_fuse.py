"""Fusion: fused programs compute exactly what the unfused ones do, with fewer statements."""

from __future__ import annotations

import numpy as np
import pytest

import tcc
import tcc.programs as programs
from tcc.ir import program as P
from tcc.passes.fuse import fuse

FORWARD = """
    H[b,h] = relu((sum_i X[b,i] * W1[h,i]) + 0.5)
    Y[b,o] = tanh(sum_h H[b,h] * W2[o,h])
    D[b,o] = Y[b,o] - T[b,o]
    L[]    = sum_{b,o} D[b,o] * D[b,o]
"""


def compiled_without_fusion(prog, monkeypatch):
    monkeypatch.setattr(programs, "fuse", lambda p: p)
    return tcc.compile_program(prog)


@pytest.mark.parametrize("gett", ["never", "always"])
def test_forward_program_fuses_and_matches(gett, monkeypatch):
    prog = tcc.program(FORWARD, shapes=dict(b=24, i=40, h=48, o=8), dtype="float64")
    fused = fuse(prog)
    assert len(fused.statements) < len(prog.statements)
    assert any(s.epilogue is not None for s in fused.statements)
    rng = np.random.default_rng(0)
    args = {n: rng.standard_normal(prog.tensor(n).shape) * 0.3 for n in prog.inputs}
    options = tcc.Options(gett=gett)
    got = tcc.compile_program(prog, options)(args)
    want = compiled_without_fusion(prog, monkeypatch)(args)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-12, atol=1e-14)
    x, w1, w2, t = args["X"], args["W1"], args["W2"], args["T"]
    y = np.tanh(np.maximum(x @ w1.T + 0.5, 0) @ w2.T)
    np.testing.assert_allclose(got["L"], ((y - t) ** 2).sum(), rtol=1e-12)


def test_no_fusion_across_a_write_of_an_input():
    prog = tcc.program("""
        A2[i] = A[i] * 2
        B[i] = A2[i] + 1
        C[i] = B[i] * B[i]
    """, shapes=dict(i=5), dtype="float64")
    fused = fuse(prog)
    assert len(fused.statements) == 1
    assert not any(isinstance(n, P.Read) and n.tensor in ("A2", "B")
                   for n in P.reads(fused.statements[0].expr))


def test_gradient_programs_still_match(monkeypatch):
    prog = tcc.program(FORWARD, shapes=dict(b=6, i=5, h=7, o=3), dtype="float64")
    step = tcc.grad(prog, of="L", wrt=["W1", "W2"])
    rng = np.random.default_rng(1)
    args = {n: rng.standard_normal(step.tensor(n).shape) * 0.3 for n in step.inputs}
    got = tcc.compile_program(step)(args)
    want = compiled_without_fusion(step, monkeypatch)(args)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-12, atol=1e-14)

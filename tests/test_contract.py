"""Multi-operand statements of programs split into pairwise contractions: same results."""

from __future__ import annotations

import numpy as np

import tcc
from tcc.passes.contract import contract_products


def test_chain_statement_becomes_pairwise_and_stays_exact():
    prog = tcc.program("S[t,s] = sum_{d,e} A[t,d] * B[d,e] * C[e,s] * 0.5",
                       shapes=dict(t=30, s=40, d=50, e=60), dtype="float64")
    split = contract_products(prog)
    assert len(split.statements) == 2
    rng = np.random.default_rng(0)
    a, b, c = rng.random((30, 50)), rng.random((50, 60)), rng.random((60, 40))
    got = tcc.compile_program(prog)(A=a, B=b, C=c)["S"]
    np.testing.assert_allclose(got, a @ b @ c * 0.5, rtol=1e-12)


def test_cheap_fused_statements_and_accumulations_stay_whole():
    prog = tcc.program("Y[i] = sum_j A[i,j] * B[i,j] * C[i,j]", shapes=dict(i=4, j=5),
                       dtype="float64")
    assert contract_products(prog) == prog  # a Hadamard reduction: no path does less work


def test_gradient_programs_compile_through_the_pass():
    prog = tcc.program("""
        S[t,s] = sum_{d,e} A[t,d] * B[d,e] * C[e,s]
        L[] = sum_{t,s} S[t,s] * S[t,s]
    """, shapes=dict(t=6, s=7, d=8, e=9), dtype="float64")
    step = tcc.grad(prog, of="L", wrt=["B"])
    rng = np.random.default_rng(1)
    a, b, c = rng.random((6, 8)), rng.random((8, 9)), rng.random((9, 7))
    out = tcc.compile_program(step)(A=a, B=b, C=c)
    s = a @ b @ c
    np.testing.assert_allclose(out["dB"], 2 * a.T @ s @ c.T, rtol=1e-10)

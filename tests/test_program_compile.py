"""Compiled programs against numpy: the MLP, every operator, semirings, argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from tcc.errors import DTypeError, OperandError, ShapeError
from tcc.options import Options
from tcc.programs import compile_program, program

OPTIONS = Options(verify=True)
MLP = """
H[b,h]  = relu(sum_i X[b,i] * W1[h,i])
Y[b,o]  = sum_h H[b,h] * W2[o,h]
L[]     = sum_{b,o} (Y[b,o] - T[b,o])^2
"""


def mlp_reference(X, W1, W2, T):
    H = np.maximum(X @ W1.T, 0)
    Y = H @ W2.T
    return Y, ((Y - T) ** 2).sum()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mlp_forward_and_loss(dtype):
    sizes = dict(b=16, i=12, h=8, o=3)
    prog = program(MLP, shapes=sizes, dtype=dtype, outputs=["Y", "L"])
    f = compile_program(prog, OPTIONS)
    rng = np.random.default_rng(1)
    args = {
        "X": rng.standard_normal((16, 12)), "W1": rng.standard_normal((8, 12)),
        "W2": rng.standard_normal((3, 8)), "T": rng.standard_normal((16, 3)),
    }
    args = {k: v.astype(dtype) for k, v in args.items()}
    out = f(args)
    Y, L = mlp_reference(*(args[k].astype(np.float64) for k in ("X", "W1", "W2", "T")))
    rtol = 1e-4 if dtype == "float32" else 1e-12
    assert set(out) == {"Y", "L"}
    assert out["L"].shape == () and out["L"].dtype == np.dtype(dtype)
    np.testing.assert_allclose(out["Y"], Y, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(out["L"], L, rtol=rtol)
    assert "relu(@) with @ = sum_{i} X[b, i] * W1[h, i]" in f.ir()  # fused epilogue
    assert f(**args)["L"] == out["L"]


def test_every_operator_against_numpy():
    text = """
    R1[i] = -A[i] + B[i] - A[i] * B[i] / 2 + B[i] ^ 1.5 + exp(A[i]) + log(B[i]) + sqrt(B[i])
    R2[i] = tanh(A[i]) + sigmoid(A[i]) + relu(A[i]) + abs(A[i]) + max(A[i], B[i]) + min(A[i], 0.1)
    R3[i] = where(A[i] <= B[i], A[i], 0.5) + (A[i] < 0) + 2 * (A[i] > 0) + 4 * (A[i] >= 0)
            + 8 * (A[i] == C[i]) + 16 * (A[i] != C[i])
    R4[i] = (prod_j D[i,j]) + (min_j D[i,j]) * 10 + max_j D[i,j]
    """
    f = compile_program(program(text, shapes=dict(i=7, j=3), dtype="float64"), OPTIONS)
    rng = np.random.default_rng(2)
    A = rng.standard_normal(7)
    A[0] = 0.0
    B = rng.uniform(0.5, 2.0, 7)
    C = A.copy()
    C[1::2] += 1
    D = rng.standard_normal((7, 3))
    out = f(A=A, B=B, C=C, D=D)
    np.testing.assert_allclose(
        out["R1"], -A + B - A * B / 2 + B**1.5 + np.exp(A) + np.log(B) + np.sqrt(B))
    np.testing.assert_allclose(
        out["R2"], np.tanh(A) + 1 / (1 + np.exp(-A)) + np.maximum(A, 0) + np.abs(A)
        + np.maximum(A, B) + np.minimum(A, 0.1))
    np.testing.assert_allclose(
        out["R3"], np.where(A <= B, A, 0.5) + (A < 0) + 2 * (A > 0) + 4 * (A >= 0)
        + 8 * (A == C) + 16 * (A != C))
    np.testing.assert_allclose(out["R4"], D.prod(1) + D.min(1) * 10 + D.max(1))


def test_semirings_log_sum_exp_and_softmax():
    text = """
    C[i,k]   = max_j A[i,j] + B[j,k]
    M[i]     = max_j A[i,j]
    LSE[i]   = M[i] + log(sum_j exp(A[i,j] - M[i]))
    SM[i,j]  = exp(A[i,j] - LSE[i])
    """
    prog = program(text, shapes=dict(i=4, j=5, k=3), dtype="float64", outputs=["C", "LSE", "SM"])
    f = compile_program(prog, OPTIONS)
    rng = np.random.default_rng(3)
    A, B = rng.standard_normal((4, 5)) * 10, rng.standard_normal((5, 3))
    out = f(A=A, B=B)
    np.testing.assert_allclose(out["C"], (A[:, :, None] + B[None]).max(1))
    lse = np.log(np.exp(A - A.max(1, keepdims=True)).sum(1)) + A.max(1)
    np.testing.assert_allclose(out["LSE"], lse)
    np.testing.assert_allclose(out["SM"], np.exp(A) / np.exp(A).sum(1, keepdims=True))


def test_accumulate_and_broadcast():
    text = "Y[i,j] = A[i] * 2\nY[i,j] += B[j]\nZ[] = sum_{i,j} Y[i,j]"
    f = compile_program(text, OPTIONS, shapes=dict(i=3, j=4), dtype="float64",
                        outputs=["Y", "Z"])
    A, B = np.arange(3.0), np.arange(4.0)
    out = f(A=A, B=B)
    np.testing.assert_allclose(out["Y"], 2 * A[:, None] + B[None])
    np.testing.assert_allclose(out["Z"], out["Y"].sum())


def test_argument_checks():
    f = compile_program(program("Y[i] = A[i] * B[i]", shapes=dict(i=3)), OPTIONS)
    a = np.ones(3, np.float32)
    with pytest.raises(OperandError, match=r"missing input\(s\) \['B'\]"):
        f(A=a)
    with pytest.raises(OperandError, match="unknown input"):
        f(A=a, B=a, C=a)
    with pytest.raises(ShapeError, match=r"input B has shape \(4,\); the program expects \(3,\)"):
        f(A=a, B=np.ones(4, np.float32))
    with pytest.raises(DTypeError, match="dtype float64; the program expects float32"):
        f(A=a, B=np.ones(3))
    strided = np.arange(6, dtype=np.float32)[::2]
    np.testing.assert_allclose(f(A=strided, B=[1, 2, 3])["Y"], [0, 4, 12])
    assert f.inputs == ("A", "B") and f.outputs == ("Y",)


def test_float16_program_computes_in_float32_with_float32_temporaries():
    from tcc.passes.autodiff import grad

    text = "H[b,h] = tanh(sum_i X[b,i] * W[h,i])\nL[] = sum_{b,h} H[b,h]^2"
    prog = program(text, shapes=dict(b=3, i=4, h=2), dtype="float16")
    assert prog.tensor("H_sum").dtype == "float32" and prog.tensor("H").dtype == "float16"
    f = compile_program(grad(prog, of="L", wrt="W"), OPTIONS)
    rng = np.random.default_rng(4)
    X, W = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    out = f(X=X.astype(np.float16), W=W.astype(np.float16))
    X, W = X.astype(np.float16).astype(float), W.astype(np.float16).astype(float)
    H = np.tanh(X @ W.T)
    assert out["dW"].dtype == np.float16
    np.testing.assert_allclose(out["L"], (H**2).sum(), rtol=2e-3)
    np.testing.assert_allclose(out["dW"], (2 * H * (1 - H * H)).T @ X, rtol=1e-2, atol=1e-2)


def test_where_does_not_leak_the_branch_not_taken():
    import numpy as np

    import tcc

    f = tcc.compile_program("Y[i] = where(X[i] > 0, log(X[i]), 0)", shapes=dict(i=4),
                            dtype="float64")
    x = np.array([1.0, -1.0, 0.0, 2.0])
    np.testing.assert_array_equal(f(X=x)["Y"], np.where(x > 0, np.log(np.abs(x) + (x == 0)), 0))


def test_float16_functions_compute_in_float32():
    import numpy as np

    import tcc

    f = tcc.compile_program("Y[i] = tanh(X[i]) + exp(X[i])", shapes=dict(i=5), dtype="float16")
    x = np.linspace(-1, 1, 5).astype(np.float16)
    want = (np.tanh(x.astype(np.float32)) + np.exp(x.astype(np.float32)))
    np.testing.assert_allclose(f(X=x)["Y"].astype(np.float32), want, rtol=2e-3)

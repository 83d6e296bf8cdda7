"""tcc.grad: gradients against finite differences (float64) and hand-derived formulas."""

from __future__ import annotations

import numpy as np
import pytest

from tcc.errors import TccError
from tcc.ir import program as P
from tcc.ir.printer import format_program
from tcc.ir.verify import verify_program
from tcc.options import Options
from tcc.passes.autodiff import grad
from tcc.programs import compile_program, program

OPTIONS = Options(verify=True)
MLP = """
H[b,h]  = relu(sum_i X[b,i] * W1[h,i])
Y[b,o]  = sum_h H[b,h] * W2[o,h]
L[]     = sum_{b,o} (Y[b,o] - T[b,o])^2
"""
MLP_SIZES = dict(b=3, i=4, h=5, o=2)


def random_inputs(prog, seed=0, positive=()):
    rng = np.random.default_rng(seed)
    args = {}
    for name in prog.inputs:
        shape = prog.tensor(name).shape
        if name in positive:
            args[name] = rng.uniform(0.5, 2.0, shape)
        else:
            args[name] = rng.standard_normal(shape)
    return args


def finite_difference(forward, args, of, name, eps=1e-6):
    result = np.zeros_like(args[name])
    for k in np.ndindex(result.shape):
        values = []
        for step in (eps, -eps):
            moved = {**args, name: args[name].copy()}
            moved[name][k] += step
            values.append(forward(moved)[of].sum())
        result[k] = (values[0] - values[1]) / (2 * eps)
    return result


def check_gradients(text, sizes, wrt, of="L", positive=(), seed=0, rtol=1e-5):
    prog = program(text, shapes=sizes, dtype="float64", outputs=[of])
    backward = grad(prog, of=of, wrt=wrt)
    verify_program(backward)
    forward_fn = compile_program(prog, OPTIONS)
    backward_fn = compile_program(backward, OPTIONS)
    args = random_inputs(prog, seed, positive)
    out = backward_fn(args)
    np.testing.assert_allclose(out[of], forward_fn(args)[of], rtol=1e-12)
    for name in wrt:
        expected = finite_difference(forward_fn, args, of, name)
        np.testing.assert_allclose(out["d" + name], expected, rtol=rtol, atol=1e-7,
                                   err_msg=f"d{name}\n{format_program(backward)}")
    return backward, out, args


def test_mlp_gradients_finite_differences_and_by_hand():
    backward, out, a = check_gradients(MLP, MLP_SIZES, ["W1", "W2", "X", "T"])
    assert backward.outputs == ("L", "dW1", "dW2", "dX", "dT")
    pre = a["X"] @ a["W1"].T
    H = np.maximum(pre, 0)
    Y = H @ a["W2"].T
    dY = 2 * (Y - a["T"])
    dpre = (dY @ a["W2"]) * (pre > 0)
    np.testing.assert_allclose(out["dW2"], dY.T @ H, rtol=1e-12)
    np.testing.assert_allclose(out["dW1"], dpre.T @ a["X"], rtol=1e-12)
    np.testing.assert_allclose(out["dX"], dpre @ a["W1"], rtol=1e-12)
    np.testing.assert_allclose(out["dT"], -dY, rtol=1e-12)


def test_matmul_gradient_is_an_einsum_statement():
    prog = program("C[i,k] = sum_j A[i,j] * B[j,k]", shapes=dict(i=2, j=3, k=4))
    backward = grad(prog, of="C", wrt=["A", "B"])
    dA, dB = backward.statements[1:]
    assert (dA.target, dA.indices, dA.reduce) == ("dA", ("i", "j"), "sum")
    assert dA.expr == P.Read("B", ("j", "k"))  # the seed dC = 1 folds away
    assert (dB.target, dB.indices, dB.reduce) == ("dB", ("j", "k"), "sum")
    two = program("C[i,k] = sum_j A[i,j] * B[j,k]\nL[] = sum_{i,k} C[i,k] * G[i,k]",
                  shapes=dict(i=2, j=3, k=4))
    dA = grad(two, of="L", wrt=["A"]).statements[-1]
    assert dA.expr == P.Binary("mul", P.Read("dC", ("i", "k")), P.Read("B", ("j", "k")))


UNARY_CASES = {
    "neg": "-A[i]", "exp": "exp(A[i])", "log": "log(B[i])", "sqrt": "sqrt(B[i])",
    "tanh": "tanh(A[i])", "sigmoid": "sigmoid(A[i])", "relu": "relu(A[i])",
    "abs": "abs(A[i])", "div": "A[i] / B[i]", "pow_const": "A[i] ^ 3",
    "pow_var": "B[i] ^ A[i]", "max": "max(A[i], B[i] - 1)", "min": "min(A[i], B[i] - 1)",
    "where": "where(A[i] > 0, A[i] * B[i], exp(A[i]))", "compare": "(A[i] > 0) * A[i] ^ 2",
    "self_product": "A[i] * A[i] + A[i] / (1 + B[i])",
}


@pytest.mark.parametrize("case", sorted(UNARY_CASES))
def test_elementwise_derivatives(case):
    text = f"Y[i] = {UNARY_CASES[case]}\nL[] = sum_i Y[i] * W[i]"
    wrt = [name for name in ("A", "B") if f"{name}[" in UNARY_CASES[case]]
    check_gradients(text, dict(i=6), wrt, positive=("B",))


def test_max_reduction_routes_gradient_to_argmax():
    text = "M[i] = max_j A[i,j]\nL[] = sum_i M[i] * W[i]"
    backward, out, a = check_gradients(text, dict(i=3, j=4), ["A", "W"])
    mask = a["A"] == a["A"].max(1, keepdims=True)
    np.testing.assert_array_equal(out["dA"], mask * a["W"][:, None])
    tie = compile_program(backward, OPTIONS)({"A": np.zeros((3, 4)), "W": np.ones(3)})
    np.testing.assert_array_equal(tie["dA"], np.ones((3, 4)))  # ties: all get the gradient


def test_min_prod_and_max_plus_reductions():
    check_gradients("M[i] = min_j A[i,j]\nL[] = sum_i M[i] * W[i]", dict(i=3, j=4), ["A"])
    check_gradients("M[i] = prod_j A[i,j]\nL[] = sum_i M[i] * W[i]", dict(i=3, j=4), ["A"])
    check_gradients("C[i,k] = max_j A[i,j] + B[j,k]\nL[] = sum_{i,k} C[i,k] * G[i,k]",
                    dict(i=3, j=4, k=2), ["A", "B"])


def test_broadcast_reuse_transpose_and_accumulate():
    text = """
    Y[i,j] = A[i] * B[j] + A[i] * A[i]
    Z[i,j] = Y[i,j] * S[i,j] * S[j,i] + tanh(Y[i,j])
    Z[i,j] += exp(A[j]) * Y[j,i]
    L[] = sum_{i,j} Z[i,j] * G[i,j] + (sum_k B[k])
    """
    check_gradients(text, dict(i=3, j=3, k=3), ["A", "B", "S"])


def test_index_missing_from_the_derivative_is_counted():
    text = "L[] = sum_{i,k} A[i] + B[k] * B[k]"
    backward, out, _ = check_gradients(text, dict(i=3, k=5), ["A", "B"])
    np.testing.assert_allclose(out["dA"], np.full(3, 5.0))


def test_tensor_of_seeds_ones_and_zero_gradients():
    prog = program("Y[i] = A[i] * A[i]\nZ[i] = B[i] * 2", shapes=dict(i=3), dtype="float64")
    backward = grad(prog, of="Y", wrt=["A", "B", "Y"])
    out = compile_program(backward, OPTIONS)({"A": np.arange(3.0), "B": np.ones(3)})
    np.testing.assert_allclose(out["dA"], 2 * np.arange(3.0))
    np.testing.assert_allclose(out["dB"], np.zeros(3))
    np.testing.assert_allclose(out["dY"], np.ones(3))
    assert backward.outputs == ("Y", "Z", "dA", "dB", "dY")


def test_intermediate_gradient_and_errors():
    prog = program(MLP, shapes=MLP_SIZES, dtype="float64")
    backward = grad(prog, of="L", wrt="H")
    assert backward.outputs == ("L", "dH")
    with pytest.raises(TccError, match="unknown tensor 'Q'"):
        grad(prog, of="L", wrt=["Q"])
    with pytest.raises(TccError, match="is an input"):
        grad(prog, of="X", wrt=["W1"])
    clash = program("dW[i] = W[i] * 2\nL[] = sum_i dW[i]", shapes=dict(i=2))
    with pytest.raises(TccError, match="already has a tensor"):
        grad(clash, of="L", wrt=["W"])


TRANSFORMER = """
Q[t,d]   = sum_e X[t,e] * Wq[d,e]
K[s,d]   = sum_e X[s,e] * Wk[d,e]
V[s,d]   = sum_e X[s,e] * Wv[d,e]
S[t,s]   = 0.5 * sum_d Q[t,d] * K[s,d]
M[t]     = max_s S[t,s]
E[t,s]   = exp(S[t,s] - M[t])
Z[t]     = sum_s E[t,s]
A[t,s]   = E[t,s] / Z[t]
C[t,d]   = sum_s A[t,s] * V[s,d]
O[t,f]   = tanh(bo[f] + sum_d C[t,d] * Wo[f,d]) + X[t,f]
L[]      = sum_{t,f} (O[t,f] - T[t,f])^2
"""
TRANSFORMER_SIZES = dict(t=4, s=4, e=3, f=3, d=2)


def transformer_reference(X, Wq, Wk, Wv, Wo, bo, T):
    Q, K, V = X @ Wq.T, X @ Wk.T, X @ Wv.T
    S = 0.5 * Q @ K.T
    A = np.exp(S - S.max(1, keepdims=True))
    A /= A.sum(1, keepdims=True)
    O = np.tanh(bo + (A @ V) @ Wo.T) + X
    return O, ((O - T) ** 2).sum()


def test_transformer_block_forward_and_gradients():
    prog = program(TRANSFORMER, shapes=TRANSFORMER_SIZES, dtype="float64", outputs=["O", "L"])
    args = random_inputs(prog, seed=5)
    out = compile_program(prog, OPTIONS)(args)
    O, L = transformer_reference(*(args[k] for k in ("X", "Wq", "Wk", "Wv", "Wo", "bo", "T")))
    np.testing.assert_allclose(out["O"], O, rtol=1e-12)
    np.testing.assert_allclose(out["L"], L, rtol=1e-12)
    check_gradients(TRANSFORMER, TRANSFORMER_SIZES, ["X", "Wq", "Wk", "Wv", "Wo", "bo"],
                    seed=5)

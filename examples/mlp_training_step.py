"""Train a 2-layer MLP with a tcc program: forward + loss as text, gradients by tcc.grad.

    python examples/mlp_training_step.py [--small]

The forward pass and the loss are one program; ``grad`` turns it into a program that also
computes dW1, db1, dW2, db2; compile_program makes one native entry of it. Each SGD step is
one call plus a numpy update. The gradients are checked against numpy on the first step.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tcc.passes.autodiff import grad
from tcc.programs import compile_program, program

SIZES = dict(b=64, i=16, h=32, o=4)
SCALE = 1.0 / (SIZES["b"] * SIZES["o"])  # mean squared error

TEXT = f"""
# a 2-layer perceptron with a mean-squared-error loss
H[b,h] = relu(b1[h] + sum_i X[b,i] * W1[h,i])
Y[b,o] = b2[o] + sum_h H[b,h] * W2[o,h]
L[]    = {SCALE!r} * sum_{{b,o}} (Y[b,o] - T[b,o])^2
"""
PARAMETERS = ["W1", "b1", "W2", "b2"]


def numpy_gradients(X, T, W1, b1, W2, b2):
    """The same maths by hand: loss and its gradients."""
    pre = X @ W1.T + b1
    H = np.maximum(pre, 0)
    Y = H @ W2.T + b2
    dY = 2 * SCALE * (Y - T)
    dpre = (dY @ W2) * (pre > 0)
    grads = {"dW1": dpre.T @ X, "db1": dpre.sum(0), "dW2": dY.T @ H, "db2": dY.sum(0)}
    return SCALE * ((Y - T) ** 2).sum(), grads


def main(steps: int = 60, learning_rate: float = 0.1) -> None:
    forward = program(TEXT, shapes=SIZES, dtype="float64")
    step = compile_program(grad(forward, of="L", wrt=PARAMETERS))
    print(f"training program: {len(step.program.statements)} statements, "
          f"outputs {list(step.outputs)}")

    rng = np.random.default_rng(0)
    X = rng.standard_normal((SIZES["b"], SIZES["i"]))
    teacher = rng.standard_normal((SIZES["o"], SIZES["i"])) / 4
    T = np.tanh(X @ teacher.T)  # a smooth target the MLP can fit
    params = {
        "W1": rng.standard_normal((SIZES["h"], SIZES["i"])) / np.sqrt(SIZES["i"]),
        "b1": np.zeros(SIZES["h"]),
        "W2": rng.standard_normal((SIZES["o"], SIZES["h"])) / np.sqrt(SIZES["h"]),
        "b2": np.zeros(SIZES["o"]),
    }

    out = step(X=X, T=T, **params)
    loss, expected = numpy_gradients(X, T, **params)
    np.testing.assert_allclose(out["L"], loss, rtol=1e-12)
    for name, value in expected.items():
        np.testing.assert_allclose(out[name], value, rtol=1e-10, atol=1e-12)
    print("gradients match numpy")

    losses = []
    start = time.perf_counter()
    for k in range(steps):
        out = step(X=X, T=T, **params)
        losses.append(float(out["L"]))
        for name in PARAMETERS:
            params[name] -= learning_rate * out["d" + name]
        if k % 10 == 0 or k == steps - 1:
            print(f"step {k:3d}  loss {losses[-1]:.6f}")
    elapsed = time.perf_counter() - start
    print(f"{steps} steps in {elapsed * 1e3:.1f} ms")
    assert losses[-1] < 0.5 * losses[0], "the loss should decrease"
    print("OK: gradients match numpy and the loss decreases")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="fewer steps (a smoke test)")
    main(steps=20 if parser.parse_args().small else 60)

"""Tucker decomposition: compress a 3-way tensor, reconstruct it, and a Tucker-factorized layer.

Part 1 models data compression (video frames, hyperspectral cubes, weight tensors): a
truncated higher-order SVD (HOSVD) gives factor matrices U1, U2, U3 (numpy SVDs); the
core is the projection of the data onto them and the reconstruction multiplies it back:

    core  = einsum("ijk,ia,jb,kc->abc", X, U1, U2, U3)       (tcc)
    X_hat = einsum("abc,ia,jb,kc->ijk", core, U1, U2, U3)    (tcc)

Part 2 models a Tucker-factorized fully connected layer (as in tensorized neural
networks): the weight W[p,q,r,s] (inputs reshaped p x q, outputs r x s) is kept as a core
G[a,b,c,d] and four factors and never formed; a batch x[n,p,q] maps to

    y = einsum("npq,pa,qb,abcd,rc,sd->nrs", x, A, B, G, C, D)  (tcc, one call)

Both are checked against numpy.

    python examples/tucker_layer.py [--small]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import tcc


def hosvd_factors(x: np.ndarray, ranks: tuple[int, int, int]) -> list[np.ndarray]:
    """Leading left singular vectors of each mode's unfolding."""
    factors = []
    for mode, rank in enumerate(ranks):
        unfolding = np.moveaxis(x, mode, 0).reshape(x.shape[mode], -1)
        u, _, _ = np.linalg.svd(unfolding, full_matrices=False)
        factors.append(np.ascontiguousarray(u[:, :rank]))
    return factors


def low_rank_tensor(shape, ranks, rng, noise: float = 1e-4) -> np.ndarray:
    core = rng.standard_normal(ranks)
    factors = [
        np.linalg.qr(rng.standard_normal((n, r)))[0] for n, r in zip(shape, ranks, strict=True)
    ]
    x = np.einsum("abc,ia,jb,kc->ijk", core, *factors, optimize=True)
    return x + noise * rng.standard_normal(shape)


def timed(function):
    """The result of one call and its wall time (for first calls, which compile)."""
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def median_time(function, repeat: int = 5) -> float:
    """Median wall time of ``repeat`` calls after one warm-up call."""
    function()
    return float(np.median([timed(function)[1] for _ in range(repeat)]))


def compression(small: bool, rng: np.random.Generator) -> None:
    shape, ranks = ((12, 10, 8), (3, 3, 2)) if small else ((96, 96, 64), (16, 16, 8))
    x = low_rank_tensor(shape, ranks, rng)
    u1, u2, u3 = hosvd_factors(x, ranks)
    print(f"HOSVD of a {shape} tensor at ranks {ranks}")

    core, t_first = timed(lambda: tcc.einsum("ijk,ia,jb,kc->abc", x, u1, u2, u3))
    x_hat, t_first_rec = timed(lambda: tcc.einsum("abc,ia,jb,kc->ijk", core, u1, u2, u3))
    np.testing.assert_allclose(
        core, np.einsum("ijk,ia,jb,kc->abc", x, u1, u2, u3, optimize=True), rtol=1e-9,
        atol=1e-9)
    np.testing.assert_allclose(
        x_hat, np.einsum("abc,ia,jb,kc->ijk", core, u1, u2, u3, optimize=True), rtol=1e-9,
        atol=1e-9)
    error = np.linalg.norm(x - x_hat) / np.linalg.norm(x)
    ratio = x.size / (core.size + u1.size + u2.size + u3.size)
    print(f"  compression {ratio:.1f}x, relative reconstruction error {error:.2e}")
    assert error < 1e-2, error
    print(f"  first calls (compile): project {t_first:.3f} s, reconstruct {t_first_rec:.3f} s")

    t_tcc = median_time(lambda: tcc.einsum("abc,ia,jb,kc->ijk", core, u1, u2, u3))
    t_np = median_time(lambda: np.einsum("abc,ia,jb,kc->ijk", core, u1, u2, u3, optimize=True))
    print(f"  reconstruct: tcc {t_tcc * 1e3:.3f} ms, "
          f"numpy.einsum(optimize=True) {t_np * 1e3:.3f} ms")


def factorized_layer(small: bool, rng: np.random.Generator) -> None:
    if small:
        n, (p, q, r, s), (a, b, c, d) = 4, (4, 4, 3, 3), (2, 2, 2, 2)
    else:
        n, (p, q, r, s), (a, b, c, d) = 256, (32, 32, 32, 32), (8, 8, 8, 8)
    x = rng.standard_normal((n, p, q)).astype(np.float32)
    core = rng.standard_normal((a, b, c, d)).astype(np.float32)
    fa, fb, fc, fd = (rng.standard_normal(shape).astype(np.float32) / np.sqrt(shape[0])
                      for shape in ((p, a), (q, b), (r, c), (s, d)))
    equation = "npq,pa,qb,abcd,rc,sd->nrs"
    dense = p * q * r * s
    kept = core.size + fa.size + fb.size + fc.size + fd.size
    print(f"Tucker-factorized layer {p * q} -> {r * s} features, batch {n}: "
          f"{kept} weights instead of {dense}")

    operands = (x, fa, fb, core, fc, fd)
    y, t_first = timed(lambda: tcc.einsum(equation, *operands))
    expected = np.einsum(equation, *operands, optimize=True)
    np.testing.assert_allclose(y, expected, rtol=2e-4, atol=2e-4 * np.abs(expected).max())
    print(f"  first call (compile): {t_first:.3f} s")
    t_tcc = median_time(lambda: tcc.einsum(equation, *operands))
    t_np = median_time(lambda: np.einsum(equation, *operands, optimize=True))
    print(f"  forward: tcc {t_tcc * 1e3:.3f} ms, numpy.einsum(optimize=True) {t_np * 1e3:.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny sizes (a smoke test)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    compression(args.small, rng)
    factorized_layer(args.small, rng)
    print("OK: tcc matches numpy")


if __name__ == "__main__":
    main()

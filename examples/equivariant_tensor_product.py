"""The tensor product of an E(3)-equivariant neural network (e3nn / NequIP / MACE style).

Each of ``z`` edges carries ``u`` channels of vector (l=1) features x1[z,u,i] and ``v``
channels of l=1 edge features x2[z,v,j] (e.g. the edge direction). The tensor product
couples them through Clebsch-Gordan coefficients cg[i,j,k] into l=0, 1 and 2 outputs
(1 + 3 + 5 = 9 components) and mixes channels with weights w[u,v,w]:

    out[z,w,k] = einsum("zui,zvj,ijk,uvw->zwk", x1, x2, cg, w)

The coefficients are the real ones for 1 x 1 -> 0 + 1 + 2 in the Cartesian basis, and
sparse (20 of 81 entries are non-zero): l=0 is delta_ij / sqrt(3) (dot product),
l=1 is epsilon_ijk / sqrt(2) (cross product), l=2 is an orthonormal basis of symmetric
traceless matrices. The channel weights are random (they are learned in a network).

The script checks tcc against numpy and that the result is equivariant: rotating the
inputs by R rotates the output by the block-diagonal Wigner matrix D(R) = (1, R, D2(R)).

    python examples/equivariant_tensor_product.py [--small]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import tcc

EQUATION = "zui,zvj,ijk,uvw->zwk"


def clebsch_gordan_1x1() -> np.ndarray:
    """cg[i, j, k] for 1 x 1 -> 0 (k=0), 1 (k=1..3), 2 (k=4..8), Cartesian real basis."""
    cg = np.zeros((3, 3, 9))
    cg[:, :, 0] = np.eye(3) / np.sqrt(3)
    for i, j, k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):  # Levi-Civita
        cg[i, j, 1 + k] = 1 / np.sqrt(2)
        cg[j, i, 1 + k] = -1 / np.sqrt(2)
    s2, s6 = 1 / np.sqrt(2), 1 / np.sqrt(6)
    symmetric_traceless = [
        {(0, 1): s2, (1, 0): s2},
        {(1, 2): s2, (2, 1): s2},
        {(0, 2): s2, (2, 0): s2},
        {(0, 0): s2, (1, 1): -s2},
        {(2, 2): 2 * s6, (0, 0): -s6, (1, 1): -s6},
    ]
    for m, entries in enumerate(symmetric_traceless):
        for (i, j), value in entries.items():
            cg[i, j, 4 + m] = value
    return cg


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def median_time(function, repeat: int = 5, slow: float = 0.5) -> float:
    """Median of ``repeat`` calls after a warm-up; a warm-up slower than ``slow`` s is kept."""
    times = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
        if times[0] > slow:
            return times[0]
    return float(np.median(times[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny sizes (a smoke test)")
    args = parser.parse_args()
    edges, channels = (8, 3) if args.small else (512, 16)

    rng = np.random.default_rng(0)
    cg = clebsch_gordan_1x1().astype(np.float32)
    assert np.allclose(cg.reshape(9, 9).T @ cg.reshape(9, 9), np.eye(9), atol=1e-6)
    x1 = rng.standard_normal((edges, channels, 3)).astype(np.float32)
    x2 = rng.standard_normal((edges, channels, 3)).astype(np.float32)
    weights = (rng.standard_normal((channels,) * 3) / channels).astype(np.float32)
    print(f"tensor product 1 x 1 -> 0+1+2: {edges} edges, {channels} channels; "
          f"{np.count_nonzero(cg)}/{cg.size} CG coefficients non-zero")

    start = time.perf_counter()
    out = tcc.einsum(EQUATION, x1, x2, cg, weights)
    print(f"tcc.einsum first call (compile): {time.perf_counter() - start:.3f} s")
    expected = np.einsum(EQUATION, x1, x2, cg, weights, optimize=True)
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4 * scale)

    # Equivariance: D(R) = cg^T (R x R) cg is block diagonal, and out(R x) = out(x) D(R)^T.
    rotation = random_rotation(rng).astype(np.float32)
    wigner = np.einsum("ijk,ia,jb,abl->kl", cg, rotation, rotation, cg)
    blocks = np.zeros((9, 9), bool)
    blocks[0, 0] = True
    blocks[1:4, 1:4] = True
    blocks[4:, 4:] = True
    assert np.abs(wigner[~blocks]).max() < 1e-5, "CG coefficients are not equivariant"
    np.testing.assert_allclose(wigner[1:4, 1:4], rotation, atol=1e-5)
    rotated = tcc.einsum(EQUATION, x1 @ rotation.T, x2 @ rotation.T, cg, weights)
    np.testing.assert_allclose(rotated, out @ wigner.T, rtol=1e-4, atol=1e-4 * scale)
    print("OK: tcc matches numpy, and the output rotates with D(R) = (1, R, D2(R))")

    t_tcc = median_time(lambda: tcc.einsum(EQUATION, x1, x2, cg, weights))
    t_numpy = median_time(lambda: np.einsum(EQUATION, x1, x2, cg, weights, optimize=True))
    print(f"tcc.einsum:                   {t_tcc * 1e3:8.3f} ms")
    print(f"numpy.einsum(optimize=True):  {t_numpy * 1e3:8.3f} ms")
    try:
        import opt_einsum
    except ImportError:
        print("opt_einsum.contract:          - (not installed)")
    else:
        t_oe = median_time(lambda: opt_einsum.contract(EQUATION, x1, x2, cg, weights))
        print(f"opt_einsum.contract:          {t_oe * 1e3:8.3f} ms")


if __name__ == "__main__":
    main()

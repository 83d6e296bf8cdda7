"""Multi-head scaled dot-product attention, the core of a transformer layer.

For queries, keys and values of shape (batch, heads, tokens, head_dim):

    scores  = einsum("bhqd,bhkd->bhqk", Q, K) / sqrt(head_dim)    (tcc)
    weights = softmax(scores, axis=-1)                            (numpy)
    out     = einsum("bhqk,bhkd->bhqd", weights, V)               (tcc)

The two contractions run as tcc kernels: once through ``tcc.einsum`` (compiled on the
first call, cached after) and once through ``tcc.compile`` for the fixed shape, the way
a serving loop would hold on to its kernels. Everything is checked against numpy.

    python examples/attention_scores.py [--small]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

import tcc


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def attention_numpy(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    scores = np.einsum("bhqd,bhkd->bhqk", q, k, optimize=True) / math.sqrt(q.shape[-1])
    return np.einsum("bhqk,bhkd->bhqd", softmax(scores), v, optimize=True)


def attention_tcc(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    scores = tcc.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(q.shape[-1])
    return tcc.einsum("bhqk,bhkd->bhqd", softmax(scores), v)


def best_of(function, repeat: int = 5) -> float:
    function()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny sizes (a smoke test)")
    args = parser.parse_args()
    batch, heads, tokens, head_dim = (1, 2, 16, 8) if args.small else (4, 8, 256, 64)

    rng = np.random.default_rng(0)
    shape = (batch, heads, tokens, head_dim)
    q, k, v = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
    print(f"attention: batch={batch} heads={heads} tokens={tokens} head_dim={head_dim}")

    start = time.perf_counter()
    out = attention_tcc(q, k, v)
    print(f"tcc.einsum first call (compiles both kernels): {time.perf_counter() - start:.3f} s")
    expected = attention_numpy(q, k, v)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)

    # Fixed shapes: compile once, call many times.
    start = time.perf_counter()
    scores_kernel = tcc.compile("bhqd,bhkd->bhqk", shape, shape, dtype="float32")
    values_kernel = tcc.compile("bhqk,bhkd->bhqd", (batch, heads, tokens, tokens), shape,
                                dtype="float32")
    print(f"tcc.compile of both kernels: {time.perf_counter() - start:.3f} s "
          f"(in-memory cache hits after the einsum calls above)")
    scale = 1.0 / math.sqrt(head_dim)

    def attention_kernels() -> np.ndarray:
        return values_kernel(softmax(scores_kernel(q, k) * scale), v)

    np.testing.assert_allclose(attention_kernels(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(scores_kernel(q, k), np.einsum("bhqd,bhkd->bhqk", q, k),
                               rtol=1e-4, atol=1e-4)
    print("OK: tcc matches numpy")

    t_numpy = best_of(lambda: attention_numpy(q, k, v))
    t_einsum = best_of(lambda: attention_tcc(q, k, v))
    t_kernels = best_of(attention_kernels)
    t_scores = best_of(lambda: scores_kernel(q, k))
    t_scores_np = best_of(lambda: np.einsum("bhqd,bhkd->bhqk", q, k, optimize=True))
    print(f"attention, numpy.einsum(optimize=True) + softmax: {t_numpy * 1e3:8.3f} ms")
    print(f"attention, tcc.einsum + softmax:                  {t_einsum * 1e3:8.3f} ms")
    print(f"attention, tcc.compile'd kernels + softmax:       {t_kernels * 1e3:8.3f} ms")
    print(f"scores only: Kernel {t_scores * 1e3:.3f} ms, "
          f"numpy.einsum(optimize=True) {t_scores_np * 1e3:.3f} ms")


if __name__ == "__main__":
    main()

"""Attention on an NVIDIA GPU: scores on the tensor cores, a fused row reduction, a product.

For queries, keys and values of shape (batch, heads, tokens, head_dim):

    scores = einsum("bhqd,bhkd->bhqk", Q, K) / sqrt(head_dim)   (tcc, tf32 tensor cores)
    norm   = einsum("bhqk->bhq", exp(scores - max))              (tcc, warp reduction)
    out    = einsum("bhqk,bhkd->bhqd", weights, V)               (tcc, exact float32)

The arrays stay on the device between the steps (tcc's DeviceArray, or any array with
``__cuda_array_interface__`` such as torch or cupy tensors). Each kernel's schedule is
printed; the result is checked against numpy in float64.

Without a GPU (or without cuda-python) the same kernels are still compiled to PTX,
which needs no GPU, and their schedules and PTX sizes are printed instead.

    python examples/gpu_attention.py [--small]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import tcc
from tcc.runtime.cuda import DeviceArray, cuda_available

EQUATIONS = {  # what each step computes, with its precision
    "scores": ("bhqd,bhkd->bhqk", "tf32"),
    "norm": ("bhqk->bhq", "exact"),
    "out": ("bhqk,bhkd->bhqd", "exact"),
}


def kernels(b: int, h: int, n: int, d: int, load: bool) -> dict[str, tcc.Kernel]:
    shapes = {"scores": [(b, h, n, d)] * 2, "norm": [(b, h, n, n)],
              "out": [(b, h, n, n), (b, h, n, d)]}
    return {name: tcc.compile(eq, *shapes[name], dtype="float32", target="cuda", load=load,
                              precision=precision)
            for name, (eq, precision) in EQUATIONS.items()}


def schedules(compiled: dict[str, tcc.Kernel]) -> None:
    for name, kernel in compiled.items():
        rendered = kernel._cuda.rendered()
        for gpu in rendered.kernels:
            s = gpu.schedule
            print(f"  {name:7s} {s.template:7s} grid {s.grid} block {s.block} "
                  f"tiles {dict(s.tiles)}")
        print(f"          PTX {len(rendered.ptx) // 1024} KiB, "
              f"{rendered.ptx.count('mma.sync')} tensor-core instructions")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="small sizes (a quick check)")
    args = parser.parse_args()
    b, h, n, d = (2, 2, 64, 32) if args.small else (8, 16, 1024, 64)
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((b, h, n, d), dtype=np.float32) for _ in range(3))

    if not cuda_available():
        print("no usable CUDA GPU here: compiling to PTX only")
        schedules(kernels(b, h, n, d, load=False))
        print("OK (PTX only)")
        return 0

    compiled = kernels(b, h, n, d, load=True)
    schedules(compiled)
    dq, dk, dv = (DeviceArray.from_host(x) for x in (q, k, v))
    scores = compiled["scores"](dq, dk).numpy() / math.sqrt(d)
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True)).astype(np.float32)
    norm = compiled["norm"](DeviceArray.from_host(shifted)).numpy()
    weights = (shifted / norm[..., None]).astype(np.float32)
    out = compiled["out"](DeviceArray.from_host(weights), dv).numpy()

    q64, k64, v64 = (x.astype(np.float64) for x in (q, k, v))
    s64 = np.einsum("bhqd,bhkd->bhqk", q64, k64) / math.sqrt(d)
    w64 = np.exp(s64 - s64.max(axis=-1, keepdims=True))
    w64 /= w64.sum(axis=-1, keepdims=True)
    expected = np.einsum("bhqk,bhkd->bhqd", w64, v64)
    error = np.linalg.norm(out - expected) / np.linalg.norm(expected)
    print(f"relative error against float64 numpy: {error:.1e} (tf32 scores: about 1e-3)")
    assert error < 1e-2, error
    print("OK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Permuted-index contractions (coupled-cluster style) and the demo suite: tcc vs
opt_einsum and numpy.einsum(optimize=True), same run, with GFLOP/s and % of peak.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/contractions.py [--warm]

Ratios are medians over rounds that time the contenders in turn, each call after 0.3 s of
idle (OpenBLAS's threads settle); ``--warm`` adds an untimed call of the same contender
right before each timed one (data in cache, threads awake: a loop calling it). numpy and
opt_einsum transpose operands and call BLAS; tcc packs straight from the strided tensors
into its GETT micro-kernel.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine  # noqa: E402

import tcc  # noqa: E402
from tcc.demo_suite import (  # noqa: E402
    BLAS_SETTLE_S,
    SUITE,
    blas_description,
    blas_environment_warning,
    interleaved_times,
    opt_einsum_contract,
    paired_ratio,
    shapes_from_sizes,
)

# (equation, per-index sizes, dtype)
PERMUTED = [
    ("abcd,aebf->dfce", dict(a=72, b=72, c=72, d=72, e=72, f=72), "float32"),
    ("abcd,aebf->dfce", dict(a=48, b=48, c=48, d=48, e=48, f=48), "float64"),
    ("abc,bda->dc", dict(a=312, b=296, c=296, d=312), "float32"),
    ("bhqd,bhkd->bhqk", dict(b=8, h=8, q=256, k=256, d=64), "float32"),
    ("abcdef,dega->gfbc", dict(a=24, b=16, c=16, d=24, e=16, f=16, g=24), "float32"),
    ("abcdef,gdab->efgc", dict(a=24, b=16, c=16, d=24, e=16, f=16, g=24), "float32"),
    ("ijkl,klmn->ijmn", dict(i=32, j=32, k=32, l=32, m=32, n=32), "float64"),
    ("ik,kj->ij", dict(i=1024, k=1024, j=1024), "complex64"),
    ("abcd,aebf->dfce", dict(a=24, b=24, c=24, d=24, e=24, f=24), "complex128"),
]


def flop_count(eq: str, sizes: dict[str, int]) -> float:
    return 2.0 * math.prod(sizes[c] for c in set(eq.replace(",", "").replace("->", "")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="halve every size")
    parser.add_argument("--warm", action="store_true", help="time warm calls")
    args = parser.parse_args()
    warning = blas_environment_warning()
    if warning:
        print(warning)
    print(blas_description())
    peaks = {d: machine.measured_peak_gflops(d) for d in ("float32", "float64")}
    for d in peaks:
        print(machine.describe(d))
    contract = opt_einsum_contract()
    rng = np.random.default_rng(0)
    header = (f"{'einsum':20} {'dtype':8} {'tcc ms':>9} {'oe ms':>9} {'np-opt ms':>9} "
              f"{'vs oe':>6} {'vs np':>6} {'tcc GF/s':>8} {'%peak':>6}")
    print("\n== permuted contractions\n" + header)
    ratios_oe: list[float] = []
    ratios_np: list[float] = []

    def measure(eq: str, shapes, dtype: str, digits: int, flops: float | None) -> None:
        ops = [rng.standard_normal(s).astype(dtype) for s in shapes]
        if np.dtype(dtype).kind == "c":
            ops = [o + 1j * rng.standard_normal(o.shape).astype(dtype) for o in ops]
        kernel = tcc.compile(eq, *shapes, dtype=dtype)
        got, want = kernel(*ops), np.einsum(eq, *ops, optimize=True)
        ok = np.allclose(got, want, rtol=1e-3, atol=1e-2)
        contenders = [lambda: kernel(*ops), lambda: np.einsum(eq, *ops, optimize=True)]
        if contract:
            contenders.append(lambda: contract(eq, *ops))
        times = interleaved_times(contenders, 7, settle=BLAS_SETTLE_S, warm=int(args.warm))
        t_tcc, t_np = statistics.median(times[0]), statistics.median(times[1])
        t_oe = statistics.median(times[2]) if contract else float("nan")
        vs_oe = paired_ratio(times[2], times[0]) if contract else float("nan")
        vs_np = paired_ratio(times[1], times[0])
        ratios_oe.append(vs_oe)
        ratios_np.append(vs_np)
        rate = ""
        if flops is not None:
            gflops = flops / t_tcc / 1e9
            peak = peaks["float32" if dtype in ("float32", "complex64") else "float64"]
            rate = f"{gflops:>8.1f} {100 * gflops / peak:>5.0f}%"
        print(f"{eq:20} {dtype:8} {t_tcc * 1e3:>9.{digits}f} {t_oe * 1e3:>9.{digits}f} "
              f"{t_np * 1e3:>9.{digits}f} {vs_oe:>6.2f} {vs_np:>6.2f} {rate}"
              f"{'' if ok else '  WRONG'}")

    for eq, sizes, dtype in PERMUTED:
        if args.quick:
            sizes = {k: max(2, v // 2) for k, v in sizes.items()}
        real = 4 if np.dtype(dtype).kind == "c" else 1  # a complex multiply-add is 4 real
        measure(eq, shapes_from_sizes(eq, sizes), dtype, 2, real * flop_count(eq, sizes))
    print("\n== the tcc demo suite\n" + header)
    for case in SUITE:
        sizes = dict(case.quick_sizes if args.quick else case.sizes)
        measure(case.equation, shapes_from_sizes(case.equation, sizes), case.dtype, 3, None)
    geo = lambda r: float(np.exp(np.mean(np.log(r))))  # noqa: E731
    print(f"\ngeomean speedup vs opt_einsum {geo(ratios_oe):.2f} (min {min(ratios_oe):.2f}); "
          f"vs numpy.einsum(optimize=True) {geo(ratios_np):.2f} (min {min(ratios_np):.2f})")


if __name__ == "__main__":
    main()

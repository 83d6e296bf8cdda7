"""GEMM-shaped einsums: tcc vs numpy.matmul (OpenBLAS) in the same run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/gemm.py [--quick]

For `ik,kj->ij`, `ki,kj->ij` and `ik,jk->ij` at 512..4096 in float32 and float64, prints
tcc's time, numpy's (the matching matmul on transposed views, which OpenBLAS runs without a
copy), their ratio (the median over rounds that time both in turn), GFLOP/s and % of the
machine's peak (see benchmarks/machine.py). Then linear layers at small batches: `bi,oi->bo`
(``x @ W.T``, a weight stored out x in as deep-learning frameworks keep it) and `bi,io->bo`
(``x @ W``), batch 1-128, in = 1024 or 4096, out = 4096.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine  # noqa: E402

import tcc  # noqa: E402
from tcc.demo_suite import (  # noqa: E402
    BLAS_SETTLE_S,
    blas_description,
    blas_environment_warning,
    interleaved_times,
    paired_ratio,
)

FORMS = {
    "ik,kj->ij": lambda a, b: a @ b,
    "ki,kj->ij": lambda a, b: a.T @ b,
    "ik,jk->ij": lambda a, b: a @ b.T,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 512 and 1024 only")
    parser.add_argument("--sizes", type=int, nargs="*", default=None)
    parser.add_argument("--linear-only", action="store_true", help="the linear layers only")
    args = parser.parse_args()
    sizes = args.sizes or ([512, 1024] if args.quick else [512, 1024, 2048, 4096])
    warning = blas_environment_warning()
    if warning:
        print(warning)
    print(blas_description())
    peaks = {}
    for dtype in ("float32", "float64"):
        print(machine.describe(dtype))
        peaks[dtype] = machine.measured_peak_gflops(dtype)
    print(f"{'einsum':10} {'dtype':8} {'n':>5} {'tcc ms':>9} {'numpy ms':>9} {'tcc/np':>7} "
          f"{'tcc GF/s':>9} {'np GF/s':>8} {'tcc %pk':>7}")
    ratios = []
    rng = np.random.default_rng(0)
    for dtype in () if args.linear_only else ("float32", "float64"):
        for n in sizes:
            a = rng.standard_normal((n, n)).astype(dtype)
            b = rng.standard_normal((n, n)).astype(dtype)
            for eq, numpy_form in FORMS.items():
                kernel = tcc.compile(eq, a.shape, b.shape, dtype=dtype)
                got = kernel(a, b)
                want = numpy_form(a, b)
                tol = 1e-3 if dtype == "float32" else 1e-9
                ok = np.allclose(got, want, rtol=tol, atol=tol * n)
                repeat = 11 if n < 2048 else 9 if n < 4096 else 7
                t_tcc, t_np, ratio = against_numpy(kernel, numpy_form, a, b, repeat)
                flops = 2.0 * n**3
                if n >= 1024:
                    ratios.append(ratio)
                print(f"{eq:10} {dtype:8} {n:>5} {t_tcc * 1e3:>9.2f} {t_np * 1e3:>9.2f} "
                      f"{ratio:>7.2f} {flops / t_tcc / 1e9:>9.1f} {flops / t_np / 1e9:>8.1f} "
                      f"{100 * flops / t_tcc / 1e9 / peaks[dtype]:>6.0f}%"
                      f"{'' if ok else '  WRONG'}")
    if ratios:
        geomean = float(np.exp(np.mean(np.log(ratios))))
        print(f"n >= 1024: tcc/numpy speed ratio geomean {geomean:.2f}, min {min(ratios):.2f}")
    linear_layers(rng)


def against_numpy(kernel, numpy_form, a: np.ndarray, b: np.ndarray, repeat: int,
                  warm: int = 0) -> tuple[float, float, float]:
    """Median times of tcc and numpy in alternating rounds, and numpy/tcc paired."""
    contenders = [lambda: kernel(a, b), lambda: numpy_form(a, b)]
    tcc_times, np_times = interleaved_times(contenders, repeat, settle=BLAS_SETTLE_S, warm=warm)
    return (statistics.median(tcc_times), statistics.median(np_times),
            paired_ratio(np_times, tcc_times))


LINEAR = {"bi,oi->bo": lambda x, w: x @ w.T, "bi,io->bo": lambda x, w: x @ w}


def linear_layers(rng: np.random.Generator) -> None:
    """Small batches through a weight: memory-bound at batch 1-8 (the weight is read once
    per call), compute-bound from batch 128 or so."""
    print(f"\n{'linear layer':12} {'dtype':8} {'batch':>5} {'in':>5} {'out':>5} {'tcc ms':>8} "
          f"{'numpy ms':>9} {'tcc/np':>7} {'tcc GF/s':>9}")
    ratios = []
    for dtype in ("float32", "float64"):
        for inputs in (1024, 4096):
            for batch in (1, 8, 32, 128):
                x = rng.standard_normal((batch, inputs)).astype(dtype)
                for eq, numpy_form in LINEAR.items():
                    w = rng.standard_normal((4096, inputs) if eq == "bi,oi->bo"
                                            else (inputs, 4096)).astype(dtype)
                    kernel = tcc.compile(eq, x.shape, w.shape, dtype=dtype)
                    tol = 1e-3 if dtype == "float32" else 1e-9
                    ok = np.allclose(kernel(x, w), numpy_form(x, w), rtol=tol, atol=tol * 64)
                    t_tcc, t_np, ratio = against_numpy(kernel, numpy_form, x, w, 11, warm=1)
                    ratios.append(ratio)
                    flops = 2.0 * batch * inputs * 4096
                    print(f"{eq:12} {dtype:8} {batch:>5} {inputs:>5} {4096:>5} {t_tcc * 1e3:>8.3f} "
                          f"{t_np * 1e3:>9.3f} {ratio:>7.2f} {flops / t_tcc / 1e9:>9.1f}"
                          f"{'' if ok else '  WRONG'}", flush=True)
    geomean = float(np.exp(np.mean(np.log(ratios))))
    print(f"linear layers: tcc/numpy speed ratio geomean {geomean:.2f}, min {min(ratios):.2f}")


if __name__ == "__main__":
    main()

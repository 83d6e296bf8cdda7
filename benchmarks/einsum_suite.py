"""tcc vs numpy.einsum and opt_einsum on the demo suite, plus call overhead and single kernels.

Run it with OpenBLAS free to pick its best kernel for this CPU (some environments pin a
slower one through two variables; the script warns when they are set):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/einsum_suite.py [--quick]

Printed, all measured in this run (median of warm calls, time.perf_counter):

1. the demo suite (tcc.demo_suite.SUITE): tcc's default einsum vs numpy.einsum with
   optimize=False and True and vs opt_einsum.contract, with geometric means of the ratios;
2. cold compile time and warm per-call overhead on 4x4 operands: tcc.einsum, a
   tcc.compile'd Kernel and numpy.einsum;
3. single-kernel patterns numpy does not hand to BLAS, at sizes where a call takes about
   1-10 ms: tcc with optimize=False (one loop nest) vs numpy.einsum(optimize=False).

Ratios are baseline time / tcc time: above 1 means tcc is faster.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import tcc  # noqa: E402
from tcc import demo_suite  # noqa: E402
from tcc.options import default_options, set_default_options  # noqa: E402
from tcc.report import (  # noqa: E402
    demo_table,
    format_ratio,
    format_seconds,
    format_shapes,
    format_table,
)


def per_call_time(function: Callable[[], object], calls: int = 2000, batches: int = 7) -> float:
    """Median over ``batches`` of the mean time of ``calls`` back-to-back calls."""
    for _ in range(100):
        function()
    samples = []
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def geomean(values: Sequence[float]) -> float | None:
    values = [v for v in values if v and v > 0 and math.isfinite(v)]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def print_header() -> None:
    print(demo_suite.environment_description())
    print(demo_suite.blas_description())
    try:
        import threadpoolctl

        for info in threadpoolctl.threadpool_info():
            print(f"  threadpoolctl: {info}")
    except ImportError:
        print("  threadpoolctl not installed: pip install '.[bench]'")
    warning = demo_suite.blas_environment_warning()
    if warning:
        print(warning)


# -- 1. the suite -------------------------------------------------------------------------


def run_suite(quick: bool, repeat: int) -> bool:
    print("\n== 1. demo suite: tcc.einsum (optimize='auto') vs numpy.einsum and opt_einsum")
    results = []
    for case in demo_suite.SUITE:
        result = demo_suite.run_case(case, quick=quick, repeat=repeat)
        results.append(result)
        if not result.ok:
            print(f"FAIL {case.name}: {result.error}")
    print(demo_table(results))
    rows = []
    for label, attribute in (
        ("numpy.einsum(optimize=False)", "numpy_s"),
        ("numpy.einsum(optimize=True)", "numpy_opt_s"),
        ("opt_einsum.contract", "opt_einsum_s"),
    ):
        ratios = [
            getattr(r, attribute) / r.tcc_s
            for r in results
            if r.ok and getattr(r, attribute) is not None
        ]
        mean = geomean(ratios)
        wins = sum(1 for x in ratios if x > 1)
        rows.append([label, "-" if mean is None else f"{mean:.3g}x", f"{wins}/{len(ratios)}"])
    print()
    print(format_table(["baseline", "geomean baseline/tcc", "tcc faster in"], rows,
                       [False, True, True]))
    return all(r.ok for r in results)


# -- 2. compile time and call overhead ----------------------------------------------------


OVERHEAD_CASES = (("ij,jk->ik", ((4, 4), (4, 4))), ("ij,ij,ij->i", ((4, 4),) * 3))


def run_overhead(quick: bool) -> None:
    print("\n== 2. cold compile and warm per-call overhead (4x4 float64 operands)")
    rng = np.random.default_rng(1)
    calls = 300 if quick else 2000
    rows = []
    for equation, shapes in OVERHEAD_CASES:
        operands = [rng.standard_normal(s) for s in shapes]
        start = time.perf_counter()
        tcc.einsum(equation, *operands)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        kernel = tcc.compile(equation, *shapes, dtype="float64")
        compile_s = time.perf_counter() - start
        tcc_call = per_call_time(lambda e=equation, o=operands: tcc.einsum(e, *o), calls)
        kernel_call = per_call_time(lambda k=kernel, o=operands: k(*o), calls)
        numpy_call = per_call_time(
            lambda e=equation, o=operands: np.einsum(e, *o, optimize=False), calls
        )
        rows.append([
            equation, format_seconds(cold), format_seconds(compile_s),
            format_seconds(tcc_call), format_seconds(kernel_call), format_seconds(numpy_call),
            format_ratio(numpy_call, tcc_call), format_ratio(numpy_call, kernel_call),
        ])
    print(format_table(
        ["equation", "cold einsum", "tcc.compile", "tcc.einsum/call", "Kernel/call",
         "numpy/call", "np/einsum", "np/Kernel"],
        rows, [False] + [True] * 7,
    ))
    print("cold einsum: first tcc.einsum call, no disk cache; tcc.compile: same equation "
          "again (in-memory object cache); per call: median of batch means")


# -- 3. single loop nests that numpy does not send to BLAS --------------------------------


SINGLE_KERNELS = (
    ("hadamard_reduce", "ij,ij,ij->i", {"i": 2048, "j": 2048}, "float32"),
    ("diagonal_sum", "iij->j", {"i": 32, "j": 32768}, "float32"),
    ("bilinear", "bi,oij,bj->bo", {"b": 32, "o": 32, "i": 64, "j": 64}, "float32"),
    ("triple_product", "ia,ja,ka->ijk", {"i": 64, "j": 64, "k": 64, "a": 32}, "float32"),
)


def run_single_kernels(quick: bool, repeat: int) -> bool:
    print("\n== 3. single loop nests: tcc (optimize=False) vs numpy.einsum(optimize=False)")
    rng = np.random.default_rng(2)
    rows, all_ok = [], True
    for name, equation, sizes, dtype in SINGLE_KERNELS:
        if quick:
            sizes = {k: max(2, v // 8) for k, v in sizes.items()}
        shapes = demo_suite.shapes_from_sizes(equation, sizes)
        operands = [rng.standard_normal(s).astype(dtype) for s in shapes]
        start = time.perf_counter()
        result = tcc.einsum(equation, *operands, optimize=False)
        compile_s = time.perf_counter() - start
        reference = np.einsum(equation, *operands, optimize=False)
        ok = demo_suite.check(result, reference, dtype)
        all_ok &= ok
        tcc_s = demo_suite.median_time(
            lambda e=equation, o=operands: tcc.einsum(e, *o, optimize=False), repeat)
        numpy_s = demo_suite.median_time(
            lambda e=equation, o=operands: np.einsum(e, *o, optimize=False), repeat)
        rows.append([
            name, equation, format_shapes(shapes), dtype, "OK" if ok else "FAIL",
            format_seconds(compile_s), format_seconds(tcc_s), format_seconds(numpy_s),
            format_ratio(numpy_s, tcc_s),
        ])
    print(format_table(
        ["case", "equation", "shapes", "dtype", "check", "compile", "tcc", "numpy", "np/tcc"],
        rows, [False] * 5 + [True] * 4,
    ))
    return all_ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--repeat", type=int, default=7, help="timed calls per median")
    args = parser.parse_args(argv)
    set_default_options(default_options().with_(disk_cache=False))  # cold compiles
    print_header()
    ok = run_suite(args.quick, args.repeat)
    run_overhead(args.quick)
    ok &= run_single_kernels(args.quick, args.repeat)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

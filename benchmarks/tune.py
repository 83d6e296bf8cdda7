"""The autotuner against tcc's default schedule, numpy.matmul and opt_einsum, in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/tune.py [--trials 48]

For each workload: tune (evolutionary) into a private database, then in this process time
tcc's default schedule (``tuning=False``), the tuned kernel (``tcc.compile`` picking the
record up) and numpy / opt_einsum in alternating rounds, each timed call right after an
untimed one of the same contender (warm, as the tuner measures); "%pk" is the default's
and the tuned kernel's GFLOP/s against an FMA-chain probe timed in the same rounds, the
median over rounds (``machine.paired_percent``: a peak probed once and set beside a
kernel timed minutes later would read the machine's drift as the kernel's distance from
the peak). Then, for every workload,
every strategy's trials to reach 95% of its own final best. Ratios: baseline time / tcc
time, the median over rounds (above 1: tcc is faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine  # noqa: E402
import numpy as np  # noqa: E402
import opt_einsum  # noqa: E402

import tcc  # noqa: E402
from tcc.demo_suite import BLAS_SETTLE_S, interleaved_times, paired_ratio  # noqa: E402
from tcc.options import default_options  # noqa: E402
from tcc.tune import tune  # noqa: E402
from tcc.tune.space import Workload  # noqa: E402

WORKLOADS = [
    ("gemm 1024", "ik,kj->ij", [(1024, 1024), (1024, 1024)]),
    ("attention scores", "bhqd,bhkd->bhqk", [(8, 8, 256, 64), (8, 8, 256, 64)]),
    ("4-D permuted", "abcd,aebf->dfce", [(32, 32, 32, 32), (32, 32, 32, 32)]),
    ("6-D", "abcdef,dfgh->hagbce", [(12,) * 6, (12,) * 4]),
]
LARGE = ("gemm 2048", "ik,kj->ij", [(2048, 2048), (2048, 2048)])


def baseline(eq: str, arrays: list[np.ndarray]):
    if len(arrays) == 2 and eq == "ik,kj->ij":
        return "numpy.matmul", lambda: np.matmul(*arrays)
    if eq == "bhqd,bhkd->bhqk":
        return "numpy.matmul", lambda: np.matmul(arrays[0], arrays[1].swapaxes(-1, -2))
    return "opt_einsum", lambda: opt_einsum.contract(eq, *arrays)


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    parts = [f"{i.get('internal_api')} {i.get('version')} core={i.get('architecture')} "
             f"threads={i.get('num_threads')}" for i in threadpool_info()
             if i.get("user_api") == "blas"]
    return "; ".join(parts) or "no BLAS found"


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[k])) for r in [header, *rows]) for k in range(len(header))]
    lines = ["  ".join(str(c).rjust(w) for c, w in zip(header, widths, strict=True))]
    lines += ["  ".join(str(c).rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=48)
    parser.add_argument("--strategy-trials", type=int, default=32)
    parser.add_argument("--budget", type=float, default=100.0, help="seconds per tuning run")
    parser.add_argument("--large", action="store_true", help="also GEMM 2048")
    args = parser.parse_args()
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if os.environ.get(name):
            print(f"warning: {name}={os.environ[name]} pins OpenBLAS's kernel", file=sys.stderr)
    print(f"BLAS: {blas_info()}")
    threads = default_options().num_threads
    # the FMA peak as the best of three probes: a probe that shares the cores with another
    # tenant's burst reads low, and a low peak would flatter every "% of peak"
    peak = max(machine.measured_peak_gflops("float32") for _ in range(3))
    print(f"fp32 peak: {peak:.0f} GFLOP/s measured now (FMA chains on {threads} threads, best "
          f"of 3); %pk below: against the same probe in the same rounds")
    print(f"threads: {threads}; trials per workload: {args.trials}; "
          f"load average {os.getloadavg()[0]:.2f}")
    workdir = tempfile.mkdtemp(prefix="tcc-bench-tune-")
    options = default_options().with_(cache_dir=workdir)
    db = os.path.join(workdir, "tuning.db")
    rng = np.random.default_rng(0)
    rows, results = [], {}
    for label, eq, shapes in WORKLOADS + ([LARGE] if args.large else []):
        result = tune(eq, *shapes, trials=args.trials, time_budget=args.budget, db=db,
                      quiet=True, options=options, early_stop=None)
        results[label] = result
        arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        flops = Workload.of(eq, shapes, "float32").flops
        default = tcc.compile(eq, *shapes, dtype="float32", options=options, tuning=False)
        tuned = tcc.compile(eq, *shapes, dtype="float32", options=options)
        expected = np.einsum(eq, *[a.astype(np.float64) for a in arrays])
        np.testing.assert_allclose(tuned(*arrays), expected, rtol=2e-3, atol=2e-3)
        base_name, base = baseline(eq, arrays)
        times = interleaved_times(
            [lambda d=default, x=arrays: d(*x), lambda t=tuned, x=arrays: t(*x), base],
            15, settle=BLAS_SETTLE_S, warm=1)
        t_default, t_tuned, t_base = (statistics.median(t) for t in times)
        applied = tuned.options.gett_params
        print(f"  {label}: tuned kernel uses {applied}", flush=True)
        out = default(*arrays)
        pk_default = machine.paired_percent(lambda d=default, x=arrays, o=out: d(*x, out=o),
                                               flops, "float32")
        pk_tuned = machine.paired_percent(lambda t=tuned, x=arrays, o=out: t(*x, out=o),
                                             flops, "float32")
        rows.append([label, f"{flops / t_default / 1e9:.1f}", f"{pk_default:.0f}%",
                     f"{flops / t_tuned / 1e9:.1f}", f"{pk_tuned:.0f}%",
                     f"{paired_ratio(times[0], times[1]):.2f}x", f"{flops / t_base / 1e9:.1f}",
                     base_name, f"{paired_ratio(times[2], times[1]):.2f}", f"{result.trials}",
                     f"{sum(result.failures.values())}", f"{result.trials_to_reach(0.95)}",
                     f"{result.elapsed:.0f}s"])
        print(f"{label}: {result.best_gflops:.1f} GFLOP/s in the tuner "
              f"({result.default_gflops:.1f} default); {result.stopped}", flush=True)
    print()
    print(table(rows, ["workload", "default GF/s", "default %pk", "tuned GF/s", "tuned %pk",
                       "tuned/default",
                       "baseline GF/s", "baseline", "baseline/tuned t", "trials", "failed",
                       "to 95%", "tune time"]))
    print()
    strategy_rows = []
    for label, eq, shapes in WORKLOADS:
        row = [label]
        for strategy in ("evolutionary", "random", "model"):
            result = tune(eq, *shapes, trials=args.strategy_trials, time_budget=args.budget,
                          strategy=strategy, seed=1, db=os.path.join(workdir, f"{strategy}.db"),
                          quiet=True, options=options)
            row.append(f"{result.best_gflops:.1f} GF/s @ {result.trials_to_reach(0.95)}"
                       f"/{result.trials}")
        strategy_rows.append(row)
        print(f"strategies done for {label}", flush=True)
    print(table(strategy_rows, ["workload", "evolutionary", "random", "model"]))
    print("(best GFLOP/s in the tuner @ trials to reach 95% of that best / trials run)")


if __name__ == "__main__":
    main()

"""The machine's floating-point peak, derived and measured, for "% of peak" columns.

Derived: cores x FMA units per core x vector lanes x 2 flops x clock, with the clock from
/proc/cpuinfo (the nominal frequency; turbo can exceed it) and 2 FMA units per core on
AVX-512 server parts. Measured: a generated kernel keeps 24 independent vector FMA chains
busy on every thread (tcc's own IR, codegen and parallel runtime), so it shows what this
machine sustains right now, load from other processes included.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import numpy as np

from tcc.ir import loops as L
from tcc.options import default_options
from tcc.passes.pipeline import vector_bits
from tcc.runtime.jit import host_target


def clock_ghz() -> float:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("cpu MHz"):
                    return float(line.split(":")[1]) / 1000.0
    except OSError:
        pass
    return 2.0


CHAINS = 24  # independent FMA chains per thread: enough to hide the FMA latency


def derived_peak_gflops(dtype: str, threads: int | None = None) -> float:
    threads = threads or default_options().num_threads
    lanes = vector_bits(host_target().features) // (8 * np.dtype(dtype).itemsize)
    fma_units = 2  # AVX-512 server cores issue two vector FMAs per cycle
    return threads * fma_units * lanes * 2 * clock_ghz()


def _fma_kernel(dtype: str, threads: int, steps: int) -> L.Kernel:
    lanes = vector_bits(host_target().features) // (8 * np.dtype(dtype).itemsize)
    chains = CHAINS
    one = L.Broadcast(L.Const(1.0000001, dtype), lanes)
    tiny = L.Broadcast(L.Const(1e-9, dtype), lanes)
    body: list[L.Stmt] = [L.Declare(f"x{c}", dtype, L.Broadcast(L.Const(float(c), dtype), lanes),
                                    lanes) for c in range(chains)]
    step = tuple(L.Assign(f"x{c}", L.Binary("add", L.Binary("mul", L.Local(f"x{c}"), one), tiny))
                 for c in range(chains))
    body.append(L.For("k", steps, step))
    total: L.Scalar = L.Local("x0")
    for c in range(1, chains):
        total = L.Binary("add", total, L.Local(f"x{c}"))
    body.append(L.Store("out", L.Affine.of({"t": lanes}), total))
    loop = L.For("t", threads, tuple(body), kind="parallel" if threads > 1 else "serial")
    out = L.Buffer("out", dtype, "out", (threads * lanes,), (1,))
    return L.Kernel("tcc_peak_probe", (out,), (loop,)), lanes, chains


def peak_probe(dtype: str, threads: int | None = None,
               steps: int = 2_000_000) -> tuple[Callable[[], object], float]:
    """A call that keeps independent vector FMA chains busy on every thread, and its
    flops: time it beside a kernel, round by round, for a "% of peak" that drifts with
    the machine's load as the kernel's own time does (see ``paired_percent``)."""
    import ctypes

    from tcc.codegen.llvm_cpu import EntryPlan, render_module
    from tcc.runtime import jit

    threads = threads or default_options().num_threads
    kernel, lanes, chains = _fma_kernel(dtype, threads, steps)
    entry = EntryPlan(f"tcc_peak_{dtype}_{threads}_{steps}", ("out",), (),
                      ((kernel.name, ("out",), ()),))
    options = default_options().with_(num_threads=threads)
    module = render_module((kernel,), entry, host_target(), threads=threads)
    address = jit.load_functions(str(module), (entry.name,), options)[entry.name]
    function = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)(address)
    out = np.zeros(threads * lanes, dtype)
    return (lambda: function(out.ctypes.data)), 2.0 * chains * lanes * steps * threads


def measured_peak_gflops(dtype: str, threads: int | None = None, steps: int = 2_000_000) -> float:
    """GFLOP/s of independent vector FMAs on every thread (best of 3 runs)."""
    probe, flops = peak_probe(dtype, threads, steps)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        probe()
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def paired_percent(function: Callable[[], object], flops: float, dtype: str,
                   rounds: int = 15, seconds: float = 0.005) -> float:
    """``function``'s GFLOP/s as a percentage of the FMA peak, both timed in the same
    rounds (alternately, each call after a warm one): the median over rounds of kernel
    rate / probe rate. A peak probed once, at the machine's best moment, set
    beside a kernel timed minutes later reads the load's drift (tens of percent here) as
    the kernel's distance from the peak. The probe runs about ``seconds`` per call."""
    from tcc.demo_suite import interleaved_times

    threads = default_options().num_threads
    lanes = vector_bits(host_target().features) // (8 * np.dtype(dtype).itemsize)
    steps = max(1000, int(seconds * 1.5e11 / (2 * CHAINS * lanes)))  # ~150 GFLOP/s a core
    probe, probe_flops = peak_probe(dtype, threads, steps)
    kernel_t, probe_t = interleaved_times([function, probe], rounds, warm=1)
    shares = [100.0 * (flops / k) / (probe_flops / p)
              for k, p in zip(kernel_t, probe_t, strict=True)]
    return statistics.median(shares)


def describe(dtype: str) -> str:
    threads = default_options().num_threads
    return (f"{dtype} peak: derived {derived_peak_gflops(dtype):.0f} GFLOP/s ({threads} cores x "
            f"2 FMA x {vector_bits(host_target().features)}-bit x 2 x {clock_ghz():.2f} GHz "
            f"nominal), measured {measured_peak_gflops(dtype):.0f} GFLOP/s (FMA chains on "
            f"{threads} threads, now); CPU {host_target().cpu}, {os.cpu_count()} cores")


if __name__ == "__main__":
    for name in ("float32", "float64"):
        print(describe(name))

"""The machine's floating-point peak, derived and measured, for "% of peak" columns.

Derived: cores x FMA units per core x vector lanes x 2 flops x clock, with the clock from
/proc/cpuinfo (the nominal frequency; turbo can exceed it) and 2 FMA units per core on
AVX-512 server parts. Measured: a generated kernel keeps 24 independent vector FMA chains
busy on every thread (tcc's own IR, codegen and parallel runtime), so it shows what this
machine sustains right now, load from other processes included.
"""

from __future__ import annotations

import os
import time

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


def derived_peak_gflops(dtype: str, threads: int | None = None) -> float:
    threads = threads or default_options().num_threads
    lanes = vector_bits(host_target().features) // (8 * np.dtype(dtype).itemsize)
    fma_units = 2  # AVX-512 server cores issue two vector FMAs per cycle
    return threads * fma_units * lanes * 2 * clock_ghz()


def _fma_kernel(dtype: str, threads: int, steps: int) -> L.Kernel:
    lanes = vector_bits(host_target().features) // (8 * np.dtype(dtype).itemsize)
    chains = 24
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


def measured_peak_gflops(dtype: str, threads: int | None = None, steps: int = 2_000_000) -> float:
    """GFLOP/s of independent vector FMAs on every thread (best of 3 runs)."""
    import ctypes

    from tcc.codegen.llvm_cpu import EntryPlan, render_module
    from tcc.runtime import jit

    threads = threads or default_options().num_threads
    kernel, lanes, chains = _fma_kernel(dtype, threads, steps)
    entry = EntryPlan(f"tcc_peak_{dtype}_{threads}", ("out",), (),
                      ((kernel.name, ("out",), ()),))
    options = default_options().with_(num_threads=threads)
    module = render_module((kernel,), entry, host_target(), threads=threads)
    address = jit.load_functions(str(module), (entry.name,), options)[entry.name]
    function = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)(address)
    out = np.zeros(threads * lanes, dtype)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        function(out.ctypes.data)
        best = min(best, time.perf_counter() - start)
    flops = 2.0 * chains * lanes * steps * threads
    return flops / best / 1e9


def describe(dtype: str) -> str:
    threads = default_options().num_threads
    return (f"{dtype} peak: derived {derived_peak_gflops(dtype):.0f} GFLOP/s ({threads} cores x "
            f"2 FMA x {vector_bits(host_target().features)}-bit x 2 x {clock_ghz():.2f} GHz "
            f"nominal), measured {measured_peak_gflops(dtype):.0f} GFLOP/s (FMA chains on "
            f"{threads} threads, now); CPU {host_target().cpu}, {os.cpu_count()} cores")


if __name__ == "__main__":
    for name in ("float32", "float64"):
        print(describe(name))

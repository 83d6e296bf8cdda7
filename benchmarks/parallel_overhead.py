"""What one parallel region costs: a kernel whose parallel loop does almost nothing,
called many times with 1 thread (no region) and with N threads, in the same run.

    python benchmarks/parallel_overhead.py

The difference per call is the price of waking and joining the region's threads (a
persistent pool of POSIX threads; kernels below the work thresholds in
tcc.passes.pipeline stay serial, so small calls never pay it).
"""

from __future__ import annotations

import ctypes
import time

import numpy as np

from tcc.codegen.llvm_cpu import EntryPlan, render_module
from tcc.ir import loops as L
from tcc.options import default_options
from tcc.passes.pipeline import GETT_MIN_FLOPS, PARALLEL_MIN_FLOPS, PARALLEL_MIN_ITERATIONS
from tcc.runtime import jit


def region_kernel(threads: int):
    store = L.Store("out", L.Affine.var("t"), L.Const(1.0, "float64"))
    loop = L.For("t", max(threads, 2), (store,), kind="parallel")
    kernel = L.Kernel(f"tcc_region_probe_{threads}", (L.Buffer("out", "float64", "out", (64,),
                                                                (1,)),), (loop,))
    entry = EntryPlan(f"tcc_region_{threads}", ("out",), (), ((kernel.name, ("out",), ()),))
    options = default_options().with_(num_threads=threads)
    module = render_module((kernel,), entry, jit.host_target(), threads=threads,
                           shared_runtime=True)  # the JIT's process-wide pool
    address = jit.load_functions(str(module), (entry.name,), options)[entry.name]
    return ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)(address)


def per_call(function, out: np.ndarray, calls: int = 2000) -> float:
    pointer = out.ctypes.data
    function(pointer)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            function(pointer)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def main() -> None:
    out = np.zeros(64)
    serial = per_call(region_kernel(1), out)
    print(f"serial call (no region): {serial * 1e6:.2f} us")
    for threads in (2, 4, 8):
        cost = per_call(region_kernel(threads), out) - serial
        print(f"parallel region, {threads} threads: {cost * 1e6:.1f} us per region")
    print(f"thresholds: GETT from {GETT_MIN_FLOPS:.2e} flops, threads from "
          f"{PARALLEL_MIN_FLOPS:.2e} flops (GETT) / {PARALLEL_MIN_ITERATIONS} iterations "
          "(loop nests)")


if __name__ == "__main__":
    main()

"""Exported libraries vs the JIT: same kernel, same machine, same run.

    python benchmarks/export.py

For a few einsums, compiles once, exports a .so, and times (a) the JIT kernel called from
Python (tcc.Kernel), (b) the exported function called through ctypes in the same process,
(c) the exported function called from a C driver (clock_gettime around a loop of calls),
whose tiny 4x4 case shows the C per-call overhead. Needs a C compiler.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import tcc
from tcc.runtime.export import find_c_compiler

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "lib%(name)s.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
                          return t.tv_sec + 1e-9 * t.tv_nsec; }
int main(int argc, char **argv) {
    long calls = atol(argv[1]);
    long sizes[] = {%(sizes)s};
    %(ctype)s *ops[%(n)d];
    for (int k = 0; k < %(n)d; ++k) {
        ops[k] = aligned_alloc(64, (sizeof(%(ctype)s) * sizes[k] + 63) / 64 * 64);
        for (long i = 0; i < sizes[k]; ++i) ops[k][i] = (%(ctype)s)((i %% 7) - 3) / 7;
    }
    %(call)s;  /* warm-up */
    double best = 1e30;
    for (int rep = 0; rep < 5; ++rep) {
        double start = now();
        for (long c = 0; c < calls; ++c) %(call)s;
        double per = (now() - start) / calls;
        if (per < best) best = per;
    }
    printf("%%.9f\n", best);
    return 0;
}
"""

CASES = [
    ("tiny", "ij,jk->ik", [(4, 4), (4, 4)], "float64", 200000),
    ("gemm", "ik,kj->ij", [(512, 512), (512, 512)], "float32", 20),
    ("attention", "bhqd,bhkd->bhqk", [(4, 8, 128, 64), (4, 8, 128, 64)], "float32", 20),
    ("hadamard", "ij,ij,ij->i", [(1024, 1024)] * 3, "float32", 50),
]


def c_time(tmp: Path, name: str, kernel: tcc.Kernel, shapes, dtype: str, calls: int) -> float:
    kernel.export(str(tmp / f"lib{name}.so"))
    ctype = {"float32": "float", "float64": "double"}[dtype]
    sizes = [int(np.prod(s)) for s in shapes] + [int(np.prod(kernel.output_shape))]
    args = ", ".join(f"ops[{k}]" for k in range(len(sizes)))
    source = DRIVER % dict(name=name, sizes=", ".join(map(str, sizes)), ctype=ctype,
                           n=len(sizes), call=f"{name}({args})")
    (tmp / f"{name}.c").write_text(source)
    exe = tmp / name
    subprocess.run([find_c_compiler(), "-O2", "-I", str(tmp), str(tmp / f"{name}.c"), "-o",
                    str(exe), "-L", str(tmp), f"-l{name}", f"-Wl,-rpath,{tmp}"], check=True)
    result = subprocess.run([str(exe), str(calls)], capture_output=True, text=True, check=True)
    return float(result.stdout)


def per_call(function, calls: int) -> float:
    """Best over 5 rounds of the mean time of ``calls`` calls, after one warm-up call."""
    function()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def library_time(tmp: Path, name: str, ops, out, calls: int) -> float:
    """The exported function called through ctypes in this process (beside the JIT)."""
    import ctypes

    function = getattr(ctypes.CDLL(str(tmp / f"lib{name}.so")), name)
    pointers = [a.ctypes.data_as(ctypes.c_void_p) for a in (*ops, out)]
    return per_call(lambda: function(*pointers), calls)


def main() -> None:
    if find_c_compiler() is None:
        sys.exit("benchmarks/export.py needs a C compiler (cc, gcc or clang)")
    rng = np.random.default_rng(0)
    print(f"{'case':10} {'einsum':18} {'JIT us':>9} {'.so ctypes us':>13} {'.so C us':>9} "
          f"{'so/JIT':>6}")
    ratios = []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        for name, eq, shapes, dtype, calls in CASES:
            ops = [rng.standard_normal(s).astype(dtype) for s in shapes]
            kernel = tcc.compile(eq, *shapes, dtype=dtype)
            out = np.empty(kernel.output_shape, dtype)
            t_py = per_call(lambda k=kernel, o=ops: k(*o), calls)
            t_c = c_time(tmp, name, kernel, shapes, dtype, calls)
            t_lib = library_time(tmp, name, ops, out, calls)
            if name != "tiny":
                ratios.append(t_py / t_lib)
            print(f"{name:10} {eq:18} {t_py * 1e6:>9.2f} {t_lib * 1e6:>13.2f} "
                  f"{t_c * 1e6:>9.2f} {t_lib / t_py:>6.2f}")
    print(f"exported speed / JIT speed, same process (excluding the tiny kernel): median "
          f"{statistics.median(ratios):.2f}; '.so C us': a C driver's loop of calls")


if __name__ == "__main__":
    main()

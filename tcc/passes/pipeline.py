"""From a tensor statement to the kernel that computes it: the template or the loop nest.

Pairwise float contractions big enough to pay for packing go through the GETT template;
everything else is lowered to one loop nest.
"""

from __future__ import annotations

from collections.abc import Mapping

from tcc.dtypes import DTYPES
from tcc.errors import ScheduleError
from tcc.ir import loops as L
from tcc.ir import program as P
from tcc.passes.lower import lower_statement
from tcc.passes.schedule import primitives
from tcc.passes.schedule.blocking import GettParams, default_params, fit_params
from tcc.passes.schedule.gett import a_in_place, analyze, gett_kernel

GETT_MIN_FLOPS = 2 * 48**3  # below this, packing costs more than it saves
PARALLEL_MIN_FLOPS = 2 * 128**3  # below this, one thread beats waking the pool


PARALLEL_MIN_ITERATIONS = 1 << 17  # loop-nest work worth waking the pool for


def _iterations(body: tuple[L.Stmt, ...]) -> int:
    total = 0
    for stmt in body:
        if isinstance(stmt, L.For):
            total += min(stmt.extent, 1 << 30) * max(_iterations(stmt.body), 1)
        elif isinstance(stmt, L.Allocate):
            total += _iterations(stmt.body)
        else:
            total += 1
    return total


def parallelize_outer_loops(kernel: L.Kernel) -> L.Kernel:
    """Run each big top-level loop nest's outermost loop on all threads, where the
    ``parallel`` primitive proves iterations independent (disjoint output rows)."""
    counts: dict[str, int] = {}
    sites = []
    for stmt in L.walk(kernel.body):
        if isinstance(stmt, L.For):
            sites.append((stmt, f"{stmt.var}#{counts.get(stmt.var, 0)}"))
            counts[stmt.var] = counts.get(stmt.var, 0) + 1
    for loop, name in sites:
        if loop not in kernel.body or loop.extent < 2 or loop.bound is not None:
            continue
        if _iterations((loop,)) < PARALLEL_MIN_ITERATIONS:
            continue
        try:
            kernel = primitives.parallel(kernel, name)
        except ScheduleError:
            continue
    return kernel


def vector_bits(features: str) -> int:
    if "+avx512f" in features:
        return 512
    if "+avx" in features:
        return 256
    return 128


def kernel_for_statement(
    program: P.Program,
    stmt: P.Statement,
    layouts: Mapping[str, tuple[int, ...]],
    *,
    name: str,
    features: str,
    threads: int,
    gett: str = "auto",
    params: GettParams | None = None,
) -> L.Kernel:
    shape = analyze(program, stmt, layouts) if gett != "never" else None
    small = gett == "auto" and params is None and shape is not None and (
        shape.flops < GETT_MIN_FLOPS)
    if shape is None or small:
        kernel = lower_statement(program, stmt, layouts=layouts, name=name)
        return parallelize_outer_loops(kernel) if threads > 1 else kernel
    if params is None:
        use_threads = threads if shape.flops >= PARALLEL_MIN_FLOPS else 1
        params = default_params(stmt.dtype, vector_bits(features), use_threads)
        params = fit_params(params, shape.extent(shape.m), shape.extent(shape.n),
                            shape.extent(shape.batch), shape.extent(shape.k),
                            DTYPES[stmt.dtype].itemsize,
                            a_in_place(shape) and not DTYPES[stmt.dtype].is_complex)
    return gett_kernel(program, stmt, shape, params, layouts, name)

"""From a tensor statement to the kernel that computes it: the template or the loop nest.

Pairwise float contractions big enough to pay for packing go through the GETT template;
everything else is lowered to one loop nest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from tcc.dtypes import DTYPES
from tcc.errors import ScheduleError
from tcc.ir import loops as L
from tcc.ir import program as P
from tcc.passes.lower import lower_statement
from tcc.passes.schedule import nest, primitives
from tcc.passes.schedule.blocking import GettParams, default_params, fit_params
from tcc.passes.schedule.gett import a_in_place, analyze, gett_kernel

Aff = L.Affine

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


def parallelize_outer_loops(kernel: L.Kernel, threads: int = 2) -> L.Kernel:
    """Run each big top-level loop nest's outermost loop on all threads, where the
    ``parallel`` primitive proves iterations independent (disjoint output rows). A nest
    whose outermost loop reduces (``for k: for j: y[j] += x[k] * W[k, j]``, a matrix-vector
    product) has an inner loop split into one chunk per thread instead, the chunks moved
    outermost: a memory-bound product needs every core's share of the bandwidth."""
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
        at = next(k for k, x in enumerate(kernel.body) if x is loop)
        try:
            kernel = primitives.parallel(kernel, name)
        except ScheduleError:
            kernel = _parallel_chunks(kernel, loop, threads)
        else:
            kernel = _jam_dot_rows(kernel, at)
    return kernel


DOT_ROWS = 4  # rows of a matrix-vector product (dot-product form) each pass reads at once


def _jam_dot_rows(kernel: L.Kernel, at: int) -> L.Kernel:
    """Rows of a dot-product nest four at a time::

        for o:  # parallel                 for o4:  # parallel
          acc = 0                            acc0 = 0; ...; acc3 = 0
          for i:                      ->     for i:
            acc = acc +~ x[i] * W[o, i]        acc0 = acc0 +~ x[i] * W[4*o4, i]; ...
          y[o] = acc                         y[4*o4] = acc0; ...

    Four row streams in flight instead of one; taken when a load inside runs along the
    inner loop with unit stride and moves with ``o`` (a matrix read row by row). A
    4096 x 1024 matrix-vector product ``W @ x``: 17 -> 22 GB/s (numpy 23) in one run."""
    loop = kernel.body[at]
    if not isinstance(loop, L.For):
        return kernel
    body = loop.body
    if (loop.bound is not None or loop.extent % DOT_ROWS or len(body) != 3
            or not isinstance(body[0], L.Declare) or body[0].lanes != 1
            or not isinstance(body[1], L.For) or not isinstance(body[2], L.Store)):
        return kernel
    acc, inner, store = body[0].name, body[1], body[2]
    if (inner.bound is not None or not all(
            isinstance(s, L.Assign) and s.name == acc for s in inner.body)
            or store.value != L.Local(acc)):
        return kernel
    streams = [ld for s in inner.body for ld in nest.loads((s,))
               if ld.index.coefficient(inner.var) == 1 and ld.index.coefficient(loop.var)]
    if not streams:
        return kernel
    rows = f"{loop.var}.rows"
    decls, steps, stores = [], [], []
    for k in range(DOT_ROWS):
        renamed = nest.rename_locals(body, {acc: f"{acc}{k}"})
        copy = nest.substitute(renamed, loop.var, Aff.var(rows, DOT_ROWS) + k)
        decls.append(copy[0])
        steps.extend(copy[1].body)
        stores.append(copy[2])
    jammed = L.For(rows, loop.extent // DOT_ROWS,
                   (*decls, replace(inner, body=tuple(steps)), *stores), kind="parallel")
    return replace(kernel, body=kernel.body[:at] + (jammed,) + kernel.body[at + 1:])


CHUNK_ELEMENTS = 16  # a thread's chunk is a multiple of this: whole vectors in any dtype


def _parallel_chunks(kernel: L.Kernel, top: L.For, threads: int) -> L.Kernel:
    """``top``'s perfect nest with its first inner loop that threads may share split into
    ``threads`` chunks (whole vectors each), the chunk loop outermost and parallel;
    ``kernel`` unchanged when no loop of the nest allows it."""
    band, loop = [top], top
    while len(loop.body) == 1 and isinstance(loop.body[0], L.For):
        loop = loop.body[0]
        band.append(loop)
    outer_name = _loop_name(kernel, top)
    for inner in band[1:]:
        chunk = -(-inner.extent // threads)
        chunk = -(-chunk // CHUNK_ELEMENTS) * CHUNK_ELEMENTS
        if inner.bound is not None or chunk >= inner.extent:
            continue
        try:
            split = primitives.split(kernel, _loop_name(kernel, inner), chunk,
                                     outer=f"{inner.var}.part", inner=f"{inner.var}.chunk")
            moved = primitives.reorder(split, f"{inner.var}.part", outer_name)
            shared = primitives.parallel(moved, f"{inner.var}.part")
        except ScheduleError:
            continue
        part = next(x for x in L.walk(shared.body)
                    if isinstance(x, L.For) and x.var == f"{inner.var}.part")
        return _jam(shared, part.body[0], f"{inner.var}.chunk")
    return kernel


JAM_ROWS = (8, 4, 2)  # rows of the reduced loop each pass over a chunk takes


def _jam(kernel: L.Kernel, top: L.Stmt, chunk: str) -> L.Kernel:
    """Unroll-and-jam the reduced loop ``top`` (the chunk loop's parent) into the chunk
    loop of ``_parallel_chunks``: each pass over a thread's chunk of ``y`` adds 8 rows of
    ``W`` (8 streams in flight, ``y`` loaded and stored once per 8 rows): a 1024 x 4096
    matrix-vector product 14.5 -> 20.6 GB/s (numpy 23.6) in one run."""
    if not isinstance(top, L.For):
        return kernel
    for rows in JAM_ROWS:
        if top.extent % rows:
            continue
        try:
            split = primitives.split(kernel, _loop_name(kernel, top), rows,
                                     outer=f"{top.var}.rows", inner=f"{top.var}.row")
            moved = primitives.reorder(split, chunk, f"{top.var}.row")
            return primitives.unroll(moved, f"{top.var}.row")
        except ScheduleError:
            continue
    return kernel


def _loop_name(kernel: L.Kernel, loop: L.For) -> str:
    """``loop``'s name for the schedule primitives (``var#k``: the k-th loop over var)."""
    same = [s for s in L.walk(kernel.body) if isinstance(s, L.For) and s.var == loop.var]
    return f"{loop.var}#{next(k for k, s in enumerate(same) if s is loop)}"


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
        return parallelize_outer_loops(kernel, threads) if threads > 1 else kernel
    if params is None:
        use_threads = threads if shape.flops >= PARALLEL_MIN_FLOPS else 1
        params = default_params(stmt.dtype, vector_bits(features), use_threads)
        params = fit_params(params, shape.extent(shape.m), shape.extent(shape.n),
                            shape.extent(shape.batch), shape.extent(shape.k),
                            DTYPES[stmt.dtype].itemsize,
                            a_in_place(shape) and not DTYPES[stmt.dtype].is_complex)
    return gett_kernel(program, stmt, shape, params, layouts, name)

"""The warp reduction schedule: reductions along the unit-stride index, shared by a warp.

For ``ij->i``, ``ij,ij->i`` or ``ij,j->i`` one thread per output element would read a
row each, uncoalesced. Here the lanes of a warp split the innermost reduction loop, each
block holds several output elements (all output indices flattened), and butterfly
shuffles (:class:`~tcc.passes.schedule.gpu_ir.WarpReduce`) combine the lanes' partial
results.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from tcc.ir import loops as L
from tcc.ir import program as P
from tcc.passes.lower import _Accesses, c_strides, loop_order, lower_statement
from tcc.passes.schedule.gpu_ir import (
    GRID_LIMITS,
    MAX_THREADS,
    WARP,
    AtomicAdd,
    GpuKernel,
    GpuSchedule,
    IndexOf,
    WarpReduce,
    output_chain,
    pow2_at_least,
    rebuild,
    substitute,
    unflatten,
)

Aff = L.Affine
SPLIT_BLOCKS = 2048  # fewer blocks of output rows than this: split the reduction too
SPLIT_MIN_CHUNK = 4  # iterations of the split loop per block, at least
SPLIT_MIN_WORK = 1 << 20  # terms summed; below this one block per row set is quick enough
SHUFFLE_DTYPES = ("float32", "float64", "int32", "int64")
SHUFFLE_OPS = ("add", "mul", "max", "min")


def _reduction_nest(inner: tuple[L.Stmt, ...]):
    """Split one output element's body into (declarations, the reduction loop nest as its
    perfectly nested loops, what follows) with every accumulator's combine op, or None."""
    loops = [k for k, stmt in enumerate(inner) if isinstance(stmt, L.For)]
    if len(loops) != 1 or not all(isinstance(d, L.Declare) for d in inner[:loops[0]]):
        return None
    nest = [inner[loops[0]]]
    while len(nest[-1].body) == 1 and isinstance(nest[-1].body[0], L.For):
        nest.append(nest[-1].body[0])
    ops = {}
    for stmt in nest[-1].body:
        value = getattr(stmt, "value", None)
        if not (isinstance(stmt, L.Assign) and isinstance(value, L.Binary)
                and value.left == L.Local(stmt.name) and value.op in SHUFFLE_OPS):
            return None
        ops[stmt.name] = value.op
    if any(loop.bound is not None or loop.kind != "serial" for loop in nest):
        return None
    return inner[:loops[0]], nest, inner[loops[0] + 1:], ops


def reduce_schedule(program: P.Program, stmt: P.Statement,
                    layouts: Mapping[str, tuple[int, ...]], *, name: str) -> GpuKernel | None:
    """Lanes of a warp share each output element's innermost reduction, or None.

    For reductions along the unit-stride index (``ij->i``, ``ij,ij->i``, ``ij,j->i``), one
    thread per output element reads a row each: uncoalesced. Here ``lanes`` threads (x)
    split the innermost reduction loop (``r = threadIdx.x + lanes*r.pass``: consecutive
    addresses across the warp) and each block holds ``rows`` output elements (y) of the
    output indices flattened row-major (:class:`IndexOf` splits them again). The partial
    results meet through butterfly shuffles (:class:`WarpReduce`), and lane 0 stores::

        acc = 0
        for r.pass in 0..ceil(R/lanes):  (row guarded)  acc += in[row, threadIdx.x + 32*r.pass]
        warp_reduce acc (add) over 32 lanes
        (lane 0, row guarded)  out[row] = acc

    When the output has too few rows to fill the GPU (``ij->``, a loss) and the sum is
    large, ``blockIdx.y`` also splits the reduction (its outermost loop, or the lanes'
    passes) and lane 0 adds its partial sum atomically (:class:`AtomicAdd`) into an
    output zeroed before the launch.
    """
    if stmt.dtype not in SHUFFLE_DTYPES:
        return None
    if program.dynamic and set(program.dynamic) & set(P.statement_indices(stmt)):
        return None
    sizes = program.sizes
    live = [i for i in P.statement_indices(stmt) if sizes[i] != 1]
    reduced = {i for i in P.reduced_indices(stmt) if sizes[i] != 1}
    accesses = _Accesses(program, stmt, dict(layouts))
    order = loop_order(accesses, tuple(live), reduced)

    def unit_loads(index: str) -> int:
        return sum(abs(c.get(index, 0)) == 1 for c in accesses.loads)

    split_index = max(reduced, key=lambda i: (unit_loads(i), i == order[-1]), default=None)
    outputs = [i for i in order if i not in reduced]
    if split_index is None or unit_loads(split_index) <= max(map(unit_loads, outputs), default=0):
        return None  # reads are unit-stride along an output index: the loop schedule coalesces
    order = [*outputs, *(i for i in order if i in reduced and i != split_index), split_index]
    kernel = lower_statement(program, stmt, layouts=layouts, name=name, order=order)
    chain = output_chain(kernel.body, set(outputs))
    split = _reduction_nest(chain[-1].body if chain else kernel.body)
    if len(chain) != len(outputs) or split is None or split[1][-1].var != order[-1]:
        return None
    declarations, loops, after, ops = split
    extent = loops[-1].extent
    lanes = min(WARP, pow2_at_least(extent))
    extents = [loop.extent for loop in chain]
    total = math.prod(extents)
    rows = min(MAX_THREADS // lanes, pow2_at_least(total))
    blocks = -(-total // rows)
    if blocks > GRID_LIMITS["x"]:
        return None
    r = loops[-1]
    passes = -(-extent // lanes)
    atomic = _atomic_store(after, ops, kernel, stmt)
    splits = 1
    work = total * math.prod(loop.extent for loop in loops)
    if atomic is not None and blocks < SPLIT_BLOCKS and work >= SPLIT_MIN_WORK:
        # few output rows for the GPU: blockIdx.y splits the reduction too
        outer = loops[0].extent if len(loops) > 1 else passes
        splits = min(-(-SPLIT_BLOCKS // blocks), outer // SPLIT_MIN_CHUNK, GRID_LIMITS["y"])
        splits = max(splits, 1)
    # lanes take the innermost reduction loop (its passes split across blockIdx.y when the
    # reduction loop is the only one)
    chunk = -(-passes // splits) if len(loops) == 1 else passes
    pass_index = Aff.var(f"{r.var}.pass", lanes)
    if splits > 1 and len(loops) == 1:
        pass_index = pass_index + Aff.var("blockIdx.y", chunk * lanes)
    lane_index = Aff.var("threadIdx.x") + pass_index
    body = substitute(r.body, r.var, lane_index)
    if extent % lanes or chunk * lanes * (splits if len(loops) == 1 else 1) != extent:
        body = (L.For(f"{r.var}.guard", 1, body, bound=extent - lane_index),)
    reduction = rebuild(loops[:-1], (L.For(f"{r.var}.pass", chunk, body),))
    if splits > 1 and len(loops) > 1:  # blockIdx.y takes a chunk of the outermost loop
        first = reduction[0]
        size = -(-first.extent // splits)
        start = Aff.var("blockIdx.y", size) + Aff.var(f"{first.var}.part")
        inner = substitute(first.body, first.var, start)
        guarded = (L.For(f"{first.var}.guard", 1, inner, bound=first.extent - start),)
        reduction = (L.For(f"{first.var}.part", size, guarded),)
    if splits > 1:
        after = (atomic,)
    # rows of the block take the output elements (all output loops as one, row-major)
    finish: tuple[L.Stmt, ...] = after
    head: tuple[IndexOf, ...] = ()
    row = Aff.var("blockIdx.x", rows) + Aff.var("threadIdx.y")
    if len(chain) == 1:
        reduction, finish = (substitute(part, chain[0].var, row) for part in (reduction, after))
    elif chain:
        head = unflatten(row, [loop.var for loop in chain], extents)
    if blocks * rows != total:
        guard = "_".join(loop.var for loop in chain) + ".guard"
        reduction, finish = ((L.For(guard, 1, part, bound=total - row),)
                             for part in (reduction, finish))
    lane0 = L.For("lane0", 1, finish, bound=1 - Aff.var("threadIdx.x"))
    shuffles = tuple(WarpReduce(acc, op, lanes) for acc, op in ops.items())
    body = (*declarations, *head, *reduction, *shuffles, lane0)
    bindings = (("_".join(loop.var for loop in chain), "x"),) if chain else ()
    schedule = GpuSchedule("reduce", (blocks, splits, 1), (lanes, rows, 1), bindings,
                           tiles=(("lanes", lanes), ("rows", rows), ("splits", splits)))
    zeroed = (stmt.target,) if splits > 1 and not stmt.accumulate else ()
    return GpuKernel(replace(kernel, body=body), schedule, zeroed)


def split_outer_reduction(inner: tuple, kernel: L.Kernel, stmt: P.Statement, outputs: int,
                          dimension: str) -> tuple[tuple, int] | None:
    """One output element's body (``acc = 0; for r ...; out = acc``) with its outermost
    reduction loop split across ``blockIdx.<dimension>`` and the result added atomically,
    when the outputs are too few to fill the GPU and the sum is large (``bo->o``, a bias
    gradient over a large batch); None otherwise. Returns the body and the split count."""
    split = _reduction_nest(inner)
    if split is None:
        return None
    declarations, loops, after, ops = split
    atomic = _atomic_store(after, ops, kernel, stmt)
    work = outputs * math.prod(loop.extent for loop in loops)
    if atomic is None or work < SPLIT_MIN_WORK or outputs >= SPLIT_BLOCKS * WARP:
        return None
    first = loops[0]
    splits = min(-(-SPLIT_BLOCKS // -(-outputs // MAX_THREADS)),
                 first.extent // SPLIT_MIN_CHUNK, GRID_LIMITS[dimension])
    if splits < 2:
        return None
    size = -(-first.extent // splits)
    start = Aff.var(f"blockIdx.{dimension}", size) + Aff.var(f"{first.var}.part")
    body = substitute(first.body, first.var, start)
    part = L.For(f"{first.var}.part", size,
                 (L.For(f"{first.var}.guard", 1, body, bound=first.extent - start),))
    return (*declarations, part, atomic), splits


def _atomic_store(after: tuple, ops: dict, kernel: L.Kernel,
                  stmt: P.Statement) -> AtomicAdd | None:
    """The finishing store as an atomic addition, when partial sums may meet in memory:
    one sum stored as it is (no epilogue, no cast) into a row-major output."""
    if len(after) != 1 or not isinstance(after[0], L.Store) or set(ops.values()) != {"add"}:
        return None
    store, (acc,) = after[0], ops
    target = next(b for b in kernel.buffers if b.name == stmt.target)
    if any(size > 1 and stride != want for size, stride, want in
           zip(target.shape, target.strides, c_strides(target.shape), strict=True)):
        return None  # the runtime zeroes the output as one block of bytes
    value = store.value
    if stmt.accumulate and isinstance(value, L.Binary) and value.op == "add":
        value = value.right if value.left == L.Load(store.buffer, store.index) else value
    if value != L.Local(acc):
        return None
    return AtomicAdd(store.buffer, store.index, L.Local(acc))


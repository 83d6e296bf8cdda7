r"""Schedule a statement for the GPU: loops bound to blocks and threads, as plain data.

Every statement becomes one or two :class:`~tcc.passes.schedule.gpu_ir.GpuKernel`\s
from one of four templates, chosen in :func:`gpu_kernel_for_statement`:

- *mma* (``gpu_mma``): float32 contractions on the tensor cores, when the user allows
  tf32 (``precision="tf32"``);
- *tiled* (``gpu_tiled``): pairwise contractions as one register-blocked GEMM over their
  flattened index groups;
- *reduce* (``gpu_reduce``): reductions along the unit-stride index, shared by a warp;
- *loops* (here, any statement): its output indices outermost and its reductions
  innermost, so each output element is one thread's private loop. The two innermost
  output loops are bound to x and y, the outer ones flattened onto z::

    for i in 0..I:                       i = 4*blockIdx.y + threadIdx.y  (guarded: i < I)
      for j in 0..J:             ->      j = 64*blockIdx.x + threadIdx.x (guarded: j < J)
        acc = 0                            acc = 0
        for k in 0..K: acc += ...          for k in 0..K: acc += ...
        C[i, j] = acc                      C[i, j] = acc

  An extent larger than the grid allows gets a grid-stride loop (``j.pass``).

A contraction with a fused elementwise epilogue (``relu(sum ...)``) that a tiled template
takes runs as that contraction and then the epilogue in place over its output. A tuned
:class:`GpuConfig` picks the template and the tiled template's sizes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from tcc.errors import ScheduleError
from tcc.ir import loops as L
from tcc.ir import program as P
from tcc.ir.printer import format_scalar
from tcc.passes.lower import _Accesses, loop_order, lower_statement
from tcc.passes.schedule.gett import analyze
from tcc.passes.schedule.gpu_ir import (
    DIMENSIONS,
    GRID_LIMITS,
    MAX_THREADS,
    AtomicAdd,
    Barrier,
    GpuKernel,
    GpuSchedule,
    IndexOf,
    Mma,
    WarpReduce,
    output_chain,
    pow2_at_least,
    substitute,
    unflatten,
)
from tcc.passes.schedule.gpu_reduce import reduce_schedule, split_outer_reduction
from tcc.passes.schedule.gpu_tiled import TILED_MIN_FLOPS, TileParams, tiled_schedule

Aff = L.Affine


# ---- the loop schedule ------------------------------------------------------------------


def _bind(loop: L.For, dimension: str, threads: int) -> tuple[L.Stmt, int]:
    """Replace ``loop`` by its index on the grid; returns the statement and block count."""
    extent = loop.extent
    blocks = min(-(-extent // threads), GRID_LIMITS[dimension])
    passes = -(-extent // (blocks * threads))
    index = Aff.var(f"blockIdx.{dimension}", threads)
    if threads > 1:
        index = index + Aff.var(f"threadIdx.{dimension}")
    if passes > 1:
        index = index + Aff.var(f"{loop.var}.pass", blocks * threads)
    body = substitute(loop.body, loop.var, index)
    if passes * blocks * threads != extent:
        body = (L.For(f"{loop.var}.guard", 1, body, bound=extent - index),)
    if passes > 1:
        body = (L.For(f"{loop.var}.pass", passes, body),)
    return body[0] if len(body) == 1 else L.For(f"{loop.var}.once", 1, body), blocks


def loop_schedule(program: P.Program, stmt: P.Statement,
                  layouts: Mapping[str, tuple[int, ...]], *, name: str) -> GpuKernel:
    """Output loops on blocks x threads, reductions per thread (any statement)."""
    if program.dynamic and set(program.dynamic) & set(P.statement_indices(stmt)):
        raise ScheduleError("the CUDA backend does not support run-time sizes yet")
    sizes = program.sizes
    live = [i for i in P.statement_indices(stmt) if sizes[i] != 1]
    reduced = {i for i in P.reduced_indices(stmt) if sizes[i] != 1}
    order = loop_order(_Accesses(program, stmt, dict(layouts)), tuple(live), reduced)
    order = [i for i in order if i not in reduced] + [i for i in order if i in reduced]
    kernel = lower_statement(program, stmt, layouts=layouts, name=name, order=order)
    chain = output_chain(kernel.body, set(live) - reduced)
    chain_inner = chain[-1].body if chain else kernel.body
    heads: dict[str, tuple[IndexOf, ...]] = {}  # the indices a flattened loop stands for
    if len(chain) > len(DIMENSIONS):  # the outer output loops as one, on z
        outer, chain = chain[:-2], chain[-2:]
        flat = "flat_" + "_".join(loop.var for loop in outer)
        extents = [loop.extent for loop in outer]
        heads[flat] = unflatten(Aff.var(flat), [loop.var for loop in outer], extents)
        chain = [L.For(flat, math.prod(extents), ()), *chain]
    bindable = [k for k, loop in enumerate(chain) if loop.extent > 0][-3:]
    grid, block = [1, 1, 1], [1, 1, 1]
    bindings: list[tuple[str, str]] = []
    zeroed: tuple[str, ...] = ()
    if len(bindable) < len(DIMENSIONS):  # a free grid dimension: few outputs, a long sum?
        free = len(bindable)
        outputs = math.prod(loop.extent for loop in chain)
        split = split_outer_reduction(chain_inner, kernel, stmt, outputs, DIMENSIONS[free])
        if split is not None:
            chain_inner, grid[free] = split
            zeroed = () if stmt.accumulate else (stmt.target,)
            if not chain:
                kernel = replace(kernel, body=chain_inner)
    threads_left = MAX_THREADS
    body = chain_inner
    for depth in range(len(chain) - 1, -1, -1):
        loop = replace(chain[depth], body=heads.get(chain[depth].var, ()) + body)
        if depth in bindable:
            axis = len(bindings)
            dimension = DIMENSIONS[axis]
            threads = 1 if axis == 2 else min(threads_left, pow2_at_least(loop.extent))
            if axis == 0:
                threads = max(threads, min(32, threads_left))
            threads_left //= threads
            stmt_, grid[axis] = _bind(loop, dimension, threads)
            block[axis] = threads
            bindings.append((loop.var, dimension))
            body = (stmt_,)
        else:
            body = (loop,)
    schedule = GpuSchedule("loops", (grid[0], grid[1], grid[2]), (block[0], block[1], block[2]),
                           tuple(bindings))
    return GpuKernel(replace(kernel, body=body), schedule, zeroed)


# ---- choosing -----------------------------------------------------------------------------

GPU_TEMPLATES = ("auto", "plain", "tiled", "mma")


@dataclass(frozen=True, slots=True)
class GpuConfig:
    """A tuned choice for a contraction's GPU kernel: the template ('auto' as compiled by
    default; 'plain': the loop or reduction schedule; 'tiled'; 'mma': tensor cores, when
    the precision allows) and the tiled template's sizes (None: derived)."""

    template: str = "auto"
    tile: TileParams | None = None

    @staticmethod
    def of(config: Mapping | None) -> GpuConfig:
        """From a tuning record's config: ``{"template": ..., "bm": ..., "bn": ...}``."""
        config = dict(config or {})
        template = config.pop("template", "auto")
        if template not in GPU_TEMPLATES:
            raise ScheduleError(f"GPU template must be one of {GPU_TEMPLATES}, not {template!r}")
        tile = TileParams(**{k: int(config[k]) for k in ("bm", "bn", "tm", "tn", "bk")
                             if k in config}) if config else None
        return GpuConfig(template, tile)




def gpu_kernel_for_statement(program: P.Program, stmt: P.Statement,
                             layouts: Mapping[str, tuple[int, ...]], *, name: str,
                             tiled: str = "auto", precision: str = "exact",
                             config: GpuConfig | None = None) -> GpuKernel:
    """``tiled``: 'auto' (tile contractions of at least TILED_MIN_FLOPS), 'always' (tile
    every contraction the template accepts) or 'never'. ``precision='tf32'`` lets float32
    contractions run on the tensor cores (``gpu_mma``); 'exact' keeps float32 throughout.
    ``config``: a tuned choice (:class:`GpuConfig`), applied where the statement allows."""
    from tcc.passes.schedule.gpu_mma import MMA_MIN_FLOPS, PRECISIONS, mma_schedule

    if tiled not in ("auto", "always", "never"):
        raise ScheduleError(f"tiled must be 'auto', 'always' or 'never', not {tiled!r}")
    if precision not in PRECISIONS:
        raise ScheduleError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    config = config or GpuConfig()
    if config.template == "plain":
        tiled = "never"
    elif config.template != "auto":
        tiled = "always"
    if tiled != "never":
        if precision == "tf32" and config.template in ("auto", "mma"):
            kernel = mma_schedule(program, stmt, layouts, name=name,
                                  min_flops=0 if tiled == "always" else MMA_MIN_FLOPS)
            if kernel is not None:
                return kernel
        shape = analyze(program, stmt, layouts)
        if shape is not None and (tiled == "always" or shape.flops >= TILED_MIN_FLOPS):
            kernel = tiled_schedule(program, stmt, layouts, name=name, params=config.tile)
            if kernel is not None:
                return kernel
    return (reduce_schedule(program, stmt, layouts, name=name)
            or loop_schedule(program, stmt, layouts, name=name))


def _in_place(expr: P.Expr, value: P.Expr) -> P.Expr:
    """``expr`` with the finished reduction (``Reduced``) read as ``value``."""
    if isinstance(expr, P.Reduced):
        return value
    if isinstance(expr, P.Unary | P.Cast):
        return replace(expr, operand=_in_place(expr.operand, value))
    if isinstance(expr, P.Binary):
        return replace(expr, left=_in_place(expr.left, value), right=_in_place(expr.right, value))
    if isinstance(expr, P.Select):
        return P.Select(*(_in_place(e, value) for e in (expr.condition, expr.if_true,
                                                       expr.if_false)))
    return expr


def statement_kernels(program: P.Program, stmt: P.Statement,
                      layouts: Mapping[str, tuple[int, ...]], *, name: str,
                      tiled: str = "auto", precision: str = "exact",
                      config: GpuConfig | None = None) -> tuple[GpuKernel, ...]:
    """The kernels of one statement: one, or, for a contraction with a fused epilogue
    (``relu(sum ...)``) that a tiled template takes, the contraction and then the
    epilogue in place over its output, as the CPU's GETT does."""
    first = gpu_kernel_for_statement(program, stmt, layouts, name=name, tiled=tiled,
                                     precision=precision, config=config)
    if stmt.epilogue is None or first.schedule.template not in ("loops", "reduce"):
        return (first,)
    bare = replace(stmt, epilogue=None)
    contraction = gpu_kernel_for_statement(program, bare, layouts, name=name, tiled=tiled,
                                           precision=precision, config=config)
    if contraction.schedule.template in ("loops", "reduce"):
        return (first,)
    stored: P.Expr = P.Read(stmt.target, stmt.indices)
    if program.tensor(stmt.target).dtype != stmt.dtype:
        stored = P.Cast(stmt.dtype, stored)
    epilogue = P.Statement(stmt.target, stmt.indices, None,
                           _in_place(stmt.epilogue, stored), stmt.dtype)
    return contraction, loop_schedule(program, epilogue, layouts, name=f"{name}e")


def kernels_by_statement(program: P.Program,
                         layouts: Mapping[str, tuple[int, ...]] | None = None, *,
                         name: str = "kernel", tiled: str = "auto", precision: str = "exact",
                         config: GpuConfig | None = None) -> tuple[tuple[GpuKernel, ...], ...]:
    """Each statement's GPU kernels (``statement_kernels``), in program order."""
    layouts = dict(layouts or {})
    return tuple(statement_kernels(program, stmt, layouts, name=f"{name}_k{k}", tiled=tiled,
                                   precision=precision, config=config)
                 for k, stmt in enumerate(program.statements))


def gpu_kernels(program: P.Program, layouts: Mapping[str, tuple[int, ...]] | None = None, *,
                name: str = "kernel", tiled: str = "auto", precision: str = "exact",
                config: GpuConfig | None = None) -> tuple[GpuKernel, ...]:
    """The GPU kernels of every statement, in program order."""
    groups = kernels_by_statement(program, layouts, name=name, tiled=tiled, precision=precision,
                                  config=config)
    return tuple(kernel for group in groups for kernel in group)


# ---- printing -----------------------------------------------------------------------------


def _format(stmt: L.Stmt | Barrier, depth: int, lines: list[str], shared: tuple[str, ...]):
    pad = "  " * depth
    if isinstance(stmt, Barrier):
        lines.append(f"{pad}barrier")
    elif isinstance(stmt, WarpReduce):
        lines.append(f"{pad}warp_reduce {stmt.name} ({stmt.op}) over {stmt.lanes} lanes")
    elif isinstance(stmt, AtomicAdd):
        lines.append(f"{pad}atomic {stmt.buffer}[{stmt.index}] += {format_scalar(stmt.value)}")
    elif isinstance(stmt, Mma):
        args = ", ".join(format_scalar(x) for x in (*stmt.a, *stmt.b))
        lines.append(f"{pad}{', '.join(stmt.acc)} += mma.m16n8k8.tf32({args})")
    elif isinstance(stmt, IndexOf):
        value = f"({stmt.source}) // {stmt.divisor}" if stmt.divisor > 1 else f"{stmt.source}"
        if stmt.extent is not None:
            value = f"({value}) % {stmt.extent}"
        lines.append(f"{pad}{stmt.var} = {value}")
    elif isinstance(stmt, L.For):
        bound = f" while < ({stmt.bound})" if stmt.bound is not None else ""
        lines.append(f"{pad}for {stmt.var} in 0..{stmt.extent}{bound}:")
        for child in stmt.body:
            _format(child, depth + 1, lines, shared)
    elif isinstance(stmt, L.Allocate):
        where = "shared " if stmt.name in shared else ""
        lines.append(f"{pad}allocate {where}{stmt.name}: {stmt.dtype}[{stmt.size}]:")
        for child in stmt.body:
            _format(child, depth + 1, lines, shared)
    elif isinstance(stmt, L.Store):
        lines.append(f"{pad}{stmt.buffer}[{stmt.index}] = {format_scalar(stmt.value)}")
    elif isinstance(stmt, L.Declare):
        lines.append(f"{pad}{stmt.name}: {stmt.dtype} = {format_scalar(stmt.init)}")
    elif isinstance(stmt, L.Assign):
        lines.append(f"{pad}{stmt.name} = {format_scalar(stmt.value)}")
    else:
        raise TypeError(f"unknown statement node {stmt!r}")


def format_gpu_kernel(gpu: GpuKernel) -> str:
    """The per-thread loop nest with its launch configuration, as text."""
    kernel, sched = gpu.kernel, gpu.schedule
    params = ", ".join(f"{b.role} {b.name}: {b.dtype}{list(b.shape)} strides {list(b.strides)}"
                       for b in kernel.buffers)
    lines = [f"kernel {kernel.name}({params}):",
             f"  # {sched.template}: grid {sched.grid}, block {sched.block}, "
             f"bindings {dict(sched.bindings)}"
             + (f", zeroed first: {', '.join(gpu.zeroed)}" if gpu.zeroed else "")]
    for stmt in kernel.body:
        _format(stmt, 1, lines, sched.shared)
    return "\n".join(lines)

"""Schedule a statement for the GPU: loops bound to blocks and threads, as plain data.

The result is a :class:`GpuKernel`: an ordinary loop-level :class:`~tcc.ir.loops.Kernel`
whose body is what *one thread* runs, plus a :class:`GpuSchedule` (grid and block sizes,
which index went to which dimension, which local buffers live in shared memory). Inside
the body the hardware indices are free affine variables named ``blockIdx.x``,
``threadIdx.y`` and so on; :class:`Barrier` is the one statement the CPU does not have.

Two schedules:

*loops* (any statement). The statement is lowered with its output indices outermost and
its reductions innermost, so each output element is one thread's private loop. The three
innermost output loops are bound to x, y, z; the rest stay serial loops of every thread::

    for i in 0..I:                       i = 4*blockIdx.y + threadIdx.y  (guarded: i < I)
      for j in 0..J:             ->      j = 64*blockIdx.x + threadIdx.x (guarded: j < J)
        acc = 0                            acc = 0
        for k in 0..K: acc += ...          for k in 0..K: acc += ...
        C[i, j] = acc                      C[i, j] = acc

An extent larger than the grid allows gets a grid-stride loop (``j.pass``).

*tiled* (pairwise float contractions, the GEMM/GETT view of ``gett.analyze``). One index of
each of the M, N and K groups is tiled (BM x BN block tile, BK deep); the other output
indices go to ``blockIdx.z`` (the largest) or to serial loops, the other K indices to
serial loops around the K tiles. A block of 16 x 16 threads computes a BM x BN tile of C,
each thread a TM x TN register tile at rows ``ty + 16*i`` and columns ``tx + 16*j`` (C
stores are coalesced along N). Per K tile, A and B tiles are loaded cooperatively into
shared memory (reading along each tensor's unit-stride index, zero-padded at edges; a
tile read along K is stored transposed, its rows padded by one against bank conflicts)::

    allocate As[BK*BM], Bs[BK*BN] (shared):
      acc[TM][TN] = 0
      for kt in 0..ceil(K/BK):
        As[kk, mm] = A[m0 + mm, kt*BK + kk]  (4 rounds; 0 outside A)
        Bs[kk, nn] = B[kt*BK + kk, n0 + nn]
        barrier
        for kk in 0..BK: acc[i][j] += As[kk, ty + 16*i] * Bs[kk, tx + 16*j]
        barrier
      C[m0 + ty + 16*i, n0 + tx + 16*j] (+)= acc[i][j]   (guarded at edges)

Tensor cores (mma/wmma for fp16/bf16/tf32) are not scheduled yet.
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
from tcc.passes.schedule import nest
from tcc.passes.schedule.gett import GettShape, analyze
from tcc.passes.schedule.gpu_ir import Barrier, IndexOf, Mma, WarpReduce, unflatten

Aff = L.Affine
DIMENSIONS = ("x", "y", "z")
GRID_LIMITS = {"x": (1 << 31) - 1, "y": 65535, "z": 65535}
MAX_THREADS = 256
TILED_MIN_FLOPS = 2 * 64**3  # below this the plain loop schedule is as good


@dataclass(frozen=True, slots=True)
class GpuSchedule:
    """How a kernel runs on the GPU, as data: launch dims, index -> dimension bindings,
    shared-memory buffers, tile sizes and the template that produced it."""

    template: str  # "loops" | "reduce" | "tiled"
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    bindings: tuple[tuple[str, str], ...] = ()  # (index, "x" | "y" | "z")
    shared: tuple[str, ...] = ()
    tiles: tuple[tuple[str, int], ...] = ()

    @property
    def threads(self) -> int:
        return self.block[0] * self.block[1] * self.block[2]

    def to_json(self) -> dict:
        return {"template": self.template, "grid": list(self.grid), "block": list(self.block),
                "bindings": [list(b) for b in self.bindings], "shared": list(self.shared),
                "tiles": dict(self.tiles)}


@dataclass(frozen=True, slots=True)
class GpuKernel:
    kernel: L.Kernel
    schedule: GpuSchedule

    @property
    def name(self) -> str:
        return self.kernel.name


def substitute(body: tuple, var: str, value: Aff) -> tuple:
    """``nest.substitute`` through the GPU statements too."""
    out: list = []
    for stmt in body:
        if isinstance(stmt, IndexOf):
            out.append(replace(stmt, source=stmt.source.substitute(var, value)))
        elif isinstance(stmt, Barrier | WarpReduce | Mma):
            out.append(stmt)
        elif isinstance(stmt, L.For):
            bound = None if stmt.bound is None else stmt.bound.substitute(var, value)
            out.append(replace(stmt, body=substitute(stmt.body, var, value), bound=bound))
        elif isinstance(stmt, L.Allocate):
            out.append(replace(stmt, body=substitute(stmt.body, var, value)))
        else:
            out.extend(nest.substitute((stmt,), var, value))
    return tuple(out)


def _pow2_at_least(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


# ---- the loop schedule ------------------------------------------------------------------


def _output_chain(body: tuple[L.Stmt, ...], outputs: set[str]) -> list[L.For]:
    """The perfectly nested output loops at the top of ``body``, outermost first."""
    chain: list[L.For] = []
    while len(body) == 1 and isinstance(body[0], L.For) and body[0].var in outputs:
        loop = body[0]
        if loop.bound is not None or loop.kind != "serial":
            break
        chain.append(loop)
        body = loop.body
    return chain


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


def _rebuild(chain: list[L.For], innermost: tuple[L.Stmt, ...]) -> tuple[L.Stmt, ...]:
    body = innermost
    for loop in reversed(chain):
        body = (replace(loop, body=body),)
    return body


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
    chain = _output_chain(kernel.body, set(live) - reduced)
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
    threads_left = MAX_THREADS
    body = chain_inner
    for depth in range(len(chain) - 1, -1, -1):
        loop = replace(chain[depth], body=heads.get(chain[depth].var, ()) + body)
        if depth in bindable:
            axis = len(bindings)
            dimension = DIMENSIONS[axis]
            threads = 1 if axis == 2 else min(threads_left, _pow2_at_least(loop.extent))
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
    return GpuKernel(replace(kernel, body=body), schedule)


# ---- the warp reduction schedule --------------------------------------------------------

WARP = 32
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
    chain = _output_chain(kernel.body, set(outputs))
    split = _reduction_nest(chain[-1].body if chain else kernel.body)
    if len(chain) != len(outputs) or split is None or split[1][-1].var != order[-1]:
        return None
    declarations, loops, after, ops = split
    extent = loops[-1].extent
    lanes = min(WARP, _pow2_at_least(extent))
    extents = [loop.extent for loop in chain]
    total = math.prod(extents)
    rows = min(MAX_THREADS // lanes, _pow2_at_least(total))
    blocks = -(-total // rows)
    if blocks > GRID_LIMITS["x"]:
        return None
    # lanes take the innermost reduction loop
    r = loops[-1]
    lane_index = Aff.var("threadIdx.x") + Aff.var(f"{r.var}.pass", lanes)
    body = substitute(r.body, r.var, lane_index)
    if extent % lanes:
        body = (L.For(f"{r.var}.guard", 1, body, bound=extent - lane_index),)
    reduction = _rebuild(loops[:-1], (L.For(f"{r.var}.pass", -(-extent // lanes), body),))
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
    schedule = GpuSchedule("reduce", (blocks, 1, 1), (lanes, rows, 1), bindings,
                           tiles=(("lanes", lanes), ("rows", rows)))
    return GpuKernel(replace(kernel, body=body), schedule)


# ---- the tiled schedule -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TileParams:
    """Block tile BM x BN, BK deep; 16 x 16 threads, each a (BM/16) x (BN/16) register tile."""

    bm: int = 64
    bn: int = 64
    bk: int = 16

    def fit(self, m: int, n: int) -> TileParams:
        """Shrink the block tile for small M or N (never below 16)."""
        return replace(self, bm=max(16, min(self.bm, _pow2_at_least(m))),
                       bn=max(16, min(self.bn, _pow2_at_least(n))))


THREADS_XY = 16


def _pick(group: tuple[str, ...], shape: GettShape, tensor: str) -> str:
    """The index of ``group`` to tile: a long one, then the smallest stride in ``tensor``."""
    return max(group, key=lambda i: (min(shape.sizes[i], 64),
                                     -abs(shape.coefs[tensor].get(i, 0))))


class _Tiled:
    def __init__(self, shape: GettShape, params: TileParams, dtype: str, accumulate: bool):
        self.s, self.p, self.dtype, self.accumulate = shape, params, dtype, accumulate
        self.mt, self.nt, self.kt = (_pick(shape.m, shape, shape.c), _pick(shape.n, shape, shape.c),
                                     _pick(shape.k, shape, shape.a))
        outer = [i for i in (*shape.batch, *shape.m, *shape.n) if i not in (self.mt, self.nt)]
        self.z = max(outer, key=lambda i: shape.sizes[i]) if outer else None
        self.serial_out = [i for i in outer if i != self.z]
        self.serial_k = [i for i in shape.k if i != self.kt]
        self.tm, self.tn = params.bm // THREADS_XY, params.bn // THREADS_XY
        # a tile loaded along K is stored transposed: pad its rows against bank conflicts
        self.rows = {"As": params.bm + self.k_fast(shape.a, self.mt),
                     "Bs": params.bn + self.k_fast(shape.b, self.nt)}

    def k_fast(self, tensor: str, outer: str) -> bool:
        coefs = self.s.coefs[tensor]
        return abs(coefs.get(self.kt, 0)) <= abs(coefs.get(outer, 0))

    def affine(self, tensor: str, where: Mapping[str, Aff]) -> Aff:
        """``tensor``'s element offset with index values ``where`` (others: loop vars)."""
        total = Aff()
        fixed = {self.z: Aff.var("blockIdx.z")} if self.z is not None else {}
        for index, coef in self.s.coefs[tensor].items():
            value = where.get(index) or fixed.get(index) or Aff.var(index)
            total = total + value * coef
        return total

    def load_tile(self, tensor: str, tile: str, outer: str, width: int) -> list[L.Stmt]:
        """``tile[kk*width + o] = tensor[outer0 + o, kt*BK + kk]`` for the block, 0 outside."""
        s, p = self.s, self.p
        base = Aff.var(f"blockIdx.{'y' if tile == 'As' else 'x'}", width)
        extent_outer, extent_k = s.sizes[outer], s.sizes[self.kt]
        k_fast = self.k_fast(tensor, outer)
        tx, ty = Aff.var("threadIdx.x"), Aff.var("threadIdx.y")
        stmts: list[L.Stmt] = []
        for r in range(width // THREADS_XY):
            kk, oo = (tx, ty + THREADS_XY * r) if k_fast else (ty, tx + THREADS_XY * r)
            o_global, k_global = base + oo, Aff.var("k.tile", p.bk) + kk
            where = {outer: o_global, self.kt: k_global}
            slot = kk * self.rows[tile] + oo
            load = L.Load(tensor, self.affine(tensor, where))
            guarded = L.For(f"{tile}.k{r}", 1, (L.Store(tile, slot, load),),
                            bound=extent_k - k_global)
            stmts += [L.Store(tile, slot, L.Const(0.0, self.dtype)),
                      L.For(f"{tile}.o{r}", 1, (guarded,), bound=extent_outer - o_global)]
        return stmts

    def compute(self) -> L.Stmt:
        p, dt = self.p, self.dtype
        kk = Aff.var("k.step")
        step: list[L.Stmt] = []
        for i in range(self.tm):
            at = kk * self.rows["As"] + Aff.var("threadIdx.y") + THREADS_XY * i
            step.append(L.Declare(f"a{i}", dt, L.Load("As", at)))
        for j in range(self.tn):
            at = kk * self.rows["Bs"] + Aff.var("threadIdx.x") + THREADS_XY * j
            step.append(L.Declare(f"b{j}", dt, L.Load("Bs", at)))
        for i in range(self.tm):
            for j in range(self.tn):
                product = L.Binary("mul", L.Local(f"a{i}"), L.Local(f"b{j}"))
                step.append(L.Assign(f"acc{i}_{j}", L.Binary("add", L.Local(f"acc{i}_{j}"),
                                                               product)))
        return L.For("k.step", p.bk, tuple(step))

    def store(self) -> list[L.Stmt]:
        s, p = self.s, self.p
        stmts: list[L.Stmt] = []
        for i in range(self.tm):
            m_global = Aff.var("blockIdx.y", p.bm) + Aff.var("threadIdx.y") + THREADS_XY * i
            row = []
            for j in range(self.tn):
                n_global = Aff.var("blockIdx.x", p.bn) + Aff.var("threadIdx.x") + THREADS_XY * j
                index = self.affine(s.c, {self.mt: m_global, self.nt: n_global})
                value: L.Scalar = L.Local(f"acc{i}_{j}")
                if self.accumulate:
                    value = L.Binary("add", L.Load(s.c, index), value)
                row.append(L.For(f"n.{j}", 1, (L.Store(s.c, index, value),),
                                 bound=s.sizes[self.nt] - n_global))
            stmts.append(L.For(f"m.{i}", 1, tuple(row), bound=s.sizes[self.mt] - m_global))
        return stmts

    def body(self) -> tuple[L.Stmt, ...]:
        s, p = self.s, self.p
        k_tiles = -(-s.sizes[self.kt] // p.bk)
        k_loop: tuple = (L.For("k.tile", k_tiles, (
            *self.load_tile(s.a, "As", self.mt, p.bm),
            *self.load_tile(s.b, "Bs", self.nt, p.bn),
            Barrier(), self.compute(), Barrier(),
        )),)
        for index in reversed(self.serial_k):
            k_loop = (L.For(index, s.sizes[index], k_loop),)
        zero = L.Const(0.0, self.dtype)
        inner: tuple = (
            *(L.Declare(f"acc{i}_{j}", self.dtype, zero)
              for i in range(self.tm) for j in range(self.tn)),
            *k_loop, *self.store(),
        )
        for index in reversed(self.serial_out):
            inner = (L.For(index, s.sizes[index], inner),)
        shared = (L.Allocate("Bs", self.dtype, p.bk * self.rows["Bs"], inner),)
        return (L.Allocate("As", self.dtype, p.bk * self.rows["As"], shared),)

    def schedule(self) -> GpuSchedule:
        s, p = self.s, self.p
        grid = (-(-s.sizes[self.nt] // p.bn), -(-s.sizes[self.mt] // p.bm),
                s.sizes[self.z] if self.z is not None else 1)
        bindings = [(self.nt, "x"), (self.mt, "y")] + ([(self.z, "z")] if self.z else [])
        tiles = (("bm", p.bm), ("bn", p.bn), ("bk", p.bk), ("tm", self.tm), ("tn", self.tn))
        return GpuSchedule("tiled", grid, (THREADS_XY, THREADS_XY, 1), tuple(bindings),
                           ("As", "Bs"), tiles)


def tiled_schedule(program: P.Program, stmt: P.Statement,
                   layouts: Mapping[str, tuple[int, ...]], *, name: str,
                   params: TileParams | None = None) -> GpuKernel | None:
    """The shared-memory tiled contraction, or None when the statement is not one."""
    if stmt.epilogue is not None:
        return None  # fused epilogues take the loop schedule (lowering applies them)
    shape = analyze(program, stmt, layouts)
    if shape is None:
        return None
    builder = _Tiled(shape, TileParams(), stmt.dtype, stmt.accumulate)
    fitted = (params or TileParams()).fit(shape.sizes[builder.mt], shape.sizes[builder.nt])
    builder = _Tiled(shape, fitted, stmt.dtype, stmt.accumulate)
    schedule = builder.schedule()
    if any(g > GRID_LIMITS[d] for g, d in zip(schedule.grid, DIMENSIONS, strict=True)):
        return None
    kernel = lower_statement(program, stmt, layouts=layouts, name=name)
    return GpuKernel(replace(kernel, body=builder.body(), size_params=()), schedule)


# ---- choosing -----------------------------------------------------------------------------


def gpu_kernel_for_statement(program: P.Program, stmt: P.Statement,
                             layouts: Mapping[str, tuple[int, ...]], *, name: str,
                             tiled: str = "auto", precision: str = "exact") -> GpuKernel:
    """``tiled``: 'auto' (tile contractions of at least TILED_MIN_FLOPS), 'always' (tile
    every contraction the template accepts) or 'never'. ``precision='tf32'`` lets float32
    contractions run on the tensor cores (``gpu_mma``); 'exact' keeps float32 throughout."""
    from tcc.passes.schedule.gpu_mma import MMA_MIN_FLOPS, PRECISIONS, mma_schedule

    if tiled not in ("auto", "always", "never"):
        raise ScheduleError(f"tiled must be 'auto', 'always' or 'never', not {tiled!r}")
    if precision not in PRECISIONS:
        raise ScheduleError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if tiled != "never":
        if precision == "tf32":
            kernel = mma_schedule(program, stmt, layouts, name=name,
                                  min_flops=0 if tiled == "always" else MMA_MIN_FLOPS)
            if kernel is not None:
                return kernel
        shape = analyze(program, stmt, layouts)
        if shape is not None and (tiled == "always" or shape.flops >= TILED_MIN_FLOPS):
            kernel = tiled_schedule(program, stmt, layouts, name=name)
            if kernel is not None:
                return kernel
    return (reduce_schedule(program, stmt, layouts, name=name)
            or loop_schedule(program, stmt, layouts, name=name))


def gpu_kernels(program: P.Program, layouts: Mapping[str, tuple[int, ...]] | None = None, *,
                name: str = "kernel", tiled: str = "auto",
                precision: str = "exact") -> tuple[GpuKernel, ...]:
    """One GPU kernel per statement, in program order."""
    layouts = dict(layouts or {})
    return tuple(gpu_kernel_for_statement(program, stmt, layouts, name=f"{name}_k{k}",
                                          tiled=tiled, precision=precision)
                 for k, stmt in enumerate(program.statements))


# ---- printing -----------------------------------------------------------------------------


def _format(stmt: L.Stmt | Barrier, depth: int, lines: list[str], shared: tuple[str, ...]):
    pad = "  " * depth
    if isinstance(stmt, Barrier):
        lines.append(f"{pad}barrier")
    elif isinstance(stmt, WarpReduce):
        lines.append(f"{pad}warp_reduce {stmt.name} ({stmt.op}) over {stmt.lanes} lanes")
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
             f"bindings {dict(sched.bindings)}"]
    for stmt in kernel.body:
        _format(stmt, 1, lines, sched.shared)
    return "\n".join(lines)

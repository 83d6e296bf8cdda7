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

*tiled* (pairwise contractions, the GEMM/GETT view of ``gett.analyze``). One index of each
of the M, N and K groups is tiled (BM x BN block tile, BK = 16 deep); the other output
indices are packed into ``blockIdx.z`` (largest first, while its limit allows; the
renderer decodes them) or left to serial loops, the other K indices to serial loops
around the K tiles. A block of 8 x 8 to 16 x 16 threads computes a BM x BN tile of C
(128 x 128, halved for small M or N and for a grid with fewer blocks than SMs). Each
thread holds a TM x TN register tile (8 x 8 in float32; per dtype, as many accumulators
as fit in 64 registers; smaller only in tiles under 64) whose rows are runs of four,
``4*ty + {0..3}`` and ``4*ty + 64 + {0..3}`` with 16 threads along M, and likewise its
columns with ``tx``: every run is one 128-bit
shared load (LLVM's load-store vectorizer merges the four), and the four stores of a run
from 16 threads cover 256 contiguous bytes of C. A and B tiles pass through registers
into shared memory, each read along the tensor's unit-stride index (a tile read along K is
stored transposed, its rows padded by four against bank conflicts); the next K tile is
fetched while this one is multiplied::

    allocate As[BK*BM], Bs[BK*BN] (shared):
      acc[TM][TN] = 0; fetch tile 0 into registers (0 outside A, B)
      for kt in 0..ceil(K/BK):
        As[kk, mm], Bs[kk, nn] = the fetched registers
        barrier
        fetch tile kt + 1 (its loads in flight during the FMAs)
        for kk in 0..BK: acc[i][j] += As[kk, row(i)] * Bs[kk, col(j)]
        barrier
      C[m0 + row(i), n0 + col(j)] (+)= acc[i][j]

Guards appear only along extents that the tiles do not divide.

Tensor cores (mma/wmma for fp16/bf16/tf32) are not scheduled yet.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from tcc.dtypes import DTYPES
from tcc.errors import ScheduleError
from tcc.ir import loops as L
from tcc.ir import program as P
from tcc.ir.printer import format_scalar
from tcc.passes.lower import _Accesses, loop_order, lower_statement
from tcc.passes.schedule import nest
from tcc.passes.schedule.gett import GettShape, analyze
from tcc.passes.schedule.gpu_gett import FlatGett
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

    template: str  # "loops" | "reduce" | "tiled" | "mma"
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    bindings: tuple[tuple[str, str], ...] = ()  # (index, "x" | "y" | "z")
    shared: tuple[str, ...] = ()
    tiles: tuple[tuple[str, int], ...] = ()
    min_blocks_per_sm: int = 1  # > 1 caps the registers a thread may use (ptxas)

    @property
    def threads(self) -> int:
        return self.block[0] * self.block[1] * self.block[2]

    def to_json(self) -> dict:
        return {"template": self.template, "grid": list(self.grid), "block": list(self.block),
                "bindings": [list(b) for b in self.bindings], "shared": list(self.shared),
                "tiles": dict(self.tiles),
                "min_blocks_per_sm": self.min_blocks_per_sm}


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
    """Block tile BM x BN, BK deep, of (BN/TN) x (BM/TM) threads, each a TM x TN register
    tile."""

    bm: int = 128
    bn: int = 128
    tm: int = 8
    tn: int = 8
    bk: int = 16

    @property
    def threads(self) -> tuple[int, int]:
        """(x, y): x along N, y along M."""
        return self.bn // self.tn, self.bm // self.tm

    @staticmethod
    def for_dtype(dtype: str) -> TileParams:
        """8 x 8 registers, halved (N first) until a thread's accumulators fit in 64 32-bit
        registers: 8 x 8 float32, 8 x 4 float64, 4 x 4 complex128; 16 x 16 threads. More
        would leave one block per SM, or spill."""
        tm = tn = 8
        while tm * tn * DTYPES[dtype].itemsize > 256:
            tm, tn = (tm, tn // 2) if tn >= tm else (tm // 2, tn)
        return TileParams(MAX_THREADS_XY * tm, MAX_THREADS_XY * tn, tm, tn)

    def check(self) -> None:
        """ScheduleError unless the threads cover the tiles evenly in both load directions."""
        tx, ty = self.threads
        if (min(self.bm, self.bn, self.tm, self.tn, self.bk) < 1 or self.bm % self.tm
                or self.bn % self.tn or self.bk % tx or self.bk % ty or self.bm % tx
                or self.bn % ty or not 32 <= tx * ty <= 1024
                or self.tm > RUN and self.tm % RUN or self.tn > RUN and self.tn % RUN):
            raise ScheduleError(f"tile {self} does not fit its {tx} x {ty} threads: BM and BN "
                                "must be multiples of both thread counts, BK too, and a "
                                "register tile over 4 a multiple of 4")

    def fit(self, m: int, n: int, others: int = 1) -> TileParams:
        """Shrink the block tile for small M or N (never below 16), then, down to 64 x 32,
        while the grid (``others`` blocks per tile) would leave SMs idle. A smaller tile
        keeps its register tile and loses threads, down to 8 x 8 threads."""
        bm = max(16, min(self.bm, _pow2_at_least(m)))
        bn = max(16, min(self.bn, _pow2_at_least(n)))
        while bm * bn > 64 * 32 and -(-m // bm) * -(-n // bn) * others < TILED_MIN_BLOCKS:
            bm, bn = (bm // 2, bn) if bm >= bn else (bm, bn // 2)
        tm, tn = min(self.tm, bm // MIN_THREADS_XY), min(self.tn, bn // MIN_THREADS_XY)
        return replace(self, bm=bm, bn=bn, tm=tm, tn=tn)


MIN_THREADS_XY, MAX_THREADS_XY = 8, 16  # threads along M and along N; BK is a multiple
RUN = 4  # a thread's register rows (and columns) come in runs of 4: one 128-bit shared load
TILED_MIN_BLOCKS = 132  # one block per SM of an H100/H200
# two blocks per SM let one block's FMAs run while the other waits at a barrier: at most
# 128 registers a thread of 256 (float32 needs 127; float64's 8 x 4 tile spills a few
# fetched values)
TILED_BLOCKS_PER_SM = 2


def _guard(var: str, body: tuple[L.Stmt, ...], bound: Aff, ragged: int) -> tuple[L.Stmt, ...]:
    """``body`` where ``bound > 0``, when the tiles leave a ``ragged`` edge (else always)."""
    return (L.For(var, 1, body, bound=bound),) if ragged else body


def _spread(thread: str, count: int, threads: int) -> list[Aff]:
    """A thread's ``count`` rows (or columns) of the block tile: runs of ``RUN`` consecutive
    ones, ``threads`` runs apart (``4*tx + {0..3}``, ``4*tx + 64 + {0..3}``), so each run
    is one aligned vector load from shared memory and the threads store runs side by side."""
    run = min(RUN, count)
    return [Aff.var(thread, run) + i % run + threads * run * (i // run) for i in range(count)]


class _Tiled:
    """The tiled template over flattened groups (:class:`FlatGett`): M on blockIdx.y, N on
    blockIdx.x, the batch group on blockIdx.z (its outer indices serial past the grid's
    limit), K in tiles of BK."""

    def __init__(self, shape: GettShape, params: TileParams, dtype: str, accumulate: bool):
        self.s, self.p, self.dtype, self.accumulate = shape, params, dtype, accumulate
        f = self.f = FlatGett(shape)
        self.extents = {"M": f.extent(f.m), "N": f.extent(f.n), "K": f.extent(f.k)}
        z = list(f.batch)  # the innermost batch indices that fit on blockIdx.z
        while f.extent(z) > GRID_LIMITS["z"]:
            z.pop(0)
        self.z, self.serial_out = tuple(z), f.batch[:len(f.batch) - len(z)]
        self.tm, self.tn, self.bk = params.tm, params.tn, params.bk
        self.tx, self.ty = params.threads
        # a tile loaded along K is stored transposed: pad its rows against bank conflicts,
        # by a whole run so that every run stays 16-byte aligned
        self.rows = {"As": params.bm + RUN * f.along_k(shape.a, f.m),
                     "Bs": params.bn + RUN * f.along_k(shape.b, f.n)}
        self.head: list = []  # digits computed once, at the top of the kernel
        z_head, self.where_z = f.split(self.z, Aff.var("blockIdx.z"), "z")
        self.head += z_head
        self.where_z.update({i: Aff.var(i) for i in self.serial_out})

    @property
    def z_blocks(self) -> int:
        return self.f.extent(self.z)

    def group(self, tile: str) -> tuple[str, ...]:
        return self.f.m if tile == "As" else self.f.n

    def tile_slots(self, tensor: str, tile: str) -> list[tuple[Aff, Aff, Aff]]:
        """(element of ``tile``, flat M or N position, k position within the tile) that
        each thread moves per K tile."""
        width = self.p.bm if tile == "As" else self.p.bn
        base = Aff.var(f"blockIdx.{'y' if tile == 'As' else 'x'}", width)
        x, y = Aff.var("threadIdx.x"), Aff.var("threadIdx.y")
        if self.f.along_k(tensor, self.group(tile)):  # threadIdx.x runs along K
            pairs = [(x + k, y + o) for o in range(0, width, self.ty)
                     for k in range(0, self.bk, self.tx)]
        else:
            pairs = [(y + k, x + o) for o in range(0, width, self.tx)
                     for k in range(0, self.bk, self.ty)]
        return [(kk * self.rows[tile] + oo, base + oo, kk) for kk, oo in pairs]

    def digits(self) -> None:
        """The M or N share of the address of every row a thread loads, once at the top."""
        self.row_offsets: dict[tuple[str, int], Aff] = {}
        for tensor, tile in ((self.s.a, "As"), (self.s.b, "Bs")):
            for r, (_, o_global, _) in enumerate(self.tile_slots(tensor, tile)):
                head, self.row_offsets[tile, r] = self.f.offset_of(
                    tensor, self.group(tile), o_global, f"{tile}.row{r}")
                self.head += head

    def fetch(self, tensor: str, tile: str, k_tile: Aff) -> list[L.Stmt]:
        """``tile.r = tensor[o, k_tile*BK + kk]`` into registers, 0 outside the tensor
        (guarded only along an extent that the tiles do not divide)."""
        f = self.f
        width = self.p.bm if tile == "As" else self.p.bn
        extent_o = self.extents["M" if tile == "As" else "N"]
        ragged_o, ragged_k = extent_o % width, self.extents["K"] % self.bk
        outer = f.part(tensor, self.where_z, (*self.z, *self.serial_out))
        outer = outer + self.s.offsets.get(tensor, 0)
        stmts: list[L.Stmt] = []
        for r, (_, o_global, kk) in enumerate(self.tile_slots(tensor, tile)):
            k_global = k_tile * self.bk + kk
            k_head, k_share = f.offset_of(tensor, f.k, k_global, f"{tile}.col{r}")
            load = L.Load(tensor, self.row_offsets[tile, r] + k_share + outer)
            body = _guard(f"{tile}.k{r}", (*k_head, L.Assign(f"{tile}.{r}", load)),
                          self.extents["K"] - k_global, ragged_k)
            body = _guard(f"{tile}.o{r}", body, extent_o - o_global, ragged_o)
            if ragged_o or ragged_k:
                stmts.append(L.Assign(f"{tile}.{r}", L.Const(0.0, self.dtype)))
            stmts += body
        return stmts

    def stash(self, tensor: str, tile: str) -> list[L.Stmt]:
        """The fetched registers into the shared tile."""
        return [L.Store(tile, slot, L.Local(f"{tile}.{r}"))
                for r, (slot, _, _) in enumerate(self.tile_slots(tensor, tile))]

    def compute(self) -> L.Stmt:
        dt = self.dtype
        kk = Aff.var("k.step")
        step: list[L.Stmt] = []
        for i, row in enumerate(_spread("threadIdx.y", self.tm, self.ty)):
            step.append(L.Declare(f"a{i}", dt, L.Load("As", kk * self.rows["As"] + row)))
        for j, col in enumerate(_spread("threadIdx.x", self.tn, self.tx)):
            step.append(L.Declare(f"b{j}", dt, L.Load("Bs", kk * self.rows["Bs"] + col)))
        for i in range(self.tm):
            for j in range(self.tn):
                product = L.Binary("mul", L.Local(f"a{i}"), L.Local(f"b{j}"))
                step.append(L.Assign(f"acc{i}_{j}", L.Binary("add", L.Local(f"acc{i}_{j}"),
                                                               product)))
        return L.For("k.step", self.bk, tuple(step))

    def store(self) -> list[L.Stmt]:
        s, p, f = self.s, self.p, self.f
        stmts: list[L.Stmt] = []
        outer = f.part(s.c, self.where_z, (*self.z, *self.serial_out)) + s.offsets.get(s.c, 0)
        columns = []
        for j, col in enumerate(_spread("threadIdx.x", self.tn, self.tx)):
            n_global = Aff.var("blockIdx.x", p.bn) + col
            head, share = f.offset_of(s.c, f.n, n_global, f"c.col{j}")
            stmts += head
            columns.append((n_global, share))
        for i, row in enumerate(_spread("threadIdx.y", self.tm, self.ty)):
            m_global = Aff.var("blockIdx.y", p.bm) + row
            head, row_share = f.offset_of(s.c, f.m, m_global, f"c.row{i}")
            stores: list[L.Stmt] = list(head)
            for j, (n_global, col_share) in enumerate(columns):
                index = row_share + col_share + outer
                value: L.Scalar = L.Local(f"acc{i}_{j}")
                if s.scale != 1.0:  # constant factors of the product
                    value = L.Binary("mul", value, L.Const(s.scale, self.dtype))
                if self.accumulate:
                    value = L.Binary("add", L.Load(s.c, index), value)
                stores += _guard(f"n.{j}", (L.Store(s.c, index, value),),
                                 self.extents["N"] - n_global, self.extents["N"] % p.bn)
            stmts += _guard(f"m.{i}", tuple(stores), self.extents["M"] - m_global,
                            self.extents["M"] % p.bm)
        return stmts

    def body(self) -> tuple[L.Stmt, ...]:
        """Per K tile: the registers fetched one tile ahead go to shared memory, then the
        next tile's global loads are issued before this tile's FMAs (their latency hides
        behind the arithmetic; past the last tile the K guard leaves them zero)."""
        s, dt = self.s, self.dtype
        a, b = (s.a, "As"), (s.b, "Bs")
        self.digits()
        k_tile, k_tiles = Aff.var("k.tile"), -(-self.extents["K"] // self.bk)
        prefetch: tuple = (*self.fetch(*a, k_tile + 1), *self.fetch(*b, k_tile + 1))
        if self.extents["K"] % self.bk == 0:  # no K guards: skip the fetch past the last tile
            prefetch = (L.For("k.next", 1, prefetch, bound=k_tiles - 1 - k_tile),)
        k_loop: tuple = (
            *self.fetch(*a, Aff()), *self.fetch(*b, Aff()),
            L.For("k.tile", k_tiles, (
                *self.stash(*a), *self.stash(*b), Barrier(),
                *prefetch, self.compute(), Barrier(),
            )),
        )
        zero = L.Const(0.0, dt)
        inner: tuple = (
            *(L.Declare(f"acc{i}_{j}", dt, zero) for i in range(self.tm) for j in range(self.tn)),
            *k_loop, *self.store(),
        )
        for index in reversed(self.serial_out):
            inner = (L.For(index, s.sizes[index], inner),)
        fetched = tuple(L.Declare(f"{tile}.{r}", dt, zero)
                        for tensor, tile in (a, b)
                        for r in range(len(self.tile_slots(tensor, tile))))
        shared = (L.Allocate("Bs", dt, self.bk * self.rows["Bs"], (*fetched, *inner)),)
        return (*self.head, L.Allocate("As", dt, self.bk * self.rows["As"], shared))

    def schedule(self) -> GpuSchedule:
        p, f = self.p, self.f
        grid = (-(-self.extents["N"] // p.bn), -(-self.extents["M"] // p.bm), self.z_blocks)
        bindings = [("_".join(f.n), "x"), ("_".join(f.m), "y")]
        bindings += [("_".join(self.z), "z")] if self.z else []
        tiles = (("bm", p.bm), ("bn", p.bn), ("bk", self.bk), ("tm", self.tm), ("tn", self.tn))
        return GpuSchedule("tiled", grid, (self.tx, self.ty, 1), tuple(bindings),
                           ("As", "Bs"), tiles, TILED_BLOCKS_PER_SM)


def tiled_schedule(program: P.Program, stmt: P.Statement,
                   layouts: Mapping[str, tuple[int, ...]], *, name: str,
                   params: TileParams | None = None) -> GpuKernel | None:
    """The shared-memory tiled contraction, or None when the statement is not one (a
    fused epilogue runs as a kernel of its own: ``statement_kernels``)."""
    if stmt.epilogue is not None:
        return None
    shape = analyze(program, stmt, layouts)
    if shape is None or not (shape.m and shape.n and shape.k):
        return None  # a product with no M, N or K: the loop or reduction schedules
    if params is not None:  # a tuned choice: taken as it is
        params.check()
        fitted = params
    else:
        params = TileParams.for_dtype(stmt.dtype)
        builder = _Tiled(shape, params, stmt.dtype, stmt.accumulate)
        fitted = params.fit(builder.extents["M"], builder.extents["N"], builder.z_blocks)
    builder = _Tiled(shape, fitted, stmt.dtype, stmt.accumulate)
    schedule = builder.schedule()
    if any(g > GRID_LIMITS[d] for g, d in zip(schedule.grid, DIMENSIONS, strict=True)):
        return None
    kernel = lower_statement(program, stmt, layouts=layouts, name=name)
    return GpuKernel(replace(kernel, body=builder.body(), size_params=()), schedule)


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

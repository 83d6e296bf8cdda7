"""The tiled schedule: a pairwise contraction as one register-blocked GEMM on CUDA cores.

Any contraction ``gett.analyze`` accepts runs over its flattened groups
(:class:`~tcc.passes.schedule.gpu_gett.FlatGett`): M on ``blockIdx.y``, N on
``blockIdx.x``, the batch group on ``blockIdx.z`` (its outer indices serial past the
grid's limit), K in tiles of BK. A block of 8 x 8 to 16 x 16 threads computes a BM x BN
tile of C (128 x 128, halved for small M or N and for a grid with fewer blocks than SMs).
Each thread holds a TM x TN register tile (8 x 8 in float32; per dtype, as many
accumulators as fit in 64 registers) whose rows are runs of four, ``4*ty + {0..3}`` and
``4*ty + 64 + {0..3}`` with 16 threads along M, and likewise its columns with ``tx``:
every run is one 128-bit shared load (LLVM's load-store vectorizer merges the four), and
the four stores of a run from 16 threads cover 256 contiguous bytes of C. A and B tiles
pass through registers into shared memory, each read along the tensor's unit-stride index
(a tile read along K is stored transposed, its rows padded by four against bank
conflicts); each loaded row keeps one address offset, not its digits; the next K tile is
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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from tcc.dtypes import DTYPES
from tcc.errors import ScheduleError
from tcc.ir import loops as L
from tcc.ir import program as P
from tcc.passes.lower import lower_statement
from tcc.passes.schedule.gett import GettShape, analyze
from tcc.passes.schedule.gpu_gett import FlatGett
from tcc.passes.schedule.gpu_ir import (
    DIMENSIONS,
    GRID_LIMITS,
    Barrier,
    GpuKernel,
    GpuSchedule,
    pow2_at_least,
)

Aff = L.Affine
TILED_MIN_FLOPS = 2 * 64**3  # below this the plain loop schedule is as good

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
        bm = max(16, min(self.bm, pow2_at_least(m)))
        bn = max(16, min(self.bn, pow2_at_least(n)))
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



"""Tensor-core schedule: float32 contractions on ``mma.sync`` with tf32 inputs.

Used only when the user allows reduced precision (``precision='tf32'``): the tensor cores
read 10 of float32's 23 mantissa bits (inputs rounded to nearest), and accumulate in
float32. Any pairwise contraction ``gett.analyze`` accepts runs as one GEMM over its
flattened groups (:class:`~tcc.passes.schedule.gpu_gett.FlatGett`).

A block of 8 warps (threads 32 x 4 x 2: lane, warp column, warp row) computes a 128 x 128
tile of C, each warp 64 x 32 of it as 4 x 4 ``m16n8k8`` products, 64 accumulators per
lane. Per 32-deep K tile, the A and B tiles are staged in shared memory with K inside a
row (``As[m][k]``, ``Bs[n][k]``, pitch 36 words, K positions t and t + 4 of each 8 side
by side so that a lane reads both of its values for one product at once), read from
global memory along whichever of K or M (N) is the tensor's contiguous direction and
zero-filled past the edges. Each K tile is fetched into
registers one tile ahead, so its global loads are in flight during the products::

    a.e, b.e = A[m0 + mm, kk], B[kk, n0 + nn]              (tile 0, 16 + 16 per thread)
    for kt in 0..ceil(K/32):
      As[mm][kk], Bs[nn][kk] = a.e, b.e
      barrier
      a.e, b.e = A[m0 + mm, 32*(kt+1) + kk], B[...]       (but after the last tile)
      for ks in 0..4:
        a{mi} = As[64*wm + 16*mi + g (+8)][8*ks + t (+4)]   (g = lane // 4, t = lane % 4)
        b{ni} = Bs[32*wn + 8*ni + g][8*ks + t (+4)]
        mma(a{mi}, b{ni}) -> acc{mi}_{ni}                    (16 per warp)
      barrier
    C[...] = acc (guarded at the edges)
"""

from __future__ import annotations

from collections.abc import Mapping

from tcc.ir import loops as L
from tcc.ir import program as P
from tcc.passes.lower import lower_statement
from tcc.passes.schedule.gett import analyze
from tcc.passes.schedule.gpu_gett import FlatGett
from tcc.passes.schedule.gpu_ir import (
    GRID_LIMITS,
    Barrier,
    GpuKernel,
    GpuSchedule,
    IndexOf,
    Mma,
)

Aff = L.Affine
BM, BN, BK = 128, 128, 32
PITCH = BK + 4  # words per shared row: fragment reads fall on 32 different banks
WARPS_M, WARPS_N = 2, 4  # warp grid of the block; each warp 64 x 32 of C
MI, NI = 4, 4  # m16 x n8 products per warp
THREADS = 32 * WARPS_M * WARPS_N
MMA_MIN_FLOPS = 2 * 128**3  # smaller contractions take the CUDA-core templates
PRECISIONS = ("exact", "tf32")

X, Y, Z = Aff.var("threadIdx.x"), Aff.var("threadIdx.y"), Aff.var("threadIdx.z")
G, T = Aff.var("lane.g"), Aff.var("lane.t")
# the K position of lane X within a row of a shared tile (see ``_Interleave``)
LANE_K = (IndexOf("lane.k8", X, 8), IndexOf("lane.k4", X, 4, 2), IndexOf("lane.k1", X, 1, 4))
LANE_SLOT = Aff.var("lane.k8", 8) + Aff.var("lane.k1", 2) + Aff.var("lane.k4")


def interleaved(k: int) -> int:
    """Where K position ``k`` of a tile sits in its shared row: within each 8, positions
    ``t`` and ``t + 4`` side by side (``0 4 1 5 2 6 3 7``), so the two values a lane gives
    to one ``mma`` (K = t and t + 4) are one 64-bit shared load."""
    return 8 * (k // 8) + 2 * (k % 4) + (k % 8) // 4


class _MmaTile:
    def __init__(self, flat: FlatGett, accumulate: bool) -> None:
        self.f, self.s, self.accumulate = flat, flat.s, accumulate
        self.M, self.N, self.K = flat.extent(flat.m), flat.extent(flat.n), flat.extent(flat.k)

    def slots(self, tensor: str, group: tuple[str, ...]) -> list[tuple[Aff, Aff, Aff]]:
        """(row within the tile, k within the tile, its slot in the shared row) of the 16
        elements a thread moves."""
        if self.f.along_k(tensor, group):  # a warp reads 32 consecutive K positions
            return [(Y + Z * 4 + 8 * e, X, LANE_SLOT) for e in range(BM * BK // THREADS)]
        # 32 rows at K = Z + 2e: with e = 4a + b that is 8a + (Z + 2b), Z + 2b < 8
        return [(X + Y * 32, Z + 2 * e,
                 Z * 2 + 8 * (e // 4) + 4 * (e % 2) + (e % 4) // 2)
                for e in range(BM * BK // THREADS)]

    def rows(self, tensor: str, tile: str, group: tuple[str, ...], base: Aff) -> list:
        """Each loaded row's share of ``tensor``'s address, once at the top."""
        head: list = []
        for e, (oo, _, _) in enumerate(self.slots(tensor, group)):
            stmts, self.row_offsets[tile, e] = self.f.offset_of(tensor, group, base + oo,
                                                                f"{tile}.row{e}")
            head += stmts
        return head

    def fetch(self, tensor: str, tile: str, group: tuple[str, ...], base: Aff, extent: int,
              k_tile: Aff, outer: Aff) -> list[L.Stmt]:
        """One K tile of ``tensor`` into the registers ``tile.e``, zero outside it."""
        stmts: list[L.Stmt] = []
        for e, (oo, kk, _) in enumerate(self.slots(tensor, group)):
            k_global = k_tile * BK + kk
            k_head, k_share = self.f.offset_of(tensor, self.f.k, k_global, f"{tile}.col{e}")
            load = L.Load(tensor, self.row_offsets[tile, e] + k_share + outer)
            guarded = L.For(f"{tile}.k{e}", 1, (*k_head, L.Assign(f"{tile}.{e}", load)),
                            bound=self.K - k_global)
            stmts += [L.Assign(f"{tile}.{e}", L.Const(0.0, "float32")),
                      L.For(f"{tile}.o{e}", 1, (guarded,), bound=extent - base - oo)]
        return stmts

    def stash(self, tensor: str, tile: str, group: tuple[str, ...]) -> list[L.Stmt]:
        return [L.Store(tile, oo * PITCH + slot, L.Local(f"{tile}.{e}"))
                for e, (oo, _, slot) in enumerate(self.slots(tensor, group))]

    def step(self) -> L.For:
        """One 8-deep slice of the shared tiles: fragments, then 16 products per warp."""
        ks = Aff.var("ks", 8)
        body: list[L.Stmt] = []
        for mi in range(MI):
            row = Z * 64 + 16 * mi + G
            # K = t and t + 4 sit side by side in a shared row (``interleaved``)
            spots = ((row, T * 2), (row + 8, T * 2), (row, T * 2 + 1), (row + 8, T * 2 + 1))
            for r, (m, k) in enumerate(spots):
                body.append(L.Declare(f"a{mi}_{r}", "float32", L.Load("As", m * PITCH + ks + k)))
        for ni in range(NI):
            col = Y * 32 + 8 * ni + G
            for r, k in enumerate((T * 2, T * 2 + 1)):
                body.append(L.Declare(f"b{ni}_{r}", "float32",
                                      L.Load("Bs", col * PITCH + ks + k)))
        for mi in range(MI):
            for ni in range(NI):
                body.append(Mma(tuple(L.Local(f"a{mi}_{r}") for r in range(4)),
                                tuple(L.Local(f"b{ni}_{r}") for r in range(2)),
                                tuple(f"acc{mi}_{ni}_{r}" for r in range(4))))
        return L.For("ks", BK // 8, tuple(body))

    def store(self, outer: Aff) -> list[L.Stmt]:
        s, f = self.s, self.f
        stmts: list[L.Stmt] = []
        m0, n0 = Aff.var("blockIdx.y", BM), Aff.var("blockIdx.x", BN)
        columns = []
        for ni in range(NI):
            for odd in range(2):
                n = n0 + Y * 32 + T * 2 + (8 * ni + odd)
                head, share = f.offset_of(s.c, f.n, n, f"c.col{ni}{odd}")
                stmts += head
                columns.append((ni, odd, n, share))
        for mi in range(MI):
            for half in range(2):
                m = m0 + Z * 64 + G + (16 * mi + 8 * half)
                head, row_share = f.offset_of(s.c, f.m, m, f"c.row{mi}{half}")
                row: list[L.Stmt] = list(head)
                for ni, odd, n, col_share in columns:
                    index = row_share + col_share + outer
                    value: L.Scalar = L.Local(f"acc{mi}_{ni}_{2 * half + odd}")
                    if s.scale != 1.0:
                        value = L.Binary("mul", value, L.Const(s.scale, "float32"))
                    if self.accumulate:
                        value = L.Binary("add", L.Load(s.c, index), value)
                    row.append(L.For(f"n.{ni}{odd}", 1, (L.Store(s.c, index, value),),
                                     bound=self.N - n))
                stmts.append(L.For(f"m.{mi}{half}", 1, tuple(row), bound=self.M - m))
        return stmts

    def body(self) -> tuple[L.Stmt, ...]:
        """Per K tile: the registers fetched one tile ahead go to shared memory, then the
        next tile's global loads are issued before this tile's products (their latency
        hides behind the tensor cores; past the last tile they are skipped)."""
        f, s = self.f, self.s
        batch_head, where_batch = f.split(f.batch, Aff.var("blockIdx.z"), "z")
        lane_ids = (IndexOf("lane.g", X, 4), IndexOf("lane.t", X, 1, 4), *LANE_K)
        a = (s.a, "As", f.m, Aff.var("blockIdx.y", BM), self.M)
        b = (s.b, "Bs", f.n, Aff.var("blockIdx.x", BN), self.N)
        self.row_offsets: dict = {}
        head = [*self.rows(*a[:4]), *self.rows(*b[:4])]
        outer = {t: f.part(t, where_batch, f.batch) + s.offsets.get(t, 0) for t in (s.a, s.b, s.c)}
        kt, k_tiles = Aff.var("kt"), -(-self.K // BK)

        def fetch(k_tile: Aff) -> list[L.Stmt]:
            return [*self.fetch(*a, k_tile, outer[s.a]), *self.fetch(*b, k_tile, outer[s.b])]

        prefetch = (L.For("kt.next", 1, tuple(fetch(kt + 1)), bound=k_tiles - 1 - kt),)
        k_loop = L.For("kt", k_tiles, (*self.stash(*a[:3]), *self.stash(*b[:3]), Barrier(),
                                       *prefetch, self.step(), Barrier()))
        zero = L.Const(0.0, "float32")
        registers = [L.Declare(f"{tile}.{e}", "float32", zero) for tile in ("As", "Bs")
                     for e in range(BM * BK // THREADS)]
        inner = (*(L.Declare(f"acc{mi}_{ni}_{r}", "float32", zero)
                   for mi in range(MI) for ni in range(NI) for r in range(4)),
                 *registers, *fetch(Aff()), k_loop, *self.store(outer[s.c]))
        shared = (L.Allocate("Bs", "float32", BN * PITCH, inner),)
        return (*batch_head, *lane_ids, *head,
                L.Allocate("As", "float32", BM * PITCH, shared))


def mma_schedule(program: P.Program, stmt: P.Statement,
                 layouts: Mapping[str, tuple[int, ...]], *, name: str,
                 min_flops: int = MMA_MIN_FLOPS):
    """The tensor-core template for a float32 contraction, or None when it does not apply."""
    if stmt.dtype != "float32" or stmt.epilogue is not None:
        return None
    shape = analyze(program, stmt, layouts)
    if shape is None or not shape.k or shape.flops < min_flops:
        return None
    flat = FlatGett(shape)
    tile = _MmaTile(flat, stmt.accumulate)
    grid = (-(-tile.N // BN), -(-tile.M // BM), flat.extent(flat.batch))
    if grid[0] > GRID_LIMITS["x"] or grid[1] > GRID_LIMITS["y"] or grid[2] > GRID_LIMITS["z"]:
        return None
    kernel = lower_statement(program, stmt, layouts=layouts, name=name)
    bindings = (("_".join(flat.n), "x"), ("_".join(flat.m), "y"), ("_".join(flat.batch), "z"))
    schedule = GpuSchedule("mma", grid, (32, WARPS_N, WARPS_M),
                           tuple(b for b in bindings if b[0]), ("As", "Bs"),
                           (("bm", BM), ("bn", BN), ("bk", BK), ("mma", 16 * 8 * 8)))
    return GpuKernel(L.Kernel(kernel.name, kernel.buffers, tile.body()), schedule)

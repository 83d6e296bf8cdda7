"""Tensor-core schedule: float32 contractions on ``mma.sync`` with tf32 inputs.

Used only when the user allows reduced precision (``precision='tf32'``): the tensor cores
read 10 of float32's 23 mantissa bits (inputs rounded to nearest), and accumulate in
float32. Any pairwise contraction ``gett.analyze`` accepts runs as one GEMM over its
flattened groups (:class:`~tcc.passes.schedule.gpu_gett.FlatGett`).

A block of 8 warps (threads 32 x 4 x 2: lane, warp column, warp row) computes a 128 x 128
tile of C, each warp 64 x 32 of it as 4 x 4 ``m16n8k8`` products, 64 accumulators per
lane. Per 32-deep K tile, the A and B tiles are staged in shared memory with K inside a
row (``As[m][k]``, ``Bs[n][k]``, pitch 36 words: the fragment reads of a warp then hit
32 different banks), read from global memory along whichever of K or M (N) is the
tensor's contiguous direction and zero-filled past the edges::

    for kt in 0..ceil(K/32):
      As[mm][kk] = A[m0 + mm, 32*kt + kk] ; Bs[nn][kk] = B[32*kt + kk, n0 + nn]
      barrier
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
from tcc.passes.schedule.gpu_ir import Barrier, IndexOf, Mma

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


class _MmaTile:
    def __init__(self, flat: FlatGett, accumulate: bool) -> None:
        self.f, self.s, self.accumulate = flat, flat.s, accumulate
        self.M, self.N, self.K = flat.extent(flat.m), flat.extent(flat.n), flat.extent(flat.k)

    def load(self, tensor: str, tile: str, group: tuple[str, ...], base: Aff,
             extent: int, where_batch: Mapping[str, Aff]) -> tuple[list, list]:
        """(statements outside the K loop, statements inside it) that copy one K tile of
        ``tensor`` into ``tile``: 16 elements per thread, zero outside the tensor."""
        along_k = self.f.along_k(tensor, group)
        outer, inner = [], []
        for e in range((BM * BK) // THREADS):
            if along_k:  # a warp reads 32 consecutive K positions of one row
                kk, oo = X, Y + Z * 4 + 8 * e
            else:  # a warp reads 32 consecutive rows at one K position
                kk, oo = Z + 2 * e, X + Y * 32
            head, where_o = self.f.split(group, base + oo, f"{tile}{e}")
            k_global = Aff.var("kt", BK) + kk
            k_head, where_k = self.f.split(self.f.k, k_global, f"{tile}k{e}")
            outer += head
            address = self.f.address(tensor, {**where_o, **where_k, **where_batch})
            slot = oo * PITCH + kk
            load = L.Load(tensor, address)
            guarded = L.For(f"{tile}.k{e}", 1, (*k_head, L.Store(tile, slot, load)),
                            bound=self.K - k_global)
            inner += [L.Store(tile, slot, L.Const(0.0, "float32")),
                      L.For(f"{tile}.o{e}", 1, (guarded,), bound=extent - base - oo)]
        return outer, inner

    def step(self) -> L.For:
        """One 8-deep slice of the shared tiles: fragments, then 16 products per warp."""
        ks = Aff.var("ks", 8)
        body: list[L.Stmt] = []
        for mi in range(MI):
            row = Z * 64 + 16 * mi + G
            spots = ((row, T), (row + 8, T), (row, T + 4), (row + 8, T + 4))
            for r, (m, k) in enumerate(spots):
                body.append(L.Declare(f"a{mi}_{r}", "float32", L.Load("As", m * PITCH + ks + k)))
        for ni in range(NI):
            col = Y * 32 + 8 * ni + G
            for r, k in enumerate((T, T + 4)):
                body.append(L.Declare(f"b{ni}_{r}", "float32",
                                      L.Load("Bs", col * PITCH + ks + k)))
        for mi in range(MI):
            for ni in range(NI):
                body.append(Mma(tuple(L.Local(f"a{mi}_{r}") for r in range(4)),
                                tuple(L.Local(f"b{ni}_{r}") for r in range(2)),
                                tuple(f"acc{mi}_{ni}_{r}" for r in range(4))))
        return L.For("ks", BK // 8, tuple(body))

    def store(self, where_batch: Mapping[str, Aff]) -> list[L.Stmt]:
        s, f = self.s, self.f
        stmts: list[L.Stmt] = []
        m0, n0 = Aff.var("blockIdx.y", BM), Aff.var("blockIdx.x", BN)
        for mi in range(MI):
            for half in range(2):
                m = m0 + Z * 64 + G + (16 * mi + 8 * half)
                m_head, where_m = f.split(f.m, m, f"c{mi}{half}")
                row: list[L.Stmt] = list(m_head)
                for ni in range(NI):
                    for odd in range(2):
                        n = n0 + Y * 32 + T * 2 + (8 * ni + odd)
                        n_head, where_n = f.split(f.n, n, f"c{mi}{half}{ni}{odd}")
                        index = f.address(s.c, {**where_m, **where_n, **where_batch})
                        value: L.Scalar = L.Local(f"acc{mi}_{ni}_{2 * half + odd}")
                        if s.scale != 1.0:
                            value = L.Binary("mul", value, L.Const(s.scale, "float32"))
                        if self.accumulate:
                            value = L.Binary("add", L.Load(s.c, index), value)
                        row.append(L.For(f"n.{ni}{odd}", 1, (*n_head, L.Store(s.c, index, value)),
                                         bound=self.N - n))
                stmts.append(L.For(f"m.{mi}{half}", 1, tuple(row), bound=self.M - m))
        return stmts

    def body(self) -> tuple[L.Stmt, ...]:
        f = self.f
        batch_head, where_batch = f.split(f.batch, Aff.var("blockIdx.z"), "z")
        lane_ids = (IndexOf("lane.g", X, 4), IndexOf("lane.t", X, 1, 4))
        a_out, a_in = self.load(self.s.a, "As", f.m, Aff.var("blockIdx.y", BM), self.M,
                                where_batch)
        b_out, b_in = self.load(self.s.b, "Bs", f.n, Aff.var("blockIdx.x", BN), self.N,
                                where_batch)
        k_loop = L.For("kt", -(-self.K // BK), (*a_in, *b_in, Barrier(), self.step(),
                                                Barrier()))
        zero = L.Const(0.0, "float32")
        inner = (*(L.Declare(f"acc{mi}_{ni}_{r}", "float32", zero)
                   for mi in range(MI) for ni in range(NI) for r in range(4)),
                 *a_out, *b_out, k_loop, *self.store(where_batch))
        shared = (L.Allocate("Bs", "float32", BN * PITCH, inner),)
        return (*batch_head, *lane_ids, L.Allocate("As", "float32", BM * PITCH, shared))


def mma_schedule(program: P.Program, stmt: P.Statement,
                 layouts: Mapping[str, tuple[int, ...]], *, name: str,
                 min_flops: int = MMA_MIN_FLOPS):
    """The tensor-core template for a float32 contraction, or None when it does not apply."""
    from tcc.passes.schedule.gpu import GRID_LIMITS, GpuKernel, GpuSchedule

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

"""GETT blocking: the micro-tile and cache-block sizes, from the machine and the shape.

``default_params`` derives them from the register file and the cache sizes; ``fit_params``
adapts them to one contraction (narrow N, threads sharing M blocks, equal K blocks). The
autotuner searches around them (tcc.tune.space).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import cache

from tcc.dtypes import DTYPES

TILE_ORDERS = ("ir", "jr")  # the outer loop over a block's micro-tiles
PARALLEL_GROUPS = ("m", "n")  # whose cache blocks the threads share out
IN_PLACE_MAX_N = 512  # columns of a batched product up to which A is read in place
A_PACKINGS = ("block", "whole", "none")  # A packed per (N, K) block, all of M once
# per K block, or not at all (read in place where its layout allows)


def real_dtype(dtype: str) -> str:
    """The dtype the micro-kernel computes in: a complex dtype's component."""
    return DTYPES[dtype].component or dtype if DTYPES[dtype].is_complex else dtype


@dataclass(frozen=True, slots=True)
class GettParams:
    """Blocking: micro-tile MR x NR (NR a multiple of the vector width), cache blocks, and
    two choices of the tile loop: ``order`` "ir" (A's micro-panel stays in L1 while the
    tiles sweep B's, the default) or "jr" (B's micro-panel stays, A's stream), and
    ``prefetch``: how many K steps ahead the micro-kernel prefetches the streamed panel
    (0: leave it to the hardware prefetchers); ``parallel``: whose cache blocks the
    threads share out when there are too few batches: "m" (they split each A block's
    rows, meeting at two barriers per N x K block; the default) or "n" (each thread runs
    whole N blocks, packing its own B and A, with no barrier inside); ``pack_a``: "block"
    (A's M x K block is packed for every N block; the default) or "whole" (K blocks
    outermost: all of A's K block is packed once, then every N block uses it)."""

    mr: int
    nr: int
    kc: int
    mc: int
    nc: int
    lanes: int
    threads: int = 1
    order: str = "ir"
    prefetch: int = 0
    parallel: str = "m"
    pack_a: str = "block"

    def __post_init__(self) -> None:
        if self.order not in TILE_ORDERS:
            raise ValueError(f"GettParams.order must be one of {TILE_ORDERS}, not {self.order!r}")
        if self.pack_a not in A_PACKINGS:
            raise ValueError(f"GettParams.pack_a must be one of {A_PACKINGS}, not {self.pack_a!r}")
        if self.parallel not in PARALLEL_GROUPS:
            raise ValueError(f"GettParams.parallel must be one of {PARALLEL_GROUPS}, "
                             f"not {self.parallel!r}")
        if self.prefetch < 0:
            raise ValueError("GettParams.prefetch must be >= 0")

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}


def default_params(dtype: str, vector_bits: int, threads: int) -> GettParams:
    """Blocking from the register file and the cache sizes of this machine.

    MR x NR: 6 x 4 vectors of accumulators (24 of 32 AVX-512 registers; 6 x 2 of 16
    below AVX-512, as BLIS does on Haswell). The MR x KC A micro-panel stays in a quarter
    of L1 while the tile loop sweeps B's micro-panels; the KC x NC B block fills half of
    L2; KC is as deep as that allows up to 256 (each K block costs a pass over C).
    Measured best among the candidates on an AVX-512 Xeon (Emerald Rapids). The
    micro-kernel prefetches B's micro-panel 8 K steps (2 KiB) ahead: 5-14 % faster on
    1024-2048 GEMMs in fp32 and fp64 and on a 4-D permuted contraction there (paired
    rounds), and the autotuner chose 8-16 for 7 of 8 tuned workloads."""
    itemsize = DTYPES[real_dtype(dtype)].itemsize
    lanes = max(vector_bits // (8 * itemsize), 1)
    vectors = 4 if vector_bits >= 512 else 2
    mr, nr = 6, vectors * lanes
    l1, l2, _ = cache_sizes()
    kc = max(64, min(256, l1 // 4 // (mr * itemsize)) // 8 * 8)
    nc = max(nr, l2 // 2 // (kc * itemsize) // nr * nr)
    return GettParams(mr=mr, nr=nr, kc=kc, mc=96, nc=nc, lanes=lanes, threads=threads,
                      prefetch=8)


@cache
def cache_sizes() -> tuple[int, int, int]:
    """Per-core L1 data, L2 and L3 sizes in bytes (sysfs; usual values when unknown)."""
    sizes = {1: 32 << 10, 2: 1 << 20, 3: 8 << 20}
    root = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in os.listdir(root):
            path = os.path.join(root, entry)
            if not entry.startswith("index"):
                continue
            with open(os.path.join(path, "type")) as f:
                if f.read().strip() == "Instruction":
                    continue
            with open(os.path.join(path, "level")) as f:
                level = int(f.read())
            with open(os.path.join(path, "size")) as f:
                text = f.read().strip().upper()
            scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
            sizes[level] = int(text.rstrip("KMG")) * scale
    except (OSError, ValueError):
        pass
    return sizes[1], sizes[2], sizes.get(3, sizes[2])


def fit_params(params: GettParams, m: int, n: int, batches: int, k: int = 0,
               itemsize: int = 4, a_in_place: bool = False) -> GettParams:
    """Adapt default blocking to a shape: a narrow N gets a narrower micro-tile (and a
    taller one, same registers), and so does an N that a narrower tile pads by a tenth of
    N less (N = 144: 3 tiles of 3 vectors instead of 64 + 64 + 16 padded to 64: 1.3-1.4x
    in paired rounds); the threads share M blocks, or N blocks when M has too
    few, sized so that they get equal shares; K blocks are equal (no short last block
    paying a whole C update for little work). When one B micro-panel (K x NR) fits 3/4 of
    L1, the tiles sweep A's micro-panels past it (order "jr") instead of B's past A's:
    batched attention scores with K = 32 / 64 / 128 1.03x / 1.10x / 1.04x in paired rounds,
    unbatched short-K GEMMs unchanged. A is packed whole per K block when a thread has
    two or more N blocks. Batched products with a short N, where each packed element of A
    serves few columns, read A in place (``a_in_place``: its M and K groups are affine)
    with a micro-tile height that divides M: attention scores (256 x 256, K = 64 / 128,
    64 batches) 1.15x / 1.13x in paired rounds; an unbatched 1024 GEMM 0.95x (not taken);
    a height below ``mr`` only with order "jr"."""
    lanes = params.lanes
    nr, mr = params.nr, params.mr
    vectors_needed = -(-n // lanes)
    if vectors_needed < nr // lanes:
        nr = vectors_needed * lanes
        mr = min(max(mr * params.nr // nr, mr), 16 if vectors_needed == 1 else 12)
    elif n > 0:  # a narrower tile when it pads N by a tenth of N less
        padding = {v * lanes: -(-n // (v * lanes)) * v * lanes - n
                   for v in range(2, nr // lanes + 1)}
        narrow = min(padding, key=lambda width: (padding[width], -width))
        if padding[nr] - padding[narrow] >= n / 10:
            nr, mr = narrow, min(mr * params.nr // narrow, 12)
    if (mr, nr) == (params.mr, params.nr) and 0 < m and n > 0:
        mr, nr = short_m_tile(params, m, n)
    mc = max(mr, params.mc // mr * mr)
    nc = max(nr, params.nc // nr * nr)
    parallel = params.parallel
    if params.threads > 1 and batches < 2 * params.threads:  # threads share the blocks
        # the threads take whole N blocks (each packs its own B and A, no barrier inside)
        # when N has enough columns and M is no larger or has few blocks (which would
        # mean two barriers per N x K block with little work between them). Measured in
        # paired rounds: 6-D contraction with M = 144, N = 20736 1.18x; a 128 x 512 x
        # 20000 GEMM 1.2x; complex128 4-D (24^6) 1.16x; square GEMMs 0.95-1.06x
        few_m = -(-m // mc) < 2 * params.threads
        if (few_m or n >= m) and n >= 4 * params.threads * nr:
            parallel = "n"
        if parallel == "n":
            nc = balanced_block(n, nr, nc, params.threads)
        else:
            mc = balanced_block(m, mr, mc, params.threads)
    if parallel == "m" and n > nc:  # equal N blocks: no sliver paying a pass over A
        nc = -(-n // -(-n // nc))
        nc = -(-nc // nr) * nr
    kc = params.kc
    if k > kc:
        kc = -(-k // -(-k // kc))
        kc = -(-kc // 8) * 8
    order = params.order
    if 0 < min(k, kc) * nr * itemsize <= cache_sizes()[0] * 3 // 4:
        order = "jr"
    pack_a = params.pack_a
    if batches < 2 * params.threads and m * min(k, kc) * itemsize <= cache_sizes()[2] // 4:
        # A packed once per K block instead of once per N block, when a thread would
        # otherwise pack it for two or more of its N blocks and A's K block stays in L3:
        # 2048-4096 GEMMs in fp32 and fp64 1.01-1.07x (11 of 12 cases, paired rounds)
        n_blocks = -(-n // nc)
        per_thread = -(-n_blocks // params.threads) if parallel == "n" else n_blocks
        if per_thread >= 2:
            pack_a = "whole"
    if a_in_place and batches >= 2 * params.threads and n <= IN_PLACE_MAX_N:
        heights = [h for h in (mr, 7, 5, 4) if h * (nr // lanes) <= mr * (params.nr // lanes)]
        fitting = [h for h in heights if m % h == 0]
        # a shorter tile pays only where A streams past an L1-resident B panel (order
        # "jr"): with "ir" each A micro-panel serves every B panel from L1 and packing it
        # costs little, so 6 x 64 packed beat 4 x 64 in place (M = 256, K = 256-512:
        # 1.03-1.06x in paired rounds; K = 192 0.98-1.01x) while 6 x 64 in place (M = 384
        # or 252, K = 256) was as fast or 1.08x faster than packed
        if fitting and (fitting[0] == mr or order == "jr"):
            mr, pack_a = fitting[0], "none"
            mc = max(mr, mc // mr * mr)
    return replace(params, mr=mr, nr=nr, mc=mc, nc=nc, kc=kc, parallel=parallel, order=order,
                   pack_a=pack_a)


def short_m_tile(params: GettParams, m: int, n: int) -> tuple[int, int]:
    """The micro-tile (MR, NR) for a short M: the default 6 x 4 vectors unless 8 x 3 or
    4 x 4 (no more accumulators) pads M x N by a tenth of M x N less; among tiles within 2 %
    of the least padding, the one with the most accumulators. Linear layers (N = 4096) at
    batch 8 (6 rows pad it to 12) and 32 (to 36), 8 x 3 vectors: fp32 1.02-1.25x, fp64
    1.01-1.37x in paired rounds; batch 20, 4 x 4: 0.99-1.04x."""
    lanes = params.lanes
    vectors = params.nr // lanes
    if vectors < 4:
        return params.mr, params.nr
    tiles = [(params.mr, params.nr), (params.mr * 4 // 3, (vectors - 1) * lanes),
             (params.mr * 2 // 3, params.nr)]

    def padded(tile: tuple[int, int]) -> int:
        h, width = tile
        return -(-m // h) * h * (-(-n // width) * width)

    least = min(padded(t) for t in tiles)
    best = min(tiles, key=lambda t: (padded(t) > least * 1.02, -t[0] * t[1], padded(t)))
    if padded(tiles[0]) - padded(best) >= m * n / 10:
        return best
    return params.mr, params.nr


def balanced_block(m: int, mr: int, mc: int, threads: int) -> int:
    """An M (or N) block (a multiple of ``mr``, at most ``mc``, at least about half of it) for
    which the busiest thread gets the fewest rows, when the blocks are dealt out to
    ``threads`` in contiguous chunks as the parallel runtime does."""
    low = max(mr, (mc // 2) // mr * mr)
    busiest = {}
    for block in range(low, mc + 1, mr):
        blocks = -(-m // block)
        busiest[block] = min(-(-blocks // threads) * block, m)
    fewest = min(busiest.values())
    # the largest block within 1 % of the best balance (larger blocks pack less often)
    return max(b for b, rows in busiest.items() if rows <= fewest * 1.01)

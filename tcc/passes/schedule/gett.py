"""GETT: a pairwise contraction as a GEMM-like kernel, packing straight from strided tensors.

``C[batch, M, N] (+)= sum_K A[batch, M, K] * B[batch, K, N]`` where batch, M, N and K are
*groups* of indices. Each group is flattened; a tensor whose strides over a group are
mergeable addresses it affinely, otherwise through an int64 offset table. The nest is the
BLIS one, with packing from any strides and a register-blocked micro-kernel of vector FMAs::

    for bt in 0..BATCH:                        # parallel when there are enough batches
      for jc in 0..ceil(N/NC):                 # parallel for GettParams.parallel "n"
        for pc in 0..ceil(K/KC):               # pc = 0 peeled: it stores instead of adding
          Bp = pack B[pc*KC.., jc*NC..]        # NR-wide panels, parallel over panels
          for ic in 0..ceil(M/MC):             # parallel for "m"
            Ap = pack A[ic*MC.., pc*KC..]      # MR-tall panels (pack_a "whole": all of
                                               # M, once per pc, with pc outside jc)
            for ir, jr over the panels:        # order "ir": jr innermost, "jr": ir
              acc[MR][NR/VW] = 0; prefetch C[tile]   # vector registers
              for k in 0..kc: acc[i][v] += Ap[ir][k][i] * Bp[jr][k][v*VW:(v+1)*VW]
              C[tile] (+)= acc                  # whole or masked vectors where C allows,
                                                # else via a tile buffer (tile_store.py)

Roles are swapped when C's unit-stride index is in M, so the micro-kernel's vectors run
along C's contiguous dimension; M is flattened in A's stride order (A is packed once per
N block), N in the order of whichever of B and C moves more data. When C is contiguous
along N only in runs (``abcd,aebf->dfce``: runs of e), a vector of the tile is split at a
run's end into two masked stores, or written through a tile buffer when runs are short.
Complex tensors run as one real GETT on their interleaved parts, B packed as 2 x 2 real
blocks (see ``_complex_body``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from tcc.dtypes import DTYPES
from tcc.ir import loops as L
from tcc.ir import program as P
from tcc.passes.lower import _Accesses, epilogue_nest, identity
from tcc.passes.schedule.blocking import GettParams, real_dtype
from tcc.passes.schedule.gett_pack import PanelPacking
from tcc.passes.schedule.tile_store import TileStores

# wraparound integer arithmetic is exact in any order, so integers share the template;
# a complex product runs as one real GETT on the interleaved parts (see _complex_body)
GETT_DTYPES = ("float32", "float64", "int32", "int64", "complex64", "complex128")


SPLIT_K_MAX_PARTIALS = 1 << 20  # elements of partial outputs for K split across threads

Aff = L.Affine


@dataclass(frozen=True, slots=True)
class GettShape:
    """The statement seen as a batched GEMM: roles, index groups and coefficients."""

    a: str
    b: str
    c: str
    batch: tuple[str, ...]
    m: tuple[str, ...]
    n: tuple[str, ...]
    k: tuple[str, ...]
    sizes: dict[str, int]
    coefs: dict[str, dict[str, int]]  # tensor -> index -> element stride
    scale: float = 1.0  # constant factors of the product, applied as C is written
    offsets: dict[str, Aff | int] = field(default_factory=dict)  # element offset per tensor

    def extent(self, group: tuple[str, ...]) -> int:
        total = 1
        for index in group:
            total *= self.sizes[index]
        return total

    @property
    def flops(self) -> int:
        return 2 * self.extent(self.batch + self.m + self.n + self.k)

    def mergeable(self, tensor: str, group: tuple[str, ...]) -> bool:
        """Whether ``tensor``'s strides over ``group`` merge into one (the group's flat
        position then addresses it affinely, without an offset table)."""
        coefs = [self.coefs[tensor].get(i, 0) for i in group]
        extents = [self.sizes[i] for i in group]
        return all(coefs[d] == coefs[d + 1] * extents[d + 1] for d in range(len(group) - 1))


def analyze(
    program: P.Program, stmt: P.Statement, layouts: Mapping[str, tuple[int, ...]]
) -> GettShape | None:
    """The GEMM view of ``stmt``, or None when GETT does not apply."""
    if stmt.reduce not in ("sum", None) or stmt.dtype not in GETT_DTYPES:
        return None
    if DTYPES[stmt.dtype].is_complex and stmt.epilogue is not None:
        return None  # C's real view interleaves parts: no place for a complex epilogue
    if set(program.dynamic) & set(P.statement_indices(stmt)):
        return None  # run-time sizes take the loop nest
    factors = _factors(stmt.expr)
    if factors is None:
        return None
    reads = [f for f in factors if isinstance(f, P.Read)]
    scale = 1.0
    for factor in factors:
        if isinstance(factor, P.Constant):
            scale *= float(factor.value)  # type: ignore[arg-type]
    if len(reads) != 2:
        return None
    left, right = reads
    if scale != 1.0 and DTYPES[stmt.dtype].is_integer:
        return None
    names = {left.tensor, right.tensor, stmt.target}
    if len(names) != 3 or any(program.tensor(n).dtype != stmt.dtype for n in names):
        return None
    sizes = program.sizes
    accesses = _Accesses(program, stmt, layouts)
    coefs = {stmt.target: accesses.store, left.tensor: accesses.loads[0],
             right.tensor: accesses.loads[1]}
    live = [i for i in P.statement_indices(stmt) if sizes[i] != 1]
    if any(sizes[i] == 0 for i in P.statement_indices(stmt)):
        return None
    batch, m, n = _groups(left, right, stmt, tuple(live))
    k = tuple(i for i in live if i not in stmt.indices)
    if not m or not n or not k:
        return None
    a, b = left.tensor, right.tensor
    unit_in_m = any(abs(coefs[stmt.target].get(i, 0)) == 1 for i in m)
    unit_in_n = any(abs(coefs[stmt.target].get(i, 0)) == 1 for i in n)
    if unit_in_m and not unit_in_n:
        a, b, m, n = b, a, n, m
    c = stmt.target

    # traffic: A and B are packed about once; C is read and written once per K block
    k_blocks = -(-math.prod(sizes[i] for i in k) // 256)
    traffic = {a: math.prod(program.tensor(a).shape), b: math.prod(program.tensor(b).shape),
               c: math.prod(program.tensor(c).shape) * 2 * k_blocks}

    def by_stride(group: tuple[str, ...], *tensors: str) -> tuple[str, ...]:
        """Flatten a group in the order of the tensor that moves most data through it, so
        that tensor is read (packed) or written along its contiguous axis."""
        tensor = max(tensors, key=lambda t: traffic[t])
        return tuple(sorted(group, key=lambda i: -abs(coefs[tensor].get(i, 0))))

    return GettShape(a, b, c, by_stride(batch, a, b, c), by_stride(m, a),
                     by_stride(n, b, c), by_stride(k, a, b), dict(sizes), coefs, scale)


def free_output_order(program: P.Program, stmt: P.Statement,
                      layouts: Mapping[str, tuple[int, ...]]) -> tuple[str, ...] | None:
    """The order of ``stmt``'s output indices (slowest first) that GETT writes fastest,
    for a caller that leaves the output's layout free (numpy's ``order='K'``); None when
    the statement is not a GEMM-like product, or row-major serves as well.

    C becomes a row-major [batch, M, N] matrix: M and N in their operands' stride orders,
    N (the vector direction) on the side whose operand is unit-stride there, so tiles are
    stored whole, straight from the registers, and both operands are packed along their
    contiguous axes. numpy and opt_einsum return such views too (tensordot's layout)."""
    factors = _factors(stmt.expr)
    reads = [f for f in factors or () if isinstance(f, P.Read)]
    if len(reads) != 2 or stmt.reduce not in ("sum", None) or stmt.epilogue is not None:
        return None
    accesses = _Accesses(program, stmt, {t: s for t, s in layouts.items() if t != stmt.target})
    left, right = accesses.loads
    out = stmt.indices
    if any(i not in reads[0].indices and i not in reads[1].indices for i in out):
        return None
    batch, m, n = _groups(reads[0], reads[1], stmt, out)
    if not m or not n:
        return None

    def by(coefs: dict[str, int], group: tuple[str, ...]) -> list[str]:
        return sorted(group, key=lambda i: -abs(coefs.get(i, 0)))

    if any(abs(left.get(i, 0)) == 1 for i in m) and not any(
            abs(right.get(i, 0)) == 1 for i in n):
        order = (*by(left, batch), *by(right, n), *by(left, m))
    else:
        order = (*by(left, batch), *by(left, m), *by(right, n))
    return None if order == tuple(out) else order


def _groups(left: P.Read, right: P.Read, stmt: P.Statement, indices: tuple[str, ...]
            ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """``indices`` of the output in the GEMM roles: batch (in both operands), M (left
    only), N (right only)."""
    in_a, in_b, in_c = set(left.indices), set(right.indices), set(stmt.indices)
    batch = tuple(i for i in indices if i in in_a and i in in_b and i in in_c)
    m = tuple(i for i in indices if i in in_a and i in in_c and i not in in_b)
    n = tuple(i for i in indices if i in in_b and i in in_c and i not in in_a)
    return batch, m, n


def _factors(expr: P.Expr) -> list[P.Expr] | None:
    """Reads and real constants multiplied together, or None for anything else."""
    if isinstance(expr, P.Binary) and expr.op == "mul":
        left, right = _factors(expr.left), _factors(expr.right)
        return None if left is None or right is None else left + right
    if isinstance(expr, P.Read) or (isinstance(expr, P.Constant)
                                    and not isinstance(expr.value, complex)):
        return [expr]
    return None


class _Builder(PanelPacking, TileStores):
    """Builds the GETT loop nest for one shape and parameter set."""

    def __init__(self, shape: GettShape, params: GettParams, dtype: str, accumulate: bool,
                 expand_b: tuple[tuple[str, ...], tuple[str, ...]] | None = None):
        self.s = shape
        self.p = params
        self.dtype = dtype
        self.accumulate = accumulate
        self.expand_b = expand_b  # complex B's (N, K) groups: see _pack_expanded
        self.tables: list[tuple[str, tuple[str, ...], str]] = []  # name, group, tensor
        self.parallel_batch = False  # kernel_body decides these for the whole kernel
        self.parallel_n = False
        self.a_whole = False  # A packed for all of M once per K block (see k_nest)
        self.a_direct = False  # A not packed: the micro-kernel reads it in place
        self.inner_kind = "serial"

    def micro_kernel(self, bt: Aff, ic: Aff, jc: Aff, pc: Aff, first: bool) -> tuple:
        p, s, dt = self.p, self.s, self.dtype
        vectors = p.nr // p.lanes
        acc = [[f"acc{i}_{v}" for v in range(vectors)] for i in range(p.mr)]
        zero = L.Broadcast(L.Const(identity("sum", dt), dt), p.lanes)
        body: list[L.Stmt] = [L.Declare(acc[i][v], dt, zero, p.lanes)
                              for i in range(p.mr) for v in range(vectors)]
        step: list[L.Stmt] = [
            L.Declare(f"b{v}", dt, L.Load("Bp", Aff.of({"jr": self.b_panel, "k": p.nr},
                                                        v * p.lanes), p.lanes), p.lanes)
            for v in range(vectors)
        ]
        step += self.prefetches()
        for i in range(p.mr):
            if self.a_direct:
                index, lookups = self.address(s.a, [
                    (s.batch, bt), (s.m, ic * p.mc + Aff.var("ir", p.mr) + i),
                    (s.k, pc * p.kc + Aff.var("k"))])
                a = L.Broadcast(L.Load(s.a, index, 1, lookups), p.lanes)
            else:
                a = L.Broadcast(L.Load("Ap", self.a_at() + Aff.of({"k": p.mr}, i)), p.lanes)
            for v in range(vectors):
                product = L.Binary("mul", a, L.Local(f"b{v}"))
                step.append(L.Assign(acc[i][v], L.Binary("add", L.Local(acc[i][v]), product)))
        k_left = s.extent(s.k) - pc * p.kc
        m_left = s.extent(s.m) - ic * p.mc - Aff.var("ir", p.mr)
        n_left = s.extent(s.n) - jc * p.nc - Aff.var("jr", p.nr)
        add = not first or self.accumulate
        run = self.c_run()
        if run >= 4:  # C's tile arrives while the FMAs run: a prefetch per line
            body += self.full_tile_rows(bt, ic, jc, m_left, self.pad, lambda index, lookups,
                                        i, j: (L.Prefetch(s.c, index, lookups, True),))
        body.append(L.For("k", p.kc, tuple(step), bound=k_left))
        staged = False
        if run == p.lanes:  # whole vectors straight from the registers
            body += self.full_tile_update(bt, ic, jc, m_left, run, add, lambda i, j: L.Local(
                acc[i][j // p.lanes]))
        elif self.run_length() >= p.lanes:  # runs of R >= VW columns: masked stores
            body += self.masked_tile_update(acc, bt, ic, jc, m_left, add)
        elif run >= 4:  # C is contiguous in runs of ``run`` columns: through the tile buffer
            staged = True
            body += self.stage_tile(acc)
            body += self.full_tile_update(bt, ic, jc, m_left, run, add, lambda i, j: L.Load(
                "Ct", Aff((), i * p.nr + j), run))
        else:  # every tile element by element
            body += self.edge_tile_update(acc, bt, ic, jc, m_left, n_left, add)
        if run >= 4 or self.run_length() >= p.lanes:  # the partial tiles at N's edge
            edge = self.edge_tile_update(acc, bt, ic, jc, m_left, n_left, add, staged=staged)
            body.append(L.For("edge", 1, tuple(edge), bound=p.nr - n_left))
        # order "ir" (jr innermost): consecutive tiles sweep along C's rows (streams the
        # prefetchers follow) while the MR x KC A micro-panel stays in L1 and B's
        # micro-panels stream from the L2-resident B block; "jr": the other way round
        jr = ("jr", self.panels_n, s.extent(s.n) - jc * p.nc, p.nr)
        ir = ("ir", self.panels_m, s.extent(s.m) - ic * p.mc, p.mr)
        outer, inner = (ir, jr) if p.order == "ir" else (jr, ir)
        loop = L.For(inner[0], inner[1], tuple(body), bound=inner[2], bound_step=inner[3])
        return (L.For(outer[0], outer[1], (loop,), bound=outer[2], bound_step=outer[3]),)

    def prefetches(self) -> list[L.Stmt]:
        """Prefetches, ``prefetch`` K steps ahead, of every cache line of the streamed
        micro-panel's K step (B's for order "ir", A's for "jr")."""
        p = self.p
        if not p.prefetch:
            return []
        line = 64 // DTYPES[self.dtype].itemsize
        if p.order == "ir":
            name, start, width = "Bp", Aff.var("jr", self.b_panel), p.nr
        elif self.a_direct:  # A's rows are streams in place: the hardware follows them
            return []
        else:
            name, start, width = "Ap", self.a_at(), p.mr
        return [L.Prefetch(name, start + Aff.of({"k": width}, p.prefetch * width + at))
                for at in range(0, width, line)]

    def a_at(self) -> Aff:
        """Where micro-panel ``ir`` of A block ``ic`` starts in ``Ap``."""
        if self.a_whole:
            return Aff.of({"ir": self.a_panel, "ic": self.p.mc // self.p.mr * self.a_panel})
        return Aff.var("ir", self.a_panel)

    @property
    def a_panel(self) -> int:
        """Elements from one packed A panel to the next: MR x KC plus one cache line, so
        panels do not all fall into the same cache sets (KC x MR is often 4 KiB)."""
        return self.p.kc * self.p.mr + self.pad

    @property
    def b_panel(self) -> int:
        return self.p.kc * self.p.nr + self.pad

    @property
    def pad(self) -> int:
        return 64 // DTYPES[self.dtype].itemsize

    @property
    def panels_m(self) -> int:
        return -(-min(self.p.mc, self.s.extent(self.s.m)) // self.p.mr)

    @property
    def panels_n(self) -> int:
        return -(-min(self.p.nc, self.s.extent(self.s.n)) // self.p.nr)

    @property
    def n_blocks(self) -> int:
        return -(-self.s.extent(self.s.n) // self.p.nc)

    def a_size(self, panels: int) -> int:
        """Elements of ``Ap`` for ``panels`` micro-panels, with room for prefetches past
        the last panel's end."""
        return panels * self.a_panel + self.p.prefetch * self.p.mr

    def block(self, bt: Aff, jc: Aff, pc: Aff, first: bool) -> L.Stmt:
        p, s = self.p, self.s
        ic_blocks = -(-s.extent(s.m) // p.mc)
        ic = Aff.var("ic")
        tiles = (L.Allocate("Ct", self.dtype, p.mr * p.nr,
                            self.micro_kernel(bt, ic, jc, pc, first)),)
        if self.a_whole or self.a_direct:  # packed already (k_nest), or never
            ic_loop = L.For("ic", ic_blocks, tiles, kind=self.inner_kind)
        else:
            inner = (self.pack_a(bt, ic, pc), *tiles)
            ic_loop = L.For("ic", ic_blocks, (L.Allocate("Ap", self.dtype, self.a_size(
                self.panels_m), inner),), kind=self.inner_kind)
        b_size = self.panels_n * self.b_panel + p.prefetch * p.nr
        return L.Allocate("Bp", self.dtype, b_size, (self.pack_b(bt, jc, pc), ic_loop))

    def kernel_body(self) -> tuple[L.Stmt, ...]:
        p, s = self.p, self.s
        batches = s.extent(s.batch)
        self.parallel_batch = p.threads > 1 and batches >= 2 * p.threads
        parts, share = self.split_k()
        if parts > 1:
            return self.split_body(parts, share)
        self.parallel_n = (p.parallel == "n" and not self.parallel_batch and p.threads > 1
                           and self.n_blocks >= p.threads)
        serial = self.parallel_batch or p.threads == 1 or self.parallel_n
        self.inner_kind = "serial" if serial else "parallel"
        self.a_whole = p.pack_a == "whole" and self.n_blocks > 1
        self.a_direct = p.pack_a == "none" and self.expand_b is None and direct_a_ok(s, p)
        body = self.k_nest(Aff(), -(-s.extent(s.k) // p.kc), None)
        if s.batch:
            kind = "parallel" if self.parallel_batch else "serial"
            body = (L.For("bt", batches, body, kind=kind),)
        return self.fill_tables(body)

    def k_nest(self, pc0: Aff, k_blocks: int, rest: Aff | None) -> tuple[L.Stmt, ...]:
        """The jc / pc loops over K blocks ``pc0``, ``pc0 + 1``, ... (``k_blocks`` of them,
        or fewer once ``rest`` elements of K past the first block run out)."""
        p, s = self.p, self.s
        bt = Aff.var("bt") if s.batch else Aff()
        jc = Aff.var("jc")
        n_blocks = self.n_blocks
        kind = "parallel" if self.parallel_n else "serial"  # whole N blocks per thread
        pc = pc0 + Aff.var("pc") + 1
        pc_bounds = dict(bound=rest, bound_step=p.kc if rest is not None else 1)
        if self.a_whole:
            # K blocks outermost: all of A's K block is packed once (panels shared out to
            # the threads), then every N block uses it; A is not packed again per N block
            panels = -(-s.extent(s.m) // p.mr)

            def stage(at: Aff, first: bool) -> L.Stmt:
                share = "parallel" if self.parallel_n else self.inner_kind
                pack = self._pack("Ap", s.a, s.m, Aff(), at, bt, ("ir", "i", p.mr, 0),
                                  panels, self.a_panel, share)
                jc_loop = L.For("jc", n_blocks, (self.block(bt, jc, at, first),), kind=kind)
                return L.Allocate("Ap", self.dtype, self.a_size(panels), (pack, jc_loop))

            nest: list[L.Stmt] = [stage(pc0, True)]
            if k_blocks > 1:
                nest.append(L.For("pc", k_blocks - 1, (stage(pc, False),), **pc_bounds))
            return tuple(nest)
        per_jc: list[L.Stmt] = [self.block(bt, jc, pc0, first=True)]
        if k_blocks > 1:
            per_jc.append(L.For("pc", k_blocks - 1, (self.block(bt, jc, pc, first=False),),
                                **pc_bounds))
        return (L.For("jc", n_blocks, tuple(per_jc), kind=kind),)

    def split_k(self) -> tuple[int, int]:
        """(threads, K elements each) when the threads should split K instead of M: the
        output is small next to K, so splitting M would make the threads meet at two
        barriers per K block (hundreds per call, each a chance to wait on a descheduled
        thread); with K split they meet once, then add their partial outputs. (1, K)
        otherwise."""
        p, s = self.p, self.s
        k, out = s.extent(s.k), s.extent(s.batch + s.m + s.n)
        if (p.threads < 2 or self.parallel_batch or k < 8 * p.threads * p.kc
                or out * p.threads > SPLIT_K_MAX_PARTIALS):
            return 1, k
        per_thread = -(-k // p.threads)
        share = -(-per_thread // p.kc) * p.kc
        return -(-k // share), share

    def split_body(self, parts: int, share: int) -> tuple[L.Stmt, ...]:
        """Thread ``kt`` computes K elements ``kt*share..`` into partial output ``Cs[kt]``
        (contiguous over batch, M, N); then C (+)= the sum of the partials."""
        p, s = self.p, self.s
        groups = s.batch + s.m + s.n
        strides, size = _contiguous_strides(s, groups)
        partial = replace(s, c="Cs", coefs={**s.coefs, "Cs": strides},
                          offsets={**s.offsets, "Cs": Aff.var("kt", size)})
        worker = _Builder(partial, p, self.dtype, False, self.expand_b)  # serial inside kt
        pc0 = Aff.var("kt", share // p.kc)
        nest = worker.k_nest(pc0, share // p.kc, s.extent(s.k) - pc0 * p.kc - p.kc)
        if s.batch:
            nest = (L.For("bt", s.extent(s.batch), nest),)
        total: L.Scalar | None = None
        flat = Aff.of({f"r_{i}": strides[i] for i in groups})
        for t in range(parts):
            term = L.Load("Cs", flat + t * size)
            total = term if total is None else L.Binary("add", total, term)
        assert total is not None
        offset = s.offsets.get(s.c, 0)
        index = Aff.of({f"r_{i}": s.coefs[s.c].get(i, 0) for i in groups}) + offset
        if self.accumulate:
            total = L.Binary("add", L.Load(s.c, index), total)
        reduce: L.Stmt = L.Store(s.c, index, total)
        for i in reversed(groups):
            reduce = L.For(f"r_{i}", s.sizes[i], (reduce,))
        body = (L.For("kt", parts, worker.fill_tables(nest), kind="parallel"), reduce)
        return (L.Allocate("Cs", self.dtype, parts * size, body),)


def a_in_place(shape: GettShape) -> bool:
    """Whether A's layout lets the micro-kernel read it in place (GettParams.pack_a
    "none"): its M and K groups address it affinely, with no offset tables."""
    return shape.mergeable(shape.a, shape.m) and shape.mergeable(shape.a, shape.k)


def direct_a_ok(shape: GettShape, params: GettParams) -> bool:
    """Whether pack_a "none" applies: A can be read in place and M is whole micro-panels
    (an edge panel would read rows past M where the packing writes zeros)."""
    return a_in_place(shape) and shape.extent(shape.m) % params.mr == 0


def gett_kernel(
    program: P.Program,
    stmt: P.Statement,
    shape: GettShape,
    params: GettParams,
    layouts: Mapping[str, tuple[int, ...]],
    name: str,
) -> L.Kernel:
    accesses = _Accesses(program, stmt, layouts)
    operands = (*dict.fromkeys(r.tensor for r in P.statement_reads(stmt)), stmt.target)
    role = {t: "out" if t == stmt.target else "in" for t in operands}
    if DTYPES[stmt.dtype].is_complex:
        body = _complex_body(shape, params, stmt)
        real = real_dtype(stmt.dtype)  # each buffer as its interleaved real parts
        buffers = tuple(
            L.Buffer(t, real, role[t], (*program.tensor(t).shape, 2),
                     (*(2 * x for x in accesses.strides_of(t)), 1)) for t in operands)
        return L.Kernel(name, buffers, body)
    body = _Builder(shape, params, stmt.dtype, stmt.accumulate).kernel_body()
    if stmt.epilogue is not None:  # elementwise work fused after the contraction
        body += epilogue_nest(program, stmt, layouts)
    buffers = tuple(
        L.Buffer(t, program.tensor(t).dtype, role[t], program.tensor(t).shape,
                 accesses.strides_of(t)) for t in operands)
    return L.Kernel(name, buffers, body)


def _complex_body(shape: GettShape, params: GettParams, stmt: P.Statement) -> tuple:
    """``C = A B`` on complex tensors as one real GETT on their interleaved real views:
    K gains an index ``_pa`` (A's real / imaginary part), N an index ``_pc`` (C's), and B
    is packed as 2 x 2 real blocks (see ``_Builder._pack_expanded``). Same FLOPs as a
    complex kernel; A is packed and C written as plain real tensors (whole vectors where C
    is contiguous), no copies and no passes beyond the real GEMM's."""
    coefs = {t: {i: 2 * c for i, c in per.items()} for t, per in shape.coefs.items()}
    coefs[shape.a]["_pa"] = 1
    coefs[shape.c]["_pc"] = 1
    real = replace(shape, n=shape.n + ("_pc",), k=shape.k + ("_pa",),
                   sizes={**shape.sizes, "_pa": 2, "_pc": 2}, coefs=coefs)
    # panels hold whole complex columns and K blocks whole complex steps
    even = replace(params, nr=params.nr + params.nr % 2, kc=params.kc + params.kc % 2,
                   nc=params.nc + params.nc % 2)
    return _Builder(real, even, real_dtype(stmt.dtype), stmt.accumulate,
                    expand_b=(shape.n, shape.k)).kernel_body()


def _contiguous_strides(shape: GettShape, groups: tuple[str, ...]) -> tuple[dict[str, int], int]:
    """Row-major element strides over ``groups`` (the last index fastest), and the size."""
    strides: dict[str, int] = {}
    size = 1
    for index in reversed(groups):
        strides[index] = size
        size *= shape.sizes[index]
    return strides, size

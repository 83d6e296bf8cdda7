"""How the GETT builder addresses tensors and packs their panels.

A group of indices (batch, M, N or K) flattens to one position; its offset in a tensor is
affine when the group's strides merge, else it comes from an int64 table filled at the
kernel's start. Panels of A (MR wide) and B (NR wide) are copied K step by K step into
``Ap`` / ``Bp``: one vector per step when the tensor is unit-stride along the group, one
table lookup per unit-stride run when the group's innermost index is (whole vectors), else
element by element; lanes past the edge are zeros. A complex B expands into real 2 x 2
blocks so that the product runs as one real GEMM.

``PanelPacking`` is a mixin of the GETT builder (it uses the builder's shape ``s``,
parameters ``p``, ``dtype``, ``tables``, ``expand_b``, ``inner_kind`` and panel sizes).
"""

from __future__ import annotations

from typing import Any

from tcc.ir import loops as L
from tcc.passes.lower import identity

Aff = L.Affine


class PanelPacking:
    s: Any  # GettShape
    p: Any  # GettParams
    dtype: str
    tables: list[tuple[str, tuple[str, ...], str]]
    expand_b: Any
    inner_kind: str
    panels_m: int
    panels_n: int
    a_panel: int
    b_panel: int

    # -- addressing -------------------------------------------------------------------
    def offset(self, tensor: str, group: tuple[str, ...], flat: Aff) -> tuple[Aff, tuple]:
        """The element offset of group position ``flat`` in ``tensor``."""
        if not group:
            return Aff(), ()
        if self.s.mergeable(tensor, group):
            return flat * self.s.coefs[tensor].get(group[-1], 0), ()
        name = f"tab_{tensor}_{'_'.join(group)}"
        if all(t[0] != name for t in self.tables):
            self.tables.append((name, group, tensor))
        return Aff(), ((name, flat),)

    def address(self, tensor: str, parts: list[tuple[tuple[str, ...], Aff]]) -> tuple:
        index, lookups = Aff() + self.s.offsets.get(tensor, 0), ()
        for group, flat in parts:
            affine, extra = self.offset(tensor, group, flat)
            index, lookups = index + affine, lookups + extra
        return index, lookups

    def fill_tables(self, body: tuple[L.Stmt, ...]) -> tuple[L.Stmt, ...]:
        for name, group, tensor in reversed(self.tables):
            extents = [self.s.sizes[i] for i in group]
            flat, step = Aff(), 1
            for index, extent in zip(reversed(group), reversed(extents), strict=True):
                flat = flat + Aff.var(f"t_{index}", step)
                step *= extent
            value = Aff.of({f"t_{i}": self.s.coefs[tensor].get(i, 0) for i in group})
            fill: tuple[L.Stmt, ...] = (L.Store(name, flat, L.IndexValue(value)),)
            for index, extent in zip(reversed(group), reversed(extents), strict=True):
                fill = (L.For(f"t_{index}", extent, fill),)
            # zeros past the end: a panel's runs past the edge read an offset there (and
            # then load no lane of it)
            pad = max(self.p.nr, self.p.mr)
            fill += (L.For("t_pad", pad, (L.Store(name, Aff.of({"t_pad": 1}, step),
                                                  L.IndexValue(Aff())),)),)
            body = (L.Allocate(name, "int64", step + pad, fill + body),)
        return body

    # -- pieces -----------------------------------------------------------------------
    def pack_b(self, bt: Aff, jc: Aff, pc: Aff) -> L.Stmt:
        s = self.s
        if self.expand_b:
            return self._pack_expanded(bt, jc, pc)
        return self._pack("Bp", s.b, s.n, jc, pc, bt, ("jr", "j", self.p.nr, self.p.nc),
                          self.panels_n, self.b_panel, self.inner_kind)

    def pack_a(self, bt: Aff, ic: Aff, pc: Aff) -> L.Stmt:
        s = self.s
        return self._pack("Ap", s.a, s.m, ic, pc, bt, ("ir", "i", self.p.mr, self.p.mc),
                          self.panels_m, self.a_panel, "serial")

    def _pack(self, name: str, tensor: str, group: tuple[str, ...], block: Aff, pc: Aff,
              bt: Aff, tile: tuple[str, str, int, int], panels: int, panel: int,
              kind: str) -> L.Stmt:
        """Copy a (block of ``group``) x (KC) slice of ``tensor`` into ``name`` as panels
        of ``width`` along ``group``: ``name[panel][k][lane]``."""
        p, s = self.p, self.s
        panel_var, lane_var, width, block_size = tile
        left = s.extent(group) - block * block_size
        k_left = s.extent(s.k) - pc * p.kc
        flat = block * block_size + Aff.var(panel_var, width) + Aff.var(lane_var)
        parts = [(s.batch, bt), (group, flat), (s.k, pc * p.kc + Aff.var("k"))]
        index, lookups = self.address(tensor, parts)
        lane_bound = left - Aff.var(panel_var, width)
        row = Aff.of({panel_var: panel, "k": width})
        if width > 1 and index.coefficient(lane_var) == 1 and not any(
                flat.coefficient(lane_var) for _, flat in lookups):
            # the tensor is unit-stride along the group: one vector per K step, lanes past
            # the edge masked off (they read zero, the padding). A scalar lane loop here
            # becomes a memcpy call per K step (measured 8 % of a 4-D contraction's time)
            lanes = L.Load(tensor, index.substitute(lane_var, Aff()), width, lookups,
                           L.Mask(L.Const(0, "int64"), L.IndexValue(lane_bound)))
            inner = L.For("k", p.kc, (L.Store(name, row, lanes),), bound=k_left)
            return L.For(panel_var, panels, (inner,), kind=kind, bound=left, bound_step=width)
        run = self.unit_run(tensor, group, width, block_size)
        if run:
            # the group's innermost index is unit-stride for ``run`` elements (a multiple of
            # the vector width, dividing the panel): one table lookup per run, then vectors
            # (a scalar copy per element made the skinny 6-D contractions pack-bound)
            run_flat = block * block_size + Aff.var(panel_var, width) + Aff.var("r", run)
            parts = [(s.batch, bt), (group, run_flat), (s.k, pc * p.kc + Aff.var("k"))]
            index, lookups = self.address(tensor, parts)
            stores = tuple(
                L.Store(name, row + Aff.var("r", run) + q * p.lanes, L.Load(
                    tensor, index + q * p.lanes, p.lanes, lookups,
                    L.Mask(L.Const(0, "int64"), L.IndexValue(
                        lane_bound - Aff.var("r", run) - q * p.lanes))))
                for q in range(run // p.lanes))
            inner = L.For("k", p.kc, (L.For("r", width // run, stores),), bound=k_left)
            return L.For(panel_var, panels, (inner,), kind=kind, bound=left, bound_step=width)
        if self.transposable(index, lookups, width, lane_var):
            inner = self._pack_transposed(name, tensor, index, lookups, lane_var, row, width,
                                          lane_bound, k_left)
            return L.For(panel_var, panels, (inner,), kind=kind, bound=left, bound_step=width)
        store = L.Store(name, row + Aff.var(lane_var), L.Load(tensor, index, 1, lookups))
        # k outer, lanes inner: the stores run contiguously through the panel and the
        # loads form ``width`` sequential streams (or one, when the group is unit-stride);
        # reading along K instead scatters the stores (measured 10-15 % slower overall)
        # lanes past the edge are zeroed: the micro-kernel multiplies them too (their
        # results are dropped), and stale bytes there (an int64 offset table freed a call
        # ago) read as denormal floats that slow every FMA by microcode assists (measured:
        # one thread 8x slower, calls alternating between 93 and 600 ms)
        pad = L.Store(name, Aff.of({panel_var: panel, "k": width, "z": 1}) + lane_bound,
                      L.Const(identity("sum", self.dtype), self.dtype))
        inner = L.For("k", p.kc, (L.For(lane_var, width, (store,), bound=lane_bound),
                                  L.For("z", width, (pad,), bound=width - lane_bound)),
                      bound=k_left)
        return L.For(panel_var, panels, (inner,), kind=kind, bound=left, bound_step=width)

    def transposable(self, index: Aff, lookups: tuple, width: int, lane_var: str) -> bool:
        """Whether a panel can be packed by in-register transposes: the tensor is
        unit-stride along K (vectors of K steps load whole) and the panel is whole
        vectors wide; real products only (a complex B expands instead)."""
        lanes = self.p.lanes
        return (lanes > 1 and width % lanes == 0 and self.expand_b is None
                and index.coefficient("k") == 1
                and not any(flat.coefficient("k") for _, flat in lookups))

    def _pack_transposed(self, name: str, tensor: str, index: Aff, lookups: tuple,
                         lane_var: str, row: Aff, width: int, lane_bound: Aff,
                         k_left: Aff) -> L.Stmt:
        """A panel of a tensor that is contiguous along K, packed ``lanes`` x ``lanes``
        at a time: one vector load per panel lane (``lanes`` K steps of it), a transpose
        in registers (log2(lanes) rounds of two-vector shuffles), one vector store per K
        step. Every cache line read is used whole, where the element copy reads each
        element from a different line, ``lanes`` rows apart (an NT GEMM's B at 4 KiB
        strides misses L1 on nearly every element). Lanes past N's edge read zeros; K
        steps past its edge are neither read nor stored."""
        p = self.p
        lanes = p.lanes
        k_rem = k_left - Aff.var("tkb", lanes)
        body: list[L.Stmt] = []
        rows = []
        for j in range(lanes):
            row_rem = lane_bound - Aff.var("tg", lanes) - j  # > 0: this panel lane exists
            at = index.substitute(lane_var, Aff.var("tg", lanes) + j).substitute(
                "k", Aff.var("tkb", lanes))
            looked = tuple((t, flat.substitute(lane_var, Aff.var("tg", lanes) + j))
                           for t, flat in lookups)
            mask = L.Mask(L.IndexValue((Aff() + 1 - row_rem) * lanes), L.IndexValue(k_rem))
            rows.append(f"tr0_{j}")
            body.append(L.Declare(rows[-1], self.dtype, L.Load(tensor, at, lanes, looked, mask),
                                  lanes))
        body += transpose_lanes(rows, self.dtype, lanes)
        for t in range(lanes):
            store = L.Store(name, row.substitute("k", Aff.var("tkb", lanes) + t)
                            + Aff.var("tg", lanes), L.Local(f"tr_{t}"))
            if p.kc % lanes:  # nor past the K block when KC is not whole vectors
                store = L.For(f"tc{t}", 1, (store,), bound=Aff() + p.kc - t - Aff.var(
                    "tkb", lanes))
            body.append(L.For(f"tk{t}", 1, (store,), bound=k_rem - t))
        group = L.For("tg", width // lanes, tuple(body), bound=lane_bound, bound_step=lanes)
        return L.For("tkb", -(-p.kc // lanes), (group,), bound=k_left, bound_step=lanes)

    def unit_run(self, tensor: str, group: tuple[str, ...], width: int, block_size: int) -> int:
        """The length of the unit-stride runs a panel of ``group`` splits into (0: none):
        the innermost index's extent when it has stride 1 in ``tensor``, is whole vectors
        and divides the panel width and the block size."""
        if not group or self.s.coefs[tensor].get(group[-1], 0) != 1:
            return 0
        run = self.s.sizes[group[-1]]
        lanes = self.p.lanes
        if run % lanes or width % run or block_size % run:
            return 0
        return run

    def _pack_expanded(self, bt: Aff, jc: Aff, pc: Aff) -> L.Stmt:
        """B's panels for a complex product run as one real GEMM (the "1m" method): each
        complex ``b = br + i bi`` becomes the real 2 x 2 block ``[[br, bi], [-bi, br]]``
        (rows: A's real and imaginary parts along K; columns: C's along N), so that
        ``[cr ci] = [ar ai] [[br, bi], [-bi, br]]`` is a real product. A and C are their
        interleaved real views; only B's packing knows about complex numbers."""
        p, s = self.p, self.s
        n_group, k_group = self.expand_b  # type: ignore[misc]
        half = p.nr // 2  # complex columns per panel
        n_left = s.extent(n_group) - jc * (p.nc // 2)
        k_left = s.extent(k_group) - pc * (p.kc // 2)
        lanes_left = n_left - Aff.var("jr", half)
        flat = jc * (p.nc // 2) + Aff.var("jr", half) + Aff.var("j")
        index, lookups = self.address(s.b, [(s.batch, bt), (n_group, flat),
                                            (k_group, pc * (p.kc // 2) + Aff.var("k"))])
        re, im = L.Load(s.b, index, 1, lookups), L.Load(s.b, index + 1, 1, lookups)
        row = Aff.of({"jr": self.b_panel, "k": 2 * p.nr, "j": 2})
        stores = (L.Store("Bp", row, re), L.Store("Bp", row + 1, im),
                  L.Store("Bp", row + p.nr, L.Unary("neg", im)), L.Store("Bp", row + p.nr + 1, re))
        zero = L.Const(identity("sum", self.dtype), self.dtype)
        pad = Aff.of({"jr": self.b_panel, "k": 2 * p.nr, "z": 1}) + lanes_left * 2
        pads = (L.Store("Bp", pad, zero), L.Store("Bp", pad + p.nr, zero))
        inner = L.For("k", p.kc // 2, (L.For("j", half, stores, bound=lanes_left),
                                       L.For("z", p.nr, pads, bound=p.nr - lanes_left * 2)),
                      bound=k_left)
        return L.For("jr", self.panels_n, (inner,), kind=self.inner_kind, bound=n_left,
                     bound_step=half)


def transpose_lanes(rows: list[str], dtype: str, lanes: int) -> list[L.Stmt]:
    """Declarations that transpose the ``lanes`` x ``lanes`` matrix whose rows are the
    vector locals ``rows``: afterwards local ``tr_t`` holds column ``t``. Round ``h``
    (lanes/2, lanes/4, ..., 1) swaps the off-diagonal h x h blocks of every 2h x 2h
    block, one two-vector shuffle per output row; together the rounds swap every bit of
    the row number with the same bit of the column number."""
    stmts: list[L.Stmt] = []
    current = list(rows)
    h, level = lanes // 2, 1
    while h >= 1:
        low = tuple(c if not c & h else lanes + c - h for c in range(lanes))
        high = tuple(c + h if not c & h else lanes + c for c in range(lanes))
        nxt = [""] * lanes
        for i in range(lanes):
            if i & h:
                continue
            top, bottom = L.Local(current[i]), L.Local(current[i + h])
            last = h == 1
            nxt[i] = f"tr_{i}" if last else f"tr{level}_{i}"
            nxt[i + h] = f"tr_{i + h}" if last else f"tr{level}_{i + h}"
            stmts.append(L.Declare(nxt[i], dtype, L.Shuffle(top, bottom, low), lanes))
            stmts.append(L.Declare(nxt[i + h], dtype, L.Shuffle(top, bottom, high), lanes))
        current, h, level = nxt, h // 2, level + 1
    return stmts

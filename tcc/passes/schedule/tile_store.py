"""How a finished GETT micro-tile reaches C: the ways of writing (or adding) the MR x NR
accumulators to C's strides, chosen by how C is laid out along the flattened N group.

* whole vectors straight from the registers, when C is contiguous along N in runs that
  are a multiple of the vector width (or N is one run);
* two masked vector stores per vector, split at the run's end, when the runs are longer
  than a vector but not a multiple of it (``abcd,aebf->dfce``: runs of e);
* narrower vectors through the tile buffer ``Ct`` when the runs are shorter;
* element by element through ``Ct`` for edge tiles and when C is not unit-stride along N.

``TileStores`` is a mixin of the GETT builder (it uses the builder's shape ``s``,
parameters ``p``, ``dtype`` and ``address``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tcc.dtypes import DTYPES
from tcc.errors import TccError
from tcc.ir import loops as L

Aff = L.Affine


class TileStores:
    s: Any  # GettShape
    p: Any  # GettParams
    dtype: str
    address: Callable[[str, list[tuple[tuple[str, ...], Aff]]], tuple]

    def scaled(self, value: L.Scalar, lanes: int) -> L.Scalar:
        """``scale * value`` when the product had constant factors."""
        if self.s.scale == 1.0:
            return value
        if DTYPES[self.dtype].is_integer:
            raise TccError("internal: integer GETT with a constant factor")
        factor: L.Scalar = L.Const(self.s.scale, self.dtype)
        return L.Binary("mul", value, factor if lanes == 1 else L.Broadcast(factor, lanes))

    def c_run(self) -> int:
        """Columns of the flattened N group that are contiguous in C from any multiple of
        the returned count (a power of two up to the vector width; 1 when C is not
        unit-stride along N's innermost index)."""
        run = self.run_length()
        if run == 0:  # the whole group is one run: rows of C are contiguous
            return self.p.lanes
        width = self.p.lanes
        while run % width:
            width //= 2
        return width

    def run_length(self) -> int:
        """Columns of the flattened N group in each contiguous run of C: 0 when the whole
        group is one run, 1 when C is not unit-stride along N's innermost index."""
        s = self.s
        coefs = [s.coefs[s.c].get(i, 0) for i in s.n]
        extents = [s.sizes[i] for i in s.n]
        if coefs[-1] != 1:
            return 1
        run = extents[-1]
        for d in range(len(coefs) - 2, -1, -1):
            if coefs[d] != coefs[d + 1] * extents[d + 1]:
                return run
            run *= extents[d]
        return 0

    def masked_tile_update(self, acc, bt: Aff, ic: Aff, jc: Aff, m_left: Aff,
                           add: bool) -> list[L.Stmt]:
        """A full tile into C contiguous in runs of R >= VW columns (R not a multiple of
        VW: ``abcd,aebf->dfce``, runs of e): a vector meets at most one run end, at lane
        ``m = R - (column mod R)``; lanes below it go to the run of its first column, the
        others to the run of its last, each with a masked store (an empty mask writes
        nothing), straight from the accumulators."""
        p, s = self.p, self.s
        run, lanes = self.run_length(), p.lanes

        def int_(value: int) -> L.Const:
            return L.Const(value, "int64")

        def update(index: Aff, lookups: tuple, i: int, j: int) -> tuple[L.Stmt, ...]:
            m_flat = ic * p.mc + Aff.var("ir", p.mr) + i
            column = jc * p.nc + Aff.var("jr", p.nr) + j
            last, last_lookups = self.address(s.c, [(s.batch, bt), (s.m, m_flat),
                                                    (s.n, column + lanes - 1)])
            tail = (last - (lanes - 1), last_lookups)
            split = L.Local(f"split{j}")
            masks = (L.Mask(int_(0), split), L.Mask(split, int_(lanes)))
            value: L.Scalar = self.scaled(L.Local(acc[i][j // lanes]), lanes)
            if add:
                old = L.Binary("add", L.Load(s.c, index, lanes, lookups, masks[0]),
                               L.Load(s.c, tail[0], lanes, tail[1], masks[1]))
                value = L.Binary("add", old, value)
            # computed once: each store evaluating it would load C again after the other
            return (L.Declare("cv", self.dtype, value, lanes),
                    L.Store(s.c, index, L.Local("cv"), lookups, masks[0]),
                    L.Store(s.c, tail[0], L.Local("cv"), tail[1], masks[1]))

        splits = []  # where each column's vector meets a run end: the same in every row
        for j in range(0, p.nr, lanes):
            position = L.IndexValue(jc * p.nc + Aff.var("jr", p.nr) + j)
            blocks = L.Binary("add", L.Binary("div", position, int_(run)), int_(1))
            split = L.Binary("sub", L.Binary("mul", int_(run), blocks), position)
            splits.append(L.Declare(f"split{j}", "int64", split))
        return self.full_tile_rows(bt, ic, jc, m_left, lanes, update, tuple(splits))

    def full_tile_rows(self, bt: Aff, ic: Aff, jc: Aff, m_left: Aff, width: int,
                       each, prelude: tuple[L.Stmt, ...] = ()) -> list[L.Stmt]:
        """``each(index, lookups, i, j)`` for columns ``j`` (every ``width``-th) of row ``i``
        of a tile whose NR columns all exist (rows past M are skipped), after
        ``prelude``."""
        p, s = self.p, self.s
        rows = []
        for i in range(p.mr):
            m_flat = ic * p.mc + Aff.var("ir", p.mr) + i
            stmts: list[L.Stmt] = []
            for j in range(0, p.nr, width):
                n_flat = jc * p.nc + Aff.var("jr", p.nr) + j
                index, lookups = self.address(s.c, [(s.batch, bt), (s.m, m_flat),
                                                    (s.n, n_flat)])
                stmts += each(index, lookups, i, j)
            rows.append(L.For(f"row{i}", 1, tuple(stmts), bound=m_left - i))
        n_left = s.extent(s.n) - jc * p.nc - Aff.var("jr", p.nr)
        return [L.For("full", 1, (*prelude, *rows), bound=n_left - p.nr + 1)]

    def full_tile_update(self, bt: Aff, ic: Aff, jc: Aff, m_left: Aff, width: int, add: bool,
                         tile) -> list[L.Stmt]:
        """A tile whose NR columns all exist: ``tile(i, j)`` (``width`` lanes of row ``i``
        from column ``j``) is written, or added, to C ``width`` contiguous columns at a
        time."""
        c = self.s.c

        def update(index: Aff, lookups: tuple, i: int, j: int) -> tuple[L.Stmt, ...]:
            value: L.Scalar = self.scaled(tile(i, j), width)
            if add:
                value = L.Binary("add", L.Load(c, index, width, lookups), value)
            return (L.Store(c, index, value, lookups),)

        return self.full_tile_rows(bt, ic, jc, m_left, width, update)

    def stage_tile(self, acc) -> list[L.Stmt]:
        """The accumulators into the tile buffer ``Ct`` (row-major MR x NR)."""
        p = self.p
        return [L.Store("Ct", Aff((), i * p.nr + v * p.lanes), L.Local(acc[i][v]))
                for i in range(p.mr) for v in range(p.nr // p.lanes)]

    def edge_tile_update(self, acc, bt: Aff, ic: Aff, jc: Aff, m_left: Aff, n_left: Aff,
                         add: bool, staged: bool = False) -> list[L.Stmt]:
        """Any tile: through the tile buffer, element by element, within the bounds
        (``staged``: the accumulators are in the buffer already)."""
        p, s = self.p, self.s
        body = [] if staged else self.stage_tile(acc)
        m_flat = ic * p.mc + Aff.var("ir", p.mr) + Aff.var("i")
        n_flat = jc * p.nc + Aff.var("jr", p.nr) + Aff.var("j")
        index, lookups = self.address(s.c, [(s.batch, bt), (s.m, m_flat), (s.n, n_flat)])
        tile = self.scaled(L.Load("Ct", Aff.of({"i": p.nr, "j": 1})), 1)
        value = L.Binary("add", L.Load(s.c, index, 1, lookups), tile) if add else tile
        j_loop = L.For("j", p.nr, (L.Store(s.c, index, value, lookups),), bound=n_left)
        body.append(L.For("i", p.mr, (j_loop,), bound=m_left))
        return body

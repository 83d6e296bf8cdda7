"""A pairwise contraction seen by the GPU as one GEMM over flattened index groups.

``gett.analyze`` splits a contraction's indices into batch, M, N and K groups. The GPU
templates tile one flattened position per group (``m`` in ``0..prod(M sizes)`` and so
on): each group is ordered row-major with its smallest-stride index innermost, so
consecutive positions are consecutive addresses wherever the tensors allow, and a tensor
address is rebuilt from the group's digits (:class:`~tcc.passes.schedule.gpu_ir.IndexOf`):

    m = 64*blockIdx.y + row           (M = (e, f), sizes 8 x 16)
    e = m // 16 ; f = m % 16          A[... + 16*e + f] ...

A one-index group needs no digits: its position is the index itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from tcc.ir import loops as L
from tcc.passes.schedule.gett import GettShape
from tcc.passes.schedule.gpu_ir import IndexOf, unflatten

Aff = L.Affine


class FlatGett:
    """Flattened groups and tensor addresses of one GETT shape."""

    def __init__(self, shape: GettShape) -> None:
        self.s = shape

        def order(group: tuple[str, ...], tensors: tuple[str, ...]) -> tuple[str, ...]:
            stride = {i: sum(abs(shape.coefs[t].get(i, 0)) for t in tensors) for i in group}
            return tuple(sorted(group, key=lambda i: -stride[i]))

        self.m = order(shape.m, (shape.a, shape.c))
        self.n = order(shape.n, (shape.b, shape.c))
        self.k = order(shape.k, (shape.a, shape.b))
        self.batch = order(shape.batch, (shape.a, shape.b, shape.c))

    def extent(self, group: Iterable[str]) -> int:
        return math.prod(self.s.sizes[i] for i in group)

    def split(self, group: tuple[str, ...], flat: Aff, tag: str) -> tuple[tuple, dict[str, Aff]]:
        """The statements defining ``group``'s indices at position ``flat`` (their names
        end in ``tag``), and each index's value."""
        if len(group) <= 1:
            return (), {i: flat for i in group}
        names = [f"{i}.{tag}" for i in group]
        head = unflatten(flat, names, [self.s.sizes[i] for i in group])
        return head, {i: Aff.var(n) for i, n in zip(group, names, strict=True)}

    def address(self, tensor: str, where: Mapping[str, Aff]) -> Aff:
        """``tensor``'s element offset with its indices at ``where``."""
        return self.part(tensor, where, self.s.coefs[tensor]) + self.s.offsets.get(tensor, 0)

    def part(self, tensor: str, where: Mapping[str, Aff], indices: Iterable[str]) -> Aff:
        """The share of ``indices`` in ``tensor``'s element offset."""
        total = Aff()
        for index in indices:
            total = total + where[index] * self.s.coefs[tensor].get(index, 0)
        return total

    def offset_of(self, tensor: str, group: tuple[str, ...], flat: Aff,
                  name: str) -> tuple[tuple, Aff]:
        """``group``'s share of ``tensor``'s offset at position ``flat``: for a one-index
        group the affine itself, else one variable ``name`` defined from the digits (so
        only the offset stays live, not every digit). A group laid out in ``tensor`` as
        one index (each stride the next one's times its extent) needs no digits at all."""
        if group and self.s.mergeable(tensor, group):
            return (), flat * self.s.coefs[tensor].get(group[-1], 0)
        head, where = self.split(group, flat, name)
        share = self.part(tensor, where, group)
        if not head:
            return (), share
        return (*head, IndexOf(name, share)), Aff.var(name)

    def along_k(self, tensor: str, group: tuple[str, ...]) -> bool:
        """Whether ``tensor`` is closer to contiguous along K than along ``group`` (its
        tile is then read with consecutive threads on consecutive K positions)."""
        coefs = self.s.coefs[tensor]
        k_stride = abs(coefs.get(self.k[-1], 0)) if self.k else 0
        return k_stride <= abs(coefs.get(group[-1], 0)) if group else True

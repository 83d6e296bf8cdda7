"""Slicing: fix some summed indices to one value at a time so every slice fits memory.

Summing the results of all slices gives the full contraction. :func:`slice_tree` picks
indices greedily, like cotengra's ``SliceFinder``: among the indices of intermediates
that are still too big, it slices the one with the best ratio of log-reduction of the
largest intermediate to log-increase of total work (``num_slices * per-slice flops``).
Only indices outside the output are sliced, so the smallest limit any slicing can reach
is the largest intermediate with every non-output index at size 1 (at least the output
size); asking for less raises :class:`~tcc.errors.MemoryBudgetError` naming that number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable
from dataclasses import dataclass

from tcc.errors import MemoryBudgetError
from tcc.passes.order.tree import ContractionTree

Label = Hashable


@dataclass(frozen=True)
class SlicedTree:
    """A tree plus the indices sliced over (plain data)."""

    tree: ContractionTree
    sliced: tuple[Label, ...]
    num_slices: int
    slice_flops: int  # FLOPs of one slice
    largest_intermediate: int  # elements, per slice
    overhead: float  # num_slices * slice_flops / unsliced flops

    @property
    def total_flops(self) -> int:
        return self.num_slices * self.slice_flops

    def slice_assignment(self, number: int) -> dict[Label, int]:
        """{index: value} of slice ``number`` (mixed radix, last index fastest)."""
        if not 0 <= number < self.num_slices:
            raise IndexError(f"slice {number} out of range 0..{self.num_slices - 1}")
        sizes = self.tree.size_dict
        values: dict[Label, int] = {}
        for label in reversed(self.sliced):
            number, values[label] = divmod(number, sizes[label])
        return {label: values[label] for label in self.sliced}

    def slice_size_dict(self) -> dict[Label, int]:
        """The size_dict every slice sees: sliced indices have size 1."""
        sizes = self.tree.size_dict
        sizes.update({label: 1 for label in self.sliced})
        return sizes

    def slice(self, number: int) -> tuple[dict[Label, int], dict[Label, int]]:
        """(index values, per-slice size_dict) for slice ``number``."""
        return self.slice_assignment(number), self.slice_size_dict()

    def to_json(self) -> str:
        return json.dumps({"tree": json.loads(self.tree.to_json()), "sliced": list(self.sliced)})

    @classmethod
    def from_json(cls, text: str) -> SlicedTree:
        data = json.loads(text)
        tree = ContractionTree.from_json(json.dumps(data["tree"]))
        return make_sliced(tree, tuple(data["sliced"]))

    def __str__(self) -> str:
        return (
            f"SlicedTree: {len(self.sliced)} sliced indices {self.sliced!r}, "
            f"{self.num_slices} slices, "
            f"largest intermediate per slice {self.largest_intermediate:.3e}, "
            f"overhead {self.overhead:.3f}x\n{self.tree}"
        )


def make_sliced(tree: ContractionTree, sliced: tuple[Label, ...]) -> SlicedTree:
    sizes = tree.size_dict
    slice_flops = tree.flops(sliced)
    num_slices = math.prod(sizes[label] for label in sliced)
    base = tree.flops()
    return SlicedTree(
        tree=tree,
        sliced=sliced,
        num_slices=num_slices,
        slice_flops=slice_flops,
        largest_intermediate=tree.largest_intermediate(sliced),
        overhead=(num_slices * slice_flops / base) if base else 1.0,
    )


def smallest_feasible_limit(tree: ContractionTree) -> int:
    """Largest intermediate of ``tree`` when every non-output index is sliced."""
    output = set(tree.output)
    return tree.largest_intermediate([label for label, _ in tree.sizes if label not in output])


def slice_tree(tree: ContractionTree, memory_limit: int) -> SlicedTree:
    """Slice ``tree`` until its largest intermediate per slice is <= ``memory_limit``."""
    floor = smallest_feasible_limit(tree)
    if memory_limit < floor:
        output_size = math.prod(tree.size_dict[label] for label in tree.output)
        raise MemoryBudgetError(
            f"memory_limit={memory_limit} elements cannot be met: even slicing every summed "
            f"index leaves an intermediate of {floor} elements (the output {tree.output!r} "
            f"has {output_size}); the smallest feasible memory_limit is {floor}"
        )
    output = set(tree.output)
    sizes = tree.size_dict
    sliced: list[Label] = []
    largest = tree.largest_intermediate()
    work = max(tree.flops(), 1)
    while largest > memory_limit:
        too_big = {
            label
            for step in tree._costs(sliced)
            if step.size > memory_limit
            for label in step.result_labels
        }
        best: tuple[float, int, Label, int, int] | None = None
        for order, label in enumerate(sorted(too_big - output - set(sliced), key=repr)):
            if sizes[label] <= 1:
                continue
            trial = [*sliced, label]
            new_largest = tree.largest_intermediate(trial)
            new_work = max(tree.flops(trial) * math.prod(sizes[x] for x in trial), 1)
            gain = math.log(largest) - math.log(max(new_largest, 1))
            if gain <= 0:
                continue
            score = (math.log(new_work) - math.log(work) + 1e-3) / gain
            if best is None or (score, order) < (best[0], best[1]):
                best = (score, order, label, new_largest, new_work)
        if best is None:  # no single index helps: slice the biggest remaining one
            candidates = sorted(too_big - output - set(sliced), key=lambda x: (-sizes[x], repr(x)))
            if not candidates:
                break
            label = candidates[0]
            sliced.append(label)
            largest = tree.largest_intermediate(sliced)
            work = max(tree.flops(sliced) * math.prod(sizes[x] for x in sliced), 1)
            continue
        _, _, label, largest, work = best
        sliced.append(label)
    return make_sliced(tree, tuple(sliced))

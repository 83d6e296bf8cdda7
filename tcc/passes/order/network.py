"""The search-side view of a contraction network, shared by every optimizer.

Optimizers never see user labels: labels become dense integer ids, each operand becomes
the frozenset of its *distinct* label ids (a repeated label is a diagonal, which does not
change the cost), and a path is an SSA path: operands are numbered ``0..n-1`` and the
``k``-th pairwise contraction creates operand ``n + k``.

The rule for what an intermediate keeps (hyperedges included): a label survives a
contraction when the output or some operand outside the contracted group still carries
it. :class:`LegCounter` applies it incrementally, in O(legs) per contraction.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from numbers import Integral

from tcc.errors import TccError

Label = Hashable
Legs = frozenset[int]
SsaPath = list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Network:
    """A contraction network with integer label ids (the optimizers' input)."""

    labels: tuple[Label, ...]  # label id -> user label
    legs: tuple[Legs, ...]  # per operand: distinct label ids
    output: Legs
    sizes: tuple[int, ...]  # label id -> size used for search (at least 1)

    @property
    def num_operands(self) -> int:
        return len(self.legs)


def build_network(
    inputs: Sequence[Sequence[Label]], output: Sequence[Label], size_dict: dict
) -> Network:
    """Validate a network and give its labels dense ids in order of first appearance."""
    if len(inputs) == 0:
        raise TccError("a contraction needs at least one operand, got none")
    label_id: dict[Label, int] = {}
    for term in inputs:
        for label in term:
            label_id.setdefault(label, len(label_id))
    seen: set[Label] = set()
    for label in output:
        if label not in label_id:
            raise TccError(
                f"output index {label!r} appears in no operand (output {tuple(output)!r})"
            )
        if label in seen:
            raise TccError(f"output index {label!r} is repeated in the output {tuple(output)!r}")
        seen.add(label)
    sizes = []
    for label in label_id:
        if label not in size_dict:
            raise TccError(f"index {label!r} has no size in size_dict")
        size = size_dict[label]
        if not isinstance(size, Integral) or size < 0:
            raise TccError(f"index {label!r} must have a non-negative integer size, got {size!r}")
        sizes.append(max(1, int(size)))
    legs = tuple(frozenset(label_id[label] for label in term) for term in inputs)
    return Network(
        labels=tuple(label_id),
        legs=legs,
        output=frozenset(label_id[label] for label in output),
        sizes=tuple(sizes),
    )


def size_of(legs: Iterable[int], sizes: Sequence[int]) -> int:
    """Number of elements of a tensor with these legs."""
    result = 1
    for label in legs:
        result *= sizes[label]
    return result


def log2_size(legs: Iterable[int], sizes: Sequence[int]) -> float:
    return sum(math.log2(sizes[label]) for label in legs)


class LegCounter:
    """Counts, per label, the live operands that carry it (+1 when the output does)."""

    __slots__ = ("counts",)

    def __init__(self, legs: Iterable[Legs], output: Legs) -> None:
        counts: dict[int, int] = {}
        for term in legs:
            for label in term:
                counts[label] = counts.get(label, 0) + 1
        for label in output:
            counts[label] = counts.get(label, 0) + 1
        self.counts = counts

    def result_legs(self, left: Legs, right: Legs) -> Legs:
        """Legs of ``left * right``: the labels someone else (or the output) still needs."""
        counts = self.counts
        shared = left & right
        return frozenset(label for label in left | right if counts[label] > 1 + (label in shared))

    def contract(self, left: Legs, right: Legs) -> Legs:
        """Apply a contraction: consume both operands, add the result; return its legs."""
        result = self.result_legs(left, right)
        counts = self.counts
        for label in left:
            counts[label] -= 1
        for label in right:
            counts[label] -= 1
        for label in result:
            counts[label] += 1
        return result


def step_flops(left: Legs, right: Legs, result: Legs, sizes: Sequence[int]) -> int:
    """FLOPs of one pairwise step, counted like ``opt_einsum.helpers.flop_count``.

    The product of the sizes of every index involved, times 2 when some index is summed
    (one multiply and one add per term), else times 1 (a pure Hadamard/outer product).
    """
    union = left | right
    return size_of(union, sizes) * (2 if len(union) != len(result) else 1)


def evaluate_ssa(
    legs: Sequence[Legs], output: Legs, ssa_path: Sequence[tuple[int, int]]
) -> list[tuple[Legs, Legs, Legs]]:
    """(left legs, right legs, result legs) for every step of an SSA path."""
    counter = LegCounter(legs, output)
    current = list(legs)
    steps = []
    for left_id, right_id in ssa_path:
        left, right = current[left_id], current[right_id]
        result = counter.contract(left, right)
        current.append(result)
        steps.append((left, right, result))
    return steps


def check_ssa(num_operands: int, ssa_path: Sequence[tuple[int, int]]) -> None:
    """Raise unless ``ssa_path`` contracts ``num_operands`` operands into exactly one."""
    if len(ssa_path) != max(0, num_operands - 1):
        raise TccError(
            f"an SSA path over {num_operands} operands needs {max(0, num_operands - 1)} "
            f"steps, got {len(ssa_path)}"
        )
    used: set[int] = set()
    for k, (left, right) in enumerate(ssa_path):
        limit = num_operands + k
        for node in (left, right):
            if not 0 <= node < limit or node in used:
                raise TccError(
                    f"SSA step {k} {(left, right)} uses operand {node} twice or before it exists"
                )
            used.add(node)
        if left == right:
            raise TccError(f"SSA step {k} contracts operand {left} with itself")


def subproblem_output(group_legs: Sequence[Legs], counter: LegCounter) -> Legs:
    """Labels a group of live operands must still carry once contracted into one."""
    inside: dict[int, int] = {}
    for term in group_legs:
        for label in term:
            inside[label] = inside.get(label, 0) + 1
    counts = counter.counts
    return frozenset(label for label, count in inside.items() if counts[label] > count)


def ssa_cost(
    legs: Sequence[Legs],
    output: Legs,
    sizes: Sequence[int],
    ssa_path: Sequence[tuple[int, int]],
    objective,
) -> tuple[object, int]:
    """(objective cost, largest intermediate) of an SSA path on a (sub-)network."""
    cost = objective.zero
    largest = 0
    for left, right, result in evaluate_ssa(legs, output, ssa_path):
        size = size_of(result, sizes)
        largest = max(largest, size)
        cost = objective.combine(cost, objective.zero, step_flops(left, right, result, sizes), size)
    return cost, largest

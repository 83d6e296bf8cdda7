"""Dynamic programming over connected subsets with cost capping (Pfeifer et al. 2014).

This is the algorithm behind ``opt_einsum``'s ``DynamicProgramming``: subsets of
operands are built by size from pairs of disjoint, *connected* (index-sharing) smaller
subsets; a subset keeps only its cheapest tree. Outer products inside a component are
never considered, which keeps the search far smaller than :mod:`optimal`'s. Subtrees
costing more than a cap are dropped; the cap starts at the component's output size and
grows geometrically until a full tree appears. Disconnected components are solved
independently and joined by outer products at the end, smallest first.
"""

from __future__ import annotations

from collections.abc import Sequence

from tcc.passes.order.cost import FLOPS, Cost, Objective
from tcc.passes.order.network import LegCounter, Legs, Network, SsaPath, size_of
from tcc.passes.order.registry import register


class SearchBudgetExceeded(Exception):
    """Raised when ``max_pairs`` candidate pairs were examined without finishing."""


def components(legs: Sequence[Legs]) -> list[list[int]]:
    """Connected components of operands (sharing an index connects them)."""
    parent = list(range(len(legs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_holder: dict[int, int] = {}
    for i, term in enumerate(legs):
        for label in term:
            j = first_holder.setdefault(label, i)
            parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(legs)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def _primary(cost: Cost) -> float:
    return cost[0] if isinstance(cost, tuple) else cost


def _component_tree(
    members: list[int],
    legs: Sequence[Legs],
    output: Legs,
    sizes: Sequence[int],
    objective: Objective,
    memory_limit: int | None,
    max_pairs: int | None,
    search_outer: bool,
) -> dict[int, tuple[int, int]] | None:
    """Best tree of one component as {subset mask: (part, other)}; None if infeasible."""
    holders: dict[int, int] = {}
    for i in members:
        for label in legs[i]:
            holders[label] = holders.get(label, 0) | (1 << i)
    everything = sum(1 << i for i in members)
    final_legs = frozenset(label for label in holders if label in output)
    cap = float(max(1, size_of(final_legs, sizes)))
    increase = float(max(2, min(sizes[label] for label in holders)))
    combine = objective.combine
    examined = 0
    while True:
        levels: list[dict[int, tuple[Cost, Legs, int, int]]] = [{}]
        levels.append({1 << i: (objective.zero, legs[i], 0, 0) for i in members})
        capped = False
        for total in range(2, len(members) + 1):
            level: dict[int, tuple[Cost, Legs, int, int]] = {}
            for k in range(1, total // 2 + 1):
                for part, (cost_a, legs_a, _, _) in levels[k].items():
                    for other, (cost_b, legs_b, _, _) in levels[total - k].items():
                        if part & other or (k == total - k and part > other):
                            continue
                        if not search_outer and legs_a.isdisjoint(legs_b):
                            continue
                        examined += 1
                        if max_pairs is not None and examined > max_pairs:
                            raise SearchBudgetExceeded
                        subset = part | other
                        involved = legs_a | legs_b
                        result = frozenset(
                            label
                            for label in involved
                            if label in output or holders[label] & ~subset & everything
                        )
                        size = size_of(result, sizes)
                        if memory_limit is not None and size > memory_limit:
                            continue
                        flops = size_of(involved, sizes) * (
                            2 if len(involved) != len(result) else 1
                        )
                        cost = combine(cost_a, cost_b, flops, size)
                        if _primary(cost) > cap:
                            capped = True
                            continue
                        old = level.get(subset)
                        if old is None or cost < old[0]:
                            level[subset] = (cost, result, part, other)
            levels.append(level)
        if everything in levels[len(members)]:
            splits: dict[int, tuple[int, int]] = {}
            for level in levels[2:]:
                for subset, (_, _, part, other) in level.items():
                    splits[subset] = (part, other)
            return splits
        if not capped:
            return None
        cap *= increase


def dp_ssa(
    legs: Sequence[Legs],
    output: Legs,
    sizes: Sequence[int],
    objective: Objective,
    *,
    memory_limit: int | None = None,
    max_pairs: int | None = None,
    search_outer: bool = False,
) -> SsaPath | None:
    """DP path, or None when no tree fits ``memory_limit``.

    ``search_outer`` also lets outer products join subsets inside a component.
    """
    n = len(legs)
    path: SsaPath = []
    counter = LegCounter(legs, output)
    pieces: list[tuple[int, int, Legs]] = []  # (size, SSA id, legs) per component
    for members in components(legs):
        if len(members) == 1:
            i = members[0]
            pieces.append((size_of(legs[i], sizes), i, legs[i]))
            continue
        splits = _component_tree(
            members, legs, output, sizes, objective, memory_limit, max_pairs, search_outer
        )
        if splits is None:
            return None
        ids = {1 << i: i for i in members}
        stack = [(sum(1 << i for i in members), False)]
        current = dict(enumerate(legs))
        while stack:
            subset, expanded = stack.pop()
            if subset in ids:
                continue
            part, other = splits[subset]
            if expanded:
                a, b = ids[part], ids[other]
                result = counter.contract(current[a], current[b])
                ids[subset] = n + len(path)
                current[ids[subset]] = result
                path.append((a, b))
            else:
                stack.extend([(subset, True), (other, False), (part, False)])
        root = ids[sum(1 << i for i in members)]
        pieces.append((size_of(current[root], sizes), root, current[root]))
    pieces.sort()
    while len(pieces) > 1:
        (_, a, legs_a), (_, b, legs_b) = pieces[0], pieces[1]
        result = counter.contract(legs_a, legs_b)
        path.append((a, b))
        pieces = sorted(pieces[2:] + [(size_of(result, sizes), n + len(path) - 1, result)])
    return path


@register("dp")
def dp(
    network: Network,
    *,
    memory_limit: int | None = None,
    max_time: float | None = None,
    objective: Objective = FLOPS,
    seed: int = 0,
) -> SsaPath:
    """Connected-subset DP; under a memory limit that connected subsets cannot meet,
    outer products are searched too, and if nothing fits the unconstrained DP is used."""
    path = dp_ssa(network.legs, network.output, network.sizes, objective, memory_limit=memory_limit)
    if path is None and memory_limit is not None:
        try:
            path = dp_ssa(
                network.legs,
                network.output,
                network.sizes,
                objective,
                memory_limit=memory_limit,
                search_outer=True,
                max_pairs=1_000_000,
            )
        except SearchBudgetExceeded:
            path = None
    if path is None:
        path = dp_ssa(network.legs, network.output, network.sizes, objective)
    assert path is not None
    return path

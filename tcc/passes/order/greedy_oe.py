"""``opt_einsum``'s greedy, step for step: a baseline every tcc search starts from.

Operands are keyed by their label sets, so identical tensors (inputs or intermediates)
are Hadamard-multiplied at once; labels that every input carries count as output labels
(they make no candidate pairs). Each new operand pushes only its best candidate, scored
``size(result) - size(left) - size(right)`` ("memory removed") with ties broken by SSA
ids; disconnected pieces are joined by outer products, smallest first. Keeping this exact
means 'auto' and the random greedy are never worse than ``opt_einsum``'s greedy.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from tcc.passes.order.network import Legs, SsaPath, size_of


def oe_greedy_ssa(legs: Sequence[Legs], output: Legs, sizes: Sequence[int]) -> SsaPath:
    """``opt_einsum.paths.ssa_greedy_optimize`` with the default chooser and cost."""
    if len(legs) <= 1:
        return []
    output = output | frozenset.intersection(*legs)
    remaining: dict[Legs, int] = {}
    next_id = len(legs)
    path: SsaPath = []
    for ssa_id, key in enumerate(legs):
        if key in remaining:
            path.append((remaining[key], ssa_id))
            remaining[key] = next_id
            next_id += 1
        else:
            remaining[key] = ssa_id
    holders: dict[int, set[Legs]] = {}
    for key in remaining:
        for label in key - output:
            holders.setdefault(label, set()).add(key)
    shared_by = {
        count: {label for label, keys in holders.items() if len(keys) >= count} - output
        for count in (2, 3)
    }
    footprint = {key: size_of(key, sizes) for key in remaining}

    def candidate(k1: Legs, k2: Legs) -> tuple:
        either = k1 | k2
        two = k1 & k2
        one = either - two
        k12 = (either & output) | (two & shared_by[3]) | (one & shared_by[2])
        cost = size_of(k12, sizes) - footprint[k1] - footprint[k2]
        id1, id2 = remaining[k1], remaining[k2]
        if id1 > id2:
            k1, id1, k2, id2 = k2, id2, k1, id1
        return (cost, id2, id1), k1, k2, k12

    queue: list[tuple] = []
    for keys in holders.values():
        ordered = sorted(keys, key=remaining.__getitem__)
        for i, k1 in enumerate(ordered[:-1]):
            heapq.heappush(queue, min(candidate(k1, k2) for k2 in ordered[i + 1 :]))
    while queue:
        _, k1, k2, k12 = heapq.heappop(queue)
        if k1 not in remaining or k2 not in remaining:
            continue
        id1, id2 = remaining.pop(k1), remaining.pop(k2)
        for label in k1 - output:
            holders[label].remove(k1)
        for label in k2 - output:
            holders[label].remove(k2)
        path.append((id1, id2))
        if k12 in remaining:
            path.append((remaining[k12], next_id))
            next_id += 1
        else:
            for label in k12 - output:
                holders[label].add(k12)
        remaining[k12] = next_id
        next_id += 1
        for label in k1 | k2 - output:
            count = len(holders[label]) if label in holders else 0
            for threshold in (2, 3):
                if count >= threshold and label not in output:
                    shared_by[threshold].add(label)
                else:
                    shared_by[threshold].discard(label)
        footprint[k12] = size_of(k12, sizes)
        others = {key for label in k12 - output for key in holders[label]}
        others.discard(k12)
        if others:
            heapq.heappush(queue, min(candidate(k12, k2) for k2 in others))
    final = [(size_of(key & output, sizes), ssa_id, key) for key, ssa_id in remaining.items()]
    heapq.heapify(final)
    _, id1, k1 = heapq.heappop(final)
    while final:
        _, id2, k2 = heapq.heappop(final)
        path.append((min(id1, id2), max(id1, id2)))
        k12 = (k1 | k2) & output
        _, id1, k1 = heapq.heappushpop(final, (size_of(k12, sizes), next_id, k12))
        next_id += 1
    return path

"""Greedy contraction ordering (``opt_einsum``/``cotengra`` style), fast enough for 1000s.

Candidates are pairs of operands that share an index; each is scored by

    score = size(result) / costmod - (size(left) + size(right)) * costmod

(``costmod = 1`` is ``opt_einsum``'s "memory removed" heuristic). With a temperature
the choice is Boltzmann-sampled by adding Gumbel noise to ``sign(score) log|score|``,
like cotengra's random greedy. A lazy heap keeps the work near O(edges log edges).
When no connected pair is left, the remaining pieces are joined by outer products,
smallest first. Under a ``memory_limit`` steps whose result would exceed it are taken
only when nothing else is left.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections.abc import Sequence

from tcc.passes.order.cost import Objective
from tcc.passes.order.network import LegCounter, Legs, Network, SsaPath, size_of, step_flops
from tcc.passes.order.registry import register


def greedy_ssa(
    legs: Sequence[Legs],
    output: Legs,
    sizes: Sequence[int],
    *,
    costmod: float = 1.0,
    temperature: float = 0.0,
    rng: random.Random | None = None,
    memory_limit: int | None = None,
    cost_cap: float | None = None,
    objective: Objective | None = None,
    deadline: float | None = None,
    max_neighbours: int | None = None,
) -> SsaPath | None:
    """Greedy SSA path for the sub-network ``legs -> output``.

    Returns None (gives up) once the path's ``objective`` cost passes ``cost_cap`` (an
    additive objective) or ``time.perf_counter()`` passes ``deadline``: random-greedy
    trials that have already lost stop early. ``max_neighbours`` bounds the candidate
    pairs a new intermediate adds (hyperedge-heavy networks), like cotengra's.
    """
    n = len(legs)
    if n <= 1:
        return []
    if temperature > 0.0 and rng is None:
        rng = random.Random(0)
    counter = LegCounter(legs, output)
    live: dict[int, Legs] = dict(enumerate(legs))
    live_size = {node: size_of(term, sizes) for node, term in live.items()}
    # Only summed indices make candidate pairs (as in opt_einsum): output indices, often
    # hyperedges over most operands, would make everything a neighbour of everything.
    holders: dict[int, set[int]] = {}
    for node, term in live.items():
        for label in term - output:
            holders.setdefault(label, set()).add(node)
    log_sizes = [math.log2(size) + 0.01 for size in sizes] if max_neighbours else []
    heap: list[tuple[int, float, int, int, int, int]] = []
    sequence = 0

    counts = counter.counts
    # Labels only one operand carries (and not the output) exist only on inputs: they
    # go in that input's first step. Any other label can only go where both sides share it.
    private: dict[int, Legs] = {
        node: frozenset(label for label in term if counts[label] == 1)
        for node, term in live.items()
    }

    def result_legs(a: int, b: int) -> Legs:
        left, right = live[a], live[b]
        result = left | right
        shared = left & right
        if shared:
            result = result - {label for label in shared if counts[label] == 2}
        drop = private.get(a)
        if drop:
            result = result - drop
        drop = private.get(b)
        if drop:
            result = result - drop
        return result

    def push(a: int, b: int) -> None:
        nonlocal sequence
        result_size = size_of(result_legs(a, b), sizes)
        score = result_size / costmod - (live_size[a] + live_size[b]) * costmod
        if temperature > 0.0:
            if score > 0:
                score = math.log(score)
            elif score < 0:
                score = -math.log(-score)
            score -= temperature * -math.log(-math.log(rng.random() or 1e-300))  # type: ignore[union-attr]
        over = 1 if memory_limit is not None and result_size > memory_limit else 0
        sequence += 1
        heapq.heappush(heap, (over, score, sequence, a, b, result_size))

    def neighbours(node: int) -> set[int] | list[int]:
        found: set[int] = set()
        for label in live[node] - output:
            found |= holders[label]
        found.discard(node)
        if max_neighbours is None or len(found) <= max_neighbours:
            return found
        # Hyperedges make many neighbours: keep those sharing the most (log) size.
        shared: dict[int, float] = {}
        for label in live[node] - output:
            weight = log_sizes[label]
            for other in holders[label]:
                shared[other] = shared.get(other, 0.0) + weight
        del shared[node]
        return heapq.nlargest(max_neighbours, shared, key=shared.__getitem__)

    for a in range(n):
        for b in neighbours(a):
            if a < b:
                push(a, b)
    path: SsaPath = []
    next_id = n
    spent = 0.0
    watch = cost_cap is not None and objective is not None and objective.is_additive
    while heap:
        entry = heapq.heappop(heap)
        over, a, b = entry[0], entry[3], entry[4]
        if a not in live or b not in live:
            continue
        if size_of(result_legs(a, b), sizes) != entry[5]:
            push(a, b)  # other steps consumed some shared index's holders: re-score
            continue
        if over:  # every connected step is too big: prefer an outer product that fits
            heapq.heappush(heap, entry)
            a, b = _smallest_pair(live_size)
            if size_of(counter.result_legs(live[a], live[b]), sizes) > memory_limit:  # type: ignore[operator]
                fallback = heapq.heappop(heap)
                a, b = fallback[3], fallback[4]
        left, right = live.pop(a), live.pop(b)
        result = counter.contract(left, right)
        if watch:
            result_size = size_of(result, sizes)
            spent += objective.step(step_flops(left, right, result, sizes), result_size)  # type: ignore[union-attr]
            if spent > cost_cap:  # type: ignore[operator]
                return None
        if deadline is not None and len(path) % 32 == 0 and time.perf_counter() > deadline:
            return None
        for label in left - output:
            holders[label].discard(a)
        for label in right - output:
            holders[label].discard(b)
        del live_size[a], live_size[b]
        node = next_id
        next_id += 1
        path.append((a, b))
        live[node] = result
        live_size[node] = size_of(result, sizes)
        for label in result - output:
            holders[label].add(node)
        for other in neighbours(node):
            push(other, node)
    path.extend(_outer_products(live, live_size, counter, sizes, next_id))
    return path


def _smallest_pair(live_size: dict[int, int]) -> tuple[int, int]:
    first, second = heapq.nsmallest(2, live_size, key=live_size.__getitem__)
    return first, second


def _outer_products(
    live: dict[int, Legs],
    live_size: dict[int, int],
    counter: LegCounter,
    sizes: Sequence[int],
    next_id: int,
) -> SsaPath:
    """Join disconnected pieces, always the two smallest next."""
    heap = [(size, node) for node, size in live_size.items()]
    heapq.heapify(heap)
    path: SsaPath = []
    while len(heap) > 1:
        _, a = heapq.heappop(heap)
        _, b = heapq.heappop(heap)
        result = counter.contract(live.pop(a), live.pop(b))
        path.append((a, b))
        live[next_id] = result
        heapq.heappush(heap, (size_of(result, sizes), next_id))
        next_id += 1
    return path


@register("greedy")
def greedy(
    network: Network,
    *,
    memory_limit: int | None = None,
    max_time: float | None = None,
    objective=None,
    seed: int = 0,
) -> SsaPath:
    """Deterministic greedy (``opt_einsum``'s default heuristic); ignores time/objective."""
    path = greedy_ssa(network.legs, network.output, network.sizes, memory_limit=memory_limit)
    assert path is not None
    return path

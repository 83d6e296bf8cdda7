"""Greedy contraction ordering (cotengra style), cheap enough for many random trials.

A :class:`GreedyProblem` prepares a (sub-)network once: label ids, per-operand legs as
``{label: count}`` dicts (``count`` = how many inputs, plus the output, a leg stands
for; a leg is summed away when its count reaches the label's appearances, which
handles hyperedges exactly), the labels only one input carries dropped (they go in that
input's first step), identical inputs merged first (``opt_einsum``'s Hadamard trick) and
the first candidate pairs scored. :meth:`GreedyProblem.run` then does one trial:

    score = size(result) / costmod - (size(left) + size(right)) * costmod

(``costmod = 1`` is ``opt_einsum``'s "memory removed"). With a temperature the score
becomes ``sign(score) log|score| - temperature * gumbel``: Boltzmann sampling, like
cotengra's random greedy. Candidate pairs come from shared labels; a label carried by
more than ``max_neighbours`` live operands (a batch-like hyperedge) makes none. Pieces
left unconnected are joined smallest first. A trial tracks its exact objective cost, so a
random-greedy trial that has already lost stops early (``cost_cap``), as does one past
``deadline``. Under a ``memory_limit`` steps whose result would exceed it are taken only
when nothing else is left.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections.abc import Sequence

from tcc.passes.order.cost import Objective
from tcc.passes.order.network import Legs, Network, SsaPath
from tcc.passes.order.registry import register

DEFAULT_MAX_NEIGHBOURS = 16
Term = dict[int, int]  # label id -> count


def _merge(left: Term, right: Term, appearances: dict[int, int]) -> Term:
    """Legs of ``left * right``: a shared leg whose count reaches its appearances is summed."""
    result = dict(left)
    for label, count in right.items():
        mine = result.get(label)
        if mine is None:
            result[label] = count
        elif mine + count == appearances[label]:
            del result[label]
        else:
            result[label] = mine + count
    return result


def _merged_size(
    left: Term, right: Term, product: int, appearances: dict[int, int], sizes: Sequence[int]
) -> int:
    """Size of ``left * right`` given ``product`` = size(left) * size(right)."""
    if len(right) < len(left):
        left, right = right, left
    for label, count in left.items():
        other = right.get(label)
        if other is not None:
            size = sizes[label]
            product //= size * size if count + other == appearances[label] else size
    return product


def _size(term: Term, sizes: Sequence[int]) -> int:
    size = 1
    for label in term:
        size *= sizes[label]
    return size


class GreedyProblem:
    """A (sub-)network prepared once for any number of greedy trials."""

    def __init__(
        self,
        legs: Sequence[Legs],
        output: Legs,
        sizes: Sequence[int],
        *,
        max_neighbours: int | None = DEFAULT_MAX_NEIGHBOURS,
        objective: Objective | None = None,
    ) -> None:
        self.num_inputs = len(legs)
        self.sizes = sizes
        self.max_neighbours = max_neighbours
        self.objective = objective
        appearances: dict[int, int] = {}
        for term in legs:
            for label in term:
                appearances[label] = appearances.get(label, 0) + 1
        for label in output:
            if label in appearances:
                appearances[label] += 1
        self.appearances = appearances
        self.nodes: dict[int, Term] = {}
        self.extra: dict[int, int] = {}  # input with private legs -> their product
        for node, term in enumerate(legs):
            kept = {label: 1 for label in sorted(term) if appearances[label] > 1}
            self.nodes[node] = kept
            if len(kept) < len(term):
                self.extra[node] = _size(term, sizes) // _size(kept, sizes)
        self.path: SsaPath = []
        self.cost0 = 0.0
        self.largest0 = 0
        self.next_id = self.num_inputs
        self._merge_identical()
        self.edges: dict[int, dict[int, None]] = {}
        for node, term in self.nodes.items():
            for label in term:
                self.edges.setdefault(label, {})[node] = None
        self.node_sizes = {node: _size(term, sizes) for node, term in self.nodes.items()}
        self.initial = self._initial_candidates()

    def _merge_identical(self) -> None:
        """Hadamard products of inputs with the same legs, first (as ``opt_einsum``)."""
        first: dict[tuple[int, ...], int] = {}
        for node in range(self.num_inputs):
            key = tuple(self.nodes[node])
            other = first.get(key)
            if other is None or not key:
                first[key] = node
                continue
            left, right = self.nodes.pop(other), self.nodes.pop(node)
            result = _merge(left, right, self.appearances)
            flops, size = self._step(other, node, left, right, result)
            self.cost0 += self._step_cost(flops, size)
            self.largest0 = max(self.largest0, size)
            self.path.append((other, node))
            self.nodes[self.next_id] = result
            first[key] = self.next_id
            self.next_id += 1

    def _step(self, a: int, b: int, left: Term, right: Term, result: Term) -> tuple[int, int]:
        """(FLOPs, result size) of a step, counted like ``network.step_flops``."""
        sizes = self.sizes
        union = _size(left, sizes)
        count = len(left)
        for label in right:
            if label not in left:
                union *= sizes[label]
                count += 1
        extra = self.extra
        summed = count != len(result) or a in extra or b in extra
        union *= extra.get(a, 1) * extra.get(b, 1)
        return union * (2 if summed else 1), _size(result, sizes)

    def _step_cost(self, flops: int, size: int) -> float:
        objective = self.objective
        return float(flops) if objective is None else float(objective.step(flops, size))

    def _candidate_holders(self, term: Term, edges: dict[int, dict[int, None]]):
        limit = self.max_neighbours
        for label in term:
            holders = edges[label]
            if limit is None or len(holders) <= limit:
                yield holders

    def _initial_candidates(self) -> list[tuple[int, int, int]]:
        nodes, appearances, sizes = self.nodes, self.appearances, self.sizes
        node_sizes = self.node_sizes
        known: dict[tuple[int, int], int] = {}
        found = []
        for holders in self.edges.values():
            if self.max_neighbours is not None and len(holders) > self.max_neighbours:
                continue
            group = list(holders)
            for x, a in enumerate(group):
                for b in group[x + 1 :]:
                    pair = (a, b) if a < b else (b, a)
                    size = known.get(pair)
                    if size is None:
                        product = node_sizes[a] * node_sizes[b]
                        size = _merged_size(nodes[a], nodes[b], product, appearances, sizes)
                        known[pair] = size
                    found.append((pair[0], pair[1], size))
        return found

    def run(
        self,
        *,
        costmod: float = 1.0,
        temperature: float = 0.0,
        rng: random.Random | None = None,
        memory_limit: int | None = None,
        cost_cap: float | None = None,
        deadline: float | None = None,
    ) -> tuple[SsaPath, float, int] | None:
        """One trial: (SSA path, tracked cost, largest intermediate), or None if stopped."""
        uniform = (rng or random.Random(0)).random
        log = math.log
        nodes = dict(self.nodes)
        edges = {label: dict(holders) for label, holders in self.edges.items()}
        node_sizes = dict(self.node_sizes)
        appearances, sizes = self.appearances, self.sizes
        path = list(self.path)
        cost, largest = self.cost0, self.largest0
        heap: list[tuple[int, float, int, int, int, int]] = []
        serial = 0

        def push(a: int, b: int, size: int) -> None:
            nonlocal serial
            value = size / costmod - (node_sizes[a] + node_sizes[b]) * costmod
            if temperature > 0.0:
                if value > 0:
                    value = log(value)
                elif value < 0:
                    value = -log(-value)
                value += temperature * log(-log(uniform() or 1e-300))
            over = 1 if memory_limit is not None and size > memory_limit else 0
            heap.append((over, value, serial, a, b, size))
            serial += 1

        for a, b, size in self.initial:
            push(a, b, size)
        heapq.heapify(heap)
        while heap:
            entry = heapq.heappop(heap)
            over, _, _, a, b, result_size = entry
            if a not in nodes or b not in nodes:
                continue
            if over:  # every connected step is too big: prefer an outer product that fits
                c, d = heapq.nsmallest(2, node_sizes, key=node_sizes.__getitem__)
                product = node_sizes[c] * node_sizes[d]
                size = _merged_size(nodes[c], nodes[d], product, appearances, sizes)
                if size <= memory_limit:  # type: ignore[operator]
                    heapq.heappush(heap, entry)
                    a, b, result_size = c, d, size
            left, right = nodes.pop(a), nodes.pop(b)
            result = _merge(left, right, appearances)
            flops, _ = self._step(a, b, left, right, result)
            cost += self._step_cost(flops, result_size)
            if result_size > largest:
                largest = result_size
            if cost_cap is not None and cost > cost_cap:
                return None
            if deadline is not None and len(path) % 16 == 0 and time.perf_counter() > deadline:
                return None
            for label in left:
                del edges[label][a]
            for label in right:
                del edges[label][b]
            del node_sizes[a], node_sizes[b]
            node = self.next_id + len(path) - len(self.path)
            path.append((a, b))
            nodes[node] = result
            node_sizes[node] = result_size
            for label in result:
                edges[label][node] = None
            # A pair sharing several labels is a candidate once per label (as in cotengra):
            # with a temperature that favours well-connected pairs.
            merged: dict[int, int] = {}
            for holders in self._candidate_holders(result, edges):
                for other in holders:
                    if other == node:
                        continue
                    size = merged.get(other)
                    if size is None:
                        product = result_size * node_sizes[other]
                        size = _merged_size(result, nodes[other], product, appearances, sizes)
                        merged[other] = size
                    push(other, node, size)
                    heapq.heappush(heap, heap.pop())
        next_id = self.next_id + len(path) - len(self.path)
        while len(nodes) > 1:  # disconnected pieces: the two smallest next
            a, b = heapq.nsmallest(2, node_sizes, key=node_sizes.__getitem__)
            left, right = nodes.pop(a), nodes.pop(b)
            result = _merge(left, right, appearances)
            flops, result_size = self._step(a, b, left, right, result)
            cost += self._step_cost(flops, result_size)
            largest = max(largest, result_size)
            del node_sizes[a], node_sizes[b]
            path.append((a, b))
            nodes[next_id] = result
            node_sizes[next_id] = result_size
            next_id += 1
        if cost_cap is not None and cost > cost_cap:
            return None
        return path, cost, largest


def greedy_ssa(
    legs: Sequence[Legs],
    output: Legs,
    sizes: Sequence[int],
    *,
    costmod: float = 1.0,
    temperature: float = 0.0,
    rng: random.Random | None = None,
    memory_limit: int | None = None,
    max_neighbours: int | None = DEFAULT_MAX_NEIGHBOURS,
) -> SsaPath:
    """One greedy SSA path for the sub-network ``legs -> output``."""
    if len(legs) <= 1:
        return []
    problem = GreedyProblem(legs, output, sizes, max_neighbours=max_neighbours)
    found = problem.run(
        costmod=costmod, temperature=temperature, rng=rng, memory_limit=memory_limit
    )
    assert found is not None
    return found[0]


@register("greedy")
def greedy(
    network: Network,
    *,
    memory_limit: int | None = None,
    max_time: float | None = None,
    objective=None,
    seed: int = 0,
) -> SsaPath:
    """``opt_einsum``'s greedy (under a ``memory_limit``, this module's); ignores time/objective."""
    if memory_limit is None:
        from tcc.passes.order.greedy_oe import oe_greedy_ssa

        return oe_greedy_ssa(network.legs, network.output, network.sizes)
    return greedy_ssa(network.legs, network.output, network.sizes, memory_limit=memory_limit)

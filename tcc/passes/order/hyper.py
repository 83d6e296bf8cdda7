"""Hyper-optimizer: partition trials + random-greedy trials, best tree reconfigured.

A *partition trial* builds a tree top-down: the operands (nodes) and their shared indices
(edges weighted by ``log2`` of the index size, summed over shared indices) form a graph
that is split recursively, either by Kernighan-Lin bisection grown from a random BFS
region (imbalance sampled) or by Louvain communities (resolution sampled); groups of at
most ``cutoff`` operands are contracted with the (random) greedy, or optimally when tiny,
and each split's part results are joined the same way. Disconnected pieces are split
along their components first.

Partition trials are slow (networkx, pure Python) and rarely win once trees are
reconfigured, so only ``PARTITION_TRIALS`` run. :func:`hyper_ssa` first runs 'auto''s
search, then a longer one (subtree reconfiguration of the ``TOP_TREES`` best
random-greedy trees, the first result and the partition trees; rounds with new seeds
while time is left). Parameters come from seeded RNGs, so the result depends on the
trial count only, with ``max_time`` a cap.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence

import networkx as nx

from tcc.passes.order.auto import DP_MAX_PAIRS, DP_OPERANDS, MAX_ROUNDS, search_rounds
from tcc.passes.order.cost import FLOPS, Objective
from tcc.passes.order.dp import SearchBudgetExceeded, dp_ssa
from tcc.passes.order.greedy import greedy_ssa
from tcc.passes.order.network import LegCounter, Legs, Network, SsaPath, ssa_cost, subproblem_output
from tcc.passes.order.optimal import optimal_ssa, optimal_subsets
from tcc.passes.order.random_greedy import feasible_key, sample_greedy_params
from tcc.passes.order.registry import register

DEFAULT_MAX_TIME = 2.0
DEFAULT_TRIALS = 256  # random-greedy trials per round
EXACT_OPERANDS = 10  # networks this small are solved exactly
TOP_TREES = 3  # how many of the best trial trees get reconfigured
PARTITION_TRIALS = 2
PARTITION_SHARE = 0.5  # of the time, counted from the start, partition trials may use
FIRST_SHARE = 0.4


class _Builder:
    """Contracts groups of live operands, recording the global SSA path."""

    def __init__(
        self, legs: Sequence[Legs], output: Legs, sizes: Sequence[int], params: dict
    ) -> None:
        self.counter = LegCounter(legs, output)
        self.live: dict[int, Legs] = dict(enumerate(legs))
        self.sizes = sizes
        self.params = params
        self.rng: random.Random = params["rng"]
        self.path: SsaPath = []
        self.next_id = len(legs)

    def contract_group(self, items: list[int]) -> int:
        if len(items) == 1:
            return items[0]
        sub_legs = [self.live[i] for i in items]
        sub_output = subproblem_output(sub_legs, self.counter)
        if len(items) <= 5:
            found = optimal_subsets(sub_legs, sub_output, self.sizes, FLOPS)
            assert found is not None
            sub_ssa = found[0]
        else:
            greedy_path = greedy_ssa(
                sub_legs,
                sub_output,
                self.sizes,
                costmod=self.params["costmod"],
                temperature=self.params["temperature"],
                rng=self.rng,
            )
            assert greedy_path is not None
            sub_ssa = greedy_path
        ids = list(items)
        for a, b in sub_ssa:
            left, right = self.live.pop(ids[a]), self.live.pop(ids[b])
            self.live[self.next_id] = self.counter.contract(left, right)
            self.path.append((ids[a], ids[b]))
            ids.append(self.next_id)
            self.next_id += 1
        return ids[-1]

    def solve(self, items: list[int]) -> int:
        if len(items) <= self.params["cutoff"]:
            return self.contract_group(items)
        parts = self.split(items)
        if len(parts) < 2:
            return self.contract_group(items)
        return self.contract_group([self.solve(part) for part in parts])

    def graph(self, items: list[int]) -> nx.Graph:
        graph = nx.Graph()
        graph.add_nodes_from(items)
        holders: dict[int, list[int]] = {}
        for item in items:
            for label in self.live[item]:
                holders.setdefault(label, []).append(item)
        for label, group in holders.items():
            weight = math.log2(self.sizes[label]) + 0.1
            pairs = (
                zip(group, group[1:], strict=False)
                if len(group) > 6
                else ((a, b) for i, a in enumerate(group) for b in group[i + 1 :])
            )
            for a, b in pairs:
                if graph.has_edge(a, b):
                    graph[a][b]["weight"] += weight
                else:
                    graph.add_edge(a, b, weight=weight)
        return graph

    def split(self, items: list[int]) -> list[list[int]]:
        graph = self.graph(items)
        pieces = [sorted(c) for c in nx.connected_components(graph)]
        if len(pieces) > 1:
            return pieces
        seed = self.rng.getrandbits(31)
        if self.params["method"] == "louvain":
            communities = nx.community.louvain_communities(
                graph, weight="weight", resolution=self.params["resolution"], seed=seed
            )
            if len(communities) > 1:
                return [sorted(c) for c in communities]
        return self.bisect(graph, items, seed)

    def bisect(self, graph: nx.Graph, items: list[int], seed: int) -> list[list[int]]:
        target = max(1, round(len(items) * (0.5 - self.params["imbalance"] * self.rng.random())))
        start = self.rng.choice(items)
        region: list[int] = []
        for node in nx.bfs_tree(graph, start):
            region.append(node)
            if len(region) >= target:
                break
        first = set(region)
        second = set(items) - first
        first, second = nx.community.kernighan_lin_bisection(
            graph, partition=(first, second), weight="weight", seed=seed, max_iter=8
        )
        return [sorted(first), sorted(second)]


def sample_partition_params(rng: random.Random) -> dict:
    costmod, temperature = sample_greedy_params(rng)
    return {
        "rng": random.Random(rng.getrandbits(64)),
        "method": "louvain" if rng.random() < 0.4 else "kl",
        "cutoff": rng.randint(2, 12),
        "imbalance": rng.uniform(0.0, 0.3),
        "resolution": math.exp(rng.uniform(math.log(0.3), math.log(4.0))),
        "costmod": costmod,
        "temperature": temperature * 0.3,
    }


def partition_ssa(
    legs: Sequence[Legs], output: Legs, sizes: Sequence[int], params: dict
) -> SsaPath:
    builder = _Builder(legs, output, sizes, params)
    builder.solve(list(range(len(legs))))
    return builder.path


def hyper_ssa(
    legs: Sequence[Legs],
    output: Legs,
    sizes: Sequence[int],
    objective: Objective,
    *,
    max_time: float = DEFAULT_MAX_TIME,
    max_trials: int = DEFAULT_TRIALS,
    seed: int = 0,
    memory_limit: int | None = None,
) -> SsaPath:
    """'auto''s search in ``FIRST_SHARE`` of the time; its tree and ``PARTITION_TRIALS``
    partition trees (at most ``PARTITION_SHARE`` of the time) then join the random-greedy
    trees as start trees of :func:`auto.search_rounds`, so hyper is never worse than
    that first search."""
    start = time.perf_counter()
    first = search_rounds(
        legs,
        output,
        sizes,
        objective,
        budget=FIRST_SHARE * max_time,
        repeats=max_trials,
        seed=seed,
        memory_limit=memory_limit,
    )
    cost, largest = ssa_cost(legs, output, sizes, first, objective)
    rng = random.Random(seed)
    partitioned = [(feasible_key(cost, largest, memory_limit), first, largest)]
    for _ in range(PARTITION_TRIALS):
        if time.perf_counter() - start > PARTITION_SHARE * max_time:
            break
        path = partition_ssa(legs, output, sizes, sample_partition_params(rng))
        cost, largest = ssa_cost(legs, output, sizes, path, objective)
        partitioned.append((feasible_key(cost, largest, memory_limit), path, largest))
    return search_rounds(
        legs,
        output,
        sizes,
        objective,
        budget=max_time - (time.perf_counter() - start),
        repeats=max_trials,
        seed=seed + MAX_ROUNDS,
        memory_limit=memory_limit,
        keep=TOP_TREES,
        extra_trees=partitioned,
        patience=MAX_ROUNDS,
        spectral_start=False,  # the first search's tree already grew from it
    )


@register("hyper")
def hyper(
    network: Network,
    *,
    memory_limit: int | None = None,
    max_time: float | None = None,
    objective: Objective = FLOPS,
    seed: int = 0,
) -> SsaPath:
    """Exact for tiny networks, dp for small ones, else :func:`hyper_ssa` (2 s default)."""
    if network.num_operands <= EXACT_OPERANDS:
        return optimal_ssa(network.legs, network.output, network.sizes, objective, memory_limit)
    if network.num_operands <= DP_OPERANDS:
        try:
            path = dp_ssa(
                network.legs,
                network.output,
                network.sizes,
                objective,
                memory_limit=memory_limit,
                max_pairs=DP_MAX_PAIRS,
            )
            if path is not None:
                return path
        except SearchBudgetExceeded:
            pass
    return hyper_ssa(
        network.legs,
        network.output,
        network.sizes,
        objective,
        max_time=DEFAULT_MAX_TIME if max_time is None else max_time,
        seed=seed,
        memory_limit=memory_limit,
    )

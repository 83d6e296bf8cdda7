"""Hyper-optimizer: partition trials + random-greedy trials, best tree reconfigured.

A *partition trial* builds a tree top-down: the operands (nodes) and their shared indices
(edges weighted by ``log2`` of the index size, summed over shared indices) form a graph
that is split recursively, either by Kernighan-Lin bisection grown from a random BFS
region (imbalance sampled) or by Louvain communities (resolution sampled); groups of at
most ``cutoff`` operands are contracted with the (random) greedy, or optimally when tiny,
and each split's part results are joined the same way. Disconnected pieces are split
along their components first.

Trials alternate between partition trials and random-greedy trials; all parameters come
from a seeded RNG, so the result depends on the trial count only, with ``max_time`` a cap
(60% of it for trials, the rest for the subtree reconfiguration of the best trees).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence

import networkx as nx

from tcc.passes.order.cost import FLOPS, Cost, Objective
from tcc.passes.order.greedy import greedy_ssa
from tcc.passes.order.network import LegCounter, Legs, Network, SsaPath, ssa_cost, subproblem_output
from tcc.passes.order.optimal import optimal_ssa, optimal_subsets
from tcc.passes.order.random_greedy import MAX_NEIGHBOURS, feasible_key, sample_greedy_params
from tcc.passes.order.reconfigure import subtree_reconfigure
from tcc.passes.order.registry import register

DEFAULT_MAX_TIME = 2.0
DEFAULT_TRIALS = 256
EXACT_OPERANDS = 10  # networks this small are solved exactly
TOP_TREES = 3  # how many of the best trial trees get reconfigured


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
    start = time.perf_counter()
    rng = random.Random(seed)
    found: list[tuple[tuple[bool, Cost], SsaPath]] = []

    def consider(path: SsaPath | None) -> None:
        if path is None:
            return
        cost, largest = ssa_cost(legs, output, sizes, path, objective)
        found.append((feasible_key(cost, largest, memory_limit), path))
        found.sort(key=lambda entry: entry[0])
        del found[TOP_TREES:]

    consider(greedy_ssa(legs, output, sizes, memory_limit=memory_limit))
    deadline = start + 0.6 * max_time
    for trial in range(max_trials):
        if time.perf_counter() > deadline:
            break
        if trial % 2 == 0:
            costmod, temperature = sample_greedy_params(rng)
            best_key = found[0][0]
            path = greedy_ssa(
                legs,
                output,
                sizes,
                costmod=costmod,
                temperature=temperature,
                rng=random.Random(rng.getrandbits(64)),
                memory_limit=memory_limit,
                cost_cap=None if best_key[0] else best_key[1],  # type: ignore[arg-type]
                objective=objective,
                deadline=deadline,
                max_neighbours=MAX_NEIGHBOURS,
            )
        else:
            path = partition_ssa(legs, output, sizes, sample_partition_params(rng))
        consider(path)
    best_key, best_path = found[0]
    for _, path in found:
        left = max_time - (time.perf_counter() - start)
        if left <= 0:
            break
        improved = subtree_reconfigure(
            legs, output, sizes, path, objective, max_time=left / 2, memory_limit=memory_limit
        )
        cost, largest = ssa_cost(legs, output, sizes, improved, objective)
        key = feasible_key(cost, largest, memory_limit)
        if key < best_key:
            best_key, best_path = key, improved
    return best_path


@register("hyper")
def hyper(
    network: Network,
    *,
    memory_limit: int | None = None,
    max_time: float | None = None,
    objective: Objective = FLOPS,
    seed: int = 0,
) -> SsaPath:
    """Exact for tiny networks, else :func:`hyper_ssa` (``max_time`` default 2 s)."""
    if network.num_operands <= EXACT_OPERANDS:
        return optimal_ssa(network.legs, network.output, network.sizes, objective, memory_limit)
    return hyper_ssa(
        network.legs,
        network.output,
        network.sizes,
        objective,
        max_time=DEFAULT_MAX_TIME if max_time is None else max_time,
        seed=seed,
        memory_limit=memory_limit,
    )

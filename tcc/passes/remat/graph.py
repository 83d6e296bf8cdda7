"""The compute graph that rematerialization works on.

A :class:`RematGraph` is a DAG of ``n`` nodes numbered ``0..n-1`` in a fixed topological
order (the order the program runs in when nothing is recomputed). Every node is one computed
tensor: ``costs[v]`` is the compute cost of producing it, ``sizes[v]`` the bytes of its output.

Conventions (they match the Checkmate / Moccasin benchmark README, so the published figures
are comparable):

* Every node is counted in memory from its compute until its last use, including the
  graph's sources. External inputs and parameters are *not* nodes: they are outside the
  budget. To pin a tensor that must never be recomputed, give it ``max_copies=1``.
* While node ``v`` is computed, its inputs and its own output are live at the same time.
* ``outputs`` (by default the sinks) stay live until the end of the schedule.
* :func:`peak_memory_in_order` runs every node once in the fixed order and frees every
  output right after its last use; budgets ``B = ceil(f * peak)`` refer to this peak.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tcc.errors import TccError


@dataclass(frozen=True, slots=True)
class RematGraph:
    """A DAG in a fixed topological order: node ``v`` runs at position ``v``."""

    costs: tuple[float, ...]
    sizes: tuple[int, ...]
    preds: tuple[tuple[int, ...], ...]
    names: tuple[str, ...]
    outputs: tuple[int, ...] = ()
    labels: tuple[Hashable, ...] = ()
    succs: tuple[tuple[int, ...], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        n = len(self.costs)
        if not (len(self.sizes) == len(self.preds) == len(self.names) == n):
            raise TccError("RematGraph: costs, sizes, preds and names must have equal length")
        for v, inputs in enumerate(self.preds):
            for u in inputs:
                if not 0 <= u < v:
                    raise TccError(
                        f"RematGraph: edge {u} -> {v} ({self.names[v]!r}) breaks the "
                        "topological order; node ids must follow the order"
                    )
        for v in range(n):
            if self.sizes[v] < 0 or self.costs[v] < 0:
                raise TccError(f"RematGraph: node {self.names[v]!r} has a negative cost or size")
        succs: list[list[int]] = [[] for _ in range(n)]
        for v, inputs in enumerate(self.preds):
            for u in inputs:
                succs[u].append(v)
        object.__setattr__(self, "succs", tuple(tuple(s) for s in succs))
        if not self.outputs:
            sinks = tuple(v for v in range(n) if not succs[v])
            object.__setattr__(self, "outputs", sinks)
        if not self.labels:
            object.__setattr__(self, "labels", tuple(range(n)))

    @property
    def n(self) -> int:
        return len(self.costs)

    @property
    def total_cost(self) -> float:
        return float(sum(self.costs))

    def to_json(self) -> str:
        return json.dumps({
            "costs": list(self.costs), "sizes": list(self.sizes),
            "preds": [list(p) for p in self.preds], "names": list(self.names),
            "outputs": list(self.outputs),
        })

    @classmethod
    def from_json(cls, text: str) -> RematGraph:
        data = json.loads(text)
        return cls(
            costs=tuple(data["costs"]), sizes=tuple(data["sizes"]),
            preds=tuple(tuple(p) for p in data["preds"]), names=tuple(data["names"]),
            outputs=tuple(data["outputs"]),
        )


def from_networkx(
    graph: Any,
    *,
    order: Sequence[Hashable] | None = None,
    cost: str = "cost",
    size: str = "size",
    outputs: Sequence[Hashable] | None = None,
) -> RematGraph:
    """Build a :class:`RematGraph` from a ``networkx.DiGraph`` whose nodes carry ``cost`` and
    ``size``. The order is ``order``, else the graph attribute ``order``, else a
    (deterministic) topological sort."""
    import networkx as nx

    if order is None:
        order = graph.graph.get("order")
    if order is None:
        try:
            order = list(nx.lexicographical_topological_sort(graph))
        except TypeError:
            order = list(nx.topological_sort(graph))
    order = list(order)
    if sorted(map(repr, order)) != sorted(map(repr, graph.nodes)) or len(order) != len(graph):
        raise TccError("remat: `order` must list every node of the graph exactly once")
    position = {label: i for i, label in enumerate(order)}
    costs, sizes, preds, names = [], [], [], []
    for label in order:
        attrs = graph.nodes[label]
        if cost not in attrs or size not in attrs:
            raise TccError(f"remat: node {label!r} needs attributes {cost!r} and {size!r}")
        costs.append(float(attrs[cost]))
        sizes.append(int(math.ceil(attrs[size])))
        inputs = sorted(position[u] for u in graph.predecessors(label))
        if inputs and inputs[-1] >= position[label]:
            raise TccError(f"remat: `order` is not topological at node {label!r}")
        preds.append(tuple(inputs))
        names.append(str(attrs.get("name", label)))
    outs = tuple(sorted(position[o] for o in outputs)) if outputs else ()
    return RematGraph(tuple(costs), tuple(sizes), tuple(preds), tuple(names), outs, tuple(order))


def load_benchmark_graph(path: str | Path) -> RematGraph:
    """Load a Checkmate/Moccasin benchmark graph (networkx node-link JSON).

    Keras graphs carry ``cost_cpu``/``cost_ram`` and run in node-id order; random layered
    graphs carry ``duration``/``out_cost`` and a graph-level ``order``."""
    import networkx as nx

    data = json.loads(Path(path).read_text())
    link = data["links"][0] if data["links"] else {"source": 0, "target": 0}
    source, target = ("source", "target") if "source" in link else ("0", "1")
    node_key = "id" if data["nodes"] and "id" in data["nodes"][0] else "name"
    nx_graph = nx.node_link_graph(data, edges="links", source=source, target=target,
                                  name=node_key)
    first = data["nodes"][0]
    if "cost_cpu" in first:
        order = sorted(nx_graph.nodes)
        graph = from_networkx(nx_graph, order=order, cost="cost_cpu", size="cost_ram")
    else:
        graph = from_networkx(nx_graph, order=nx_graph.graph.get("order"), cost="duration",
                              size="out_cost")
    return graph


def last_uses(graph: RematGraph) -> list[int]:
    """Position of each node's last consumer in the fixed order (itself if it has none;
    ``n`` for outputs, which stay live to the end)."""
    last = [max(s, default=v) for v, s in enumerate(graph.succs)]
    for o in graph.outputs:
        last[o] = graph.n
    return last


def memory_profile_in_order(graph: RematGraph) -> list[int]:
    """Memory while each node is computed, running the fixed order once."""
    last = last_uses(graph)
    dying: list[list[int]] = [[] for _ in range(graph.n + 1)]
    for v, t in enumerate(last):
        dying[t].append(v)
    live, profile = 0, []
    for v in range(graph.n):
        live += graph.sizes[v]
        profile.append(live)
        live -= sum(graph.sizes[u] for u in dying[v])
    return profile


def peak_memory_in_order(graph: RematGraph) -> int:
    """Peak memory of running the graph once in its fixed order, freeing after last use."""
    return max(memory_profile_in_order(graph), default=0)


def node_footprint(graph: RematGraph, v: int) -> int:
    """Bytes that must be live while ``v`` is computed: its inputs and its output."""
    return graph.sizes[v] + sum(graph.sizes[u] for u in set(graph.preds[v]))


def lower_bound(graph: RematGraph) -> int:
    """No schedule fits below this: max over nodes of (inputs + output), and at least the
    outputs together (they are all live at the end)."""
    per_node = max((node_footprint(graph, v) for v in range(graph.n)), default=0)
    return max(per_node, sum(graph.sizes[o] for o in graph.outputs))


def main_computes(seq: Sequence[int]) -> list[bool]:
    """For each compute of a sequence, whether it is its node's first (main) compute."""
    seen: set[int] = set()
    main = []
    for v in seq:
        main.append(v not in seen)
        seen.add(v)
    return main

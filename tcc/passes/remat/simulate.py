"""The referee: replay a plan on the graph and check every rule.

Rules: a compute needs every input live and its own node not live; a free needs a live
node; every node is computed at least once; the graph's outputs are live at the end; the
memory while a node is computed (live bytes + its output) never exceeds the budget.
The simulator shares no code with the solvers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tcc.errors import TccError
from tcc.passes.remat.graph import RematGraph


class InvalidPlanError(TccError, ValueError):
    """A plan breaks a rule of the memory model (the message names the event)."""


@dataclass(frozen=True, slots=True)
class SimResult:
    peak: int
    total_cost: float
    overhead: float
    computes: int
    profile: tuple[int, ...]  # live bytes while each compute event runs

    def fits(self, budget: int) -> bool:
        return self.peak <= budget


def simulate(
    graph: RematGraph,
    plan: object,
    budget: int | None = None,
) -> SimResult:
    """Replay ``plan`` (a RematPlan or a sequence of events) on ``graph``.

    Raises :class:`InvalidPlanError` on the first broken rule; checks the budget when one
    is given (or when ``plan`` is a RematPlan: its own budget)."""
    events: Iterable[tuple[str, int]] = getattr(plan, "events", plan)  # type: ignore[arg-type]
    if budget is None:
        budget = getattr(plan, "budget", None)
    live = [False] * graph.n
    computed = [False] * graph.n
    live_bytes, peak, cost = 0, 0, 0.0
    profile: list[int] = []
    for step, (kind, v) in enumerate(events):
        if not 0 <= v < graph.n:
            raise InvalidPlanError(f"event {step}: node {v} is not in the graph")
        if kind == "compute":
            if live[v]:
                raise InvalidPlanError(f"event {step}: compute {graph.names[v]!r}: already live")
            missing = [graph.names[u] for u in graph.preds[v] if not live[u]]
            if missing:
                raise InvalidPlanError(
                    f"event {step}: compute {graph.names[v]!r}: inputs not live: {missing}"
                )
            live[v] = computed[v] = True
            live_bytes += graph.sizes[v]
            cost += graph.costs[v]
            profile.append(live_bytes)
            peak = max(peak, live_bytes)
            if budget is not None and live_bytes > budget:
                raise InvalidPlanError(
                    f"event {step}: compute {graph.names[v]!r}: {live_bytes} bytes live, "
                    f"over the budget of {budget}"
                )
        elif kind == "free":
            if not live[v]:
                raise InvalidPlanError(f"event {step}: free {graph.names[v]!r}: not live")
            live[v] = False
            live_bytes -= graph.sizes[v]
        else:
            raise InvalidPlanError(f"event {step}: unknown event kind {kind!r}")
    never = [graph.names[v] for v in range(graph.n) if not computed[v]]
    if never:
        raise InvalidPlanError(f"nodes never computed: {never[:10]}")
    dead = [graph.names[o] for o in graph.outputs if not live[o]]
    if dead:
        raise InvalidPlanError(f"outputs not live at the end: {dead[:10]}")
    base = graph.total_cost
    overhead = (cost - base) / base if base > 0 else 0.0
    return SimResult(peak, cost, overhead, len(profile), tuple(profile))

"""A rematerialization plan as plain data: a sequence of compute / free events.

``("compute", v)`` runs node ``v`` (a second compute of the same node is a recompute),
``("free", v)`` releases the live copy of ``v``. A separate pass (the arena executor)
applies the plan; :func:`tcc.passes.remat.simulate.simulate` replays it and is the referee.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from tcc.passes.remat.graph import RematGraph, memory_profile_in_order

Event = tuple[Literal["compute", "free"], int]
STATUSES = ("optimal", "feasible", "heuristic")


@dataclass(frozen=True, slots=True)
class RematPlan:
    """The schedule and what is known about it (figures come from the simulator)."""

    events: tuple[Event, ...]
    budget: int
    peak: int
    total_cost: float
    overhead: float
    lower_bound: int
    status: str
    method: str
    solve_time: float
    objective_bound: float | None = None  # proven lower bound on total compute
    stats: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"RematPlan.status must be one of {STATUSES}, not {self.status!r}")

    @property
    def computes(self) -> tuple[int, ...]:
        """The nodes in the order they are computed (recomputes repeat)."""
        return tuple(v for kind, v in self.events if kind == "compute")

    @property
    def recomputes(self) -> int:
        return len(self.computes) - len(set(self.computes))

    @property
    def gap(self) -> float | None:
        """Relative gap between the total compute found and the best proven bound on it."""
        if self.objective_bound is None:
            return None
        return max(0.0, self.total_cost - self.objective_bound) / max(self.total_cost, 1e-300)

    def to_json(self) -> str:
        data = asdict(self)
        data["events"] = [list(e) for e in self.events]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RematPlan:
        data = json.loads(text)
        data["events"] = tuple((str(kind), int(v)) for kind, v in data["events"])
        return cls(**data)

    def memory_profile(self, graph: RematGraph) -> list[int]:
        """Memory while each compute event runs (the simulator's accounting)."""
        from tcc.passes.remat.simulate import simulate

        return list(simulate(graph, self).profile)

    def plot(self, path: str | Path, graph: RematGraph) -> None:
        """Memory over time before (fixed order, no remat) and after, saved to ``path``."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError("RematPlan.plot needs matplotlib: pip install matplotlib") from exc
        before = memory_profile_in_order(graph)
        after = self.memory_profile(graph)
        fig, ax = plt.subplots(figsize=(9, 4))
        ax.step(range(len(before)), before, where="post", label="in order (no remat)")
        ax.step(range(len(after)), after, where="post", label=f"plan ({self.method})")
        ax.axhline(self.budget, color="red", linestyle="--", label="budget")
        ax.set_xlabel("compute step")
        ax.set_ylabel("live bytes")
        ax.set_title(f"overhead {100 * self.overhead:.2f} %, {self.status}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)


def events_from_computes(graph: RematGraph, computes: list[int]) -> tuple[Event, ...]:
    """Turn a compute sequence into events, freeing each copy right after its last use.

    A use of ``u`` is served by the latest compute of ``u`` before it. Copies that nothing
    uses are freed right after their compute, except the last copy of each output."""
    latest: dict[int, int] = {}
    last_use = list(range(len(computes)))
    for i, v in enumerate(computes):
        for u in graph.preds[v]:
            if u in latest:
                last_use[latest[u]] = i
        latest[v] = i
    keep = {latest[o] for o in graph.outputs if o in latest}
    frees_after: list[list[int]] = [[] for _ in computes]
    for i, v in enumerate(computes):
        if i not in keep:
            frees_after[last_use[i]].append(v)
    events: list[Event] = []
    for i, v in enumerate(computes):
        events.append(("compute", v))
        events.extend(("free", u) for u in frees_after[i])
    return tuple(events)

"""The main solver: optional interval copies + a cumulative, in the spirit of Moccasin.

Timeline: stage ``t`` owns ``window[t]`` recompute slots followed by the main compute of
node ``t`` at time ``T[t]``. Node ``v`` has ``copies[v]`` copies; copy 0 is mandatory and
starts at ``T[v]``; copy ``k >= 1`` is an optional recompute. A copy is the interval
``[start, end]`` (``end`` = last time it is kept). Constraints:

* memory: one ``AddCumulative`` over all copies, demand = scaled size, capacity = budget;
* data: every compute of ``v`` picks (boolean ``serve``) one copy of each input ``u`` with
  ``start_u < start_v <= end_u``;
* symmetry breaking / dominance: copies are used in order and never overlap
  (``present[k+1] -> present[k]``, ``start[k+1] > end[k]``), absent copies are pinned,
  a recompute must serve some compute, outputs have one copy kept to the horizon.

Objective: total cost of the recomputes. The heuristic's schedule is a complete hint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tcc.passes.remat.graph import RematGraph
from tcc.passes.remat.heuristic import Schedule
from tcc.passes.remat.scaling import Scaled


@dataclass
class CpResult:
    computes: list[int] | None  # None: nothing found
    status: str  # optimal | feasible | infeasible | unknown
    objective_bound: float  # proven lower bound on the recompute cost (real units)
    stats: dict[str, Any] = field(default_factory=dict)


def _timeline(graph: RematGraph, hint: Schedule | None) -> tuple[list[int], list[int]]:
    """Main-compute times ``T`` and recompute windows (big enough for the hint)."""
    window = list(range(graph.n))
    if hint:
        per_stage = [0] * graph.n
        for v, stage in hint:
            if v != stage:
                per_stage[stage] += 1
        window = [max(w, c) for w, c in zip(window, per_stage, strict=True)]
    times, now = [], -1
    for w in window:
        now += w + 1
        times.append(now)
    return times, window


def _reach(graph: RematGraph) -> list[int]:
    """Latest position of any descendant: a copy of ``v`` is never needed after it."""
    reach = list(range(graph.n))
    for v in reversed(range(graph.n)):
        for s in graph.succs[v]:
            reach[v] = max(reach[v], reach[s])
    return reach


class _Model:
    def __init__(self, graph: RematGraph, scaled: Scaled, copies: list[int],
                 hint: Schedule | None, deadline: float = float("inf")) -> None:
        from ortools.sat.python import cp_model

        self.cp = cp_model
        self.graph, self.scaled, self.copies = graph, scaled, copies
        self.model = cp_model.CpModel()
        self.times, self.window = _timeline(graph, hint)
        self.horizon = self.times[-1] + 1 if graph.n else 1
        self.start: list[list[Any]] = []
        self.end: list[list[Any]] = []
        self.present: list[list[Any]] = []
        self.serves: dict[tuple[int, int], list[Any]] = {}  # (u, k) -> serve literals
        self.choice: dict[tuple[int, int, int], list[Any]] = {}  # (u, v, j) -> per copy k
        self.intervals: list[tuple[Any, int]] = []
        self.deadline = deadline
        self._copies_vars()
        self._data_constraints()
        self._memory_constraint()
        self._objective()

    def _copies_vars(self) -> None:
        g, m, outputs = self.graph, self.model, set(self.graph.outputs)
        reach = _reach(g)
        for v in range(g.n):
            starts, ends, pres = [], [], []
            for k in range(self.copies[v]):
                if k == 0:
                    start, present = m.new_constant(self.times[v]), m.new_constant(1)
                    lo = self.times[v]
                else:
                    lo = self.times[v] + 1
                    hi = max(lo, self.times[reach[v]] - 1)
                    start, present = m.new_int_var(lo, hi, f"s{v}_{k}"), m.new_bool_var(f"p{v}_{k}")
                if v in outputs:
                    end = m.new_constant(self.horizon)
                else:
                    end = m.new_int_var(lo, self.times[reach[v]], f"e{v}_{k}")
                size = m.new_int_var(0, self.horizon + 1, f"l{v}_{k}")
                interval = m.new_optional_interval_var(start, size, end + 1, present, f"i{v}_{k}")
                starts.append(start)
                ends.append(end)
                pres.append(present)
                self.intervals.append((interval, self.scaled.sizes[v]))
                if k >= 1:
                    m.add_implication(present, pres[k - 1])
                    m.add(start > ends[k - 1]).only_enforce_if(present)
                    m.add(start == lo).only_enforce_if(~present)
                    m.add(end == lo).only_enforce_if(~present)
            self.start.append(starts)
            self.end.append(ends)
            self.present.append(pres)

    def _data_constraints(self) -> None:
        g, m = self.graph, self.model
        for v in range(g.n):
            if time.perf_counter() > self.deadline:
                raise _BuildTimeout
            for j in range(self.copies[v]):
                for u in set(g.preds[v]):
                    literals = []
                    for k in range(self.copies[u]):
                        serve = m.new_bool_var(f"y{u}_{k}_{v}_{j}")
                        m.add_implication(serve, self.present[u][k])
                        m.add(self.start[u][k] < self.start[v][j]).only_enforce_if(serve)
                        m.add(self.end[u][k] >= self.start[v][j]).only_enforce_if(serve)
                        literals.append(serve)
                        self.serves.setdefault((u, k), []).append(serve)
                    m.add(sum(literals) == self.present[v][j])
                    self.choice[(u, v, j)] = literals
        for (u, k), literals in self.serves.items():
            if k >= 1:
                m.add_bool_or(literals).only_enforce_if(self.present[u][k])

    def _memory_constraint(self) -> None:
        used = [(i, d) for i, d in self.intervals if d > 0]
        self.model.add_cumulative([i for i, _ in used], [d for _, d in used],
                                  self.scaled.capacity)

    def _objective(self) -> None:
        terms = [self.scaled.costs[v] * self.present[v][k]
                 for v in range(self.graph.n) for k in range(1, self.copies[v])
                 if self.scaled.costs[v] > 0]
        self.model.minimize(sum(terms))

    def add_hint(self, schedule: Schedule) -> None:
        """Hint every variable from a schedule (copy k = k-th compute of a node)."""
        g, m = self.graph, self.model
        per_stage: dict[int, list[int]] = {}
        for v, stage in schedule:
            if v != stage:
                per_stage.setdefault(stage, []).append(v)
        when: list[int] = []
        for v, stage in schedule:
            if v == stage:
                when.append(self.times[v])
            else:
                batch = per_stage[stage]
                when.append(self.times[stage] - len(batch) + batch.index(v))
                batch[batch.index(v)] = -1  # the same node may recur in one stage
        copy_of: list[int] = []
        count = [0] * g.n
        latest: dict[int, int] = {}
        served: dict[tuple[int, int, int, int], bool] = {}
        end = {}
        for i, (v, _) in enumerate(schedule):
            j = count[v]
            count[v] += 1
            copy_of.append(j)
            end[(v, j)] = when[i]
            for u in set(g.preds[v]):
                k = copy_of[latest[u]]
                served[(u, v, j, k)] = True
                end[(u, k)] = max(end[(u, k)], when[i])
            latest[v] = i
        for v in range(g.n):
            for k in range(self.copies[v]):
                present = k < count[v]
                if k >= 1:
                    m.add_hint(self.present[v][k], present)
                    lo = self.times[v] + 1
                    m.add_hint(self.start[v][k], when[_nth(schedule, v, k)] if present else lo)
                if v not in set(g.outputs):
                    m.add_hint(self.end[v][k], end[(v, k)] if present else self.times[v] + 1)
        for (u, v, j), literals in self.choice.items():
            for k, literal in enumerate(literals):
                m.add_hint(literal, served.get((u, v, j, k), False))

    def solve(self, time_limit: float, num_workers: int, seed: int) -> CpResult:
        solver = self.cp.CpSolver()
        solver.parameters.max_time_in_seconds = max(0.05, time_limit)
        solver.parameters.num_workers = num_workers
        solver.parameters.random_seed = seed
        status = solver.solve(self.model)
        name = solver.status_name(status)
        stats = {"solver_status": name, "wall_time": solver.wall_time,
                 "branches": solver.num_branches, "conflicts": solver.num_conflicts,
                 "num_booleans": solver.num_booleans}
        if status not in (self.cp.OPTIMAL, self.cp.FEASIBLE):
            result = "infeasible" if status == self.cp.INFEASIBLE else "unknown"
            return CpResult(None, result, 0.0, stats)
        stats["objective_scaled"] = solver.objective_value
        computes = []
        for v in range(self.graph.n):
            for k in range(self.copies[v]):
                if solver.boolean_value(self.present[v][k]) if k else True:
                    computes.append((solver.value(self.start[v][k]), v))
        bound = solver.best_objective_bound * self.scaled.cost_unit
        result = "optimal" if status == self.cp.OPTIMAL else "feasible"
        return CpResult([v for _, v in sorted(computes)], result, bound, stats)


class _BuildTimeout(Exception):
    """The model took too much of the time limit to build."""


def _nth(schedule: Schedule, v: int, k: int) -> int:
    """Index in ``schedule`` of the k-th compute of ``v``."""
    seen = -1
    for i, (w, _) in enumerate(schedule):
        if w == v:
            seen += 1
            if seen == k:
                return i
    raise IndexError(k)


def solve_cpsat(graph: RematGraph, scaled: Scaled, copies: list[int], *,
                hint: Schedule | None, time_limit: float, num_workers: int = 2,
                seed: int = 0) -> CpResult:
    """Build the interval model, hint it, and solve within ``time_limit`` seconds."""
    began = time.perf_counter()
    try:  # building must leave the solver some of the time limit
        model = _Model(graph, scaled, copies, hint, began + 0.6 * time_limit)
    except _BuildTimeout:
        return CpResult(None, "unknown", 0.0, {"build_timeout": True})
    if hint:
        model.add_hint(hint)
    built = time.perf_counter() - began
    result = model.solve(time_limit - built, num_workers, seed)
    result.stats["build_time"] = built
    return result

"""Rematerialization under a memory budget: which tensors to keep, free and recompute.

``solve(graph, budget)`` returns a :class:`RematPlan` (compute / free events) whose peak
memory, replayed by :func:`simulate`, stays within ``budget`` while the extra compute is
as small as the chosen method can make it. Methods: ``"cpsat"`` (interval model, default),
``"heuristic"`` (eviction simulation), ``"milp"`` (Checkmate-style baseline).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tcc.errors import MemoryBudgetError, SolverTimeoutError, TccError
from tcc.passes.remat.graph import (
    RematGraph,
    from_networkx,
    load_benchmark_graph,
    lower_bound,
    memory_profile_in_order,
    peak_memory_in_order,
)
from tcc.passes.remat.heuristic import Schedule, best_heuristic_schedule
from tcc.passes.remat.plan import RematPlan, events_from_computes
from tcc.passes.remat.simulate import InvalidPlanError, SimResult, simulate
from tcc.units import parse_bytes

__all__ = [
    "InvalidPlanError", "RematGraph", "RematPlan", "SimResult", "as_remat_graph",
    "from_networkx", "load_benchmark_graph", "lower_bound", "memory_profile_in_order",
    "parse_budget", "peak_memory_in_order", "simulate", "solve",
]

METHODS = ("cpsat", "heuristic", "milp")
LARGE_MODEL_NODES = 400  # above this, only FOCUS_NODES nodes may be recomputed by CP-SAT
FOCUS_NODES = 200
MID_MODEL_NODES = 200  # from this up to LARGE_MODEL_NODES, a focus sized by the time limit:
FOCUS_PER_SECOND = 12  # 60 nodes at 5 s, the whole graph at 300 s


def parse_budget(budget: int | float | str) -> int:
    """Bytes from an int, or a string like ``"64MB"``, ``"1.5GiB"``, ``"4096"``."""
    return parse_bytes(budget, what="remat budget")


def as_remat_graph(graph: Any, order: Sequence[Any] | None = None) -> RematGraph:
    if isinstance(graph, RematGraph):
        if order is not None:
            raise TccError("remat: `order` applies to networkx graphs; a RematGraph is ordered")
        return graph
    return from_networkx(graph, order=order)


def _copy_limits(graph: RematGraph, max_copies: int | Mapping[int, int] | Sequence[int],
                 schedule: Schedule | None) -> list[int]:
    if isinstance(max_copies, int):
        limits = [max_copies] * graph.n
    elif isinstance(max_copies, Mapping):
        limits = [int(max_copies.get(v, 2)) for v in range(graph.n)]
    else:
        limits = list(max_copies)
    if len(limits) != graph.n or min(limits, default=1) < 1:
        raise TccError("remat: max_copies must be >= 1 for every node")
    for o in graph.outputs:
        limits[o] = 1
    for v, _ in schedule or ():
        limits[v] = max(limits[v], sum(1 for w, _ in schedule if w == v))
    return limits


def _focus_copies(graph: RematGraph, limits: list[int], schedule: Schedule | None,
                  keep: int) -> list[int]:
    """On a large graph, a second copy only for the ``keep`` nodes most worth recomputing:
    those the heuristic recomputes, then the cheapest per byte freed. The others keep one
    copy, so the model builds in a fraction of the time limit and CP-SAT searches where
    recomputing pays."""
    recomputed = {v for v, stage in schedule or () if v != stage}
    order = sorted(range(graph.n), key=lambda v: (v not in recomputed,
                                                  graph.costs[v] / max(graph.sizes[v], 1)))
    chosen = set(order[:max(keep, len(recomputed))])  # the hint stays a valid schedule
    return [limits[v] if v in chosen else 1 for v in range(graph.n)]


def _infeasible(graph: RematGraph, budget: int, why: str) -> MemoryBudgetError:
    lb, peak = lower_bound(graph), peak_memory_in_order(graph)
    return MemoryBudgetError(
        f"remat: no schedule fits a budget of {budget} bytes: {why}. The smallest budget "
        f"that can work is at least {max(lb, budget + 1)} bytes (lower bound: the largest "
        f"node with its inputs, {lb}); running in order needs {peak}."
    )


def _plan(graph: RematGraph, budget: int, computes: list[int], status: str, method: str,
          began: float, bound: float | None, stats: dict[str, Any]) -> RematPlan:
    events = events_from_computes(graph, computes)
    result = simulate(graph, events, budget)
    if bound is not None:
        bound = min(result.total_cost, graph.total_cost + max(bound, 0.0))
    return RematPlan(events, budget, result.peak, result.total_cost, result.overhead,
                     lower_bound(graph), status, method, time.perf_counter() - began,
                     bound, stats)


def solve(
    graph: Any,
    budget: int | float | str | None = None,
    *,
    budget_fraction: float | None = None,
    time_limit: float = 10.0,
    num_workers: int = 2,
    seed: int = 0,
    max_copies: int | Mapping[int, int] | Sequence[int] = 2,
    method: str = "cpsat",
    order: Sequence[Any] | None = None,
) -> RematPlan:
    """Plan keep / free / recompute so the peak memory stays within ``budget`` bytes.

    ``budget`` is absolute (int bytes or ``"64MB"``); ``budget_fraction=f`` means
    ``ceil(f * peak_memory_in_order(graph))`` instead. Raises :class:`MemoryBudgetError`
    when no schedule can fit, :class:`SolverTimeoutError` when none was found in time.
    On graphs of more than ``LARGE_MODEL_NODES`` nodes, CP-SAT may recompute only the
    ``FOCUS_NODES`` most promising ones; from ``MID_MODEL_NODES`` nodes, only
    ``FOCUS_PER_SECOND`` per second of ``time_limit`` (at least 40): a model CP-SAT can
    search in the time (at 5 s, the 250-node random graph at 80 %: 4.72 % with 60 nodes,
    none on the heuristic's schedule with all 250). The most promising nodes are
    those the heuristic recomputes, then the cheapest per byte; ``max_copies`` applies
    within them."""
    began = time.perf_counter()
    g = as_remat_graph(graph, order)
    if method not in METHODS:
        raise TccError(f"remat: unknown method {method!r}; expected one of {METHODS}")
    if (budget is None) == (budget_fraction is None):
        raise TccError("remat: give exactly one of budget= and budget_fraction=")
    if budget_fraction is not None:
        if not 0 < budget_fraction:
            raise TccError(f"remat: budget_fraction must be positive, not {budget_fraction}")
        bytes_ = math.ceil(budget_fraction * peak_memory_in_order(g))
    else:
        bytes_ = parse_budget(budget)  # type: ignore[arg-type]
    if lower_bound(g) > bytes_:
        raise _infeasible(g, bytes_, "some node needs more than that with its inputs")
    if peak_memory_in_order(g) <= bytes_:
        return _plan(g, bytes_, list(range(g.n)), "optimal", method, began, g.total_cost,
                     {"keep_all": True})
    heuristic_time = min(2.0, 0.15 * time_limit) if method != "heuristic" else 0.5
    large = method == "cpsat" and g.n > LARGE_MODEL_NODES
    if large:  # CP-SAT rarely improves a large model within seconds: most time to `improve`
        heuristic_time = min(0.9 * time_limit, 10.0)
    schedule = best_heuristic_schedule(g, bytes_, time_limit=heuristic_time, seed=seed,
                                       workers=num_workers)
    if method == "heuristic":
        if schedule is None:
            raise SolverTimeoutError(
                f"remat: the eviction heuristic found no schedule within {bytes_} bytes; "
                "try method='cpsat'")
        return _plan(g, bytes_, [v for v, _ in schedule], "heuristic", method, began, None, {})
    from tcc.passes.remat.scaling import scale

    copies = _copy_limits(g, max_copies, schedule)
    if large:
        copies = _focus_copies(g, copies, schedule, FOCUS_NODES)
    elif method == "cpsat" and g.n >= MID_MODEL_NODES:
        focus = max(40, int(FOCUS_PER_SECOND * time_limit))
        copies = _focus_copies(g, copies, schedule, focus)
    remaining = time_limit - (time.perf_counter() - began)
    if remaining < 0.1:  # the limit always holds: no time left for a solver
        if schedule is None:
            raise SolverTimeoutError(f"remat: no schedule found within {time_limit} s")
        return _plan(g, bytes_, [v for v, _ in schedule], "feasible", method, began, None,
                     {"solver_skipped": "time limit"})
    if method == "milp":
        from tcc.passes.remat.milp import solve_milp

        result = solve_milp(g, scale(g, bytes_), time_limit=remaining,
                            num_workers=num_workers, seed=seed)
    else:
        from tcc.passes.remat.cpsat import solve_cpsat

        result = solve_cpsat(g, scale(g, bytes_), copies, hint=schedule, time_limit=remaining,
                             num_workers=num_workers, seed=seed)
    # the MILP is a baseline: report its own answer, never the heuristic's
    return _finish(g, bytes_, result, schedule if method == "cpsat" else None, method, began)


def _finish(g: RematGraph, budget: int, result: Any, schedule: Schedule | None, method: str,
            began: float) -> RematPlan:
    stats = dict(result.stats)
    if result.computes is not None:
        plan = _plan(g, budget, result.computes, result.status, method, began,
                     result.objective_bound, stats)
        if schedule is None or plan.total_cost <= sum(g.costs[v] for v, _ in schedule):
            return plan
    if schedule is not None:
        stats["fallback"] = "heuristic"
        bound = result.objective_bound if result.status != "unknown" else None
        return _plan(g, budget, [v for v, _ in schedule], "feasible", method, began, bound,
                     stats)
    if result.status == "infeasible":
        raise _infeasible(g, budget, f"the {method} model proved it infeasible"
                          + ("" if stats.get("exact_sizes", True) else " (sizes rounded up)"))
    raise SolverTimeoutError(f"remat: {method} found no schedule within {budget} bytes in "
                             "the time limit; raise time_limit")

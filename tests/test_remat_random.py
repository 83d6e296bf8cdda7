"""Random small DAGs: the simulator accepts every plan and CP-SAT never loses to the
heuristic."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tcc.errors import MemoryBudgetError, SolverTimeoutError
from tcc.remat import RematGraph, lower_bound, peak_memory_in_order, simulate, solve


@st.composite
def small_dags(draw: st.DrawFn) -> RematGraph:
    n = draw(st.integers(3, 9))
    preds = []
    for v in range(n):
        candidates = list(range(v))
        chosen = draw(st.lists(st.sampled_from(candidates), max_size=3, unique=True)) if v else []
        preds.append(tuple(sorted(chosen)))
    costs = tuple(draw(st.lists(st.integers(0, 9), min_size=n, max_size=n)))
    sizes = tuple(draw(st.lists(st.integers(1, 9), min_size=n, max_size=n)))
    return RematGraph(costs, sizes, tuple(preds), tuple(f"n{i}" for i in range(n)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=small_dags(), fraction=st.floats(0.0, 1.0))
def test_cpsat_never_worse_than_heuristic(graph: RematGraph, fraction: float) -> None:
    lb, peak = lower_bound(graph), peak_memory_in_order(graph)
    budget = lb + int(fraction * (peak - lb))
    try:
        heuristic = solve(graph, budget, method="heuristic")
    except (SolverTimeoutError, MemoryBudgetError):
        heuristic = None
    try:
        plan = solve(graph, budget, time_limit=2.0, max_copies=3)
    except MemoryBudgetError:
        assert heuristic is None
        return
    assert simulate(graph, plan, budget).peak <= budget
    if heuristic is not None:
        assert simulate(graph, heuristic, budget).peak <= budget
        assert plan.overhead <= heuristic.overhead + 1e-9
    if budget >= peak:
        assert plan.overhead == 0


@pytest.mark.parametrize("seed", range(3))
def test_milp_plans_are_valid(seed: int) -> None:
    import random

    rng = random.Random(seed)
    n = 8
    preds = tuple(tuple(sorted(rng.sample(range(v), min(v, rng.randint(1, 2))))) if v else ()
                  for v in range(n))
    graph = RematGraph(tuple(rng.randint(1, 5) for _ in range(n)),
                       tuple(rng.randint(1, 6) for _ in range(n)), preds,
                       tuple(f"n{i}" for i in range(n)))
    budget = lower_bound(graph) + (peak_memory_in_order(graph) - lower_bound(graph)) // 2
    try:
        plan = solve(graph, budget, method="milp", time_limit=2.0)
    except (MemoryBudgetError, SolverTimeoutError):
        return
    assert simulate(graph, plan, budget).peak <= budget
    best = solve(graph, budget, time_limit=2.0, max_copies=n)
    assert best.total_cost <= plan.total_cost + 1e-9

"""Rematerialization: hand-made graphs with known optima, every plan refereed by simulate."""

from __future__ import annotations

import math
from pathlib import Path

import networkx as nx
import pytest

from tcc.errors import MemoryBudgetError, TccError
from tcc.remat import (
    RematGraph,
    RematPlan,
    lower_bound,
    parse_budget,
    peak_memory_in_order,
    simulate,
    solve,
)

GRAPHS = Path("/work/shared/remat-graphs")
METHODS = ("cpsat", "heuristic", "milp")


def graph_of(costs, sizes, edges) -> RematGraph:
    preds = [[] for _ in costs]
    for u, v in edges:
        preds[v].append(u)
    return RematGraph(tuple(costs), tuple(sizes), tuple(tuple(sorted(p)) for p in preds),
                      tuple(f"n{i}" for i in range(len(costs))))


def skip_chain() -> RematGraph:
    """0 -> 1 -> 2 -> 3 -> 4 and a skip 0 -> 4: keeping 0 (size 10) to the end costs memory;
    recomputing it (cost 1) before 4 is the optimum."""
    return graph_of([1, 5, 5, 5, 5], [10, 10, 10, 10, 10],
                    [(0, 1), (1, 2), (2, 3), (3, 4), (0, 4)])


def diamond() -> RematGraph:
    """0 -> {1, 2} -> 3, with 0 also used at the end by 4 (3 -> 4)."""
    return graph_of([2, 3, 3, 3, 1], [4, 4, 4, 4, 4],
                    [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4), (0, 4)])


def check(graph: RematGraph, plan: RematPlan, budget: int) -> None:
    result = simulate(graph, plan, budget)
    assert result.peak <= budget
    assert result.peak == plan.peak
    assert math.isclose(result.total_cost, plan.total_cost)


@pytest.mark.parametrize("method", METHODS)
def test_skip_chain_recomputes_the_cheap_source(method: str) -> None:
    g = skip_chain()
    assert peak_memory_in_order(g) == 30 and lower_bound(g) == 30
    g2 = graph_of([1, 5, 5, 5, 5], [10, 10, 10, 10, 10], [(0, 1), (1, 2), (2, 3), (3, 4)])
    assert peak_memory_in_order(g2) == 20
    plan = solve(g, 30, method=method, time_limit=5)
    check(g, plan, 30)
    assert plan.overhead == 0 and plan.status == "optimal"


def test_chain_with_long_skip_needs_one_recompute() -> None:
    # 0 (cheap) feeds 1 and 5; 1..4 is a chain; a budget of 20 < 25 (in-order peak)
    # forces 0 out while 2..4 run and back before 5: overhead = 1 / 26.
    g = graph_of([1, 5, 5, 5, 5, 5], [5, 10, 10, 10, 10, 1],
                 [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (0, 5)])
    assert peak_memory_in_order(g) == 25 and lower_bound(g) == 20
    for method in METHODS:
        plan = solve(g, 20, method=method, time_limit=5)
        check(g, plan, 20)
        assert plan.computes.count(0) == 2
        assert plan.overhead == pytest.approx(1 / 26)
    assert solve(g, 20).status == "optimal"


def test_diamond_budget_at_lower_bound() -> None:
    g = diamond()
    lb = lower_bound(g)
    assert lb == 12 and peak_memory_in_order(g) == 16
    plan = solve(g, lb, time_limit=5)
    check(g, plan, lb)
    assert plan.status == "optimal"
    assert plan.total_cost == pytest.approx(g.total_cost + 2)  # recompute 0 once
    for method in ("heuristic", "milp"):
        other = solve(g, lb, method=method, time_limit=5)
        check(g, other, lb)
        assert other.total_cost >= plan.total_cost


def test_infeasible_budget_names_the_smallest() -> None:
    g = diamond()
    with pytest.raises(MemoryBudgetError, match="at least 12 bytes"):
        solve(g, 11)


def test_keep_all_when_budget_is_large() -> None:
    g = diamond()
    for method in METHODS:
        plan = solve(g, "1KB", method=method)
        check(g, plan, 1000)
        assert plan.overhead == 0 and plan.recomputes == 0


def test_networkx_input_and_budget_fraction() -> None:
    nxg = nx.DiGraph()
    for i, (c, s) in enumerate([(1, 10), (5, 10), (5, 10), (5, 10), (5, 10)]):
        nxg.add_node(f"t{i}", cost=c, size=s)
    nxg.add_edges_from([("t0", "t1"), ("t1", "t2"), ("t2", "t3"), ("t3", "t4"), ("t0", "t4")])
    plan = solve(nxg, budget_fraction=1.0)
    assert plan.overhead == 0 and plan.budget == 30


def test_parse_budget() -> None:
    assert parse_budget("64MB") == 64 * 10**6
    assert parse_budget("1.5GiB") == 3 * 2**29
    assert parse_budget(4096) == 4096
    assert parse_budget(" 2 kib ") == 2048
    with pytest.raises(TccError, match="cannot read remat budget"):
        parse_budget("12 parsecs")


def test_json_round_trip() -> None:
    g = skip_chain()
    plan = solve(g, 30)
    again = RematPlan.from_json(plan.to_json())
    assert again == plan
    assert again.stats == plan.stats
    check(g, again, 30)


def test_timeout_returns_a_valid_plan() -> None:
    g = load("random_layered_n100")
    budget = math.ceil(0.8 * peak_memory_in_order(g))
    plan = solve(g, budget, time_limit=0.5)
    check(g, plan, budget)
    assert plan.status in ("optimal", "feasible")


def test_plot_needs_matplotlib_or_writes(tmp_path: Path) -> None:
    g = skip_chain()
    plan = solve(g, 30)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install matplotlib"):
            plan.plot(tmp_path / "m.png", g)
    else:
        plan.plot(tmp_path / "m.png", g)
        assert (tmp_path / "m.png").exists()


def load(name: str) -> RematGraph:
    from tcc.remat import load_benchmark_graph

    path = GRAPHS / f"{name}.json"
    if not path.exists():
        pytest.skip(f"{path} not available")
    return load_benchmark_graph(path)


def test_vgg16_at_0_9_matches_the_reference() -> None:
    g = load("vgg16_b256_train")
    plan = solve(g, budget_fraction=0.9, time_limit=20)
    check(g, plan, plan.budget)
    assert plan.status == "optimal"
    assert 100 * plan.overhead == pytest.approx(1.97, abs=0.01)


def test_vgg16_at_0_8_is_infeasible_fast() -> None:
    g = load("vgg16_b256_train")
    with pytest.raises(MemoryBudgetError, match=f"at least {lower_bound(g)} bytes"):
        solve(g, budget_fraction=0.8)


def test_repair_fits_where_pinning_gets_stuck() -> None:
    from tcc.passes.remat.heuristic import eviction_schedule, sequence_to_schedule
    from tcc.passes.remat.plan import events_from_computes
    from tcc.passes.remat.repair import repair_sequence

    g = load("random_layered_n250")
    budget = math.ceil(0.8 * peak_memory_in_order(g))
    assert all(eviction_schedule(g, budget, p) is None for p in ("balanced", "belady", "cheap"))
    seq = repair_sequence(g, budget)
    assert seq is not None
    result = simulate(g, events_from_computes(g, seq), budget)
    assert result.peak <= budget and result.overhead < 0.1
    assert [v for v, _ in sequence_to_schedule(seq)] == seq


def test_repair_on_the_skip_chain_recomputes_the_source() -> None:
    from tcc.passes.remat.repair import repair_sequence

    g = graph_of([1, 5, 5, 5, 5, 5], [5, 10, 10, 10, 10, 1],
                 [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (0, 5)])
    assert repair_sequence(g, 20) == [0, 1, 2, 3, 4, 0, 5]


def test_two_workers_search_in_parallel_and_stay_valid() -> None:
    from tcc.passes.remat.heuristic import best_heuristic_schedule, schedule_cost
    from tcc.passes.remat.plan import events_from_computes

    g = load("random_layered_n250")
    budget = math.ceil(0.8 * peak_memory_in_order(g))
    both = best_heuristic_schedule(g, budget, time_limit=0.5, workers=2)
    assert both is not None
    result = simulate(g, events_from_computes(g, [v for v, _ in both]), budget)
    assert result.peak <= budget
    assert math.isclose(result.total_cost, schedule_cost(g, both))

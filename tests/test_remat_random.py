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


@st.composite
def layered_dags(draw: st.DrawFn) -> RematGraph:
    """Up to 40 nodes with long edges, so the repair has gaps to open and chains to build;
    up to two of them outputs."""
    n = draw(st.integers(6, 40))
    preds = [()]
    for v in range(1, n):
        chosen = draw(st.lists(st.integers(0, v - 1), min_size=1, max_size=3, unique=True))
        preds.append(tuple(sorted(chosen)))
    costs = tuple(draw(st.lists(st.integers(0, 9), min_size=n, max_size=n)))
    sizes = tuple(draw(st.lists(st.integers(1, 20), min_size=n, max_size=n)))
    outputs = tuple(sorted(draw(st.sets(st.integers(0, n - 1), max_size=2))))  # kept to the end
    return RematGraph(costs, sizes, tuple(preds), tuple(f"n{i}" for i in range(n)), outputs)


def memory_of(graph: RematGraph, seq: list[int]) -> list[int]:
    """Memory at each compute of a sequence, the plain way: every use served by the
    latest copy, every copy freed after its last use, outputs kept to the end."""
    latest: dict[int, int] = {}
    end = list(range(len(seq)))
    for i, v in enumerate(seq):
        for u in set(graph.preds[v]):
            end[latest[u]] = i
        latest[v] = i
    for o in graph.outputs:
        end[latest[o]] = len(seq)
    return [sum(graph.sizes[seq[c]] for c in range(i + 1) if end[c] >= i)
            for i in range(len(seq))]


def excess_of(graph: RematGraph, seq: list[int], budget: int) -> int:
    return sum(m - budget for m in memory_of(graph, seq) if m > budget)


def _budget(graph: RematGraph, fraction: float) -> int:
    lb, peak = lower_bound(graph), peak_memory_in_order(graph)
    return lb + int(fraction * (peak - lb))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=layered_dags(), fraction=st.floats(0.0, 0.9), pick=st.randoms(use_true_random=False))
def test_incremental_move_evaluation_is_exact(graph: RematGraph, fraction: float, pick) -> None:
    """The repair scores a move on the gap it changes; that equals re-running the sequence
    (and the vectorized memory profile equals the plain one)."""
    import bisect

    from tcc.passes.remat import repair as R

    ev = R._Evaluator(graph, _budget(graph, fraction))
    s = R._Sequence(ev, list(range(graph.n)))
    for _ in range(8):
        assert s.mem.tolist() == memory_of(graph, s.seq)
        if s.excess == 0:
            return
        i = next(k for k, m in enumerate(s.mem) if m > ev.budget)
        moves = []
        for c in range(i):
            u = s.seq[c]
            if not i < s.end[c] < len(s.seq) or u in ev.upreds[s.seq[i]]:
                continue
            uses = s.uses(c)
            k = bisect.bisect_left(uses, i)
            a, j = (uses[k - 1] if k else c), uses[k]
            chain = R._chain(s, ev.upreds, u, i, j, graph.n)
            if chain is None:
                continue
            new = s.seq[:j] + chain + s.seq[j:]
            assert R._excess_after(s, ev, c, a, j, chain) == excess_of(graph, new, ev.budget)
            moves.append(new)
        if not moves:
            return
        s = R._Sequence(ev, pick.choice(moves))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=layered_dags(), fraction=st.floats(0.0, 0.9), seed=st.integers(0, 3))
def test_repair_prune_and_improve_fit_the_budget(graph: RematGraph, fraction: float,
                                                 seed: int) -> None:
    """Every greedy's sequence fits (the simulator referees); each deletion the prune
    check accepts or refuses agrees with re-running the sequence; improving never costs
    more."""
    import random
    import time

    from tcc.passes.remat import repair as R
    from tcc.passes.remat.plan import events_from_computes

    budget = _budget(graph, fraction)
    ev = R._Evaluator(graph, budget)
    for greedy in R.GREEDY_RULES:
        seq = R.repair_sequence(graph, budget, greedy=greedy, rng=random.Random(seed))
        if seq is None:
            continue
        assert simulate(graph, events_from_computes(graph, seq), budget).peak <= budget
        s = R._Sequence(ev, seq)
        for k, main in enumerate(R.main_computes(seq)):
            if not main:
                rest = seq[:k] + seq[k + 1:]
                assert R._fits_without(s, ev, k) == (max(memory_of(graph, rest)) <= budget)
        better = R.improve(graph, budget, seq, rng=random.Random(seed),
                           deadline=time.perf_counter() + 0.05)
        assert simulate(graph, events_from_computes(graph, better), budget).peak <= budget
        assert sum(graph.costs[v] for v in better) <= sum(graph.costs[v] for v in seq)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=layered_dags(), extra=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)),
                                            max_size=12), slack=st.integers(0, 6))
def test_a_prune_pass_deletes_only_what_fits_together(graph: RematGraph, extra, slack: int
                                                      ) -> None:
    """The deletions one pruning pass accepts together (checked on one profile) fit
    together when re-run, on sequences with redundant recomputes."""
    from tcc.passes.remat import repair as R

    seq = list(range(graph.n))
    for node, where in extra:  # a recompute anywhere after the node's first compute
        v = node % graph.n
        first = seq.index(v)
        seq.insert(first + 1 + where % (len(seq) - first), v)
    budget = max(memory_of(graph, seq)) + slack
    ev = R._Evaluator(graph, budget)
    s = R._Sequence(ev, seq)
    pending = [k for k, main in enumerate(R.main_computes(seq)) if not main]
    accepted, waiting = R._prune_pass(s, ev, pending)
    assert set(accepted) | set(waiting) <= set(pending)
    assert not set(accepted) & set(waiting)
    rest = [v for k, v in enumerate(seq) if k not in set(accepted)]
    assert max(memory_of(graph, rest)) <= budget
    assert max(memory_of(graph, R.prune(graph, budget, seq, ev))) <= budget


def test_a_prune_pass_keeps_apart_two_deletions_of_one_node() -> None:
    """Deleting an unused recompute of a node and then the next recompute of it would keep
    the first copy across the peak: checked one at a time, both fit; together they do
    not, so one pass accepts only one of them."""
    from tcc.passes.remat import repair as R

    graph = RematGraph((1, 1, 1, 1, 1), (5, 1, 10, 1, 1), ((), (0,), (), (2,), (0,)),
                       tuple("abcde"))
    seq = [0, 1, 2, 3, 0, 0, 4]
    budget = max(memory_of(graph, seq))
    ev = R._Evaluator(graph, budget)
    s = R._Sequence(ev, seq)
    assert R._fits_without(s, ev, 4) and R._fits_without(s, ev, 5)
    assert max(memory_of(graph, [0, 1, 2, 3, 4])) > budget
    accepted, waiting = R._prune_pass(s, ev, [4, 5])
    assert len(accepted) == 1 and len(waiting) == 1
    assert R.prune(graph, budget, seq, ev) == [0, 1, 2, 3, 0, 4]


def test_prune_falls_back_to_one_deletion_when_a_pass_breaks_the_budget(monkeypatch) -> None:
    """The pruning pass's safety net: were a pass to accept deletions that do not fit
    together, only its first (checked exactly on its own) is applied."""
    from tcc.passes.remat import repair as R

    graph = RematGraph((1, 1, 1, 1, 1), (5, 1, 10, 1, 1), ((), (0,), (), (2,), (0,)),
                       tuple("abcde"))
    seq = [0, 1, 2, 3, 0, 0, 4]
    budget = max(memory_of(graph, seq))
    real = R._prune_pass
    monkeypatch.setattr(R, "_prune_pass", lambda s, ev, pending: (
        sorted(pending), []) if len(pending) == 2 else real(s, ev, pending))
    pruned = R.prune(graph, budget, seq)
    assert max(memory_of(graph, pruned)) <= budget
    assert len(pruned) == len(seq) - 1

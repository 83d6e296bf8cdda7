"""Known optima: 'optimal' proves them; dp, hyper and auto must reach them."""

from __future__ import annotations

import opt_einsum as oe
import pytest
from test_order_corpus import CORPUS, check_tree, parse, random_sizes

from tcc.passes.order import ContractionTree, optimize

SMALL = [e for e in CORPUS if 3 <= e.count(",") + 1 <= 7]
# Networks whose optimum needs no outer product inside a connected piece, so the
# connected-subset DP must reach it too.
DP_EXACT = [
    "ij,jk,kl,lm,mn->in",
    "ab,bc,cd,de,ef,fg,gh->ah",
    "abc,ia,jb,kc->ijk",
    "zui,zvj,ijk,uvw->zwk",
    "ea,fb,abcd,gc,hd->efgh",
    "ijab,acik,bcjk->",
    "pqrs,pi,qj,rk,sl->ijkl",
    "ax,xby,ycz,zdw,we->abcde",
    "ab,bc,cd,da,ac->",
]


def _network(equation: str, seed: int):
    inputs, output = parse(equation)
    return inputs, output, random_sizes([x for t in inputs for x in t], seed=seed, low=2, high=9)


def _opt_einsum_optimal(equation: str, size_dict) -> int:
    inputs, output = parse(equation)
    shapes = [tuple(size_dict[x] for x in term) for term in inputs]
    return oe.contract_path(equation, *shapes, shapes=True, optimize="optimal")[1].opt_cost


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("equation", SMALL)
def test_optimal_matches_opt_einsum_optimal(equation: str, seed: int) -> None:
    inputs, output, size_dict = _network(equation, seed)
    tree = optimize(inputs, output, size_dict, method="optimal", use_cache=False)
    # opt_einsum's 'optimal' prunes heuristically and is occasionally beaten (never beats us).
    assert tree.flops() <= _opt_einsum_optimal(equation, size_dict)
    for method in ["greedy", "random-greedy", "dp", "naive"]:
        other = optimize(inputs, output, size_dict, method=method, use_cache=False)
        assert other.flops() >= tree.flops()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("equation", DP_EXACT)
@pytest.mark.parametrize("method", ["dp", "hyper", "auto"])
def test_dp_hyper_auto_reach_the_optimum(equation: str, seed: int, method: str) -> None:
    inputs, output, size_dict = _network(equation, seed)
    best = optimize(inputs, output, size_dict, method="optimal", use_cache=False).flops()
    tree = optimize(inputs, output, size_dict, method=method, max_time=0.5, use_cache=False)
    assert tree.flops() == best


def _chain(n: int, seed: int):
    """A matrix chain: the classic DP problem, optimum known from the O(n^3) recurrence."""
    import random

    rng = random.Random(seed)
    dims = [rng.randint(2, 40) for _ in range(n + 1)]
    inputs = [(i, i + 1) for i in range(n)]
    size_dict = dict(enumerate(dims))
    cost = {(i, i): 0 for i in range(n)}
    for length in range(2, n + 1):
        for i in range(n - length + 1):
            j = i + length - 1
            cost[i, j] = min(
                cost[i, k] + cost[k + 1, j] + 2 * dims[i] * dims[k + 1] * dims[j + 1]
                for k in range(i, j)
            )
    return inputs, (0, n), size_dict, cost[0, n - 1]


@pytest.mark.parametrize("seed", range(4))
def test_matrix_chain_optimum(seed: int) -> None:
    inputs, output, size_dict, best = _chain(12, seed)
    for method in ["dp", "hyper", "auto"]:
        tree = optimize(inputs, output, size_dict, method=method, max_time=0.5, use_cache=False)
        assert tree.flops() == best, method
    small_inputs, small_output, small_sizes, small_best = _chain(8, seed)
    tree = optimize(small_inputs, small_output, small_sizes, method="optimal", use_cache=False)
    assert tree.flops() == small_best


def test_ring_of_ten_optimal_beats_or_ties_everyone() -> None:
    n = 10
    inputs = [(i, (i + 1) % n, 100 + i) for i in range(n)]
    output = tuple(100 + i for i in range(0, n, 3))
    size_dict = {i: 2 + i % 3 for i in range(n)} | {100 + i: 2 for i in range(n)}
    best = optimize(inputs, output, size_dict, method="optimal", use_cache=False)
    check_tree(best, inputs, output, size_dict)
    for method in ["dp", "greedy", "random-greedy", "hyper", "auto"]:
        tree = optimize(inputs, output, size_dict, method=method, max_time=0.5, use_cache=False)
        assert tree.flops() >= best.flops()
    assert (
        optimize(inputs, output, size_dict, method="hyper", max_time=0.5, use_cache=False).flops()
        == best.flops()
    )


@pytest.mark.parametrize("objective", ["size", "write", "combo", "combo-8"])
def test_objectives_are_optimal_for_their_measure(objective: str) -> None:
    inputs, output, size_dict = _network("ea,fb,abcd,gc,hd->efgh", 4)
    tree = optimize(
        inputs, output, size_dict, method="optimal", objective=objective, use_cache=False
    )
    flops_tree = optimize(inputs, output, size_dict, method="optimal", use_cache=False)
    assert flops_tree.flops() <= tree.flops()
    measure = {
        "size": ContractionTree.largest_intermediate,
        "write": ContractionTree.total_write,
        "combo": lambda t: t.flops() + 64 * t.total_write(),
        "combo-8": lambda t: t.flops() + 8 * t.total_write(),
    }[objective]
    assert measure(tree) <= measure(flops_tree)
    for method in ["dp", "hyper", "auto", "random-greedy"]:
        other = optimize(
            inputs, output, size_dict, method=method, objective=objective, use_cache=False
        )
        assert measure(other) >= measure(tree)

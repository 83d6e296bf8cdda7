"""The greedy cores: opt_einsum's greedy reproduced exactly, tracked costs exact."""

from __future__ import annotations

import math
import random

import cotengra.utils as ctu
import opt_einsum as oe
import pytest

from tcc.passes.order import ContractionTree, optimize
from tcc.passes.order.cost import FLOPS, parse_objective
from tcc.passes.order.greedy import GreedyProblem
from tcc.passes.order.greedy_oe import oe_greedy_ssa
from tcc.passes.order.network import build_network, ssa_cost


def _networks():
    yield ctu.randreg_equation(30, 3, seed=1)
    yield ctu.rand_equation(40, 3, n_out=2, n_hyper_in=3, n_hyper_out=1, seed=2)
    yield ctu.lattice_equation((3, 3, 3), d_min=2, d_max=3, seed=3)


@pytest.mark.parametrize("number", range(3))
def test_oe_greedy_matches_opt_einsum(number: int) -> None:
    inputs, output, _, size_dict = list(_networks())[number]
    net = build_network(inputs, output, size_dict)
    ours = ContractionTree.from_ssa_path(
        inputs, output, size_dict, oe_greedy_ssa(net.legs, net.output, net.sizes)
    )
    theirs = oe.paths.greedy([set(t) for t in inputs], set(output), size_dict)
    assert ours.flops() == ContractionTree.from_path(inputs, output, size_dict, theirs).flops()


@pytest.mark.parametrize("objective", ["flops", "write", "combo-64"])
def test_greedy_trial_tracks_the_exact_cost(objective: str) -> None:
    goal = parse_objective(objective)
    for inputs, output, _, size_dict in _networks():
        net = build_network(inputs, output, size_dict)
        problem = GreedyProblem(net.legs, net.output, net.sizes, objective=goal)
        for trial in range(4):
            found = problem.run(costmod=0.5 + trial, temperature=0.1, rng=random.Random(trial))
            assert found is not None
            path, cost, largest = found
            exact, exact_largest = ssa_cost(net.legs, net.output, net.sizes, path, goal)
            assert math.isclose(cost, exact, rel_tol=1e-12)
            assert largest == exact_largest


def test_identical_inputs_are_merged_first() -> None:
    inputs = [("i", "j"), ("j", "k"), ("i", "j"), ("k", "l")]
    net = build_network(inputs, ("l",), {"i": 3, "j": 4, "k": 5, "l": 6})
    problem = GreedyProblem(net.legs, net.output, net.sizes)
    assert problem.path == [(0, 2)]


def test_random_greedy_and_auto_beat_opt_einsum_greedy_on_hyperedges() -> None:
    inputs, output, _, size_dict = ctu.rand_equation(
        60, 3, n_out=2, n_hyper_in=4, n_hyper_out=2, seed=5
    )
    theirs = oe.paths.greedy([set(t) for t in inputs], set(output), size_dict)
    bound = ContractionTree.from_path(inputs, output, size_dict, theirs).flops()
    for method in ["random-greedy", "auto"]:
        tree = optimize(inputs, output, size_dict, method=method, max_time=0.3, use_cache=False)
        assert tree.flops() <= bound
    assert FLOPS.is_additive

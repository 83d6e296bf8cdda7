"""tcc.einsum with every path optimizer, memory limits and slicing; einsum_path and
contraction_tree as numpy and users expect them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from corpus import CORPUS

import tcc

MULTI = [case for case in CORPUS if case.n_operands >= 3]
OPTIMIZERS = ["auto", "greedy", "optimal", "dp", "random-greedy", "hyper", True]


@pytest.mark.parametrize("optimize", OPTIMIZERS, ids=str)
@pytest.mark.parametrize("case", MULTI, ids=str)
def test_every_optimizer_on_the_corpus(case, optimize):
    operands = case.operands(np.random.default_rng(1))
    got = tcc.einsum(case.equation, *operands, optimize=optimize)
    np.testing.assert_allclose(got, case.reference(operands), rtol=1e-10, atol=1e-10)


def test_numpy_paths_and_numpy_format():
    shapes = [(5, 6), (5, 7), (6, 7, 8, 9), (5, 8), (5, 9)]
    eq = "pi,qj,ijkl,rk,sl->pqrs"
    arrays = [np.random.default_rng(k).random(s) for k, s in enumerate(shapes)]
    path, report = tcc.einsum_path(eq, *arrays)
    assert path[0] == "einsum_path" and all(isinstance(step, tuple) for step in path[1:])
    assert "Optimized FLOP count" in str(report)
    np.testing.assert_allclose(tcc.einsum(eq, *arrays, optimize=path), np.einsum(eq, *arrays))
    numpy_path = np.einsum_path(eq, *arrays, optimize="greedy")[0]
    np.testing.assert_allclose(tcc.einsum(eq, *arrays, optimize=numpy_path),
                               np.einsum(eq, *arrays))
    by_shape, _ = tcc.einsum_path(eq, *shapes, shapes=True)
    assert by_shape == path


@pytest.mark.parametrize("limit", [700, 2000, "24KB"])
def test_memory_limit_slices_and_stays_exact(limit):
    shapes = [(5, 6), (5, 7), (6, 7, 8, 9), (5, 8), (5, 9)]
    eq = "pi,qj,ijkl,rk,sl->pqrs"
    arrays = [np.random.default_rng(k).random(s) for k, s in enumerate(shapes)]
    tree = tcc.contraction_tree(eq, *shapes, shapes=True, memory_limit=limit)
    elements = limit if isinstance(limit, int) else 24_000 // 8
    if isinstance(tree, tcc.SlicedTree):
        assert tree.largest_intermediate <= elements and tree.num_slices > 1
    else:
        assert tree.largest_intermediate() <= elements
    np.testing.assert_allclose(tcc.einsum(eq, *arrays, memory_limit=limit),
                               np.einsum(eq, *arrays), rtol=1e-12)


def test_sliced_broadcast_and_diagonal_operands():
    eq = "ab,bcc,cd,de->ae"
    arrays = [np.random.default_rng(0).random((4, 5)), np.random.default_rng(1).random((1, 6, 6)),
              np.random.default_rng(2).random((6, 7)), np.random.default_rng(3).random((7, 3))]
    got = tcc.einsum(eq, *arrays, memory_limit=12)
    np.testing.assert_allclose(got, np.einsum(eq, *arrays), rtol=1e-12)


def test_impossible_memory_limit_names_the_smallest():
    shapes = [(5, 6), (6, 7), (7, 8)]
    with pytest.raises(tcc.MemoryBudgetError, match="smallest feasible memory_limit is 40"):
        tcc.einsum("ab,bc,cd->ad", *[np.ones(s) for s in shapes], memory_limit=10)


def test_contraction_tree_is_plain_data():
    tree = tcc.contraction_tree("abc,ia,jb,kc->ijk", (4, 5, 6), (7, 4), (8, 5), (9, 6),
                                shapes=True, optimize="optimal")
    again = tcc.ContractionTree.from_json(tree.to_json())
    assert again == tree and json.loads(tree.to_json())
    assert tree.path() == again.path()
    assert {step.kind for step in tree.steps()} <= {"gett", "loop_nest"}


def test_bad_optimize_values():
    a = np.ones((2, 2))
    with pytest.raises(tcc.TccError):
        tcc.einsum("ij,jk,kl->il", a, a, a, optimize="telepathy")
    with pytest.raises(tcc.TccError):
        tcc.einsum("ij,jk,kl->il", a, a, a, optimize=[(0, 7)])
    with pytest.raises(tcc.TccError):
        tcc.einsum("ij,jk,kl->il", a, a, a, memory_limit="lots")

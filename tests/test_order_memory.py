"""memory_limit as a hard constraint, slicing when it cannot be met, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
from test_order_corpus import direct, execute_sliced, parse, random_arrays

from tcc.errors import MemoryBudgetError, TccError
from tcc.passes.order import (
    ContractionTree,
    PathReport,
    SlicedTree,
    contraction_tree,
    optimize,
    slice_tree,
)

METHODS = ["optimal", "dp", "greedy", "random-greedy", "hyper", "auto"]


def test_memory_limit_changes_the_path() -> None:
    # The flop-optimal path makes a 1296-element intermediate; a feasible path stays <= 864.
    inputs, output = parse("pqrs,pi,qj,rk,sl->ijkl")
    size_dict = {"i": 8, "j": 8, "k": 2, "l": 6, "p": 9, "q": 8, "r": 6, "s": 9}
    free = optimize(inputs, output, size_dict, method="optimal", use_cache=False)
    assert free.largest_intermediate() == 1296
    for method in METHODS:
        tree = optimize(
            inputs,
            output,
            size_dict,
            method=method,
            memory_limit=864,
            max_time=0.3,
            use_cache=False,
        )
        assert tree.largest_intermediate() <= 864, method
        assert tree.flops() >= free.flops()


@pytest.mark.parametrize("method", METHODS)
def test_memory_limit_on_a_chain_with_a_fat_middle(method: str) -> None:
    inputs, output = parse("ab,bc,cd,de,ef,fg,gh->ah")
    size_dict = {"a": 2, "b": 3, "c": 3, "d": 7, "e": 4, "f": 6, "g": 6, "h": 5}
    free = optimize(inputs, output, size_dict, method="optimal", use_cache=False)
    assert free.largest_intermediate() == 14
    tree = optimize(
        inputs, output, size_dict, method=method, memory_limit=12, max_time=0.3, use_cache=False
    )
    assert tree.largest_intermediate() <= 12


def test_slicing_fits_and_sums_to_the_full_result() -> None:
    equation = "ab,bc,cd,da,ae,ce->e"
    inputs, output = parse(equation)
    size_dict = {"a": 6, "b": 7, "c": 6, "d": 5, "e": 3}
    tree = optimize(inputs, output, size_dict, method="optimal", use_cache=False)
    limit = 10
    sliced = slice_tree(tree, limit)
    assert sliced.largest_intermediate <= limit
    assert set(sliced.sliced).isdisjoint(output)
    assert sliced.num_slices == int(np.prod([size_dict[x] for x in sliced.sliced]))
    assert sliced.overhead >= 1.0
    for number in range(sliced.num_slices):
        _, sizes = sliced.slice(number)
        assert tree.largest_intermediate(sliced.sliced) <= limit
        assert all(sizes[x] == 1 for x in sliced.sliced)
    arrays = random_arrays(inputs, size_dict, seed=5)
    np.testing.assert_allclose(
        execute_sliced(sliced, arrays), direct(inputs, output, arrays), rtol=1e-9
    )
    assert SlicedTree.from_json(sliced.to_json()) == sliced
    assert "Sliced indices" in str(PathReport(tree, sliced))


@pytest.mark.parametrize(
    "equation", ["ijab,acik,bcjk->", "pqrs,pi,qj,rk,sl->ijkl", "abc,cde,efa->bdf"]
)
def test_contraction_tree_slices_when_needed(equation: str) -> None:
    inputs, output = parse(equation)
    size_dict = {x: 4 for term in inputs for x in term}
    output_size = 4 ** len(output)
    limit = max(output_size, 16)
    result = contraction_tree(inputs, output, size_dict, memory_limit=limit)
    arrays = random_arrays(inputs, size_dict, seed=1)
    if isinstance(result, SlicedTree):
        assert result.largest_intermediate <= limit
        got = execute_sliced(result, arrays)
    else:
        assert result.largest_intermediate() <= limit
        got = execute_sliced(slice_tree(result, limit), arrays)
    np.testing.assert_allclose(got, direct(inputs, output, arrays), rtol=1e-9, atol=1e-12)


def test_slice_assignments_cover_every_combination() -> None:
    inputs, output = parse("ab,bc,cd->")
    tree = optimize(inputs, output, {"a": 2, "b": 3, "c": 4, "d": 2}, method="optimal")
    sliced = slice_tree(tree, 1)
    seen = {tuple(sorted(sliced.slice_assignment(s).items())) for s in range(sliced.num_slices)}
    assert len(seen) == sliced.num_slices
    with pytest.raises(IndexError):
        sliced.slice_assignment(sliced.num_slices)


def test_impossible_limit_names_the_smallest_feasible_one() -> None:
    inputs, output = parse("ia,ja,ka->ijk")
    size_dict = {"i": 5, "j": 6, "k": 7, "a": 9}
    with pytest.raises(MemoryBudgetError, match="smallest feasible memory_limit is 210"):
        contraction_tree(inputs, output, size_dict, memory_limit=100)
    assert issubclass(MemoryBudgetError, TccError)
    result = contraction_tree(inputs, output, size_dict, memory_limit=210)
    if isinstance(result, SlicedTree):
        assert result.largest_intermediate <= 210
    else:
        assert result.largest_intermediate() <= 210


def test_unsliced_tree_passes_through() -> None:
    inputs, output = parse("ij,jk->ik")
    result = contraction_tree(inputs, output, {"i": 2, "j": 2, "k": 2}, memory_limit=100)
    assert isinstance(result, ContractionTree)
    sliced = slice_tree(result, 100)
    assert sliced.sliced == () and sliced.num_slices == 1 and sliced.overhead == 1.0

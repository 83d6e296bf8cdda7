"""ContractionTree formats: numpy paths, SSA paths, JSON, reports, errors, caching."""

from __future__ import annotations

import json

import numpy as np
import opt_einsum as oe
import pytest
from test_order_corpus import CORPUS, check_tree, parse, random_sizes

from tcc.errors import TccError
from tcc.passes.order import (
    PATH_CACHE,
    ContractionTree,
    PathReport,
    contraction_tree,
    einsum_path_numpy_format,
    get_optimizer,
    optimize,
    register,
)


def _network(equation: str):
    inputs, output = parse(equation)
    return inputs, output, random_sizes([label for term in inputs for label in term], seed=1)


@pytest.mark.parametrize("equation", CORPUS)
def test_path_round_trip(equation: str) -> None:
    inputs, output, size_dict = _network(equation)
    tree = optimize(inputs, output, size_dict, method="greedy", use_cache=False)
    again = ContractionTree.from_path(inputs, output, size_dict, tree.path())
    assert again == tree
    assert ContractionTree.from_ssa_path(inputs, output, size_dict, tree.ssa_path()) == tree
    assert ContractionTree.from_json(tree.to_json()) == tree
    assert json.loads(tree.to_json())["ssa_path"] == [list(p) for p in tree.ssa_path()]


@pytest.mark.parametrize("equation", [e for e in CORPUS if "," in e.split("->")[0]])
@pytest.mark.parametrize("strategy", ["greedy", "optimal"])
def test_numpy_paths_are_accepted(equation: str, strategy: str) -> None:
    inputs, output, size_dict = _network(equation)
    arrays = [np.ones([size_dict[label] for label in term]) for term in inputs]
    numpy_path, _ = np.einsum_path(equation, *arrays, optimize=strategy)
    tree = optimize(inputs, output, size_dict, method=numpy_path)
    check_tree(tree, inputs, output, size_dict)
    assert einsum_path_numpy_format(tree)[0] == "einsum_path"


@pytest.mark.parametrize("equation", [e for e in CORPUS if e.count(",") >= 2])
def test_flops_match_opt_einsum(equation: str) -> None:
    inputs, output, size_dict = _network(equation)
    tree = optimize(inputs, output, size_dict, method="optimal", use_cache=False)
    shapes = [tuple(size_dict[label] for label in term) for term in inputs]
    _, info = oe.contract_path(equation, *shapes, shapes=True, optimize=tree.path())
    assert tree.flops() == info.opt_cost


def test_multi_operand_and_single_steps_decompose() -> None:
    inputs, output, size_dict = _network("ab,bc,cd,de->ae")
    tree = ContractionTree.from_path(inputs, output, size_dict, [(3,), (0, 1, 2), (0, 1)])
    assert len(tree.ssa_path()) == 3
    check_tree(tree, inputs, output, size_dict)
    all_at_once = ContractionTree.from_path(
        inputs, output, size_dict, ["einsum_path", (0, 1, 2, 3)]
    )
    check_tree(all_at_once, inputs, output, size_dict)
    single = ContractionTree.from_path([("a", "b")], ("a",), {"a": 2, "b": 3}, [(0,)])
    assert single.path() == [(0,)]
    assert single.flops() == 12


@pytest.mark.parametrize(
    "path",
    [
        [(0, 1)],
        [(0, 5), (0, 1)],
        [(0, 0), (0, 1)],
        ["not_a_path", (0, 1)],
        [(0, 1), (0, 1), (0, 1)],
    ],
)
def test_bad_paths_raise(path) -> None:
    inputs, output, size_dict = _network("ab,bc,cd->ad")
    with pytest.raises(TccError):
        ContractionTree.from_path(inputs, output, size_dict, path)


def test_bad_networks_raise() -> None:
    with pytest.raises(TccError, match="appears in no operand"):
        optimize([("a", "b")], ("c",), {"a": 2, "b": 2, "c": 2})
    with pytest.raises(TccError, match="no size"):
        optimize([("a", "b")], ("a",), {"a": 2})
    with pytest.raises(TccError, match="unknown path optimizer"):
        optimize([("a", "b"), ("b",)], ("a",), {"a": 2, "b": 2}, method="nope")
    with pytest.raises(TccError, match="objective"):
        optimize([("a", "b"), ("b",)], ("a",), {"a": 2, "b": 2}, objective="speed")


def test_steps_classify_kernels() -> None:
    inputs, output, size_dict = _network("ij,jk->ik")
    (step,) = optimize(inputs, output, size_dict).steps()
    assert step.kind == "gett" and step.groups.k == ("j",) and step.summed == ("j",)
    inputs, output, size_dict = _network("ij,ij->ij")
    (step,) = optimize(inputs, output, size_dict).steps()
    assert step.kind == "loop_nest" and step.flops == size_dict["i"] * size_dict["j"]
    inputs, output, size_dict = _network("bij,bjk->bik")
    (step,) = optimize(inputs, output, size_dict).steps()
    assert step.kind == "gett" and step.groups.batch == ("b",)


def test_report_looks_like_numpy() -> None:
    equation = "ea,fb,abcd,gc,hd->efgh"
    inputs, output, size_dict = _network(equation)
    tree = optimize(inputs, output, size_dict, method="optimal")
    text = str(PathReport(tree))
    arrays = [np.ones([size_dict[label] for label in term]) for term in inputs]
    _, numpy_text = np.einsum_path(equation, *arrays, optimize=einsum_path_numpy_format(tree))
    for key in ["Complete contraction", "Naive scaling", "Optimized scaling", "Naive FLOP count"]:
        ours = next(line for line in text.splitlines() if key in line)
        theirs = next(line for line in numpy_text.splitlines() if key in line)
        assert ours == theirs
    for key in ["Optimized FLOP count", "Theoretical speedup"]:  # numpy adds 1 to its opt cost
        ours = next(line for line in text.splitlines() if key in line)
        theirs = next(line for line in numpy_text.splitlines() if key in line)
        assert float(ours.split()[-1]) == pytest.approx(float(theirs.split()[-1]), rel=1e-2)
    assert "gett" in text or "loop_nest" in text
    assert "step" in str(tree)


def test_numpy_optimize_values() -> None:
    inputs, output, size_dict = _network("ab,bc,cd->ad")
    assert optimize(inputs, output, size_dict, method=True) == optimize(
        inputs, output, size_dict, "greedy"
    )
    naive = optimize(inputs, output, size_dict, method=False)
    assert naive.path() == [(0, 1), (0, 1)]
    explicit = contraction_tree(inputs, output, size_dict, optimize=[(1, 2), (0, 1)])
    assert explicit.path() == [(1, 2), (0, 1)]


def test_cache_shares_relabelled_networks() -> None:
    PATH_CACHE.clear()
    sizes = {"i": 3, "j": 4, "k": 5, "l": 6}
    first = optimize([("i", "j"), ("j", "k"), ("k", "l")], ("i", "l"), sizes, method="dp")
    renamed = {"a": 3, "b": 4, "c": 5, "d": 6}
    second = optimize([("a", "b"), ("b", "c"), ("c", "d")], ("a", "d"), renamed, method="dp")
    assert PATH_CACHE.hits == 1 and first.ssa_path() == second.ssa_path()


def test_register_custom_optimizer() -> None:
    @register("test-reverse")
    def reverse(network, *, memory_limit, max_time, objective, seed):
        n = network.num_operands
        return [(n - 1, n - 2)] + [(n - 3 - k, n + k) for k in range(n - 2)]

    assert get_optimizer("test-reverse") is reverse
    inputs, output, size_dict = _network("ab,bc,cd,de->ae")
    check_tree(
        optimize(inputs, output, size_dict, method="test-reverse"), inputs, output, size_dict
    )


def test_plot_needs_matplotlib(tmp_path) -> None:
    inputs, output, size_dict = _network("ab,bc,cd->ad")
    tree = optimize(inputs, output, size_dict)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(TccError, match="pip install matplotlib"):
            tree.plot()
    else:
        tree.plot(str(tmp_path / "tree.png"))
        assert (tmp_path / "tree.png").exists()

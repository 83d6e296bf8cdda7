"""Every path optimizer on a corpus of multi-operand einsums, checked against numpy.

numpy.einsum is the reference executor here (tests only): each tree is run pairwise,
step by step, and compared with one direct ``numpy.einsum`` call. Other
``test_order_*`` files import the corpus and executors from this module.
"""

from __future__ import annotations

import random
import string

import numpy as np
import pytest

from tcc.passes.order import ContractionTree, SlicedTree, available_optimizers, optimize

CORPUS = [
    "ij,jk->ik",
    "ij,jk,kl->il",
    "ij,jk,kl,lm,mn->in",  # matrix chain
    "ab,bc,cd,de,ef,fg,gh->ah",
    "abc,ia,jb,kc->ijk",  # Tucker
    "zui,zvj,ijk,uvw->zwk",
    "ea,fb,abcd,gc,hd->efgh",
    "ia,ab,bj->ij",
    "a,ab,bc,c->",  # scalar output
    "ab,bc,ca->",  # triangle
    "ai,bj,ck,ijk->abc",
    "ij,ij,ij->i",  # hyperedge
    "ia,ja,ka->ijk",  # hyperedge with outer output
    "ij,ij,ij->",
    "bi,oij,bj->bo",  # bilinear
    "biu,bjv,ijk,uvw->bkw",  # CG product
    "a,b,c->abc",  # pure outer product
    "ab,cd->abcd",
    "ab,bc,de,ef->af",  # disconnected
    "ab,bc,de,ef->adcf",
    "ii,ij,jk->k",  # repeated index (diagonal)
    "iij,jk,kl->il",
    "ab,ab->ab",  # Hadamard
    "abc,abd,abe->cde",  # batch-like hyperedges
    "ijab,acik,bcjk->",  # coupled-cluster-like energy
    "abij,cdab,cdij->",
    "ijab,kica,kjcb->",  # CC doubles-like
    "pqrs,pi,qj,rk,sl->ijkl",  # 4-index transform
    "ax,xby,ycz,zdw,we->abcde",  # MPS-like chain open
    "ab,bcd,def,fg->aceg",
    "abc,cde,efa->bdf",
    "ij,jk,ki,il->l",
    "abcd,cdef,efab->",
    "a,a,a,a->a",
    "ab,b,c,cd->ad",
    "abc->ab",  # single operand
    "ij,jk,kl,li->",  # ring trace
    "ab,bc,cd,da,ac->",
]

OPTIMIZERS = ["optimal", "dp", "greedy", "random-greedy", "hyper", "auto", "naive"]


def parse(equation: str) -> tuple[list[tuple[str, ...]], tuple[str, ...]]:
    lhs, rhs = equation.split("->")
    return [tuple(term) for term in lhs.split(",")], tuple(rhs)


def random_sizes(labels, seed: int = 0, low: int = 2, high: int = 5) -> dict:
    rng = random.Random(seed)
    return {label: rng.randint(low, high) for label in sorted(set(labels), key=repr)}


def random_arrays(inputs, size_dict, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal([size_dict[label] for label in term]) for term in inputs]


def _symbols(tree: ContractionTree) -> dict:
    letters = iter(string.ascii_letters)
    return {label: next(letters) for label, _ in tree.sizes}


def execute(tree: ContractionTree, arrays: list[np.ndarray]) -> np.ndarray:
    """Run ``tree`` pairwise with numpy.einsum (the test-only reference executor)."""
    symbols = _symbols(tree)

    def text(term) -> str:
        return "".join(symbols[label] for label in term)

    if tree.num_inputs == 1:
        return np.einsum(f"{text(tree.inputs[0])}->{text(tree.output)}", arrays[0])
    values = list(arrays)
    for step in tree.steps():
        equation = f"{text(step.left_labels)},{text(step.right_labels)}->{text(step.result_labels)}"
        values.append(np.einsum(equation, values[step.left], values[step.right]))
    return values[-1]


def direct(inputs, output, arrays) -> np.ndarray:
    letters = iter(string.ascii_letters)
    symbols: dict = {}
    for term in [*inputs, output]:
        for label in term:
            symbols.setdefault(label, next(letters))
    lhs = ",".join("".join(symbols[label] for label in term) for term in inputs)
    equation = f"{lhs}->{''.join(symbols[label] for label in output)}"
    # numpy's own greedy path keeps big networks fast and is independent of tcc's paths.
    return np.einsum(equation, *arrays, optimize="greedy" if len(arrays) > 4 else False)


def execute_sliced(sliced: SlicedTree, arrays: list[np.ndarray]) -> np.ndarray:
    """Sum the results of every slice (inputs sliced with length-1 ranges)."""
    tree = sliced.tree
    total = None
    for number in range(sliced.num_slices):
        values, _ = sliced.slice(number)
        parts = []
        for term, array in zip(tree.inputs, arrays, strict=True):
            index = tuple(
                slice(values[label], values[label] + 1) if label in values else slice(None)
                for label in term
            )
            parts.append(array[index])
        result = execute(tree, parts)
        total = result if total is None else total + result
    return total


def check_tree(tree: ContractionTree, inputs, output, size_dict, seed: int = 0) -> None:
    arrays = random_arrays(inputs, size_dict, seed)
    np.testing.assert_allclose(
        execute(tree, arrays), direct(inputs, output, arrays), rtol=1e-9, atol=1e-9
    )


def test_corpus_is_big_enough():
    assert len(CORPUS) >= 30
    assert set(OPTIMIZERS) <= set(available_optimizers())


@pytest.mark.parametrize("method", OPTIMIZERS)
@pytest.mark.parametrize("equation", CORPUS)
def test_optimizer_executes_correctly(equation: str, method: str) -> None:
    inputs, output = parse(equation)
    size_dict = random_sizes([label for term in inputs for label in term], seed=len(equation))
    tree = optimize(inputs, output, size_dict, method=method, max_time=0.2, use_cache=False)
    assert isinstance(tree, ContractionTree)
    assert len(tree.ssa_path()) == max(0, len(inputs) - 1)
    check_tree(tree, inputs, output, size_dict)


@pytest.mark.parametrize("equation", CORPUS)
def test_int_labels_work(equation: str) -> None:
    inputs, output = parse(equation)
    rename = {label: 100 + ord(label) for term in inputs for label in term}
    int_inputs = [tuple(rename[label] for label in term) for term in inputs]
    int_output = tuple(rename[label] for label in output)
    size_dict = {rename[label]: size for label, size in random_sizes(rename, seed=3).items()}
    tree = optimize(int_inputs, int_output, size_dict, method="auto", use_cache=False)
    check_tree(tree, int_inputs, int_output, size_dict)

"""The corpus against ``numpy.einsum``: dtypes x memory layouts x ``optimize`` values."""

from __future__ import annotations

import numpy as np
import pytest
from corpus import CORPUS, Case, by_name, tolerance
from layouts import LAYOUTS, as_layout, check_same_values

import tcc

OPTIMIZE = (False, True, "auto")

# A subset that covers every rule, for the dtypes and layouts that multiply the test count.
SUBSET = [
    by_name(n)
    for n in (
        "transpose", "sum_axis", "diagonal", "trace", "tiijj", "gemm", "gemm_tn", "dot",
        "outer", "attention_scores", "diag_contract", "scalar_times_matrix", "bcast_left",
        "bcast_diag", "ellipsis_bcast", "ellipsis_middle", "zero_reduced", "zero_multi",
        "tucker", "bilinear", "cg_product", "triple_product", "hadamard_reduce",
        "mps_chain", "cc_transpose", "cc_energy", "multi_ellipsis", "ring_trace",
    )
]
SMALL_DTYPES = ("bool", "float16", "int8", "int16", "int32", "uint8", "uint16", "uint32",
                "uint64", "complex64")
SMALL_SUBSET = [by_name(n) for n in ("gemm", "trace", "hadamard_reduce", "tucker",
                                     "ellipsis_bcast", "zero_reduced", "scalar_times_matrix",
                                     "diag_contract")]


def seed_of(case: Case, *extra: object) -> int:
    return sum(map(ord, case.name + repr(extra))) % 2**32


def check(case: Case, operands: list[np.ndarray], optimize: object) -> None:
    numpy_optimize = True if optimize == "auto" else optimize
    expected = case.reference(operands, optimize=numpy_optimize)
    result = tcc.einsum(case.equation, *operands, optimize=optimize)
    assert np.shape(result) == np.shape(expected)
    assert result.dtype == expected.dtype, (result.dtype, expected.dtype)
    if np.ndim(expected) == 0:
        assert not isinstance(result, np.ndarray), "0-d results come back as numpy scalars"
        assert isinstance(result, np.generic)
    np.testing.assert_allclose(result, expected, **tolerance(expected.dtype))


def test_corpus_is_big_and_well_formed():
    assert len(CORPUS) >= 70
    assert len({case.name for case in CORPUS}) == len(CORPUS)
    for case in CORPUS:
        assert all(size <= 8 for shape in case.shapes for size in shape), case
        assert case.n_operands == len(case.equation.split("->")[0].split(","))


@pytest.mark.parametrize("optimize", OPTIMIZE, ids=str)
@pytest.mark.parametrize("case", CORPUS, ids=str)
def test_float64(case: Case, optimize: object) -> None:
    rng = np.random.default_rng(seed_of(case))
    check(case, case.operands(rng, "float64"), optimize)


@pytest.mark.parametrize("dtype", ["float32", "complex128", "int64"])
@pytest.mark.parametrize("case", SUBSET, ids=str)
def test_dtypes(case: Case, dtype: str) -> None:
    rng = np.random.default_rng(seed_of(case, dtype))
    check(case, case.operands(rng, dtype), "auto")


@pytest.mark.parametrize("dtype", SMALL_DTYPES)
@pytest.mark.parametrize("case", SMALL_SUBSET, ids=str)
def test_small_dtypes(case: Case, dtype: str) -> None:
    rng = np.random.default_rng(seed_of(case, dtype))
    check(case, case.operands(rng, dtype), "auto")


@pytest.mark.parametrize("layout", [x for x in LAYOUTS if x != "contiguous"])
@pytest.mark.parametrize("case", CORPUS, ids=str)
def test_layouts(case: Case, layout: str) -> None:
    rng = np.random.default_rng(seed_of(case))
    operands = case.operands(rng, "float64")
    views = [as_layout(a, layout) for a in operands]
    for view, array in zip(views, operands, strict=True):
        check_same_values(view, array)
    check(case, views, "auto")


@pytest.mark.parametrize("optimize", [False, True])
@pytest.mark.parametrize("case", SUBSET, ids=str)
def test_layouts_mixed_with_optimize(case: Case, optimize: object) -> None:
    """Each operand in a different layout, with and without a contraction path."""
    rng = np.random.default_rng(seed_of(case, "mixed"))
    operands = case.operands(rng, "float32")
    views = [as_layout(a, LAYOUTS[k % len(LAYOUTS)]) for k, a in enumerate(operands)]
    check(case, views, optimize)


@pytest.mark.parametrize("case", [c for c in CORPUS if "multi" in c.tags], ids=str)
@pytest.mark.parametrize("optimize", ["greedy", "optimal"])
def test_numpy_path_names(case: Case, optimize: str) -> None:
    rng = np.random.default_rng(seed_of(case))
    check(case, case.operands(rng, "float64"), optimize)


@pytest.mark.parametrize("case", [c for c in CORPUS if "multi" in c.tags], ids=str)
def test_numpy_einsum_path(case: Case) -> None:
    """The path numpy.einsum_path returns, passed back as ``optimize=``."""
    rng = np.random.default_rng(seed_of(case))
    operands = case.operands(rng, "float64")
    path, _ = np.einsum_path(case.equation, *operands, optimize="greedy")
    check(case, operands, path)


@pytest.mark.parametrize("case", SUBSET, ids=str)
def test_repeat_call_hits_the_plan_cache(case: Case) -> None:
    """The second call with the same signature takes the fast path; results stay right."""
    rng = np.random.default_rng(seed_of(case, "repeat"))
    for _ in range(3):
        check(case, case.operands(rng, "float64"), "auto")

"""Parallel loop nests (generic schedule): results equal numpy for any thread count."""

from __future__ import annotations

import re

import numpy as np
import pytest

import tcc
from tcc.options import default_options

CASES = [
    ("ij,ij,ij->i", [(700, 300)] * 3),
    ("bi,oij,bj->bo", [(20, 40), (30, 40, 40), (20, 40)]),
    ("ia,ja,ka->ijk", [(40, 30), (40, 30), (40, 30)]),
    ("ij->ji", [(600, 500)]),
]


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("eq,shapes", CASES, ids=[c[0] for c in CASES])
def test_parallel_generic_nests(eq, shapes, threads, monkeypatch):
    monkeypatch.setattr("tcc.passes.pipeline.PARALLEL_MIN_ITERATIONS", 1 << 15)
    rng = np.random.default_rng(0)
    ops = [rng.standard_normal(s) for s in shapes]
    options = default_options().with_(num_threads=threads)
    kernel = tcc.compile(eq, *shapes, optimize=False, options=options)
    kinds = {getattr(s, "kind", None) for k in kernel._default.compiled.kernels for s in k.body}
    assert ("parallel" in kinds) == (threads > 1)
    np.testing.assert_allclose(kernel(*ops), np.einsum(eq, *ops), rtol=1e-10, atol=1e-10)


# ---- matrix-vector products: every core streams its share of the matrix --------------

GEMV_CASES = [
    ("i,ij->j", [(512,), (512, 1000)]),    # y = x @ W: the outer loop reduces
    ("i,ij->j", [(300,), (300, 777)]),     # rows not a multiple of 8, columns ragged
    ("i,ij->j", [(7,), (7, 4096)]),        # 7 rows: not jammed
    ("i,ji->j", [(512,), (1000, 512)]),    # y = W @ x: dot products, rows 4 at a time
    ("i,ji->j", [(300,), (998, 300)]),     # rows not a multiple of 4
]


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("eq,shapes", GEMV_CASES, ids=[f"{c[0]}-{c[1][1]}" for c in GEMV_CASES])
def test_matrix_vector_products_share_the_matrix(eq, shapes, threads, monkeypatch):
    monkeypatch.setattr("tcc.passes.pipeline.PARALLEL_MIN_ITERATIONS", 1 << 10)
    rng = np.random.default_rng(0)
    ops = [rng.integers(-4, 5, size=s).astype(np.int64) for s in shapes]
    options = default_options().with_(num_threads=threads, verify=True)
    kernel = tcc.compile(eq, *shapes, dtype="int64", options=options)
    text = kernel.ir()
    assert "# parallel" in text
    rows, columns = shapes[1] if eq == "i,ij->j" else shapes[1][::-1]
    if eq == "i,ij->j":  # the columns split into one chunk per thread, rows jammed
        assert re.search(rf"for \w+\.part in 0\.\.{threads}:  # parallel", text)
        assert ("rows in" in text) == (rows % 2 == 0)
    else:
        assert ("rows in" in text) == (columns % 4 == 0)
    np.testing.assert_array_equal(kernel(*ops), np.einsum(eq, *ops))


def test_rename_locals_renames_declarations_assignments_and_reads():
    from tcc.ir import loops as L
    from tcc.passes.schedule.nest import rename_locals

    body = (L.Declare("acc", "float32", L.Const(0.0, "float32")),
            L.For("i", 4, (L.Assign("acc", L.Binary("add", L.Local("acc"), L.Local("x"))),)),
            L.Store("out", L.Affine(), L.Local("acc")))
    renamed = rename_locals(body, {"acc": "acc1"})
    assert renamed[0].name == "acc1" and renamed[1].body[0].name == "acc1"
    assert renamed[1].body[0].value == L.Binary("add", L.Local("acc1"), L.Local("x"))
    assert renamed[2].value == L.Local("acc1")

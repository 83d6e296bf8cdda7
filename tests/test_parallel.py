"""Parallel loop nests (generic schedule): results equal numpy for any thread count."""

from __future__ import annotations

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

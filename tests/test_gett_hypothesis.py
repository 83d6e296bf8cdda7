"""Random pairwise contractions through the GETT template with random blocking and schedule
choices, against ``numpy.einsum``: batch / M / N / K groups of one or two indices in any
order in each operand and in the output, every ``GettParams`` choice (micro-tile, cache
blocks, tile order, prefetch distance, which blocks the threads share, how A is packed)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tcc
from tcc.options import default_options
from tcc.passes.pipeline import vector_bits
from tcc.passes.schedule.blocking import A_PACKINGS, PARALLEL_GROUPS, TILE_ORDERS, GettParams
from tcc.runtime.jit import host_target

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def contractions(draw):
    """(equation, shapes): a GEMM-like contraction of two operands, groups shuffled."""
    labels = iter("abcdefgh")
    groups = {role: [next(labels) for _ in range(draw(st.integers(low, 2)))]
              for role, low in (("batch", 0), ("m", 1), ("n", 1), ("k", 1))}
    sizes = {label: draw(st.integers(1, 9)) for role in groups.values() for label in role}

    def term(*roles: str) -> str:
        return "".join(draw(st.permutations([x for r in roles for x in groups[r]])))

    a, b, out = term("batch", "m", "k"), term("batch", "k", "n"), term("batch", "m", "n")
    if draw(st.booleans()):
        a, b = b, a
    shapes = [tuple(sizes[x] for x in t) for t in (a, b)]
    return f"{a},{b}->{out}", shapes


@st.composite
def blockings(draw, lanes: int):
    # heights of whole vectors (8, 16) pack A by in-register transposes where A is
    # contiguous along K
    mr = draw(st.sampled_from((1, 2, 3, 4, 5, 6, 8, 16)))
    nr = lanes * draw(st.integers(1, 3))
    return GettParams(mr=mr, nr=nr, kc=draw(st.integers(1, 12)),
                      mc=mr * draw(st.integers(1, 3)), nc=nr * draw(st.integers(1, 3)),
                      lanes=lanes, threads=draw(st.integers(1, 3)),
                      order=draw(st.sampled_from(TILE_ORDERS)),
                      prefetch=draw(st.sampled_from((0, 1, 4))),
                      parallel=draw(st.sampled_from(PARALLEL_GROUPS)),
                      pack_a=draw(st.sampled_from(A_PACKINGS)))


@SETTINGS
@given(contraction=contractions(), dtype=st.sampled_from(["float64", "float32", "int64"]),
       data=st.data())
def test_random_contractions_with_random_blocking(contraction, dtype, data):
    eq, shapes = contraction
    lanes = vector_bits(host_target().features) // (8 * np.dtype(dtype).itemsize)
    params = data.draw(blockings(lanes))
    rng = np.random.default_rng(0)
    ops = [rng.integers(-4, 5, size=s).astype(dtype) for s in shapes]
    options = default_options().with_(gett="always", gett_params=params, verify=True,
                                      num_threads=params.threads)
    kernel = tcc.compile(eq, *shapes, dtype=dtype, options=options)
    # small integers: every product and sum is exact in each dtype
    np.testing.assert_array_equal(kernel(*ops), np.einsum(eq, *ops))

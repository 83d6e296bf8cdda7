"""Memory planning: live temporaries never overlap; the arena is no larger than needed."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tcc.passes.memplan import MemoryPlan, Placement, best_fit, plan_memory


def _check(placements: list[Placement]) -> None:
    for a, b in itertools.combinations(placements, 2):
        shares_time = not (a.last < b.first or b.last < a.first)
        shares_space = not (a.offset + a.size <= b.offset or b.offset + b.size <= a.offset)
        assert not (shares_time and shares_space), (a, b)
        assert a.offset % 64 == 0 and b.offset % 64 == 0


buffers = st.lists(
    st.tuples(st.integers(1, 5000), st.integers(0, 9), st.integers(0, 9)), min_size=1,
    max_size=25,
)


@given(buffers)
@settings(max_examples=200, deadline=None)
def test_best_fit_never_overlaps_live_buffers(raw):
    items = [(f"t{k}", size, min(a, b), max(a, b)) for k, (size, a, b) in enumerate(raw)]
    placed = best_fit(items)
    _check(placed)
    # the arena is at least the largest set of simultaneously live buffers
    arena = max(p.offset + p.size for p in placed)
    for t in range(10):
        assert arena >= sum(p.size for p in placed if p.first <= t <= p.last)


def test_disjoint_lifetimes_share_memory():
    placed = best_fit([("a", 1000, 0, 1), ("b", 1000, 2, 3), ("c", 1000, 4, 5)])
    assert {p.offset for p in placed} == {0}


def test_cp_sat_refinement_is_valid_and_no_worse():
    import tcc
    from tcc.frontend.einsum import parse_einsum
    from tcc.frontend.einsum_program import einsum_program

    shapes = [(6, 7), (7, 8), (8, 9), (9, 10), (10, 3)]
    parsed = parse_einsum("ab,bc,cd,de,ef->af", shapes)
    program = einsum_program(parsed, shapes, ["float64"] * 5, "float64", "float64",
                             [(0, 1), (0, 1), (0, 1), (0, 1)])
    plain = plan_memory(program)
    refined = plan_memory(program, solver_time_limit=2.0)
    _check(list(refined.placements))
    assert refined.arena_bytes <= plain.arena_bytes
    assert MemoryPlan.from_json(refined.to_json()) == refined
    ops = [np.random.default_rng(k).random(s) for k, s in enumerate(shapes)]
    np.testing.assert_allclose(tcc.einsum("ab,bc,cd,de,ef->af", *ops),
                               np.einsum("ab,bc,cd,de,ef->af", *ops), rtol=1e-12)

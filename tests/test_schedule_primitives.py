"""Every schedule primitive, transformed vs untransformed vs numpy.einsum on random inputs."""

from __future__ import annotations

import pytest
from test_schedule_support import assert_same_results, einsum_kernel

from tcc.ir.verify import verify_kernel
from tcc.passes.schedule.trace import Schedule

GEMM = ("ij,jk->ik", [(9, 7), (7, 10)])
GEMM_ACC = ("ij,kj->ik", [(9, 7), (10, 7)])  # reduction innermost: a local accumulator
BATCHED = ("bij,bjk->bik", [(3, 5, 6), (3, 6, 8)])
ROWDOT = ("ijk,ijk->ij", [(3, 4, 5), (3, 4, 5)])
SCALE = ("ij,j->ij", [(6, 12), (12,)])
TRANSPOSE = ("ij->ji", [(6, 5)])

# (case id, einsum, dtype, lowering order or None, schedule calls)
CASES = [
    ("split_even", GEMM, "float64", None, [("split", "c#1", 5)]),
    ("split_tail", GEMM, "float64", None, [("split", "a#1", 4), ("split", "c#0", 4)]),
    ("split_twice", GEMM_ACC, "float64", None, [("split", "c", 5), ("split", "c.inner", 2,
                                                                       {"outer": "x"})]),
    ("split_bounded", GEMM, "float64", None, [("split", "c#1", 4), ("split", "c.inner", 2)]),
    ("reorder", GEMM, "float64", None, [("reorder", "c#1", "b", "a#1")]),
    ("reorder_acc", GEMM_ACC, "float32", None, [("reorder", "c", "a")]),
    ("tile", GEMM, "float64", None, [("tile", "a#1", "b", 4, 3)]),
    ("tile_acc", GEMM_ACC, "float32", None, [("tile", "a", "c", 4, 3)]),
    ("tile_batched", BATCHED, "float64", None, [("tile", "b#1", "c", 2, 4)]),
    ("fuse", ROWDOT, "float64", None, [("fuse", "a", "b")]),
    ("fuse_elementwise", ("ij,ij->ij", [(4, 6), (4, 6)]), "float32", None,
     [("fuse", "a", "b"), ("split", "a_b", 8), ("vectorize", "a_b.inner", 8)]),
    ("unroll", GEMM_ACC, "float64", None, [("unroll", "c")]),
    ("unroll_after_split", GEMM, "float64", None, [("split", "c#1", 5), ("unroll", "c.inner")]),
    ("vectorize", GEMM, "float64", None, [("vectorize", "c#1", 4), ("vectorize", "c#0", 2)]),
    ("vectorize_tail", GEMM, "float32", None, [("vectorize", "c#1", 4)]),
    ("vectorize_broadcast", SCALE, "float32", None, [("vectorize", "b", 8)]),
    ("vectorize_split", GEMM, "float32", None, [("split", "c#1", 5),
                                                ("vectorize", "c.inner", 5)]),
    ("vectorize_unroll", GEMM, "float64", None, [("split", "c#1", 5),
                                                 ("vectorize", "c.inner", 5),
                                                 ("unroll", "c.inner")]),
    ("parallel", GEMM, "float64", None, [("parallel", "a#1"), ("parallel", "a#0")]),
    ("parallel_inner", GEMM, "float64", None, [("parallel", "c#1")]),
    ("parallel_acc", GEMM_ACC, "float64", None, [("parallel", "c")]),
    ("parallel_batched", BATCHED, "float64", None, [("parallel", "a#1")]),
    ("pack", GEMM_ACC, "float64", None, [("pack", "in1", "a"), ("pack", "in0", "c")]),
    ("pack_layout", GEMM, "float64", None, [("pack", "in1", "a#1", {"layout": ("c", "b")})]),
    ("pack_tile", GEMM, "float32", None, [("tile", "a#1", "b", 4, 3), ("pack", "in1", "b.outer"),
                                          ("pack", "in0", "b.outer")]),
    ("pack_transpose", TRANSPOSE, "float64", None, [("pack", "in0", "a",)]),
    ("gemm_full", GEMM, "float32", None, [
        ("tile", "a#1", "b", 4, 3), ("pack", "in1", "b.outer"), ("vectorize", "c#1", 4),
        ("parallel", "a.outer"),
        ("vectorize", "c#0", 4), ("parallel", "a")]),
    ("gemm_acc_full", GEMM_ACC, "float64", None, [
        ("tile", "a", "c", 3, 4), ("pack", "in0", "a.outer"), ("unroll", "a.inner"),
        ("parallel", "a.outer")]),
]


def run_schedule(kernel, calls):
    schedule = Schedule(kernel, verify=True)
    for call in calls:
        name, *args = call
        kwargs = args.pop() if args and isinstance(args[-1], dict) else {}
        getattr(schedule, name)(*args, **kwargs)
    return schedule


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_schedule_keeps_results(case):
    _, (equation, shapes), dtype, order, calls = case
    kernel = einsum_kernel(equation, shapes, dtype, order)
    schedule = run_schedule(kernel, calls)
    verify_kernel(schedule.kernel)
    assert schedule.kernel != kernel
    assert schedule.trace.apply(kernel) == schedule.kernel
    assert_same_results(equation, kernel, schedule.kernel)


def test_every_primitive_is_covered():
    used = {call[0] for case in CASES for call in case[4]}
    assert used == {"split", "reorder", "fuse", "tile", "unroll", "vectorize", "parallel",
                    "pack"}

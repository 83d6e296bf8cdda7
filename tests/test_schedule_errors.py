"""Illegal schedule primitives raise ScheduleError with the reason."""

from __future__ import annotations

import pytest
from test_schedule_support import einsum_kernel

from tcc.errors import ScheduleError
from tcc.ir import loops as L
from tcc.passes.schedule import primitives as S


def acc():  # for a: for c: acc = 0; for b: acc += A[a,b] B[b,c]; C[a,c] = acc
    return einsum_kernel("ij,jk->ik", [(4, 3), (3, 6)], order=["a", "c", "b"])


def mem():  # C = 0; for a: for b: for c: C[a,c] += A[a,b] B[b,c]
    return einsum_kernel("ij,jk->ik", [(4, 3), (3, 6)])


ILLEGAL = [
    ("unknown loop", lambda: S.split(acc(), "z", 2), "no loop 'z'"),
    ("ambiguous loop", lambda: S.split(mem(), "a", 2), "ambiguous"),
    ("bad factor", lambda: S.split(acc(), "c", 0), "positive integer"),
    ("name taken", lambda: S.split(acc(), "c", 2, outer="a"), "taken"),
    ("bounded split", lambda: S.split(S.split(acc(), "c", 4), "c.inner", 3), "run-time bound"),
    ("not perfectly nested", lambda: S.reorder(acc(), "b", "a"), "not perfectly nested"),
    ("bound dependence",
     lambda: S.reorder(S.split(acc(), "c", 4), "c.inner", "c.outer"), "depends on"),
    ("reorder parallel", lambda: S.reorder(S.parallel(acc(), "a"), "c", "a"), "parallel"),
    ("reorder unrolled stores",
     lambda: S.reorder(S.unroll(mem(), "c#1"), "b", "a#1"), "several indices"),
    ("fuse needs div/mod", lambda: S.fuse(acc(), "a", "c"), "div/mod"),
    ("fuse not nested", lambda: S.fuse(mem(), "a#1", "c#1"), "only statement"),
    ("unroll bounded", lambda: S.unroll(S.split(acc(), "c", 4), "c.inner"), "run-time bound"),
    ("unroll too big", lambda: S.unroll(acc(), "a", max_statements=10), "exceed"),
    ("vectorize outer loop", lambda: S.vectorize(acc(), "a", 2), "innermost"),
    ("vectorize reduction", lambda: S.vectorize(acc(), "b", 2), "reduced across"),
    ("vectorize stride", lambda: S.vectorize(S.reorder(mem(), "c#1", "a#1"), "a#1", 2),
     "stride"),
    ("vectorize int", lambda: S.vectorize(
        einsum_kernel("ij,jk->ik", [(4, 3), (3, 8)], "int32"), "c#1", 4), "int32"),
    ("vectorize exp-free ops only", lambda: S.vectorize(
        einsum_kernel("ij,ij->ij", [(4, 3), (4, 3)], "float16"), "b", 3), "dtype"),
    ("parallel reduction in memory", lambda: S.parallel(mem(), "b"), "same element"),
    ("parallel outer local", lambda: S.parallel(acc(), "b"), "local 'acc'"),
    ("nested parallel", lambda: S.parallel(S.parallel(acc(), "a"), "c"), "nested"),
    ("parallel twice", lambda: S.parallel(S.parallel(acc(), "a"), "a"), "parallel"),
    ("pack output", lambda: S.pack(acc(), "out", "a"), "only kernel inputs"),
    ("pack unread", lambda: S.pack(S.pack(acc(), "in1", "a"), "in1", "c", name="p"),
     "does not read"),
    ("pack bad layout", lambda: S.pack(acc(), "in1", "a", layout=("c",)), "layout"),
    ("pack after vectorize",
     lambda: S.pack(S.vectorize(mem(), "c#1", 2), "in1", "a#1"), "vector"),
    ("pack several indices", lambda: S.pack(S.unroll(acc(), "b"), "in0", "a"),
     "several indices"),
]


@pytest.mark.parametrize("case", ILLEGAL, ids=[c[0] for c in ILLEGAL])
def test_illegal_primitive_raises_with_reason(case):
    _, call, reason = case
    with pytest.raises(ScheduleError, match=reason):
        call()


def test_schedule_error_is_a_value_error():
    with pytest.raises(ValueError):
        S.split(acc(), "z", 2)


def test_parallel_accepts_interleaved_disjoint_rows():
    # c.inner iterations write the even and the odd elements of each row: disjoint
    kernel = S.parallel(S.reorder(S.split(mem(), "c#1", 2), "c.inner", "c.outer"), "c.inner")
    assert any(getattr(s, "kind", "") == "parallel" for s in L.walk(kernel.body))

"""Schedules as traces: printing, JSON round trips, replay, the Schedule builder."""

from __future__ import annotations

import json

import pytest
from test_schedule_support import einsum_kernel

from tcc.errors import ScheduleError
from tcc.ir.verify import verify_kernel
from tcc.passes.schedule import primitives as S
from tcc.passes.schedule.trace import Schedule, Step, Trace


def gemm():
    return einsum_kernel("ij,jk->ik", [(8, 5), (5, 12)], "float32")


def build() -> Schedule:
    s = Schedule(gemm())
    s.tile("a#1", "b", 4, 2)
    s.pack("in1", "b.outer", layout=("b.inner", "c"))
    s.split("c#1", 4, outer="co", inner="ci")
    s.vectorize("ci", 4)
    s.parallel("a.outer")
    s.unroll("a.inner")
    return s


def test_builder_records_and_applies():
    s = build()
    assert len(s.trace) == 6
    assert s.trace.steps[0] == Step("tile", ("a#1", "b", 4, 2), ())
    assert s.trace.steps[1].kwargs == (("layout", ("b.inner", "c")),)
    verify_kernel(s.kernel)
    assert s.trace.apply(gemm()) == s.kernel
    assert s.original == gemm()


def test_str_prints_one_call_per_line():
    assert str(build().trace) == "\n".join([
        "tile(a#1, b, 4, 2)",
        "pack(in1, b.outer, layout=(b.inner, c))",
        "split(c#1, 4, inner=ci, outer=co)",
        "vectorize(ci, 4)",
        "parallel(a.outer)",
        "unroll(a.inner)",
    ])
    s = Schedule(einsum_kernel("ij->ij", [(4, 32)]))
    s.split("b", 16)
    s.vectorize("b.inner", 16)
    assert str(s.trace) == "split(b, 16)\nvectorize(b.inner, 16)"


def test_json_round_trip_and_replay():
    s = build()
    text = s.trace.to_json()
    json.loads(text)  # plain JSON
    again = Trace.from_json(text)
    assert again == s.trace
    assert again.to_json() == text
    assert Trace.from_json(json.loads(text)) == s.trace
    replayed = again.apply(gemm(), verify=True)
    assert replayed == s.kernel
    assert hash(again) == hash(s.trace)


def test_failed_call_is_not_recorded():
    s = Schedule(gemm())
    s.split("c#1", 4)
    before = (s.kernel, s.trace)
    with pytest.raises(ScheduleError):
        s.vectorize("a#1", 4)
    assert (s.kernel, s.trace) == before


def test_unknown_primitive_and_bad_arguments():
    with pytest.raises(ScheduleError, match="unknown schedule primitive"):
        Step.of("shuffle", "a")
    with pytest.raises(ScheduleError, match="strings, integers"):
        Step.of("split", "a", 2.5)


def test_empty_trace_is_identity():
    assert Trace().apply(gemm()) == gemm()
    assert Trace.from_json(Trace().to_json()) == Trace()


def test_step_apply_matches_function():
    k = gemm()
    assert Step.of("split", "c#1", 3, outer="x").apply(k) == S.split(k, "c#1", 3, outer="x")

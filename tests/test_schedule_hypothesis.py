"""Random sequences of legal primitives on small kernels keep results equal."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_schedule_support import assert_same_results, einsum_kernel

from tcc.errors import ScheduleError
from tcc.ir import loops as L
from tcc.ir.verify import verify_kernel
from tcc.passes.schedule.primitives import find_loop
from tcc.passes.schedule.trace import Schedule, Trace

EQUATIONS = [
    ("ij,jk->ik", [(5, 4), (4, 6)], None),
    ("ij,jk->ik", [(5, 4), (4, 6)], ["a", "c", "b"]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)], None),
    ("ijk->ij", [(3, 4, 5)], None),
    ("ij,j->ij", [(4, 8), (8,)], None),
]


def loop_names(kernel: L.Kernel) -> list[str]:
    """Every loop, named so that the name is unambiguous."""
    loops = [s.var for s in L.walk(kernel.body) if isinstance(s, L.For)]
    names = []
    for var in dict.fromkeys(loops):
        count = loops.count(var)
        names += [var] if count == 1 else [f"{var}#{k}" for k in range(count)]
    return names


def attempt(schedule: Schedule, data) -> None:
    """Try one random primitive; illegal choices raise ScheduleError and change nothing."""
    kernel = schedule.kernel
    names = loop_names(kernel)
    if not names:  # everything was unrolled: nothing left to schedule
        return
    loop = data.draw(st.sampled_from(names))
    primitive = data.draw(st.sampled_from(
        ["split", "reorder", "fuse", "tile", "unroll", "vectorize", "parallel", "pack"]))
    site = find_loop(kernel, loop)
    inner = site.loop.body[0] if len(site.loop.body) == 1 else None
    inner_name = None
    if isinstance(inner, L.For):
        inner_name = next((n for n in names if find_loop(kernel, n).loop is inner), None)
    try:
        if primitive == "split":
            schedule.split(loop, data.draw(st.integers(1, 5)))
        elif primitive == "reorder" and inner_name:
            schedule.reorder(inner_name, loop)
        elif primitive == "fuse" and inner_name:
            schedule.fuse(loop, inner_name)
        elif primitive == "tile" and inner_name:
            schedule.tile(loop, inner_name, data.draw(st.integers(1, 4)),
                          data.draw(st.integers(1, 4)))
        elif primitive == "unroll":
            schedule.unroll(loop, max_statements=64)
        elif primitive == "vectorize":
            schedule.vectorize(loop, data.draw(st.sampled_from([2, 4])))
        elif primitive == "parallel":
            schedule.parallel(loop)
        elif primitive == "pack":
            inputs = [b.name for b in kernel.buffers if b.role == "in"]
            schedule.pack(data.draw(st.sampled_from(inputs)), loop)
    except ScheduleError as error:
        assert str(error)
        assert schedule.kernel is kernel


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EQUATIONS), st.sampled_from(["float32", "float64"]), st.data())
def test_random_legal_schedules_keep_results(case, dtype, data):
    equation, shapes, order = case
    kernel = einsum_kernel(equation, shapes, dtype, order)
    schedule = Schedule(kernel, verify=True)
    for _ in range(data.draw(st.integers(1, 5))):
        attempt(schedule, data)
    verify_kernel(schedule.kernel)
    assert Trace.from_json(schedule.trace.to_json()).apply(kernel) == schedule.kernel
    assert_same_results(equation, kernel, schedule.kernel, seed=len(schedule.trace))

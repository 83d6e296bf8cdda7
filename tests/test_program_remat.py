"""Compiled programs under a memory budget: same outputs, arena within the budget
(planned and measured), clear errors for budgets that cannot work."""

from __future__ import annotations

import numpy as np
import pytest

import tcc
from tcc.remat import simulate

MLP = """
    H1[b,h] = relu(sum_i X[b,i] * W1[h,i])
    H2[b,g] = tanh(sum_h H1[b,h] * W2[g,h])
    H3[b,f] = relu(sum_g H2[b,g] * W3[f,g])
    Y[b,o]  = sum_f H3[b,f] * W4[o,f]
    L[]     = sum_{b,o} (Y[b,o] - T[b,o])^2
"""


@pytest.fixture(scope="module")
def training_step():
    prog = tcc.program(MLP, shapes=dict(b=16, i=24, h=40, g=32, f=40, o=8), dtype="float64")
    step = tcc.grad(prog, of="L", wrt=["W1", "W2", "W3", "W4"])
    rng = np.random.default_rng(0)
    args = {n: rng.standard_normal(step.tensor(n).shape) * 0.3 for n in step.inputs}
    full = tcc.compile_program(step)
    return step, args, full, full(args)


def test_no_budget_measures_the_planned_arena(training_step):
    _, _, full, _ = training_step
    assert full.stats.peak_bytes is not None
    assert 0 < full.stats.peak_bytes <= full.memory_plan.arena_bytes


@pytest.mark.parametrize("fraction", [0.9, 0.75, 0.6])
def test_budget_holds_and_outputs_match(training_step, fraction):
    step, args, full, reference = training_step
    budget = int(full.memory_plan.arena_bytes * fraction)
    try:
        compiled = tcc.compile_program(step, memory_budget=budget, remat_time_limit=5)
    except tcc.MemoryBudgetError as exc:
        assert "smallest" in str(exc) or "allow about" in str(exc)
        return
    out = compiled(args)
    for name, value in reference.items():
        np.testing.assert_allclose(out[name], value, rtol=1e-10, atol=1e-12)
    assert compiled.memory_plan.arena_bytes <= budget
    assert compiled.stats.peak_bytes <= budget
    plan = compiled.remat_plan
    from tcc.passes.execution import remat_graph

    graph, *_ = remat_graph(compiled.program)  # the program as compiled (after fusion)
    assert simulate(graph, plan).peak <= budget


def test_recomputation_happens_when_memory_is_tight(training_step):
    step, args, full, reference = training_step
    from tcc.passes.execution import remat_graph
    from tcc.remat import lower_bound

    graph, *_ = remat_graph(step)
    budget = max(lower_bound(graph), int(full.memory_plan.arena_bytes * 0.55))
    compiled = tcc.compile_program(step, memory_budget=budget + 4096, remat_time_limit=5)
    out = compiled(args)
    for name, value in reference.items():
        np.testing.assert_allclose(out[name], value, rtol=1e-10, atol=1e-12)
    assert compiled.stats.peak_bytes <= budget + 4096


def test_impossible_budget_names_the_smallest(training_step):
    step, *_ = training_step
    with pytest.raises(tcc.MemoryBudgetError, match="smallest budget"):
        tcc.compile_program(step, memory_budget="1KB", remat_time_limit=2)

"""Checkmate-style MILP baseline (Jain et al., MLSys 2020), built in CP-SAT.

Booleans ``R[t][i]`` (node ``i`` is computed in stage ``t``, ``i <= t``, ``R[t][t] = 1``)
and ``S[t][i]`` (node ``i`` is kept from stage ``t-1`` into stage ``t``). A compute needs
each input computed earlier in the same stage or kept into it; only what was computed or
kept in stage ``t`` can be kept into ``t+1``; outputs are kept past the last stage.

Memory, simplified (documented deviation from Checkmate's per-operation free variables):
a stage's memory is everything kept into it plus everything computed in it, all counted
at once: ``sum_i S[t][i] size_i + sum_i R[t][i] size_i <= budget``. That is exact for the
in-order schedule and conservative with recomputes, so every answer fits (the simulator
frees earlier than the model assumes). No hint, no copy limit: a baseline only.
"""

from __future__ import annotations

import time

from tcc.passes.remat.cpsat import CpResult
from tcc.passes.remat.graph import RematGraph
from tcc.passes.remat.scaling import Scaled


def solve_milp(graph: RematGraph, scaled: Scaled, *, time_limit: float, num_workers: int = 2,
               seed: int = 0) -> CpResult:
    from ortools.sat.python import cp_model

    began = time.perf_counter()
    n, model = graph.n, cp_model.CpModel()
    compute = [[model.new_bool_var(f"R{t}_{i}") if i < t else model.new_constant(1)
                for i in range(t + 1)] for t in range(n)]
    keep = [[model.new_bool_var(f"S{t}_{i}") for i in range(t)] for t in range(n + 1)]
    for t in range(n):
        for i in range(t + 1):
            for j in set(graph.preds[i]):
                model.add_bool_or([compute[t][j], keep[t][j]] if j < t else [compute[t][j]]
                                  ).only_enforce_if(compute[t][i])
        for i in range(t + 1):
            model.add_bool_or([compute[t][i], keep[t][i]] if i < t else [compute[t][i]]
                              ).only_enforce_if(keep[t + 1][i])
        live = [scaled.sizes[i] * keep[t][i] for i in range(t) if scaled.sizes[i]]
        live += [scaled.sizes[i] * compute[t][i] for i in range(t + 1) if scaled.sizes[i]]
        model.add(sum(live) <= scaled.capacity)
    for o in graph.outputs:
        model.add(keep[n][o] == 1)
    model.minimize(sum(scaled.costs[i] * compute[t][i]
                       for t in range(n) for i in range(t) if scaled.costs[i]))
    solver = cp_model.CpSolver()
    built = time.perf_counter() - began
    solver.parameters.max_time_in_seconds = max(0.05, time_limit - built)
    solver.parameters.num_workers = num_workers
    solver.parameters.random_seed = seed
    status = solver.solve(model)
    stats = {"solver_status": solver.status_name(status), "wall_time": solver.wall_time,
             "build_time": built, "num_booleans": solver.num_booleans,
             "exact_sizes": scaled.exact_sizes}
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        result = "infeasible" if status == cp_model.INFEASIBLE else "unknown"
        return CpResult(None, result, 0.0, stats)
    computes = [i for t in range(n) for i in range(t + 1) if solver.value(compute[t][i])]
    bound = solver.best_objective_bound * scaled.cost_unit
    result = "optimal" if status == cp_model.OPTIMAL else "feasible"
    return CpResult(computes, result, bound, stats)

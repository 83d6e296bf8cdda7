"""Rematerialization benchmark: tcc's CP-SAT interval model vs the Checkmate-style MILP.

Runs the published Checkmate / Moccasin graphs at budgets ceil(f * in-order peak),
f in {0.9, 0.8}, with 2 CP-SAT workers each, checks every schedule with the simulator and
prints one row per (graph, f, method). ``--long`` gives every graph 300 s (the reference
for the large graphs).

    PYTHONPATH=. python benchmarks/remat.py [--graphs-dir ../shared/remat-graphs] [--long]

(``PYTHONPATH=.``: a copy of tcc installed in site-packages would shadow this checkout.)
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from tcc.errors import MemoryBudgetError, SolverTimeoutError
from tcc.remat import load_benchmark_graph, lower_bound, peak_memory_in_order, simulate, solve

SMALL = ("vgg16_b256_train", "fcn_8_vgg_b32_train", "random_layered_n100")
LARGE = ("random_layered_n250", "random_layered_n500", "random_layered_n1000",
         "resnet50_b256_train")
REFERENCE = {  # Moccasin model, 2 workers (README of the graphs)
    ("vgg16_b256_train", 0.9): "1.97", ("vgg16_b256_train", 0.8): "infeasible",
    ("fcn_8_vgg_b32_train", 0.9): "0.03", ("fcn_8_vgg_b32_train", 0.8): "0.14",
    ("random_layered_n100", 0.9): "0.79", ("random_layered_n100", 0.8): "2.30",
}
MILP_MAX_NODES = 400  # O(n^2) booleans: beyond this the baseline only builds its model


def run_one(graph, name: str, fraction: float, method: str, time_limit: float) -> str:
    budget = math.ceil(fraction * peak_memory_in_order(graph))
    began = time.perf_counter()
    try:
        plan = solve(graph, budget, method=method, time_limit=time_limit, num_workers=2)
    except MemoryBudgetError:
        tdi, status, ratio = "-", "infeasible", "-"
    except SolverTimeoutError:
        tdi, status, ratio = "-", "none found", "-"
    else:
        sim = simulate(graph, plan, budget)  # the referee: raises on any broken rule
        tdi, status = f"{100 * sim.overhead:.2f}", plan.status
        ratio = f"{sim.peak / budget:.3f}"
    elapsed = time.perf_counter() - began
    ref = REFERENCE.get((name, fraction), "")
    return (f"{name:24s} {graph.n:5d} {fraction:4.1f} {budget:>14d} {lower_bound(graph):>14d} "
            f"{method:6s} {tdi:>7s} {status:11s} {elapsed:7.1f} {ratio:>6s} {ref:>10s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs-dir", default=str(Path(__file__).resolve().parents[2]
                                                    / "shared" / "remat-graphs"))
    parser.add_argument("--long", action="store_true", help="300 s per graph (reference)")
    parser.add_argument("--only", nargs="*", help="graph names to run")
    parser.add_argument("--methods", nargs="*", default=["cpsat", "milp"])
    parser.add_argument("--fractions", nargs="*", type=float, default=[0.9, 0.8])
    parser.add_argument("--limit", type=float, help="seconds per run (overrides --long)")
    args = parser.parse_args()
    header = (f"{'graph':24s} {'n':>5s} {'f':>4s} {'budget':>14s} {'lower bound':>14s} "
              f"{'method':6s} {'TDI %':>7s} {'status':11s} {'time s':>7s} {'pk/B':>6s} "
              f"{'ref TDI %':>10s}")
    print(header)
    print("-" * len(header))
    for name in args.only or SMALL + LARGE:
        graph = load_benchmark_graph(Path(args.graphs_dir) / f"{name}.json")
        limit = 300.0 if args.long else (10.0 if name in SMALL else 5.0)
        limit = args.limit or limit
        for fraction in args.fractions:
            for method in args.methods:
                if method == "milp" and graph.n > MILP_MAX_NODES:
                    continue
                print(run_one(graph, name, fraction, method, limit), flush=True)


if __name__ == "__main__":
    main()

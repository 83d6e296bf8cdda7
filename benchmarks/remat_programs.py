"""Training steps under a memory budget: tcc.grad programs compiled with remat.

For an MLP and a small transformer block written as programs, compile the training step
(forward + loss + gradients) without a budget and at 50-90 % of its arena, and report in the
same run: the planned arena, the measured high-water mark, the recomputed statements, the
solver's status and time, and the slowdown of the compiled step against no budget.

    python benchmarks/remat_programs.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import tcc

MLP = """
    H1[b,h] = relu(sum_i X[b,i] * W1[h,i])
    H2[b,g] = tanh(sum_h H1[b,h] * W2[g,h])
    H3[b,f] = relu(sum_g H2[b,g] * W3[f,g])
    Y[b,o]  = sum_f H3[b,f] * W4[o,f]
    L[]     = sum_{b,o} (Y[b,o] - T[b,o])^2
"""

TRANSFORMER = """
    Q[t,d]   = sum_e X[t,e] * Wq[d,e]
    K[s,d]   = sum_e X[s,e] * Wk[d,e]
    V[s,d]   = sum_e X[s,e] * Wv[d,e]
    S[t,s]   = sum_d Q[t,d] * K[s,d] * 0.125
    M[t]     = max_s S[t,s]
    E[t,s]   = exp(S[t,s] - M[t])
    Z[t]     = sum_s E[t,s]
    A[t,d]   = sum_s E[t,s] * V[s,d] / Z[t]
    H[t,f]   = relu(sum_d A[t,d] * W1[f,d])
    O[t,e]   = sum_f H[t,f] * W2[e,f] + X[t,e]
    L[]      = sum_{t,e} (O[t,e] - T[t,e])^2
"""

WORKLOADS = {
    "mlp": (MLP, dict(b=128, i=256, h=512, g=512, f=512, o=64),
            ["W1", "W2", "W3", "W4"]),
    "transformer": (TRANSFORMER, dict(t=128, s=128, e=128, d=128, f=256),
                    ["Wq", "Wk", "Wv", "W1", "W2"]),
}


def median_time(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--time-limit", type=float, default=10.0)
    args = parser.parse_args()
    fractions = [0.9, 0.7, 0.5] if args.quick else [0.9, 0.8, 0.7, 0.6, 0.5]
    print(f"{'workload':12} {'budget':>8} {'bytes':>10} {'arena':>10} {'measured':>10} "
          f"{'recomp':>6} {'status':>10} {'solve s':>7} {'step ms':>8} {'slowdown':>8}")
    for name, (text, shapes, wrt) in WORKLOADS.items():
        if args.quick:
            shapes = {k: max(8, v // 4) for k, v in shapes.items()}
        step = tcc.grad(tcc.program(text, shapes=shapes, dtype="float32"), of="L", wrt=wrt)
        rng = np.random.default_rng(0)
        inputs = {n: (rng.standard_normal(step.tensor(n).shape) * 0.1).astype(np.float32)
                  for n in step.inputs}
        full = tcc.compile_program(step)
        reference = full(inputs)
        base = median_time(lambda f=full, x=inputs: f(x), 5)
        arena = full.memory_plan.arena_bytes
        print(f"{name:12} {'none':>8} {'-':>10} {arena:>10} {full.stats.peak_bytes:>10} "
              f"{0:>6} {'-':>10} {'-':>7} {base * 1e3:>8.2f} {1.0:>8.2f}")
        for fraction in fractions:
            budget = int(arena * fraction)
            try:
                compiled = tcc.compile_program(step, memory_budget=budget,
                                               remat_time_limit=args.time_limit)
            except tcc.MemoryBudgetError as exc:
                print(f"{name:12} {fraction:>8.0%} {budget:>10} infeasible: {str(exc)[:70]}")
                continue
            out = compiled(inputs)
            ok = all(np.allclose(out[n], reference[n], rtol=1e-4, atol=1e-5) for n in reference)
            seconds = median_time(lambda c=compiled, x=inputs: c(x), 5)
            plan = compiled.remat_plan
            solve = plan.solve_time
            print(f"{name:12} {fraction:>8.0%} {budget:>10} {compiled.memory_plan.arena_bytes:>10}"
                  f" {compiled.stats.peak_bytes:>10} {compiled.execution.recomputed_statements:>6}"
                  f" {plan.status:>10} {solve:>7.2f} {seconds * 1e3:>8.2f}"
                  f" {seconds / base:>8.2f}{'' if ok else '  WRONG'}")


if __name__ == "__main__":
    main()

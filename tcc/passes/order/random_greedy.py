"""Random greedy: many greedy runs with sampled heuristics, keep the best by objective.

Trial 0 is the deterministic greedy. Every other trial samples ``costmod`` uniformly in
[0.1, 4] and a temperature log-uniformly in [0.001, 1] (cotengra's ranges) and runs the
Boltzmann-sampled greedy of :mod:`greedy`. The trial count decides the result; a
``max_time`` only caps it, so a seeded run is reproducible unless the cap bites.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence

from tcc.passes.order.cost import FLOPS, Cost, Objective
from tcc.passes.order.greedy import greedy_ssa
from tcc.passes.order.network import Legs, Network, SsaPath, ssa_cost
from tcc.passes.order.registry import register

DEFAULT_REPEATS = 32
MAX_NEIGHBOURS = None


def sample_greedy_params(rng: random.Random) -> tuple[float, float]:
    """(costmod, temperature) for one random-greedy trial."""
    costmod = rng.uniform(0.1, 4.0)
    temperature = math.exp(rng.uniform(math.log(0.001), math.log(1.0)))
    return costmod, temperature


def feasible_key(cost: Cost, largest: int, memory_limit: int | None) -> tuple[bool, Cost]:
    """Sort key: paths that fit the memory limit first, then by cost."""
    return (memory_limit is not None and largest > memory_limit, cost)


def random_greedy_ssa(
    legs: Sequence[Legs],
    output: Legs,
    sizes: Sequence[int],
    objective: Objective,
    *,
    repeats: int = DEFAULT_REPEATS,
    max_time: float | None = None,
    seed: int = 0,
    memory_limit: int | None = None,
) -> tuple[SsaPath, Cost, int]:
    """Best (path, cost, largest intermediate) over ``repeats`` greedy trials."""
    start = time.perf_counter()
    rng = random.Random(seed)
    best: tuple[tuple[bool, Cost], SsaPath, Cost, int] | None = None
    deadline = None if max_time is None else start + max_time
    for trial in range(max(1, repeats)):
        if trial == 0:
            path = greedy_ssa(legs, output, sizes, memory_limit=memory_limit)
        else:
            costmod, temperature = sample_greedy_params(rng)
            cap = None
            if best is not None and not best[0][0] and objective.is_additive:
                cap = best[2]
            path = greedy_ssa(
                legs,
                output,
                sizes,
                costmod=costmod,
                temperature=temperature,
                rng=random.Random(rng.getrandbits(64)),
                memory_limit=memory_limit,
                cost_cap=cap,  # type: ignore[arg-type]
                objective=objective,
                deadline=deadline,
                max_neighbours=MAX_NEIGHBOURS,
            )
        if path is not None:
            cost, largest = ssa_cost(legs, output, sizes, path, objective)
            key = feasible_key(cost, largest, memory_limit)
            if best is None or key < best[0]:
                best = (key, path, cost, largest)
        if deadline is not None and time.perf_counter() > deadline:
            break
    assert best is not None
    return best[1], best[2], best[3]


@register("random-greedy")
def random_greedy(
    network: Network,
    *,
    memory_limit: int | None = None,
    max_time: float | None = None,
    objective: Objective = FLOPS,
    seed: int = 0,
) -> SsaPath:
    """``DEFAULT_REPEATS`` seeded greedy trials (capped by ``max_time``), best kept."""
    path, _, _ = random_greedy_ssa(
        network.legs,
        network.output,
        network.sizes,
        objective,
        max_time=max_time,
        seed=seed,
        memory_limit=memory_limit,
    )
    return path

"""Random greedy: many greedy runs with sampled heuristics, keep the best by objective.

Trial 0 is ``opt_einsum``'s greedy (:mod:`greedy_oe`), trial 1 this package's plain
greedy (``costmod = 1``, no temperature). Every other trial samples ``costmod``
uniformly in [0.1, 4] and a temperature log-uniformly in [0.001, 1] (cotengra's ranges)
and runs the Boltzmann-sampled greedy of :mod:`greedy` on a network prepared once. A
trial stops as soon as its cost passes the best so far. The trial count decides the
result; a ``max_time`` only caps it, so a seeded run is reproducible unless the cap bites.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence

from tcc.passes.order.cost import FLOPS, Cost, Objective
from tcc.passes.order.greedy import DEFAULT_MAX_NEIGHBOURS, GreedyProblem
from tcc.passes.order.greedy_oe import oe_greedy_ssa
from tcc.passes.order.network import Legs, Network, SsaPath, ssa_cost
from tcc.passes.order.registry import register

DEFAULT_REPEATS = 32


def sample_greedy_params(rng: random.Random) -> tuple[float, float]:
    """(costmod, temperature) for one random-greedy trial."""
    costmod = rng.uniform(0.1, 4.0)
    temperature = math.exp(rng.uniform(math.log(0.001), math.log(1.0)))
    return costmod, temperature


def feasible_key(cost: Cost, largest: int, memory_limit: int | None) -> tuple[bool, Cost]:
    """Sort key: paths that fit the memory limit first, then by cost."""
    return (memory_limit is not None and largest > memory_limit, cost)


def random_greedy_trees(
    legs: Sequence[Legs],
    output: Legs,
    sizes: Sequence[int],
    objective: Objective,
    *,
    repeats: int = DEFAULT_REPEATS,
    max_time: float | None = None,
    seed: int = 0,
    memory_limit: int | None = None,
    max_neighbours: int | None = DEFAULT_MAX_NEIGHBOURS,
    keep: int = 1,
) -> list[tuple[tuple[bool, Cost], SsaPath, int]]:
    """The ``keep`` best distinct trials as (sort key, path, largest), best first.

    A trial stops early once it costs more than the ``keep``-th best so far.
    """
    start = time.perf_counter()
    deadline = None if max_time is None else start + max_time
    rng = random.Random(seed)
    best: list[tuple[tuple[bool, Cost], SsaPath, int]] = []

    def consider(path: SsaPath) -> None:
        cost, largest = ssa_cost(legs, output, sizes, path, objective)
        key = feasible_key(cost, largest, memory_limit)
        if any(key == other[0] for other in best):
            return
        best.append((key, path, largest))
        best.sort(key=lambda entry: entry[0])
        del best[keep:]

    if memory_limit is None:
        consider(oe_greedy_ssa(legs, output, sizes))
    problem = GreedyProblem(
        legs,
        output,
        sizes,
        max_neighbours=max_neighbours,
        objective=objective if objective.is_additive else None,
    )
    for trial in range(max(1, repeats - 1)):
        costmod, temperature = (1.0, 0.0) if trial == 0 else sample_greedy_params(rng)
        trial_rng = random.Random(rng.getrandbits(64))
        cap = None
        if len(best) == keep and not best[-1][0][0] and objective.is_additive:
            cap = best[-1][0][1]
        found = problem.run(
            costmod=costmod,
            temperature=temperature,
            rng=trial_rng,
            memory_limit=memory_limit,
            cost_cap=cap,  # type: ignore[arg-type]
            deadline=deadline if trial > 0 else None,
        )
        if found is not None:
            consider(found[0])
        if deadline is not None and time.perf_counter() > deadline:
            break
    return best


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
    (key, path, largest), *_ = random_greedy_trees(
        legs,
        output,
        sizes,
        objective,
        repeats=repeats,
        max_time=max_time,
        seed=seed,
        memory_limit=memory_limit,
    )
    return path, key[1], largest


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

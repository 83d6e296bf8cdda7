"""``auto``: pick an optimizer by network size, staying well under a second.

- up to ``OPTIMAL_OPERANDS`` operands: :mod:`optimal` (proven optimum, all trees);
- up to ``DP_OPERANDS``: :mod:`dp` (connected subsets), unless its search explodes
  (dense or hyperedge-heavy networks), then as for large networks;
- larger: seeded random greedy (``GREEDY_REPEATS`` trials) then subtree
  reconfiguration, both capped to a share of ``max_time`` (default ``AUTO_TIME``).
"""

from __future__ import annotations

import time

from tcc.passes.order.cost import FLOPS, Objective
from tcc.passes.order.dp import SearchBudgetExceeded, dp_ssa
from tcc.passes.order.network import Network, SsaPath, ssa_cost
from tcc.passes.order.optimal import optimal_ssa
from tcc.passes.order.random_greedy import random_greedy_ssa
from tcc.passes.order.reconfigure import subtree_reconfigure
from tcc.passes.order.registry import register

OPTIMAL_OPERANDS = 8
DP_OPERANDS = 16
DP_MAX_PAIRS = 200_000
GREEDY_REPEATS = 32
AUTO_TIME = 0.7


@register("auto")
def auto(
    network: Network,
    *,
    memory_limit: int | None = None,
    max_time: float | None = None,
    objective: Objective = FLOPS,
    seed: int = 0,
) -> SsaPath:
    n = network.num_operands
    legs, output, sizes = network.legs, network.output, network.sizes
    if n <= OPTIMAL_OPERANDS:
        return optimal_ssa(legs, output, sizes, objective, memory_limit)
    if n <= DP_OPERANDS:
        try:
            path = dp_ssa(
                legs, output, sizes, objective, memory_limit=memory_limit, max_pairs=DP_MAX_PAIRS
            )
            if path is not None:
                return path
        except SearchBudgetExceeded:
            pass
    start = time.perf_counter()
    budget = AUTO_TIME if max_time is None else max_time
    path, _, largest = random_greedy_ssa(
        legs,
        output,
        sizes,
        objective,
        repeats=GREEDY_REPEATS,
        max_time=0.55 * budget,
        seed=seed,
        memory_limit=memory_limit,
    )
    left = budget - (time.perf_counter() - start)
    if left > 0:
        improved = subtree_reconfigure(
            legs,
            output,
            sizes,
            path,
            objective,
            subtree_size=6,
            max_passes=3,
            max_time=left,
            memory_limit=memory_limit,
        )
        if memory_limit is None or ssa_cost(legs, output, sizes, improved, objective)[1] <= max(
            memory_limit, largest
        ):
            path = improved
    return path

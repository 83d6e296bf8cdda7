"""``auto``: pick an optimizer by network size, staying well under a second.

- up to ``OPTIMAL_OPERANDS`` operands: :mod:`optimal` (proven optimum, all trees);
- up to ``DP_OPERANDS``: :mod:`dp` (connected subsets), unless its search explodes
  (dense or hyperedge-heavy networks), then as for large networks;
- larger: seeded random greedy (``GREEDY_REPEATS`` trials, opt_einsum's greedy among
  them) in ``GREEDY_SHARE`` of ``max_time`` (default ``AUTO_TIME``), then subtree
  reconfiguration (:func:`improve_trees`) of its ``START_TREES`` best trees; when that
  converges early, new rounds (next seeds) use the time left, up to ``MAX_ROUNDS``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from tcc.passes.order.cost import FLOPS, Cost, Objective
from tcc.passes.order.dp import SearchBudgetExceeded, dp_ssa
from tcc.passes.order.network import Legs, Network, SsaPath, ssa_cost
from tcc.passes.order.optimal import optimal_ssa
from tcc.passes.order.random_greedy import feasible_key, random_greedy_trees
from tcc.passes.order.reconfigure import subtree_reconfigure
from tcc.passes.order.registry import register

OPTIMAL_OPERANDS = 8
DP_OPERANDS = 16
DP_MAX_PAIRS = 200_000
GREEDY_REPEATS = 256
GREEDY_SHARE = 0.3
START_TREES = 2
MAX_ROUNDS = 8
AUTO_TIME = 0.8


def improve_trees(
    legs: Sequence[Legs],
    output: Legs,
    sizes: Sequence[int],
    trees: list[tuple[tuple[bool, Cost], SsaPath, int]],
    objective: Objective,
    *,
    deadline: float,
    memory_limit: int | None = None,
) -> SsaPath:
    """Reconfigure each start tree with 6-leaf subtrees (half the time, shared out), then
    the best result with 8-leaf subtrees until ``deadline``; the best tree found wins.

    Trees that fit ``memory_limit`` stay ahead of trees that do not.
    """
    best_key, best_path, _ = trees[0]
    share = 0.5 * (deadline - time.perf_counter())

    def polish(path: SsaPath, subtree_size: int, seconds: float) -> None:
        nonlocal best_key, best_path
        improved = subtree_reconfigure(
            legs,
            output,
            sizes,
            path,
            objective,
            subtree_size=subtree_size,
            max_passes=16,
            max_time=seconds,
            memory_limit=memory_limit,
        )
        key = feasible_key(*ssa_cost(legs, output, sizes, improved, objective), memory_limit)
        if key < best_key:
            best_key, best_path = key, improved

    for _, path, _ in trees:
        left = deadline - time.perf_counter()
        if left <= 0:
            break
        polish(path, 6, min(left, share / len(trees)))
    left = deadline - time.perf_counter()
    if left > 0:
        polish(best_path, 8, left)
    return best_path


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
    return search_rounds(
        legs,
        output,
        sizes,
        objective,
        budget=AUTO_TIME if max_time is None else max_time,
        repeats=GREEDY_REPEATS,
        seed=seed,
        memory_limit=memory_limit,
    )


def search_rounds(
    legs: Sequence[Legs],
    output: Legs,
    sizes: Sequence[int],
    objective: Objective,
    *,
    budget: float,
    repeats: int,
    seed: int = 0,
    memory_limit: int | None = None,
    keep: int = START_TREES,
    extra_trees: Sequence[tuple[tuple[bool, Cost], SsaPath, int]] = (),
    patience: int = 1,
) -> SsaPath:
    """Rounds of random greedy (``repeats`` trials, next seed each round) + reconfiguration
    of its ``keep`` best trees (and ``extra_trees`` in round 0) within ``budget`` seconds.

    Stops after ``patience`` rounds in a row that improve nothing (or ``MAX_ROUNDS``), so
    the result is deterministic for a seed unless the time cap bites.
    """
    deadline = time.perf_counter() + budget
    best: tuple[tuple[bool, Cost], SsaPath] | None = None
    idle = 0
    for round_number in range(MAX_ROUNDS):
        left = deadline - time.perf_counter()
        if best is not None and left < 0.1 * budget:
            break
        trees = random_greedy_trees(
            legs,
            output,
            sizes,
            objective,
            repeats=repeats,
            max_time=min(GREEDY_SHARE * budget, 0.5 * left),
            seed=seed + round_number,
            memory_limit=memory_limit,
            keep=keep,
        )
        if round_number == 0 and extra_trees:
            trees = sorted([*trees, *extra_trees], key=lambda entry: entry[0])
        path = improve_trees(
            legs, output, sizes, trees, objective, deadline=deadline, memory_limit=memory_limit
        )
        key = feasible_key(*ssa_cost(legs, output, sizes, path, objective), memory_limit)
        if best is not None and not key < best[0]:
            idle += 1
            if idle >= patience:
                break
            continue
        idle = 0
        best = (key, path)
    assert best is not None
    return best[1]

"""``auto``: pick an optimizer by network size, staying well under a second.

- up to ``OPTIMAL_OPERANDS`` operands: :mod:`optimal` (proven optimum, all trees);
- up to ``DP_OPERANDS``: :mod:`dp` (connected subsets), unless its search explodes
  (dense or hyperedge-heavy networks), then as for large networks;
- larger: seeded random greedy (``GREEDY_REPEATS`` trials, opt_einsum's greedy among
  them; a count, with ``GREEDY_SHARE`` of ``max_time`` only as a cap) gives its
  ``START_TREES`` best trees; in round 0 the spectral sweep (:mod:`spectral`) joins
  them unless it costs over ``SPECTRAL_SLACK`` times greedy's best. Subtree
  reconfiguration (:func:`improve_trees`) polishes them; new rounds (next seeds) follow
  until ``PATIENCE`` rounds in a row improve nothing, ``MAX_ROUNDS`` or the time cap
  (default ``AUTO_TIME``).
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
from tcc.passes.order.spectral import spectral_ssa

OPTIMAL_OPERANDS = 8
DP_OPERANDS = 16
DP_MAX_PAIRS = 200_000
GREEDY_REPEATS = 64
GREEDY_SHARE = 0.2
START_TREES = 2
MAX_ROUNDS = 8
PATIENCE = 2  # rounds in a row that improve nothing before the search stops
SPECTRAL_SLACK = 1e4  # a spectral sweep costlier than this times greedy's best is dropped
FIRST_STAGE_SHARE = 0.6  # of the time left, for 6-leaf reconfiguration of every start
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
) -> tuple[tuple[bool, Cost], SsaPath]:
    """Reconfigure each start tree with 6-leaf subtrees (``FIRST_STAGE_SHARE`` of the time,
    shared out in turn: what one leaves, the next may use), then the best result with
    8-leaf subtrees until it converges or ``deadline``; returns the best (key, tree).

    Trees that fit ``memory_limit`` stay ahead of trees that do not.
    """
    best_key, best_path, _ = min(trees, key=lambda entry: entry[0])
    stage_end = time.perf_counter() + FIRST_STAGE_SHARE * (deadline - time.perf_counter())

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

    for index, (_, path, _) in enumerate(trees):
        left = stage_end - time.perf_counter()
        if left <= 0:
            break
        polish(path, 6, left / (len(trees) - index))
    left = deadline - time.perf_counter()
    if left > 0:
        polish(best_path, 8, left)
    return best_key, best_path


def start_trees(
    legs: Sequence[Legs],
    output: Legs,
    sizes: Sequence[int],
    objective: Objective,
    memory_limit: int | None,
) -> list[tuple[tuple[bool, Cost], SsaPath, int]]:
    """Start trees besides random greedy's: the spectral sweep (additive objectives)."""
    if not objective.is_additive:
        return []
    path = spectral_ssa(legs, sizes)
    if path is None:
        return []
    cost, largest = ssa_cost(legs, output, sizes, path, objective)
    return [(feasible_key(cost, largest, memory_limit), path, largest)]


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
    patience: int = PATIENCE,
    spectral_start: bool = True,
) -> SsaPath:
    """Rounds of random greedy (``repeats`` trials, next seed each round) + reconfiguration
    of its ``keep`` best trees (and in round 0 the spectral sweep, unless
    ``spectral_start`` is False, and ``extra_trees``) within ``budget`` seconds.

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
        if round_number == 0:
            # the spectral tree first: it needs the longest reconfiguration
            # skip a hopeless sweep (hypergraphs): its reconfiguration would eat the time
            bar = (trees[0][0][0], SPECTRAL_SLACK * trees[0][0][1]) if trees else None  # type: ignore[operator]
            spectral = [
                entry
                for entry in start_trees(legs, output, sizes, objective, memory_limit)
                if bar is None or entry[0] < bar
            ]
            extra = sorted(extra_trees, key=lambda entry: entry[0])
            trees = [*(spectral if spectral_start else []), *trees, *extra]
        key, path = improve_trees(
            legs, output, sizes, trees, objective, deadline=deadline, memory_limit=memory_limit
        )
        if best is not None and not key < best[0]:
            idle += 1
            if idle >= patience:
                break
            continue
        idle = 0
        best = (key, path)
    assert best is not None
    return best[1]

"""Contraction ordering: multi-operand einsum -> binary tree of pairwise contractions.

Pure Python search (no compilation). A network is ``inputs`` (one label tuple per
operand), ``output`` and ``size_dict``; optimizers return a :class:`ContractionTree`
(plain data, JSON round trip), sliced into a :class:`SlicedTree` when a
``memory_limit`` cannot be met otherwise.

Methods: ``auto`` (default), ``optimal``, ``dp``, ``greedy``, ``random-greedy``,
``hyper``, ``naive``; numpy's ``optimize=`` values work too (True, False, paths).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

from tcc.passes.order.cost import Objective, parse_objective
from tcc.passes.order.registry import (
    PATH_CACHE,
    available_optimizers,
    get_optimizer,
    normalize_method,
    optimize,
    register,
)
from tcc.passes.order.report import PathReport, einsum_path_numpy_format
from tcc.passes.order.slicing import SlicedTree, slice_tree, smallest_feasible_limit
from tcc.passes.order.tree import ContractionTree, Step

__all__ = [
    "PATH_CACHE",
    "ContractionTree",
    "Objective",
    "PathReport",
    "SlicedTree",
    "Step",
    "available_optimizers",
    "contraction_tree",
    "einsum_path_numpy_format",
    "get_optimizer",
    "optimize",
    "parse_objective",
    "register",
    "slice_tree",
    "smallest_feasible_limit",
]


def contraction_tree(
    inputs: Sequence[Sequence[Hashable]],
    output: Sequence[Hashable],
    size_dict: Mapping[Hashable, int],
    *,
    optimize: object = "auto",
    memory_limit: int | None = None,
    max_time: float | None = None,
    objective: str | Objective = "flops",
    seed: int = 0,
) -> ContractionTree | SlicedTree:
    """Optimize the order; if no tree found fits ``memory_limit``, slice the tree.

    Returns a :class:`ContractionTree` when every intermediate fits (or there is no
    limit), else a :class:`SlicedTree` whose slices fit. Raises ``MemoryBudgetError``
    (a ``TccError``) naming the smallest feasible limit when slicing cannot help.
    """
    method = normalize_method(optimize)
    tree = _optimize(inputs, output, size_dict, method, memory_limit, max_time, objective, seed)
    if memory_limit is None or tree.largest_intermediate() <= memory_limit:
        return tree
    candidates = [slice_tree(tree, memory_limit)]
    if not isinstance(method, list):
        # The constrained search failed; the unconstrained optimum may slice cheaper.
        free = _optimize(inputs, output, size_dict, method, None, max_time, objective, seed)
        candidates.append(slice_tree(free, memory_limit))
    return min(candidates, key=lambda sliced: sliced.total_flops)


def _optimize(
    inputs, output, size_dict, method, memory_limit, max_time, objective, seed
) -> ContractionTree:
    return optimize(
        inputs,
        output,
        size_dict,
        method=method,
        memory_limit=memory_limit,
        max_time=max_time,
        objective=objective,
        seed=seed,
    )

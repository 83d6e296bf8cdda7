"""The unoptimized order: contract the operands left to right (numpy's ``optimize=False``)."""

from __future__ import annotations

from tcc.passes.order.cost import FLOPS, Objective
from tcc.passes.order.network import Network, SsaPath
from tcc.passes.order.registry import register


@register("naive")
def naive(
    network: Network,
    *,
    memory_limit: int | None = None,
    max_time: float | None = None,
    objective: Objective = FLOPS,
    seed: int = 0,
) -> SsaPath:
    """((0 * 1) * 2) * ...: a baseline, and what numpy does without optimization."""
    n = network.num_operands
    path: SsaPath = [(0, 1)] if n > 1 else []
    for k in range(2, n):
        path.append((k, n + k - 2))
    return path

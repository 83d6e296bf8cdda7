"""Scale sizes and costs to small integers for CP-SAT without losing feasibility.

Sizes: divided by their gcd when the budget then stays small; otherwise multiplied by
``target / budget`` and rounded *up*, with capacity rounded down, so every schedule that
fits the scaled model fits the real budget. Costs: exact integers when they are
(after the gcd) small enough, else rounded to ``cost_target`` relative precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tcc.passes.remat.graph import RematGraph


@dataclass(frozen=True, slots=True)
class Scaled:
    sizes: tuple[int, ...]
    capacity: int
    costs: tuple[int, ...]
    cost_unit: float  # real cost of one scaled cost unit
    exact_sizes: bool


def scale(graph: RematGraph, budget: int, size_target: int = 1_000_000,
          cost_target: int = 1_000_000) -> Scaled:
    nonzero = [s for s in graph.sizes if s > 0]
    g = math.gcd(*nonzero) if nonzero else 1
    if budget // g <= 4 * size_target:
        sizes = tuple(s // g for s in graph.sizes)
        capacity, exact = budget // g, True
    else:
        factor = size_target / budget
        sizes = tuple(math.ceil(s * factor - 1e-9) for s in graph.sizes)
        capacity, exact = size_target, False
    costs, unit = _scale_costs(graph.costs, cost_target)
    return Scaled(sizes, capacity, costs, unit, exact)


def _scale_costs(costs: tuple[float, ...], target: int) -> tuple[tuple[int, ...], float]:
    if all(float(c).is_integer() for c in costs):
        ints = [int(c) for c in costs]
        nonzero = [c for c in ints if c > 0]
        g = math.gcd(*nonzero) if nonzero else 1
        if max(ints, default=0) // g <= 10 * target:
            return tuple(c // g for c in ints), float(g)
    top = max(costs, default=0.0)
    if top <= 0:
        return tuple(0 for _ in costs), 1.0
    unit = top / target
    return tuple(max(1, round(c / unit)) if c > 0 else 0 for c in costs), unit

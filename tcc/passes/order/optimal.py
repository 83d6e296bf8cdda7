"""Exhaustive search that proves the optimal contraction order (small networks).

Every binary contraction tree is a recursive bipartition of the operand set, and the
objectives are monotone in a subtree's cost, so a dynamic program over *all* subsets
(outer products included) finds the optimum: ``best(S) = min over splits S = A | B of
combine(best(A), best(B), step(A, B))``. That is 3^n split checks; two bounds prune it
(branch and bound): a split is skipped when its children alone already cost more than
the best split found for ``S``, and a subset whose best costs more than an upper bound
(the greedy path's cost) is dropped since no optimal tree can contain it. Under a
``memory_limit`` a subset whose result is too large is infeasible.
"""

from __future__ import annotations

from collections.abc import Sequence

from tcc.errors import TccError
from tcc.passes.order.cost import FLOPS, Cost, Objective
from tcc.passes.order.greedy import greedy_ssa
from tcc.passes.order.network import Legs, Network, SsaPath, ssa_cost
from tcc.passes.order.registry import register

MAX_OPERANDS = 16
CHUNK_BITS = 5  # label masks are sized by table lookups, this many bits at a time
CHUNK_MASK = (1 << CHUNK_BITS) - 1


def optimal_subsets(
    legs: Sequence[Legs],
    output: Legs,
    sizes: Sequence[int],
    objective: Objective,
    *,
    memory_limit: int | None = None,
    upper_bound: Cost | None = None,
) -> tuple[SsaPath, Cost] | None:
    """Optimal SSA path and its cost, or None when nothing fits ``memory_limit``."""
    n = len(legs)
    if n <= 1:
        return [], objective.zero
    bit: dict[int, int] = {}
    for term in legs:
        for label in term:
            bit.setdefault(label, len(bit))
    bit_sizes = [sizes[label] for label in bit]
    term_bits = [sum(1 << bit[label] for label in term) for term in legs]
    out_bits = sum(1 << bit[label] for label in output if label in bit)
    full = (1 << n) - 1
    union = [0] * (full + 1)
    for subset in range(1, full + 1):
        low = subset & -subset
        union[subset] = union[subset ^ low] | term_bits[low.bit_length() - 1]
    result = [union[s] & (union[full ^ s] | out_bits) for s in range(full + 1)]
    for i, bits in enumerate(term_bits):  # an operand enters its first step with all its legs
        result[1 << i] = bits
    size_cache: dict[int, int] = {}
    chunk_tables = _chunk_size_tables(bit_sizes)

    def size_bits(mask: int) -> int:
        value = size_cache.get(mask)
        if value is None:
            value = 1
            rest = mask
            for table in chunk_tables:
                value *= table[rest & CHUNK_MASK]
                rest >>= CHUNK_BITS
                if not rest:
                    break
            size_cache[mask] = value
        return value

    best: list[Cost | None] = [None] * (full + 1)
    split = [0] * (full + 1)
    for i in range(n):
        best[1 << i] = objective.zero
    combine, lower_bound = objective.combine, objective.lower_bound
    for subset in sorted(range(1, full + 1), key=int.bit_count):
        if subset & (subset - 1) == 0:
            continue
        result_bits = result[subset]
        size = size_bits(result_bits)
        if memory_limit is not None and size > memory_limit:
            continue
        low = subset & -subset
        rest = subset ^ low
        current: Cost | None = None
        sub = rest
        while True:
            part = sub | low
            other = subset ^ part
            if other:
                cost_a, cost_b = best[part], best[other]
                if (
                    cost_a is not None
                    and cost_b is not None
                    and (current is None or lower_bound(cost_a, cost_b) < current)
                ):
                    involved = result[part] | result[other]
                    flops = size_bits(involved) * (2 if involved != result_bits else 1)
                    cost = combine(cost_a, cost_b, flops, size)
                    if current is None or cost < current:
                        current = cost
                        split[subset] = part
            if sub == 0:
                break
            sub = (sub - 1) & rest
        if upper_bound is not None and current is not None and current > upper_bound:
            current = None
        best[subset] = current
    if best[full] is None:
        return None
    return _ssa_from_splits(split, full, n), best[full]


def _chunk_size_tables(bit_sizes: Sequence[int]) -> list[list[int]]:
    """Per ``CHUNK_BITS``-bit chunk of a label mask: the size product of each chunk value."""
    tables = []
    for first in range(0, len(bit_sizes), CHUNK_BITS):
        chunk = bit_sizes[first : first + CHUNK_BITS]
        table = [1] * (1 << len(chunk))
        for value in range(1, len(table)):
            low = value & -value
            table[value] = table[value ^ low] * chunk[low.bit_length() - 1]
        tables.append(table)
    return tables


def _ssa_from_splits(split: list[int], full: int, n: int) -> SsaPath:
    path: SsaPath = []
    ids: dict[int, int] = {1 << i: i for i in range(n)}
    stack = [(full, False)]
    while stack:
        subset, expanded = stack.pop()
        if subset in ids:
            continue
        part = split[subset]
        other = subset ^ part
        if expanded:
            path.append((ids[part], ids[other]))
            ids[subset] = n + len(path) - 1
        else:
            stack.append((subset, True))
            stack.append((other, False))
            stack.append((part, False))
    return path


def optimal_ssa(
    legs: Sequence[Legs],
    output: Legs,
    sizes: Sequence[int],
    objective: Objective,
    memory_limit: int | None = None,
) -> SsaPath:
    """Proven-optimal path; under an infeasible ``memory_limit``, the unconstrained one."""
    greedy_path = greedy_ssa(legs, output, sizes, memory_limit=memory_limit)
    bound, largest = ssa_cost(legs, output, sizes, greedy_path, objective)
    if memory_limit is not None and largest > memory_limit:
        bound = None
    found = optimal_subsets(
        legs, output, sizes, objective, memory_limit=memory_limit, upper_bound=bound
    )
    if found is None:
        found = optimal_subsets(legs, output, sizes, objective)
    assert found is not None
    return found[0]


@register("optimal")
def optimal(
    network: Network,
    *,
    memory_limit: int | None = None,
    max_time: float | None = None,
    objective: Objective = FLOPS,
    seed: int = 0,
) -> SsaPath:
    """Exhaustive optimum for up to ``MAX_OPERANDS`` operands (3^n work: keep n <= ~12)."""
    if network.num_operands > MAX_OPERANDS:
        raise TccError(
            f"'optimal' handles at most {MAX_OPERANDS} operands, got {network.num_operands}; "
            "use 'dp', 'hyper' or 'auto'"
        )
    return optimal_ssa(network.legs, network.output, network.sizes, objective, memory_limit)

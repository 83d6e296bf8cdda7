"""Spectral sweep: order the operands by the Fiedler vector, contract them in that order.

The operands and their shared indices form a graph (edge weight ``log2`` of the index
size, a hyperedge spread over a clique, or a chain when it has many holders). Sorting
each connected component by the eigenvector of the second-smallest eigenvalue of its
weighted Laplacian lays the network out along a line, so a sweep (caterpillar tree:
``((t0 t1) t2) t3 ...``) keeps a thin boundary on chains, lattices and other
low-dimensional networks, where random greedy tends to grow many blobs that meet late.

The raw sweep is crude; it is a *start tree* for subtree reconfiguration, which turns it
into a good tree (``auto`` does this). Dense ``numpy.linalg.eigh``: O(n^3), so networks
above ``MAX_OPERANDS`` operands get no spectral tree. Deterministic, no RNG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tcc.passes.order.cost import FLOPS, Objective
from tcc.passes.order.network import Legs, Network, SsaPath
from tcc.passes.order.registry import register

MAX_OPERANDS = 600
CLIQUE_HOLDERS = 6  # hyperedges with more holders become a chain, not a clique


def weighted_adjacency(legs: Sequence[Legs], sizes: Sequence[int]) -> np.ndarray:
    """Symmetric operand-by-operand matrix of shared-index weights."""
    adjacency = np.zeros((len(legs), len(legs)))
    holders: dict[int, list[int]] = {}
    for operand, term in enumerate(legs):
        for label in term:
            holders.setdefault(label, []).append(operand)
    for label, group in holders.items():
        if len(group) < 2:
            continue
        weight = (math.log2(sizes[label]) + 0.1) / (len(group) - 1)
        if len(group) > CLIQUE_HOLDERS:
            pairs = list(zip(group, group[1:], strict=False))
        else:
            pairs = [(a, b) for k, a in enumerate(group) for b in group[k + 1 :]]
        for a, b in pairs:
            adjacency[a, b] += weight
            adjacency[b, a] += weight
    return adjacency


def connected_components(adjacency: np.ndarray) -> list[list[int]]:
    """Components as sorted operand lists, in order of their smallest operand."""
    component = [-1] * len(adjacency)
    result: list[list[int]] = []
    for start in range(len(adjacency)):
        if component[start] >= 0:
            continue
        component[start] = len(result)
        members, stack = [start], [start]
        while stack:
            node = stack.pop()
            for other in np.flatnonzero(adjacency[node]).tolist():
                if component[other] < 0:
                    component[other] = len(result)
                    members.append(other)
                    stack.append(other)
        result.append(sorted(members))
    return result


def spectral_order(legs: Sequence[Legs], sizes: Sequence[int]) -> list[int]:
    """All operands, component by component, each component in Fiedler-vector order."""
    adjacency = weighted_adjacency(legs, sizes)
    order: list[int] = []
    for members in connected_components(adjacency):
        if len(members) <= 2:
            order.extend(members)
            continue
        block = adjacency[np.ix_(members, members)]
        laplacian = np.diag(block.sum(axis=1)) - block
        _, vectors = np.linalg.eigh(laplacian)
        fiedler = vectors[:, 1]
        if fiedler[0] > 0:  # fix the sign so the order does not depend on LAPACK's choice
            fiedler = -fiedler
        order.extend(members[k] for k in np.argsort(fiedler, kind="stable").tolist())
    return order


def sweep_ssa(num_operands: int, order: Sequence[int]) -> SsaPath:
    """The caterpillar SSA path that contracts operands one by one in ``order``."""
    path: SsaPath = []
    current = order[0]
    for operand in order[1:]:
        path.append((current, operand))
        current = num_operands + len(path) - 1
    return path


def spectral_ssa(legs: Sequence[Legs], sizes: Sequence[int]) -> SsaPath | None:
    """The spectral sweep, or None when the network is too large (or trivial)."""
    if not 3 <= len(legs) <= MAX_OPERANDS:
        return None
    return sweep_ssa(len(legs), spectral_order(legs, sizes))


@register("spectral")
def spectral(
    network: Network,
    *,
    memory_limit: int | None = None,
    max_time: float | None = None,
    objective: Objective = FLOPS,
    seed: int = 0,
) -> SsaPath:
    """The raw spectral sweep (a start tree; ``auto`` reconfigures it)."""
    return sweep_ssa(network.num_operands, spectral_order(network.legs, network.sizes))

"""Subtree reconfiguration: re-solve small subtrees exactly and splice them back.

For each internal node (most expensive first) a subtree is cut out by expanding the
node's frontier, always opening the most expensive internal frontier node, until it
has ``subtree_size`` leaves (leaves here are whatever intermediates hang below the
frontier). Those few tensors are re-contracted optimally (:func:`optimal_subsets`,
which proves the optimum for the piece) to the node's own legs; a cheaper piece
replaces the old one in place. Passes repeat until nothing improves, ``max_passes``
is reached, or the ``max_time`` cap; a piece already proven optimal (same node, same
frontier, same cost) is not solved again. Works for additive objectives (not ``size``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from tcc.passes.order.cost import Objective
from tcc.passes.order.network import LegCounter, Legs, SsaPath, size_of, step_flops
from tcc.passes.order.optimal import optimal_subsets


class _Tree:
    """A mutable binary tree with per-node legs and step cost."""

    def __init__(
        self,
        legs: Sequence[Legs],
        output: Legs,
        sizes: Sequence[int],
        ssa: SsaPath,
        objective: Objective,
    ) -> None:
        self.num_leaves = len(legs)
        self.sizes = sizes
        self.objective = objective
        self.legs: dict[int, Legs] = dict(enumerate(legs))
        self.children: dict[int, tuple[int, int]] = {}
        self.cost: dict[int, float] = {}
        counter = LegCounter(legs, output)
        for k, (a, b) in enumerate(ssa):
            node = self.num_leaves + k
            self.legs[node] = counter.contract(self.legs[a], self.legs[b])
            self._set(node, a, b)
        self.root = self.num_leaves + len(ssa) - 1
        self.next_id = self.num_leaves + len(ssa)

    def _set(self, node: int, a: int, b: int) -> None:
        self.children[node] = (a, b)
        legs = self.legs[node]
        flops = step_flops(self.legs[a], self.legs[b], legs, self.sizes)
        self.cost[node] = self.objective.step(flops, size_of(legs, self.sizes))

    def cut(self, node: int, subtree_size: int) -> tuple[list[int], list[int]]:
        """(frontier, interior nodes) of the subtree grown from ``node``."""
        frontier = list(self.children[node])
        interior = [node]
        while len(frontier) < subtree_size:
            inner = [f for f in frontier if f in self.children]
            if not inner:
                break
            chosen = max(inner, key=self.cost.__getitem__)
            frontier.remove(chosen)
            frontier.extend(self.children[chosen])
            interior.append(chosen)
        return frontier, interior

    def splice(self, node: int, frontier: list[int], interior: list[int], sub_ssa: SsaPath) -> None:
        for old in interior:
            del self.children[old], self.cost[old]
            if old != node:
                del self.legs[old]
        counter = LegCounter([self.legs[f] for f in frontier], self.legs[node])
        ids = list(frontier)
        for k, (a, b) in enumerate(sub_ssa):
            is_last = k == len(sub_ssa) - 1
            new = node if is_last else self.next_id
            if not is_last:
                self.next_id += 1
            result = counter.contract(self.legs[ids[a]], self.legs[ids[b]])
            if not is_last:
                self.legs[new] = result
            self._set(new, ids[a], ids[b])
            ids.append(new)

    def to_ssa(self) -> SsaPath:
        path: SsaPath = []
        ids = {leaf: leaf for leaf in range(self.num_leaves)}
        stack = [(self.root, False)]
        while stack:
            node, expanded = stack.pop()
            if node in ids:
                continue
            a, b = self.children[node]
            if expanded:
                path.append((ids[a], ids[b]))
                ids[node] = self.num_leaves + len(path) - 1
            else:
                stack.extend([(node, True), (b, False), (a, False)])
        return path


def subtree_reconfigure(
    legs: Sequence[Legs],
    output: Legs,
    sizes: Sequence[int],
    ssa: SsaPath,
    objective: Objective,
    *,
    subtree_size: int = 8,
    max_passes: int = 8,
    max_time: float | None = None,
    memory_limit: int | None = None,
) -> SsaPath:
    """An SSA path no worse than ``ssa`` under ``objective`` (additive objectives only)."""
    if not objective.is_additive or len(ssa) < 2:
        return list(ssa)
    start = time.perf_counter()
    tree = _Tree(legs, output, sizes, ssa, objective)
    tried: set[tuple] = set()  # pieces proven optimal: the same piece again cannot improve
    for _ in range(max_passes):
        improved = False
        for node in sorted(tree.children, key=tree.cost.__getitem__, reverse=True):
            if node not in tree.children:
                continue
            frontier, interior = tree.cut(node, subtree_size)
            if len(frontier) < 3:
                continue
            old = sum(tree.cost[i] for i in interior)
            piece = (node, frozenset(frontier), old)
            if piece in tried:
                continue
            tried.add(piece)
            found = optimal_subsets(
                [tree.legs[f] for f in frontier],
                tree.legs[node],
                sizes,
                objective,
                memory_limit=memory_limit,
                upper_bound=old,
            )
            if found is not None and found[1] < old * (1 - 1e-9):  # type: ignore[operator]
                tree.splice(node, frontier, interior, found[0])
                improved = True
            if max_time is not None and time.perf_counter() - start > max_time:
                return tree.to_ssa()
        if not improved:
            break
    return tree.to_ssa()

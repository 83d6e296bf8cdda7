"""Repair: start from the in-order schedule and fix memory violations one at a time.

The schedule is a compute sequence; every use is served by the latest copy of its input
and every copy is freed right after its last use (exactly the simulator's accounting).
While some compute exceeds the budget, look at the *first* such compute ``i``: every copy
live across ``i`` that ``i`` does not read is a candidate. Dropping candidate ``u`` after
its last use before ``i`` and recomputing it right before its next use frees ``size(u)``
over the gap; the recompute needs ``u``'s inputs, so an input whose copy would have to
stay live across ``i`` is recomputed too (recursively, a few levels). Candidates are tried
cheapest per byte first (with optional random noise); the first one that lowers the total
excess over the budget is applied. A last pass deletes every recompute the budget no longer
needs. Every step is an exact evaluation, so a sequence this returns fits the budget.
"""

from __future__ import annotations

import random
import time

from tcc.passes.remat.graph import RematGraph


class _Evaluator:
    def __init__(self, graph: RematGraph, budget: int) -> None:
        self.graph, self.budget = graph, budget
        self.upreds = [tuple(sorted(set(p))) for p in graph.preds]
        self.outputs = set(graph.outputs)

    def run(self, seq: list[int]) -> tuple[list[int], list[list[int]], list[int]]:
        """Memory at each compute, the uses of each copy, and each copy's end."""
        sizes, upreds = self.graph.sizes, self.upreds
        length = len(seq)
        latest: dict[int, int] = {}
        uses: list[list[int]] = [[] for _ in seq]
        end = list(range(length))
        for i, v in enumerate(seq):
            for u in upreds[v]:
                c = latest[u]
                uses[c].append(i)
                end[c] = i
            latest[v] = i
        for o in self.outputs:
            end[latest[o]] = length
        delta = [0] * (length + 2)
        for c, v in enumerate(seq):
            delta[c] += sizes[v]
            delta[end[c] + 1] -= sizes[v]
        mem, run = [], 0
        for i in range(length):
            run += delta[i]
            mem.append(run)
        return mem, uses, end

    def excess(self, mem: list[int]) -> int:
        b = self.budget
        return sum(m - b for m in mem if m > b)


def repair_sequence(graph: RematGraph, budget: int, *, rng: random.Random | None = None,
                    spread: float = 1.0, depth: int = 4, tries: int = 1 << 30,
                    deadline: float = float("inf")) -> list[int] | None:
    """A compute sequence within ``budget``, or None when the repair gets stuck."""
    ev = _Evaluator(graph, budget)
    costs, sizes, upreds = graph.costs, graph.sizes, ev.upreds
    mean_cost = graph.total_cost / max(graph.n, 1) + 1e-9
    factor = ([2.0 ** rng.uniform(-spread, spread) for _ in range(graph.n)] if rng else
              [1.0] * graph.n)
    seq = list(range(graph.n))
    mem, uses, end = ev.run(seq)
    excess = ev.excess(mem)
    steps = 0
    while excess > 0:
        steps += 1
        if time.perf_counter() > deadline or steps > 20 * graph.n:
            return None
        i = next(k for k, m in enumerate(mem) if m > budget)
        reads = set(upreds[seq[i]])
        cands = []
        for c in range(i):
            u = seq[c]
            if end[c] > i and end[c] < len(seq) and u not in reads:
                score = (costs[u] + 0.01 * mean_cost) * factor[u] / max(sizes[u], 1)
                cands.append((score, c))
        cands.sort()
        accepted = False
        for _, c in cands[:tries]:
            u = seq[c]
            j = next(k for k in uses[c] if k > i)
            chain = _chain(seq, end, upreds, u, i, j, depth)
            if chain is None:
                continue
            new = seq[:j] + chain + seq[j:]
            new_mem, new_uses, new_end = ev.run(new)
            new_excess = ev.excess(new_mem)
            if new_excess < excess:
                seq, mem, uses, end, excess = new, new_mem, new_uses, new_end, new_excess
                accepted = True
                break
        if not accepted:
            return None
    return prune(graph, budget, seq, ev)


def _chain(seq: list[int], end: list[int], upreds: list[tuple[int, ...]], u: int, i: int,
           j: int, depth: int) -> list[int] | None:
    """``u`` and the inputs it needs recomputed before position ``j`` (ascending ids)."""
    latest: dict[int, int] = {}
    need: set[int] = set()

    def latest_before(p: int) -> int:
        if p not in latest:
            latest[p] = max(k for k in range(j) if seq[k] == p)
        return latest[p]

    def visit(v: int, level: int) -> bool:
        if v in need:
            return True
        need.add(v)
        for p in upreds[v]:
            if p in need:
                continue
            if end[latest_before(p)] >= i:  # live across i anyway: serve from it
                continue
            if level >= depth:
                return False
            if not visit(p, level + 1):
                return False
        return True

    if not visit(u, 0):
        return None
    return sorted(need)


def prune(graph: RematGraph, budget: int, seq: list[int],
          ev: _Evaluator | None = None) -> list[int]:
    """Delete recomputes (most expensive first) while the sequence stays valid and fits."""
    ev = ev or _Evaluator(graph, budget)
    seen: set[int] = set()
    extra = []
    for k, v in enumerate(seq):
        if v in seen:
            extra.append(k)
        seen.add(v)
    for k in sorted(extra, key=lambda k: -graph.costs[seq[k]]):
        trial = seq[:k] + [-1] + seq[k + 1:]
        trial_seq = [v for v in trial if v >= 0]
        try:
            mem, _, _ = ev.run(trial_seq)
        except KeyError:
            continue
        if max(mem, default=0) <= budget and _valid(ev, trial_seq):
            seq = trial
    return [v for v in seq if v >= 0]


def _valid(ev: _Evaluator, seq: list[int]) -> bool:
    """Each node's copies never overlap: a recompute after the previous copy is freed."""
    _, _, end = ev.run(seq)
    last: dict[int, int] = {}
    for k, v in enumerate(seq):
        if v in last and end[last[v]] >= k:
            return False
        last[v] = k
    return True

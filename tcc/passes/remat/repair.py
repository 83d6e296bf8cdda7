"""Repair: start from a compute sequence and fix memory violations one move at a time.

The schedule is a compute sequence; every use is served by the latest copy of its input
and every copy is freed right after its last use (exactly the simulator's accounting).
While some compute exceeds the budget, look at the *first* such compute ``i``: every copy
live across ``i`` that ``i`` does not read is a candidate. Dropping candidate ``u`` after
its last use before ``i`` and recomputing it right before its next use ``j`` frees
``size(u)`` over the gap; the recompute needs ``u``'s inputs, so an input whose copy would
have to stay live across ``i`` is recomputed too (recursively, deeper only when nothing
shallower works). Two greedy rules choose the move:

* ``"ratio"``: rank candidates by the excess they would remove over the gap per unit of
  recompute cost (an estimate), evaluate the best ``width`` of them exactly (an
  incremental evaluation: the memory change is confined to the gap and the inserted
  computes), and apply the one that removes the most excess per cost;
* ``"first"``: the cheapest per byte whose move lowers the total excess at all.

Each move relieves the first over-budget compute (or the worst, or the last: different
starts). A last pass deletes every recompute the budget no longer needs. :func:`improve`
then ruins and recreates: it deletes the recomputes of a random stretch of the sequence,
repairs again with randomized priorities, and keeps the result when it is cheaper;
:func:`improve_many` shares the time among several starts by successive halving. Every
step is an exact evaluation, so a sequence this module returns fits the budget.
"""

from __future__ import annotations

import bisect
import math
import random
import time

import numpy as np

from tcc.passes.remat.graph import RematGraph, main_computes

GREEDY_RULES = ("ratio", "first")
VIOLATIONS = ("first", "worst", "last")  # which over-budget compute a move must relieve


class _Evaluator:
    def __init__(self, graph: RematGraph, budget: int) -> None:
        self.graph, self.budget = graph, budget
        self.upreds = [tuple(sorted(set(p))) for p in graph.preds]
        self._count = np.array([len(p) for p in self.upreds], dtype=np.int64)
        self._first = np.concatenate([[0], np.cumsum(self._count)])
        self._preds = np.array([u for p in self.upreds for u in p], dtype=np.int64)
        self._sizes = self.sizes = np.array(graph.sizes, dtype=np.int64)
        self.costs = np.array(graph.costs, dtype=np.float64)
        self._outputs = np.array(sorted(set(graph.outputs)), dtype=np.int64)

    def profile(self, order: np.ndarray) -> tuple[np.ndarray, ...]:
        """Memory at each compute, each copy's end, the uses of each copy (positions
        ``use_pos[use_ptr[c]:use_ptr[c + 1]]``, ascending; ``use_key`` orders them: copy
        times (length + 1) plus position) and the copies of each node
        (positions ``by_node[node_ptr[v]:node_ptr[v + 1]]``, ascending). Every use is served
        by the latest copy of its input; a copy ends at its last use, an output's latest
        copy at the end of the sequence."""
        length = len(order)
        span = length + 1
        counts = self._count[order]
        pos = np.repeat(np.arange(length), counts)
        before = np.repeat(np.cumsum(counts) - counts, counts)
        inputs = self._preds[np.repeat(self._first[order], counts) + np.arange(len(pos)) - before]
        by_key = _stable_argsort(order, self.graph.n)  # copies by (node, position)
        ranked = order[by_key] * span + by_key
        by_input = _stable_argsort(inputs, self.graph.n)  # uses by (input node, position)
        copy = np.empty_like(pos)  # the latest copy of the input before the use
        copy[by_input] = by_key[np.searchsorted(ranked, (inputs * span + pos)[by_input]) - 1]
        grouped = _stable_argsort(copy, length)  # uses by (copy, position)
        use_pos, use_copy = pos[grouped], copy[grouped]
        use_key = use_copy * span + use_pos
        use_ptr = _pointers(copy, length)
        end = np.arange(length)
        used = use_ptr[1:] > use_ptr[:-1]
        end[used] = use_pos[use_ptr[1:][used] - 1]
        if len(self._outputs):
            end[by_key[np.searchsorted(ranked, self._outputs * span + length) - 1]] = length
        sizes = self._sizes[order]
        delta = (np.bincount(np.arange(length), sizes, length + 2)
                 - np.bincount(end + 1, sizes, length + 2))
        node_ptr = _pointers(order, self.graph.n)
        return (np.cumsum(delta)[:length].astype(np.int64), end, use_pos, use_ptr, use_key,
                by_key, node_ptr)


def _stable_argsort(keys: np.ndarray, bound: int) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` for keys in ``[0, bound)``; through 16-bit keys
    (radix sort, several times faster here) when they fit."""
    return np.argsort(keys.astype(np.int16) if bound <= 1 << 15 else keys, kind="stable")


def _pointers(keys: np.ndarray, bound: int) -> np.ndarray:
    """Where each key's run starts once ``keys`` (in ``[0, bound)``) are sorted, and the
    end."""
    ptr = np.zeros(bound + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=bound), out=ptr[1:])
    return ptr


class _Sequence:
    """A compute sequence with its memory profile, each copy's uses and end, and where
    each node is computed."""

    def __init__(self, ev: _Evaluator, seq: list[int]) -> None:
        self.seq = seq
        self.order = np.asarray(seq, dtype=np.int64)
        self.mem, end, use_pos, use_ptr, self._use_key, by_node, node_ptr = ev.profile(self.order)
        self.end_array, self._use_pos_array, self._use_ptr_array = end, use_pos, use_ptr
        self.end: list[int] = end.tolist()
        self._use_ptr: list[int] = use_ptr.tolist()
        self._by_node: list[int] = by_node.tolist()
        self._node_ptr: list[int] = node_ptr.tolist()
        self.over = np.maximum(self.mem - ev.budget, 0)
        self.excess = int(self.over.sum())

    def uses(self, c: int) -> list[int]:
        """Positions served by the copy computed at ``c``, ascending."""
        return self._use_pos_array[self._use_ptr[c]:self._use_ptr[c + 1]].tolist()

    def latest_before(self, v: int, j: int) -> int:
        """The position of the latest copy of ``v`` before position ``j`` (one exists)."""
        ptr = self._node_ptr
        return self._by_node[bisect.bisect_left(self._by_node, j, ptr[v], ptr[v + 1]) - 1]

    def served(self, i: int) -> tuple[list[bool], list[int]]:
        """Per node: whether a copy computed before ``i`` lives to ``i`` or later, and the
        first position at or after ``i`` where it is computed (beyond the end: never). The
        latest copy of ``v`` before ``j > i`` is live across ``i`` exactly when one holds
        (copies of a node never overlap)."""
        n, length = len(self._node_ptr) - 1, len(self.seq)
        live = np.zeros(n, dtype=bool)
        live[self.order[:i][self.end_array[:i] >= i]] = True
        first = np.full(n, length + 1, dtype=np.int64)
        nodes, at = np.unique(self.order[i:], return_index=True)
        first[nodes] = at + i
        return live.tolist(), first.tolist()

    def around(self, copies: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
        """For copies (positions) used after ``i``: the last use before ``i`` (the copy's
        own position when none) and the first use after ``i``."""
        span = len(self.seq) + 1
        k = np.searchsorted(self._use_key, copies * span + i)
        before = np.where(k > self._use_ptr_array[copies], self._use_pos_array[k - 1], copies)
        return before, self._use_pos_array[k]


def _chain(s: _Sequence, upreds: list[tuple[int, ...]], u: int, i: int, j: int,
           depth: int, served: tuple[list[bool], list[int]] | None = None) -> list[int] | None:
    """``u`` and the inputs it needs recomputed before position ``j`` (ascending ids):
    an input whose latest copy is freed before ``i`` is recomputed, at most ``depth``
    levels deep. ``served``: :meth:`_Sequence.served` at ``i``."""
    live, first = served or s.served(i)
    need: set[int] = set()

    def visit(v: int, level: int) -> bool:
        need.add(v)
        for p in upreds[v]:
            if p in need or live[p] or first[p] < j:  # its latest copy is live across i
                continue
            if level >= depth or not visit(p, level + 1):
                return False
        return True

    return sorted(need) if visit(u, 0) else None


def _excess_after(s: _Sequence, ev: _Evaluator, c: int, a: int, j: int,
                  chain: list[int]) -> int:
    """Total excess once copy ``c`` ends at ``a`` and ``chain`` is inserted before ``j``.

    Only the gap ``(a, j)`` and the inserted computes change: the new copy of ``u`` takes
    over the old one's uses from ``j`` on, the other inserted copies serve only the
    inserted computes, and an input copy freed inside the gap is kept to the insertion."""
    sizes, budget = ev.graph.sizes, ev.budget
    u = s.seq[c]
    block = {w: b for b, w in enumerate(chain)}
    last_use: dict[int, int] = {}  # old copy serving the block -> last block position
    block_end = [len(chain)] * len(chain)  # u's new copy lives past the block
    for b, w in enumerate(chain):
        for p in ev.upreds[w]:
            if p in block:
                block_end[block[p]] = b
            else:
                last_use[s.latest_before(p, j)] = b
    block_end[block[u]] = len(chain)
    gap = s.mem[a + 1:j] - sizes[u]
    on_block = [0] * (len(chain) + 1)  # difference array over block positions
    base = int(s.mem[j]) - sizes[s.seq[j]] - sizes[u]
    for cp, b in last_use.items():
        if s.end[cp] < j:  # freed in the gap: now kept to its last use in the block
            gap[s.end[cp] - a:] += sizes[s.seq[cp]]
            on_block[0] += sizes[s.seq[cp]]
            on_block[b + 1] -= sizes[s.seq[cp]]
    for b, w in enumerate(chain):
        on_block[b] += sizes[w]
        on_block[block_end[b] + 1 if block_end[b] < len(chain) else len(chain)] -= sizes[w]
    excess = s.excess - int(s.over[a + 1:j].sum()) + int(np.maximum(gap - budget, 0).sum())
    live = base
    for b in range(len(chain)):
        live += on_block[b]
        excess += max(0, live - budget)
    return excess


def _move(s: _Sequence, ev: _Evaluator, greedy: str, width: int, depth: int,
          factor: np.ndarray, bias: float, violation: str) -> list[int] | None:
    """The sequence after the chosen move for one violation, or None if stuck."""
    costs, upreds = ev.graph.costs, ev.upreds
    if violation == "first":
        i = int(np.argmax(s.over > 0))
    elif violation == "last":
        i = len(s.over) - 1 - int(np.argmax(s.over[::-1] > 0))
    else:
        i = int(np.argmax(s.over))
    length = len(s.seq)
    copies = np.flatnonzero((s.end_array[:i] > i) & (s.end_array[:i] < length))
    nodes = s.order[copies]
    keep = ~np.isin(nodes, upreds[s.seq[i]])
    copies, nodes = copies[keep], nodes[keep]
    before, after = s.around(copies, i)
    price = (ev.costs[nodes] + bias) * factor[nodes]
    if greedy == "ratio":  # the excess removed over the gap, per unit of cost
        over_at = np.flatnonzero(s.over)
        inside = (over_at > before[:, None]) & (over_at < after[:, None])
        freed = np.minimum(s.over[over_at][None, :], ev.sizes[nodes][:, None])
        key = -(freed * inside).sum(axis=1) / price
    else:
        key = price / np.maximum(ev.sizes[nodes], 1)
    ranked = np.lexsort((copies, key))
    # for "ratio", -key bounds a move's exact excess removed per cost from above (the gap
    # loses at most min(over, size) per compute, a chain costs at least ``u`` itself):
    # once the best move beats the bound, no later candidate can
    bound = (-key[ranked] * (1 + 1e-9)).tolist() if greedy == "ratio" else None
    cands = list(zip(copies[ranked].tolist(), before[ranked].tolist(),
                     after[ranked].tolist(), strict=True))
    level, served = depth, s.served(i)
    while True:
        best, best_key, tried, deeper = None, 0.0, 0, False
        for rank, (c, a, j) in enumerate(cands):
            if best is not None and bound is not None and bound[rank] < best_key:
                break
            chain = _chain(s, upreds, s.seq[c], i, j, level, served)
            if chain is None:
                deeper = True
                continue
            gained = s.excess - _excess_after(s, ev, c, a, j, chain)
            if gained <= 0:
                continue
            if greedy == "first":
                return s.seq[:j] + chain + s.seq[j:]
            key = gained / ((sum(costs[w] for w in chain) + bias) * factor[s.seq[c]])
            if best is None or key > best_key:
                best, best_key = s.seq[:j] + chain + s.seq[j:], key
            tried += 1
            if tried >= width:
                break
        if best is not None or not deeper or level >= ev.graph.n:
            return best
        level *= 2  # every shallow move is stuck: allow longer recompute chains


def repair_sequence(graph: RematGraph, budget: int, *, seq: list[int] | None = None,
                    rng: random.Random | None = None, spread: float = 1.0,
                    greedy: str = "ratio", width: int = 16, depth: int = 4,
                    violation: str = "first",
                    deadline: float = float("inf")) -> list[int] | None:
    """A compute sequence within ``budget`` (from ``seq``, default: the fixed order), or
    None when the repair gets stuck or runs past ``deadline``."""
    if greedy not in GREEDY_RULES:
        raise ValueError(f"unknown greedy rule {greedy!r}; expected one of {GREEDY_RULES}")
    if violation not in VIOLATIONS:
        raise ValueError(f"unknown violation {violation!r}; expected one of {VIOLATIONS}")
    return _repair(_Evaluator(graph, budget), list(range(graph.n)) if seq is None else seq,
                   rng=rng, spread=spread, greedy=greedy, width=width, depth=depth,
                   violation=violation, deadline=deadline)


def _repair(ev: _Evaluator, seq: list[int], *, rng: random.Random | None, spread: float,
            greedy: str, deadline: float, width: int = 16, depth: int = 4,
            violation: str = "first") -> list[int] | None:
    graph = ev.graph
    bias = 0.01 * graph.total_cost / max(graph.n, 1) + 1e-9
    factor = np.array([2.0 ** rng.uniform(-spread, spread) for _ in range(graph.n)] if rng
                      else [1.0] * graph.n)
    s = _Sequence(ev, list(seq))
    steps = 0
    while s.excess > 0:
        steps += 1
        if time.perf_counter() > deadline or steps > 20 * graph.n:
            return None
        new = _move(s, ev, greedy, width, depth, factor, bias, violation)
        if new is None:
            return None
        s = _Sequence(ev, new)
    return prune(graph, ev.budget, s.seq, ev)


def improve(graph: RematGraph, budget: int, seq: list[int], *, rng: random.Random,
            deadline: float, stretch: float = 0.03) -> list[int]:
    """Ruin and recreate until ``deadline``: delete the recomputes in a random stretch of
    about ``stretch`` of the sequence, repair with randomized priorities (the "first"
    rule three times in ten), keep if cheaper."""
    costs, ev = graph.costs, _Evaluator(graph, budget)  # one evaluator for every repair
    best, best_cost = seq, sum(costs[v] for v in seq)
    while time.perf_counter() < deadline:
        main = main_computes(best)
        length = max(2, int(stretch * len(best)))
        lo = rng.randrange(max(1, len(best) - length))
        trial = [v for k, v in enumerate(best) if main[k] or not lo <= k < lo + length]
        if len(trial) == len(best):
            continue
        greedy = "first" if rng.random() < 0.3 else "ratio"
        fixed = _repair(ev, trial, rng=rng, spread=rng.uniform(0, 1), greedy=greedy,
                        deadline=deadline)
        if fixed is not None and (cost := sum(costs[v] for v in fixed)) < best_cost:
            best, best_cost = fixed, cost
    return best


def improve_many(graph: RematGraph, budget: int, starts: list[list[int]], *,
                 rng: random.Random, deadline: float) -> list[int]:
    """Successive halving over starting sequences: improve each for an equal share of the
    time, keep the cheaper half, repeat; the last one gets what is left. How far a start
    improves is hard to tell from its cost (on the 1000-node random graph at 80 %, the
    cheapest of six starts ends the worst), so every start gets a first try."""
    costs = graph.costs

    def cost(seq: list[int]) -> float:
        return sum(costs[v] for v in seq)

    pool = sorted({tuple(seq) for seq in starts}, key=cost)
    kept = [list(seq) for seq in pool]
    while len(kept) > 1 and time.perf_counter() < deadline:
        rounds = math.ceil(math.log2(len(kept))) + 1
        share = (deadline - time.perf_counter()) / rounds / len(kept)
        kept = sorted((improve(graph, budget, seq, rng=rng,
                               deadline=time.perf_counter() + share) for seq in kept), key=cost)
        kept = kept[:max(1, len(kept) // 2)]
    return improve(graph, budget, kept[0], rng=rng, deadline=deadline)


def prune(graph: RematGraph, budget: int, seq: list[int],
          ev: _Evaluator | None = None) -> list[int]:
    """Delete recomputes (most expensive first) while the sequence still fits."""
    ev = ev or _Evaluator(graph, budget)
    s = _Sequence(ev, list(seq))
    gone: list[int] = []  # positions in ``seq`` deleted so far, ascending
    extra = [k for k, main in enumerate(main_computes(seq)) if not main]
    for k0 in sorted(extra, key=lambda k: -graph.costs[seq[k]]):
        k = k0 - bisect.bisect_left(gone, k0)
        if _fits_without(s, ev, k):
            bisect.insort(gone, k0)
            s = _Sequence(ev, s.seq[:k] + s.seq[k + 1:])
    return s.seq


def _fits_without(s: _Sequence, ev: _Evaluator, k: int) -> bool:
    """Whether the sequence still fits once the recompute at ``k`` is deleted.

    Its uses go to the previous copy of the node, kept from its old end up to ``k`` (past
    ``k`` the two copies weigh the same); inputs whose last use was ``k`` end earlier.
    Copies of a node never overlap, so they do not after the deletion either."""
    sizes = ev.graph.sizes
    w = s.seq[k]
    lo = s.end[s.latest_before(w, k)] + 1
    if s.end[k] == k or lo >= k:  # nothing is kept longer: memory only goes down
        return True
    grow = s.mem[lo:k] + sizes[w]
    for p in ev.upreds[w]:
        cp = s.latest_before(p, k)
        if s.end[cp] == k:
            uses = s.uses(cp)
            stop = uses[-2] if len(uses) >= 2 else cp
            grow[max(stop + 1 - lo, 0):] -= sizes[p]
    return int(grow.max()) <= ev.budget

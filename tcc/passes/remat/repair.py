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
from typing import NamedTuple

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
        self.sizes = np.array(graph.sizes, dtype=np.int64)
        self.costs = np.array(graph.costs, dtype=np.float64)
        self._outputs = np.array(sorted(set(graph.outputs)), dtype=np.int64)

    def profile(self, order: np.ndarray) -> _Profile:
        """The sequence's memory profile, copies and uses, in one stable sort.

        Events in position order (at each position, the uses of its inputs, then the new
        copy) sorted stably by node: every node's events are in position order and start
        with a copy, and the uses a copy serves (those before the node's next copy) follow
        it up to the next copy event."""
        length, n = len(order), self.graph.n
        span = length + 1
        counts = self._count[order]
        slot = np.cumsum(counts + 1) - (counts + 1)  # where each position's events start
        pos = np.repeat(np.arange(length), counts)
        within = np.arange(len(pos)) - np.repeat(np.cumsum(counts) - counts, counts)
        inputs = self._preds[np.repeat(self._first[order], counts) + within]
        copy_slot = slot + counts
        node = np.empty(len(pos) + length, dtype=np.int64)
        at = np.empty_like(node)
        node[slot[pos] + within], at[slot[pos] + within] = inputs, pos
        node[copy_slot], at[copy_slot] = order, np.arange(length)
        is_copy = np.zeros(len(node), dtype=bool)
        is_copy[copy_slot] = True
        ranked = _stable_argsort(node, n)
        node, at, is_copy = node[ranked], at[ranked], is_copy[ranked]
        key = node * span + at
        copy_at = np.flatnonzero(is_copy)
        by_node = at[copy_at]  # every copy, by (node, position)
        firsts = copy_at - np.arange(length)  # uses before each copy, in the sorted events
        use_start = np.empty(length, dtype=np.int64)
        use_stop = np.empty(length, dtype=np.int64)
        use_start[by_node] = firsts
        use_stop[by_node] = np.append(firsts[1:], len(pos))
        use_pos, use_key = at[~is_copy], key[~is_copy]
        end = np.arange(length)
        used = use_stop > use_start
        end[used] = use_pos[use_stop[used] - 1]
        node_ptr = _pointers(order, n)
        if len(self._outputs):
            end[by_node[node_ptr[self._outputs + 1] - 1]] = length
        sizes = self.sizes[order]
        delta = (np.bincount(np.arange(length), sizes, length + 2)
                 - np.bincount(end + 1, sizes, length + 2))
        return _Profile(np.cumsum(delta)[:length].astype(np.int64), end, use_pos, use_start,
                        use_stop, use_key, by_node, node_ptr)


class _Profile(NamedTuple):
    """Memory at each compute; each copy's end; the uses of the copy at ``c``:
    ``use_pos[use_start[c]:use_stop[c]]``, ascending (``use_key``: node times (length + 1)
    plus position, ascending over all uses); every node's copies:
    ``by_node[node_ptr[v]:node_ptr[v + 1]]``, ascending. Every use is served by the latest
    copy of its input; a copy ends at its last use, an output's latest copy at the end of
    the sequence."""

    mem: np.ndarray
    end: np.ndarray
    use_pos: np.ndarray
    use_start: np.ndarray
    use_stop: np.ndarray
    use_key: np.ndarray
    by_node: np.ndarray
    node_ptr: np.ndarray


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
        self.profile = prof = ev.profile(self.order)
        self.mem, self.end_array = prof.mem, prof.end
        self.end: list[int] = prof.end.tolist()
        self._use_start: list[int] = prof.use_start.tolist()
        self._use_stop: list[int] = prof.use_stop.tolist()
        self._by_node: list[int] = prof.by_node.tolist()
        self._node_ptr: list[int] = prof.node_ptr.tolist()
        self.over = np.maximum(self.mem - ev.budget, 0)
        self.excess = int(self.over.sum())

    def uses(self, c: int) -> list[int]:
        """Positions served by the copy computed at ``c``, ascending."""
        return self.profile.use_pos[self._use_start[c]:self._use_stop[c]].tolist()

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
        prof = self.profile
        k = np.searchsorted(prof.use_key, self.order[copies] * (len(self.seq) + 1) + i)
        before = np.where(k > prof.use_start[copies], prof.use_pos[k - 1], copies)
        return before, prof.use_pos[k]


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
    price_u = price[ranked].tolist() if bound is not None else []
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
            price = (sum(costs[w] for w in chain) + bias) * factor[s.seq[c]]
            if best is not None and bound is not None and bound[rank] * price_u[rank] < (
                    best_key * price):  # not even the bound with the chain's cost beats it
                tried += 1
                if tried >= width:
                    break
                continue
            gained = s.excess - _excess_after(s, ev, c, a, j, chain)
            if gained <= 0:
                continue
            if greedy == "first":
                return s.seq[:j] + chain + s.seq[j:]
            key = gained / price
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


# the share of ruins that delete by graph neighbourhood instead of by position: on the
# 1000-node random graph at 80 %, 5-s means over 30 seeds 4.38 % (positions only) ->
# 4.12 % (half and half); 0.3, 0.7 and 1.0 gave 4.10, 4.22 and 4.19 over 10 seeds
RELATED_RUIN = 0.5


def improve(graph: RematGraph, budget: int, seq: list[int], *, rng: random.Random,
            deadline: float, stretch: float = 0.03) -> list[int]:
    """Ruin and recreate until ``deadline``: delete the recomputes in a random stretch of
    about ``stretch`` of the sequence, or (``RELATED_RUIN`` of the time) every recompute
    of a recomputed node and of its inputs and users, wherever they are; repair with
    randomized priorities (the "first" rule three times in ten), keep if cheaper."""
    costs, ev = graph.costs, _Evaluator(graph, budget)  # one evaluator for every repair
    best, best_cost = seq, sum(costs[v] for v in seq)
    while time.perf_counter() < deadline:
        main = main_computes(best)
        if rng.random() < RELATED_RUIN:  # every recompute of a node and its neighbours
            extra = [v for k, v in enumerate(best) if not main[k]]
            if not extra:
                continue
            v = rng.choice(extra)
            related = {v, *graph.preds[v], *graph.succs[v]}
            trial = [u for k, u in enumerate(best) if main[k] or u not in related]
        else:
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
    """Delete recomputes (most expensive first) while the sequence still fits.

    A deletion changes only the copies of its node and of the node's inputs, and memory
    only on a window of positions that ends at it; in one pass over the sequence, every
    deletion that shares no node and no window position with one accepted before in the
    pass is checked exactly on the same profile, the others wait for the next pass (the
    profile is rebuilt once per pass, not once per deletion)."""
    ev = ev or _Evaluator(graph, budget)
    s = _Sequence(ev, list(seq))
    pending = sorted((k for k, main in enumerate(main_computes(seq)) if not main),
                     key=lambda k: -graph.costs[seq[k]])
    while pending:
        accepted, waiting = _prune_pass(s, ev, pending)
        if not accepted:
            break
        deleted = sorted(accepted)
        gone = set(deleted)
        trial = _Sequence(ev, [v for k, v in enumerate(s.seq) if k not in gone])
        if trial.excess:  # a safety net (never seen): keep only the first, checked exactly
            first = accepted[0]
            waiting = accepted[1:] + waiting
            deleted = [first]
            trial = _Sequence(ev, s.seq[:first] + s.seq[first + 1:])
        s = trial
        pending = [k - bisect.bisect_left(deleted, k) for k in waiting]
    return s.seq


def _prune_pass(s: _Sequence, ev: _Evaluator, pending: list[int]) -> tuple[list[int],
                                                                           list[int]]:
    """The deletions of one pass (positions, in ``pending``'s order) that fit together, and
    those that wait for the next pass."""
    windows: list[tuple[int, int]] = []
    touched: set[int] = set()
    accepted: list[int] = []
    waiting: list[int] = []
    for k in pending:
        fits, lo = _deletion(s, ev, k)
        nodes = {s.seq[k], *ev.upreds[s.seq[k]]}
        if not touched.isdisjoint(nodes) or any(lo <= hi and low <= k for low, hi in windows):
            waiting.append(k)
        elif fits:
            windows.append((lo, k))
            touched |= nodes
            accepted.append(k)
    return accepted, waiting


def _fits_without(s: _Sequence, ev: _Evaluator, k: int) -> bool:
    """Whether the sequence still fits once the recompute at ``k`` is deleted."""
    return _deletion(s, ev, k)[0]


def _deletion(s: _Sequence, ev: _Evaluator, k: int) -> tuple[bool, int]:
    """Whether the sequence still fits once the recompute at ``k`` is deleted, and where
    the window of positions whose memory the deletion changes starts (it ends at ``k``).

    The recompute's uses go to the previous copy of the node, kept from its old end up to
    ``k`` (past ``k`` the two copies weigh the same); inputs whose last use was ``k`` end
    earlier. Copies of a node never overlap, so they do not after the deletion either."""
    sizes = ev.graph.sizes
    w = s.seq[k]
    lo = s.end[s.latest_before(w, k)] + 1
    start = min(lo, k)
    shrink = []
    for p in ev.upreds[w]:
        cp = s.latest_before(p, k)
        if s.end[cp] == k:
            uses = s.uses(cp)
            stop = uses[-2] if len(uses) >= 2 else cp
            shrink.append((stop + 1, sizes[p]))
            start = min(start, stop + 1)
    if s.end[k] == k or lo >= k:  # nothing is kept longer: memory only goes down
        return True, start
    grow = s.mem[lo:k] + sizes[w]
    for at, size in shrink:
        grow[max(at - lo, 0):] -= size
    return int(grow.max()) <= ev.budget, start

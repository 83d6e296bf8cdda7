"""Memory planning: every temporary gets an offset in one arena; live ones never overlap.

A temporary (each computed copy of one, when a budget makes tcc recompute) lives from the
step that writes it to the last step that reads it.
Placement is best-fit by decreasing size (each buffer goes to the lowest offset where it
overlaps no placed buffer whose lifetime it shares), optionally improved by CP-SAT's
no-overlap-2D over (time, address) rectangles within a time limit. The plan is plain data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tcc.ir import program as P

ALIGN = 64


@dataclass(frozen=True, slots=True)
class Placement:
    name: str
    offset: int
    size: int
    first: int  # index of the statement that writes it
    last: int  # index of the last statement that reads it


@dataclass(frozen=True, slots=True)
class MemoryPlan:
    """Arena offsets for the temporaries of a program, with the predicted peak.

    ``arena_bytes`` is the arena's size; ``peak_bytes`` also counts the program's inputs and
    outputs, which live outside the arena."""

    placements: tuple[Placement, ...]
    arena_bytes: int
    io_bytes: int
    method: str

    @property
    def peak_bytes(self) -> int:
        return self.arena_bytes + self.io_bytes

    def offsets(self) -> dict[str, int]:
        return {p.name: p.offset for p in self.placements}

    def to_json(self) -> str:
        return json.dumps({
            "placements": [list(_astuple(p)) for p in self.placements],
            "arena_bytes": self.arena_bytes, "io_bytes": self.io_bytes, "method": self.method,
        })

    @staticmethod
    def from_json(text: str) -> MemoryPlan:
        data = json.loads(text)
        placements = tuple(Placement(*p) for p in data["placements"])
        return MemoryPlan(placements, data["arena_bytes"], data["io_bytes"], data["method"])


def _astuple(p: Placement) -> tuple:
    return (p.name, p.offset, p.size, p.first, p.last)


def tensor_bytes(tensor: P.Tensor) -> int:
    return int(np.prod(tensor.shape, dtype=np.int64)) * np.dtype(tensor.dtype).itemsize


def _overlaps(a: Placement, first: int, last: int) -> bool:
    return not (a.last < first or last < a.first)


def best_fit(buffers: list[tuple[str, int, int, int]]) -> list[Placement]:
    """``buffers``: (name, bytes, first, last). Largest first, lowest free offset."""
    placed: list[Placement] = []
    for name, size, first, last in sorted(buffers, key=lambda b: (-b[1], b[2], b[0])):
        size = -(-max(size, 1) // ALIGN) * ALIGN
        busy = sorted((p.offset, p.offset + p.size) for p in placed
                      if _overlaps(p, first, last))
        offset = 0
        for start, end in busy:
            if offset + size <= start:
                break
            offset = max(offset, end)
        placed.append(Placement(name, offset, size, first, last))
    return placed


def _refine_cpsat(placed: list[Placement], time_limit: float) -> list[Placement]:
    """Try to shrink the arena with CP-SAT's no-overlap-2D (time x address)."""
    from ortools.sat.python import cp_model

    top = max(p.offset + p.size for p in placed)
    lower = max(
        sum(p.size for p in placed if p.first <= t <= p.last)
        for t in range(max(p.last for p in placed) + 1)
    )
    if top <= lower:
        return placed
    unit = ALIGN
    model = cp_model.CpModel()
    height = model.NewIntVar(lower // unit, top // unit, "arena")
    x_intervals, y_intervals, offsets = [], [], []
    for p in placed:
        offset = model.NewIntVar(0, top // unit - p.size // unit, f"o_{p.name}")
        end = model.NewIntVar(0, top // unit, f"e_{p.name}")
        y_intervals.append(model.NewIntervalVar(offset, p.size // unit, end, f"y_{p.name}"))
        x_intervals.append(model.NewFixedSizeIntervalVar(p.first, p.last - p.first + 1,
                                                         f"x_{p.name}"))
        model.Add(end <= height)
        model.AddHint(offset, p.offset // unit)
        offsets.append(offset)
    model.AddNoOverlap2D(x_intervals, y_intervals)
    model.Minimize(height)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = 2
    solver.parameters.random_seed = 0
    if solver.Solve(model) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return placed
    refined = [Placement(p.name, solver.Value(o) * unit, p.size, p.first, p.last)
               for p, o in zip(placed, offsets, strict=True)]
    if max(p.offset + p.size for p in refined) < top:
        return refined
    return placed


def plan_memory(
    program: P.Program, instances: Sequence | None = None, *, solver_time_limit: float = 0.0
) -> MemoryPlan:
    """Offsets for every temporary instance (name, tensor, first step, last step); by
    default each temporary once, in program order."""
    if instances is None:
        from tcc.passes.execution import in_order

        instances = in_order(program).instances
    spans = {i.name: (i.first, i.last) for i in instances}
    buffers = [(i.name, tensor_bytes(program.tensor(i.tensor)), i.first, i.last)
               for i in instances]
    placed = best_fit(buffers) if buffers else []
    method = "best-fit"
    if placed and solver_time_limit > 0 and len(placed) > 1:
        refined = _refine_cpsat(placed, solver_time_limit)
        if refined is not placed:
            placed, method = refined, "best-fit+cp-sat"
    arena = max((p.offset + p.size for p in placed), default=0)
    io = sum(tensor_bytes(program.tensor(n)) for n in (*program.inputs, *program.outputs))
    order = {name: k for k, name in enumerate(spans)}
    placed.sort(key=lambda p: order[p.name])
    return MemoryPlan(tuple(placed), arena, io, method)

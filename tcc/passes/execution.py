"""The execution plan of a Program: which statement runs when, on which buffer instances.

Without a memory budget every statement runs once, in program order. With one, the program
becomes a rematerialization graph (one node per computed tensor: all the statements that
write it, cost = their arithmetic, size = the tensor's bytes; inputs and outputs live
outside the arena, so outputs weigh nothing), CP-SAT decides what to keep, free and
recompute, and each computed copy of a tensor becomes a buffer *instance* with its own
lifetime. Memory planning then places instances in one arena. The plan is plain data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tcc.errors import MemoryBudgetError
from tcc.ir import program as P
from tcc.passes.memplan import tensor_bytes


@dataclass(frozen=True, slots=True)
class Instance:
    """One computed copy of a temporary, live from step ``first`` to step ``last``."""

    name: str
    tensor: str
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class ExecutionPlan:
    """``steps``: (statement index, {tensor: instance name} for the temporaries it touches)."""

    steps: tuple[tuple[int, tuple[tuple[str, str], ...]], ...]
    instances: tuple[Instance, ...]
    remat: object = None  # the RematPlan when a budget shaped this plan

    @property
    def recomputed_statements(self) -> int:
        return len(self.steps) - len({index for index, _ in self.steps})


def temporaries(program: P.Program) -> tuple[str, ...]:
    keep = set(program.inputs) | set(program.outputs)
    return tuple(dict.fromkeys(s.target for s in program.statements if s.target not in keep))


def _bindings(program: P.Program, stmt: P.Statement, current: dict[str, str]) -> tuple:
    names = dict.fromkeys([stmt.target, *(r.tensor for r in P.statement_reads(stmt))])
    return tuple((n, current[n]) for n in names if n in current)


def _instances(program: P.Program, runs: list[tuple[int, dict[str, str]]]) -> ExecutionPlan:
    """Instances' lifetimes from the steps that touch them."""
    spans: dict[str, list] = {}
    steps = []
    for number, (index, current) in enumerate(runs):
        binding = _bindings(program, program.statements[index], current)
        steps.append((index, binding))
        for tensor, instance in binding:
            span = spans.setdefault(instance, [tensor, number, number])
            span[2] = number
    instances = tuple(Instance(name, t, a, b) for name, (t, a, b) in spans.items())
    return ExecutionPlan(tuple(steps), instances)


def in_order(program: P.Program) -> ExecutionPlan:
    """Every statement once, in program order; one instance per temporary."""
    current = {name: name for name in temporaries(program)}
    return _instances(program, [(k, current) for k in range(len(program.statements))])


def statement_cost(program: P.Program, stmt: P.Statement) -> float:
    """Arithmetic of one statement: iterations times operations per iteration."""
    sizes = program.sizes
    iterations = math.prod(sizes[i] for i in P.statement_indices(stmt))

    def ops(expr: P.Expr) -> int:
        return (0 if isinstance(expr, P.Read | P.Constant) else 1) + sum(
            ops(c) for c in P.children(expr))

    return float(iterations * max(ops(stmt.expr) + (1 if stmt.reduce else 0), 1))


def remat_graph(program: P.Program):
    """The program as a RematGraph: nodes are computed tensors in order of completion."""
    from tcc.passes.remat.graph import RematGraph

    inputs = set(program.inputs)
    writers: dict[str, list[int]] = {}
    for k, stmt in enumerate(program.statements):
        writers.setdefault(stmt.target, []).append(k)
    nodes = sorted(writers, key=lambda t: writers[t][-1])
    position = {t: v for v, t in enumerate(nodes)}
    outputs = set(program.outputs)
    preds, costs, sizes = [], [], []
    for tensor in nodes:
        reads = {r.tensor for k in writers[tensor]
                 for r in P.statement_reads(program.statements[k])}
        preds.append(tuple(sorted(position[r] for r in reads
                                  if r not in inputs and r != tensor)))
        costs.append(sum(statement_cost(program, program.statements[k]) for k in writers[tensor]))
        sizes.append(0 if tensor in outputs else tensor_bytes(program.tensor(tensor)))
    graph = RematGraph(tuple(costs), tuple(sizes), tuple(preds), tuple(nodes),
                       outputs=tuple(position[t] for t in nodes if t in outputs))
    # a tensor whose first writer accumulates cannot be recomputed from scratch
    max_copies = [1 if program.statements[writers[t][0]].accumulate or t in outputs else 2
                  for t in nodes]
    return graph, nodes, writers, max_copies


def with_budget(
    program: P.Program, budget: int, *, time_limit: float = 10.0, seed: int = 0
) -> ExecutionPlan:
    """Plan recomputation so the live temporaries never exceed ``budget`` bytes."""
    from tcc.passes.remat import solve

    graph, nodes, writers, max_copies = remat_graph(program)
    if not nodes:
        return in_order(program)
    try:
        plan = solve(graph, budget, time_limit=time_limit, seed=seed, max_copies=max_copies)
    except MemoryBudgetError as exc:
        raise MemoryBudgetError(f"memory_budget={budget} bytes cannot be met: {exc}") from None
    runs: list[tuple[int, dict[str, str]]] = []
    current: dict[str, str] = {}
    copies: dict[str, int] = {}
    for kind, v in plan.events:
        if kind != "compute":
            continue
        tensor = nodes[v]
        if tensor not in program.outputs:
            copies[tensor] = copies.get(tensor, 0) + 1
            current = {**current, tensor: f"{tensor}@{copies[tensor]}"}
        for k in writers[tensor]:
            runs.append((k, current))
    execution = _instances(program, runs)
    return ExecutionPlan(execution.steps, execution.instances, plan)


def plan_execution(
    program: P.Program, budget: int | None = None, *, time_limit: float = 10.0, seed: int = 0
):
    """The execution plan and the memory plan whose arena fits ``budget`` bytes.

    The solver bounds the bytes live at once; placing them in one arena can need more
    (fragmentation). Placement is refined with CP-SAT, and if the arena still exceeds the
    budget, the solver is asked again with the budget scaled down by the overshoot."""
    from tcc.passes.memplan import plan_memory

    if budget is None:
        execution = in_order(program)
        return execution, plan_memory(program, execution.instances)
    target = budget
    for _ in range(4):
        execution = with_budget(program, target, time_limit=time_limit, seed=seed)
        memory = plan_memory(program, execution.instances)
        if memory.arena_bytes > budget:
            memory = plan_memory(program, execution.instances,
                                 solver_time_limit=min(2.0, time_limit))
        if memory.arena_bytes <= budget:
            return execution, memory
        target = int(target * budget / memory.arena_bytes) - 64
    raise MemoryBudgetError(
        f"memory_budget={budget} bytes: the schedule fits, but no arena layout of its "
        f"buffers does (best {memory.arena_bytes} bytes); allow about {memory.arena_bytes}")

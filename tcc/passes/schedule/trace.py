"""A schedule as plain data: a trace of primitive calls, replayable and JSON-serializable.

::

    s = Schedule(kernel)
    s.split("i", 16)
    s.vectorize("i.inner", 16)
    s.kernel        # the scheduled kernel
    s.trace         # Trace(steps=(Step("split", ("i", 16), ()), ...))
    print(s.trace)  # split(i, 16)
                    # vectorize(i.inner, 16)
    Trace.from_json(s.trace.to_json()).apply(kernel) == s.kernel
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tcc.errors import ScheduleError
from tcc.ir import loops as L
from tcc.ir.verify import verify_kernel
from tcc.passes.schedule.primitives import PRIMITIVES

Value = Any  # str | int | None | tuple of those: what primitives take


def _frozen(value: Value) -> Value:
    """Lists (from JSON or callers) become tuples, so steps compare and hash."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if value is None or isinstance(value, str | int) and not isinstance(value, bool):
        return value
    raise ScheduleError(f"schedule arguments are strings, integers or tuples; got {value!r}")


def _text(value: Value) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(map(_text, value)) + ("," if len(value) == 1 else "") + ")"
    return str(value)


@dataclass(frozen=True, slots=True)
class Step:
    """One primitive call: ``primitive(kernel, *args, **dict(kwargs))``."""

    primitive: str
    args: tuple[Value, ...] = ()
    kwargs: tuple[tuple[str, Value], ...] = ()

    @staticmethod
    def of(primitive: str, *args: Value, **kwargs: Value) -> Step:
        if primitive not in PRIMITIVES:
            raise ScheduleError(f"unknown schedule primitive {primitive!r}; known: "
                                f"{sorted(PRIMITIVES)}")
        kept = tuple(sorted((k, _frozen(v)) for k, v in kwargs.items() if v is not None))
        return Step(primitive, _frozen(args), kept)

    def apply(self, kernel: L.Kernel) -> L.Kernel:
        return PRIMITIVES[self.primitive](kernel, *self.args, **dict(self.kwargs))

    def to_json(self) -> dict:
        return {"primitive": self.primitive, "args": list(self.args),
                "kwargs": dict(self.kwargs)}

    @staticmethod
    def from_json(data: dict) -> Step:
        return Step.of(data["primitive"], *data.get("args", ()), **data.get("kwargs", {}))

    def __str__(self) -> str:
        parts = [_text(a) for a in self.args] + [f"{k}={_text(v)}" for k, v in self.kwargs]
        return f"{self.primitive}({', '.join(parts)})"


@dataclass(frozen=True, slots=True)
class Trace:
    """A schedule: steps applied in order to the unscheduled kernel."""

    steps: tuple[Step, ...] = ()

    def apply(self, kernel: L.Kernel, *, verify: bool = False) -> L.Kernel:
        """Replay every step on ``kernel``; with ``verify``, check the IR after each."""
        for step in self.steps:
            kernel = step.apply(kernel)
            if verify:
                verify_kernel(kernel)
        return kernel

    def then(self, step: Step) -> Trace:
        return Trace((*self.steps, step))

    def to_json(self) -> str:
        return json.dumps({"steps": [s.to_json() for s in self.steps]})

    @staticmethod
    def from_json(text: str | dict) -> Trace:
        data = json.loads(text) if isinstance(text, str) else text
        return Trace(tuple(Step.from_json(s) for s in data["steps"]))

    def __str__(self) -> str:
        return "\n".join(map(str, self.steps))

    def __len__(self) -> int:
        return len(self.steps)


class Schedule:
    """Applies primitives to a kernel one call at a time and records them as a Trace.

    A call that raises ScheduleError changes nothing and is not recorded.
    """

    def __init__(self, kernel: L.Kernel, *, verify: bool = False) -> None:
        self.original = kernel
        self.kernel = kernel
        self.trace = Trace()
        self.verify = verify

    def apply(self, primitive: str, *args: Value, **kwargs: Value) -> Schedule:
        step = Step.of(primitive, *args, **kwargs)
        kernel = step.apply(self.kernel)
        if self.verify:
            verify_kernel(kernel)
        self.kernel, self.trace = kernel, self.trace.then(step)
        return self

    def split(self, loop: str, factor: int, *, outer: str | None = None,
              inner: str | None = None) -> Schedule:
        return self.apply("split", loop, factor, outer=outer, inner=inner)

    def reorder(self, *loops: str) -> Schedule:
        return self.apply("reorder", *loops)

    def fuse(self, outer: str, inner: str, *, name: str | None = None) -> Schedule:
        return self.apply("fuse", outer, inner, name=name)

    def tile(self, loop_x: str, loop_y: str, fx: int, fy: int) -> Schedule:
        return self.apply("tile", loop_x, loop_y, fx, fy)

    def unroll(self, loop: str, *, max_statements: int | None = None) -> Schedule:
        return self.apply("unroll", loop, max_statements=max_statements)

    def vectorize(self, loop: str, lanes: int) -> Schedule:
        return self.apply("vectorize", loop, lanes)

    def parallel(self, loop: str) -> Schedule:
        return self.apply("parallel", loop)

    def pack(self, buffer: str, at_loop: str, *, layout: tuple[str, ...] | None = None,
             name: str | None = None) -> Schedule:
        return self.apply("pack", buffer, at_loop, layout=layout, name=name)

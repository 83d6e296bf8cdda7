"""Loop-level IR: a Kernel is a tree of loops over loads, stores and scalar arithmetic.

Buffers are kernel parameters addressed by flat element offsets that are affine in the loop
variables (``A[3*i + j]``); strides are constants of the kernel, negative and zero strides
included. Scalars live in named locals. Nodes are frozen dataclasses with tuple children.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

LOOP_KINDS = ("serial", "parallel", "vectorize", "unroll")


@dataclass(frozen=True, slots=True)
class Affine:
    """``sum(coef * var) + const`` over loop variables; terms sorted by variable name."""

    terms: tuple[tuple[str, int], ...] = ()
    const: int = 0

    @staticmethod
    def of(coefficients: dict[str, int], const: int = 0) -> Affine:
        terms = tuple(sorted((v, c) for v, c in coefficients.items() if c != 0))
        return Affine(terms, const)

    def coefficient(self, var: str) -> int:
        for name, coef in self.terms:
            if name == var:
                return coef
        return 0

    def substitute(self, var: str, replacement: Affine) -> Affine:
        """Replace ``var`` by an affine expression (used by split and friends)."""
        coef = self.coefficient(var)
        if coef == 0:
            return self
        merged = {v: c for v, c in self.terms if v != var}
        for name, c in replacement.terms:
            merged[name] = merged.get(name, 0) + coef * c
        return Affine.of(merged, self.const + coef * replacement.const)

    def __str__(self) -> str:
        parts = [v if c == 1 else f"{c}*{v}" for v, c in self.terms]
        if self.const or not parts:
            parts.append(str(self.const))
        return " + ".join(parts).replace("+ -", "- ")


# ---- scalar expressions -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Load:
    buffer: str
    index: Affine


@dataclass(frozen=True, slots=True)
class Const:
    value: complex | float | int | bool
    dtype: str


@dataclass(frozen=True, slots=True)
class Local:
    """Read a scalar local variable."""

    name: str


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Scalar


@dataclass(frozen=True, slots=True)
class Binary:
    """A scalar operation. ``reassoc`` lets LLVM reassociate it (set on reduction combines,
    so reductions vectorize; never on other arithmetic)."""

    op: str
    left: Scalar
    right: Scalar
    reassoc: bool = False


@dataclass(frozen=True, slots=True)
class Cast:
    dtype: str
    operand: Scalar


Scalar = Union[Load, Const, Local, Unary, Binary, Cast]  # noqa: UP007 (a runtime alias)


# ---- statements -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class For:
    """``for var in range(extent)`` (from 0, step 1); ``kind`` is a scheduling annotation."""

    var: str
    extent: int
    body: tuple[Stmt, ...]
    kind: str = "serial"


@dataclass(frozen=True, slots=True)
class Store:
    buffer: str
    index: Affine
    value: Scalar


@dataclass(frozen=True, slots=True)
class Declare:
    """Declare a scalar local of ``dtype`` and give it ``init``."""

    name: str
    dtype: str
    init: Scalar


@dataclass(frozen=True, slots=True)
class Assign:
    name: str
    value: Scalar


Stmt = Union[For, Store, Declare, Assign]  # noqa: UP007 (a runtime alias)


@dataclass(frozen=True, slots=True)
class Buffer:
    """A kernel parameter: a pointer to element [0, ..., 0] of a strided ``dtype`` array.

    ``shape`` and ``strides`` (in elements, any sign) describe the array the pointer views;
    the verifier checks every access stays inside it."""

    name: str
    dtype: str
    role: str  # "in" | "out"
    shape: tuple[int, ...]
    strides: tuple[int, ...]  # in elements


@dataclass(frozen=True, slots=True)
class Kernel:
    name: str
    buffers: tuple[Buffer, ...]
    body: tuple[Stmt, ...]

    def buffer(self, name: str) -> Buffer:
        for buffer in self.buffers:
            if buffer.name == name:
                return buffer
        raise KeyError(name)


def walk(stmts: tuple[Stmt, ...]):
    """Every statement in a body, depth first, with loops before their bodies."""
    for stmt in stmts:
        yield stmt
        if isinstance(stmt, For):
            yield from walk(stmt.body)


def scalar_children(expr: Scalar) -> tuple[Scalar, ...]:
    if isinstance(expr, Unary | Cast):
        return (expr.operand,)
    if isinstance(expr, Binary):
        return (expr.left, expr.right)
    return ()

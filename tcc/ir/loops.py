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

    @staticmethod
    def var(name: str, coef: int = 1) -> Affine:
        return Affine.of({name: coef})

    def __add__(self, other: Affine | int) -> Affine:
        if isinstance(other, int):
            return Affine(self.terms, self.const + other)
        merged = dict(self.terms)
        for name, coef in other.terms:
            merged[name] = merged.get(name, 0) + coef
        return Affine.of(merged, self.const + other.const)

    def __sub__(self, other: Affine | int) -> Affine:
        return self + (other * -1 if isinstance(other, Affine) else -other)

    def __radd__(self, other: int) -> Affine:
        return self + other

    def __rsub__(self, other: int) -> Affine:
        return self * -1 + other

    def __mul__(self, factor: int) -> Affine:
        return Affine.of({v: c * factor for v, c in self.terms}, self.const * factor)

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


Lookup = tuple[str, Affine]  # (int64 table, position): an offset read at run time


@dataclass(frozen=True, slots=True)
class Load:
    """``buffer[index + sum(table[pos] for table, pos in lookups)]``.

    With ``lanes`` > 1, a vector of that many consecutive elements. Lookups read offsets of
    multi-index groups from int64 tables (GETT packing from any strides)."""

    buffer: str
    index: Affine
    lanes: int = 1
    lookups: tuple[Lookup, ...] = ()
    mask: Mask | None = None  # a vector load of only some lanes; the others read 0


@dataclass(frozen=True, slots=True)
class Mask:
    """The lanes ``lo <= lane < hi`` of a vector load or store (int64 scalars, computed at
    run time); the others are neither read nor written, so they may lie outside the
    buffer or belong to another thread."""

    lo: Scalar
    hi: Scalar


@dataclass(frozen=True, slots=True)
class IndexValue:
    """The int64 value of an affine expression of loop variables (fills offset tables)."""

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
class Broadcast:
    """A vector of ``lanes`` copies of a scalar."""

    operand: Scalar
    lanes: int


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


@dataclass(frozen=True, slots=True)
class Select:
    """``condition ? if_true : if_false`` (the condition is a bool scalar)."""

    condition: Scalar
    if_true: Scalar
    if_false: Scalar


@dataclass(frozen=True, slots=True)
class Shuffle:
    """A vector of ``len(mask)`` lanes picked from two vectors of one type: lane ``i`` is
    lane ``mask[i]`` of their concatenation (``left``'s lanes first). A constant
    permutation (LLVM's shufflevector): in-register transposes for packing."""

    left: Scalar
    right: Scalar
    mask: tuple[int, ...]


Scalar = Union[Load, IndexValue, Const, Local, Broadcast, Unary, Binary, Cast, Select, Shuffle]  # noqa: UP007 (a runtime alias)


# ---- statements -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class For:
    """``for var in range(extent)`` (from 0, step 1); ``kind`` is a scheduling annotation.

    With ``bound``, the loop stops early: it runs ``min(extent, ceil(bound / bound_step))``
    times, where ``bound`` is affine in outer loop variables (edges of tiled loops)."""

    var: str
    extent: int
    body: tuple[Stmt, ...]
    kind: str = "serial"
    bound: Affine | None = None
    bound_step: int = 1


@dataclass(frozen=True, slots=True)
class Store:
    """``buffer[index + lookups] = value``; a vector value stores consecutive elements
    (only the lanes of ``mask`` when given)."""

    buffer: str
    index: Affine
    value: Scalar
    lookups: tuple[Lookup, ...] = ()
    mask: Mask | None = None


@dataclass(frozen=True, slots=True)
class Prefetch:
    """A hint: bring the cache line holding ``buffer[index + lookups]`` close to the core
    (for writing when ``write``). It computes nothing and never faults."""

    buffer: str
    index: Affine
    lookups: tuple[Lookup, ...] = ()
    write: bool = False


@dataclass(frozen=True, slots=True)
class Declare:
    """Declare a local of ``dtype`` (a vector when ``lanes`` > 1) and give it ``init``."""

    name: str
    dtype: str
    init: Scalar
    lanes: int = 1


@dataclass(frozen=True, slots=True)
class Allocate:
    """A local buffer of ``size`` elements (64-byte aligned) that lives for ``body``.

    Inside a parallel loop each thread gets its own."""

    name: str
    dtype: str
    size: int
    body: tuple[Stmt, ...]


@dataclass(frozen=True, slots=True)
class Assign:
    name: str
    value: Scalar


Stmt = Union[For, Store, Declare, Assign, Allocate, Prefetch]  # noqa: UP007 (a runtime alias)


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
    """``size_params`` are run-time sizes (int64 arguments after the buffers); loops and
    affine expressions refer to size ``b`` as the variable ``$b``."""

    name: str
    buffers: tuple[Buffer, ...]
    body: tuple[Stmt, ...]
    size_params: tuple[str, ...] = ()

    def buffer(self, name: str) -> Buffer:
        for buffer in self.buffers:
            if buffer.name == name:
                return buffer
        raise KeyError(name)


def walk(stmts: tuple[Stmt, ...]):
    """Every statement in a body, depth first, with loops before their bodies."""
    for stmt in stmts:
        yield stmt
        if isinstance(stmt, For | Allocate):
            yield from walk(stmt.body)


def scalar_children(expr: Scalar) -> tuple[Scalar, ...]:
    if isinstance(expr, Unary | Cast | Broadcast):
        return (expr.operand,)
    if isinstance(expr, Binary | Shuffle):
        return (expr.left, expr.right)
    if isinstance(expr, Select):
        return (expr.condition, expr.if_true, expr.if_false)
    return ()

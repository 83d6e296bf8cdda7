"""Tensor-level IR: a Program is a sequence of tensor equations over named tensors.

A statement reads ``out[idx] (reduce)= expr`` where ``expr`` is an elementwise expression of
tensor reads, and ``reduce`` (sum, max, min, prod, or None) combines over the indices that
appear on the right but not on the left. The einsum is the sum-product special case::

    C[i, k] = sum_j A[i, j] * B[j, k]

Nodes are frozen dataclasses with tuple children; structural equality makes them dict keys.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Union

REDUCTIONS = ("sum", "prod", "max", "min")
UNARY_OPS = ("neg", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "conj")
COMPARISONS = ("lt", "le", "gt", "ge", "eq", "ne")  # bool results, numpy's NaN rules
BINARY_OPS = ("add", "sub", "mul", "div", "pow", "max", "min", *COMPARISONS)


@dataclass(frozen=True, slots=True)
class Tensor:
    """A named tensor of fixed shape and dtype (a dtype name from tcc.dtypes)."""

    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True, slots=True)
class Read:
    """``tensor[indices...]``; an index may repeat (a diagonal)."""

    tensor: str
    indices: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Constant:
    value: complex | float | int | bool
    dtype: str


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Cast:
    """Convert to ``dtype`` with numpy's conversion rules (complex -> real keeps the real part)."""

    dtype: str
    operand: Expr


@dataclass(frozen=True, slots=True)
class Select:
    """``where(condition, if_true, if_false)``: only the chosen value is used, so a NaN or
    infinity in the other one does not leak (unlike ``c*a + (1-c)*b``)."""

    condition: Expr
    if_true: Expr
    if_false: Expr


@dataclass(frozen=True, slots=True)
class Reduced:
    """In a statement's epilogue: the value the reduction produced at this point."""


Expr = Union[Read, Constant, Unary, Binary, Cast, Select, Reduced]  # noqa: UP007


def children(expr: Expr) -> tuple[Expr, ...]:
    """The sub-expressions of ``expr``, in order."""
    if isinstance(expr, Unary | Cast):
        return (expr.operand,)
    if isinstance(expr, Binary):
        return (expr.left, expr.right)
    if isinstance(expr, Select):
        return (expr.condition, expr.if_true, expr.if_false)
    return ()


def with_children(expr: Expr, new: tuple[Expr, ...]) -> Expr:
    """``expr`` with its sub-expressions replaced (same order as :func:`children`)."""
    if isinstance(expr, Unary | Cast):
        return replace(expr, operand=new[0])
    if isinstance(expr, Binary):
        return replace(expr, left=new[0], right=new[1])
    if isinstance(expr, Select):
        return Select(*new)
    return expr


@dataclass(frozen=True, slots=True)
class Statement:
    """``target[indices] (reduce)= expr`` computed in ``dtype``.

    With ``accumulate`` the statement adds into the target's existing values instead of
    overwriting them (used to combine slices of a sliced contraction). An ``epilogue`` is an
    elementwise expression applied to the finished reduction (which it reads as
    :class:`Reduced`) before the store: ``H[b,h] = relu(sum_i X[b,i] * W[h,i])``.
    """

    target: str
    indices: tuple[str, ...]
    reduce: str | None
    expr: Expr
    dtype: str
    accumulate: bool = False
    epilogue: Expr | None = None


@dataclass(frozen=True, slots=True)
class Program:
    tensors: tuple[Tensor, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    statements: tuple[Statement, ...]
    index_sizes: tuple[tuple[str, int], ...]
    dynamic: tuple[str, ...] = ()  # indices whose size is a run-time argument

    def tensor(self, name: str) -> Tensor:
        for tensor in self.tensors:
            if tensor.name == name:
                return tensor
        raise KeyError(name)

    @property
    def sizes(self) -> dict[str, int]:
        return dict(self.index_sizes)


def reads(expr: Expr) -> tuple[Read, ...]:
    """Every tensor read in ``expr``, left to right."""
    if isinstance(expr, Read):
        return (expr,)
    return tuple(r for child in children(expr) for r in reads(child))


def statement_reads(statement: Statement) -> tuple[Read, ...]:
    """Every tensor a statement reads: its expression's, then its epilogue's."""
    extra = reads(statement.epilogue) if statement.epilogue is not None else ()
    return reads(statement.expr) + extra


def statement_indices(statement: Statement) -> tuple[str, ...]:
    """All indices of a statement: output indices first, then reduced ones."""
    seen = dict.fromkeys(statement.indices)
    for read in reads(statement.expr):
        seen.update(dict.fromkeys(read.indices))
    return tuple(seen)


def reduced_indices(statement: Statement) -> tuple[str, ...]:
    out = set(statement.indices)
    return tuple(i for i in statement_indices(statement) if i not in out)

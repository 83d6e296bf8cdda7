"""Reverse-mode automatic differentiation: Program -> Program with gradients.

``grad(prog, of="L", wrt=["W1", "W2"])`` keeps every forward statement and appends, in
reverse statement order, the statements computing each adjoint ``dX = dL/dX``. For a
statement ``T[out] (reduce)= f(..., X[idx], ...)`` the contribution to ``dX`` is one
statement over the same indices::

    dX[idx] (+)= sum_{indices not in idx} dT[out] * df/dX[idx]

so the gradient of ``C[i,k] = sum_j A[i,j]*B[j,k]`` is ``dA[i,j] = sum_k dC[i,k]*B[j,k]``.
The first contribution to an adjoint assigns it, later ones add (``+=``); indices an input
lacks (broadcasting) are summed. Elementwise derivatives follow the chain rule; where a
derivative repeats the statement's own right side (exp, tanh, sigmoid, sqrt, div) it reads
the statement's result instead of recomputing it.

Conventions:
- The seed is ``dof = 1`` everywhere: for a scalar ``of`` that is dL/dX; for a tensor it is
  the gradient of the sum of its elements.
- ``max``/``min`` reductions route the gradient to every position equal to the result
  (``dA[i,j] = dM[i] * (A[i,j] == M[i])``): ties each get the full gradient.
- ``prod`` reductions use ``dX = dP * P / x``: undefined (nan/inf) where a factor is zero.
- ``relu'(0) = 0``, ``abs'(0) = 0``; ``max(a, b)`` sends ties to ``a``, ``min`` likewise.
- Gradients are named ``d<name>`` and appended to the outputs in ``wrt`` order; adjoints of
  intermediate tensors are temporaries. A ``wrt`` tensor that ``of`` does not depend on
  gets a zero gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

from tcc.dtypes import DTYPES
from tcc.errors import TccError
from tcc.ir import program as P

Maybe = P.Expr | None


# ---- simplifying constructors -------------------------------------------------------------


def _is_const(expr: Maybe, value: float) -> bool:
    return isinstance(expr, P.Constant) and expr.value == value


class _Algebra:
    """Expression constructors that drop zeros (None) and ones, in one compute dtype."""

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype

    def const(self, value: float) -> P.Constant:
        return P.Constant(float(value), self.dtype)

    def mask(self, op: str, a: P.Expr, b: P.Expr) -> P.Expr:
        return P.Cast(self.dtype, P.Binary(op, a, b))

    def mul(self, a: Maybe, b: Maybe) -> Maybe:
        if a is None or b is None:
            return None
        if _is_const(a, 1):
            return b
        if _is_const(b, 1):
            return a
        if _is_const(a, -1):
            return self.neg(b)
        if _is_const(b, -1):
            return self.neg(a)
        if isinstance(b, P.Binary) and b.op == "div" and _is_const(b.left, 1):
            return P.Binary("div", a, b.right)
        if isinstance(a, P.Constant) and isinstance(b, P.Constant):
            return self.const(a.value * b.value)  # type: ignore[arg-type]
        return P.Binary("mul", a, b)

    def div(self, a: Maybe, b: P.Expr) -> Maybe:
        if a is None:
            return None
        return a if _is_const(b, 1) else P.Binary("div", a, b)

    def add(self, a: Maybe, b: Maybe) -> Maybe:
        if a is None:
            return b
        if b is None:
            return a
        return P.Binary("add", a, b)

    def neg(self, a: Maybe) -> Maybe:
        if a is None:
            return None
        if isinstance(a, P.Constant):
            return self.const(-a.value)  # type: ignore[arg-type]
        return P.Unary("neg", a)

    def sub(self, a: Maybe, b: Maybe) -> Maybe:
        if b is None:
            return a
        if a is None:
            return self.neg(b)
        return P.Binary("sub", a, b)


# ---- elementwise derivatives ---------------------------------------------------------------


class _Derivative:
    """d expr / d (every occurrence of one read), by the chain rule; None means zero."""

    def __init__(self, wrt: P.Read, algebra: _Algebra) -> None:
        self.wrt = wrt
        self.a = algebra

    def __call__(self, expr: P.Expr) -> Maybe:
        if isinstance(expr, P.Read):
            return self.a.const(1) if expr == self.wrt else None
        if isinstance(expr, P.Constant):
            return None
        if isinstance(expr, P.Cast):
            return None if DTYPES[expr.dtype].kind == "bool" else self(expr.operand)
        if isinstance(expr, P.Unary):
            return self.unary(expr)
        if isinstance(expr, P.Binary):
            return self.binary(expr)
        if isinstance(expr, P.Select):  # the gradient flows only to the branch taken
            taken, other = self(expr.if_true), self(expr.if_false)
            if taken is None and other is None:
                return None
            zero = self.a.const(0)
            return P.Select(expr.condition, zero if taken is None else taken,
                            zero if other is None else other)
        raise TccError(f"cannot differentiate {expr!r}")

    def unary(self, expr: P.Unary) -> Maybe:
        a, x = self.a, expr.operand
        dx = self(x)
        if dx is None:
            return None
        op = expr.op
        if op == "neg":
            return a.neg(dx)
        if op in ("conj",):
            return dx
        if op == "exp":
            return a.mul(dx, expr)
        if op == "log":
            return a.div(dx, x)
        if op == "sqrt":
            return a.div(dx, a.mul(a.const(2), expr))
        if op == "tanh":
            return a.mul(dx, a.sub(a.const(1), a.mul(expr, expr)))
        if op == "sigmoid":
            return a.mul(dx, a.mul(expr, a.sub(a.const(1), expr)))
        if op == "relu":
            return a.mul(dx, a.mask("gt", x, a.const(0)))
        if op == "abs":
            return a.mul(dx, a.sub(a.mask("gt", x, a.const(0)), a.mask("lt", x, a.const(0))))
        raise TccError(f"no derivative for unary operation {op!r}")

    def binary(self, expr: P.Binary) -> Maybe:
        a, x, y, op = self.a, expr.left, expr.right, expr.op
        if op in P.COMPARISONS:
            return None
        dx, dy = self(x), self(y)
        if dx is None and dy is None:
            return None
        if op == "add":
            return a.add(dx, dy)
        if op == "sub":
            return a.sub(dx, dy)
        if op == "mul":
            return a.add(a.mul(dx, y), a.mul(x, dy))
        if op == "div":  # d(x/y) = dx/y - dy * (x/y) / y
            return a.sub(a.div(dx, y), a.div(a.mul(dy, expr), y))
        if op == "pow":
            return a.add(self.power_base(x, y, dx), a.mul(dy, a.mul(P.Unary("log", x), expr)))
        if op in ("max", "min"):
            keep, other = ("ge", "lt") if op == "max" else ("le", "gt")
            return a.add(a.mul(dx, a.mask(keep, x, y)), a.mul(dy, a.mask(other, x, y)))
        raise TccError(f"no derivative for binary operation {op!r}")

    def power_base(self, x: P.Expr, y: P.Expr, dx: Maybe) -> Maybe:
        a = self.a
        if dx is None:
            return None
        if isinstance(y, P.Constant):
            c = y.value
            if c == 2:
                return a.mul(dx, a.mul(a.const(2), x))
            if c == 1:
                return dx
            return a.mul(dx, a.mul(a.const(c), P.Binary("pow", x, a.const(c - 1))))  # type: ignore[operator]
        return a.mul(dx, a.mul(y, P.Binary("pow", x, a.sub(y, a.const(1)))))  # type: ignore[arg-type]


def _replace(expr: P.Expr, old: P.Expr, new: P.Expr) -> P.Expr:
    if expr == old:
        return new
    return P.with_children(expr, tuple(_replace(c, old, new) for c in P.children(expr)))


# ---- the pass ------------------------------------------------------------------------------


class _Adjoints:
    """Builds the backward statements; tracks each adjoint's tensor and whether it exists."""

    def __init__(self, prog: P.Program, wrt: Sequence[str]) -> None:
        self.prog = prog
        self.names: dict[str, str] = {}
        self.tensors: list[P.Tensor] = []
        self.statements: list[P.Statement] = []
        self.started: set[str] = set()
        self.extra_sizes: dict[str, int] = {}
        taken = {t.name for t in prog.tensors}
        for name in wrt:
            adjoint = f"d{name}"
            if adjoint in taken:
                raise TccError(f"cannot name the gradient of {name} {adjoint!r}: the program "
                               "already has a tensor of that name")
            self.names[name] = adjoint
            taken.add(adjoint)
        self.taken = taken

    def name(self, tensor: str) -> str:
        if tensor not in self.names:
            candidate, k = f"d{tensor}", 1
            while candidate in self.taken:
                candidate, k = f"d{tensor}_{k}", k + 1
            self.names[tensor] = candidate
            self.taken.add(candidate)
        return self.names[tensor]

    def read(self, tensor: str, indices: tuple[str, ...], dtype: str) -> P.Expr:
        stored = self.prog.tensor(tensor).dtype
        read = P.Read(self.name(tensor), indices)
        return read if stored == dtype else P.Cast(dtype, read)

    def contribute(
        self, tensor: str, indices: tuple[str, ...], value: P.Expr, dtype: str,
        over: tuple[str, ...],
    ) -> None:
        """``d<tensor>[indices] (+)= sum value``; ``over`` are the indices the forward
        statement ranges over (a value that lacks some of them is scaled by their sizes)."""
        if len(set(indices)) != len(indices):
            raise TccError(f"cannot differentiate through the diagonal read "
                           f"{tensor}[{','.join(indices)}]")
        algebra = _Algebra(dtype)
        present = set(indices) | {i for r in P.reads(value) for i in r.indices}
        missing = [i for i in over if i not in present]
        if missing:
            sizes = self.prog.sizes
            value = algebra.mul(algebra.const(prod(sizes[i] for i in missing)), value)  # type: ignore[assignment]
        name = self.name(tensor)
        accumulate = tensor in self.started
        if not accumulate:
            original = self.prog.tensor(tensor)
            self.tensors.append(P.Tensor(name, original.shape, original.dtype))
            self.started.add(tensor)
        stmt = P.Statement(name, indices, "sum", value, dtype, accumulate)
        if not P.reduced_indices(stmt):
            stmt = P.Statement(name, indices, None, value, dtype, accumulate)
        self.statements.append(stmt)

    def fill(self, tensor: str, value: float) -> None:
        """``d<tensor> = value`` everywhere (a seed, or zero for an unused ``wrt``)."""
        original = self.prog.tensor(tensor)
        indices = tuple(f"_{tensor}_{k}" for k in range(len(original.shape)))
        self.extra_sizes.update(zip(indices, original.shape, strict=True))
        dtype = DTYPES[original.dtype].compute
        self.contribute(tensor, indices, _Algebra(dtype).const(value), dtype, indices)


def _check_assignments(statements: Sequence[P.Statement]) -> set[str]:
    """Tensors assigned more than once must be ``=`` then ``+=``, all sums or elementwise,
    and unread in between. Returns the names of such tensors."""
    multiple = {s.target for s in statements if s.accumulate}
    for name in multiple:
        positions = [k for k, s in enumerate(statements) if s.target == name]
        for k in positions:
            stmt = statements[k]
            if stmt.reduce not in (None, "sum") and P.reduced_indices(stmt):
                raise TccError(f"cannot differentiate {name}: it is assigned more than once "
                               f"and one assignment is a {stmt.reduce} reduction")
        for between in statements[positions[0] + 1:positions[-1]]:
            if any(r.tensor == name for r in P.reads(between.expr)):
                raise TccError(f"cannot differentiate: {name} is read between its assignments")
    return multiple


def _relevant(prog: P.Program, statements: Sequence[P.Statement], of: str,
              wrt: Sequence[str]) -> set[str]:
    """Tensors that depend on a ``wrt`` tensor and that ``of`` depends on."""
    active = set(wrt)
    for stmt in statements:
        if any(r.tensor in active for r in P.reads(stmt.expr)):
            active.add(stmt.target)
    needed = {of}
    for stmt in reversed(statements):
        if stmt.target in needed:
            needed.update(r.tensor for r in P.reads(stmt.expr))
    return active & needed


def grad(prog: P.Program, of: str = "L", wrt: Sequence[str] | str = ()) -> P.Program:
    """The Program computing ``prog``'s outputs and ``d<w> = d sum(of) / d w`` for each
    ``w`` in ``wrt``. See the module docstring for the conventions."""
    wrt = (wrt,) if isinstance(wrt, str) else tuple(wrt)
    names = {t.name for t in prog.tensors}
    for name in (of, *wrt):
        if name not in names:
            raise TccError(f"unknown tensor {name!r}; the program has {sorted(names)}")
    if not wrt:
        raise TccError("grad needs at least one tensor in wrt=")
    for name in (of, *wrt):
        if DTYPES[prog.tensor(name).dtype].kind != "float":
            raise TccError(f"cannot differentiate {name} of dtype {prog.tensor(name).dtype}")
    assigned = [k for k, s in enumerate(prog.statements) if s.target == of]
    if not assigned:
        raise TccError(f"{of!r} is an input; differentiate a computed tensor")
    forward = prog.statements[: assigned[-1] + 1]
    multiple = _check_assignments(forward)
    relevant = _relevant(prog, forward, of, wrt)
    adjoints = _Adjoints(prog, wrt)
    seeded = of
    for stmt in reversed(forward):
        if stmt.target not in relevant:
            continue
        if stmt.target != seeded and stmt.target not in adjoints.started:
            continue  # nothing flows back into it
        _backward(prog, stmt, adjoints, relevant, seeded, stmt.target in multiple)
    for name in wrt:
        if name not in adjoints.started:
            adjoints.fill(name, 1.0 if name == of else 0.0)
    sizes = {**prog.sizes, **adjoints.extra_sizes}
    return P.Program(
        tensors=(*prog.tensors, *adjoints.tensors),
        inputs=prog.inputs,
        outputs=tuple(dict.fromkeys((*prog.outputs, *(adjoints.names[w] for w in wrt)))),
        statements=(*prog.statements, *adjoints.statements),
        index_sizes=tuple(sorted(sizes.items())),
    )


def _backward(prog: P.Program, stmt: P.Statement, adjoints: _Adjoints, relevant: set[str],
              seeded: str, multiple: bool) -> None:
    """Add the contributions of one forward statement to its inputs' adjoints."""
    algebra = _Algebra(stmt.dtype)
    if stmt.target == seeded:
        upstream: P.Expr = algebra.const(1)
    else:
        upstream = adjoints.read(stmt.target, stmt.indices, stmt.dtype)
    result = P.Read(stmt.target, stmt.indices)
    if prog.tensor(stmt.target).dtype != stmt.dtype:
        result = P.Cast(stmt.dtype, result)  # type: ignore[assignment]
    reduced = P.reduced_indices(stmt)
    reduce = stmt.reduce if reduced else None
    over = P.statement_indices(stmt)
    groups = dict.fromkeys(r for r in P.reads(stmt.expr) if r.tensor in relevant)
    for read in groups:
        partial = _Derivative(read, algebra)(stmt.expr)
        if partial is None:
            continue
        if reduce in ("max", "min"):
            partial = algebra.mul(algebra.mask("eq", stmt.expr, result), partial)
        elif reduce == "prod":
            partial = algebra.mul(algebra.div(result, stmt.expr), partial)
        elif reduce is None and not multiple:
            partial = _replace(partial, stmt.expr, result)  # reuse the forward value
        value = algebra.mul(upstream, partial)
        adjoints.contribute(read.tensor, read.indices, value, stmt.dtype, over)  # type: ignore[arg-type]

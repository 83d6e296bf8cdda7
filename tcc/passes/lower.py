"""Lower one tensor statement to one loop nest.

For ``C[i,k] = sum_j A[i,j] * B[j,k]`` on row-major arrays the nest is::

    for i in 0..I:
      for j in 0..J:            # a reduction outside an output loop: C is zeroed first
        for k in 0..K:          # unit stride in B and C: innermost, vectorizes
          C[K*i + k] = (C[K*i + k] +~ (A[J*i + j] * B[K*j + k]))

and for ``y[i] = sum_j A[i,j] * B[i,j]`` the reduction is innermost, so it runs in a local::

    for i in 0..I:
      acc: f64 = 0.0
      for j in 0..J:
        acc = (acc +~ (A[J*i + j] * B[J*i + j]))
      y[i] = acc

Loop order: the index with the most unit-stride accesses (the store counts twice) goes
innermost; the others are ordered by total stride, largest outermost. Loops of extent 1
disappear. ``+~`` marks a combine LLVM may reassociate (so reductions vectorize).
"""

from __future__ import annotations

from collections.abc import Mapping

from tcc.dtypes import DTYPES
from tcc.errors import TccError
from tcc.ir import loops as L
from tcc.ir import program as P

_COMBINE = {"sum": "add", "prod": "mul", "max": "max", "min": "min"}


def c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major strides in elements."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def identity(reduce: str, dtype: str) -> complex | float | int | bool:
    """The value a reduction starts from."""
    kind = DTYPES[dtype].kind
    if reduce == "sum":
        return {"bool": False, "complex": 0j, "float": 0.0}.get(kind, 0)
    if reduce == "prod":
        return {"bool": True, "complex": 1 + 0j, "float": 1.0}.get(kind, 1)
    if kind == "complex":
        raise TccError(f"{reduce} reduction is not defined for complex dtype {dtype}")
    if kind == "float":
        return float("-inf") if reduce == "max" else float("inf")
    if kind == "bool":
        return reduce == "min"
    import numpy as np

    info = np.iinfo(dtype)
    return int(info.min) if reduce == "max" else int(info.max)


DYNAMIC_EXTENT = 1 << 40  # the static extent of a loop over a run-time size


def size_var(index: str) -> str:
    """The loop-IR variable holding the run-time size of ``index``."""
    return f"${index}"


class _Accesses:
    """Element strides of every tensor access in a statement, per index."""

    def __init__(self, program: P.Program, stmt: P.Statement, layouts: Mapping[str, tuple]):
        self.program = program
        self.dynamic = set(program.dynamic)
        self.layouts = layouts
        self.sizes = program.sizes
        self.store = self.coefficients(P.Read(stmt.target, stmt.indices))
        self.loads = [self.coefficients(read) for read in P.statement_reads(stmt)]

    def strides_of(self, name: str) -> tuple[int, ...]:
        tensor = self.program.tensor(name)
        return tuple(self.layouts.get(name) or c_strides(tensor.shape))

    def coefficients(self, read: P.Read) -> dict[str, int]:
        tensor = self.program.tensor(read.tensor)
        coefficients: dict[str, int] = {}
        for index, size, stride in zip(
            read.indices, tensor.shape, self.strides_of(read.tensor), strict=True
        ):
            if size == 1 and index not in self.dynamic:  # broadcast or unit: element 0
                continue
            coefficients[index] = coefficients.get(index, 0) + stride
        return coefficients

    def unit_score(self, index: str) -> int:
        score = 2 * (abs(self.store.get(index, 0)) == 1)
        return score + sum(abs(c.get(index, 0)) == 1 for c in self.loads)

    def total_stride(self, index: str) -> int:
        return abs(self.store.get(index, 0)) + sum(abs(c.get(index, 0)) for c in self.loads)


def loop_order(accesses: _Accesses, indices: tuple[str, ...], reduced: set[str]) -> list[str]:
    """Outermost first. See the module docstring for the rule."""
    if not indices:
        return []
    innermost = max(
        indices,
        key=lambda i: (accesses.unit_score(i), i in reduced, accesses.sizes[i]),
    )
    rest = sorted(
        (i for i in indices if i != innermost),
        key=lambda i: (-accesses.total_stride(i), i in reduced),
    )
    return [*rest, innermost]


def _nest(order: list[str], sizes: Mapping[str, int], body: tuple[L.Stmt, ...],
          dynamic: frozenset[str] = frozenset()) -> tuple:
    for index in reversed(order):
        if index in dynamic:
            loop = L.For(index, DYNAMIC_EXTENT, body, bound=L.Affine.var(size_var(index)))
        else:
            loop = L.For(index, sizes[index], body)
        body = (loop,)
    return body


class _ExprLowering:
    def __init__(self, accesses: _Accesses, reduced: L.Scalar | None = None) -> None:
        self.accesses = accesses
        self.reduced = reduced  # what an epilogue's ``Reduced`` stands for

    def __call__(self, expr: P.Expr) -> L.Scalar:
        if isinstance(expr, P.Reduced):
            if self.reduced is None:
                raise TccError("Reduced outside a statement's epilogue")
            return self.reduced
        if isinstance(expr, P.Read):
            return L.Load(expr.tensor, self.affine(expr))
        if isinstance(expr, P.Constant):
            return L.Const(expr.value, expr.dtype)
        if isinstance(expr, P.Cast):
            return L.Cast(expr.dtype, self(expr.operand))
        if isinstance(expr, P.Unary):
            return L.Unary(expr.op, self(expr.operand))
        if isinstance(expr, P.Binary):
            return L.Binary(expr.op, self(expr.left), self(expr.right))
        if isinstance(expr, P.Select):
            return L.Select(self(expr.condition), self(expr.if_true), self(expr.if_false))
        raise TccError(f"cannot lower expression {expr!r}")

    def affine(self, read: P.Read) -> L.Affine:
        coefficients = self.accesses.coefficients(read)
        return L.Affine.of({i: c for i, c in coefficients.items() if self.live(i)})

    def live(self, index: str) -> bool:
        return self.accesses.sizes[index] != 1 or index in self.accesses.dynamic


def lower_statement(
    program: P.Program,
    stmt: P.Statement,
    *,
    layouts: Mapping[str, tuple[int, ...]] | None = None,
    name: str = "kernel",
    order: list[str] | None = None,
) -> L.Kernel:
    """One statement -> one kernel whose buffers are the tensors it touches."""
    layouts = dict(layouts or {})
    accesses = _Accesses(program, stmt, layouts)
    lower_expr = _ExprLowering(accesses)
    sizes = program.sizes
    dynamic = frozenset(program.dynamic)
    all_indices = tuple(i for i in P.statement_indices(stmt) if sizes[i] != 1 or i in dynamic)
    reduced = {i for i in P.reduced_indices(stmt) if sizes[i] != 1 or i in dynamic}
    if stmt.reduce is None and reduced:
        raise TccError(f"statement for {stmt.target} has reduced indices but no reduction")
    if order is None:
        order = loop_order(accesses, all_indices, reduced)
        if program.tensor(stmt.target).dtype != stmt.dtype:
            # the sum must be finished in the compute dtype before its one cast on store
            order = [i for i in order if i not in reduced] + [i for i in order if i in reduced]
    out_index = lower_expr.affine(P.Read(stmt.target, stmt.indices))
    out_dtype = program.tensor(stmt.target).dtype

    def to_out(value: L.Scalar) -> L.Scalar:
        return value if out_dtype == stmt.dtype else L.Cast(out_dtype, value)

    def current() -> L.Scalar:
        load = L.Load(stmt.target, out_index)
        return load if out_dtype == stmt.dtype else L.Cast(stmt.dtype, load)

    value = lower_expr(stmt.expr)
    combine = _COMBINE.get(stmt.reduce or "sum", "add")
    if stmt.epilogue is not None and (stmt.accumulate or not reduced):
        raise TccError(f"statement for {stmt.target}: an epilogue needs a plain reduction")
    suffix: list[str] = []
    for index in reversed(order):
        if index not in reduced:
            break
        suffix.insert(0, index)
    prefix = order[: len(order) - len(suffix)]
    body: tuple[L.Stmt, ...]
    if not reduced:
        if stmt.accumulate:
            value = L.Binary(combine, current(), value)
        body = _nest(order, sizes, (L.Store(stmt.target, out_index, to_out(value)),), dynamic)
    else:
        start = L.Const(identity(stmt.reduce or "sum", stmt.dtype), stmt.dtype)
        needs_init = any(i in reduced for i in prefix)
        acc_init = current() if (stmt.accumulate or needs_init) else start
        inner = (
            L.Declare("acc", stmt.dtype, acc_init),
            *_nest(
                suffix, sizes,
                (L.Assign("acc", L.Binary(combine, L.Local("acc"), value, reassoc=True)),),
                dynamic,
            ),
            L.Store(stmt.target, out_index, to_out(_finish(stmt, accesses, L.Local("acc")))),
        )
        if not suffix:  # accumulate straight into memory
            inner = (
                L.Store(
                    stmt.target, out_index,
                    to_out(L.Binary(combine, current(), value, reassoc=True)),
                ),
            )
        body = _nest(prefix, sizes, inner, dynamic)
        if needs_init and not stmt.accumulate:
            out_loops = [i for i in order if i not in reduced]
            init = _nest(out_loops, sizes, (L.Store(stmt.target, out_index, to_out(start)),),
                         dynamic)
            body = init + body
        if stmt.epilogue is not None and (needs_init or not suffix):
            body += epilogue_nest(program, stmt, layouts)
    buffers = tuple(
        L.Buffer(t.name, t.dtype, "out" if t.name == stmt.target else "in", t.shape,
                 accesses.strides_of(t.name))
        for t in _touched(program, stmt)
    )
    used = tuple(i for i in program.dynamic if i in all_indices)
    return L.Kernel(name, buffers, body, used)


def _finish(stmt: P.Statement, accesses: _Accesses, reduced: L.Scalar) -> L.Scalar:
    """The epilogue applied to the reduced value (the value itself when there is none)."""
    if stmt.epilogue is None:
        return reduced
    return _ExprLowering(accesses, reduced)(stmt.epilogue)


def epilogue_nest(program: P.Program, stmt: P.Statement,
                  layouts: Mapping[str, tuple[int, ...]]) -> tuple[L.Stmt, ...]:
    """``target = epilogue(target)`` over the output, for kernels whose reduction finishes
    in memory (a reduction outside the output loops, or the GETT template)."""
    accesses = _Accesses(program, stmt, layouts)
    lower_expr = _ExprLowering(accesses)
    out_index = lower_expr.affine(P.Read(stmt.target, stmt.indices))
    out_dtype = program.tensor(stmt.target).dtype
    current: L.Scalar = L.Load(stmt.target, out_index)
    if out_dtype != stmt.dtype:
        current = L.Cast(stmt.dtype, current)
    value = _finish(stmt, accesses, current)
    if out_dtype != stmt.dtype:
        value = L.Cast(out_dtype, value)
    sizes = program.sizes
    dynamic = frozenset(program.dynamic)
    loops = [i for i in stmt.indices if sizes[i] != 1 or i in dynamic]
    return _nest(loops, sizes, (L.Store(stmt.target, out_index, value),), dynamic)


def _touched(program: P.Program, stmt: P.Statement) -> list[P.Tensor]:
    names = dict.fromkeys(r.tensor for r in P.statement_reads(stmt))
    names.pop(stmt.target, None)
    return [program.tensor(n) for n in names] + [program.tensor(stmt.target)]


def lower(
    program: P.Program, *, layouts: Mapping[str, tuple[int, ...]] | None = None
) -> tuple[L.Kernel, ...]:
    """Every statement of ``program`` -> its own kernel, in program order."""
    return tuple(
        lower_statement(program, stmt, layouts=layouts, name=f"kernel{k}")
        for k, stmt in enumerate(program.statements)
    )

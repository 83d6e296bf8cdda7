"""The ``vectorize`` primitive: an innermost loop becomes explicit LLVM vector code."""

from __future__ import annotations

from dataclasses import replace

from tcc.errors import ScheduleError
from tcc.ir import loops as L
from tcc.passes.schedule.nest import (
    Aff,
    Site,
    _accesses,
    _check_fresh,
    _declared,
    _with_loop,
    find_loop,
    substitute,
)

VECTOR_DTYPES = ("float32", "float64")  # what codegen's vector path supports
VECTOR_BINARY = ("add", "sub", "mul", "div")


# ---- vectorize --------------------------------------------------------------------------


def _buffer_dtypes(kernel: L.Kernel, site: Site) -> dict[str, str]:
    dtypes = {b.name: b.dtype for b in kernel.buffers}
    dtypes.update({e.name: e.dtype for e in site.enclosing if isinstance(e, L.Allocate)})
    return dtypes


class _Vectorizer:
    """Rewrites the body of an innermost loop over ``var`` into ``lanes``-wide code."""

    def __init__(self, what: str, var: str, lanes: int, buffers: dict[str, str],
                 local_dtypes: dict[str, str], inner_locals: set[str]) -> None:
        self.what, self.var, self.lanes = what, var, lanes
        self.buffers, self.local_dtypes, self.inner = buffers, local_dtypes, inner_locals

    def refuse(self, reason: str) -> ScheduleError:
        return ScheduleError(f"{self.what}: {reason}")

    def vector_dtype(self, dtype: str, what: str) -> None:
        if dtype not in VECTOR_DTYPES:
            raise self.refuse(f"{what} has dtype {dtype}; codegen vectorizes only "
                              f"{'/'.join(VECTOR_DTYPES)}")

    def widen(self, expr: L.Scalar, vector: bool) -> L.Scalar:
        return expr if vector else L.Broadcast(expr, self.lanes)

    def expr(self, e: L.Scalar) -> tuple[L.Scalar, bool, str]:
        """(the rewritten expression, whether it is a vector, its dtype)."""
        var = self.var
        if isinstance(e, L.Load):
            if e.lanes > 1:
                raise self.refuse(f"{e.buffer}[{e.index}] is already a vector load")
            if any(p.coefficient(var) for _, p in e.lookups):
                raise self.refuse(f"the lookups of {e.buffer}[{e.index}] depend on {var!r} "
                                  "(a gather)")
            dtype = self.buffers[e.buffer]
            coef = e.index.coefficient(var)
            if coef == 0:
                return e, False, dtype
            if coef != 1:
                raise self.refuse(f"load {e.buffer}[{e.index}] has stride {coef} in {var!r}, "
                                  "not 1")
            self.vector_dtype(dtype, f"load {e.buffer}[{e.index}]")
            return replace(e, lanes=self.lanes), True, dtype
        if isinstance(e, L.IndexValue):
            if e.index.coefficient(var):
                raise self.refuse(f"index({e.index}) depends on {var!r}")
            return e, False, "int64"
        if isinstance(e, L.Const):
            return e, False, e.dtype
        if isinstance(e, L.Local):
            return e, e.name in self.inner, self.local_dtypes[e.name]
        if isinstance(e, L.Broadcast | L.Shuffle):
            raise self.refuse("the loop already holds vector code")
        if isinstance(e, L.Unary):
            operand, vector, dtype = self.expr(e.operand)
            if vector and e.op not in ("neg", "conj"):
                raise self.refuse(f"codegen has no vector form of {e.op}")
            return replace(e, operand=operand), vector, dtype
        if isinstance(e, L.Cast):
            operand, vector, dtype = self.expr(e.operand)
            if vector and dtype != e.dtype:
                raise self.refuse(f"codegen has no vector cast {dtype} -> {e.dtype}")
            return replace(e, operand=operand), vector, e.dtype
        assert isinstance(e, L.Binary)
        (left, lv, dtype), (right, rv, _) = self.expr(e.left), self.expr(e.right)
        if not (lv or rv):
            return replace(e, left=left, right=right), False, dtype
        if e.op not in VECTOR_BINARY:
            raise self.refuse(f"codegen has no vector form of {e.op}")
        self.vector_dtype(dtype, f"{e.op}")
        return replace(e, left=self.widen(left, lv), right=self.widen(right, rv)), True, dtype

    def stmt(self, s: L.Stmt) -> L.Stmt:
        if isinstance(s, L.Store):
            coef = s.index.coefficient(self.var)
            if any(p.coefficient(self.var) for _, p in s.lookups):
                raise self.refuse(f"the lookups of store {s.buffer}[{s.index}] depend on "
                                  f"{self.var!r} (a scatter)")
            if coef != 1:
                raise self.refuse(f"store {s.buffer}[{s.index}] has stride {coef} in "
                                  f"{self.var!r}, not 1")
            self.vector_dtype(self.buffers[s.buffer], f"store to {s.buffer}")
            value, vector, _ = self.expr(s.value)
            return replace(s, value=self.widen(value, vector))
        if isinstance(s, L.Declare):
            self.vector_dtype(s.dtype, f"local {s.name}")
            value, vector, _ = self.expr(s.init)
            return replace(s, init=self.widen(value, vector), lanes=self.lanes)
        assert isinstance(s, L.Assign)
        if s.name not in self.inner:
            raise self.refuse(f"local {s.name!r} is reduced across the loop; vector "
                              "accumulators are not implemented (split the loop, or reorder "
                              "so a loop over the output is innermost)")
        value, vector, _ = self.expr(s.value)
        return replace(s, value=self.widen(value, vector))


def vectorize(kernel: L.Kernel, loop: str, lanes: int) -> L.Kernel:
    """Turn an innermost loop into ``lanes``-wide vector code. ``vectorize(j, 4)``::

        for j in 0..6:                    for j in 0..1:  # vectorize
          C[6*i + j] = (A[6*i + j]   ->     C[6*i + 4*j] = (A[6*i + 4*j : +4]
                        + B[j])                           + B[4*j : +4])
                                          for j.tail in 0..2:
                                            C[6*i + j.tail + 4] = (A[6*i + j.tail + 4]
                                                                   + B[j.tail + 4])

    Loads and stores of unit stride in the loop variable become vectors; invariant values
    are broadcast; the ``lanes`` that do not fill a vector run in a scalar ``.tail`` loop.
    Refused for non-unit-stride stores and loads, gathers/scatters through lookups, locals
    reduced across the loop, loop-carried dependences through memory, ops or dtypes that
    codegen cannot vectorize (float32/float64 add/sub/mul/div/neg only), nested loops and
    loops with run-time bounds.
    """
    site = find_loop(kernel, loop)
    f = site.loop
    what = f"vectorize({loop}, {lanes})"
    if not isinstance(lanes, int) or lanes < 2:
        raise ScheduleError(f"{what}: lanes must be an integer >= 2")
    if f.kind != "serial" or f.bound is not None:
        raise ScheduleError(f"{what}: only serial loops with a constant trip count vectorize "
                            f"(this one is {f.kind}, bound {f.bound})")
    if any(isinstance(s, L.For | L.Allocate) for s in L.walk(f.body)):
        raise ScheduleError(f"{what}: only innermost loops vectorize")
    stored = {s.buffer for s in L.walk(f.body) if isinstance(s, L.Store)}
    for buffer in stored:
        if len({(a[0], a[1]) for a in _accesses(f.body, buffer)}) > 1:
            raise ScheduleError(f"{what}: {buffer} is read and written at different indices "
                                "(a possible loop-carried dependence)")
    local_dtypes = {s.name: s.dtype for s in L.walk(kernel.body) if isinstance(s, L.Declare)}
    vectorizer = _Vectorizer(what, f.var, lanes, _buffer_dtypes(kernel, site), local_dtypes,
                             _declared(f.body))
    body = substitute(tuple(vectorizer.stmt(s) for s in f.body), f.var, Aff.var(f.var, lanes))
    full, rest = divmod(f.extent, lanes)
    result: list[L.Stmt] = []
    if full:
        result.append(L.For(f.var, full, body, "vectorize"))
    if rest:
        tail = f"{f.var}.tail"
        _check_fresh(site, tail)
        result.append(L.For(tail, rest, substitute(f.body, f.var,
                                                   Aff.var(tail) + full * lanes)))
    return _with_loop(kernel, site, tuple(result))

"""Shared machinery of the schedule primitives: naming loops, rewriting affine indices,
and the facts legality checks need (accesses, injectivity, locals)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, is_dataclass, replace

from tcc.errors import ScheduleError
from tcc.ir import loops as L

Aff = L.Affine


# ---- rewriting every affine index -------------------------------------------------------


def _map_scalar(expr: L.Scalar, fn: Callable[[Aff], Aff]) -> L.Scalar:
    if isinstance(expr, L.Load):
        lookups = tuple((t, fn(p)) for t, p in expr.lookups)
        return replace(expr, index=fn(expr.index), lookups=lookups)
    if isinstance(expr, L.IndexValue):
        return L.IndexValue(fn(expr.index))
    if isinstance(expr, L.Unary | L.Cast | L.Broadcast):
        return replace(expr, operand=_map_scalar(expr.operand, fn))
    if isinstance(expr, L.Binary | L.Shuffle):
        return replace(expr, left=_map_scalar(expr.left, fn), right=_map_scalar(expr.right, fn))
    return expr


def map_affines(body: tuple[L.Stmt, ...], fn: Callable[[Aff], Aff]) -> tuple[L.Stmt, ...]:
    """Apply ``fn`` to every affine expression in ``body``: indices, lookups, bounds."""
    out: list[L.Stmt] = []
    for stmt in body:
        if isinstance(stmt, L.For):
            bound = None if stmt.bound is None else fn(stmt.bound)
            out.append(replace(stmt, body=map_affines(stmt.body, fn), bound=bound))
        elif isinstance(stmt, L.Allocate):
            out.append(replace(stmt, body=map_affines(stmt.body, fn)))
        elif isinstance(stmt, L.Store):
            lookups = tuple((t, fn(p)) for t, p in stmt.lookups)
            out.append(replace(stmt, index=fn(stmt.index), value=_map_scalar(stmt.value, fn),
                               lookups=lookups))
        elif isinstance(stmt, L.Prefetch):
            lookups = tuple((t, fn(p)) for t, p in stmt.lookups)
            out.append(replace(stmt, index=fn(stmt.index), lookups=lookups))
        elif isinstance(stmt, L.Declare):
            out.append(replace(stmt, init=_map_scalar(stmt.init, fn)))
        else:
            out.append(replace(stmt, value=_map_scalar(stmt.value, fn)))
    return tuple(out)


def rename_locals(body: tuple[L.Stmt, ...], names: dict[str, str]) -> tuple[L.Stmt, ...]:
    """``body`` with the locals in ``names`` (declared, assigned and read) renamed."""

    def walk(node):
        if isinstance(node, tuple):
            return tuple(walk(x) for x in node)
        if not is_dataclass(node) or isinstance(node, Aff):
            return node
        changes = {f.name: walk(getattr(node, f.name)) for f in fields(node)}
        if isinstance(node, L.Local | L.Declare | L.Assign) and node.name in names:
            changes["name"] = names[node.name]
        return replace(node, **changes)

    return walk(body)


def substitute(body: tuple[L.Stmt, ...], var: str, value: Aff) -> tuple[L.Stmt, ...]:
    """``body`` with loop variable ``var`` replaced by an affine expression."""
    return map_affines(body, lambda a: a.substitute(var, value))


def _affines_of_scalar(expr: L.Scalar) -> Iterator[Aff]:
    if isinstance(expr, L.Load):
        yield expr.index
        yield from (p for _, p in expr.lookups)
    elif isinstance(expr, L.IndexValue):
        yield expr.index
    for child in L.scalar_children(expr):
        yield from _affines_of_scalar(child)


def affines(body: tuple[L.Stmt, ...]) -> Iterator[Aff]:
    """Every affine expression in ``body``."""
    for stmt in L.walk(body):
        if isinstance(stmt, L.For) and stmt.bound is not None:
            yield stmt.bound
        elif isinstance(stmt, L.Store | L.Prefetch):
            yield stmt.index
            yield from (p for _, p in stmt.lookups)
        for expr in _statement_scalars(stmt):
            yield from _affines_of_scalar(expr)


def _statement_scalars(stmt: L.Stmt) -> tuple[L.Scalar, ...]:
    if isinstance(stmt, L.Store | L.Assign):
        return (stmt.value,)
    if isinstance(stmt, L.Declare):
        return (stmt.init,)
    return ()


def scalars(expr: L.Scalar) -> Iterator[L.Scalar]:
    """``expr`` and all its sub-expressions."""
    yield expr
    for child in L.scalar_children(expr):
        yield from scalars(child)


def loads(body: tuple[L.Stmt, ...]) -> Iterator[L.Load]:
    for stmt in L.walk(body):
        for expr in _statement_scalars(stmt):
            yield from (e for e in scalars(expr) if isinstance(e, L.Load))


# ---- naming loops -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Site:
    """A loop found by name: the loop, its position and what encloses it."""

    loop: L.For
    path: tuple[int, ...]  # child positions from kernel.body down to the loop
    enclosing: tuple[L.For | L.Allocate, ...]  # outermost first


def _sites(body: tuple[L.Stmt, ...], path=(), enclosing=()) -> Iterator[Site]:
    for k, stmt in enumerate(body):
        if isinstance(stmt, L.For):
            yield Site(stmt, (*path, k), enclosing)
        if isinstance(stmt, L.For | L.Allocate):
            yield from _sites(stmt.body, (*path, k), (*enclosing, stmt))


def find_loop(kernel: L.Kernel, name: str) -> Site:
    """The loop named ``name`` (``var`` or ``var#k``, the k-th loop over ``var``)."""
    var, _, which = name.partition("#")
    found = [s for s in _sites(kernel.body) if s.loop.var == var]
    if which:
        if not which.isdigit() or int(which) >= len(found):
            raise ScheduleError(f"no loop {name!r}: kernel {kernel.name} has {len(found)} "
                                f"loops over {var!r}")
        return found[int(which)]
    if not found:
        names = sorted({s.loop.var for s in _sites(kernel.body)})
        raise ScheduleError(f"no loop {name!r} in kernel {kernel.name}; loops: {names}")
    if len(found) > 1:
        raise ScheduleError(f"loop name {name!r} is ambiguous: {len(found)} loops; name one "
                            f"as {var}#0 .. {var}#{len(found) - 1}")
    return found[0]


def replace_at(body: tuple[L.Stmt, ...], path: tuple[int, ...],
               new: tuple[L.Stmt, ...]) -> tuple[L.Stmt, ...]:
    """``body`` with the statement at ``path`` replaced by the statements ``new``."""
    head, rest = path[0], path[1:]
    if not rest:
        return body[:head] + new + body[head + 1:]
    parent = body[head]
    assert isinstance(parent, L.For | L.Allocate)
    return body[:head] + (replace(parent, body=replace_at(parent.body, rest, new)),) + \
        body[head + 1:]


def _with_loop(kernel: L.Kernel, site: Site, new: tuple[L.Stmt, ...]) -> L.Kernel:
    return replace(kernel, body=replace_at(kernel.body, site.path, new))


def _loop_vars(body: tuple[L.Stmt, ...]) -> set[str]:
    return {s.var for s in L.walk(body) if isinstance(s, L.For)}


def _check_fresh(site: Site, *names: str) -> None:
    taken = {e.var for e in site.enclosing if isinstance(e, L.For)} | _loop_vars((site.loop,))
    taken.discard(site.loop.var)
    for name in names:
        if name in taken or "#" in name or not name:
            raise ScheduleError(f"loop name {name!r} is taken (or invalid) around loop "
                                f"{site.loop.var!r}")
    if len(set(names)) != len(names):
        raise ScheduleError(f"new loop names {names} must differ")


def _outer_extents(site: Site) -> dict[str, int]:
    return {e.var: e.extent for e in site.enclosing if isinstance(e, L.For)}


def _inner_extents(body: tuple[L.Stmt, ...]) -> dict[str, int]:
    """Upper bounds of the loop variables inside ``body`` (the largest extent per name)."""
    extents: dict[str, int] = {}
    for stmt in L.walk(body):
        if isinstance(stmt, L.For):
            extents[stmt.var] = max(extents.get(stmt.var, 0), stmt.extent)
    return extents


def _max_value(index: Aff, extents: dict[str, int]) -> int | None:
    """The largest value of ``index`` over the loop ranges, or None if a variable is unknown."""
    top = index.const
    for var, coef in index.terms:
        if var not in extents:
            return None
        top += max(0, coef * (extents[var] - 1))
    return top


def _accesses(body: tuple[L.Stmt, ...], buffer: str) -> list[tuple[Aff, tuple, int, bool]]:
    """(index, lookups, lanes, is_store) of every access to ``buffer`` in ``body``."""
    found = [(ld.index, ld.lookups, ld.lanes, False) for ld in loads(body) if ld.buffer == buffer]
    for stmt in L.walk(body):
        if isinstance(stmt, L.Store) and stmt.buffer == buffer:
            found.append((stmt.index, stmt.lookups, _lanes_of(stmt.value), True))
    return found


def _lanes_of(expr: L.Scalar) -> int:
    if isinstance(expr, L.Load | L.Broadcast):
        return expr.lanes
    if isinstance(expr, L.Shuffle):
        return len(expr.mask)
    return max((_lanes_of(c) for c in L.scalar_children(expr)), default=1)


def _merge_split(terms: dict[str, tuple[int, int]], loops: dict[str, L.For]) -> None:
    """Merge a split pair back into one axis: when loop ``v`` stops at ``K - m*u`` and the
    index uses ``c*(m*u + v)``, together they cover ``c*[0, K)``."""
    for var, loop in list(loops.items()):
        bound = loop.bound
        if var not in terms or bound is None or loop.bound_step != 1 or len(bound.terms) != 1:
            continue
        (outer, minus_m), = bound.terms
        coef = terms[var][0]
        if outer in terms and outer in loops and terms[outer][0] == -minus_m * coef \
                and minus_m < 0:
            del terms[outer]
            terms[var] = (coef, min(bound.const, loop.extent - minus_m * (loops[outer].extent
                                                                           - 1)))


def _injective(index: Aff, loops: dict[str, L.For], lanes: int) -> bool:
    """A sufficient test that distinct points of ``loops`` address distinct elements: the
    coefficients, sorted by size, each exceed the span of all smaller ones."""
    terms = {v: (abs(index.coefficient(v)), loop.extent) for v, loop in loops.items()}
    if lanes > 1:
        terms[" lanes"] = (1, lanes)
    _merge_split(terms, loops)
    span = 0
    for coef, extent in sorted(terms.values()):
        if extent <= 1:
            continue
        if coef <= span:
            return False
        span += coef * (extent - 1)
    return True


def _declared(body: tuple[L.Stmt, ...]) -> set[str]:
    return {s.name for s in L.walk(body) if isinstance(s, L.Declare)}


def _allocated(body: tuple[L.Stmt, ...]) -> set[str]:
    return {s.name for s in L.walk(body) if isinstance(s, L.Allocate)}

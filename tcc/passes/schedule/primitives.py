"""Schedule primitives: pure ``Kernel -> Kernel`` loop transformations.

Loops are named by their variable. When several loops share a variable (the zeroing nest
and the main nest of a lowered GEMM both loop over ``a``), ``"a#0"`` and ``"a#1"`` name the
first and second in depth-first order; a bare ``"a"`` must then be unique. Every primitive
checks that it is legal and raises :class:`tcc.errors.ScheduleError` with the reason when
it is not. The examples below use::

    for i in 0..8:
      for j in 0..6:
        C[6*i + j] = (A[6*i + j] + B[j])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from tcc.errors import ScheduleError
from tcc.ir import loops as L

Aff = L.Affine
VECTOR_DTYPES = ("float32", "float64")  # what codegen's vector path supports
VECTOR_BINARY = ("add", "sub", "mul", "div")
MAX_UNROLLED_STATEMENTS = 512


# ---- rewriting every affine index -------------------------------------------------------


def _map_scalar(expr: L.Scalar, fn: Callable[[Aff], Aff]) -> L.Scalar:
    if isinstance(expr, L.Load):
        lookups = tuple((t, fn(p)) for t, p in expr.lookups)
        return replace(expr, index=fn(expr.index), lookups=lookups)
    if isinstance(expr, L.IndexValue):
        return L.IndexValue(fn(expr.index))
    if isinstance(expr, L.Unary | L.Cast | L.Broadcast):
        return replace(expr, operand=_map_scalar(expr.operand, fn))
    if isinstance(expr, L.Binary):
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
        elif isinstance(stmt, L.Declare):
            out.append(replace(stmt, init=_map_scalar(stmt.init, fn)))
        else:
            out.append(replace(stmt, value=_map_scalar(stmt.value, fn)))
    return tuple(out)


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
        elif isinstance(stmt, L.Store):
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


# ---- split, reorder, fuse, tile ---------------------------------------------------------


def split(kernel: L.Kernel, loop: str, factor: int, *, outer: str | None = None,
          inner: str | None = None) -> L.Kernel:
    """Split a loop in two; ``i = factor*outer + inner``. ``split(j, 4)``::

        for j in 0..6:                          for j.outer in 0..2:
          C[6*i + j] = (A[6*i + j] + B[j])   ->    for j.inner in 0..4 while < (6 - 4*j.outer):
                                                     C[6*i + 4*j.outer + j.inner] = ...

    The inner loop gets a run-time bound when ``factor`` does not divide the extent. A loop
    that already has a bound keeps it on both halves (``outer`` counts ``factor`` steps).
    """
    site = find_loop(kernel, loop)
    f = site.loop
    if not isinstance(factor, int) or factor < 1:
        raise ScheduleError(f"split({loop}, {factor}): the factor must be a positive integer")
    outer = outer or f"{f.var}.outer"
    inner = inner or f"{f.var}.inner"
    _check_fresh(site, outer, inner)
    body = substitute(f.body, f.var, Aff.var(outer, factor) + Aff.var(inner))
    n, step = f.extent, f.bound_step
    outer_extent = -(-n // factor)
    if f.bound is None:
        outer_bound, outer_step = None, 1
        inner_bound = None if n % factor == 0 else Aff.var(outer, -factor) + n
    else:
        top = _max_value(f.bound, _outer_extents(site))
        if n % factor and (top is None or -(-top // step) > n):
            raise ScheduleError(
                f"split({loop}, {factor}): the loop has a run-time bound ({f.bound}) that may "
                f"exceed its extent {n}, and {factor} does not divide {n}")
        outer_bound, outer_step = f.bound, step * factor
        inner_bound = f.bound - Aff.var(outer, step * factor)
    inner_loop = L.For(inner, factor, body, "serial", inner_bound,
                       1 if inner_bound is None or f.bound is None else step)
    outer_loop = L.For(outer, outer_extent, (inner_loop,), f.kind, outer_bound, outer_step)
    return _with_loop(kernel, site, (outer_loop,))


def _band(kernel: L.Kernel, names: tuple[str, ...], what: str) -> tuple[Site, list[L.For]]:
    """The perfectly nested chain of loops from the outermost to the innermost named one."""
    sites = [find_loop(kernel, n) for n in names]
    if len({s.path for s in sites}) != len(sites):
        raise ScheduleError(f"{what}: a loop is named twice in {names}")
    top = min(sites, key=lambda s: len(s.path))
    depth = max(len(s.path) for s in sites) - len(top.path)
    band = [top.loop]
    for _ in range(depth):
        loop = band[-1]
        if len(loop.body) != 1 or not isinstance(loop.body[0], L.For):
            kinds = ", ".join(type(s).__name__ for s in loop.body)
            raise ScheduleError(
                f"{what}: loops {names} are not perfectly nested: the body of loop "
                f"{loop.var!r} holds [{kinds}]; moving a loop across such statements (a "
                f"Declare/Store of an accumulator) would change what they compute")
        band.append(loop.body[0])
    for s, name in zip(sites, names, strict=True):
        offset = len(s.path) - len(top.path)
        if s.path != top.path + (0,) * offset:
            raise ScheduleError(f"{what}: loop {name!r} is not nested inside {band[0].var!r}")
    return top, band


def reorder(kernel: L.Kernel, *loops: str) -> L.Kernel:
    """Permute perfectly nested loops into the order given (outermost first); loops of the
    band that are not named keep their places. ``reorder(j, i)``::

        for i in 0..8:                for j in 0..6:
          for j in 0..6:       ->       for i in 0..8:
            C[6*i + j] = ...              C[6*i + j] = ...

    Refused when the loops are not perfectly nested, when a bounded loop would move outside
    a loop its bound depends on, when a parallel loop would move, or when the body's result
    may depend on the order (see ``order_independent``).
    """
    if len(loops) < 2:
        raise ScheduleError(f"reorder{loops}: name at least two loops")
    top, band = _band(kernel, tuple(loops), f"reorder{tuple(loops)}")
    named = [find_loop(kernel, n).loop.var for n in loops]
    slots = [k for k, loop in enumerate(band) if loop.var in named]
    by_var = {loop.var: loop for loop in band}
    new_band = list(band)
    for slot, var in zip(slots, named, strict=True):
        new_band[slot] = by_var[var]
    if new_band == band:
        return kernel
    for k, loop in enumerate(new_band):
        if loop.kind == "parallel" and band[k] is not loop:
            raise ScheduleError(f"reorder: loop {loop.var!r} is parallel; reorder first, "
                                "then mark loops parallel")
        if loop.bound is not None:
            inside = {b.var for b in new_band[k:]}
            late = sorted(v for v, _ in loop.bound.terms if v in inside)
            if late:
                raise ScheduleError(f"reorder: the bound of loop {loop.var!r} ({loop.bound}) "
                                    f"depends on {late}, which would move inside it")
    innermost = band[-1].body
    order_independent(innermost, {loop.var: loop for loop in band}, f"reorder{tuple(loops)}")
    body = innermost
    for loop in reversed(new_band):
        body = (replace(loop, body=body),)
    return _with_loop(kernel, top, body)


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


def _is_reduction(stmt: L.Store | L.Assign) -> bool:
    """``x = x op~ e`` (reassociable) where ``e`` does not read ``x``."""
    value = stmt.value
    if not (isinstance(value, L.Binary) and value.reassoc):
        return False
    if isinstance(stmt, L.Assign):
        same = L.Local(stmt.name)
        others = [e for e in scalars(value.right) if isinstance(e, L.Local)]
        return value.left == same and same not in others
    current = L.Load(stmt.buffer, stmt.index, 1, stmt.lookups)
    reads = [e for e in scalars(value.right) if isinstance(e, L.Load)]
    return value.left == current and all(r.buffer != stmt.buffer for r in reads)


def order_independent(body: tuple[L.Stmt, ...], band: dict[str, L.For], what: str) -> None:
    """Raise unless running ``body`` for the points of the ``band`` loops in any order gives
    the same result (up to reassociating reductions marked ``~``). Conservative:

    - a local declared outside ``body`` may only be read, or updated as ``x = x op~ e``;
    - every buffer stored in ``body`` is accessed at one index, without lookups, and either
      each point of the loops (and of the loops inside) writes its own element, or every
      store is a reduction ``B[idx] = B[idx] op~ e``.
    """
    inner_locals = _declared(body)
    for stmt in L.walk(body):
        if isinstance(stmt, L.Assign) and stmt.name not in inner_locals:
            if not _is_reduction(stmt):
                raise ScheduleError(f"{what}: local {stmt.name!r} is assigned across loop "
                                    "iterations (not a reassociable reduction): order matters")
    reduced = {s.name for s in L.walk(body) if isinstance(s, L.Assign)} - inner_locals
    for stmt in L.walk(body):
        for expr in _statement_scalars(stmt):
            partial = [e for e in scalars(expr) if isinstance(e, L.Local) and e.name in reduced]
            if partial and not (isinstance(stmt, L.Assign) and stmt.name == partial[0].name
                                and len(partial) == 1):
                raise ScheduleError(f"{what}: {partial[0].name!r} is read while it is being "
                                    "reduced: it would see a different partial result")
    stored = {s.buffer for s in L.walk(body) if isinstance(s, L.Store)} - _allocated(body)
    inner_loops = {s.var: s for s in L.walk(body) if isinstance(s, L.For)}
    for buffer in sorted(stored):
        accesses = _accesses(body, buffer)
        if any(lk for _, lk, _, _ in accesses) or len({a[0] for a in accesses}) > 1:
            raise ScheduleError(f"{what}: {buffer} is accessed at several indices or through "
                                "lookups; cannot prove the order does not matter")
        index, lanes = accesses[0][0], max(a[2] for a in accesses)
        # loops inside the body that the index does not use repeat one point's own
        # accesses: they keep their order
        used = {v: inner_loops[v] for v, _ in index.terms if v in inner_loops}
        if _injective(index, {**band, **used}, lanes):
            continue
        stores = [s for s in L.walk(body) if isinstance(s, L.Store) and s.buffer == buffer]
        if not all(_is_reduction(s) for s in stores):
            raise ScheduleError(f"{what}: several iterations write {buffer}[{index}] and the "
                                "store is not a reassociable reduction: order matters")


def fuse(kernel: L.Kernel, outer: str, inner: str, *, name: str | None = None) -> L.Kernel:
    """Merge two perfectly nested loops into one of extent ``N*M``. ``fuse(i, j)``::

        for i in 0..8:                      for i_j in 0..48:
          for j in 0..6:               ->     C[i_j] = (A[i_j] * 2.0)
            C[6*i + j] = (A[6*i + j] * 2.0)

    The loop IR has no div/mod, so every index must use the pair only as
    ``c*(M*outer + inner)``: ``C[6*i + j] = A[6*i + j] + B[j]`` is refused (``B[j]``).
    """
    top, band = _band(kernel, (outer, inner), f"fuse({outer}, {inner})")
    if len(band) != 2 or band[0].var != find_loop(kernel, outer).loop.var:
        raise ScheduleError(f"fuse({outer}, {inner}): {inner!r} must be the only statement "
                            f"directly inside {outer!r}")
    o, i = band
    if o.bound is not None or i.bound is not None or {o.kind, i.kind} != {"serial"}:
        raise ScheduleError(f"fuse({outer}, {inner}): only serial loops without run-time "
                            "bounds fuse")
    m = i.extent
    for a in affines(i.body):
        if a.coefficient(o.var) != m * a.coefficient(i.var):
            raise ScheduleError(f"fuse({outer}, {inner}): index {a} is not a multiple of "
                                f"{m}*{o.var} + {i.var}; it needs div/mod, which the IR lacks")
    name = name or f"{o.var}_{i.var}"
    _check_fresh(top, name)
    body = map_affines(i.body, lambda a: a.substitute(o.var, Aff()).substitute(
        i.var, Aff.var(name)))
    return _with_loop(kernel, top, (L.For(name, o.extent * m, body),))


def tile(kernel: L.Kernel, loop_x: str, loop_y: str, fx: int, fy: int) -> L.Kernel:
    """``split(x, fx)``, ``split(y, fy)``, ``reorder(x.outer, y.outer, x.inner, y.inner)``.
    ``tile(i, j, 4, 3)``::

        for i in 0..8:               for i.outer in 0..2:
          for j in 0..6:       ->      for j.outer in 0..2:
            C[6*i + j] = ...              for i.inner in 0..4:
                                            for j.inner in 0..3:
                                              C[24*i.outer + 6*i.inner + 3*j.outer + j.inner] = ...
    """
    x, y = find_loop(kernel, loop_x).loop.var, find_loop(kernel, loop_y).loop.var
    kernel = split(kernel, loop_x, fx)
    kernel = split(kernel, loop_y, fy)
    return reorder(kernel, f"{x}.outer", f"{y}.outer", f"{x}.inner", f"{y}.inner")


# ---- unroll, parallel -------------------------------------------------------------------


def unroll(kernel: L.Kernel, loop: str, *,
           max_statements: int = MAX_UNROLLED_STATEMENTS) -> L.Kernel:
    """Replace a loop of constant trip count by copies of its body. ``unroll(j)`` on a
    loop of extent 3::

        for j in 0..3:                 C[6*i] = (A[6*i] + B[0])
          C[6*i + j] = ...       ->    C[6*i + 1] = (A[6*i + 1] + B[1])
                                       C[6*i + 2] = (A[6*i + 2] + B[2])

    The copies run one after the other, so locals they declare need no renaming.
    """
    site = find_loop(kernel, loop)
    f = site.loop
    if f.bound is not None:
        raise ScheduleError(f"unroll({loop}): the loop stops at a run-time bound ({f.bound})")
    if f.kind not in ("serial", "vectorize"):
        raise ScheduleError(f"unroll({loop}): the loop is {f.kind}")
    size = f.extent * sum(1 for _ in L.walk(f.body))
    if size > max_statements:
        raise ScheduleError(f"unroll({loop}): {f.extent} copies of {size // max(f.extent, 1)} "
                            f"statements exceed the limit of {max_statements}")
    copies = tuple(s for k in range(f.extent) for s in substitute(f.body, f.var, Aff((), k)))
    return _with_loop(kernel, site, copies)


def parallel(kernel: L.Kernel, loop: str) -> L.Kernel:
    """Run the iterations of a loop on all threads. ``parallel(i)``::

        for i in 0..8:                for i in 0..8:  # parallel
          for j in 0..6:        ->      for j in 0..6:
            C[6*i + j] = ...              C[6*i + j] = ...

    Refused when iterations may touch the same element of a buffer they write (a store
    whose index does not separate iterations, a reduction over this loop into memory), when
    the body uses a local declared outside it, and for nested parallel loops.
    """
    site = find_loop(kernel, loop)
    f = site.loop
    what = f"parallel({loop})"
    if f.kind != "serial":
        raise ScheduleError(f"{what}: the loop is {f.kind}")
    if any(isinstance(e, L.For) and e.kind == "parallel" for e in site.enclosing) or any(
            isinstance(s, L.For) and s.kind == "parallel" for s in L.walk(f.body)):
        raise ScheduleError(f"{what}: nested parallel loops are not supported")
    inner_locals = _declared(f.body)
    for stmt in L.walk(f.body):
        used = [e.name for x in _statement_scalars(stmt) for e in scalars(x)
                if isinstance(e, L.Local)]
        if isinstance(stmt, L.Assign):
            used.append(stmt.name)
        outside = sorted(set(used) - inner_locals)
        if outside:
            raise ScheduleError(f"{what}: the body uses local {outside[0]!r} declared outside "
                                "the loop (a reduction across iterations, or a value threads "
                                "cannot see)")
    loops = {s.var: s for s in L.walk(f.body) if isinstance(s, L.For)}
    stored = {s.buffer for s in L.walk(f.body) if isinstance(s, L.Store)} - _allocated(f.body)
    for buffer in sorted(stored):
        _check_disjoint(what, buffer, _accesses(f.body, buffer), f, loops)
    return _with_loop(kernel, site, (replace(f, kind="parallel"),))


def _check_disjoint(what: str, buffer: str, accesses: list, loop: L.For,
                    loops: dict[str, L.For]) -> None:
    """Iterations of ``loop`` write disjoint elements of ``buffer``: either every access is
    one index that is injective over the loop and the loops inside it (mixed radix), or
    each iteration touches ``c*var + [lo, hi]`` with the same ``c`` and ``|c| > hi - lo``."""
    var = loop.var
    if any(lookups for _, lookups, _, _ in accesses):
        raise ScheduleError(f"{what}: {buffer} is written through lookups; cannot prove "
                            "iterations write disjoint elements")
    indices = {(a[0], a[2]) for a in accesses}
    if len(indices) == 1:
        index, lanes = indices.pop()
        # loops that do not move the index (a reduction inside one iteration) are harmless
        moving = {v: f for v, f in {**loops, var: loop}.items() if index.coefficient(v)}
        if index.coefficient(var) and _injective(index, moving, lanes):
            return
    coefs = {a[0].coefficient(var) for a in accesses}
    outer = {tuple((v, c) for v, c in a[0].terms if v != var and v not in loops)
             for a in accesses}  # fixed during the loop: outer loops, run-time sizes
    if len(coefs) > 1 or len(outer) > 1 or 0 in coefs:
        raise ScheduleError(f"{what}: iterations may write the same element of {buffer} "
                            f"(indices {sorted({str(a[0]) for a in accesses})} do not all "
                            f"separate iterations of {var!r})")
    lo, hi = None, None
    for index, _, lanes, _ in accesses:
        terms = {v: (c, loops[v].extent) for v, c in index.terms if v in loops}
        _merge_split(terms, loops)
        low = index.const + sum(min(0, c * (e - 1)) for c, e in terms.values())
        high = index.const + sum(max(0, c * (e - 1)) for c, e in terms.values()) + lanes - 1
        lo = low if lo is None else min(lo, low)
        hi = high if hi is None else max(hi, high)
    coef = abs(coefs.pop())
    if coef <= hi - lo:
        raise ScheduleError(f"{what}: iterations overlap in {buffer}: each touches "
                            f"{hi - lo + 1} elements but they are only {coef} apart (a "
                            "reduction over this loop, or a store shared by iterations)")


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
        if isinstance(e, L.Broadcast):
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


# ---- pack -------------------------------------------------------------------------------


def _map_loads_scalar(e: L.Scalar, fn: Callable[[L.Load], L.Scalar]) -> L.Scalar:
    if isinstance(e, L.Load):
        return fn(e)
    if isinstance(e, L.Unary | L.Cast | L.Broadcast):
        return replace(e, operand=_map_loads_scalar(e.operand, fn))
    if isinstance(e, L.Binary):
        return replace(e, left=_map_loads_scalar(e.left, fn),
                       right=_map_loads_scalar(e.right, fn))
    return e


def _map_loads(body: tuple[L.Stmt, ...], fn: Callable[[L.Load], L.Scalar]) -> tuple:
    out: list[L.Stmt] = []
    for s in body:
        if isinstance(s, L.For | L.Allocate):
            out.append(replace(s, body=_map_loads(s.body, fn)))
        elif isinstance(s, L.Declare):
            out.append(replace(s, init=_map_loads_scalar(s.init, fn)))
        else:
            out.append(replace(s, value=_map_loads_scalar(s.value, fn)))
    return tuple(out)


def _loads_in_scope(body: tuple[L.Stmt, ...], buffer: str, what: str,
                    scope: dict[str, L.For] | None = None) -> list[tuple[L.Load, dict]]:
    """Every load of ``buffer`` with the loops (inside ``body``) around it."""
    scope = scope or {}
    found: list[tuple[L.Load, dict]] = []
    for s in body:
        if isinstance(s, L.For):
            found += _loads_in_scope(s.body, buffer, what, {**scope, s.var: s})
        elif isinstance(s, L.Allocate):
            found += _loads_in_scope(s.body, buffer, what, scope)
        else:
            if isinstance(s, L.Store) and any(t == buffer for t, _ in s.lookups):
                raise ScheduleError(f"{what}: {buffer} is used as a lookup table")
            for e in (x for v in _statement_scalars(s) for x in scalars(v)):
                if isinstance(e, L.Load) and any(t == buffer for t, _ in e.lookups):
                    raise ScheduleError(f"{what}: {buffer} is used as a lookup table")
                if isinstance(e, L.Load) and e.buffer == buffer:
                    found.append((e, scope))
    return found


def pack(kernel: L.Kernel, buffer: str, at_loop: str, *,
         layout: tuple[str, ...] | None = None, name: str | None = None) -> L.Kernel:
    """Copy the tile of input ``buffer`` that the body of ``at_loop`` reads into a local
    buffer, once per iteration of ``at_loop``, and read the copy instead. ``pack(A, i)``::

        for i in 0..8:                   for i in 0..8:
          for j in 0..6:                   allocate A_pack: float64[6]:
            C[6*i + j] = (A[6*i + j]  ->     for A.j in 0..6:
                          + B[j])              A_pack[A.j] = A[6*i + A.j]
                                             for j in 0..6:
                                               C[6*i + j] = (A_pack[j] + B[j])

    The tile has one axis per loop inside ``at_loop`` that the index uses; ``layout`` orders
    them (outermost first, default: by decreasing stride in ``buffer``), so a permuted
    ``layout`` transposes the tile. Inputs only; every load of ``buffer`` inside must use
    the same index, without lookups or vector lanes.
    """
    site = find_loop(kernel, at_loop)
    f = site.loop
    what = f"pack({buffer}, {at_loop})"
    roles = {b.name: b for b in kernel.buffers}
    if buffer not in roles or roles[buffer].role != "in":
        raise ScheduleError(f"{what}: only kernel inputs pack; {buffer!r} is not one")
    name = name or f"{buffer}_pack"
    if name in roles or name in _allocated(kernel.body):
        raise ScheduleError(f"{what}: buffer name {name!r} is taken")
    found = _loads_in_scope(f.body, buffer, what)
    if not found:
        raise ScheduleError(f"{what}: the loop does not read {buffer}")
    indices = {(ld.index, ld.lookups, ld.lanes) for ld, _ in found}
    if len(indices) > 1:
        raise ScheduleError(f"{what}: {buffer} is read at several indices "
                            f"{sorted(str(i[0]) for i in indices)}")
    index, lookups, lanes = indices.pop()
    if lookups or lanes > 1:
        raise ScheduleError(f"{what}: loads through lookups or vector loads do not pack "
                            "(pack before vectorize)")
    fixed = set(_outer_extents(site)) | {f.var}
    dims, loops = [], {}
    for var, _ in index.terms:
        if var in fixed:
            continue
        seen = {(s[var].extent, s[var].bound, s[var].bound_step) for _, s in found}
        if len(seen) > 1:
            raise ScheduleError(f"{what}: loops over {var!r} differ between the reads")
        loop = found[0][1][var]
        if loop.bound is not None and any(v not in fixed for v, _ in loop.bound.terms):
            raise ScheduleError(f"{what}: the bound of loop {var!r} ({loop.bound}) depends on "
                                "a loop inside the tile")
        dims.append(var)
        loops[var] = loop
    order = tuple(layout) if layout is not None else tuple(
        sorted(dims, key=lambda v: -abs(index.coefficient(v))))
    if sorted(order) != sorted(dims):
        raise ScheduleError(f"{what}: layout {order} must order the tile's axes {dims}")
    strides, size = {}, 1
    for var in reversed(order):
        strides[var] = size
        size *= loops[var].extent
    copy_vars = {v: f"{buffer}.{v}" for v in order}
    _check_fresh(site, *copy_vars.values())
    source = index
    for var in order:
        source = source.substitute(var, Aff.var(copy_vars[var]))
    target = Aff.of({copy_vars[v]: strides[v] for v in order})
    copy: tuple[L.Stmt, ...] = (L.Store(name, target, L.Load(buffer, source)),)
    for var in reversed(order):
        loop = loops[var]
        copy = (L.For(copy_vars[var], loop.extent, copy, "serial", loop.bound,
                      loop.bound_step),)
    packed = L.Load(name, Aff.of({v: strides[v] for v in order}))
    body = _map_loads(f.body, lambda ld: packed if ld.buffer == buffer else ld)
    allocate = L.Allocate(name, roles[buffer].dtype, size, (*copy, *body))
    return _with_loop(kernel, site, (replace(f, body=(allocate,)),))


__all__ = ["split", "reorder", "fuse", "tile", "unroll", "parallel", "vectorize", "pack",
           "find_loop", "substitute", "map_affines", "order_independent", "Site",
           "PRIMITIVES"]

PRIMITIVES: dict[str, Callable[..., L.Kernel]] = {
    "split": split, "reorder": reorder, "fuse": fuse, "tile": tile, "unroll": unroll,
    "vectorize": vectorize, "parallel": parallel, "pack": pack,
}

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

from collections.abc import Callable
from dataclasses import replace

from tcc.errors import ScheduleError
from tcc.ir import loops as L
from tcc.passes.schedule.nest import (  # noqa: F401 (the primitives' toolkit)
    Aff,
    Site,
    _accesses,
    _affines_of_scalar,
    _allocated,
    _check_fresh,
    _declared,
    _injective,
    _inner_extents,
    _lanes_of,
    _loop_vars,
    _map_scalar,
    _max_value,
    _merge_split,
    _outer_extents,
    _sites,
    _statement_scalars,
    _with_loop,
    affines,
    find_loop,
    loads,
    map_affines,
    replace_at,
    scalars,
    substitute,
)

MAX_UNROLLED_STATEMENTS = 512


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


from tcc.passes.schedule.pack import pack  # noqa: E402 (larger primitives live apart)
from tcc.passes.schedule.vectorize import (  # noqa: E402, F401
    VECTOR_BINARY,
    VECTOR_DTYPES,
    vectorize,
)

__all__ = ["split", "reorder", "fuse", "tile", "unroll", "parallel", "vectorize", "pack",
           "find_loop", "substitute", "map_affines", "order_independent", "Site",
           "PRIMITIVES"]

PRIMITIVES: dict[str, Callable[..., L.Kernel]] = {
    "split": split, "reorder": reorder, "fuse": fuse, "tile": tile, "unroll": unroll,
    "vectorize": vectorize, "parallel": parallel, "pack": pack,
}

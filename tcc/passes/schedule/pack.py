"""The ``pack`` primitive: copy an input's tile into a local buffer at a chosen loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from tcc.errors import ScheduleError
from tcc.ir import loops as L
from tcc.passes.schedule.nest import (
    Aff,
    _allocated,
    _check_fresh,
    _outer_extents,
    _statement_scalars,
    _with_loop,
    find_loop,
    scalars,
)

# ---- pack -------------------------------------------------------------------------------


def _map_loads_scalar(e: L.Scalar, fn: Callable[[L.Load], L.Scalar]) -> L.Scalar:
    if isinstance(e, L.Load):
        return fn(e)
    if isinstance(e, L.Unary | L.Cast | L.Broadcast):
        return replace(e, operand=_map_loads_scalar(e.operand, fn))
    if isinstance(e, L.Binary | L.Shuffle):
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

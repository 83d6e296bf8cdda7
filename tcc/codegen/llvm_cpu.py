"""Render a loop-level Kernel into an llvmlite module for the CPU.

Rendering only builds IR text; compiling (IR -> machine code) and loading (machine code ->
callable) live in tcc.runtime.jit. Each kernel becomes::

    define i32 @NAME(T0* noalias nocapture readonly %A, ..., Tn* noalias nocapture %C)

returning 0, with pointers to element [0, ..., 0] of each strided array. The JIT also gets
``NAME_py``, which takes the addresses of the numpy array objects and reads their data
pointers itself (that keeps the Python call path thin).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from llvmlite import ir

from tcc.codegen import parallel
from tcc.codegen import scalar as S
from tcc.dtypes import DTYPES
from tcc.errors import TccError
from tcc.ir import loops as L


@dataclass(frozen=True, slots=True)
class CpuTarget:
    """What the code is generated for: an LLVM triple, CPU name and feature string."""

    triple: str
    cpu: str
    features: str


def open_function(function: ir.Function) -> tuple[ir.IRBuilder, ir.Block]:
    """A builder at the start of ``function``'s body, and its entry block: the entry keeps
    the allocas and hoisted allocations; it branches to the body."""
    entry = function.append_basic_block("entry")
    body = function.append_basic_block("body")
    builder = ir.IRBuilder(entry)
    builder.branch(body)
    builder.position_at_end(body)
    return builder, entry


@contextmanager
def counted_loop(
    builder: ir.IRBuilder, trip: ir.Value | int, name: str, start: ir.Value | None = None
) -> Iterator[ir.Value]:
    """``for i in range(start, start + trip)``. A constant trip >= 1 gives a bottom-tested
    loop; a run-time trip count is tested first (it may be zero or negative)."""
    zero = ir.Constant(S.I64, 0)
    first = start if start is not None else zero
    trip_value = ir.Constant(S.I64, trip) if isinstance(trip, int) else trip
    preheader = builder.block
    body = builder.append_basic_block(f"{name}.body")
    exit_block = builder.append_basic_block(f"{name}.exit")
    if isinstance(trip, int):
        builder.branch(body)
    else:
        builder.cbranch(builder.icmp_signed(">", trip_value, zero), body, exit_block)
    builder.position_at_end(body)
    count = builder.phi(S.I64, name=f"{name}.n")
    count.add_incoming(zero, preheader)
    index = count if start is None else builder.add(first, count, name=name, flags=["nsw"])
    yield index
    following = builder.add(count, ir.Constant(S.I64, 1), flags=["nuw", "nsw"])
    count.add_incoming(following, builder.block)
    builder.cbranch(builder.icmp_signed("<", following, trip_value), body, exit_block)
    builder.position_at_end(exit_block)


def _vector(ty: ir.Type, lanes: int) -> ir.Type:
    return ty if lanes == 1 else ir.VectorType(ty, lanes)


class _KernelRenderer:
    """Emits one kernel body; parallel loops are outlined into functions of their own."""

    def __init__(self, kernel: L.Kernel, builder: ir.IRBuilder, entry: ir.Block,
                 pointers: dict[str, ir.Value], threads: int,
                 aliasing: dict[str, tuple] | None = None) -> None:
        self.kernel = kernel
        self.builder = builder
        self.entry = entry
        self.pointers = pointers
        self.dtypes = {b.name: b.dtype for b in kernel.buffers}
        self.loop_vars: dict[str, ir.Value] = {}
        self.locals: dict[str, tuple[tuple[ir.Value, ...], str, int]] = {}
        self.threads = threads
        self.shared_runtime = False  # the JIT links parallel loops to one process-wide pool
        self.hoisted: list[tuple[ir.Function, ir.Value]] = []
        # one set of scopes per kernel, shared with its outlined parallel bodies
        self.aliasing = aliasing or alias_scopes(builder.module, kernel)

    def tag(self, instruction: ir.Instruction, buffer: str) -> ir.Instruction:
        """Say which buffer ``instruction`` accesses: LLVM then knows a store to one buffer
        leaves the others alone (offset tables, packed panels, the tensors), which the
        ``noalias`` arguments alone do not tell it inside outlined parallel bodies."""
        scope, others = self.aliasing[buffer]
        instruction.set_metadata("alias.scope", scope)
        instruction.set_metadata("noalias", others)
        return instruction

    # -- addresses --------------------------------------------------------------------
    def offset(self, index: L.Affine, lookups: tuple[L.Lookup, ...] = ()) -> ir.Value:
        b = self.builder
        total: ir.Value = ir.Constant(S.I64, index.const)
        for var, coef in index.terms:
            term = b.mul(self.loop_vars[var], ir.Constant(S.I64, coef), flags=["nsw"])
            total = b.add(total, term, flags=["nsw"])
        for table, position in lookups:
            where = b.gep(self.pointers[table], [self.offset(position)], inbounds=True,
                          source_etype=S.I64)
            entry = self.tag(b.load(where, typ=S.I64), table)
            total = b.add(total, entry, flags=["nsw"])
        return total

    def addresses(self, buffer: str, index: L.Affine, lookups=(), lanes: int = 1,
                  inbounds: bool = True):
        """Element pointers (two for a complex buffer). ``inbounds=False`` for masked
        accesses, whose base may lie outside the buffer when no lane is active."""
        b = self.builder
        pointer = self.pointers[buffer]
        dtype = DTYPES[self.dtypes[buffer]]
        element = S.memory_type(dtype.name)
        offset = self.offset(index, lookups)
        if dtype.is_complex:
            base = b.mul(offset, ir.Constant(S.I64, 2), flags=["nsw"])
            imag = b.add(base, ir.Constant(S.I64, 1), flags=["nsw"])
            return (b.gep(pointer, [base], inbounds=True, source_etype=element),
                    b.gep(pointer, [imag], inbounds=True, source_etype=element))
        address = b.gep(pointer, [offset], inbounds=inbounds, source_etype=element)
        if lanes > 1:
            address = b.bitcast(address, ir.PointerType(_vector(element, lanes)))
        return (address,)

    # -- scalars ----------------------------------------------------------------------
    def scalar(self, expr: L.Scalar) -> S.Value:
        b = self.builder
        if isinstance(expr, L.Load) and expr.mask is not None:
            dtype = self.dtypes[expr.buffer]
            (pointer,) = self.addresses(expr.buffer, expr.index, expr.lookups, expr.lanes,
                                        inbounds=False)
            element = _vector(S.memory_type(dtype), expr.lanes)
            value = self.tag(self.masked("load", element, pointer,
                                         self.lane_mask(expr.mask, expr.lanes),
                                         DTYPES[dtype].itemsize), expr.buffer)
            return S.Value((S.from_memory(b, value, dtype),), dtype)
        if isinstance(expr, L.Load):
            dtype = self.dtypes[expr.buffer]
            element = _vector(S.memory_type(dtype), expr.lanes)
            align = DTYPES[dtype].itemsize if expr.lanes > 1 else None
            parts = tuple(
                S.from_memory(b, self.tag(b.load(p, typ=element, align=align), expr.buffer),
                              dtype)
                for p in self.addresses(expr.buffer, expr.index, expr.lookups, expr.lanes)
            )
            return S.Value(parts, dtype)
        if isinstance(expr, L.IndexValue):
            return S.Value((self.offset(expr.index),), "int64")
        if isinstance(expr, L.Const):
            return S.constant(expr.value, expr.dtype)
        if isinstance(expr, L.Broadcast):
            value = self.scalar(expr.operand)
            return S.Value(tuple(self.splat(p, expr.lanes) for p in value.parts), value.dtype)
        if isinstance(expr, L.Local):
            slots, dtype, lanes = self.locals[expr.name]
            ty = _vector(S.register_type(dtype), lanes)
            return S.Value(tuple(b.load(slot, typ=ty) for slot in slots), dtype)
        if isinstance(expr, L.Cast):
            return S.cast(b, self.scalar(expr.operand), expr.dtype)
        if isinstance(expr, L.Unary):
            return S.unary(b, expr.op, self.scalar(expr.operand))
        if isinstance(expr, L.Binary):
            left, right = self.scalar(expr.left), self.scalar(expr.right)
            return S.binary(b, expr.op, left, right, expr.reassoc)
        if isinstance(expr, L.Select):
            condition = self.scalar(expr.condition)
            yes, no = self.scalar(expr.if_true), self.scalar(expr.if_false)
            if condition.dtype != "bool" or yes.dtype != no.dtype:
                raise TccError(f"select on {condition.dtype} between {yes.dtype}, {no.dtype}")
            parts = tuple(b.select(condition.v, y, n)
                          for y, n in zip(yes.parts, no.parts, strict=True))
            return S.Value(parts, yes.dtype)
        if isinstance(expr, L.Shuffle):
            left, right = self.scalar(expr.left), self.scalar(expr.right)
            if len(left.parts) != 1 or left.dtype != right.dtype:
                raise TccError(f"shuffle of {left.dtype} and {right.dtype} vectors")
            mask = ir.Constant(ir.VectorType(ir.IntType(32), len(expr.mask)), list(expr.mask))
            return S.Value((b.shuffle_vector(left.v, right.v, mask),), left.dtype)
        raise TccError(f"codegen: unknown scalar node {expr!r}")

    def lane_mask(self, mask: L.Mask, lanes: int) -> ir.Value:
        """``<lanes x i1>``: lo <= lane < hi. The bounds are clamped to [0, lanes] and
        compared as i32 (one AVX-512 compare for 16 lanes instead of two)."""
        b = self.builder
        top = ir.Constant(S.I64, lanes)
        zero = ir.Constant(S.I64, 0)

        def bound(x: L.Scalar) -> ir.Value:
            value = S.cast(b, self.scalar(x), "int64").v
            value = b.select(b.icmp_signed("<", value, zero), zero, value)
            value = b.select(b.icmp_signed(">", value, top), top, value)
            return self.splat(b.trunc(value, S.I32), lanes)

        lo, hi = bound(mask.lo), bound(mask.hi)
        lane = ir.Constant(ir.VectorType(S.I32, lanes), list(range(lanes)))
        return b.and_(b.icmp_signed(">=", lane, lo), b.icmp_signed("<", lane, hi))

    def masked(self, kind: str, vector: ir.Type, pointer: ir.Value, mask: ir.Value,
               align: int, value: ir.Value | None = None) -> ir.Value:
        """``llvm.masked.load`` (inactive lanes read zero) or ``llvm.masked.store``."""
        b = self.builder
        i32 = ir.IntType(32)
        element = vector.element
        if isinstance(element, ir.IntType):
            suffix, zero = f"v{vector.count}i{element.width}", 0
        else:
            bits = 32 if isinstance(element, ir.FloatType) else 64
            suffix, zero = f"v{vector.count}f{bits}", 0.0
        name = f"llvm.masked.{kind}.{suffix}.p0"
        function = b.module.globals.get(name)
        if function is None:
            if kind == "load":
                signature = ir.FunctionType(vector, [pointer.type, i32, mask.type, vector])
            else:
                signature = ir.FunctionType(ir.VoidType(), [vector, pointer.type, i32, mask.type])
            function = ir.Function(b.module, signature, name)
        if kind == "load":
            passthru = ir.Constant(vector, [zero] * vector.count)
            return b.call(function, [pointer, ir.Constant(i32, align), mask, passthru])
        return b.call(function, [value, pointer, ir.Constant(i32, align), mask])

    def splat(self, value: ir.Value, lanes: int) -> ir.Value:
        b = self.builder
        vector_type = ir.VectorType(value.type, lanes)
        single = b.insert_element(ir.Constant(vector_type, None), value, ir.Constant(S.I32, 0))
        mask = ir.Constant(ir.VectorType(S.I32, lanes), [0] * lanes)
        return b.shuffle_vector(single, ir.Constant(vector_type, None), mask)

    # -- statements -------------------------------------------------------------------
    def local_slots(self, name: str, dtype: str, lanes: int) -> tuple[ir.Value, ...]:
        known = self.locals.get(name)
        if known is not None and known[1:] == (dtype, lanes):
            return known[0]
        ty = _vector(S.register_type(dtype), lanes)
        count = 2 if DTYPES[dtype].is_complex else 1
        with self.builder.goto_block(self.entry):
            self.builder.position_at_start(self.entry)
            slots = tuple(self.builder.alloca(ty, name=f"{name}.{k}") for k in range(count))
        self.locals[name] = (slots, dtype, lanes)
        return slots

    def store_local(self, name: str, value: S.Value) -> None:
        for slot, part in zip(self.locals[name][0], value.parts, strict=True):
            self.builder.store(part, slot)

    def trip_count(self, loop: L.For) -> ir.Value | int:
        if loop.bound is None:
            return loop.extent
        b = self.builder
        bound = self.offset(loop.bound)
        if loop.bound_step > 1:
            step = ir.Constant(S.I64, loop.bound_step)
            bound = b.sdiv(b.add(bound, ir.Constant(S.I64, loop.bound_step - 1)), step)
        extent = ir.Constant(S.I64, loop.extent)
        return b.select(b.icmp_signed("<", bound, extent), bound, extent)

    def loop(self, stmt: L.For) -> None:
        if stmt.extent <= 0:
            return
        if stmt.kind == "parallel" and self.threads > 1:
            self.parallel_loop(stmt)
            return
        with counted_loop(self.builder, self.trip_count(stmt), stmt.var) as index:
            self.loop_vars[stmt.var] = index
            for child in stmt.body:
                self.statement(child)
            del self.loop_vars[stmt.var]

    def statement(self, stmt: L.Stmt) -> None:
        b = self.builder
        if isinstance(stmt, L.For):
            self.loop(stmt)
        elif isinstance(stmt, L.Store):
            dtype = self.dtypes[stmt.buffer]
            value = self.scalar(stmt.value)
            if value.dtype != dtype:
                raise TccError(f"store of {value.dtype} into {stmt.buffer}: {dtype}")
            lanes = getattr(value.parts[0].type, "count", 1)
            align = DTYPES[dtype].itemsize if lanes > 1 else None
            pointers = self.addresses(stmt.buffer, stmt.index, stmt.lookups, lanes,
                                      inbounds=stmt.mask is None)
            if stmt.mask is not None:
                (pointer,), (part,) = pointers, value.parts
                part = S.to_memory(b, part, dtype)
                self.tag(self.masked("store", part.type, pointer, self.lane_mask(stmt.mask, lanes),
                                     DTYPES[dtype].itemsize, part), stmt.buffer)
                return
            for pointer, part in zip(pointers, value.parts, strict=True):
                self.tag(b.store(S.to_memory(b, part, dtype), pointer, align=align), stmt.buffer)
        elif isinstance(stmt, L.Prefetch):
            self.prefetch(stmt)
        elif isinstance(stmt, L.Declare):
            value = self.scalar(stmt.init)
            self.local_slots(stmt.name, stmt.dtype, stmt.lanes)
            self.store_local(stmt.name, S.cast(b, value, stmt.dtype))
        elif isinstance(stmt, L.Assign):
            value = self.scalar(stmt.value)
            self.store_local(stmt.name, S.cast(b, value, self.locals[stmt.name][1]))
        elif isinstance(stmt, L.Allocate):
            self.allocate(stmt)
        else:
            raise TccError(f"codegen: unknown statement {stmt!r}")

    def prefetch(self, stmt: L.Prefetch) -> None:
        b = self.builder
        i8p = ir.PointerType(S.I8)
        i32 = ir.IntType(32)
        intrinsic = b.module.globals.get("llvm.prefetch.p0i8") or ir.Function(
            b.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0i8")
        # a prefetch never faults: its address may lie past the buffer (no inbounds)
        address = self.addresses(stmt.buffer, stmt.index, stmt.lookups, inbounds=False)[0]
        # read or write; locality 3 (keep in all levels); data cache
        b.call(intrinsic, [b.bitcast(address, i8p), ir.Constant(i32, int(stmt.write)),
                           ir.Constant(i32, 3), ir.Constant(i32, 1)])

    def allocate(self, stmt: L.Allocate) -> None:
        b = self.builder
        module = b.module
        i8p = ir.PointerType(S.I8)
        alloc = module.globals.get("aligned_alloc") or ir.Function(
            module, ir.FunctionType(i8p, [S.I64, S.I64]), "aligned_alloc")
        free = module.globals.get("free") or ir.Function(
            module, ir.FunctionType(ir.VoidType(), [i8p]), "free")
        nbytes = max(stmt.size * DTYPES[stmt.dtype].itemsize, 1)
        nbytes = -(-nbytes // 64) * 64
        # A local buffer's contents start undefined in every iteration, so one allocation
        # at function entry serves them all (no allocator call, and no fresh pages to
        # fault in, inside loops); it is freed when the function returns.
        with b.goto_block(self.entry):
            b.position_before(self.entry.terminator)
            raw = b.call(alloc, [ir.Constant(S.I64, 64), ir.Constant(S.I64, nbytes)])
            pointer = b.bitcast(raw, _pointer_type(stmt.dtype))
        self.hoisted.append((free, raw))
        outer = (self.pointers.get(stmt.name), self.dtypes.get(stmt.name))
        self.pointers[stmt.name] = pointer
        self.dtypes[stmt.name] = stmt.dtype
        for child in stmt.body:
            self.statement(child)
        if outer[0] is None:  # out of scope: later parallel bodies must not capture it
            del self.pointers[stmt.name], self.dtypes[stmt.name]
        else:
            self.pointers[stmt.name], self.dtypes[stmt.name] = outer  # type: ignore[assignment]

    def release(self) -> None:
        """Free the local buffers (call right before the function returns)."""
        for free, raw in self.hoisted:
            self.builder.call(free, [raw])

    def parallel_loop(self, stmt: L.For) -> None:
        """Outline the loop body into ``void body(i8* ctx, i64 begin, i64 end)``; the
        context holds every pointer and loop variable in scope as i64s."""
        b = self.builder
        module = b.module
        names = list(self.pointers)
        variables = list(self.loop_vars)
        context_type = ir.ArrayType(S.I64, max(len(names) + len(variables), 1))
        with b.goto_block(self.entry):
            b.position_at_start(self.entry)
            context = b.alloca(context_type, name=f"{stmt.var}.ctx")
        slots = b.bitcast(context, ir.PointerType(S.I64))
        values = [b.ptrtoint(self.pointers[n], S.I64) for n in names]
        values += [self.loop_vars[v] for v in variables]
        for k, value in enumerate(values):
            b.store(value, b.gep(slots, [ir.Constant(S.I64, k)], source_etype=S.I64))
        function = ir.Function(module, parallel.BODY_TYPE,
                                f"{b.function.name}.{stmt.var}.{len(module.globals)}")
        function.linkage = "internal"
        _set_attributes(function)
        inner, entry = open_function(function)
        ctx = inner.bitcast(function.args[0], ir.PointerType(S.I64))
        loaded = [inner.load(inner.gep(ctx, [ir.Constant(S.I64, k)], source_etype=S.I64),
                             typ=S.I64) for k in range(len(values))]
        pointers = {
            n: inner.inttoptr(v, self.pointers[n].type)
            for n, v in zip(names, loaded, strict=False)
        }
        renderer = _KernelRenderer(self.kernel, inner, entry, pointers, 1, self.aliasing)
        renderer.dtypes = dict(self.dtypes)
        renderer.loop_vars = dict(zip(variables, loaded[len(names):], strict=True))
        begin, end = function.args[1], function.args[2]
        trip = inner.sub(end, begin)
        with counted_loop(inner, trip, stmt.var, start=begin) as index:
            renderer.loop_vars[stmt.var] = index
            for child in stmt.body:
                renderer.statement(child)
        renderer.release()
        inner.ret_void()
        run = parallel.runner(module, self.shared_runtime)
        trip_count = self.trip_count(stmt)
        if isinstance(trip_count, int):
            trip_count = ir.Constant(S.I64, trip_count)
        b.call(run, [function, b.bitcast(context, ir.PointerType(S.I8)), trip_count,
                     ir.Constant(S.I64, self.threads)])


def alias_scopes(module: ir.Module, kernel: L.Kernel) -> dict[str, tuple]:
    """``{buffer: (alias.scope, noalias)}`` metadata: one scope per buffer of ``kernel``
    (its arguments, which are ``noalias``, and its local allocations, which are distinct),
    in a domain of its own; an access to one buffer is declared not to alias the others."""
    names = [b.name for b in kernel.buffers]
    names += sorted({s.name for s in L.walk(kernel.body) if isinstance(s, L.Allocate)})
    domain = module.add_metadata([f"tcc.{kernel.name}"])
    scopes = {n: module.add_metadata([f"tcc.{kernel.name}.{n}", domain]) for n in names}
    return {n: (module.add_metadata([scopes[n]]),
                module.add_metadata([scopes[o] for o in names if o != n]))
            for n in names}


def _pointer_type(dtype: str) -> ir.PointerType:
    return ir.PointerType(S.memory_type(dtype))


def _set_attributes(function: ir.Function) -> None:
    """Attributes every kernel has; the CPU and its features come from the target machine."""
    function.attributes.add("nounwind")


def declare_kernel(module: ir.Module, kernel: L.Kernel) -> ir.Function:
    arg_types = [_pointer_type(b.dtype) for b in kernel.buffers]
    arg_types += [S.I64] * len(kernel.size_params)
    function = ir.Function(module, ir.FunctionType(S.I32, arg_types), kernel.name)
    for arg, size in zip(function.args[len(kernel.buffers):], kernel.size_params, strict=True):
        arg.name = f"size.{size}"
    for arg, buffer in zip(function.args, kernel.buffers, strict=False):
        arg.name = buffer.name
        arg.add_attribute("noalias")
        arg.add_attribute("captures(none)")
    return function


def render_kernel(module: ir.Module, kernel: L.Kernel, threads: int = 1,
                  shared_runtime: bool = False) -> ir.Function:
    """Emit ``kernel`` as a function of ``module``: declare, create blocks, emit ops."""
    function = declare_kernel(module, kernel)
    builder, entry = open_function(function)
    pointers = dict(zip((b.name for b in kernel.buffers), function.args, strict=False))
    renderer = _KernelRenderer(kernel, builder, entry, pointers, threads)
    renderer.shared_runtime = shared_runtime
    sizes = function.args[len(kernel.buffers):]
    renderer.loop_vars.update({f"${n}": a for n, a in zip(kernel.size_params, sizes, strict=True)})
    for stmt in kernel.body:
        renderer.statement(stmt)
    renderer.release()
    builder.ret(ir.Constant(S.I32, 0))
    return function


def render_python_entry(module: ir.Module, kernel: ir.Function, data_offset: int) -> ir.Function:
    """``NAME_py(obj0, ..., objn)``: read each numpy array's data pointer, call ``NAME``.

    ``data_offset`` is the byte offset of the data pointer inside a numpy array object; the
    runtime checks it against numpy at start-up and does not use this entry if it differs.
    """
    i8p = ir.PointerType(S.I8)
    arg_types = [i8p if isinstance(a.type, ir.PointerType) else a.type for a in kernel.args]
    function = ir.Function(module, ir.FunctionType(S.I32, arg_types), kernel.name + "_py")
    _set_attributes(function)
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    arguments = []
    for obj, param in zip(function.args, kernel.args, strict=True):
        if not isinstance(param.type, ir.PointerType):  # a run-time size: passed as is
            arguments.append(obj)
            continue
        field = builder.gep(obj, [ir.Constant(S.I64, data_offset)], inbounds=True,
                            source_etype=S.I8)
        slot = builder.bitcast(field, ir.PointerType(i8p))
        data = builder.load(slot, typ=i8p)
        arguments.append(builder.bitcast(data, param.type))
    builder.ret(builder.call(kernel, arguments))
    return function


@dataclass(frozen=True, slots=True)
class EntryPlan:
    """How a program entry calls its kernels.

    ``params`` are the tensors passed in (inputs, then outputs); ``temps`` live in one
    arena at the given byte offsets (the arena is the last parameter when there are
    temps); ``calls`` name each kernel and the tensors it takes, in order.
    """

    name: str
    params: tuple[str, ...]
    temps: tuple[tuple[str, int], ...]
    calls: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]  # kernel, tensors, sizes
    sizes: tuple[str, ...] = ()  # run-time sizes, int64 arguments after the pointers


def render_entry(module: ir.Module, plan: EntryPlan, data_offset: int | None) -> None:
    """``i32 NAME(i8* param..., [i8* arena])`` calling each kernel in turn; and, when
    ``data_offset`` is given, ``NAME_py`` taking numpy array objects instead."""
    i8p = ir.PointerType(S.I8)
    n_pointers = len(plan.params) + (1 if plan.temps else 0)
    arg_types = [i8p] * n_pointers + [S.I64] * len(plan.sizes)
    function = ir.Function(module, ir.FunctionType(S.I32, arg_types), plan.name)
    _set_attributes(function)
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    pointers = dict(zip(plan.params, function.args, strict=False))
    sizes = dict(zip(plan.sizes, function.args[n_pointers:], strict=True))
    for name, offset in plan.temps:
        pointers[name] = builder.gep(function.args[n_pointers - 1],
                                     [ir.Constant(S.I64, offset)], inbounds=True,
                                     source_etype=S.I8)
    for symbol, tensors, size_names in plan.calls:
        kernel = module.globals[symbol]
        args = [builder.bitcast(pointers[t], p.type)
                for t, p in zip(tensors, kernel.args, strict=False)]
        args += [sizes[n] for n in size_names]
        status = builder.call(kernel, args)
        failed = builder.icmp_signed("!=", status, ir.Constant(S.I32, 0))
        with builder.if_then(failed, likely=False):
            builder.ret(status)
    builder.ret(ir.Constant(S.I32, 0))
    if data_offset is not None:
        render_python_entry(module, function, data_offset)


def render_module(
    kernels: tuple[L.Kernel, ...], entry: EntryPlan, target: CpuTarget,
    *, data_offset: int | None = None, threads: int = 1, shared_runtime: bool = False,
) -> ir.Module:
    """A module with every kernel and the program entry that runs them."""
    module = ir.Module(name=entry.name)
    module.triple = target.triple
    for kernel in kernels:
        _set_attributes(render_kernel(module, kernel, threads, shared_runtime))
    render_entry(module, entry, data_offset)
    return module

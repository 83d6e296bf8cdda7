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


@contextmanager
def counted_loop(builder: ir.IRBuilder, extent: int, name: str) -> Iterator[ir.Value]:
    """``for i in range(extent)`` for extent >= 1, as a bottom-tested loop."""
    preheader = builder.block
    body = builder.append_basic_block(f"{name}.body")
    exit_block = builder.append_basic_block(f"{name}.exit")
    builder.branch(body)
    builder.position_at_end(body)
    index = builder.phi(S.I64, name=name)
    index.add_incoming(ir.Constant(S.I64, 0), preheader)
    yield index
    following = builder.add(index, ir.Constant(S.I64, 1), name=f"{name}.next", flags=["nuw", "nsw"])
    index.add_incoming(following, builder.block)
    more = builder.icmp_signed("<", following, ir.Constant(S.I64, extent))
    builder.cbranch(more, body, exit_block)
    builder.position_at_end(exit_block)


class _KernelRenderer:
    def __init__(self, kernel: L.Kernel, function: ir.Function, builder: ir.IRBuilder):
        self.kernel = kernel
        self.builder = builder
        self.pointers = dict(zip((b.name for b in kernel.buffers), function.args, strict=True))
        self.dtypes = {b.name: b.dtype for b in kernel.buffers}
        self.loop_vars: dict[str, ir.Value] = {}
        self.locals: dict[str, tuple[tuple[ir.Value, ...], str]] = {}
        self.entry = builder.block

    # -- addresses --------------------------------------------------------------------
    def offset(self, index: L.Affine) -> ir.Value:
        b = self.builder
        total: ir.Value = ir.Constant(S.I64, index.const)
        for var, coef in index.terms:
            term = b.mul(self.loop_vars[var], ir.Constant(S.I64, coef), flags=["nsw"])
            total = b.add(total, term, flags=["nsw"])
        return total

    def addresses(self, buffer: str, index: L.Affine) -> tuple[ir.Value, ...]:
        b = self.builder
        pointer = self.pointers[buffer]
        dtype = DTYPES[self.dtypes[buffer]]
        element = S.memory_type(dtype.name)
        offset = self.offset(index)
        if dtype.is_complex:
            base = b.mul(offset, ir.Constant(S.I64, 2), flags=["nsw"])
            imag = b.add(base, ir.Constant(S.I64, 1), flags=["nsw"])
            return (b.gep(pointer, [base], inbounds=True, source_etype=element),
                    b.gep(pointer, [imag], inbounds=True, source_etype=element))
        return (b.gep(pointer, [offset], inbounds=True, source_etype=element),)

    # -- scalars ----------------------------------------------------------------------
    def scalar(self, expr: L.Scalar) -> S.Value:
        b = self.builder
        if isinstance(expr, L.Load):
            dtype = self.dtypes[expr.buffer]
            element = S.memory_type(dtype)
            parts = tuple(
                S.from_memory(b, b.load(p, typ=element), dtype)
                for p in self.addresses(expr.buffer, expr.index)
            )
            return S.Value(parts, dtype)
        if isinstance(expr, L.Const):
            return S.constant(expr.value, expr.dtype)
        if isinstance(expr, L.Local):
            slots, dtype = self.locals[expr.name]
            ty = S.register_type(dtype)
            return S.Value(tuple(b.load(slot, typ=ty) for slot in slots), dtype)
        if isinstance(expr, L.Cast):
            return S.cast(b, self.scalar(expr.operand), expr.dtype)
        if isinstance(expr, L.Unary):
            return S.unary(b, expr.op, self.scalar(expr.operand))
        if isinstance(expr, L.Binary):
            left, right = self.scalar(expr.left), self.scalar(expr.right)
            return S.binary(b, expr.op, left, right, expr.reassoc)
        raise TccError(f"codegen: unknown scalar node {expr!r}")

    # -- statements -------------------------------------------------------------------
    def local_slots(self, name: str, dtype: str) -> tuple[ir.Value, ...]:
        if name in self.locals and self.locals[name][1] == dtype:
            return self.locals[name][0]
        ty = S.register_type(dtype)
        count = 2 if DTYPES[dtype].is_complex else 1
        with self.builder.goto_block(self.entry):
            self.builder.position_at_start(self.entry)
            slots = tuple(self.builder.alloca(ty, name=f"{name}.{k}") for k in range(count))
        self.locals[name] = (slots, dtype)
        return slots

    def store_local(self, name: str, value: S.Value) -> None:
        for slot, part in zip(self.locals[name][0], value.parts, strict=True):
            self.builder.store(part, slot)

    def statement(self, stmt: L.Stmt) -> None:
        b = self.builder
        if isinstance(stmt, L.For):
            if stmt.extent <= 0:
                return
            with counted_loop(b, stmt.extent, stmt.var) as index:
                self.loop_vars[stmt.var] = index
                for child in stmt.body:
                    self.statement(child)
                del self.loop_vars[stmt.var]
        elif isinstance(stmt, L.Store):
            dtype = self.dtypes[stmt.buffer]
            value = self.scalar(stmt.value)
            if value.dtype != dtype:
                raise TccError(f"store of {value.dtype} into {stmt.buffer}: {dtype}")
            for pointer, part in zip(self.addresses(stmt.buffer, stmt.index), value.parts,
                                     strict=True):
                b.store(S.to_memory(b, part, dtype), pointer)
        elif isinstance(stmt, L.Declare):
            value = self.scalar(stmt.init)
            self.local_slots(stmt.name, stmt.dtype)
            self.store_local(stmt.name, S.cast(b, value, stmt.dtype))
        elif isinstance(stmt, L.Assign):
            value = self.scalar(stmt.value)
            self.store_local(stmt.name, S.cast(b, value, self.locals[stmt.name][1]))
        else:
            raise TccError(f"codegen: unknown statement {stmt!r}")


def _pointer_type(dtype: str) -> ir.PointerType:
    return ir.PointerType(S.memory_type(dtype))


def _set_attributes(function: ir.Function) -> None:
    """Attributes every kernel has; the CPU and its features come from the target machine."""
    function.attributes.add("nounwind")


def declare_kernel(module: ir.Module, kernel: L.Kernel) -> ir.Function:
    arg_types = [_pointer_type(b.dtype) for b in kernel.buffers]
    function = ir.Function(module, ir.FunctionType(S.I32, arg_types), kernel.name)
    for arg, buffer in zip(function.args, kernel.buffers, strict=True):
        arg.name = buffer.name
        arg.add_attribute("noalias")
        arg.add_attribute("captures(none)")
    return function


def render_kernel(module: ir.Module, kernel: L.Kernel) -> ir.Function:
    """Emit ``kernel`` as a function of ``module``: declare, create blocks, emit ops."""
    function = declare_kernel(module, kernel)
    entry = function.append_basic_block("entry")
    body = function.append_basic_block("body")
    builder = ir.IRBuilder(entry)
    builder.branch(body)
    builder.position_at_end(body)
    renderer = _KernelRenderer(kernel, function, builder)
    renderer.entry = entry
    for stmt in kernel.body:
        renderer.statement(stmt)
    builder.ret(ir.Constant(S.I32, 0))
    return function


def render_python_entry(module: ir.Module, kernel: ir.Function, data_offset: int) -> ir.Function:
    """``NAME_py(obj0, ..., objn)``: read each numpy array's data pointer, call ``NAME``.

    ``data_offset`` is the byte offset of the data pointer inside a numpy array object; the
    runtime checks it against numpy at start-up and does not use this entry if it differs.
    """
    i8p = ir.PointerType(S.I8)
    n = len(kernel.args)
    function = ir.Function(module, ir.FunctionType(S.I32, [i8p] * n), kernel.name + "_py")
    _set_attributes(function)
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    pointers = []
    for obj, param in zip(function.args, kernel.args, strict=True):
        field = builder.gep(obj, [ir.Constant(S.I64, data_offset)], inbounds=True,
                            source_etype=S.I8)
        slot = builder.bitcast(field, ir.PointerType(i8p))
        data = builder.load(slot, typ=i8p)
        pointers.append(builder.bitcast(data, param.type))
    builder.ret(builder.call(kernel, pointers))
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
    calls: tuple[tuple[str, tuple[str, ...]], ...]


def render_entry(module: ir.Module, plan: EntryPlan, data_offset: int | None) -> None:
    """``i32 NAME(i8* param..., [i8* arena])`` calling each kernel in turn; and, when
    ``data_offset`` is given, ``NAME_py`` taking numpy array objects instead."""
    i8p = ir.PointerType(S.I8)
    n_args = len(plan.params) + (1 if plan.temps else 0)
    function = ir.Function(module, ir.FunctionType(S.I32, [i8p] * n_args), plan.name)
    _set_attributes(function)
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    pointers = dict(zip(plan.params, function.args, strict=False))
    for name, offset in plan.temps:
        pointers[name] = builder.gep(function.args[-1], [ir.Constant(S.I64, offset)],
                                     inbounds=True, source_etype=S.I8)
    for symbol, tensors in plan.calls:
        kernel = module.globals[symbol]
        args = [builder.bitcast(pointers[t], p.type) for t, p in zip(tensors, kernel.args,
                                                                      strict=True)]
        status = builder.call(kernel, args)
        failed = builder.icmp_signed("!=", status, ir.Constant(S.I32, 0))
        with builder.if_then(failed, likely=False):
            builder.ret(status)
    builder.ret(ir.Constant(S.I32, 0))
    if data_offset is not None:
        render_python_entry(module, function, data_offset)


def render_module(
    kernels: tuple[L.Kernel, ...], entry: EntryPlan, target: CpuTarget,
    *, data_offset: int | None = None,
) -> ir.Module:
    """A module with every kernel and the program entry that runs them."""
    module = ir.Module(name=entry.name)
    module.triple = target.triple
    for kernel in kernels:
        _set_attributes(render_kernel(module, kernel))
    render_entry(module, entry, data_offset)
    return module

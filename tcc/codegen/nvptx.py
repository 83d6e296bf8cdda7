"""Render GPU kernels (``tcc.passes.schedule.gpu``) into an llvmlite module for NVPTX.

Rendering only builds IR; turning it into PTX text (``compile_ptx``) and loading PTX on a
device live in ``tcc.runtime.cuda``. Each kernel becomes::

    define void @NAME(float addrspace(1)* noalias %A, ..., float addrspace(1)* noalias %C)
    !nvvm.annotations = !{!{ptr @NAME, !"kernel", i32 1}, !{ptr @NAME, !"maxntidx", ...}}

The body is what one thread runs; ``threadIdx.x``, ``blockIdx.y``, ... in affine indices
read the special registers (``llvm.nvvm.read.ptx.sreg.tid.x`` and friends), shared buffers
are ``addrspace(3)`` globals and :class:`~tcc.passes.schedule.gpu_ir.Barrier` is
``llvm.nvvm.barrier0``. Arithmetic comes from ``tcc.codegen.scalar``, except the
transcendental functions: NVPTX has no libm, so float32 ``exp``/``log``/``tanh``/``sigmoid``
use the hardware's ``ex2.approx``/``lg2.approx``; float64 ones and ``pow`` raise a
:class:`~tcc.errors.TccError` (they would need libdevice). LLVM aborts the process on an
operation it cannot select, so anything not known to lower is refused here, before LLVM.
"""

from __future__ import annotations

import math

from llvmlite import ir

from tcc.codegen import scalar as S
from tcc.codegen.llvm_cpu import _KernelRenderer, open_function
from tcc.dtypes import DTYPES
from tcc.errors import TccError
from tcc.ir import loops as L
from tcc.passes.schedule.gpu_ir import (
    WARP,
    AtomicAdd,
    Barrier,
    GpuKernel,
    IndexOf,
    Mma,
    WarpReduce,
)

TRIPLE = "nvptx64-nvidia-cuda"
GLOBAL, SHARED = 1, 3  # NVPTX address spaces
SPECIAL_REGISTERS = {  # affine variable -> special register
    f"{name}.{d}": f"llvm.nvvm.read.ptx.sreg.{reg}.{d}"
    for name, reg in (("threadIdx", "tid"), ("blockIdx", "ctaid"), ("blockDim", "ntid"))
    for d in "xyz"
}
_LOG2_E = math.log2(math.e)
_LN_2 = math.log(2.0)


def _declare(module: ir.Module, name: str, fnty: ir.FunctionType) -> ir.Function:
    existing = module.globals.get(name)
    return existing if existing is not None else ir.Function(module, fnty, name)


def _call(builder: ir.IRBuilder, name: str, ret: ir.Type, args: list[ir.Value]) -> ir.Value:
    fnty = ir.FunctionType(ret, [a.type for a in args])
    return builder.call(_declare(builder.module, name, fnty), args)


# ---- float32 transcendental functions from the special function unit ------------------


def _exp2(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return _call(b, "llvm.nvvm.ex2.approx.f", x.type, [x])


def _exp(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return _exp2(b, b.fmul(x, ir.Constant(x.type, _LOG2_E)))


def _log(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    log2 = _call(b, "llvm.nvvm.lg2.approx.f", x.type, [x])
    return b.fmul(log2, ir.Constant(x.type, _LN_2))


def _tanh(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """``1 - 2 / (exp(2x) + 1)``: exact limits at +-inf, absolute error ~1e-7 near 0."""
    one = ir.Constant(x.type, 1.0)
    e = _exp(b, b.fmul(x, ir.Constant(x.type, 2.0)))
    return b.fsub(one, b.fdiv(ir.Constant(x.type, 2.0), b.fadd(e, one)))


def _sigmoid(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    one = ir.Constant(x.type, 1.0)
    return b.fdiv(one, b.fadd(one, _exp(b, b.fneg(x))))


GPU_FLOAT32_UNARY = {"exp": _exp, "log": _log, "tanh": _tanh, "sigmoid": _sigmoid}
GENERIC_UNARY = ("neg", "abs", "conj", "relu", "sqrt")  # scalar.py's forms lower on NVPTX


def gpu_unary(b: ir.IRBuilder, op: str, value: S.Value) -> S.Value:
    """``scalar.unary`` with the libm calls replaced by forms NVPTX can select."""
    d = DTYPES[value.dtype]
    if op in GENERIC_UNARY or d.kind not in ("float", "complex"):
        return S.unary(b, op, value)
    if value.dtype == "float16":
        result = gpu_unary(b, op, S.cast(b, value, "float32"))
        return S.cast(b, result, "float16")
    if op not in GPU_FLOAT32_UNARY:
        raise TccError(f"unknown unary operation {op!r}")
    if value.dtype != "float32":
        raise TccError(f"the CUDA backend cannot compute {op} in {value.dtype}: NVPTX has no "
                       "libm (it would need libdevice); compute it in float32 or on the CPU")
    return S.Value((GPU_FLOAT32_UNARY[op](b, value.v),), value.dtype)


class _GpuRenderer(_KernelRenderer):
    """The CPU renderer's loops, addressing and scalars, with the GPU's differences:
    special registers, shared buffers, barriers and GPU-safe transcendental functions."""

    def __init__(self, gpu: GpuKernel, builder: ir.IRBuilder, entry: ir.Block,
                 pointers: dict[str, ir.Value]) -> None:
        super().__init__(gpu.kernel, builder, entry, pointers, threads=1)
        self.shared = gpu.schedule.shared
        threads = gpu.schedule.threads  # a block smaller than a warp shuffles among its own
        self.warp_mask = (1 << min(threads, WARP)) - 1

    def read_special_registers(self) -> None:
        b = self.builder
        for var, intrinsic in SPECIAL_REGISTERS.items():
            value = _call(b, intrinsic, S.I32, [])
            self.loop_vars[var] = b.zext(value, S.I64, name=var)

    def scalar(self, expr: L.Scalar) -> S.Value:
        if isinstance(expr, L.Unary):
            return gpu_unary(self.builder, expr.op, self.scalar(expr.operand))
        if isinstance(expr, L.Binary) and expr.op == "pow":
            raise TccError("the CUDA backend cannot compute pow yet (NVPTX has no libm)")
        if isinstance(expr, L.Load) and expr.lanes > 1 or isinstance(expr, L.Broadcast):
            raise TccError("the CUDA backend renders scalar code only (no vector lanes)")
        return super().scalar(expr)

    def statement(self, stmt: L.Stmt | Barrier | WarpReduce | IndexOf | Mma | AtomicAdd) -> None:
        if isinstance(stmt, Barrier):
            _call(self.builder, "llvm.nvvm.barrier0", ir.VoidType(), [])
        elif isinstance(stmt, WarpReduce):
            self.warp_reduce(stmt)
        elif isinstance(stmt, Mma):
            self.mma(stmt)
        elif isinstance(stmt, AtomicAdd):
            value = self.scalar(stmt.value)
            (pointer,) = self.addresses(stmt.buffer, stmt.index)
            kind = "fadd" if DTYPES[value.dtype].kind == "float" else "add"
            self.builder.atomic_rmw(kind, pointer, S.to_memory(self.builder, value.v,
                                                               value.dtype), "monotonic")
        elif isinstance(stmt, IndexOf):
            b, value = self.builder, self.offset(stmt.source)
            if stmt.divisor > 1:
                value = b.udiv(value, ir.Constant(S.I64, stmt.divisor))
            if stmt.extent is not None:
                value = b.urem(value, ir.Constant(S.I64, stmt.extent))
            self.loop_vars[stmt.var] = value
        elif isinstance(stmt, L.For) and stmt.kind == "parallel":
            raise TccError("parallel loops are bound to the grid on the GPU, not rendered")
        else:
            super().statement(stmt)  # type: ignore[arg-type]

    def shuffle_xor(self, value: ir.Value, lane_mask: int) -> ir.Value:
        """``value`` of the lane ``laneid ^ lane_mask`` (``shfl.sync.bfly``), any 32- or
        64-bit type: 64-bit values move as two 32-bit halves."""
        b, i32 = self.builder, S.I32
        bits = value.type.width if isinstance(value.type, ir.IntType) else (
            64 if isinstance(value.type, ir.DoubleType) else 32)
        raw = value if isinstance(value.type, ir.IntType) else b.bitcast(value, ir.IntType(bits))
        args = [ir.Constant(i32, self.warp_mask), None, ir.Constant(i32, lane_mask),
                ir.Constant(i32, 0x1F)]
        halves = [raw] if bits == 32 else [b.trunc(raw, i32), b.trunc(b.lshr(raw, ir.Constant(
            raw.type, 32)), i32)]
        moved = [_call(b, "llvm.nvvm.shfl.sync.bfly.i32", i32, [args[0], h, *args[2:]])
                 for h in halves]
        if bits == 64:
            low, high = (b.zext(h, ir.IntType(64)) for h in moved)
            moved = [b.or_(low, b.shl(high, ir.Constant(ir.IntType(64), 32)))]
        return moved[0] if isinstance(value.type, ir.IntType) else b.bitcast(moved[0], value.type)

    def mma(self, stmt: Mma) -> None:
        """``mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32``, inputs rounded to tf32
        (``cvt.rna.tf32.f32``)."""
        b, f32 = self.builder, ir.FloatType()
        inputs = [_call(b, "llvm.nvvm.f2tf32.rna", S.I32, [self.scalar(x).v])
                  for x in (*stmt.a, *stmt.b)]
        accumulators = [self.scalar(L.Local(name)).v for name in stmt.acc]
        result = _call(b, "llvm.nvvm.mma.m16n8k8.row.col.tf32", ir.LiteralStructType([f32] * 4),
                       [*inputs, *accumulators])
        for k, name in enumerate(stmt.acc):
            self.store_local(name, S.Value((b.extract_value(result, k),), "float32"))

    def warp_reduce(self, stmt: WarpReduce) -> None:
        lane_mask = stmt.lanes // 2
        while lane_mask:
            mine = self.scalar(L.Local(stmt.name))
            other = S.Value((self.shuffle_xor(mine.v, lane_mask),), mine.dtype)
            self.store_local(stmt.name, S.binary(self.builder, stmt.op, mine, other, True))
            lane_mask //= 2

    def allocate(self, stmt: L.Allocate) -> None:
        """A shared buffer is an ``addrspace(3)`` global of the module; any other local
        buffer is per-thread (an ``alloca``, kept in registers or local memory)."""
        b = self.builder
        element = S.memory_type(stmt.dtype)  # a complex element is two of these
        parts = 2 if DTYPES[stmt.dtype].is_complex else 1
        array = ir.ArrayType(element, max(stmt.size * parts, 1))
        if stmt.name in self.shared:
            name = f"{b.function.name}.{stmt.name}"
            storage = ir.GlobalVariable(b.module, array, name, addrspace=SHARED)
            storage.linkage = "internal"
            storage.initializer = ir.Constant(array, ir.Undefined)
            storage.align = 16
            pointer = b.bitcast(storage, ir.PointerType(element, SHARED))
        else:
            with b.goto_block(self.entry):
                b.position_at_start(self.entry)
                storage = b.alloca(array, name=stmt.name)
            pointer = b.bitcast(storage, ir.PointerType(element))
        outer = (self.pointers.get(stmt.name), self.dtypes.get(stmt.name))
        self.pointers[stmt.name], self.dtypes[stmt.name] = pointer, stmt.dtype
        for child in stmt.body:
            self.statement(child)
        self.pointers[stmt.name], self.dtypes[stmt.name] = outer  # type: ignore[assignment]


def declare_kernel(module: ir.Module, gpu: GpuKernel) -> ir.Function:
    """``void NAME(T addrspace(1)* noalias ...)`` annotated as a kernel entry."""
    kernel = gpu.kernel
    if kernel.size_params:
        raise TccError("the CUDA backend does not support run-time sizes yet")
    arg_types = [ir.PointerType(S.memory_type(b.dtype), GLOBAL) for b in kernel.buffers]
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), arg_types), kernel.name)
    for arg, buffer in zip(function.args, kernel.buffers, strict=True):
        arg.name = buffer.name
        arg.add_attribute("noalias")
    function.attributes.add("nounwind")
    i32 = S.I32
    annotations = [("kernel", 1)] + [
        (f"maxntid{d}", n) for d, n in zip("xyz", gpu.schedule.block, strict=True)]
    if gpu.schedule.min_blocks_per_sm > 1:
        annotations.append(("minctasm", gpu.schedule.min_blocks_per_sm))
    for key, value in annotations:
        module.add_named_metadata(
            "nvvm.annotations",
            [function, ir.MetaDataString(module, key), ir.Constant(i32, value)])
    return function


def render_kernel(module: ir.Module, gpu: GpuKernel) -> ir.Function:
    """Emit one GPU kernel: declare, create blocks, read the special registers, emit ops."""
    function = declare_kernel(module, gpu)
    builder, entry = open_function(function)
    pointers = dict(zip((b.name for b in gpu.kernel.buffers), function.args, strict=True))
    renderer = _GpuRenderer(gpu, builder, entry, pointers)
    renderer.read_special_registers()
    for stmt in gpu.kernel.body:
        renderer.statement(stmt)
    builder.ret_void()
    return function


def render_module(kernels: tuple[GpuKernel, ...], name: str = "tcc_cuda") -> ir.Module:
    """A module for ``nvptx64-nvidia-cuda`` holding every kernel."""
    module = ir.Module(name=name)
    module.triple = TRIPLE
    for gpu in kernels:
        render_kernel(module, gpu)
    return module

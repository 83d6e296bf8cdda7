"""The CUDA backend's compile and load stages: LLVM IR -> PTX -> a module on the device.

Compiling needs only llvmlite's NVPTX target, so PTX can be generated (and tested) on a
machine without a GPU. Loading and running use the CUDA driver API through cuda-python
(``cuda.bindings.driver``, or the older ``cuda.cuda``), imported lazily: ``import tcc``
never touches CUDA. When cuda-python or a device is missing, asking for the runtime raises
:class:`~tcc.errors.BackendUnavailableError`; every failing driver call raises a
:class:`~tcc.errors.TccError` naming the call and its ``CUresult``.
"""

from __future__ import annotations

import ctypes
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import llvmlite.binding as llvm
import numpy as np

from tcc.codegen import nvptx
from tcc.errors import BackendUnavailableError, CompileError, TccError
from tcc.ir import program as P
from tcc.passes.schedule.gpu import GpuConfig, GpuKernel, format_gpu_kernel, kernels_by_statement

INSTALL_HINT = "install cuda-python (pip install 'tcc[cuda]') on a machine with an NVIDIA GPU"
PTX_HINT = ("PTX can still be generated without a GPU: tcc.compile(..., target='cuda', "
            "load=False).ptx() or `tcc compile EQ --target cuda --emit ptx`")


# ---- compile: LLVM IR -> PTX (no GPU needed) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class GpuTarget:
    """The GPU code is generated for: an ``sm_XY`` architecture and a PTX ISA version."""

    arch: str = "sm_90"
    ptx_version: str = "+ptx80"


@cache
def _initialize() -> None:
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()


@cache
def target_machine(target: GpuTarget, opt_level: int = 3) -> llvm.TargetMachine:
    _initialize()
    try:
        nvptx_target = llvm.Target.from_triple(nvptx.TRIPLE)
    except RuntimeError as exc:
        raise BackendUnavailableError(f"this llvmlite has no NVPTX target: {exc}") from None
    return nvptx_target.create_target_machine(cpu=target.arch, features=target.ptx_version,
                                              opt=opt_level)


def compile_ptx(ir_text: str, target: GpuTarget = GpuTarget(), opt_level: int = 3) -> str:
    """Parse, verify and optimize LLVM IR for NVPTX; return the PTX text."""
    machine = target_machine(target, opt_level)
    try:
        module = llvm.parse_assembly(ir_text)
        module.verify()
    except RuntimeError as exc:
        raise CompileError(f"LLVM rejected the generated NVPTX IR: {exc}") from exc
    module.triple = nvptx.TRIPLE
    module.data_layout = str(machine.target_data)
    if opt_level > 0:
        tuning = llvm.create_pipeline_tuning_options(speed_level=opt_level)
        tuning.loop_vectorization = False  # one thread's code: nothing to vectorize
        tuning.slp_vectorization = False
        tuning.loop_unrolling = True
        builder = llvm.create_pass_builder(machine, tuning)
        builder.getModulePassManager().run(module, builder)
    return machine.emit_assembly(module)


@dataclass(frozen=True, slots=True)
class RenderedCuda:
    """A program as GPU kernels, one LLVM module and its PTX; ``calls`` name each kernel
    and the tensors it takes, in order; ``owners`` give each kernel's statement index."""

    program: P.Program
    kernels: tuple[GpuKernel, ...]
    calls: tuple[tuple[str, tuple[str, ...]], ...]
    llvm_text: str
    ptx: str
    owners: tuple[int, ...] = ()

    def ir(self) -> str:
        return "\n\n".join(format_gpu_kernel(k) for k in self.kernels)


def render_cuda_program(program: P.Program, layouts: Mapping[str, tuple[int, ...]] | None = None,
                        *, target: GpuTarget = GpuTarget(), tiled: str = "auto",
                        precision: str = "exact", config: GpuConfig | None = None,
                        name: str = "tcc_cuda", opt_level: int = 3) -> RenderedCuda:
    """Schedule every statement for the GPU, render one module, compile it to PTX."""
    if int(target.arch.removeprefix("sm_")) < 80:
        precision = "exact"  # no tf32 tensor cores before sm_80: tf32 allows, never demands
    groups = kernels_by_statement(program, layouts, name=name, tiled=tiled, precision=precision,
                                  config=config)
    kernels = tuple(kernel for group in groups for kernel in group)
    owners = tuple(index for index, group in enumerate(groups) for _ in group)
    module = nvptx.render_module(kernels, name)
    text = str(module)
    calls = tuple((k.name, tuple(b.name for b in k.kernel.buffers)) for k in kernels)
    return RenderedCuda(program, kernels, calls, text, compile_ptx(text, target, opt_level),
                        owners)


Where = tuple[str, object]  # ("io", tensor name) or ("arena", byte offset)


def step_buffers(program: P.Program, execution, memory) -> list[tuple[int, dict[str, Where]]]:
    """Where every tensor of each step of an execution plan lives: the program's inputs and
    outputs in their own arrays, each temporary's copy at its offset in the one arena of
    ``memory`` (the plans of ``tcc.passes.execution.plan_execution``)."""
    offsets = {p.name: p.offset for p in memory.placements}
    io = {*program.inputs, *program.outputs}
    steps = []
    for index, binding in execution.steps:
        stmt = program.statements[index]
        where: dict[str, Where] = {n: ("io", n) for n in
                                   (stmt.target, *(r.tensor for r in P.statement_reads(stmt)))
                                   if n in io}
        where.update({tensor: ("arena", offsets[instance]) for tensor, instance in binding})
        steps.append((index, where))
    return steps


# ---- the driver API (lazy) ----------------------------------------------------------------


@cache
def driver() -> Any:
    """cuda-python's driver module; BackendUnavailableError when it is not installed."""
    try:
        from cuda.bindings import driver as module  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cuda as module  # older cuda-python
        except ImportError:
            raise BackendUnavailableError(
                f"the CUDA backend needs cuda-python, which is not installed: {INSTALL_HINT}. "
                f"{PTX_HINT}") from None
    return module


def check(call: str, result: Any) -> Any:
    """Unpack a driver call's ``(CUresult, *values)``; raise TccError when it failed."""
    status, *values = result if isinstance(result, tuple) else (result,)
    if int(status) != 0:
        cu = driver()
        name = cu.cuGetErrorName(status)
        text = name[1].decode() if isinstance(name, tuple) and name[1] else str(status)
        raise TccError(f"CUDA driver call {call} failed: {text} (CUresult {int(status)})")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


@cache
def cuda_available() -> bool:
    """True when cuda-python is installed and a CUDA device answers. Never raises."""
    try:
        cu = driver()
        check("cuInit", cu.cuInit(0))
        return int(check("cuDeviceGetCount", cu.cuDeviceGetCount())) > 0
    except Exception:  # noqa: BLE001 (any failure means: no usable GPU)
        return False


def require_cuda() -> None:
    if not cuda_available():
        driver()  # the clearer message when cuda-python itself is missing
        raise BackendUnavailableError(f"no usable CUDA device: {INSTALL_HINT}. {PTX_HINT}")


class DeviceAllocator:
    """A small caching allocator: freed blocks are kept per rounded size and reused."""

    GRANULE = 512

    def __init__(self, device: Device) -> None:
        self.device = device
        self.free: dict[int, list[int]] = defaultdict(list)
        self.lock = threading.Lock()

    def rounded(self, nbytes: int) -> int:
        return max(-(-nbytes // self.GRANULE) * self.GRANULE, self.GRANULE)

    def allocate(self, nbytes: int) -> int:
        size = self.rounded(nbytes)
        with self.lock:
            if self.free[size]:
                return self.free[size].pop()
        self.device.make_current()
        try:
            return int(check("cuMemAlloc", driver().cuMemAlloc(size)))
        except TccError:
            self.empty_cache()  # out of memory: give cached blocks back and try once more
            return int(check("cuMemAlloc", driver().cuMemAlloc(size)))

    def release(self, pointer: int, nbytes: int) -> None:
        with self.lock:
            self.free[self.rounded(nbytes)].append(pointer)

    def empty_cache(self) -> None:
        with self.lock:
            blocks = [p for pointers in self.free.values() for p in pointers]
            self.free.clear()
        for pointer in blocks:
            check("cuMemFree", driver().cuMemFree(pointer))


class Device:
    """One CUDA device: its primary context, a stream and a caching allocator."""

    def __init__(self, ordinal: int = 0) -> None:
        require_cuda()
        cu = driver()
        self.handle = check("cuDeviceGet", cu.cuDeviceGet(ordinal))
        self.context = check("cuDevicePrimaryCtxRetain", cu.cuDevicePrimaryCtxRetain(self.handle))
        self.make_current()
        self.stream = check("cuStreamCreate", cu.cuStreamCreate(0))
        attribute = cu.CUdevice_attribute
        major = check("cuDeviceGetAttribute", cu.cuDeviceGetAttribute(
            attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, self.handle))
        minor = check("cuDeviceGetAttribute", cu.cuDeviceGetAttribute(
            attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, self.handle))
        self.compute_capability = (int(major), int(minor))
        self.allocator = DeviceAllocator(self)

    @property
    def target(self) -> GpuTarget:
        """PTX for this device's architecture (capped at sm_90: the PTX JIT runs it on newer
        GPUs)."""
        major, minor = self.compute_capability
        arch = min(major * 10 + minor, 90)
        return GpuTarget(f"sm_{arch}", "+ptx80" if arch >= 90 else "+ptx70")

    def make_current(self) -> None:
        check("cuCtxSetCurrent", driver().cuCtxSetCurrent(self.context))

    def synchronize(self) -> None:
        check("cuStreamSynchronize", driver().cuStreamSynchronize(self.stream))


@cache
def device(ordinal: int = 0) -> Device:
    return Device(ordinal)


class DeviceArray:
    """A strided array in device memory, from the caching allocator; exposes
    ``__cuda_array_interface__`` (torch.as_tensor and cupy.asarray take it without a copy)."""

    def __init__(self, shape: Sequence[int], dtype: object, *, dev: Device | None = None):
        self.device = dev or device()
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self.pointer = self.device.allocator.allocate(self.nbytes)

    @staticmethod
    def from_host(array: np.ndarray, dev: Device | None = None) -> DeviceArray:
        host = np.ascontiguousarray(array).reshape(np.shape(array))  # keeps 0-d arrays 0-d
        result = DeviceArray(host.shape, host.dtype, dev=dev)
        if host.nbytes:
            check("cuMemcpyHtoD", driver().cuMemcpyHtoD(result.pointer, host.ctypes.data,
                                                        host.nbytes))
        return result

    def numpy(self) -> np.ndarray:
        host = np.empty(self.shape, self.dtype)
        if self.nbytes:
            self.device.synchronize()
            check("cuMemcpyDtoH", driver().cuMemcpyDtoH(host.ctypes.data, self.pointer,
                                                        self.nbytes))
        return host

    @property
    def __cuda_array_interface__(self) -> dict:
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.pointer, False),
                "strides": None, "version": 3}

    def __del__(self) -> None:
        allocator = getattr(getattr(self, "device", None), "allocator", None)
        if allocator is not None and getattr(self, "pointer", None):
            allocator.release(self.pointer, self.nbytes)

    def __repr__(self) -> str:
        return f"tcc.DeviceArray(shape={self.shape}, dtype={self.dtype})"


@dataclass(frozen=True, slots=True)
class DeviceView:
    """Any ``__cuda_array_interface__`` object: pointer, shape, dtype, element strides."""

    pointer: int
    shape: tuple[int, ...]
    dtype: np.dtype
    strides: tuple[int, ...]

    @staticmethod
    def of(obj: object) -> DeviceView:
        interface = obj.__cuda_array_interface__  # type: ignore[attr-defined]
        dtype = np.dtype(interface["typestr"])
        shape = tuple(int(s) for s in interface["shape"])
        byte_strides = interface.get("strides")
        if byte_strides is None:
            strides, step = [], 1
            for size in reversed(shape):
                strides.append(step)
                step *= max(size, 1)
            elements = tuple(reversed(strides))
        else:
            if any(s % dtype.itemsize for s in byte_strides):
                raise TccError(f"device array of shape {shape} has strides {byte_strides} "
                               f"that are not multiples of its item size {dtype.itemsize}")
            elements = tuple(s // dtype.itemsize for s in byte_strides)
        elements = tuple(0 if size == 1 else s for size, s in zip(shape, elements, strict=True))
        return DeviceView(int(interface["data"][0]), shape, dtype, elements)


def is_device_array(obj: object) -> bool:
    return hasattr(obj, "__cuda_array_interface__")


class CudaProgram:
    """A program compiled to PTX and loaded on a device; runs on device pointers.

    With an execution plan and its memory plan (``plan_execution``: statement order,
    recomputations, arena offsets) the temporaries live in one device arena, allocated
    once; without, each run takes them from the caching allocator."""

    def __init__(self, program: P.Program, layouts: Mapping[str, tuple[int, ...]] | None = None,
                 *, tiled: str = "auto", precision: str = "exact",
                 config: GpuConfig | None = None, dev: Device | None = None,
                 execution=None, memory=None) -> None:
        self.device = dev or device()
        self.rendered = render_cuda_program(program, layouts, target=self.device.target,
                                            tiled=tiled, precision=precision, config=config)
        self.program = program
        cu = driver()
        self.device.make_current()
        image = self.rendered.ptx.encode() + b"\0"
        self.module = check("cuModuleLoadData", cu.cuModuleLoadData(image))
        self.functions = {name: check("cuModuleGetFunction",
                                      cu.cuModuleGetFunction(self.module, name.encode()))
                          for name, _ in self.rendered.calls}
        self.temps = [t for t in program.tensors
                      if t.name not in program.inputs and t.name not in program.outputs]
        self.zeroed = [[(b.name, int(np.prod(b.shape)) * np.dtype(b.dtype).itemsize)
                        for b in gpu.kernel.buffers if b.name in gpu.zeroed]
                       for gpu in self.rendered.kernels]
        self.steps = None if execution is None else step_buffers(program, execution, memory)
        self.arena = (DeviceArray((max(memory.arena_bytes, 1),), np.uint8, dev=self.device)
                      if execution is not None else None)

    def launch(self, kernel: int, buffers: Mapping[str, int]) -> None:
        gpu, (name, tensors) = self.rendered.kernels[kernel], self.rendered.calls[kernel]
        for name, nbytes in self.zeroed[kernel]:  # partial sums are added into these
            check("cuMemsetD8Async", driver().cuMemsetD8Async(buffers[name], 0, nbytes,
                                                              self.device.stream))
        holders = [ctypes.c_uint64(buffers[t]) for t in tensors]
        params = (ctypes.c_void_p * max(len(holders), 1))(
            *[ctypes.addressof(h) for h in holders])
        grid, block = gpu.schedule.grid, gpu.schedule.block
        check("cuLaunchKernel", driver().cuLaunchKernel(
            self.functions[name], *grid, *block, 0, self.device.stream,
            ctypes.addressof(params), 0))

    def run(self, pointers: Mapping[str, int]) -> None:
        """Launch every kernel on the device's stream (inputs and outputs by name)."""
        self.device.make_current()
        if self.steps is not None:
            base = self.arena.pointer
            for index, where in self.steps:
                buffers = {t: pointers[w] if kind == "io" else base + w  # type: ignore[operator]
                           for t, (kind, w) in where.items()}
                for kernel, owner in enumerate(self.rendered.owners):
                    if owner == index:
                        self.launch(kernel, buffers)
            return
        buffers = dict(pointers)
        temps = [DeviceArray(t.shape, t.dtype, dev=self.device) for t in self.temps]
        buffers.update({t.name: a.pointer for t, a in zip(self.temps, temps, strict=True)})
        for kernel in range(len(self.rendered.kernels)):
            self.launch(kernel, buffers)
        if temps:
            self.device.synchronize()  # temps go back to the allocator only when done


def row_major_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(0 if size == 1 else step)
        step *= max(size, 1)
    return tuple(reversed(strides))


class CudaEinsum:
    """A program with inputs ``in0..`` and output ``out`` run on the GPU for any operand
    strides (one compiled variant per stride signature). Host operands are copied in and
    the result copied back; device operands (``__cuda_array_interface__``) stay on the
    device and the result is a :class:`DeviceArray`. With ``load=False`` nothing touches
    a GPU: only the IR and PTX are available."""

    def __init__(self, program: P.Program, *, load: bool = True, tiled: str = "auto",
                 precision: str = "exact", config: GpuConfig | None = None):
        self.program = program
        self.tiled, self.precision, self.config = tiled, precision, config
        self.inputs = [program.tensor(name) for name in program.inputs]
        self.output = program.tensor(program.outputs[0])
        self._variants: dict[tuple, CudaProgram] = {}
        self._rendered: RenderedCuda | None = None
        if load:
            require_cuda()

    def rendered(self) -> RenderedCuda:
        """Row-major operands, for the device in use or sm_90 when none is loaded."""
        if self._rendered is None:
            target = device().target if cuda_available() else GpuTarget()
            self._rendered = render_cuda_program(self.program, {}, target=target,
                                                 tiled=self.tiled, precision=self.precision,
                                                 config=self.config)
        return self._rendered

    def _operand(self, k: int, operand: object, keep: list) -> DeviceView:
        tensor = self.inputs[k]
        if is_device_array(operand):
            view = DeviceView.of(operand)
        else:
            host = np.asarray(operand)
            copy = DeviceArray.from_host(host)
            keep.append(copy)
            view = DeviceView(copy.pointer, copy.shape, copy.dtype, row_major_strides(copy.shape))
        if view.shape != tensor.shape:
            raise TccError(f"operand {k} has shape {view.shape}; the kernel was compiled for "
                           f"{tensor.shape}")
        if view.dtype != np.dtype(tensor.dtype):
            raise TccError(f"operand {k} has dtype {view.dtype}; the kernel was compiled for "
                           f"{tensor.dtype}")
        return view

    def __call__(self, *operands: object) -> np.ndarray | DeviceArray:
        require_cuda()
        if len(operands) != len(self.inputs):
            raise TccError(f"the kernel takes {len(self.inputs)} operands, got {len(operands)}")
        keep: list[DeviceArray] = []
        views = [self._operand(k, op, keep) for k, op in enumerate(operands)]
        result = DeviceArray(self.output.shape, self.output.dtype)
        layouts = {f"in{k}": v.strides for k, v in enumerate(views)}
        layouts[self.output.name] = row_major_strides(self.output.shape)
        key = tuple(v.strides for v in views)
        variant = self._variants.get(key)
        if variant is None:
            variant = self._variants[key] = CudaProgram(self.program, layouts, tiled=self.tiled,
                                                        precision=self.precision,
                                                        config=self.config)
        pointers = {f"in{k}": v.pointer for k, v in enumerate(views)}
        pointers[self.output.name] = result.pointer
        variant.run(pointers)
        if all(not is_device_array(op) for op in operands):
            return result.numpy()  # synchronizes; then the copies go back to the allocator
        if keep:
            device().synchronize()
        return result

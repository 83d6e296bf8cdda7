"""A compiled Program: lowered, rendered, compiled and loaded; called with numpy arrays.

The call path is thin: the arrays' object addresses go straight to a generated entry that
reads their data pointers (checked once against numpy at start-up), so a call costs one
ctypes transition.
"""

from __future__ import annotations

import ctypes
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache

import numpy as np

from tcc.codegen.llvm_cpu import CpuTarget, EntryPlan, render_module
from tcc.errors import TccError
from tcc.ir import loops as L
from tcc.ir import program as P
from tcc.ir.printer import format_kernel, format_program
from tcc.ir.verify import verify_kernel, verify_program
from tcc.options import Options, default_options
from tcc.passes.execution import ExecutionPlan, in_order
from tcc.passes.memplan import MemoryPlan, plan_memory
from tcc.passes.pipeline import kernel_for_statement
from tcc.runtime import host_memory, jit


@cache
def numpy_data_offset() -> int | None:
    """Byte offset of the data pointer inside a numpy array object, if it is the usual 16."""
    probe = np.arange(3.0)
    for offset in (16,):
        if ctypes.c_void_p.from_address(id(probe) + offset).value == probe.ctypes.data:
            return offset
    return None


@dataclass(frozen=True, slots=True)
class RunStats:
    """Measured in the last run: ``peak_bytes`` is the arena's high-water mark (the end of
    the last byte a kernel wrote), or None when nothing has been measured."""

    peak_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class RenderedProgram:
    """A program as one LLVM module: its kernels, its entry and the IR text."""

    program: P.Program
    kernels: tuple[L.Kernel, ...]
    entry: EntryPlan
    memory_plan: MemoryPlan
    llvm_text: str


def render_program(
    program: P.Program,
    layouts: Mapping[str, tuple[int, ...]],
    options: Options,
    target: CpuTarget,
    *,
    data_offset: int | None = None,
    name: str | None = None,
    execution: ExecutionPlan | None = None,
    memory_plan: MemoryPlan | None = None,
    shared_runtime: bool = False,
) -> RenderedProgram:
    """Schedule every statement for ``target``, plan memory, render one module.

    ``execution`` says which statement runs when on which buffer instances (default: each
    once, in order); ``memory_plan`` places the instances in the arena."""
    if options.verify:
        verify_program(program)
    kernels = [
        kernel_for_statement(program, stmt, layouts, name=f"k{k}", features=target.features,
                             threads=options.num_threads, gett=options.gett,
                             params=options.gett_params)
        for k, stmt in enumerate(program.statements)
    ]
    if execution is None:
        execution = in_order(program)
    if memory_plan is None:
        memory_plan = plan_memory(program, execution.instances)
    if name is None:
        text = "\n".join(format_kernel(k) for k in kernels)
        salt = f"{target}|{options.num_threads}|{data_offset}|{execution.steps}"
        salt += f"|{memory_plan.placements}"
        name = "tcc_" + hashlib.sha256((text + salt).encode()).hexdigest()[:20]
    kernels = [replace(k, name=f"{name}_{k.name}") for k in kernels]
    if options.verify:
        for kernel in kernels:
            verify_kernel(kernel)
    calls = []
    for index, binding in execution.steps:
        kernel, instance = kernels[index], dict(binding)
        calls.append((kernel.name, tuple(instance.get(b.name, b.name) for b in kernel.buffers),
                      kernel.size_params))
    entry = EntryPlan(
        name=name,
        params=(*program.inputs, *program.outputs),
        temps=tuple((p.name, p.offset) for p in memory_plan.placements),
        calls=tuple(calls),
        sizes=program.dynamic,
    )
    module = render_module(tuple(kernels), entry, target, data_offset=data_offset,
                           threads=options.num_threads, shared_runtime=shared_runtime)
    return RenderedProgram(program, tuple(kernels), entry, memory_plan, str(module))


class CompiledProgram:
    """``program`` compiled for the host, inputs/outputs with the given element strides.

    ``layouts`` maps tensor names to element strides; tensors not named are row-major.
    """

    def __init__(
        self,
        program: P.Program,
        layouts: Mapping[str, tuple[int, ...]] | None = None,
        options: Options | None = None,
        *,
        execution: ExecutionPlan | None = None,
        memory_plan: MemoryPlan | None = None,
        measure_memory: bool = False,
    ) -> None:
        self.options = options or default_options()
        self.program = program
        self.layouts = dict(layouts or {})
        self._data_offset = numpy_data_offset()
        rendered = render_program(program, self.layouts, self.options, jit.host_target(),
                                  data_offset=self._data_offset, execution=execution,
                                  memory_plan=memory_plan, shared_runtime=True)
        self.execution = execution
        self.measure_memory = measure_memory
        self.stats = RunStats()
        self.rendered = rendered
        self.kernels = rendered.kernels
        self.entry = rendered.entry
        self.name = rendered.entry.name
        self.memory_plan = rendered.memory_plan
        self.arena_bytes = self.memory_plan.arena_bytes
        self.llvm_text = rendered.llvm_text
        symbol = self.name + ("_py" if self._data_offset is not None else "")
        addresses = jit.load_functions(self.llvm_text, (symbol,), self.options)
        n_args = len(self.entry.params) + (1 if self.entry.temps else 0)
        prototype = ctypes.CFUNCTYPE(ctypes.c_int, *([ctypes.c_void_p] * n_args),
                                     *([ctypes.c_int64] * len(self.entry.sizes)))
        self._function = prototype(addresses[symbol])
        self._thin = self._data_offset is not None and not self.entry.temps

    def run(self, arrays: Sequence[np.ndarray], sizes: Sequence[int] = ()) -> None:
        """Run on ``arrays`` (inputs then outputs) and the run-time ``sizes`` (in the order
        of ``program.dynamic``), which the caller has checked."""
        arena = None
        if self._thin and not sizes:
            status = self._function(*map(id, arrays))
        else:
            operands = list(arrays)
            if self.entry.temps:
                arena = self._new_arena()
                operands.append(arena)
            if self._data_offset is not None:
                status = self._function(*map(id, operands), *sizes)
            else:
                status = self._function(*[a.ctypes.data for a in operands], *sizes)
        if status:
            raise TccError(f"kernel {self.name} failed with status {status}")
        if self.measure_memory:
            self.stats = RunStats(self._high_water(arena) if arena is not None else 0)

    _SENTINEL = np.uint64(0x7FF4_DEAD_BEEF_F00D)  # a signalling-NaN pattern no kernel writes

    def _new_arena(self) -> np.ndarray:
        if not self.measure_memory:
            return host_memory.empty((self.arena_bytes,), np.uint8)
        words = np.full(-(-self.arena_bytes // 8), self._SENTINEL, np.uint64)
        return words.view(np.uint8)[: self.arena_bytes]

    def _high_water(self, arena: np.ndarray) -> int:
        """Bytes from the arena's start to the last byte any kernel wrote (measured)."""
        words = arena.base if arena.base is not None else arena
        touched = np.flatnonzero(words != self._SENTINEL)
        return 0 if touched.size == 0 else min(int(touched[-1] + 1) * 8, self.arena_bytes)

    # -- inspection ---------------------------------------------------------------------
    def ir(self) -> str:
        """The tensor-level program and each kernel's loop nest, as text."""
        return "\n\n".join([format_program(self.program), *map(format_kernel, self.kernels)])

    def llvm_ir(self, optimized: bool = False) -> str:
        if not optimized:
            return self.llvm_text
        return str(jit.optimize(self.llvm_text, jit.host_target(), self.options.opt_level))

    def asm(self) -> str:
        target = jit.host_target()
        module = jit.optimize(self.llvm_text, target, self.options.opt_level)
        return jit.emit_assembly(module, target, self.options.opt_level)

"""Whole programs: parse, build, differentiate and compile multi-statement tensor programs.

    prog = tcc.program('''
        H[b,h] = relu(sum_i X[b,i] * W1[h,i])
        Y[b,o] = sum_h H[b,h] * W2[o,h]
        L[]    = sum_{b,o} (Y[b,o] - T[b,o])^2
    ''', shapes=dict(b=256, i=784, h=128, o=10))
    step = tcc.compile_program(tcc.grad(prog, of="L", wrt=["W1", "W2"]))
    out = step(X=x, W1=w1, W2=w2, T=t)          # {"L": ..., "dW1": ..., "dW2": ...}
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tcc.errors import DTypeError, OperandError, ShapeError
from tcc.frontend.builder import ProgramBuilder
from tcc.frontend.program_text import program
from tcc.ir import program as P
from tcc.options import Options
from tcc.passes.autodiff import grad
from tcc.passes.contract import contract_products
from tcc.passes.execution import plan_execution
from tcc.passes.fuse import fuse
from tcc.runtime import host_memory
from tcc.runtime.program import CompiledProgram
from tcc.units import parse_bytes

__all__ = ["CompiledProgramCallable", "ProgramBuilder", "compile_program", "grad", "program"]


class CompiledProgramCallable:
    """A Program compiled to one native entry; call it with named arrays.

    ``f(X=x, W=w)`` or ``f({"X": x, "W": w})`` returns ``{output name: new array}``.
    Inputs must have the program's shapes and dtypes exactly (no silent casts); other
    layouts are copied to row-major first.
    """

    def __init__(self, prog: P.Program, options: Options | None = None, *,
                 memory_budget: int | str | None = None, remat_time_limit: float = 10.0) -> None:
        self.source = prog
        prog = fuse(contract_products(prog))
        self.program = prog
        budget = None if memory_budget is None else parse_bytes(memory_budget,
                                                                what="memory_budget")
        self.execution, self.memory_plan = plan_execution(prog, budget,
                                                          time_limit=remat_time_limit)
        self.memory_budget = budget
        self.compiled = CompiledProgram(prog, None, options, execution=self.execution,
                                        memory_plan=self.memory_plan, measure_memory=True)
        self._tensors = {t.name: t for t in prog.tensors}

    @property
    def stats(self):
        """Measured in the last call: ``stats.peak_bytes``, the arena's high-water mark."""
        return self.compiled.stats

    @property
    def remat_plan(self):
        """The solver's plan (events, predicted peak, overhead) when a budget was given."""
        return self.execution.remat

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.program.inputs

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.program.outputs

    def _argument(self, name: str, value: object) -> np.ndarray:
        tensor = self._tensors[name]
        if not isinstance(value, np.ndarray):
            value = np.asarray(value, dtype=tensor.dtype)
        if value.shape != tensor.shape:
            raise ShapeError(
                f"input {name} has shape {value.shape}; the program expects {tensor.shape}"
            )
        if value.dtype != np.dtype(tensor.dtype):
            raise DTypeError(
                f"input {name} (shape {value.shape}) has dtype {value.dtype}; the program "
                f"expects {tensor.dtype}"
            )
        if not value.flags.c_contiguous or value.dtype.byteorder == ">":
            value = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("="))
        return value

    def __call__(
        self, arrays: Mapping[str, object] | None = None, /, **named: object
    ) -> dict[str, np.ndarray]:
        given = {**dict(arrays or {}), **named}
        missing = [n for n in self.inputs if n not in given]
        if missing:
            raise OperandError(f"missing input(s) {missing}; the program takes {list(self.inputs)}")
        unknown = [n for n in given if n not in self.inputs]
        if unknown:
            raise OperandError(f"unknown input(s) {unknown}; the program takes "
                               f"{list(self.inputs)}")
        operands = [self._argument(n, given[n]) for n in self.inputs]
        results = {
            n: host_memory.empty(self._tensors[n].shape, self._tensors[n].dtype)
            for n in self.outputs
        }
        self.compiled.run([*operands, *results.values()])
        return results

    def export(self, path: str, *, cpu: str | None = None, name: str | None = None) -> dict:
        """The whole program as one C function in a .so/.a/.o with a header: inputs then
        outputs as row-major arrays, in program order; the arena is allocated inside."""
        from pathlib import Path

        from tcc.runtime.export import ExportItem, export_library

        if name is None:
            stem = Path(path).stem
            name = stem[3:] if stem.startswith("lib") else stem
        axes: dict[str, tuple[str, ...]] = {}
        for stmt in self.program.statements:
            axes.setdefault(stmt.target, stmt.indices)
            for read in P.statement_reads(stmt):
                axes.setdefault(read.tensor, read.indices)
        budget = "" if self.memory_budget is None else f" under a {self.memory_budget}-byte budget"
        item = ExportItem(name, self.program, f"a program of {len(self.program.statements)} "
                          f"statements{budget}", axes, execution=self.execution,
                          memory_plan=self.memory_plan)
        return export_library([item], path, cpu=cpu, options=self.compiled.options)

    def ir(self) -> str:
        """The tensor-level program and each statement's loop nest, as text."""
        return self.compiled.ir()

    def llvm_ir(self, optimized: bool = False) -> str:
        return self.compiled.llvm_ir(optimized)

    def __repr__(self) -> str:
        return (f"tcc.CompiledProgramCallable(inputs={list(self.inputs)}, "
                f"outputs={list(self.outputs)}, statements={len(self.program.statements)})")


class CudaProgramCallable(CompiledProgramCallable):
    """A Program on an NVIDIA GPU: the same planning (fusion, order, rematerialization
    under ``memory_budget``, one arena for the temporaries, here in device memory), each
    statement as GPU kernels. Call it with named arrays: numpy arrays are copied in and
    the outputs come back as numpy arrays; with any device array among the inputs
    (``__cuda_array_interface__``) the outputs stay on the device as DeviceArrays."""

    def __init__(self, prog: P.Program, *, memory_budget: int | str | None = None,
                 remat_time_limit: float = 10.0, precision: str = "exact") -> None:
        from tcc.runtime.cuda import CudaProgram

        self.source = prog
        self.program = prog = fuse(contract_products(prog))
        budget = None if memory_budget is None else parse_bytes(memory_budget,
                                                                what="memory_budget")
        self.execution, self.memory_plan = plan_execution(prog, budget,
                                                          time_limit=remat_time_limit)
        self.memory_budget = budget
        self._tensors = {t.name: t for t in prog.tensors}
        self.cuda = CudaProgram(prog, {}, precision=precision, execution=self.execution,
                                memory=self.memory_plan)

    def __call__(self, arrays: Mapping[str, object] | None = None, /,
                 **named: object) -> dict[str, object]:
        from tcc.runtime.cuda import DeviceArray, DeviceView, is_device_array, row_major_strides

        given = {**dict(arrays or {}), **named}
        if sorted(given) != sorted(self.inputs):
            raise OperandError(f"the program takes inputs {list(self.inputs)}, got {sorted(given)}")
        pointers, keep = {}, []
        for name in self.inputs:
            value = given[name]
            if is_device_array(value):
                view = DeviceView.of(value)
                tensor = self._tensors[name]
                if view.shape != tensor.shape or view.dtype != np.dtype(tensor.dtype):
                    raise ShapeError(f"input {name} is {view.dtype}{list(view.shape)}; the "
                                     f"program expects {tensor.dtype}{list(tensor.shape)}")
                if view.strides != row_major_strides(view.shape):
                    raise OperandError(f"device input {name} must be row-major")
                pointers[name] = view.pointer
            else:
                keep.append(DeviceArray.from_host(self._argument(name, value)))
                pointers[name] = keep[-1].pointer
        outputs = {n: DeviceArray(self._tensors[n].shape, self._tensors[n].dtype)
                   for n in self.outputs}
        pointers.update({n: a.pointer for n, a in outputs.items()})
        self.cuda.run(pointers)
        if any(is_device_array(given[n]) for n in self.inputs):
            return dict(outputs)
        return {n: a.numpy() for n, a in outputs.items()}  # numpy() waits for the stream

    @property
    def stats(self):
        raise OperandError("measured arena peaks come from the CPU runtime; on the GPU the "
                           "arena is memory_plan.arena_bytes, allocated once")

    def export(self, path: str, *, cpu: str | None = None, name: str | None = None) -> dict:
        raise OperandError("export builds CPU libraries; compile the program for the CPU")

    def ir(self) -> str:
        return self.cuda.rendered.ir()

    def llvm_ir(self, optimized: bool = False) -> str:
        return self.cuda.rendered.llvm_text

    def ptx(self) -> str:
        return self.cuda.rendered.ptx


def compile_program(prog: P.Program | str, options: Options | None = None, *,
                    memory_budget: int | str | None = None, remat_time_limit: float = 10.0,
                    target: str = "cpu", precision: str = "exact",
                    **program_args: object) -> CompiledProgramCallable:
    """Compile a Program (or program text, with ``program``'s keyword arguments).

    With ``memory_budget`` (bytes, or a string like "64MB") the temporaries never need more
    than that: CP-SAT decides what to keep, free and recompute within ``remat_time_limit``
    seconds, and a ``MemoryBudgetError`` names the smallest budget when none can work.
    ``target='cuda'`` runs it on an NVIDIA GPU (:class:`CudaProgramCallable`)."""
    if isinstance(prog, str):
        prog = program(prog, **program_args)  # type: ignore[arg-type]
    elif program_args:
        raise OperandError(f"unexpected arguments {sorted(program_args)} for a Program")
    if target == "cuda":
        return CudaProgramCallable(prog, memory_budget=memory_budget,
                                   remat_time_limit=remat_time_limit, precision=precision)
    if target != "cpu":
        raise OperandError(f"target must be 'cpu' or 'cuda', not {target!r}")
    return CompiledProgramCallable(prog, options, memory_budget=memory_budget,
                                   remat_time_limit=remat_time_limit)

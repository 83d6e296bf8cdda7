"""Helpers for the schedule tests: build kernels from einsums, compile and run one kernel.

No tests here; the other ``test_schedule_*`` modules import these helpers.
"""

from __future__ import annotations

import ctypes
import hashlib
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from llvmlite import ir

from tcc.codegen.llvm_cpu import render_kernel
from tcc.frontend.einsum import parse_einsum
from tcc.frontend.einsum_program import einsum_program
from tcc.ir import loops as L
from tcc.ir.printer import format_kernel
from tcc.ir.verify import verify_kernel
from tcc.options import Options, default_options
from tcc.passes.lower import lower_statement
from tcc.runtime import jit

THREADS = 4


def options() -> Options:
    return default_options().with_(opt_level=1, num_threads=THREADS)


def einsum_kernel(equation: str, shapes: Sequence[tuple[int, ...]], dtype: str = "float64",
                  order: list[str] | None = None) -> L.Kernel:
    """The unscheduled loop nest of a one-statement einsum (inputs in0.., output out)."""
    shapes = [tuple(s) for s in shapes]
    program = einsum_program(parse_einsum(equation, shapes), shapes, [dtype] * len(shapes),
                             dtype, dtype)
    assert len(program.statements) == 1
    return lower_statement(program, program.statements[0], order=order)


class KernelRunner:
    """One kernel compiled for the host: ``runner(*inputs) -> output``."""

    def __init__(self, kernel: L.Kernel, threads: int = THREADS) -> None:
        verify_kernel(kernel)
        key = hashlib.sha256(format_kernel(kernel).encode()).hexdigest()[:16]
        self.kernel = replace(kernel, name=f"sched_{key}_k")
        self.names = tuple(b.name for b in kernel.buffers)
        module = ir.Module(name=self.kernel.name)
        module.triple = jit.host_target().triple
        render_kernel(module, self.kernel, threads)
        addresses = jit.load_functions(str(module), (self.kernel.name,), options())
        prototype = ctypes.CFUNCTYPE(ctypes.c_int, *([ctypes.c_void_p] * len(self.names)))
        self.function = prototype(addresses[self.kernel.name])

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        out_buffer = self.kernel.buffers[-1]
        assert out_buffer.role == "out"
        out = np.full(out_buffer.shape, np.nan, out_buffer.dtype)
        arrays = [np.ascontiguousarray(a) for a in inputs] + [out]
        for array, buffer in zip(arrays, self.kernel.buffers, strict=True):
            assert array.shape == buffer.shape and array.dtype == np.dtype(buffer.dtype)
        assert self.function(*[a.ctypes.data for a in arrays]) == 0
        return out


def random_inputs(kernel: L.Kernel, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(b.shape).astype(b.dtype) for b in kernel.buffers
            if b.role == "in"]


def assert_same_results(equation: str, original: L.Kernel, scheduled: L.Kernel,
                        seed: int = 0) -> None:
    """The scheduled kernel verifies and computes what the original and numpy compute."""
    inputs = random_inputs(original, seed)
    expected = KernelRunner(original)(*inputs)
    got = KernelRunner(scheduled)(*inputs)
    tol = 1e-4 if original.buffers[-1].dtype == "float32" else 1e-10
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)
    np.testing.assert_allclose(got, np.einsum(equation, *inputs), rtol=tol, atol=tol)

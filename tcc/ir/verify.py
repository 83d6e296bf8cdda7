"""Verifiers for both IR levels; tests run them after every pass.

The kernel verifier proves every load and store stays inside its buffer: each access is an
affine function of loop variables with known extents, so its offset range is exact.
"""

from __future__ import annotations

from tcc.dtypes import DTYPES
from tcc.errors import TccError
from tcc.ir import loops as L
from tcc.ir import program as P


class VerificationError(TccError, AssertionError):
    """The IR is malformed: a pass has a bug."""


def _offset_range(index: L.Affine, extents: dict[str, int]) -> tuple[int, int]:
    lo = hi = index.const
    for var, coef in index.terms:
        span = coef * (extents[var] - 1)
        lo += min(0, span)
        hi += max(0, span)
    return lo, hi


def _buffer_range(buffer: L.Buffer) -> tuple[int, int] | None:
    if any(size == 0 for size in buffer.shape):
        return None
    lo = hi = 0
    for size, stride in zip(buffer.shape, buffer.strides, strict=True):
        span = (size - 1) * stride
        lo += min(0, span)
        hi += max(0, span)
    return lo, hi


class _KernelVerifier:
    def __init__(self, kernel: L.Kernel) -> None:
        self.kernel = kernel
        self.buffers = {b.name: b for b in kernel.buffers}
        if len(self.buffers) != len(kernel.buffers):
            raise VerificationError(f"kernel {kernel.name}: duplicate buffer names")
        for b in kernel.buffers:
            if b.dtype not in DTYPES or len(b.shape) != len(b.strides):
                raise VerificationError(f"buffer {b.name}: bad dtype or shape/strides")
        self.ranges = {b.name: _buffer_range(b) for b in kernel.buffers}

    def check_access(self, name: str, index: L.Affine, extents: dict[str, int],
                     lookups: tuple = (), lanes: int = 1) -> None:
        if name not in self.buffers:
            raise VerificationError(f"access to unknown buffer {name!r}")
        for var, _ in index.terms + tuple(t for _, pos in lookups for t in pos.terms):
            if var not in extents:
                raise VerificationError(f"{name}[{index}] uses {var!r} outside its loop")
        for table, position in lookups:
            self.check_access(table, position, extents)
        if lookups or any(extent <= 0 for extent in extents.values()):
            return  # offsets read at run time (GETT tables), bounded loops, or never run
        lo, hi = _offset_range(index, extents)
        hi += lanes - 1
        allowed = self.ranges[name]
        if allowed is None or lo < allowed[0] or hi > allowed[1]:
            raise VerificationError(
                f"{name}[{index}] reaches offsets {lo}..{hi}, outside the buffer {allowed}"
            )

    def check_scalar(self, expr: L.Scalar, extents: dict[str, int], local_vars: set[str]):
        if isinstance(expr, L.Load):
            self.check_access(expr.buffer, expr.index, extents, expr.lookups, expr.lanes)
        elif isinstance(expr, L.Local) and expr.name not in local_vars:
            raise VerificationError(f"local {expr.name!r} read before it is declared")
        elif isinstance(expr, L.Cast | L.Const) and expr.dtype not in DTYPES:
            raise VerificationError(f"unknown dtype {expr.dtype!r}")
        for child in L.scalar_children(expr):
            self.check_scalar(child, extents, local_vars)

    def check_body(self, body, extents: dict[str, int], local_vars: set[str]) -> None:
        local_vars = set(local_vars)
        for stmt in body:
            if isinstance(stmt, L.For):
                if stmt.var in extents:
                    raise VerificationError(f"loop variable {stmt.var!r} shadows an outer one")
                if stmt.extent < 0 or stmt.kind not in L.LOOP_KINDS:
                    raise VerificationError(f"loop {stmt.var}: bad extent or kind")
                # a loop that stops early at a run-time bound: its range is not static
                extent = stmt.extent if stmt.bound is None else -1
                self.check_body(stmt.body, {**extents, stmt.var: extent}, local_vars)
            elif isinstance(stmt, L.Store):
                if self.buffers.get(stmt.buffer, None) is None:
                    raise VerificationError(f"store to unknown buffer {stmt.buffer!r}")
                if self.buffers[stmt.buffer].role not in ("out",):
                    raise VerificationError(f"store to input buffer {stmt.buffer!r}")
                self.check_access(stmt.buffer, stmt.index, extents, stmt.lookups)
                self.check_scalar(stmt.value, extents, local_vars)
            elif isinstance(stmt, L.Prefetch):
                if self.buffers.get(stmt.buffer, None) is None:
                    raise VerificationError(f"prefetch of unknown buffer {stmt.buffer!r}")
                self.check_access(stmt.buffer, stmt.index, extents, stmt.lookups)
            elif isinstance(stmt, L.Declare):
                self.check_scalar(stmt.init, extents, local_vars)
                local_vars.add(stmt.name)
            elif isinstance(stmt, L.Allocate):
                outer = self.buffers.get(stmt.name), self.ranges.get(stmt.name)
                self.buffers[stmt.name] = L.Buffer(stmt.name, stmt.dtype, "out", (stmt.size,),
                                                   (1,))
                self.ranges[stmt.name] = (0, stmt.size - 1)
                self.check_body(stmt.body, extents, local_vars)
                if outer[0] is None:
                    del self.buffers[stmt.name], self.ranges[stmt.name]
                else:
                    self.buffers[stmt.name], self.ranges[stmt.name] = outer
            elif isinstance(stmt, L.Assign):
                if stmt.name not in local_vars:
                    raise VerificationError(f"assignment to undeclared local {stmt.name!r}")
                self.check_scalar(stmt.value, extents, local_vars)
            else:
                raise VerificationError(f"unknown statement {stmt!r}")


def verify_kernel(kernel: L.Kernel) -> L.Kernel:
    """Raise VerificationError if ``kernel`` is malformed; return it unchanged."""
    sizes = {f"${name}": -1 for name in kernel.size_params}  # run-time: not static
    _KernelVerifier(kernel).check_body(kernel.body, sizes, set())
    return kernel


def verify_program(program: P.Program) -> P.Program:
    """Raise VerificationError if ``program`` is malformed; return it unchanged."""
    tensors = {t.name: t for t in program.tensors}
    sizes = program.sizes
    defined = set(program.inputs)
    for name in (*program.inputs, *program.outputs):
        if name not in tensors:
            raise VerificationError(f"unknown tensor {name!r}")
    for stmt in program.statements:
        if stmt.target not in tensors or stmt.dtype not in DTYPES:
            raise VerificationError(f"statement for {stmt.target!r}: unknown tensor or dtype")
        if stmt.reduce is not None and stmt.reduce not in P.REDUCTIONS:
            raise VerificationError(f"unknown reduction {stmt.reduce!r}")
        target = tensors[stmt.target]
        accesses = [P.Read(stmt.target, stmt.indices), *P.statement_reads(stmt)]
        for read in accesses:
            tensor = tensors.get(read.tensor)
            if tensor is None or len(read.indices) != len(tensor.shape):
                raise VerificationError(f"{read}: unknown tensor or wrong number of indices")
            if read.tensor != stmt.target and read.tensor not in defined:
                raise VerificationError(f"{read.tensor!r} is read before it is computed")
            for index, size in zip(read.indices, tensor.shape, strict=True):
                if sizes.get(index) not in (size, None) and size != 1:
                    raise VerificationError(f"{read}: index {index} has size {sizes[index]}")
        if len(set(stmt.indices)) != len(stmt.indices) or len(target.shape) != len(stmt.indices):
            raise VerificationError(f"bad output indices for {stmt.target!r}")
        defined.add(stmt.target)
    missing = set(program.outputs) - defined
    if missing:
        raise VerificationError(f"outputs never computed: {sorted(missing)}")
    return program

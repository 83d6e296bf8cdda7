"""An einsum compiled for one call signature, and the numpy-compatible checks around it
(operand preparation, type promotion and casting, ``out=`` validation, slicing)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tcc.dtypes import dtype_of
from tcc.errors import DTypeError, OperandError, OperandTypeError, ShapeError, TccError
from tcc.frontend.einsum import (
    ParsedEinsum,
    parse_einsum,
    parse_terms,
    split_sublist_args,
)
from tcc.frontend.einsum_program import einsum_program
from tcc.ir import program as P
from tcc.options import Options
from tcc.passes.paths import PathChoice
from tcc.runtime import host_memory
from tcc.runtime.program import CompiledProgram

_CASTINGS = ("no", "equiv", "safe", "same_kind", "unsafe")


def element_strides(array: np.ndarray) -> tuple[int, ...] | None:
    """Strides in elements, or None when a stride is not a multiple of the item size."""
    itemsize = array.itemsize
    strides = []
    for size, stride in zip(array.shape, array.strides, strict=True):
        if size == 1:
            strides.append(0)
        elif stride % itemsize:
            return None
        else:
            strides.append(stride // itemsize)
    return tuple(strides)


def resolve_dtypes(
    arrays: Sequence[np.ndarray], dtype: object, casting: str
) -> str:
    """numpy's type promotion and casting check; returns the computation dtype's name."""
    if not isinstance(casting, str):
        raise OperandTypeError(f"casting must be a str, not {type(casting).__name__}")
    if casting not in _CASTINGS:
        raise OperandError(f"casting must be one of {_CASTINGS}, not {casting!r}")
    for k, array in enumerate(arrays):
        try:
            dtype_of(array.dtype)
        except DTypeError as exc:
            raise DTypeError(f"operand {k} (shape {array.shape}): {exc}") from None
    if dtype is None:
        compute = np.result_type(*arrays)
    else:
        try:
            compute = np.dtype(dtype)  # type: ignore[arg-type]
        except TypeError as exc:
            raise DTypeError(f"dtype={dtype!r} is not a dtype: {exc}") from None
    dtype_of(compute)
    for k, array in enumerate(arrays):
        if not np.can_cast(array.dtype, compute, casting):
            raise DTypeError(
                f"operand {k} (shape {array.shape}) has dtype {array.dtype}, which cannot be "
                f"cast to the computation dtype {compute} under casting={casting!r}"
            )
    return compute.name


ORDERS = ("C", "F", "A", "K")  # numpy.einsum's output layouts ("A" is taken as "C")


class EinsumPlan:
    """An einsum compiled for one call signature: shapes, dtypes and strides fixed."""

    def __init__(
        self,
        parsed: ParsedEinsum,
        arrays: Sequence[np.ndarray],
        compute_dtype: str,
        output_dtype: str,
        output_order: str,
        choice: PathChoice | None,
        options: Options,
        output_strides: tuple[int, ...] | None = None,
        dynamic: Sequence[int] = (),
    ) -> None:
        self.parsed = parsed
        self.output_shape = parsed.output_shape
        self.output_dtype = np.dtype(output_dtype)
        self.output_order = "F" if output_order == "F" else "C"
        self.choice = choice
        sliced = choice.sliced if choice else ()
        self._slices = slice_plan(parsed, [a.shape for a in arrays], sliced) if sliced else None
        shapes = [a.shape for a in arrays]
        if self._slices is not None:
            shapes = [tuple(1 if label in sliced else size for label, size in zip(term, shape,
                                                                             strict=True))
                      for term, shape in zip(parsed.spec.inputs, shapes, strict=True)]
        self.program: P.Program = einsum_program(
            parsed, shapes, [a.dtype.name for a in arrays],
            compute_dtype, output_dtype, choice.path if choice else None, sliced=sliced,
            dynamic=dynamic,
        )
        layouts: dict[str, tuple[int, ...]] = {}
        for k, array in enumerate(arrays):
            strides = element_strides(array)
            if strides is None:
                raise TccError("internal: operands with odd strides must be copied first")
            layouts[f"in{k}"] = strides
        self._axes = (free_output_axes(self.program, layouts)
                      if output_strides is None and output_order == "K" else None)
        self._view_axes = tuple(np.argsort(self._axes)) if self._axes else ()
        if output_strides is None:
            output_strides = element_strides(self.allocate())
        layouts["out"] = output_strides  # type: ignore[assignment]
        self.compiled = CompiledProgram(self.program, layouts, options)
        thin = self.compiled._thin and self._slices is None  # noqa: SLF001
        self._direct = self.compiled._function if thin else None  # noqa: SLF001

    def allocate(self) -> np.ndarray:
        if self._axes is None and self.output_order == "F":
            return host_memory.empty(self.output_shape[::-1], self.output_dtype).T
        if self._axes is None:
            return host_memory.empty(self.output_shape, self.output_dtype)
        memory = host_memory.empty([self.output_shape[a] for a in self._axes], self.output_dtype)
        return memory.transpose(self._view_axes)

    def __call__(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        result = self.allocate()
        if self._direct is not None:  # the hot path: one call into generated code
            if self._direct(*map(id, arrays), id(result)):
                raise TccError(f"kernel {self.compiled.name} failed")
        else:
            self.run(arrays, result)
        return result

    def run(self, arrays: Sequence[np.ndarray], result: np.ndarray) -> None:
        if self._slices is None:
            self.compiled.run([*arrays, result])
            return
        result[...] = 0  # the slices accumulate into it
        for selection in self._slices:
            views = [a[index] for a, index in zip(arrays, selection, strict=True)]
            self.compiled.run([*views, result])


def free_output_axes(program: P.Program,
                     layouts: dict[str, tuple[int, ...]]) -> tuple[int, ...] | None:
    """The output's axes in memory order (slowest first) when the caller leaves its layout
    to tcc (``order='K'``, as numpy's einsum): the layout its last kernel writes fastest
    (``gett.free_output_order``); None for row-major."""
    from tcc.passes.schedule.gett import free_output_order

    final = program.statements[-1]
    if final.target != "out" or program.dynamic:
        return None
    order = free_output_order(program, final, layouts)
    return None if order is None else tuple(final.indices.index(i) for i in order)


def slice_plan(parsed: ParsedEinsum, shapes: Sequence[tuple[int, ...]],
                sliced: Sequence[int]) -> list[list[tuple]]:
    """For every slice, the index tuple that views each operand at that slice (a broadcast
    axis of size 1 stays whole)."""
    sizes = [parsed.sizes[label] for label in sliced]
    selections = []
    for values in np.ndindex(*sizes):
        chosen = dict(zip(sliced, values, strict=True))
        selections.append([
            tuple(slice(chosen[label], chosen[label] + 1) if label in chosen and size != 1
                  else slice(None) for label, size in zip(term, shape, strict=True))
            for term, shape in zip(parsed.spec.inputs, shapes, strict=True)
        ])
    return selections





def prepare_operands(operands: Sequence[object]) -> list[np.ndarray]:
    arrays = []
    for operand in operands:
        array = np.asarray(operand)
        if array.dtype.kind not in "biufc":
            raise DTypeError(
                f"operand of dtype {array.dtype} (shape {array.shape}) is not numeric"
            )
        if element_strides(array) is None or array.dtype.byteorder == ">":
            array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
        arrays.append(array)
    return arrays


def parse_operands(subscripts: object, rest: tuple) -> tuple[ParsedEinsum, list[np.ndarray]]:
    if isinstance(subscripts, str):
        arrays = prepare_operands(rest)
        return parse_einsum(subscripts, [a.shape for a in arrays]), arrays
    operands, terms, output = split_sublist_args((subscripts, *rest))
    arrays = prepare_operands(operands)
    return parse_terms(terms, output, [a.shape for a in arrays]), arrays


def check_out(out: object, parsed: ParsedEinsum, compute: str, casting: str) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise OperandTypeError(f"out must be a numpy array, not {type(out).__name__}")
    if out.shape != parsed.output_shape:
        raise ShapeError(
            f"out has shape {out.shape}, but the einsum's output has shape {parsed.output_shape}"
        )
    if not out.flags.writeable:
        raise OperandError("out is read-only")
    dtype_of(out.dtype)
    if not np.can_cast(compute, out.dtype, casting):
        raise DTypeError(
            f"the result dtype {compute} cannot be written to out of dtype {out.dtype} "
            f"under casting={casting!r}"
        )
    return out


def optimize_key(optimize: object) -> object:
    if isinstance(optimize, list | tuple):
        return tuple(tuple(x) if isinstance(x, list | tuple) else x for x in optimize)
    return optimize

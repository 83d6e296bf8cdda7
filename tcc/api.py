"""The user-facing entry points: ``tcc.einsum`` and ``tcc.compile``.

``tcc.einsum`` follows ``numpy.einsum``'s semantics. Its hot path is a dictionary lookup on
(subscripts, options, each operand's shape, strides and dtype) followed by one call into
generated code; everything else (parsing, type promotion, path search, compiling) happens
once per distinct call signature.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tcc.dtypes import dtype_of
from tcc.errors import DTypeError, OperandError, OperandTypeError, ShapeError, TccError
from tcc.frontend.einsum import (
    ParsedEinsum,
    _split_string,
    parse_einsum,
    parse_terms,
    split_sublist_args,
)
from tcc.frontend.einsum_program import einsum_program
from tcc.ir import program as P
from tcc.options import Options, default_options
from tcc.passes.order import (
    ContractionTree,
    PathReport,
    SlicedTree,
    einsum_path_numpy_format,
)
from tcc.passes.paths import PathChoice, choose_path, memory_limit_elements, plan_contraction
from tcc.runtime.export import ExportItem, export_library
from tcc.runtime.program import CompiledProgram

_CASTINGS = ("no", "equiv", "safe", "same_kind", "unsafe")
_ORDERS = ("C", "F", "A", "K")


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


def _resolve_dtypes(
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
        self.output_order = output_order
        self.choice = choice
        sliced = choice.sliced if choice else ()
        self._slices = _slice_plan(parsed, [a.shape for a in arrays], sliced) if sliced else None
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
        if output_strides is None:
            output_strides = element_strides(self.allocate())
        layouts["out"] = output_strides  # type: ignore[assignment]
        self.compiled = CompiledProgram(self.program, layouts, options)
        thin = self.compiled._thin and self._slices is None  # noqa: SLF001
        self._direct = self.compiled._function if thin else None  # noqa: SLF001

    def allocate(self) -> np.ndarray:
        return np.empty(self.output_shape, self.output_dtype, order=self.output_order)

    def __call__(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        result = np.empty(self.output_shape, self.output_dtype, order=self.output_order)
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


def _slice_plan(parsed: ParsedEinsum, shapes: Sequence[tuple[int, ...]],
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


_plans: dict[tuple, EinsumPlan] = {}


def _prepare_operands(operands: Sequence[object]) -> list[np.ndarray]:
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


def _parse(subscripts: object, rest: tuple) -> tuple[ParsedEinsum, list[np.ndarray]]:
    if isinstance(subscripts, str):
        arrays = _prepare_operands(rest)
        return parse_einsum(subscripts, [a.shape for a in arrays]), arrays
    operands, terms, output = split_sublist_args((subscripts, *rest))
    arrays = _prepare_operands(operands)
    return parse_terms(terms, output, [a.shape for a in arrays]), arrays


def _check_out(out: object, parsed: ParsedEinsum, compute: str, casting: str) -> np.ndarray:
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


def _optimize_key(optimize: object) -> object:
    if isinstance(optimize, list | tuple):
        return tuple(tuple(x) if isinstance(x, list | tuple) else x for x in optimize)
    return optimize


def einsum(
    *operands: object,
    out: np.ndarray | None = None,
    dtype: object = None,
    order: str = "K",
    casting: str = "safe",
    optimize: object = "auto",
    memory_limit: int | str | None = None,
    options: Options | None = None,
    device: str | None = None,
) -> np.ndarray:
    """Evaluate an einsum with compiled code; ``numpy.einsum``'s signature and semantics.

    ``optimize`` takes numpy's values (False: one loop nest over all operands; True,
    'greedy', 'optimal', or an explicit path) and tcc's ('auto', the default). Results equal
    numpy's up to floating-point rounding; 0-d results come back as numpy scalars.
    ``device='cuda'`` (implied by operands with ``__cuda_array_interface__``) runs on the GPU:
    numpy operands are copied in and out, device operands stay there.
    """
    if not operands:
        raise OperandError("einsum needs subscripts and at least one operand")
    if device is not None and device != "cpu":
        return _einsum_cuda(operands, out, dtype, optimize, memory_limit, device)
    subscripts = operands[0]
    rest = operands[1:]
    key = None
    if out is None and type(subscripts) is str:
        try:
            key = (subscripts, dtype, order, casting,
                   optimize if type(optimize) is str else _optimize_key(optimize), memory_limit,
                   options,
                   *[(type(a), a.shape, a.strides, a.dtype) for a in rest])  # type: ignore[union-attr]
            plan = _plans.get(key)
        except (AttributeError, TypeError):
            key = plan = None
        if plan is not None:
            result = plan(rest)  # type: ignore[arg-type]
            return result if result.ndim else result[()]
    return _einsum_slow(subscripts, rest, out, dtype, order, casting, optimize, memory_limit,
                        options, key)


def _on_device(operand: object) -> bool:
    return hasattr(operand, "__cuda_array_interface__")


_cuda_kernels: dict[tuple, Kernel] = {}


def _einsum_cuda(operands: tuple, out: object, dtype: object, optimize: object,
                 memory_limit: int | str | None, device: str | None) -> object:
    """``einsum`` on the GPU: one cached ``Kernel(target='cuda')`` per signature."""
    if device not in (None, "cuda"):
        raise OperandError(f"device must be 'cpu' or 'cuda', not {device!r}")
    subscripts, rest = operands[0], operands[1:]
    if not isinstance(subscripts, str) or out is not None or dtype is not None:
        raise OperandError("einsum on the GPU takes a subscripts string and operands "
                           "(no out= or dtype= yet)")
    from tcc.runtime.cuda import DeviceView

    signature = [DeviceView.of(a) if _on_device(a) else np.asarray(a) for a in rest]
    shapes = [tuple(a.shape) for a in signature]
    dtypes = [np.dtype(a.dtype).name for a in signature]
    key = (subscripts, tuple(shapes), tuple(dtypes), _optimize_key(optimize), memory_limit)
    kernel = _cuda_kernels.get(key)
    if kernel is None:
        kernel = _cuda_kernels[key] = Kernel(subscripts, shapes, dtypes, optimize=optimize,
                                             memory_limit=memory_limit, target="cuda")
    return kernel(*rest)


def _einsum_slow(subscripts, rest, out, dtype, order, casting, optimize, memory_limit,
                 options, key) -> np.ndarray:
    if any(_on_device(a) for a in rest):
        return _einsum_cuda((subscripts, *rest), out, dtype, optimize, memory_limit, "cuda")
    if order not in _ORDERS:
        raise OperandError(f"order must be one of {_ORDERS}, not {order!r}")
    if isinstance(subscripts, str):
        _split_string(subscripts)  # syntax errors before operand errors, as numpy
    parsed, arrays = _parse(subscripts, rest)
    compute = _resolve_dtypes(arrays, dtype, casting)
    limit = memory_limit_elements(memory_limit, np.dtype(compute).itemsize)
    path = choose_path(parsed, optimize, limit)
    options = options or default_options()
    output_order = "F" if order == "F" else "C"
    if out is None:
        plan = EinsumPlan(parsed, arrays, compute, compute, output_order, path, options)
        if key is not None and all(a is b for a, b in zip(arrays, rest, strict=True)):
            _plans[key] = plan
        result = plan(arrays)
        return result if result.ndim else result[()]
    out = _check_out(out, parsed, compute, casting)
    target = out
    overlaps = any(np.may_share_memory(out, a) for a in arrays)
    if overlaps or element_strides(out) is None:
        target = np.empty(out.shape, out.dtype)
    plan_key = ("out", key, target.shape, target.strides, target.dtype)
    plan = _plans.get(plan_key) if key is not None else None
    if plan is None:
        plan = EinsumPlan(parsed, arrays, compute, target.dtype.name, output_order, path,
                          options, output_strides=element_strides(target))
        if key is not None:
            _plans[plan_key] = plan
    plan.run(arrays, target)
    if target is not out:
        out[...] = target
    return out


def _tuned_options(subscripts: str, shapes: Sequence[tuple[int, ...]],
                   dtypes: Sequence[np.dtype], options: Options) -> Options:
    """``options`` with the best tuning record for this workload and machine applied."""
    from tcc.tune.database import lookup
    from tcc.tune.space import apply_config

    config = lookup(subscripts, shapes, [d.name for d in dtypes], options.num_threads,
                    db=f"{options.cache_dir}/tuning.db")
    return options if config is None else apply_config(options, config)


class Kernel:
    """An einsum compiled once for fixed shapes and dtypes; call it many times.

    Calls with row-major operands take the precompiled kernel; other layouts (transposed,
    sliced, negative strides) get a variant compiled on first use, with no copy.
    """

    def __init__(
        self,
        subscripts: str,
        shapes: Sequence[tuple[int, ...]],
        dtypes: Sequence[str],
        *,
        optimize: object = "auto",
        memory_limit: int | str | None = None,
        options: Options | None = None,
        tuning: bool = True,
        dynamic: Sequence[str] = (),
        target: str = "cpu",
        load: bool = True,
    ) -> None:
        if target not in ("cpu", "cuda"):
            raise OperandError(f"target must be 'cpu' or 'cuda', not {target!r}")
        if target == "cuda" and dynamic:
            raise OperandError("target='cuda' does not support dynamic sizes yet")
        self.target = target
        tuning = tuning and target == "cpu"
        self.subscripts = subscripts
        self.shapes = tuple(tuple(int(x) for x in s) for s in shapes)
        self.dtypes = tuple(np.dtype(d) for d in dtypes)
        self.options = options or default_options()
        if tuning and self.options.gett_params is None:
            self.options = _tuned_options(subscripts, self.shapes, self.dtypes, self.options)
        self.parsed = parse_einsum(subscripts, self.shapes)
        examples = [np.empty(s, d) for s, d in zip(self.shapes, self.dtypes, strict=True)]
        self.compute_dtype = _resolve_dtypes(examples, None, "safe")
        self._optimize, self._memory_limit = optimize, memory_limit
        limit = memory_limit_elements(memory_limit, np.dtype(self.compute_dtype).itemsize)
        self.path = choose_path(self.parsed, optimize, limit)
        self.dynamic = tuple(dynamic)
        self._dynamic_labels = _check_dynamic(self.parsed, self.dynamic)
        if self.dynamic:
            self.path = None  # one loop nest: no intermediate's size depends on them
        self._cuda = None
        if target == "cuda":
            from tcc.runtime.cuda import CudaEinsum

            program = einsum_program(self.parsed, self.shapes, [d.name for d in self.dtypes],
                                     self.compute_dtype, self.compute_dtype,
                                     self.path.path if self.path else None)
            self._cuda = CudaEinsum(program, load=load)
            return
        self._variants: dict[tuple, EinsumPlan] = {}
        self._default = self._variant(examples)
        self._signature = tuple((np.ndarray, a.shape, a.dtype, a.strides) for a in examples)

    def _variant(self, arrays: Sequence[np.ndarray]) -> EinsumPlan:
        key = tuple(a.strides for a in arrays)
        plan = self._variants.get(key)
        if plan is None:
            plan = EinsumPlan(self.parsed, arrays, self.compute_dtype, self.compute_dtype, "C",
                              self.path, self.options, dynamic=self._dynamic_labels)
            self._variants[key] = plan
        return plan

    def _call_dynamic(self, arrays: Sequence[object], out: np.ndarray | None) -> np.ndarray:
        """Operands whose run-time sizes may differ from the compiled ones (row-major)."""
        if len(arrays) != len(self.shapes):
            raise OperandError(f"kernel for {self.subscripts!r} takes {len(self.shapes)} "
                               f"operands, got {len(arrays)}")
        sizes: dict[int, int] = {}
        checked = []
        terms = self.parsed.spec.inputs
        for k, (array, shape, dtype, term) in enumerate(
                zip(arrays, self.shapes, self.dtypes, terms, strict=True)):
            array = np.ascontiguousarray(array)
            if array.dtype != dtype:
                raise DTypeError(f"operand {k} has dtype {array.dtype}; the kernel was "
                                 f"compiled for {dtype}")
            if array.ndim != len(shape):
                raise ShapeError(f"operand {k} has shape {array.shape}; expected {len(shape)} "
                                 "dimensions")
            for axis, (label, size, want) in enumerate(zip(term, array.shape, shape,
                                                           strict=True)):
                if label in self._dynamic_labels:
                    if sizes.setdefault(label, size) != size:
                        raise ShapeError(f"operand {k} has size {size} for run-time index "
                                         f"'{chr(label)}', another operand {sizes[label]}")
                elif size != want:
                    raise ShapeError(f"operand {k} has size {size} on axis {axis}; the kernel "
                                     f"was compiled for {want}")
            checked.append(array)
        shape = tuple(sizes.get(label, size) for label, size in
                      zip(self.parsed.spec.output, self.output_shape, strict=True))
        result = np.empty(shape, self.compute_dtype) if out is None else out
        if result.shape != shape or not result.flags.c_contiguous or \
                result.dtype != np.dtype(self.compute_dtype):
            raise ShapeError(f"out must be a row-major {self.compute_dtype} array of shape "
                             f"{shape}")
        run_sizes = [sizes.get(label, 0) for label in self._dynamic_labels]
        self._default.compiled.run([*checked, result], run_sizes)
        return result if result.ndim else result[()]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.parsed.output_shape

    def _check(self, arrays: Sequence[object]) -> list[np.ndarray]:
        if len(arrays) != len(self.shapes):
            raise OperandError(
                f"kernel for {self.subscripts!r} takes {len(self.shapes)} operands, "
                f"got {len(arrays)}"
            )
        checked = []
        for k, (array, shape, dtype) in enumerate(
            zip(arrays, self.shapes, self.dtypes, strict=True)
        ):
            if not isinstance(array, np.ndarray):
                array = np.asarray(array)
            if array.shape != shape:
                raise ShapeError(
                    f"operand {k} has shape {array.shape}; the kernel was compiled for {shape}"
                )
            if array.dtype != dtype:
                raise DTypeError(
                    f"operand {k} has dtype {array.dtype}; the kernel was compiled for {dtype}"
                )
            if element_strides(array) is None:
                array = np.ascontiguousarray(array)
            checked.append(array)
        return checked

    def __call__(self, *arrays: object, out: np.ndarray | None = None) -> np.ndarray:
        if self._cuda is not None:
            if out is not None:
                raise OperandError("out= is not supported with target='cuda' yet")
            result = self._cuda(*arrays)
            return result[()] if isinstance(result, np.ndarray) and not result.ndim else result
        if self.dynamic:
            return self._call_dynamic(arrays, out)
        try:
            fast = out is None and self._signature == tuple(
                (type(a), a.shape, a.dtype, a.strides) for a in arrays  # type: ignore[union-attr]
            )
        except AttributeError:  # array-likes: converted below
            fast = False
        if fast:
            result = self._default(arrays)  # type: ignore[arg-type]
            return result if result.ndim else result[()]
        checked = self._check(arrays)
        plan = self._variant(checked)
        if out is None:
            result = plan(checked)
            return result if result.ndim else result[()]
        return self._into(checked, out)

    def _into(self, arrays: list[np.ndarray], out: np.ndarray) -> np.ndarray:
        """``out=``: a variant compiled for out's layout and dtype, cached like the others."""
        out = _check_out(out, self.parsed, self.compute_dtype, "safe")
        target = out
        if element_strides(out) is None or any(np.may_share_memory(out, a) for a in arrays):
            target = np.empty(out.shape, out.dtype)
        key = (tuple(a.strides for a in arrays), target.strides, target.dtype)
        plan = self._variants.get(key)
        if plan is None:
            plan = EinsumPlan(self.parsed, arrays, self.compute_dtype, target.dtype.name, "C",
                              self.path, self.options, output_strides=element_strides(target),
                              dynamic=self._dynamic_labels)
            self._variants[key] = plan
        plan.run(arrays, target)
        if target is not out:
            out[...] = target
        return out

    @property
    def program(self) -> P.Program:
        return self._cuda.program if self._cuda else self._default.program

    def ir(self) -> str:
        """The tensor-level program and the loop nest of each kernel, as text."""
        if self._cuda is not None:
            from tcc.ir.printer import format_program

            return format_program(self.program) + "\n\n" + self._cuda.rendered().ir()
        return self._default.compiled.ir()

    def llvm_ir(self, optimized: bool = False) -> str:
        if self._cuda is not None:
            return self._cuda.rendered().llvm_text
        return self._default.compiled.llvm_ir(optimized)

    def asm(self) -> str:
        return self.ptx() if self._cuda is not None else self._default.compiled.asm()

    def ptx(self) -> str:
        """The PTX of a ``target='cuda'`` kernel (row-major operands); needs no GPU."""
        if self._cuda is None:
            raise OperandError("ptx() needs a kernel compiled with target='cuda'")
        return self._cuda.rendered().ptx

    def export_item(self, name: str) -> ExportItem:
        """This kernel as one function of an exported library (C-contiguous operands)."""
        from tcc.frontend.einsum import _label_text

        spec = self.parsed.spec
        axes = {f"in{k}": tuple(map(_label_text, term)) for k, term in enumerate(spec.inputs)}
        axes["out"] = tuple(map(_label_text, spec.output))
        dtypes = ", ".join(str(d) for d in self.dtypes)
        description = f'einsum "{self.subscripts}" on {dtypes}, computed in {self.compute_dtype}'
        return ExportItem(name, self.program, description, axes, tuple(self.dynamic))

    def export(self, path: str, *, cpu: str | None = None, name: str | None = None) -> dict:
        """Write a shared library (.so), static library (.a) or object (.o) with a C header
        beside it. ``cpu``: None/'native' (this machine), 'generic', 'x86-64-v2/v3/v4'."""
        from pathlib import Path

        if name is None:
            stem = Path(path).stem
            name = stem[3:] if stem.startswith("lib") else stem
        return export_library([self.export_item(name)], path, cpu=cpu, options=self.options)

    def __repr__(self) -> str:
        dtypes = ", ".join(str(d) for d in self.dtypes)
        return f"tcc.Kernel({self.subscripts!r}, shapes={self.shapes}, dtypes=({dtypes}))"


def _check_dynamic(parsed: ParsedEinsum, names: Sequence[str]) -> tuple[int, ...]:
    """Run-time sizes must lead every array they index (so no stride depends on them)."""
    labels = []
    spec = parsed.spec
    for name in names:
        if not isinstance(name, str) or len(name) != 1 or ord(name) not in spec.labels:
            raise OperandError(f"dynamic index {name!r} is not a subscript of the einsum")
        label = ord(name)
        places = [*(f"operand {k}" for k in range(len(spec.inputs))), "the output"]
        for where, term in zip(places, [*spec.inputs, spec.output], strict=True):
            if label in term and (term[0] != label or term.count(label) > 1):
                raise OperandError(f"dynamic index {name!r} must be the first axis of every "
                                   f"array it indexes, once; in {where} it is not")
        labels.append(label)
    return tuple(labels)


def _parse_for_path(subscripts: object, operands: tuple, shapes: bool):
    if shapes:
        dims = [tuple(int(x) for x in shape) for shape in operands]  # type: ignore[union-attr]
        if isinstance(subscripts, str):
            return parse_einsum(subscripts, dims), 8
        raise OperandError("with shapes=True give a subscripts string and one shape per operand")
    parsed, arrays = _parse(subscripts, operands)
    return parsed, np.result_type(*arrays).itemsize


def contraction_tree(
    subscripts: object, *operands: object, shapes: bool = False, optimize: object = "auto",
    memory_limit: int | str | None = None, max_time: float | None = None,
) -> ContractionTree | SlicedTree:
    """The contraction plan as data (``to_json``, ``path()``, ``steps()``, ``plot``): a
    ContractionTree, or a SlicedTree when ``memory_limit`` can only be met by slicing."""
    parsed, itemsize = _parse_for_path(subscripts, operands, shapes)
    limit = memory_limit_elements(memory_limit, itemsize)
    return plan_contraction(parsed, optimize, limit, max_time=max_time)


def einsum_path(
    subscripts: object, *operands: object, shapes: bool = False, optimize: object = "auto",
    memory_limit: int | str | None = None, max_time: float | None = None,
) -> tuple[list, PathReport]:
    """``numpy.einsum_path``'s result: ``(['einsum_path', (0, 2), ...], report)``; the report
    prints like numpy's, with the kernel each step runs as and any slicing."""
    tree = contraction_tree(subscripts, *operands, shapes=shapes, optimize=optimize,
                            memory_limit=memory_limit, max_time=max_time)
    if isinstance(tree, SlicedTree):
        return einsum_path_numpy_format(tree.tree), PathReport(tree.tree, tree)
    return einsum_path_numpy_format(tree), PathReport(tree)


def export(
    kernels: dict[str, Kernel], path: str, *, cpu: str | None = None,
    options: Options | None = None,
) -> dict:
    """Several compiled kernels as one library: ``{c_function_name: kernel}``."""
    if not kernels:
        raise OperandError("export needs at least one kernel")
    items = [kernel.export_item(name) for name, kernel in kernels.items()]
    return export_library(items, path, cpu=cpu, options=options or default_options())


def compile(  # noqa: A001 (the public name users expect)
    subscripts: str,
    *shapes: Sequence[int],
    dtype: object = "float64",
    optimize: object = "auto",
    memory_limit: int | str | None = None,
    options: Options | None = None,
    tuning: bool = True,
    dynamic: Sequence[str] = (),
    target: str = "cpu",
    load: bool = True,
    memory_budget: int | str | None = None,
    remat_time_limit: float = 10.0,
) -> Kernel:
    """Compile ``subscripts`` for operands of the given shapes and dtype(s).

    Given a Program (``tcc.program(...)``, ``tcc.grad(...)``) instead, compile the whole
    program: the result takes and returns named arrays; ``memory_budget`` bounds its
    temporaries (CP-SAT rematerialization within ``remat_time_limit`` seconds).

    ``dtype`` is one dtype for all operands or a sequence with one per operand.
    ``tuning``: use the best record of ``tcc tune`` for this workload and machine (from
    ``tuning.db`` in the cache folder), unless ``options.gett_params`` is set.
    ``dynamic``: subscripts whose size is a run-time argument (checked at each call; the
    shapes give a typical size), e.g. ``dynamic=["b"]`` for any batch size; such an index
    must be the first axis of every array it indexes.
    ``target='cuda'``: compile for the GPU (PTX, loaded with cuda-python); without a usable
    GPU this raises BackendUnavailableError unless ``load=False``, which keeps only the IR
    and PTX (``kernel.ptx()``).
    """
    if isinstance(subscripts, P.Program):
        from tcc.programs import compile_program

        if shapes:
            raise OperandError("a Program has its shapes already; pass no shapes")
        return compile_program(subscripts, options, memory_budget=memory_budget,
                               remat_time_limit=remat_time_limit)  # type: ignore[return-value]
    if not isinstance(subscripts, str):
        raise OperandError("tcc.compile takes a subscripts string and one shape per operand")
    if memory_budget is not None:
        raise OperandError("memory_budget applies to programs; for an einsum use "
                           "memory_limit (the largest intermediate)")
    dtypes = list(dtype) if isinstance(dtype, list | tuple) else [dtype] * len(shapes)
    if len(dtypes) != len(shapes):
        raise OperandError(f"{len(dtypes)} dtypes given for {len(shapes)} operands")
    for d in dtypes:
        dtype_of(d)
    return Kernel(subscripts, [tuple(s) for s in shapes], [np.dtype(d).name for d in dtypes],
                  optimize=optimize, memory_limit=memory_limit, options=options,
                  tuning=tuning, dynamic=dynamic, target=target, load=load)

"""``tcc.Kernel``: an einsum compiled once for fixed shapes and dtypes, called many times
(with layout variants, ``out=``, run-time sizes, the CUDA target, export)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tcc.errors import DTypeError, OperandError, ShapeError
from tcc.frontend.einsum import (
    ParsedEinsum,
    parse_einsum,
)
from tcc.frontend.einsum_program import einsum_program
from tcc.ir import program as P
from tcc.options import Options, default_options
from tcc.passes.paths import choose_path, memory_limit_elements
from tcc.plan import ORDERS, EinsumPlan, check_out, element_strides, resolve_dtypes
from tcc.runtime import host_memory
from tcc.runtime.export import ExportItem, export_library


def _tuned_options(subscripts: str, shapes: Sequence[tuple[int, ...]],
                   dtypes: Sequence[np.dtype], options: Options) -> Options:
    """``options`` with the best tuning record for this workload and machine applied."""
    from tcc.tune.database import lookup
    from tcc.tune.space import apply_config

    config = lookup(subscripts, shapes, [d.name for d in dtypes], options.num_threads,
                    db=f"{options.cache_dir}/tuning.db")
    return options if config is None else apply_config(options, config)


def _tuned_gpu_config(subscripts: str, shapes: Sequence[tuple[int, ...]],
                      dtypes: Sequence[np.dtype], precision: str,
                      options: Options) -> dict | None:
    """The best GPU tuning record for this workload, device and precision (or None)."""
    from tcc.runtime.cuda import cuda_available
    from tcc.tune.database import lookup

    if not cuda_available():
        return None
    from tcc.tune.gpu_space import gpu_target_key

    return lookup(subscripts, shapes, [d.name for d in dtypes], options.num_threads,
                  db=f"{options.cache_dir}/tuning.db", target=gpu_target_key(precision))


class Kernel:
    """An einsum compiled once for fixed shapes and dtypes; call it many times.

    Calls with row-major operands take the precompiled kernel; other layouts (transposed,
    sliced, negative strides) get a variant compiled on first use, with no copy.
    ``order``: the result's layout, as numpy.einsum's: "K" (the default) lets tcc choose
    the one its kernel writes fastest (a transposed view, as numpy and opt_einsum return
    for permuted outputs), "C" row-major, "F" column-major.
    ``precision='tf32'`` lets float32 contractions on the GPU use the tensor cores (inputs
    rounded to tf32, 10 mantissa bits; float32 accumulation); the CPU computes exactly.
    On the GPU, ``tuning`` applies the best record of ``tcc.tune(..., target="cuda")``
    for this device and precision; ``gpu_config`` names a config explicitly.
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
        order: str = "K",
        precision: str = "exact",
        gpu_config: dict | None = None,
    ) -> None:
        if order not in ORDERS:
            raise OperandError(f"order must be one of {ORDERS}, not {order!r}")
        self.order = "C" if order == "A" else order
        if target not in ("cpu", "cuda"):
            raise OperandError(f"target must be 'cpu' or 'cuda', not {target!r}")
        if target == "cuda" and dynamic:
            raise OperandError("target='cuda' does not support dynamic sizes yet")
        if precision not in ("exact", "tf32"):
            raise OperandError(f"precision must be 'exact' or 'tf32', not {precision!r}")
        self.target, self.precision = target, precision
        self.subscripts = subscripts
        self.shapes = tuple(tuple(int(x) for x in s) for s in shapes)
        self.dtypes = tuple(np.dtype(d) for d in dtypes)
        self.options = options or default_options()
        if tuning and target == "cpu" and self.options.gett_params is None:
            self.options = _tuned_options(subscripts, self.shapes, self.dtypes, self.options)
        self.parsed = parse_einsum(subscripts, self.shapes)
        examples = [np.empty(s, d) for s, d in zip(self.shapes, self.dtypes, strict=True)]
        self.compute_dtype = resolve_dtypes(examples, None, "safe")
        self._optimize, self._memory_limit = optimize, memory_limit
        limit = memory_limit_elements(memory_limit, np.dtype(self.compute_dtype).itemsize)
        self.path = choose_path(self.parsed, optimize, limit)
        self.dynamic = tuple(dynamic)
        self._dynamic_labels = _check_dynamic(self.parsed, self.dynamic)
        if self.dynamic:
            self.path = None  # one loop nest: no intermediate's size depends on them
        self._cuda = None
        if target == "cuda":
            from tcc.passes.schedule.gpu import GpuConfig
            from tcc.runtime.cuda import CudaEinsum

            if gpu_config is None and tuning and load:
                gpu_config = _tuned_gpu_config(subscripts, self.shapes, self.dtypes,
                                               precision, self.options)
            program = einsum_program(self.parsed, self.shapes, [d.name for d in self.dtypes],
                                     self.compute_dtype, self.compute_dtype,
                                     self.path.path if self.path else None)
            self._cuda = CudaEinsum(program, load=load, precision=precision,
                                    config=GpuConfig.of(gpu_config))
            return
        self._variants: dict[tuple, EinsumPlan] = {}
        self._default = self._variant(examples)
        self._signature = tuple((np.ndarray, a.shape, a.dtype, a.strides) for a in examples)

    def _variant(self, arrays: Sequence[np.ndarray]) -> EinsumPlan:
        key = tuple(a.strides for a in arrays)
        plan = self._variants.get(key)
        if plan is None:
            plan = EinsumPlan(self.parsed, arrays, self.compute_dtype, self.compute_dtype,
                              self.order, self.path, self.options,
                              dynamic=self._dynamic_labels)
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
        result = host_memory.empty(shape, self.compute_dtype) if out is None else out
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
        out = check_out(out, self.parsed, self.compute_dtype, "safe")
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

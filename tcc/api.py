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
from tcc.errors import OperandError
from tcc.frontend.einsum import (
    _split_string,
    parse_einsum,
)
from tcc.ir import program as P
from tcc.kernel import Kernel
from tcc.options import Options, default_options
from tcc.passes.order import (
    ContractionTree,
    PathReport,
    SlicedTree,
    einsum_path_numpy_format,
)
from tcc.passes.paths import choose_path, memory_limit_elements, plan_contraction
from tcc.plan import (
    ORDERS,
    EinsumPlan,
    check_out,
    element_strides,
    optimize_key,
    parse_operands,
    resolve_dtypes,
)
from tcc.runtime.export import export_library

_plans: dict[tuple, EinsumPlan] = {}


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
    precision: str = "exact",
) -> np.ndarray:
    """Evaluate an einsum with compiled code; ``numpy.einsum``'s signature and semantics.

    ``optimize`` takes numpy's values (False: one loop nest over all operands; True,
    'greedy', 'optimal', or an explicit path) and tcc's ('auto', the default). Results equal
    numpy's up to floating-point rounding; 0-d results come back as numpy scalars.
    ``device='cuda'`` (implied by operands with ``__cuda_array_interface__``) runs on the GPU:
    numpy operands are copied in and out, device operands stay there; ``precision='tf32'``
    lets float32 contractions there use the tensor cores (the CPU computes exactly).
    """
    if not operands:
        raise OperandError("einsum needs subscripts and at least one operand")
    if precision not in ("exact", "tf32"):
        raise OperandError(f"precision must be 'exact' or 'tf32', not {precision!r}")
    if device is not None and device != "cpu" or precision != "exact" and any(
            _on_device(a) for a in operands[1:]):
        return _einsum_cuda(operands, out, dtype, optimize, memory_limit, device, precision)
    subscripts = operands[0]
    rest = operands[1:]
    key = None
    if out is None and type(subscripts) is str:
        try:
            key = (subscripts, dtype, order, casting,
                   optimize if type(optimize) is str else optimize_key(optimize), memory_limit,
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
                 memory_limit: int | str | None, device: str | None,
                 precision: str = "exact") -> object:
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
    key = (subscripts, tuple(shapes), tuple(dtypes), optimize_key(optimize), memory_limit,
           precision)
    kernel = _cuda_kernels.get(key)
    if kernel is None:
        kernel = _cuda_kernels[key] = Kernel(subscripts, shapes, dtypes, optimize=optimize,
                                             memory_limit=memory_limit, target="cuda",
                                             precision=precision)
    return kernel(*rest)


def _einsum_slow(subscripts, rest, out, dtype, order, casting, optimize, memory_limit,
                 options, key) -> np.ndarray:
    if any(_on_device(a) for a in rest):
        return _einsum_cuda((subscripts, *rest), out, dtype, optimize, memory_limit, "cuda")
    if order not in ORDERS:
        raise OperandError(f"order must be one of {ORDERS}, not {order!r}")
    if isinstance(subscripts, str):
        _split_string(subscripts)  # syntax errors before operand errors, as numpy
    parsed, arrays = parse_operands(subscripts, rest)
    compute = resolve_dtypes(arrays, dtype, casting)
    limit = memory_limit_elements(memory_limit, np.dtype(compute).itemsize)
    path = choose_path(parsed, optimize, limit)
    options = options or default_options()
    output_order = {"F": "F", "K": "K"}.get(order, "C")
    if out is None:
        plan = EinsumPlan(parsed, arrays, compute, compute, output_order, path, options)
        if key is not None and all(a is b for a, b in zip(arrays, rest, strict=True)):
            _plans[key] = plan
        result = plan(arrays)
        return result if result.ndim else result[()]
    out = check_out(out, parsed, compute, casting)
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


def _parse_for_path(subscripts: object, operands: tuple, shapes: bool):
    if shapes:
        dims = [tuple(int(x) for x in shape) for shape in operands]  # type: ignore[union-attr]
        if isinstance(subscripts, str):
            return parse_einsum(subscripts, dims), 8
        raise OperandError("with shapes=True give a subscripts string and one shape per operand")
    parsed, arrays = parse_operands(subscripts, operands)
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
    order: str = "K",
    precision: str = "exact",
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
    ``order``: the result's layout, as numpy.einsum's: "K" (default) the one tcc's kernel
    writes fastest (possibly a transposed view), "C" row-major, "F" column-major.
    ``target='cuda'``: compile for the GPU (PTX, loaded with cuda-python); without a usable
    GPU this raises BackendUnavailableError unless ``load=False``, which keeps only the IR
    and PTX (``kernel.ptx()``). ``precision='tf32'`` lets float32 contractions on the GPU
    use the tensor cores (inputs rounded to tf32; float32 accumulation).
    """
    if isinstance(subscripts, P.Program):
        from tcc.programs import compile_program

        if shapes:
            raise OperandError("a Program has its shapes already; pass no shapes")
        return compile_program(subscripts, options, memory_budget=memory_budget,
                               remat_time_limit=remat_time_limit, target=target,
                               precision=precision)  # type: ignore[return-value]
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
                  tuning=tuning, dynamic=dynamic, target=target, load=load, order=order,
                  precision=precision)

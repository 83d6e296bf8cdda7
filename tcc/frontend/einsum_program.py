"""An einsum (with a contraction path) -> a tensor-level Program.

One operand group contracted at a time: each path step becomes a statement
``T[kept] = sum_{summed} X[..] * Y[..]`` whose result is a new tensor; the last step writes
the output. With no path (or two operands or fewer) the whole einsum is one statement.
"""

from __future__ import annotations

from collections.abc import Sequence

from tcc.dtypes import DTYPES
from tcc.frontend.einsum import EinsumSpec, Label, ParsedEinsum, label_name
from tcc.ir import program as P


def _product(reads: Sequence[P.Expr]) -> P.Expr:
    expr = reads[0]
    for read in reads[1:]:
        expr = P.Binary("mul", expr, read)
    return expr


def _read(tensor: str, term: Sequence[Label], dtype: str, compute: str) -> P.Expr:
    read = P.Read(tensor, tuple(label_name(x) for x in term))
    return read if dtype == compute else P.Cast(compute, read)


def einsum_program(
    parsed: ParsedEinsum,
    input_shapes: Sequence[tuple[int, ...]],
    input_dtypes: Sequence[str],
    compute_dtype: str,
    output_dtype: str,
    path: Sequence[tuple[int, ...]] | None = None,
    *,
    sliced: Sequence[Label] = (),
    dynamic: Sequence[Label] = (),
) -> P.Program:
    """The Program computing ``parsed`` in ``compute_dtype``, stored as ``output_dtype``.

    ``path`` is numpy's format: each step names positions in the current operand list,
    which are removed, and the step's result is appended at the end. ``sliced`` labels run
    one value at a time: they get size 1 and the output accumulates over the slices.
    """
    spec: EinsumSpec = parsed.spec.canonical()
    rename = {label: k for k, label in enumerate(parsed.spec.labels)}
    sizes = {rename[label]: size for label, size in parsed.sizes.items()}
    for label in sliced:
        sizes[rename[label]] = 1
    compute = DTYPES[compute_dtype].compute  # float16 computes in float32
    tensors = [
        P.Tensor(f"in{k}", tuple(shape), dtype)
        for k, (shape, dtype) in enumerate(zip(input_shapes, input_dtypes, strict=True))
    ]
    output_shape = tuple(sizes[x] for x in spec.output)
    tensors.append(P.Tensor("out", output_shape, output_dtype))
    operands: list[tuple[str, tuple[Label, ...], str]] = [
        (t.name, term, t.dtype) for t, term in zip(tensors, spec.inputs, strict=False)
    ]
    statements = []
    steps = list(path or [])
    if not steps or len(operands) <= 1:
        steps = [tuple(range(len(operands)))]
    for number, step in enumerate(steps):
        group = [operands[k] for k in step]
        operands = [op for k, op in enumerate(operands) if k not in step]
        last = number == len(steps) - 1
        if last and operands:
            group += operands  # a path that stops early: contract the rest in the last step
            operands = []
        if last:
            name, kept, dtype = "out", spec.output, output_dtype
        else:
            needed = {x for _, term, _ in operands for x in term} | set(spec.output)
            kept = tuple(dict.fromkeys(x for _, term, _ in group for x in term if x in needed))
            name, dtype = f"t{number}", compute
            tensors.append(P.Tensor(name, tuple(sizes[x] for x in kept), dtype))
            operands.append((name, kept, dtype))
        reads = [_read(t, term, d, compute) for t, term, d in group]
        statements.append(
            P.Statement(name, tuple(label_name(x) for x in kept), "sum", _product(reads), compute,
                        accumulate=last and bool(sliced))
        )
    return P.Program(
        tensors=tuple(tensors),
        inputs=tuple(t.name for t in tensors if t.name.startswith("in")),
        outputs=("out",),
        statements=tuple(statements),
        index_sizes=tuple((label_name(x), size) for x, size in sorted(sizes.items())),
        dynamic=tuple(label_name(rename[x]) for x in dynamic),
    )

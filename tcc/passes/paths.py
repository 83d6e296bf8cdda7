"""Choose how an einsum call contracts its operands, from numpy-style ``optimize=`` values.

The result is plain data: ``None`` (one loop nest over every operand), a numpy-format
path, or a path with sliced indices when a memory limit cannot otherwise be met.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tcc.errors import OperandError
from tcc.frontend.einsum import ParsedEinsum
from tcc.passes.order import (
    ContractionTree,
    SlicedTree,
    available_optimizers,
    contraction_tree,
    normalize_method,
)
from tcc.units import parse_bytes


@dataclass(frozen=True, slots=True)
class PathChoice:
    """A numpy-format path; ``sliced`` indices (original labels) run one value at a time."""

    path: tuple[tuple[int, ...], ...]
    sliced: tuple[int, ...] = ()


def fused_flops(parsed: ParsedEinsum) -> int:
    """numpy's count for one loop nest over every operand (as ``einsum_path`` reports)."""
    size = math.prod(parsed.sizes.values())
    summed = bool(parsed.spec.reduced)
    return size * (max(1, len(parsed.spec.inputs) - 1) + summed)


def memory_limit_elements(memory_limit: int | str | None, itemsize: int) -> int | None:
    """numpy's convention: an int is a number of elements; a string with a unit is bytes."""
    if memory_limit is None:
        return None
    if isinstance(memory_limit, str):
        return max(parse_bytes(memory_limit, what="memory_limit") // itemsize, 1)
    if isinstance(memory_limit, bool) or not isinstance(memory_limit, int) or memory_limit < 1:
        raise OperandError(f"memory_limit must be a positive int (elements) or a string like "
                           f"'1GB', not {memory_limit!r}")
    return memory_limit


def _explicit_path(optimize: Sequence, n_operands: int) -> list[tuple[int, ...]]:
    steps = list(optimize)
    if steps and steps[0] == "einsum_path":
        steps = steps[1:]
    path = []
    remaining = n_operands
    for step in steps:
        if not isinstance(step, list | tuple) or not all(isinstance(k, int) for k in step):
            raise OperandError(f"invalid contraction path step {step!r}")
        if any(k < 0 or k >= remaining for k in step) or len(set(step)) != len(step):
            raise OperandError(
                f"path step {tuple(step)} names operands outside 0..{remaining - 1}"
            )
        path.append(tuple(step))
        remaining -= len(step) - 1
    return path


def plan_contraction(
    parsed: ParsedEinsum,
    optimize: object = "auto",
    memory_limit: int | None = None,
    *,
    max_time: float | None = None,
) -> ContractionTree | SlicedTree:
    """The contraction tree for an einsum (``memory_limit`` in elements), over the labels
    as the user wrote them (letters; sublist integers; ellipsis axes as '...0', '...1')."""
    spec = parsed.spec
    name = {label: display_label(label) for label in spec.labels}
    return contraction_tree(
        [tuple(name[x] for x in term) for term in spec.inputs],
        tuple(name[x] for x in spec.output),
        {name[x]: size for x, size in parsed.sizes.items()},
        optimize=optimize, memory_limit=memory_limit, max_time=max_time,
    )


def display_label(label: int) -> str:
    if label < 0:
        return f"...{-label - 1}"
    return chr(label) if label >= 65 else str(label)


def choose_path(
    parsed: ParsedEinsum, optimize: object, memory_limit: int | None = None
) -> PathChoice | None:
    """``None`` means one loop nest over every operand; otherwise a path to run."""
    n = len(parsed.spec.inputs)
    if isinstance(optimize, tuple) and len(optimize) == 2 and isinstance(optimize[0], str) \
            and isinstance(optimize[1], int):  # numpy's ('greedy', memory_limit)
        optimize, memory_limit = optimize
    if isinstance(optimize, list | tuple) and memory_limit is None:
        return PathChoice(tuple(_explicit_path(optimize, n)))
    if optimize is False and memory_limit is None:
        return None
    if n <= 2 and memory_limit is None:
        return None
    if optimize is False:
        optimize = "auto"
    method = normalize_method(optimize) if isinstance(optimize, str | bool) else None
    if method not in available_optimizers():
        raise OperandError(f"unknown optimize value {optimize!r}; use True/False, a path, or "
                           f"one of {', '.join(available_optimizers())}")
    tree = plan_contraction(parsed, optimize, memory_limit)
    if isinstance(tree, ContractionTree) and optimize == "auto" and \
            fused_flops(parsed) <= tree.flops():
        return None  # one loop nest does no more arithmetic and writes no intermediates
    if isinstance(tree, SlicedTree):
        label_of = {display_label(x): x for x in parsed.spec.labels}
        sliced = tuple(label_of[x] for x in tree.sliced)
        return PathChoice(tuple(tree.tree.path()), sliced)
    return PathChoice(tuple(tree.path()))

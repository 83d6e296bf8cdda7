"""Choose the contraction path for an einsum call from numpy-style ``optimize=`` values."""

from __future__ import annotations

from collections.abc import Sequence

from tcc.errors import OperandError
from tcc.frontend.einsum import ParsedEinsum


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


def choose_path(
    parsed: ParsedEinsum, optimize: object, memory_limit: int | str | None = None
) -> list[tuple[int, ...]] | None:
    """``None`` means one loop nest over every operand; otherwise numpy's path format."""
    n = len(parsed.spec.inputs)
    if isinstance(optimize, list | tuple):
        return _explicit_path(optimize, n)
    if optimize is False or n <= 2:
        return None
    if optimize not in (True, "auto", "greedy", "optimal", "dp", "random-greedy", "hyper"):
        raise OperandError(f"unknown optimize value {optimize!r}")
    return [(0, 1)] * (n - 1)

"""The statements GPU kernels add to the loop IR, and the helpers that build them.

A GPU kernel's body is loop IR run by one thread, with the hardware indices as free affine
variables (``threadIdx.x``, ``blockIdx.y``, ...) and these statements besides:
:class:`Barrier` (``__syncthreads``), :class:`IndexOf` (an index of a flattened one),
:class:`WarpReduce` (shuffles across lanes) and :class:`Mma` (a warp's tensor-core product).
"""

from __future__ import annotations

from dataclasses import dataclass

from tcc.ir import loops as L


@dataclass(frozen=True, slots=True)
class Barrier:
    """``__syncthreads()``: every thread of the block waits here (uniform control flow)."""


@dataclass(frozen=True, slots=True)
class IndexOf:
    """``var = (source // divisor) % extent`` (no modulus when ``extent`` is None): one
    index of a flattened one, which the affine IR cannot say. ``var`` is defined for the
    statements after this one in the same body; ``source`` is never negative."""

    var: str
    source: L.Affine
    divisor: int = 1
    extent: int | None = None


def unflatten(flat: L.Affine, names: list[str], extents: list[int]) -> tuple[IndexOf, ...]:
    """The indices ``names`` (outermost first) of the row-major position ``flat``."""
    out, step = [], 1
    for k in range(len(names) - 1, -1, -1):
        out.append(IndexOf(names[k], flat, step, extents[k] if k else None))
        step *= extents[k]
    return tuple(reversed(out))


@dataclass(frozen=True, slots=True)
class WarpReduce:
    """Combine the local ``name`` with ``op`` across each group of ``lanes`` consecutive
    threads of a warp (butterfly shuffles); afterwards every lane of a group holds the
    group's result. Every thread of the block runs it (no divergent guard around it)."""

    name: str
    op: str
    lanes: int


MMA_SHAPE = (16, 8, 8)  # m16n8k8: tf32 inputs, float32 accumulators


@dataclass(frozen=True, slots=True)
class Mma:
    """One warp-wide ``mma.sync.aligned.m16n8k8.row.col`` with tf32 inputs: every lane
    gives its fragment of A (four values), of B (two) and names its four float32
    accumulators, which it updates. Lane ``l`` holds, with ``g = l // 4`` and ``t = l % 4``:
    ``a = A[g, t], A[g+8, t], A[g, t+4], A[g+8, t+4]``; ``b = B[t, g], B[t+4, g]``;
    ``acc = C[g, 2t], C[g, 2t+1], C[g+8, 2t], C[g+8, 2t+1]``. Every lane of the warp runs it."""

    a: tuple[L.Scalar, ...]
    b: tuple[L.Scalar, ...]
    acc: tuple[str, ...]

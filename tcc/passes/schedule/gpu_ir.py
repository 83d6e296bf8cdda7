"""GPU kernels as data: the statements they add to the loop IR, the launch schedule, and
the helpers every GPU template shares.

A :class:`GpuKernel` is a loop-level :class:`~tcc.ir.loops.Kernel` whose body is what
*one thread* runs, plus a :class:`GpuSchedule` (grid and block sizes, which index went
to which dimension, which local buffers live in shared memory). The hardware indices are
free affine variables (``threadIdx.x``, ``blockIdx.y``, ...); the statements the CPU does
not have are :class:`Barrier` (``__syncthreads``), :class:`IndexOf` (an index of a
flattened one), :class:`WarpReduce` (shuffles across lanes) and :class:`Mma` (a warp's
tensor-core product).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tcc.ir import loops as L
from tcc.passes.schedule import nest

Aff = L.Affine
DIMENSIONS = ("x", "y", "z")
GRID_LIMITS = {"x": (1 << 31) - 1, "y": 65535, "z": 65535}
MAX_THREADS = 256
WARP = 32


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


@dataclass(frozen=True, slots=True)
class AtomicAdd:
    """``buffer[index] += value`` as one atomic read-modify-write in global memory (several
    blocks add partial sums into one element; the order of the additions varies)."""

    buffer: str
    index: L.Affine
    value: L.Scalar


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


@dataclass(frozen=True, slots=True)
class GpuSchedule:
    """How a kernel runs on the GPU, as data: launch dims, index -> dimension bindings,
    shared-memory buffers, tile sizes and the template that produced it."""

    template: str  # "loops" | "reduce" | "tiled" | "mma"
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    bindings: tuple[tuple[str, str], ...] = ()  # (index, "x" | "y" | "z")
    shared: tuple[str, ...] = ()
    tiles: tuple[tuple[str, int], ...] = ()
    min_blocks_per_sm: int = 1  # > 1 caps the registers a thread may use (ptxas)

    @property
    def threads(self) -> int:
        return self.block[0] * self.block[1] * self.block[2]

    def to_json(self) -> dict:
        return {"template": self.template, "grid": list(self.grid), "block": list(self.block),
                "bindings": [list(b) for b in self.bindings], "shared": list(self.shared),
                "tiles": dict(self.tiles),
                "min_blocks_per_sm": self.min_blocks_per_sm}


@dataclass(frozen=True, slots=True)
class GpuKernel:
    """A kernel and how it launches; the buffers in ``zeroed`` are set to zero first (on
    the stream, before the launch: partial sums are added into them)."""

    kernel: L.Kernel
    schedule: GpuSchedule
    zeroed: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.kernel.name


def substitute(body: tuple, var: str, value: Aff) -> tuple:
    """``nest.substitute`` through the GPU statements too."""
    out: list = []
    for stmt in body:
        if isinstance(stmt, IndexOf):
            out.append(replace(stmt, source=stmt.source.substitute(var, value)))
        elif isinstance(stmt, Barrier | WarpReduce | Mma):
            out.append(stmt)
        elif isinstance(stmt, AtomicAdd):
            out.append(replace(stmt, index=stmt.index.substitute(var, value)))
        elif isinstance(stmt, L.For):
            bound = None if stmt.bound is None else stmt.bound.substitute(var, value)
            out.append(replace(stmt, body=substitute(stmt.body, var, value), bound=bound))
        elif isinstance(stmt, L.Allocate):
            out.append(replace(stmt, body=substitute(stmt.body, var, value)))
        else:
            out.extend(nest.substitute((stmt,), var, value))
    return tuple(out)


def pow2_at_least(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def output_chain(body: tuple[L.Stmt, ...], outputs: set[str]) -> list[L.For]:
    """The perfectly nested output loops at the top of ``body``, outermost first."""
    chain: list[L.For] = []
    while len(body) == 1 and isinstance(body[0], L.For) and body[0].var in outputs:
        loop = body[0]
        if loop.bound is not None or loop.kind != "serial":
            break
        chain.append(loop)
        body = loop.body
    return chain


def rebuild(chain: list[L.For], innermost: tuple[L.Stmt, ...]) -> tuple[L.Stmt, ...]:
    body = innermost
    for loop in reversed(chain):
        body = (replace(loop, body=body),)
    return body

"""Objectives that contraction-order optimizers minimize, and a small per-step cost model.

Objectives (``objective=`` everywhere):

- ``"flops"``: total FLOPs, counted like ``opt_einsum`` (see ``network.step_flops``).
- ``"size"``: the largest intermediate (elements), ties broken by FLOPs.
- ``"write"``: total elements written by all intermediates.
- ``"combo"`` / ``"combo-<alpha>"``: ``flops + alpha * write`` (cotengra's combo,
  alpha 64 by default).

A cost value is a float, or for ``"size"`` a ``(largest, flops)`` tuple; either way
values compare with ``<`` and combine with :meth:`Objective.combine`.

The step model sorts each pairwise contraction into a kernel kind:

- ``"gett"``: at least one contracted index and free (M and N) indices on both sides, so
  after permutation it is a (batched) matrix multiply: the GETT kernel's job.
- ``"loop_nest"``: everything else (Hadamard, outer, dot or matrix-vector products, pure
  reductions), which a plain loop nest handles at memory speed.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from tcc.errors import TccError

Cost = float | tuple[float, float]
OBJECTIVES = ("flops", "size", "write", "combo")


@dataclass(frozen=True, slots=True)
class Objective:
    """What an optimizer minimizes; build with :func:`parse_objective`."""

    name: str
    alpha: float = 64.0

    @property
    def zero(self) -> Cost:
        return (0.0, 0.0) if self.name == "size" else 0.0

    @property
    def is_additive(self) -> bool:
        return self.name != "size"

    def step(self, flops: int, size: int) -> float:
        """Additive cost of one step (for ``size``: its FLOPs, the tie-breaker)."""
        if self.name == "write":
            return float(size)
        if self.name == "combo":
            return float(flops) + self.alpha * float(size)
        return float(flops)

    def combine(self, left: Cost, right: Cost, flops: int, size: int) -> Cost:
        """Cost of a subtree from its two children's costs and its top step."""
        if self.name == "size":
            return (max(left[0], right[0], float(size)), left[1] + right[1] + float(flops))  # type: ignore[index]
        return left + right + self.step(flops, size)  # type: ignore[operator]

    def lower_bound(self, left: Cost, right: Cost) -> Cost:
        """A bound no subtree with these children can beat (its top step costs >= 0)."""
        if self.name == "size":
            return (max(left[0], right[0]), left[1] + right[1])  # type: ignore[index]
        return left + right  # type: ignore[operator]

    def of_steps(self, steps: Iterable[tuple[int, int]]) -> Cost:
        """Cost of a whole tree from its (flops, size) per step."""
        total = self.zero
        for flops, size in steps:
            total = self.combine(total, self.zero, flops, size)
        return total

    def __str__(self) -> str:
        return f"combo-{self.alpha:g}" if self.name == "combo" else self.name


FLOPS = Objective("flops")


def parse_objective(objective: str | Objective) -> Objective:
    if isinstance(objective, Objective):
        return objective
    if not isinstance(objective, str):
        raise TccError(
            f"objective must be one of {OBJECTIVES} or 'combo-<alpha>', got {objective!r}"
        )
    if objective.startswith("combo-"):
        try:
            return Objective("combo", float(objective[len("combo-") :]))
        except ValueError:
            raise TccError(f"bad combo objective {objective!r}; write e.g. 'combo-64'") from None
    if objective not in OBJECTIVES:
        raise TccError(
            f"objective must be one of {OBJECTIVES} or 'combo-<alpha>', got {objective!r}"
        )
    return Objective(objective)


@dataclass(frozen=True, slots=True)
class IndexGroups:
    """How a pairwise step's indices group for a GETT kernel (``C[b,m,n] = A[b,m,k] B[b,k,n]``)."""

    batch: tuple[Hashable, ...]  # in both operands and in the result
    m: tuple[Hashable, ...]  # left only, kept
    n: tuple[Hashable, ...]  # right only, kept
    k: tuple[Hashable, ...]  # in both operands, summed
    left_summed: tuple[Hashable, ...]  # left only, summed (reduced before the product)
    right_summed: tuple[Hashable, ...]  # right only, summed

    @property
    def kind(self) -> str:
        return "gett" if self.k and self.m and self.n else "loop_nest"


def index_groups(
    left: tuple[Hashable, ...], right: tuple[Hashable, ...], result: tuple[Hashable, ...]
) -> IndexGroups:
    """Split the indices of ``left * right -> result`` into GETT groups (order kept)."""
    left_set, right_set, result_set = set(left), set(right), set(result)

    def pick(labels: tuple[Hashable, ...], keep) -> tuple[Hashable, ...]:
        return tuple(dict.fromkeys(label for label in labels if keep(label)))

    return IndexGroups(
        batch=pick(result, lambda x: x in left_set and x in right_set),
        m=pick(result, lambda x: x in left_set and x not in right_set),
        n=pick(result, lambda x: x in right_set and x not in left_set),
        k=pick(left, lambda x: x in right_set and x not in result_set),
        left_summed=pick(left, lambda x: x not in right_set and x not in result_set),
        right_summed=pick(right, lambda x: x not in left_set and x not in result_set),
    )


@dataclass(frozen=True, slots=True)
class MachineModel:
    """Rough throughput numbers for :func:`estimate_seconds` (defaults: one modern core)."""

    gett_flops_per_s: float = 50e9
    loop_flops_per_s: float = 4e9
    bytes_per_s: float = 10e9
    itemsize: int = 8


def estimate_seconds(
    flops: int, kind: str, elements_moved: int, model: MachineModel = MachineModel()
) -> float:
    """Roofline-style estimate of one step: the slower of compute and memory traffic."""
    rate = model.gett_flops_per_s if kind == "gett" else model.loop_flops_per_s
    return max(flops / rate, elements_moved * model.itemsize / model.bytes_per_s)

"""``ContractionTree``: a multi-operand einsum as a binary tree of pairwise contractions.

The tree is plain data: the network (``inputs``, ``output``, ``sizes``) plus the SSA path
``contractions`` (operands ``0..n-1`` are the inputs, step ``k`` creates ``n + k``). Each
pair is stored as ``(smaller id, larger id)``, which makes :meth:`ContractionTree.path`
print sorted pairs like ``numpy.einsum_path`` and makes ``from_path(path())`` exact.

FLOPs are counted like ``opt_einsum.helpers.flop_count`` (so numbers compare with
``opt_einsum``'s ``opt_cost`` and with ``numpy.einsum_path``): a pairwise step costs the
product of the sizes of every index involved, times 2 when something is summed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from tcc.errors import TccError
from tcc.passes.order.cost import IndexGroups, index_groups
from tcc.passes.order.network import build_network, check_ssa

Label = Hashable
Term = tuple[Label, ...]


@dataclass(frozen=True, slots=True)
class Step:
    """One pairwise contraction ``left * right -> result`` of a tree."""

    position: tuple[int, int]  # numpy-style: positions in the current operand list
    left: int  # SSA ids
    right: int
    result: int
    left_labels: Term  # an input's own subscripts (repeats kept) or an intermediate's
    right_labels: Term
    result_labels: Term
    summed: Term  # indices of left/right that the result drops
    flops: int
    size: int  # elements of the result
    groups: IndexGroups

    @property
    def kept(self) -> Term:
        return self.result_labels

    @property
    def kind(self) -> str:
        """``"gett"`` (maps to a batched matrix multiply) or ``"loop_nest"``."""
        return self.groups.kind

    def equation(self, symbols: Mapping[Label, str] | None = None) -> str:
        def text(term: Term) -> str:
            if symbols is None:
                return " ".join(map(str, term))
            return "".join(symbols[label] for label in term)

        sep = "," if symbols is not None else ", "
        return f"{text(self.left_labels)}{sep}{text(self.right_labels)}->{text(self.result_labels)}"


@dataclass(frozen=True)
class ContractionTree:
    """A contraction order as plain data; see the module docstring."""

    inputs: tuple[Term, ...]
    output: Term
    sizes: tuple[tuple[Label, int], ...]  # (index, size) in order of first appearance
    contractions: tuple[tuple[int, int], ...]  # SSA path, each pair sorted

    # ---- construction ------------------------------------------------------------
    @classmethod
    def from_ssa_path(
        cls,
        inputs: Sequence[Sequence[Label]],
        output: Sequence[Label],
        size_dict: Mapping[Label, int],
        ssa_path: Iterable[Sequence[int]],
    ) -> ContractionTree:
        inputs_t = tuple(tuple(term) for term in inputs)
        network = build_network(inputs_t, tuple(output), dict(size_dict))
        pairs = tuple(
            (min(a, b), max(a, b)) for a, b in (tuple(map(int, step)) for step in ssa_path)
        )
        check_ssa(len(inputs_t), pairs)
        sizes = tuple((label, int(size_dict[label])) for label in network.labels)
        return cls(inputs_t, tuple(output), sizes, pairs)

    @classmethod
    def from_path(
        cls,
        inputs: Sequence[Sequence[Label]],
        output: Sequence[Label],
        size_dict: Mapping[Label, int],
        path: Iterable,
    ) -> ContractionTree:
        """Build from a numpy-style linear path (``['einsum_path', (0, 2), ...]`` too).

        A step may name one operand (it moves to the end of the list) or three or more
        (contracted left to right, pairwise, in the order given).
        """
        steps = list(path)
        if steps and isinstance(steps[0], str):
            if steps[0] != "einsum_path":
                raise TccError(f"a path list may only start with 'einsum_path', got {steps[0]!r}")
            steps = steps[1:]
        current = list(range(len(inputs)))
        next_id = len(inputs)
        ssa: list[tuple[int, int]] = []
        for number, step in enumerate(steps):
            positions = tuple(step) if isinstance(step, Sequence) else (step,)
            if not positions or len(set(positions)) != len(positions):
                raise TccError(f"path step {number} {step!r} must name distinct operand positions")
            if any(not isinstance(p, int) or not 0 <= p < len(current) for p in positions):
                raise TccError(
                    f"path step {number} {step!r} names a position outside 0..{len(current) - 1}"
                )
            ids = [current[p] for p in positions]
            for p in sorted(positions, reverse=True):
                del current[p]
            node = ids[0]
            for other in ids[1:]:
                ssa.append((node, other))
                node = next_id
                next_id += 1
            current.append(node)
        if len(current) != 1:
            raise TccError(
                f"the path leaves {len(current)} operands uncontracted; it must leave one"
            )
        return cls.from_ssa_path(inputs, output, size_dict, ssa)

    # ---- paths -------------------------------------------------------------------
    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    @property
    def size_dict(self) -> dict[Label, int]:
        return dict(self.sizes)

    def ssa_path(self) -> list[tuple[int, int]]:
        return list(self.contractions)

    def path(self) -> list[tuple[int, ...]]:
        """numpy-style linear path; a single operand gives ``[(0,)]`` like numpy."""
        if self.num_inputs == 1:
            return [(0,)]
        current = list(range(self.num_inputs))
        linear = []
        next_id = self.num_inputs
        for left, right in self.contractions:
            i, j = current.index(left), current.index(right)
            linear.append((i, j))
            current = [node for node in current if node not in (left, right)]
            current.append(next_id)
            next_id += 1
        return linear

    # ---- steps and costs ---------------------------------------------------------
    def steps(self) -> Iterator[Step]:
        yield from self._steps

    @cached_property
    def _steps(self) -> tuple[Step, ...]:
        return tuple(self._build_steps({}))

    def _build_steps(self, overrides: Mapping[Label, int]) -> list[Step]:
        sizes = {label: overrides.get(label, size) for label, size in self.sizes}
        counts: dict[Label, int] = {}
        for term in self.inputs:
            for label in set(term):
                counts[label] = counts.get(label, 0) + 1
        for label in self.output:
            counts[label] = counts.get(label, 0) + 1
        terms: list[Term] = list(self.inputs)
        distinct: list[frozenset] = [frozenset(term) for term in self.inputs]
        current = list(range(self.num_inputs))
        steps = []
        last = len(self.contractions) - 1
        for number, (left, right) in enumerate(self.contractions):
            left_set, right_set = distinct[left], distinct[right]
            shared = left_set & right_set
            if number == last:
                result = self.output
            else:
                order = dict.fromkeys(terms[left] + terms[right])
                result = tuple(label for label in order if counts[label] > 1 + (label in shared))
            result_set = frozenset(result)
            for label in left_set:
                counts[label] -= 1
            for label in right_set:
                counts[label] -= 1
            for label in result_set:
                counts[label] += 1
            union = left_set | right_set
            flops = math.prod(sizes[label] for label in union) * (2 if union != result_set else 1)
            position = (current.index(left), current.index(right))
            current = [node for node in current if node not in (left, right)]
            current.append(len(terms))
            steps.append(
                Step(
                    position=position,
                    left=left,
                    right=right,
                    result=len(terms),
                    left_labels=terms[left],
                    right_labels=terms[right],
                    result_labels=result,
                    summed=tuple(
                        label
                        for label in dict.fromkeys(terms[left] + terms[right])
                        if label not in result_set
                    ),
                    flops=flops,
                    size=math.prod(sizes[label] for label in result),
                    groups=index_groups(terms[left], terms[right], result),
                )
            )
            terms.append(result)
            distinct.append(result_set)
        return steps

    def _costs(self, sliced: Iterable[Label] = ()) -> list[Step]:
        overrides = {label: 1 for label in sliced}
        return list(self._steps) if not overrides else self._build_steps(overrides)

    def flops(self, sliced: Iterable[Label] = ()) -> int:
        """Total FLOPs (``opt_einsum`` counting); ``sliced`` indices count as size 1."""
        if self.num_inputs == 1:
            overrides = {label: 1 for label in sliced}
            sizes = {label: overrides.get(label, size) for label, size in self.sizes}
            term = set(self.inputs[0])
            return math.prod(sizes[label] for label in term) * (1 + (term != set(self.output)))
        return sum(step.flops for step in self._costs(sliced))

    def log10_flops(self) -> float:
        flops = self.flops()
        return math.log10(flops) if flops > 0 else 0.0

    def largest_intermediate(self, sliced: Iterable[Label] = ()) -> int:
        """Elements of the largest contraction result (inputs excluded; 0 if no steps)."""
        return max((step.size for step in self._costs(sliced)), default=0)

    def total_write(self, sliced: Iterable[Label] = ()) -> int:
        """Elements written by all contraction results together."""
        return sum(step.size for step in self._costs(sliced))

    def max_scaling(self) -> int:
        """Most distinct indices in any one step (numpy's "Optimized scaling")."""
        return max(
            (len(set(s.left_labels) | set(s.right_labels)) for s in self._steps),
            default=len(set(self.inputs[0])),
        )

    # ---- serialization -----------------------------------------------------------
    def to_json(self) -> str:
        for label, _ in self.sizes:
            if not isinstance(label, int | str) or isinstance(label, bool):
                raise TccError(f"only int and str indices serialize to JSON, got {label!r}")
        return json.dumps(
            {
                "inputs": [list(term) for term in self.inputs],
                "output": list(self.output),
                "sizes": [[label, size] for label, size in self.sizes],
                "ssa_path": [list(pair) for pair in self.contractions],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ContractionTree:
        data = json.loads(text)
        return cls(
            inputs=tuple(tuple(term) for term in data["inputs"]),
            output=tuple(data["output"]),
            sizes=tuple((label, int(size)) for label, size in data["sizes"]),
            contractions=tuple((int(a), int(b)) for a, b in data["ssa_path"]),
        )

    # ---- display -----------------------------------------------------------------
    def __str__(self) -> str:
        lines = [
            f"ContractionTree: {self.num_inputs} inputs, log10(flops)={self.log10_flops():.3f}, "
            f"largest intermediate={self.largest_intermediate():.3e}",
            f"{'step':>4}  {'pair':>10}  {'kind':<9}  {'flops':>10}  {'size':>10}  contraction",
        ]
        for number, step in enumerate(self._steps):
            lines.append(
                f"{number:>4}  {str(step.position):>10}  {step.kind:<9}  {step.flops:>10.3e}  "
                f"{step.size:>10.3e}  {step.equation()}"
            )
        return "\n".join(lines)

    def plot(self, path: str | None = None):
        """Draw the tree (leaves at the bottom, node height = step); save when ``path``."""
        try:
            import matplotlib

            if path is not None:
                matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise TccError(
                "ContractionTree.plot needs matplotlib: pip install matplotlib"
            ) from None
        n = self.num_inputs
        x = {leaf: float(leaf) for leaf in range(n)}
        y = {leaf: 0.0 for leaf in range(n)}
        figure, axes = plt.subplots(figsize=(max(4.0, n * 0.4), 4.0))
        for step in self._steps:
            node = step.result
            x[node] = (x[step.left] + x[step.right]) / 2
            y[node] = max(y[step.left], y[step.right]) + 1
            for child in (step.left, step.right):
                axes.plot([x[child], x[node]], [y[child], y[node]], color="0.4", lw=0.8)
            axes.scatter(
                [x[node]], [y[node]], s=10 + 30 * math.log10(max(step.flops, 1)) / 10, color="C1"
            )
        axes.scatter([x[leaf] for leaf in range(n)], [0.0] * n, s=12, color="C0")
        axes.set_xticks([])
        axes.set_ylabel("step height")
        axes.set_title(f"{n} tensors, log10 flops {self.log10_flops():.2f}")
        if path is not None:
            figure.savefig(path)
        return figure

"""``PathReport``: a ``numpy.einsum_path``-style printout of a contraction tree.

The header and the scaling/current/remaining table follow numpy's layout and numbers
(FLOPs counted the same way); a ``kernel`` column (``gett`` / ``loop_nest``) and slicing
lines are added. "Largest intermediate" counts contraction results only (numpy also
counts the inputs).
"""

from __future__ import annotations

import math
import string
from collections.abc import Hashable
from dataclasses import dataclass

from tcc.passes.order.slicing import SlicedTree
from tcc.passes.order.tree import ContractionTree

Label = Hashable
_SYMBOLS = string.ascii_letters


def symbol_map(tree: ContractionTree) -> dict[Label, str]:
    """One character per index: single-character str labels keep theirs."""
    labels = [label for label, _ in tree.sizes]
    taken = {label for label in labels if isinstance(label, str) and len(label) == 1}
    symbols: dict[Label, str] = {}
    spare = (
        chr(code) for code in range(0x100000) if chr(code).isalpha() and chr(code) not in taken
    )
    for label in labels:
        symbols[label] = label if label in taken else next(spare)  # type: ignore[assignment]
    return symbols


def einsum_path_numpy_format(tree: ContractionTree) -> list:
    """``['einsum_path', (0, 2), ...]`` as ``numpy.einsum_path`` returns it."""
    return ["einsum_path", *tree.path()]


@dataclass(frozen=True)
class PathReport:
    tree: ContractionTree
    sliced: SlicedTree | None = None

    def naive_flops(self) -> int:
        """numpy's naive cost: all indices at once, one op per extra term (+1 if summed)."""
        tree = self.tree
        all_labels = {label for label, _ in tree.sizes}
        inner = all_labels != set(tree.output)
        size = math.prod(size for _, size in tree.sizes)
        return size * (max(1, tree.num_inputs - 1) + inner)

    def __str__(self) -> str:
        tree = self.tree
        symbols = symbol_map(tree)

        def text(term: tuple) -> str:
            return "".join(symbols[label] for label in term)

        output = text(tree.output)
        optimized = tree.flops()
        naive = self.naive_flops()
        lines = [
            f"  Complete contraction:  {','.join(text(t) for t in tree.inputs)}->{output}",
            f"         Naive scaling:  {len(tree.sizes)}",
            f"     Optimized scaling:  {tree.max_scaling()}",
            f"      Naive FLOP count:  {naive:.3e}",
            f"  Optimized FLOP count:  {optimized:.3e}",
            f"   Theoretical speedup:  {naive / optimized if optimized else 1.0:3.3f}",
            f"  Largest intermediate:  {tree.largest_intermediate():.3e} elements",
        ]
        if self.sliced is not None and self.sliced.sliced:
            sliced = self.sliced
            lines += [
                f"        Sliced indices:  {''.join(symbols[label] for label in sliced.sliced)} "
                f"({sliced.num_slices} slices)",
                f"  Per-slice FLOP count:  {sliced.slice_flops:.3e}",
                f" Per-slice intermediate: {sliced.largest_intermediate:.3e} elements",
                f"     Slicing overhead:   {sliced.overhead:.3f}x",
            ]
        lines += [
            "-" * 86,
            f"{'scaling':>6} {'current':>24} {'remaining':>40} {'kernel':>10}",
            "-" * 86,
        ]
        remaining = [text(term) for term in tree.inputs]
        for step in tree.steps():
            i, j = step.position
            current = (
                f"{text(step.left_labels)},{text(step.right_labels)}->{text(step.result_labels)}"
            )
            remaining = [term for k, term in enumerate(remaining) if k not in (i, j)]
            remaining.append(text(step.result_labels))
            scaling = len(set(step.left_labels) | set(step.right_labels))
            remaining_text = ",".join(remaining) + "->" + output
            lines.append(f"{scaling:>4}    {current:>24} {remaining_text:>40} {step.kind:>10}")
        return "\n".join(lines)

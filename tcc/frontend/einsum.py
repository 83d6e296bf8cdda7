"""numpy-compatible einsum parsing: subscripts (string or sublist form) -> :class:`EinsumSpec`.

The parser validates everything numpy validates, with messages that name the operand, its
shape, the subscript and what was expected. Labels become integers: a letter is its code
point (so implicit output order is numpy's), a sublist label is itself, and ellipsis
dimensions get negative labels (``-1`` is the last ellipsis dimension). The spec is then
canonicalized (labels renamed in order of first appearance) so ``ij,jk`` and ``ab,bc``
share one kernel.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from tcc.errors import EinsumSyntaxError, OperandError, ShapeError, SubscriptTypeError

Label = int
Term = tuple[Label, ...]


@dataclass(frozen=True, slots=True)
class EinsumSpec:
    """An einsum with integer labels: ``inputs[k]`` labels operand k's axes, in order."""

    inputs: tuple[Term, ...]
    output: Term

    @property
    def labels(self) -> tuple[Label, ...]:
        """Every label once, in order of first appearance (inputs, then output)."""
        seen: dict[Label, None] = {}
        for term in (*self.inputs, self.output):
            seen.update(dict.fromkeys(term))
        return tuple(seen)

    @property
    def reduced(self) -> tuple[Label, ...]:
        out = set(self.output)
        return tuple(label for label in self.labels if label not in out)

    def canonical(self) -> EinsumSpec:
        """Rename labels to 0, 1, 2, ... in order of first appearance."""
        rename = {label: k for k, label in enumerate(self.labels)}
        return EinsumSpec(
            tuple(tuple(rename[x] for x in term) for term in self.inputs),
            tuple(rename[x] for x in self.output),
        )

    def __str__(self) -> str:
        terms = ",".join("".join(map(label_name, t)) for t in self.inputs)
        return f"{terms}->{''.join(map(label_name, self.output))}"


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def label_name(label: Label) -> str:
    """A printable single character for a canonical label (Unicode beyond 52 labels)."""
    if 0 <= label < len(_LETTERS):
        return _LETTERS[label]
    if label < 0:
        return chr(0x3B1 + (-label - 1) % 24)  # Greek letters for ellipsis dimensions
    return chr(0x100 + label)  # Latin Extended and beyond: all Unicode letters


def _label_text(label: Label) -> str:
    if label < 0:
        return "..."
    return chr(label) if label >= 65 else str(label)


# ---------------------------------------------------------------------------------------
# String form
# ---------------------------------------------------------------------------------------


def _scan_term(text: str, where: str) -> tuple[list[Label], int | None]:
    """Labels of one term and the position of its ellipsis (None if absent)."""
    labels: list[Label] = []
    ellipsis_at: int | None = None
    k = 0
    while k < len(text):
        char = text[k]
        if char == ".":
            if text[k : k + 3] != "...":
                raise EinsumSyntaxError(
                    f"invalid subscript '.' in {where}: an ellipsis is written '...'"
                )
            if ellipsis_at is not None:
                raise EinsumSyntaxError(f"{where} contains more than one ellipsis '...'")
            ellipsis_at = len(labels)
            k += 3
            continue
        if not char.isalpha():
            raise EinsumSyntaxError(
                f"invalid subscript {char!r} in einstein sum subscripts string, "
                "subscripts must be letters"
            )
        labels.append(ord(char))
        k += 1
    return labels, ellipsis_at


@lru_cache(maxsize=4096)
def _split_string(subscripts: str) -> tuple[tuple[tuple[Term, int | None], ...], object]:
    """Parse a subscripts string into raw terms; cached, since it is on the call path."""
    text = subscripts.replace(" ", "")
    if text.count("->") > 1:
        raise EinsumSyntaxError(f"subscripts {subscripts!r} contain '->' more than once")
    if "->" in text:
        lhs, rhs = text.split("->")
    else:
        lhs, rhs = text, None
    for bad in ("-", ">"):
        if bad in lhs or (rhs is not None and bad in rhs):
            raise EinsumSyntaxError(
                f"invalid subscript {bad!r} in einstein sum subscripts string, "
                "subscripts must be letters ('-' and '>' only as '->')"
            )
    terms = []
    for k, term in enumerate(lhs.split(",")):
        labels, ell = _scan_term(term, f"input term {k} ({term!r})")
        terms.append((tuple(labels), ell))
    output = None
    if rhs is not None:
        if "," in rhs:
            raise EinsumSyntaxError(f"output subscripts {rhs!r} contain ','")
        labels, ell = _scan_term(rhs, f"output subscripts {rhs!r}")
        output = (tuple(labels), ell)
    return tuple(terms), output


# ---------------------------------------------------------------------------------------
# Sublist form
# ---------------------------------------------------------------------------------------


def _sublist_label(item: object, where: str) -> Label:
    """A sublist subscript: any integer (numpy's too) but a bool; negative is an error."""
    try:
        label = None if isinstance(item, bool) else operator.index(item)  # type: ignore[arg-type]
    except TypeError:
        label = None
    if label is None:
        raise SubscriptTypeError(f"{where}: subscript {item!r} is not an integer or Ellipsis")
    if label < 0:
        raise EinsumSyntaxError(f"{where}: subscript {item!r} is negative")
    return label


def _sublist_term(sublist: object, where: str) -> tuple[Term, int | None]:
    """Labels of one sublist (a list, tuple, range or integer array, as numpy takes)."""
    if isinstance(sublist, str | bytes) or not isinstance(sublist, Iterable):
        raise SubscriptTypeError(f"{where} must be a list of integers (and Ellipsis)")
    try:
        items = list(sublist)
    except TypeError:  # a 0-d array
        raise SubscriptTypeError(f"{where} must be a list of integers (and Ellipsis)") from None
    labels: list[Label] = []
    ellipsis_at: int | None = None
    for item in items:
        if item is Ellipsis:
            if ellipsis_at is not None:
                raise EinsumSyntaxError(f"{where} contains more than one Ellipsis")
            ellipsis_at = len(labels)
        else:
            labels.append(_sublist_label(item, where))
    return tuple(labels), ellipsis_at


def split_sublist_args(args: tuple) -> tuple[list, list, object]:
    """``(op0, sub0, op1, sub1, ..., [out])`` -> operands, raw terms, raw output."""
    operands = list(args[0::2])
    sublists = list(args[1::2])
    output = None
    if len(operands) > len(sublists):
        output = operands.pop()
        output = _sublist_term(output, "output sublist")
    terms = [_sublist_term(s, f"sublist of operand {k}") for k, s in enumerate(sublists)]
    return operands, terms, output


# ---------------------------------------------------------------------------------------
# Shapes, broadcasting, output
# ---------------------------------------------------------------------------------------


def _expand_term(
    k: int, term: Term, ellipsis_at: int | None, shape: tuple[int, ...]
) -> tuple[Term, int]:
    """Replace the ellipsis by negative labels; return the term and its ellipsis rank."""
    ndim = len(shape)
    if ellipsis_at is None:
        if len(term) > ndim:
            raise ShapeError(
                f"einstein sum subscripts string contains too many subscripts for operand {k}: "
                f"{len(term)} subscripts for an operand of shape {shape}"
            )
        if len(term) < ndim:
            raise ShapeError(
                f"operand {k} has {ndim} dimensions (shape {shape}) but its subscripts name "
                f"{len(term)}; use '...' to broadcast the rest"
            )
        return term, 0
    rank = ndim - len(term)
    if rank < 0:
        raise ShapeError(
            f"einstein sum subscripts string contains too many subscripts for operand {k}: "
            f"{len(term)} subscripts for an operand of shape {shape}"
        )
    ell = tuple(range(-rank, 0))
    return term[:ellipsis_at] + ell + term[ellipsis_at:], rank


def _label_sizes(
    terms: Sequence[Term], shapes: Sequence[tuple[int, ...]]
) -> dict[Label, int]:
    """Each label's size under numpy's broadcasting (a size-1 axis stretches)."""
    sizes: dict[Label, int] = {}
    first_seen: dict[Label, int] = {}
    for k, (term, shape) in enumerate(zip(terms, shapes, strict=True)):
        own: dict[Label, int] = {}
        for label, size in zip(term, shape, strict=True):
            if label in own and own[label] != size:
                raise ShapeError(
                    f"dimensions in operand {k} (shape {shape}) for collapsing index "
                    f"'{_label_text(label)}' don't match ({own[label]} != {size})"
                )
            own[label] = size
        for label, size in own.items():
            known = sizes.get(label)
            if known is None or known == 1:
                sizes[label] = size
                first_seen.setdefault(label, k)
            elif size not in (1, known):
                raise ShapeError(
                    f"operand {k} has size {size} for subscript '{_label_text(label)}' "
                    f"(shape {shape}), but operand {first_seen[label]} has size {known}; "
                    "sizes must match or be 1"
                )
    return sizes


def _implicit_output(terms: Sequence[Term], ellipsis_rank: int) -> Term:
    counts: dict[Label, int] = {}
    for term in terms:
        for label in term:
            counts[label] = counts.get(label, 0) + 1
    letters = sorted(label for label, n in counts.items() if n == 1 and label >= 0)
    return tuple(range(-ellipsis_rank, 0)) + tuple(letters)


def _explicit_output(
    raw: tuple[Term, int | None], terms: Sequence[Term], ellipsis_rank: int
) -> Term:
    labels, ellipsis_at = raw
    seen_in = {label for term in terms for label in term}
    for label in labels:
        if labels.count(label) > 1:
            raise EinsumSyntaxError(
                "einstein sum subscripts string includes output subscript "
                f"'{_label_text(label)}' multiple times"
            )
        if label not in seen_in:
            raise EinsumSyntaxError(
                "einstein sum subscripts string included output subscript "
                f"'{_label_text(label)}' which never appeared in an input"
            )
    if ellipsis_at is None:
        if ellipsis_rank > 0:
            raise ShapeError(
                "output has more dimensions than subscripts given in einstein sum, but no "
                "'...' ellipsis provided to broadcast the extra dimensions"
            )
        return labels
    return labels[:ellipsis_at] + tuple(range(-ellipsis_rank, 0)) + labels[ellipsis_at:]


@dataclass(frozen=True, slots=True)
class ParsedEinsum:
    """A validated einsum: the spec and every label's (broadcast) size."""

    spec: EinsumSpec
    sizes: dict[Label, int]

    def operand_sizes(self, k: int) -> tuple[int, ...]:
        return tuple(self.sizes[label] for label in self.spec.inputs[k])

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.sizes[label] for label in self.spec.output)


def parse_terms(
    raw_terms: Sequence[tuple[Term, int | None]],
    raw_output: tuple[Term, int | None] | None,
    shapes: Sequence[tuple[int, ...]],
) -> ParsedEinsum:
    """Validate raw terms against operand shapes and build the spec."""
    if len(raw_terms) > len(shapes):
        raise OperandError(
            f"fewer operands provided to einstein sum function than specified in the "
            f"subscripts string ({len(shapes)} operands for {len(raw_terms)} terms)"
        )
    if len(raw_terms) < len(shapes):
        raise OperandError(
            f"more operands provided to einstein sum function than specified in the "
            f"subscripts string ({len(shapes)} operands for {len(raw_terms)} terms)"
        )
    terms: list[Term] = []
    ellipsis_rank = 0
    any_ellipsis = False
    for k, ((term, ell), shape) in enumerate(zip(raw_terms, shapes, strict=True)):
        expanded, rank = _expand_term(k, term, ell, shape)
        terms.append(expanded)
        ellipsis_rank = max(ellipsis_rank, rank)
        any_ellipsis = any_ellipsis or ell is not None
    sizes = _label_sizes(terms, shapes)
    if raw_output is None:
        output = _implicit_output(terms, ellipsis_rank)
    else:
        output = _explicit_output(raw_output, terms, ellipsis_rank)
    return ParsedEinsum(EinsumSpec(tuple(terms), output), sizes)


def parse_einsum(subscripts: str, shapes: Sequence[tuple[int, ...]]) -> ParsedEinsum:
    """Parse a subscripts string against operand shapes."""
    if not isinstance(subscripts, str):
        raise EinsumSyntaxError(f"subscripts must be a string, not {type(subscripts).__name__}")
    raw_terms, raw_output = _split_string(subscripts)
    return parse_terms(raw_terms, raw_output, shapes)  # type: ignore[arg-type]

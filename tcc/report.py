"""Plain-text formatting for the CLI and the benchmarks: times, ratios, aligned tables."""

from __future__ import annotations

import math
from collections.abc import Sequence

from tcc.demo_suite import CaseResult


def format_seconds(seconds: float | None) -> str:
    """A duration with a unit that keeps three significant digits: '812 us', '1.23 ms'."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def format_ratio(baseline: float | None, measured: float | None) -> str:
    """How many times faster ``measured`` is than ``baseline``: '3.1x' (under 1: slower)."""
    if baseline is None or measured is None or not measured > 0 or not baseline > 0:
        return "-"
    ratio = baseline / measured
    return f"{ratio:.3g}x" if ratio < 1000 else f"{ratio:.0f}x"


def format_shape(shape: Sequence[int]) -> str:
    return "x".join(str(n) for n in shape) if len(shape) else "()"


def format_shapes(shapes: Sequence[Sequence[int]]) -> str:
    return ",".join(format_shape(s) for s in shapes)


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] | None = None
) -> str:
    """Columns padded to their widest cell; ``right[k]`` right-aligns column k."""
    right = list(right) if right is not None else [False] * len(headers)
    widths = [len(h) for h in headers]
    for row in rows:
        for k, cell in enumerate(row):
            widths[k] = max(widths[k], len(cell))

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(widths[k]) if right[k] else cell.ljust(widths[k])
            for k, cell in enumerate(cells)
        ]
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


DEMO_HEADERS = (
    "case", "equation", "shapes", "dtype", "check", "compile", "tcc", "np", "np opt",
    "opt_einsum", "vs np", "vs np opt", "vs oe",
)
_DEMO_RIGHT = (False,) * 5 + (True,) * 8


def demo_row(result: CaseResult) -> list[str]:
    case = result.case
    return [
        case.name,
        case.equation,
        format_shapes(result.shapes),
        case.dtype,
        "OK" if result.ok else "FAIL",
        format_seconds(result.compile_s),
        format_seconds(result.tcc_s),
        format_seconds(result.numpy_s),
        format_seconds(result.numpy_opt_s),
        format_seconds(result.opt_einsum_s),
        format_ratio(result.numpy_s, result.tcc_s),
        format_ratio(result.numpy_opt_s, result.tcc_s),
        format_ratio(result.opt_einsum_s, result.tcc_s),
    ]


def demo_table(results: Sequence[CaseResult]) -> str:
    """The demo's table: one row per case; ratios are baseline time / tcc time."""
    return format_table(DEMO_HEADERS, [demo_row(r) for r in results], _DEMO_RIGHT)


DEMO_LEGEND = (
    "compile: first tcc.einsum call (parse, lower, LLVM, load); tcc, np (numpy.einsum "
    "optimize=False), np opt (optimize=True), opt_einsum: median of warm calls; "
    "vs X: X's time / tcc's time (above 1: tcc faster)."
)

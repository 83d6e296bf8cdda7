"""The demo suite: einsums from real workloads, with sizes for a full run and a quick one.

``tcc demo`` and ``benchmarks/einsum_suite.py`` both run this list. Each case names the
size of every index once; operand shapes follow from the subscripts, so a case reads the
way the CLI's ``--shape i=1024,k=1024`` does. Sizes are modest: the whole suite, with
numpy's unoptimized einsum as one of the baselines, runs in well under a minute.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tcc.errors import EinsumSyntaxError, OperandError, ShapeError, TccError


@dataclass(frozen=True, slots=True)
class Case:
    """One einsum of the suite.

    ``sizes`` gives every index's size for the full run, ``quick_sizes`` for ``--quick``.
    """

    name: str
    equation: str
    sizes: tuple[tuple[str, int], ...]
    quick_sizes: tuple[tuple[str, int], ...]
    dtype: str = "float32"
    note: str = ""

    def shapes(self, quick: bool = False) -> tuple[tuple[int, ...], ...]:
        sizes = dict(self.quick_sizes if quick else self.sizes)
        return shapes_from_sizes(self.equation, sizes)

    def operands(self, quick: bool = False, seed: int = 0) -> list[np.ndarray]:
        """Random operands: standard normal floats, small integers for integer dtypes."""
        rng = np.random.default_rng(seed)
        dtype = np.dtype(self.dtype)
        arrays = []
        for shape in self.shapes(quick):
            if dtype.kind in "iu":
                arrays.append(rng.integers(-3, 4, size=shape).astype(dtype))
            elif dtype.kind == "c":
                real = rng.standard_normal(shape)
                imag = rng.standard_normal(shape)
                arrays.append((real + 1j * imag).astype(dtype))
            else:
                arrays.append(rng.standard_normal(shape).astype(dtype))
        return arrays


def input_subscripts(equation: str) -> list[str]:
    """The input terms of an explicit or implicit einsum (no ellipsis)."""
    inputs = equation.replace(" ", "").split("->")[0]
    return inputs.split(",")


def shapes_from_sizes(equation: str, sizes: Mapping[str, int]) -> tuple[tuple[int, ...], ...]:
    """Each operand's shape from its subscripts and the per-index sizes.

    >>> shapes_from_sizes("ik,kj->ij", {"i": 2, "k": 3, "j": 4})
    ((2, 3), (3, 4))
    """
    shapes = []
    for k, term in enumerate(input_subscripts(equation)):
        if "." in term:
            raise ShapeError(f"operand {k} ({term!r}): ellipsis needs explicit shapes")
        bad = [c for c in term if not c.isalpha()]
        if bad:
            raise EinsumSyntaxError(
                f"operand {k} ({term!r}): {bad[0]!r} is not a subscript letter in {equation!r}"
            )
        missing = [c for c in term if c not in sizes]
        if missing:
            raise ShapeError(
                f"operand {k} ({term!r}): no size given for index "
                f"{', '.join(repr(c) for c in dict.fromkeys(missing))}"
            )
        shapes.append(tuple(int(sizes[c]) for c in term))
    return tuple(shapes)


def _sizes(**sizes: int) -> tuple[tuple[str, int], ...]:
    return tuple(sizes.items())


SUITE: tuple[Case, ...] = (
    Case("gemm", "ik,kj->ij",
         _sizes(i=1024, k=1024, j=1024), _sizes(i=64, k=48, j=32),
         note="dense layer / matrix multiply"),
    Case("attention_scores", "bhqd,bhkd->bhqk",
         _sizes(b=4, h=8, q=256, k=256, d=64), _sizes(b=1, h=2, q=16, k=16, d=8),
         note="multi-head attention Q K^T"),
    Case("axial_attention", "bhxyd,bhxzd->bhxyz",
         _sizes(b=2, h=4, x=32, y=32, z=32, d=32), _sizes(b=1, h=2, x=4, y=4, z=4, d=8),
         note="attention along one image axis"),
    Case("tucker", "abc,ia,jb,kc->ijk",
         _sizes(a=12, b=12, c=12, i=40, j=40, k=40), _sizes(a=3, b=3, c=3, i=6, j=6, k=6),
         note="Tucker reconstruction: core x three factor matrices"),
    Case("bilinear", "bi,oij,bj->bo",
         _sizes(b=64, o=64, i=64, j=64), _sizes(b=4, o=3, i=5, j=6),
         note="bilinear layer x1^T W_o x2"),
    Case("clebsch_gordan", "zui,zvj,ijk,uvw->zwk",
         _sizes(z=64, u=16, v=16, w=16, i=3, j=5, k=7),
         _sizes(z=4, u=3, v=3, w=3, i=3, j=3, k=5),
         note="equivariant tensor product with CG coefficients and channel mixing"),
    Case("triple_product", "ia,ja,ka->ijk",
         _sizes(i=128, j=128, k=128, a=32), _sizes(i=5, j=6, k=7, a=4),
         note="CP / triple product"),
    Case("hadamard_reduce", "ij,ij,ij->i",
         _sizes(i=1024, j=1024), _sizes(i=17, j=33),
         note="elementwise product of three, summed over rows"),
    Case("mttkrp", "ijk,jr,kr->ir",
         _sizes(i=128, j=128, k=128, r=16), _sizes(i=5, j=6, k=7, r=3), dtype="float64",
         note="matricized tensor times Khatri-Rao product (CP-ALS)"),
    Case("mps_environment", "ab,asc,bsd->cd",
         _sizes(a=64, b=64, s=4, c=64, d=64), _sizes(a=4, b=4, s=2, c=4, d=4),
         dtype="float64", note="MPS left-environment update"),
    Case("trace", "ii",
         _sizes(i=2048), _sizes(i=9), dtype="float64", note="matrix trace"),
    Case("diagonal_sum", "iij->j",
         _sizes(i=256, j=128), _sizes(i=7, j=5), dtype="int64",
         note="sum over a batch of diagonals"),
)


def tolerances(dtype: str, reference: np.ndarray) -> tuple[float, float]:
    """(rtol, atol) for comparing against numpy: atol scales with the result's magnitude."""
    kind = np.dtype(dtype)
    if kind.kind in "biu":
        return 0.0, 0.0
    eps = 2e-4 if kind in (np.float32, np.complex64) else 1e-10
    if kind == np.float16:
        eps = 2e-2
    scale = float(np.max(np.abs(reference))) if reference.size else 1.0
    return eps, eps * max(scale, 1.0)


def check(result: object, reference: object, dtype: str) -> bool:
    """Whether ``result`` matches ``reference`` with the dtype's tolerance."""
    result = np.asarray(result)
    reference = np.asarray(reference)
    if result.shape != reference.shape:
        return False
    rtol, atol = tolerances(dtype, reference)
    return bool(np.allclose(result, reference, rtol=rtol, atol=atol))


# -- running ------------------------------------------------------------------------------


BLAS_SETTLE_S = 0.3  # OpenBLAS workers spin ~0.13 s after a call before they sleep


def median_time(
    function: Callable[[], object], repeat: int = 5, warmup: int = 1, slow: float = 0.5,
    settle: float = 0.0,
) -> float:
    """Median wall time of ``repeat`` calls after ``warmup`` calls (time.perf_counter).

    A call that takes longer than ``slow`` seconds during warm-up is timed once only (that
    warm-up call), which keeps slow baselines from dominating a run. ``settle`` seconds of
    sleep first let the threads of a BLAS call just made go idle: OpenBLAS's workers keep
    spinning for a while after each call, and on a 2-core machine they would take a core
    from whatever is timed next (tcc's threads, or the next BLAS call's).
    """
    if settle:
        time.sleep(settle)
    last = 0.0
    for _ in range(max(warmup, 1)):
        start = time.perf_counter()
        function()
        last = time.perf_counter() - start
        if last > slow:
            return last
    samples = []
    for _ in range(max(repeat, 1)):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def interleaved_times(
    functions: Sequence[Callable[[], object]], repeat: int = 7, warmup: int = 1,
    settle: float = 0.0, warm: int = 0,
) -> list[list[float]]:
    """Wall times of ``repeat`` rounds in which every function runs once, in turn.

    On a shared machine the speed drifts by tens of percent within seconds; timing the
    contenders alternately puts each pair of samples under the same conditions, so the
    ratio of a round (see ``paired_ratio``) holds where separate medians do not.
    ``settle`` seconds of sleep precede every call (see ``median_time``); then ``warm``
    untimed calls of the same function, so the timed one finds its data in the caches and
    its threads awake, as in a loop calling it (and as the autotuner measures)."""
    for function in functions:
        for _ in range(max(warmup, 0)):
            function()
    samples: list[list[float]] = [[] for _ in functions]
    for _ in range(max(repeat, 1)):
        for function, times in zip(functions, samples, strict=True):
            if settle:
                time.sleep(settle)
            for _ in range(warm):
                function()
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
    return samples


def paired_ratio(baseline: Sequence[float], contender: Sequence[float]) -> float:
    """Median over rounds of baseline time / contender time (> 1: the contender wins)."""
    return statistics.median(b / c for b, c in zip(baseline, contender, strict=True))


def blas_description() -> str:
    """Which BLAS numpy calls, from threadpoolctl when it is installed."""
    try:
        import threadpoolctl
    except ImportError:
        return "numpy BLAS: unknown (install threadpoolctl to show it)"
    parts = []
    for info in threadpoolctl.threadpool_info():
        if info.get("user_api") != "blas":
            continue
        parts.append(
            f"{info.get('internal_api')} {info.get('version')} "
            f"(kernel {info.get('architecture')}, {info.get('num_threads')} threads)"
        )
    return "numpy BLAS: " + ("; ".join(parts) if parts else "none found")


def opt_einsum_contract() -> Callable[..., np.ndarray] | None:
    try:
        import opt_einsum
    except ImportError:
        return None
    return opt_einsum.contract


@dataclass(slots=True)
class CaseResult:
    """Timings in seconds (None: baseline not available) and the correctness verdict."""

    case: Case
    shapes: tuple[tuple[int, ...], ...]
    ok: bool
    compile_s: float
    tcc_s: float
    numpy_s: float
    numpy_opt_s: float
    opt_einsum_s: float | None
    error: str = ""


def run_case(case: Case, quick: bool = False, repeat: int = 5) -> CaseResult:
    """Compile (first call, timed), check against numpy.einsum, time tcc and the baselines.

    A TccError during the first call becomes a failed result carrying its message.
    """
    import tcc

    operands = case.operands(quick)
    shapes = tuple(a.shape for a in operands)
    start = time.perf_counter()
    try:
        result = tcc.einsum(case.equation, *operands)
    except TccError as exc:
        nan = float("nan")
        return CaseResult(case, shapes, False, time.perf_counter() - start, nan, nan, nan,
                          None, error=f"{type(exc).__name__}: {exc}")
    compile_s = time.perf_counter() - start
    reference = np.einsum(case.equation, *operands, optimize=False)
    ok = check(result, reference, case.dtype)
    contract = opt_einsum_contract()
    return CaseResult(
        case=case,
        shapes=shapes,
        ok=ok,
        compile_s=compile_s,
        tcc_s=median_time(lambda: tcc.einsum(case.equation, *operands), repeat,
                          settle=BLAS_SETTLE_S),
        numpy_s=median_time(lambda: np.einsum(case.equation, *operands, optimize=False), repeat),
        numpy_opt_s=median_time(
            lambda: np.einsum(case.equation, *operands, optimize=True), repeat
        ),
        opt_einsum_s=None if contract is None
        else median_time(lambda: contract(case.equation, *operands), repeat),
        error="" if ok else "result differs from numpy.einsum",
    )


def select_cases(names: Sequence[str] | None) -> tuple[Case, ...]:
    """The suite's cases with the given names (all when ``names`` is empty)."""
    if not names:
        return SUITE
    by_name = {case.name: case for case in SUITE}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise OperandError(
            f"unknown demo case {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(by_name)}"
        )
    return tuple(by_name[n] for n in names)


SLOW_BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def blas_environment_warning() -> str | None:
    """A warning when variables that pin OpenBLAS to another kernel are set, else None."""
    found = [f"{v}={os.environ[v]}" for v in SLOW_BLAS_VARIABLES if v in os.environ]
    if not found:
        return None
    return (
        f"warning: {' '.join(found)} is set; OpenBLAS may run a slower kernel than this CPU "
        f"allows, which flatters tcc against numpy's BLAS paths (run with "
        f"`env -u {' -u '.join(SLOW_BLAS_VARIABLES)} ...` for fair numbers)"
    )


def environment_description() -> str:
    """One line: versions, the host CPU as LLVM names it, and tcc's thread count."""
    import llvmlite

    import tcc
    from tcc.options import default_options
    from tcc.runtime.jit import host_target

    return (
        f"tcc {tcc.__version__}, numpy {np.__version__}, llvmlite {llvmlite.__version__}, "
        f"python {platform.python_version()}; CPU {host_target().cpu} "
        f"({os.cpu_count()} logical cores), tcc threads {default_options().num_threads}"
    )

"""``tcc.einsum`` keyword arguments, scalars, the sublist form, Unicode and huge equations,
the Kernel API and the compile caches."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from corpus import tolerance

import tcc
from tcc.options import Options, default_options
from tcc.runtime import jit
from tcc.runtime.cache import DiskCache

RNG = np.random.default_rng(1234)
A = RNG.uniform(-1, 1, (3, 4))
B = RNG.uniform(-1, 1, (4, 5))
REPO = Path(__file__).resolve().parent.parent


def assert_matches(result, expected) -> None:
    assert np.shape(result) == np.shape(expected)
    assert result.dtype == expected.dtype, (result.dtype, expected.dtype)
    np.testing.assert_allclose(result, expected, **tolerance(expected.dtype))


# ---- out= ---------------------------------------------------------------------------------


@pytest.mark.parametrize("make_out", [
    lambda: np.empty((3, 5)),
    lambda: np.empty((5, 3)).T,
    lambda: np.empty((6, 10))[::2, ::2],
    lambda: np.empty((3, 5))[::-1, ::-1],
    lambda: np.empty((3, 5), order="F"),
], ids=["contiguous", "transposed", "sliced", "negative", "fortran"])
def test_out_is_filled_and_returned(make_out):
    out = make_out()
    out[...] = np.nan
    result = tcc.einsum("ij,jk", A, B, out=out)
    assert result is out
    np.testing.assert_allclose(out, A @ B, rtol=1e-12)


def test_out_with_a_reduction_over_a_zero_size_index_is_zeroed():
    out = np.full((3, 2), 7.0)
    tcc.einsum("ij,jk", np.ones((3, 0)), np.ones((0, 2)), out=out)
    np.testing.assert_array_equal(out, np.zeros((3, 2)))
    assert_matches(tcc.einsum("ij,jk", np.ones((3, 0)), np.ones((0, 2))), np.zeros((3, 2)))


def test_out_overlapping_an_input():
    x = RNG.uniform(-1, 1, (4, 4))
    expected = x @ x
    tcc.einsum("ij,jk->ik", x, x, out=x)
    np.testing.assert_allclose(x, expected, rtol=1e-12)

    y = RNG.uniform(-1, 1, (4, 4))
    expected = y.T.copy()
    tcc.einsum("ij->ji", y, out=y)
    np.testing.assert_array_equal(y, expected)

    z = RNG.uniform(-1, 1, 8)
    expected = np.einsum("i,i->i", z[:6], z[:6])
    tcc.einsum("i,i->i", z[:6], z[:6], out=z[2:])  # partial overlap, shifted
    np.testing.assert_allclose(z[2:], expected, rtol=1e-12)


def test_out_of_another_dtype_with_casting():
    out = np.empty((3, 5), np.float32)
    tcc.einsum("ij,jk", A, B, out=out, casting="same_kind")
    np.testing.assert_allclose(out, A @ B, rtol=1e-5)
    ints = np.empty((3,), np.int64)
    tcc.einsum("ij,ij->i", A * 10, A * 10, out=ints, casting="unsafe")  # reduction innermost
    np.testing.assert_array_equal(ints, np.einsum("ij,ij->i", A * 10, A * 10).astype(np.int64))


def test_out_of_integer_dtype_casts_the_finished_sum():
    ints = np.empty((3, 5), np.int64)
    expected = np.empty((3, 5), np.int64)
    np.einsum("ij,jk", A * 10, B * 10, out=expected, casting="unsafe")
    tcc.einsum("ij,jk", A * 10, B * 10, out=ints, casting="unsafe")
    np.testing.assert_array_equal(ints, expected)


def test_zero_d_out():
    out = np.empty(())
    result = tcc.einsum("ij,ij", A, A, out=out)
    assert result is out
    np.testing.assert_allclose(out, np.sum(A * A), rtol=1e-12)


# ---- dtype=, casting=, order=, promotion --------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {"dtype": np.float32, "casting": "same_kind"},
    {"dtype": np.complex128},
    {"dtype": "float64", "casting": "no"},
    {"dtype": np.int64, "casting": "unsafe"},
    {"dtype": np.float16, "casting": "unsafe"},
    {"casting": "equiv"},
])
def test_dtype_and_casting(kwargs):
    assert_matches(tcc.einsum("ij,jk", A, B, **kwargs), np.einsum("ij,jk", A, B, **kwargs))


@pytest.mark.parametrize("order", ["C", "F", "A", "K"])
def test_order(order):
    result = tcc.einsum("ij,jk", A, B, order=order)
    assert_matches(result, np.einsum("ij,jk", A, B, order=order))
    if order == "F":
        assert result.flags.f_contiguous
    if order == "C":
        assert result.flags.c_contiguous


@pytest.mark.parametrize("equation, memory", [
    ("abcd,aebf->dfce", "cdef"),  # C as [M in A's order, N in B's]: a transposed view
    ("ki,jk->ij", "ji"),  # only A is unit-stride on its side: C contiguous along i
    ("ik,kj->ij", "ij"),  # already the natural layout: row-major
    ("bij,bjk->bik", "bik"),
])
def test_order_k_lets_tcc_choose_the_layout(equation, memory):
    # numpy (order='K') and opt_einsum return tensordot's layout for permuted outputs;
    # tcc returns the one its GETT writes fastest: whole vectors from the registers
    rng = np.random.default_rng(0)
    shapes = shapes_of(equation, dict(a=3, b=4, c=5, d=6, e=7, f=8, i=9, j=10, k=11))
    ops = [rng.standard_normal(shape) for shape in shapes]
    out_labels = equation.split("->")[1]
    want = np.einsum(equation, *ops)
    options = default_options().with_(gett="always")
    for result in (tcc.einsum(equation, *ops, options=options),
                   tcc.compile(equation, *shapes, options=options)(*ops)):
        np.testing.assert_allclose(result, want, rtol=1e-12, atol=1e-12)
        by_stride = sorted(out_labels, key=lambda i: -result.strides[out_labels.index(i)])
        assert "".join(by_stride) == memory
        assert result.base is not None or result.flags.c_contiguous
    row_major = tcc.compile(equation, *shapes, options=options, order="C")(*ops)
    assert row_major.flags.c_contiguous
    np.testing.assert_allclose(row_major, want, rtol=1e-12, atol=1e-12)
    given = np.empty(want.shape, order="F")
    tcc.compile(equation, *shapes, options=options)(*ops, out=given)
    np.testing.assert_allclose(given, want, rtol=1e-12, atol=1e-12)
    with pytest.raises(tcc.TccError, match="order must be one of"):
        tcc.compile(equation, *shapes, order="X")


def shapes_of(equation: str, sizes: dict[str, int]) -> list[tuple[int, ...]]:
    return [tuple(sizes[i] for i in term) for term in equation.split("->")[0].split(",")]


@pytest.mark.parametrize("left, right", [
    ("int8", "uint8"), ("int64", "uint64"), ("float32", "int64"), ("bool", "int8"),
    ("float16", "int8"), ("complex64", "float64"), ("float16", "float32"), ("uint8", "uint16"),
    ("int32", "float32"), ("bool", "bool"), ("uint32", "int8"), ("complex64", "int16"),
])
def test_type_promotion(left, right):
    x = (np.arange(6).reshape(2, 3) % 3).astype(left)
    y = (np.arange(12).reshape(3, 4) % 4).astype(right)
    assert_matches(tcc.einsum("ij,jk", x, y), np.einsum("ij,jk", x, y))


@pytest.mark.parametrize("scalar", [2, 2.5, 2.5j, True, np.float32(2.5), np.int8(3)])
def test_python_and_numpy_scalars_promote_like_numpy(scalar):
    vector = np.arange(4, dtype=np.float32)
    assert_matches(tcc.einsum("i,", vector, scalar), np.einsum("i,", vector, scalar))


@pytest.mark.parametrize("dtype, value", [
    ("int8", 100), ("int8", -128), ("uint8", 200), ("int16", 300), ("uint16", 60000),
    ("int32", 2**30), ("uint32", 2**31), ("int64", 2**62), ("uint64", 2**63),
])
def test_integer_overflow_wraps_like_numpy(dtype, value):
    x = np.full(5, value, dtype)
    for equation in ("i,i", "i,i->i", "i->"):
        operands = (x, x) if "," in equation else (x,)
        expected = np.einsum(equation, *operands)
        result = tcc.einsum(equation, *operands)
        assert result.dtype == expected.dtype
        np.testing.assert_array_equal(result, expected)


def test_nan_and_inf_propagate():
    x = np.array([np.nan, 1.0, np.inf, -np.inf, 0.0, -0.0])
    for equation, operands in [
        ("i,i->i", (x, x)), ("i,i", (x, np.ones(6))), ("i,j->ij", (x, x)),
        ("i,i", (np.array([np.inf, 1.0]), np.array([0.0, 1.0]))),  # inf * 0 = nan
        ("i->", (np.array([np.inf, -np.inf]),)),  # inf - inf = nan
        ("ij,jk", (np.where(np.eye(3) > 0, np.nan, 1.0), np.ones((3, 2)))),
    ]:
        expected = np.einsum(equation, *operands)
        result = tcc.einsum(equation, *operands)
        np.testing.assert_array_equal(np.isnan(result), np.isnan(expected))
        np.testing.assert_allclose(result, expected, equal_nan=True)
    c = np.array([complex(np.nan, 1), complex(np.inf, 0)])
    np.testing.assert_array_equal(np.isnan(tcc.einsum("i,i->i", c, c)),
                                  np.isnan(np.einsum("i,i->i", c, c)))
    f32 = np.array([np.nan, np.inf], np.float32)
    np.testing.assert_array_equal(tcc.einsum("i->i", f32), f32)


def test_same_array_twice_and_broadcast_views():
    x = RNG.uniform(-1, 1, (4, 4))
    assert_matches(tcc.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", x, x))
    assert_matches(tcc.einsum("ij,jk", x, x.T), np.einsum("ij,jk", x, x.T))
    b = np.broadcast_to(RNG.uniform(-1, 1, 4), (3, 4))  # stride 0
    assert b.strides[0] == 0
    assert_matches(tcc.einsum("ij,jk", b, x), np.einsum("ij,jk", b, x))
    col = np.broadcast_to(RNG.uniform(-1, 1, (4, 1)), (4, 4))
    assert_matches(tcc.einsum("ii", col), np.einsum("ii", col))


def test_unaligned_and_big_endian_operands():
    raw = np.zeros(8 * 12 + 1, np.uint8)
    unaligned = np.frombuffer(raw.data, np.float64, 12, offset=1).reshape(3, 4)
    assert not unaligned.flags.aligned
    assert_matches(tcc.einsum("ij,jk", unaligned, B), np.einsum("ij,jk", unaligned, B))
    big = A.astype(">f8")
    np.testing.assert_allclose(tcc.einsum("ij,jk", big, B), A @ B, rtol=1e-12)


def test_fast_path_sees_new_values():
    x = RNG.uniform(-1, 1, (3, 4))
    expected = x @ B
    np.testing.assert_allclose(tcc.einsum("ij,jk", x, B), expected, rtol=1e-12)
    x[...] = 1.0
    second = tcc.einsum("ij,jk", x, B)
    np.testing.assert_allclose(second, np.ones((3, 4)) @ B, rtol=1e-12)
    for _ in range(3):
        y = RNG.uniform(-1, 1, (3, 4))
        np.testing.assert_allclose(tcc.einsum("ij,jk", y, B), y @ B, rtol=1e-12)


# ---- scalars --------------------------------------------------------------------------------


def test_zero_d_results_are_numpy_scalars():
    for result, dtype in [
        (tcc.einsum("ij,ij", A, A), np.float64),
        (tcc.einsum("i,i", np.arange(3), np.arange(3)), np.int64),
        (tcc.einsum("ii", np.eye(3, dtype=np.complex64)), np.complex64),
        (tcc.einsum("", np.float32(2.0)), np.float32),
        (tcc.einsum(",", 2.0, 3.0), np.float64),
        (tcc.einsum("->", np.array(5, np.int8)), np.int8),
    ]:
        assert isinstance(result, dtype), type(result)
    assert tcc.einsum(",", 2.0, 3.0) == 6.0
    assert_matches(tcc.einsum("i,->i", A[0], 3.0), np.einsum("i,->i", A[0], 3.0))
    assert_matches(tcc.einsum("...,...", 2.0, A), np.einsum("...,...", 2.0, A))


# ---- sublist form ---------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    (A, [0, 1], B, [1, 2], [0, 2]),
    (A, [0, 1], B, [1, 2]),
    (A, [5, 2], B, [2, 1]),  # implicit output sorted by integer
    (A, (0, 1), B, (1, 2), (2, 0)),
    (A, [Ellipsis, 1], B, [1, 2], [Ellipsis, 2]),
    (RNG.uniform(size=(2, 3, 4)), [Ellipsis, 0], [Ellipsis]),
    (A, [np.int64(0), np.int32(1)], B, np.array([1, 2]), [0, 2]),
    (A, range(2), [1, 0]),
    (np.eye(3), [0, 0]),
    (np.float64(2.0), [], A, [0, 1], [1, 0]),
])
def test_sublist_form(args):
    assert_matches(tcc.einsum(*args), np.einsum(*args))


def test_sublist_labels_beyond_numpys_52():
    result = tcc.einsum(A, [1000, 2000], B, [2000, 3], [3, 1000])
    np.testing.assert_allclose(result, (A @ B).T, rtol=1e-12)


# ---- Unicode and huge equations -----------------------------------------------------------


@pytest.mark.parametrize("equation", ["αβ,βγ->αγ", "ÄÖ,ÖÜ", "乘法,法则->乘则", "ij,jλ->λi"])
def test_unicode_letters(equation):
    ascii_equation = equation.translate(str.maketrans({
        "α": "a", "β": "b", "γ": "c", "Ä": "a", "Ö": "b", "Ü": "c", "乘": "a", "法": "b",
        "则": "c", "λ": "k"}))
    expected = np.einsum(ascii_equation, A, B)
    if "->" not in equation:  # implicit output order follows code points: same here
        assert sorted("ÄÜ") == ["Ä", "Ü"]
    assert_matches(tcc.einsum(equation, A, B), expected)


def test_sixty_index_transpose():
    shape = (2,) * 6 + (1,) * 54
    x = RNG.uniform(size=shape)
    perm = list(range(60))[::-1]
    np.testing.assert_array_equal(tcc.einsum(x, list(range(60)), perm), np.transpose(x, perm))
    letters = [chr(0x4E00 + k) for k in range(60)]
    equation = "".join(letters) + "->" + "".join(reversed(letters))
    np.testing.assert_array_equal(tcc.einsum(equation, x), np.transpose(x, perm))
    greek = "".join(chr(0x3B1 + k) for k in range(6))
    np.testing.assert_allclose(tcc.einsum(greek, RNG.uniform(size=(2,) * 6)).shape, (2,) * 6)


def _chain(n: int) -> tuple[list[np.ndarray], list[object]]:
    matrices = [np.eye(2) + 0.1 * RNG.uniform(-1, 1, (2, 2)) for _ in range(n)]
    args: list[object] = []
    for k, m in enumerate(matrices):
        args += [m, [k, k + 1]]
    return matrices, [*args, [0, n]]


def test_chain_of_200_matrices():
    matrices, args = _chain(200)
    np.testing.assert_allclose(tcc.einsum(*args, optimize=True),
                               np.linalg.multi_dot(matrices), rtol=1e-9)


@pytest.mark.slow
def test_chain_of_1000_matrices():
    matrices, args = _chain(1000)
    reference = functools.reduce(np.dot, matrices)  # multi_dot recurses too deep here
    np.testing.assert_allclose(tcc.einsum(*args, optimize="greedy"), reference, rtol=1e-8)


# ---- optimize= ----------------------------------------------------------------------------


@pytest.mark.parametrize("optimize", [
    False, True, "greedy", "optimal", "auto",
    ["einsum_path", (0, 1), (0, 1)], ["einsum_path", (1, 2), (0, 1)], [(0, 2), (0, 1)],
    ["einsum_path", (0, 1, 2)],
])
def test_optimize_values(optimize):
    c = RNG.uniform(-1, 1, (5, 2))
    np.testing.assert_allclose(tcc.einsum("ij,jk,kl->il", A, B, c, optimize=optimize),
                               A @ B @ c, rtol=1e-12)


def test_optimize_path_from_numpy():
    c = RNG.uniform(-1, 1, (5, 2))
    path, _ = np.einsum_path("ij,jk,kl->il", A, B, c, optimize="optimal")
    np.testing.assert_allclose(tcc.einsum("ij,jk,kl->il", A, B, c, optimize=path),
                               A @ B @ c, rtol=1e-12)


# ---- Kernel API ---------------------------------------------------------------------------


def test_kernel_compile_and_call():
    kernel = tcc.compile("ij,jk->ik", (3, 4), (4, 5))
    assert kernel.output_shape == (3, 5)
    np.testing.assert_allclose(kernel(A, B), A @ B, rtol=1e-12)
    out = np.empty((3, 5))
    assert kernel(A, B, out=out) is out
    np.testing.assert_allclose(out, A @ B, rtol=1e-12)
    assert "ij,jk->ik" in repr(kernel) and "float64" in repr(kernel)


def test_kernel_accepts_array_likes():
    kernel = tcc.compile("ij,jk->ik", (3, 4), (4, 5))
    np.testing.assert_allclose(kernel(A.tolist(), B), A @ B, rtol=1e-12)


def test_kernel_variants_for_other_layouts():
    kernel = tcc.compile("ij,jk->ik", (3, 4), (4, 5), dtype="float32")
    a32, b32 = A.astype(np.float32), B.astype(np.float32)
    assert len(kernel._variants) == 1
    for a, b in [(np.asfortranarray(a32), b32), (a32, b32[::-1][::-1]),
                 (np.asfortranarray(a32), b32), (a32[::-1], b32), (a32, b32)]:
        np.testing.assert_allclose(kernel(a, b), np.einsum("ij,jk", a, b), rtol=1e-5)
    assert len(kernel._variants) == 3  # fortran, reversed rows, and the default


def test_kernel_dtypes_and_scalars():
    mixed = tcc.compile("ij,jk->ik", (3, 4), (4, 5), dtype=["float32", "int64"])
    ints = np.arange(20).reshape(4, 5)
    a32 = A.astype(np.float32)
    assert_matches(mixed(a32, ints), np.einsum("ij,jk", a32, ints))
    dot = tcc.compile("i,i->", (4,), (4,), dtype="complex64")
    value = dot(np.ones(4, np.complex64), np.full(4, 1j, np.complex64))
    assert isinstance(value, np.complex64) and value == 4j


def test_kernel_inspection():
    kernel = tcc.compile("ij,jk->ik", (3, 4), (4, 5))
    text = kernel.ir()
    assert "sum_{b}" in text and "for a in 0..3" in text and "out out: float64[3, 5]" in text
    llvm = kernel.llvm_ir()
    assert "define i32" in llvm and "noalias" in llvm and "double" in llvm
    assert "define" in kernel.llvm_ir(optimized=True)
    asm = kernel.asm()
    assert kernel._default.compiled.name in asm
    assert kernel.program.outputs == ("out",)


def test_kernel_multi_operand_ir_shows_the_path():
    kernel = tcc.compile("ij,jk,kl->il", (3, 4), (4, 5), (5, 2), optimize=True)
    text = kernel.ir()
    assert "tmp t0" in text and text.count("kernel tcc_") == 2


def test_options_without_disk_cache(tmp_path):
    options = Options(cache_dir=str(tmp_path / "never"), disk_cache=False)
    x = RNG.uniform(size=(3, 7))
    result = tcc.einsum("ij->ji", x, options=options)
    np.testing.assert_array_equal(result, x.T)
    assert not (tmp_path / "never").exists()


# ---- caches -------------------------------------------------------------------------------


def test_alpha_renamed_equation_shares_the_compiled_kernel():
    first = tcc.compile("ij,jk->ik", (3, 6), (6, 2))
    loaded = len(jit.engine().loaded)
    second = tcc.compile("ab,bc->ac", (3, 6), (6, 2))
    assert len(jit.engine().loaded) == loaded
    assert first._default.compiled.name == second._default.compiled.name
    x, y = RNG.uniform(size=(3, 6)), RNG.uniform(size=(6, 2))
    np.testing.assert_allclose(second(x, y), x @ y, rtol=1e-12)
    tcc.einsum("pq,qr->pr", x, y)
    assert len(jit.engine().loaded) == loaded


def test_disk_cache_round_trip_and_corruption(tmp_path):
    cache = DiskCache(tmp_path)
    cache.put("ab" * 32, b"payload")
    assert cache.get("ab" * 32) == b"payload"
    path = next(tmp_path.rglob("*.obj"))
    path.write_bytes(path.read_bytes()[:-2] + b"XX")
    assert cache.get("ab" * 32) is None
    path.write_bytes(b"garbage")
    assert cache.get("ab" * 32) is None
    path.write_bytes(b"")
    assert cache.get("ab" * 32) is None
    assert cache.get("cd" * 32) is None


def test_corrupt_cached_object_is_recompiled(tmp_path):
    options = Options(cache_dir=str(tmp_path))
    kernel = tcc.compile("ij,jk->ik", (2, 7), (7, 3), options=options)
    text = kernel._default.compiled.llvm_text
    target = jit.host_target()
    (path,) = list(tmp_path.rglob("*.obj"))
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # a torn write
    obj = jit.compile_object(text, target, options)
    assert obj and path.read_bytes() == good  # recompiled and rewritten whole


_CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    import tcc
    x = np.arange(30.0).reshape(5, 6)
    y = np.arange(42.0).reshape(6, 7)
    result = tcc.einsum("ij,jk,kl->il", x, y, np.ones((7, 3)), optimize=True)
    assert np.allclose(result, x @ y @ np.ones((7, 3)))
    print("ok")
""")


def _run_children(cache_dir: Path, count: int) -> list[subprocess.CompletedProcess]:
    env = {**os.environ, "TCC_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(REPO)}
    children = [
        subprocess.Popen([sys.executable, "-c", _CHILD], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    results = []
    for child in children:
        stdout, stderr = child.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr))
    return results


def test_processes_compiling_at_once_share_the_cache_dir(tmp_path):
    for result in _run_children(tmp_path, 3):
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "ok"
    objects = list(tmp_path.rglob("*.obj"))
    assert objects and not list(tmp_path.rglob(".tmp-*"))
    for path in objects:  # corrupt every entry: the next process recompiles
        path.write_bytes(b"TCCOBJ1\n" + b"\0" * 40)
    (result,) = _run_children(tmp_path, 1)
    assert result.returncode == 0, result.stderr

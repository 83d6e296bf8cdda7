"""Random einsums against ``numpy.einsum``: equations, shapes (with 0 and 1), strides and
dtypes drawn by hypothesis."""

from __future__ import annotations

import numpy as np
from corpus import random_array, tolerance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from layouts import LAYOUTS, as_layout

import tcc

LABELS = "abcdeF"
DTYPES = ("float64", "float32", "complex128", "int64", "int32", "bool", "complex64")
SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def einsums(draw, max_operands: int = 3, allow_ellipsis: bool = True):
    """(equation, shapes): labels may repeat inside an operand and across operands; a label
    may be 1 in some operands (broadcast); the ellipsis broadcasts numpy-style."""
    n = draw(st.integers(1, max_operands))
    sizes = {label: draw(st.sampled_from([0, 1, 2, 3, 3, 4])) for label in LABELS}
    use_ellipsis = allow_ellipsis and draw(st.booleans())
    ellipsis_shape = draw(st.lists(st.integers(1, 3), max_size=2)) if use_ellipsis else []
    terms, shapes = [], []
    for _ in range(n):
        term = draw(st.lists(st.sampled_from(LABELS), max_size=4))
        stretched = {label: draw(st.booleans()) and draw(st.booleans()) for label in set(term)}
        shape = [1 if stretched[label] else sizes[label] for label in term]
        text = "".join(term)
        if use_ellipsis and draw(st.booleans()):
            at = draw(st.integers(0, len(term)))
            rank = draw(st.integers(0, len(ellipsis_shape)))
            own = [1 if draw(st.booleans()) and draw(st.booleans()) else s
                   for s in ellipsis_shape[len(ellipsis_shape) - rank:]]
            text = text[:at] + "..." + text[at:]
            shape = shape[:at] + own + shape[at:]
        terms.append(text)
        shapes.append(tuple(shape))
    lhs = ",".join(terms)
    if draw(st.booleans()):
        return lhs, shapes
    present = sorted({c for t in terms for c in t if c != "."})
    out = draw(st.permutations(present))
    out = out[: draw(st.integers(0, len(out)))]
    out_text = "".join(out)
    if "..." in lhs:
        at = draw(st.integers(0, len(out_text)))
        out_text = out_text[:at] + "..." + out_text[at:]
    return f"{lhs}->{out_text}", shapes


def _compare(equation: str, operands: list[np.ndarray], optimize: object) -> None:
    try:
        expected = np.einsum(equation, *operands, optimize=False)
    except ValueError:
        # numpy refuses it (e.g. a size mismatch we drew): tcc must refuse it too.
        try:
            tcc.einsum(equation, *operands, optimize=optimize)
        except tcc.TccError as exc:
            assert isinstance(exc, ValueError), type(exc)
            return
        raise AssertionError(f"numpy rejects {equation} but tcc accepts it") from None
    result = tcc.einsum(equation, *operands, optimize=optimize)
    assert np.shape(result) == np.shape(expected)
    assert result.dtype == expected.dtype
    assert isinstance(result, np.ndarray) == isinstance(expected, np.ndarray)
    np.testing.assert_allclose(result, expected, **tolerance(expected.dtype))


@SETTINGS
@given(einsums(), st.sampled_from([False, True, "auto"]), st.integers(0, 2**32 - 1))
def test_random_einsums_float64(spec, optimize, seed):
    equation, shapes = spec
    rng = np.random.default_rng(seed)
    _compare(equation, [random_array(rng, s, "float64") for s in shapes], optimize)


@SETTINGS
@given(einsums(), st.sampled_from(DTYPES), st.data())
def test_random_einsums_dtypes_and_layouts(spec, dtype, data):
    equation, shapes = spec
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    operands = [
        as_layout(random_array(rng, s, dtype), data.draw(st.sampled_from(LAYOUTS)))
        for s in shapes
    ]
    _compare(equation, operands, data.draw(st.sampled_from([False, True])))


@SETTINGS
@given(einsums(max_operands=2, allow_ellipsis=False), st.data())
def test_random_sublist_form(spec, data):
    """The same equations in the sublist form give the same results as the string form."""
    equation, shapes = spec
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    operands = [random_array(rng, s, "float64") for s in shapes]
    lhs, _, rhs = equation.partition("->")
    ordered = sorted(LABELS)  # implicit output: code point order = sublist integer order
    args: list[object] = []
    for operand, term in zip(operands, lhs.split(","), strict=True):
        args += [operand, [ordered.index(c) for c in term]]
    if "->" in equation:
        args.append([ordered.index(c) for c in rhs])
    try:
        expected = np.einsum(equation, *operands)
    except ValueError:
        return
    result = tcc.einsum(*args)
    np.testing.assert_allclose(result, expected, **tolerance("float64"))


@SETTINGS
@given(
    st.lists(st.integers(0, 3), min_size=1, max_size=4),
    st.lists(st.tuples(st.integers(-3, 3).filter(bool), st.integers(0, 2)), max_size=4),
    st.sampled_from(["float64", "int64", "complex64"]),
    st.integers(0, 2**32 - 1),
)
def test_random_strided_views(shape, steps, dtype, seed):
    """Arbitrary step (incl. negative) slices of a random array, through a transpose-and-sum."""
    rng = np.random.default_rng(seed)
    base = random_array(rng, tuple(s * 3 + 1 for s in shape), dtype)
    index = [slice(None)] * len(shape)
    for step, offset in steps:
        axis = offset % len(shape)
        index[axis] = slice(None, None, step)
    view = base[tuple(index)]
    letters = "ijkl"[: view.ndim]
    equation = f"{letters},{letters[-1]}->{letters[::-1]}"
    other = random_array(rng, view.shape[-1:], dtype)
    expected = np.einsum(equation, view, other)
    np.testing.assert_allclose(tcc.einsum(equation, view, other), expected,
                               **tolerance(dtype))

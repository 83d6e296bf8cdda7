"""Every mistake raises a ``tcc.TccError`` that is also the builtin numpy raises for it, with
a message that names the operand, shape or subscript at fault."""

from __future__ import annotations

import re

import numpy as np
import pytest

import tcc
from tcc.errors import SubscriptTypeError

A = np.ones((3, 4))
B = np.ones((4, 5))
C = np.ones((5, 2))


def raises(builtin: type[Exception], *fragments: str):
    """Expect a TccError that is also ``builtin`` and whose message has each fragment."""
    return _Raises(builtin, fragments)


class _Raises:
    def __init__(self, builtin: type[Exception], fragments: tuple[str, ...]) -> None:
        self.builtin, self.fragments = builtin, fragments

    def __enter__(self) -> None:
        self.context = pytest.raises(tcc.TccError)
        self.info = self.context.__enter__()

    def __exit__(self, *exc_info) -> bool:
        handled = self.context.__exit__(*exc_info)
        error = self.info.value
        assert isinstance(error, self.builtin), f"{type(error).__mro__} is not {self.builtin}"
        for fragment in self.fragments:
            assert fragment in str(error), f"{fragment!r} not in {str(error)!r}"
        return handled


def numpy_raises(builtin: type[Exception], call) -> None:
    """The same mistake in numpy raises the same builtin (keeps the tests honest)."""
    with pytest.raises(builtin):
        call(np.einsum)


# ---- operand counts and shapes ----------------------------------------------------------


@pytest.mark.parametrize("args, fragments", [
    (("ij", A, B), ("more operands", "2 operands for 1 terms")),
    (("ij,jk", A), ("fewer operands", "1 operands for 2 terms")),
    (("ij,jk,kl", A, B), ("fewer operands", "2 operands for 3 terms")),
    (("ij,", A), ("1 operands for 2 terms",)),
])
def test_wrong_number_of_operands(args, fragments):
    with raises(ValueError, *fragments):
        tcc.einsum(*args)
    numpy_raises(ValueError, lambda f: f(*args))


def test_no_operands():
    with raises(ValueError, "operand"):
        tcc.einsum()
    with raises(ValueError, "operand"):
        tcc.einsum("ij")


@pytest.mark.parametrize("equation, shapes, fragments", [
    ("ijk", [(3, 4)], ("too many subscripts", "operand 0", "(3, 4)")),
    ("i", [(3, 4)], ("operand 0", "(3, 4)", "'...'")),
    ("ij,jkl", [(3, 4), (4, 5)], ("operand 1", "(4, 5)")),
    ("...ijk", [(3, 4)], ("too many subscripts", "operand 0")),
    ("", [(3,)], ("operand 0", "(3,)")),
])
def test_subscripts_do_not_match_ndim(equation, shapes, fragments):
    operands = [np.ones(s) for s in shapes]
    with raises(ValueError, *fragments):
        tcc.einsum(equation, *operands)
    numpy_raises(ValueError, lambda f: f(equation, *operands))


@pytest.mark.parametrize("equation, shapes, fragments", [
    ("ij,jk", [(3, 4), (3, 4)], ("subscript 'j'", "operand 1", "(3, 4)", "size 3", "size 4")),
    ("ij,ij->ij", [(3, 4), (3, 2)], ("subscript 'j'", "operand 1", "(3, 2)")),
    ("i,i", [(0,), (2,)], ("subscript 'i'", "size 2", "size 0")),
    ("...i,...i", [(2, 3), (4, 3)], ("'...'", "operand 1", "(4, 3)")),
    ("ii", [(3, 4)], ("operand 0", "(3, 4)", "'i'", "3 != 4")),
    ("ii->i", [(2, 3)], ("operand 0", "(2, 3)", "'i'")),
    ("iij,j", [(1, 3, 2), (2,)], ("operand 0", "'i'", "1 != 3")),
])
def test_size_mismatch(equation, shapes, fragments):
    operands = [np.ones(s) for s in shapes]
    with raises(ValueError, *fragments):
        tcc.einsum(equation, *operands)
    numpy_raises(ValueError, lambda f: f(equation, *operands))


# ---- subscript syntax -------------------------------------------------------------------


@pytest.mark.parametrize("equation, fragments", [
    ("i1", ("'1'",)),
    ("i_", ("'_'",)),
    ("i j,k$", ("'$'",)),
    ("ij->i1", ("'1'",)),
    ("i.j", ("'.'", "'...'")),
    ("i-j", ("'-'",)),
    ("i>j", ("'>'",)),
    ("..i", ("'.'",)),
    ("ij->i.", ("'.'",)),
    ("......", ("more than one ellipsis",)),
    ("ij->i,j", ("','",)),
])
def test_invalid_characters(equation, fragments):
    with raises(ValueError, *fragments):
        tcc.einsum(equation, A)
    numpy_raises(ValueError, lambda f: f(equation, A))


def test_arrow_twice():
    with raises(ValueError, "'->'", "more than once"):
        tcc.einsum("ij->ij->ij", A)


def test_syntax_errors_come_before_operand_errors():
    with raises(ValueError, "'1'"):
        tcc.einsum("i1,jk", A)  # one operand short, but the syntax error wins, as in numpy


@pytest.mark.parametrize("equation, fragments", [
    ("ij->k", ("'k'", "never appeared")),
    ("ij->ii", ("'i'", "multiple times")),
    ("ij->jij", ("'j'", "multiple times")),
])
def test_bad_output_subscripts(equation, fragments):
    with raises(ValueError, *fragments):
        tcc.einsum(equation, A)
    numpy_raises(ValueError, lambda f: f(equation, A))


def test_output_without_ellipsis_for_broadcast_dims():
    operand = np.ones((2, 3, 4))
    with raises(ValueError, "'...'"):
        tcc.einsum("...ij->ij", operand)
    numpy_raises(ValueError, lambda f: f("...ij->ij", operand))


# ---- sublist form ------------------------------------------------------------------------


@pytest.mark.parametrize("args, builtin, fragments", [
    ((A, [0, "a"]), TypeError, ("'a'", "operand 0")),
    ((A, [0, 1.0]), TypeError, ("1.0",)),
    ((A, [0, True]), TypeError, ("True",)),
    ((A, 3), TypeError, ("sublist of operand 0",)),
    ((A, [0, 1], B, "jk"), TypeError, ("sublist of operand 1",)),
    ((A, [0, -1]), ValueError, ("-1", "negative")),
    ((A, [Ellipsis, 0, Ellipsis]), ValueError, ("more than one Ellipsis",)),
    ((A, [0, 1], [0, 0]), ValueError, ("'0'", "multiple times")),
    ((A, [0, 1], [2]), ValueError, ("'2'", "never appeared")),
    ((A, [0, 1], A, [1, 2]), ValueError, ("subscript '1'", "operand 1")),
    ((A, [0, 1, 2]), ValueError, ("operand 0", "(3, 4)")),
])
def test_sublist_errors(args, builtin, fragments):
    with raises(builtin, *fragments):
        tcc.einsum(*args)
    numpy_raises(builtin, lambda f: f(*args))


def test_sublist_type_error_is_a_syntax_error_too():
    assert issubclass(SubscriptTypeError, tcc.EinsumSyntaxError)
    assert issubclass(SubscriptTypeError, TypeError)


# ---- dtypes, casting, order --------------------------------------------------------------


@pytest.mark.parametrize("operand", [
    np.array([1, None], dtype=object),
    np.array(["a", "b"]),
    np.array([b"a", b"b"]),
    np.array(["2020-01-01", "2021-01-01"], dtype="datetime64[D]"),
    np.array([1, 2], dtype="timedelta64[s]"),
    np.array([1.0, 2.0], dtype=np.longdouble) if np.dtype(np.longdouble).itemsize > 8 else None,
], ids=["object", "str", "bytes", "datetime", "timedelta", "longdouble"])
def test_unsupported_operand_dtypes(operand):
    if operand is None:
        pytest.skip("longdouble is float64 here")
    with raises(TypeError, str(operand.dtype), "(2,)"):
        tcc.einsum("i", operand)


def test_unsupported_dtype_argument():
    with raises(TypeError, "object"):
        tcc.einsum("ij", A, dtype=object)
    with raises(TypeError, "float16"):  # message lists what is supported
        tcc.einsum("ij", A, dtype=np.dtype("U3"))


def test_unknown_dtype_name_is_a_tcc_error():
    with raises(TypeError, "blah"):
        tcc.einsum("ij", A, dtype="blah")


@pytest.mark.parametrize("kwargs, fragments", [
    ({"dtype": np.float32}, ("operand 0", "float64", "float32", "'safe'")),
    ({"dtype": np.int64, "casting": "same_kind"}, ("operand 0", "float64", "int64")),
    ({"casting": "no"}, ("operand 1", "int64", "'no'")),
])
def test_casting_violations(kwargs, fragments):
    operands = (A, np.ones((4, 5), np.int64))
    with raises(TypeError, *fragments):
        tcc.einsum("ij,jk", *operands, **kwargs)
    numpy_raises(TypeError, lambda f: f("ij,jk", *operands, **kwargs))


@pytest.mark.parametrize("kwargs, fragments", [
    ({"casting": "bogus"}, ("casting", "'bogus'")),
    ({"order": "X"}, ("order", "'X'")),
    ({"order": "CF"}, ("order", "'CF'")),
])
def test_bad_casting_and_order_values(kwargs, fragments):
    with raises(ValueError, *fragments):
        tcc.einsum("ij", A, **kwargs)
    numpy_raises(ValueError, lambda f: f("ij", A, **kwargs))


def test_casting_of_wrong_type():
    with raises(TypeError, "casting"):
        tcc.einsum("ij", A, casting=None)


# ---- out= ---------------------------------------------------------------------------------


def test_out_of_wrong_shape():
    out = np.empty((3, 4))
    with raises(ValueError, "out", "(3, 4)", "(3, 5)"):
        tcc.einsum("ij,jk", A, B, out=out)
    numpy_raises(ValueError, lambda f: f("ij,jk", A, B, out=out))


def test_out_of_wrong_dtype():
    out = np.empty((3, 5), np.float32)
    with raises(TypeError, "out", "float32", "float64", "'safe'"):
        tcc.einsum("ij,jk", A, B, out=out)
    numpy_raises(TypeError, lambda f: f("ij,jk", A, B, out=out))
    with raises(TypeError, "object"):
        tcc.einsum("ij,jk", A, B, out=np.empty((3, 5), object))


def test_read_only_out():
    out = np.empty((3, 5))
    out.flags.writeable = False
    with raises(ValueError, "out", "read-only"):
        tcc.einsum("ij,jk", A, B, out=out)
    numpy_raises(ValueError, lambda f: f("ij,jk", A, B, out=out))
    assert not out.flags.writeable


def test_out_that_is_not_an_array():
    numpy_raises(TypeError, lambda f: f("ij,jk", A, B, out=[0.0]))
    with raises(TypeError, "out", "list"):
        tcc.einsum("ij,jk", A, B, out=[0.0])


# ---- optimize= -----------------------------------------------------------------------------


@pytest.mark.parametrize("optimize, fragments", [
    ("bogus", ("'bogus'",)),
    (["einsum_path", (0, 5)], ("(0, 5)",)),
    (["einsum_path", (0, 0)], ("(0, 0)",)),
    (["einsum_path", "ab"], ("'ab'",)),
])
def test_bad_optimize_values(optimize, fragments):
    with raises(ValueError, *fragments):
        tcc.einsum("ij,jk,kl", A, B, C, optimize=optimize)


# ---- tcc.compile and Kernel calls -----------------------------------------------------------


def test_compile_errors():
    with raises(ValueError, "subscript 'j'", "operand 1"):
        tcc.compile("ij,jk->ik", (3, 4), (5, 5))
    with raises(TypeError, "object"):
        tcc.compile("ij,jk->ik", (3, 4), (4, 5), dtype=object)
    with raises(TypeError, "blah"):
        tcc.compile("ij,jk->ik", (3, 4), (4, 5), dtype="blah")
    with raises(ValueError, "3 dtypes", "2 operands"):
        tcc.compile("ij,jk->ik", (3, 4), (4, 5), dtype=["float64"] * 3)
    with raises(ValueError, "'1'"):
        tcc.compile("i1,jk->ik", (3, 4), (4, 5))
    with raises(ValueError, "subscripts"):
        tcc.compile(["ij"], (3, 4))


def test_kernel_call_errors():
    kernel = tcc.compile("ij,jk->ik", (3, 4), (4, 5))
    with raises(ValueError, "operand 0", "(2, 4)", "(3, 4)"):
        kernel(A[:2], B)
    with raises(TypeError, "operand 1", "float32", "float64"):
        kernel(A, B.astype(np.float32))
    with raises(ValueError, "2 operands", "got 1"):
        kernel(A)
    with raises(ValueError, "2 operands", "got 3"):
        kernel(A, B, B)
    with raises(ValueError, "out", "(3, 4)"):
        kernel(A, B, out=np.empty((3, 4)))


# ---- nothing crashes ------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ("i", None),
    ("i", [[1], [1, 2]]),
    ("i,i", np.ones(3), "abc"),
    (np.ones(3),),
    ("i", np.ones(3, dtype=">f8")),
], ids=["none", "ragged", "string-operand", "array-only", "big-endian"])
def test_odd_arguments_do_not_crash(args):
    try:
        tcc.einsum(*args)
    except tcc.TccError:
        pass
    except (ValueError, TypeError) as exc:  # numpy's own conversion errors (ragged lists)
        assert re.search("sequence|inhomogeneous|could not convert", str(exc)), exc

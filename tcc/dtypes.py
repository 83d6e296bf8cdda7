"""The dtypes tcc compiles for, and their mapping to numpy and to LLVM scalar kinds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcc.errors import DTypeError


@dataclass(frozen=True, slots=True)
class DType:
    """A scalar type as the compiler sees it.

    ``kind`` is one of ``bool``, ``int``, ``uint``, ``float``, ``complex``. A complex dtype is
    stored as two consecutive ``component`` scalars. ``compute`` names the dtype arithmetic
    runs in (float16 computes in float32 and rounds on store, as numpy's einsum does).
    """

    name: str
    kind: str
    itemsize: int
    component: str
    compute: str

    @property
    def is_complex(self) -> bool:
        return self.kind == "complex"

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def is_integer(self) -> bool:
        return self.kind in ("int", "uint")

    @property
    def bits(self) -> int:
        return self.itemsize * 8

    @property
    def numpy(self) -> np.dtype:
        return np.dtype(self.name)


def _make(name: str, kind: str, component: str | None = None, compute: str | None = None) -> DType:
    return DType(name, kind, np.dtype(name).itemsize, component or name, compute or name)


DTYPES: dict[str, DType] = {
    d.name: d
    for d in (
        _make("bool", "bool"),
        _make("int8", "int"),
        _make("int16", "int"),
        _make("int32", "int"),
        _make("int64", "int"),
        _make("uint8", "uint"),
        _make("uint16", "uint"),
        _make("uint32", "uint"),
        _make("uint64", "uint"),
        _make("float16", "float", compute="float32"),
        _make("float32", "float"),
        _make("float64", "float"),
        _make("complex64", "complex", component="float32"),
        _make("complex128", "complex", component="float64"),
    )
}


def dtype_of(value: object) -> DType:
    """The tcc dtype for a numpy dtype, a dtype name, a Python type or an array."""
    try:
        np_dtype = np.dtype(getattr(value, "dtype", value))  # type: ignore[arg-type]
    except TypeError as exc:
        raise DTypeError(f"not a dtype: {value!r}") from exc
    found = DTYPES.get(np_dtype.name)
    if found is None or np_dtype.byteorder == ">":
        supported = ", ".join(DTYPES)
        raise DTypeError(f"dtype {np_dtype} is not supported by tcc; supported: {supported}")
    return found


def zero_of(dtype: DType) -> complex | float | int | bool:
    return {"bool": False, "int": 0, "uint": 0, "float": 0.0, "complex": 0j}[dtype.kind]

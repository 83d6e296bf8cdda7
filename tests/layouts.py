"""Views with the same values as a contiguous array but other strides (test helper)."""

from __future__ import annotations

import numpy as np

LAYOUTS = ("contiguous", "fortran", "sliced", "negative", "transposed_view")


def as_layout(array: np.ndarray, layout: str) -> np.ndarray:
    """``array``'s values in the named memory layout (always a view of a fresh buffer)."""
    if layout == "contiguous" or array.ndim == 0:
        return np.array(array, order="C")  # np.ascontiguousarray makes 0-d arrays 1-d
    if layout == "fortran":
        return np.asfortranarray(array)
    if layout == "sliced":  # every other element of a buffer twice as large on every axis
        big = np.zeros(tuple(2 * s + 1 for s in array.shape), array.dtype)
        view = big[tuple(slice(1, None, 2) for _ in array.shape)]
        view[...] = array
        return view
    if layout == "negative":  # every axis reversed in memory
        flipped = np.ascontiguousarray(array[(slice(None, None, -1),) * array.ndim])
        return flipped[(slice(None, None, -1),) * array.ndim]
    if layout == "transposed_view":  # axes stored in reverse order, last axis reversed
        stored = np.ascontiguousarray(np.transpose(array)[::-1])
        return np.transpose(stored[::-1])
    raise ValueError(layout)


def check_same_values(view: np.ndarray, array: np.ndarray) -> None:
    assert view.shape == array.shape and view.dtype == array.dtype
    np.testing.assert_array_equal(view, array)

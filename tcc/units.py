"""Sizes written the way people write them: ``4096``, ``"64MB"``, ``"1.5GiB"``."""

from __future__ import annotations

import math
import re

from tcc.errors import OperandError

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20,
          "gib": 2**30, "tib": 2**40}


def parse_bytes(value: int | float | str, *, what: str = "size") -> int:
    """Bytes from an int, a whole float, or a string like ``"64MB"``, ``"1.5GiB"``."""
    if isinstance(value, bool):
        raise OperandError(f"{what} must be bytes or a string like '64MB', not {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise OperandError(f"{what} {value!r} is not a whole number of bytes")
        return int(value)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
    if not match or match.group(2).lower() not in _UNITS:
        raise OperandError(f"cannot read {what} {value!r}; expected e.g. 4096, '64MB', '1.5GiB' "
                           "(units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)")
    return math.floor(float(match.group(1)) * _UNITS[match.group(2).lower()])

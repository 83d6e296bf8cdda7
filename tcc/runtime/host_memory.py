"""Large host arrays from a small cache of freed blocks.

An output of tens of megabytes that numpy allocates afresh on every call comes from a new
``mmap`` (glibc maps every block above 32 MiB), so the kernel spends its first touch of
each page in a page fault that zeroes it: attention scores with a 64 MiB output ran at
114 GFLOP/s allocating per call and 190 GFLOP/s writing into a reused array. ``empty``
hands out arrays whose memory returns to this cache when the last array or view over it
is collected; the next request of the same size takes it back without faults.

The cache holds at most ``capacity`` bytes of blocks nobody uses (``TCC_HOST_CACHE_MB``;
default 1/8 of physical memory up to 2 GiB; 0 turns it off); ``cached_bytes`` says how
much it holds now, ``empty_cache`` gives it all back. Arrays below ``MIN_BYTES`` come
straight from numpy, whose allocator already reuses small blocks.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict

import numpy as np

MIN_BYTES = 8 << 20


def _default_capacity() -> int:
    text = os.environ.get("TCC_HOST_CACHE_MB")
    if text is not None:
        try:
            return max(int(text), 0) << 20
        except ValueError:
            pass
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        physical = 8 << 30
    return min(physical // 8, 2 << 30)


class _Block:
    """Owns one cached byte buffer while arrays over it live; gives it back when collected."""

    __slots__ = ("raw", "pool", "__array_interface__")

    def __init__(self, raw: np.ndarray, pool: HostPool, shape: tuple[int, ...],
                 dtype: np.dtype) -> None:
        self.raw = raw
        self.pool = pool
        self.__array_interface__ = {"shape": shape, "typestr": dtype.str, "version": 3,
                                    "data": (raw.ctypes.data, False),
                                    **({"descr": dtype.descr} if dtype.fields else {})}

    def __del__(self) -> None:
        try:
            self.pool.release(self.raw)
        except Exception:  # noqa: BLE001 (interpreter shutdown: nothing left to keep it for)
            pass


class HostPool:
    def __init__(self, capacity: int | None = None) -> None:
        self.capacity = _default_capacity() if capacity is None else capacity
        self.free: OrderedDict[int, list[np.ndarray]] = OrderedDict()
        self.cached_bytes = 0
        # re-entrant: the cyclic collector may free a block (and so call release) while
        # this thread is inside the lock
        self.lock = threading.RLock()

    def empty(self, shape: tuple[int, ...], dtype: object) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize  # the hot path of small calls: cheap
        if nbytes < MIN_BYTES or self.capacity <= 0:
            return np.empty(shape, dtype)
        shape = tuple(int(x) for x in shape)
        raw = None
        with self.lock:
            blocks = self.free.get(nbytes)
            if blocks:
                raw = blocks.pop()
                self.cached_bytes -= nbytes
                if not blocks:
                    del self.free[nbytes]
        if raw is None:
            raw = np.empty(nbytes, np.uint8)
        return np.asarray(_Block(raw, self, shape, dtype))

    def release(self, raw: np.ndarray) -> None:
        nbytes = raw.nbytes
        if nbytes > self.capacity:
            return
        with self.lock:
            self.free.setdefault(nbytes, []).append(raw)
            self.free.move_to_end(nbytes)
            self.cached_bytes += nbytes
            while self.cached_bytes > self.capacity:  # the sizes used longest ago go first
                size, blocks = next(iter(self.free.items()))
                blocks.pop(0)
                self.cached_bytes -= size
                if not blocks:
                    del self.free[size]

    def empty_cache(self) -> None:
        with self.lock:
            self.free.clear()
            self.cached_bytes = 0


POOL = HostPool()


def empty(shape: tuple[int, ...], dtype: object) -> np.ndarray:
    """Like ``numpy.empty``, with large arrays' memory reused from freed ones."""
    return POOL.empty(shape, dtype)


def cached_bytes() -> int:
    return POOL.cached_bytes


def empty_cache() -> None:
    POOL.empty_cache()

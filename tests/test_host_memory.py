"""The cache of large host arrays: reuse only once nothing refers to a block, bounded."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tcc
from tcc.runtime import host_memory
from tcc.runtime.host_memory import MIN_BYTES, HostPool

BIG = (MIN_BYTES // 8, 2)  # float32: exactly MIN_BYTES


def test_freed_block_is_reused_and_live_ones_never_are():
    pool = HostPool(capacity=64 << 20)
    first = pool.empty(BIG, np.float32)
    address = first.ctypes.data
    view = first[1:]
    del first
    assert pool.cached_bytes == 0  # the view still holds the block
    second = pool.empty(BIG, np.float32)
    assert second.ctypes.data != address
    del view
    assert pool.cached_bytes == MIN_BYTES
    third = pool.empty((2, MIN_BYTES // 16), np.float64)  # same bytes, another shape
    assert third.ctypes.data == address and pool.cached_bytes == 0
    assert third.shape == (2, MIN_BYTES // 16) and third.dtype == np.float64
    assert third.flags.c_contiguous and third.flags.writeable
    del second, third


def test_small_arrays_and_a_zero_capacity_bypass_the_cache():
    pool = HostPool(capacity=64 << 20)
    small = pool.empty((10, 3), np.int64)
    assert small.base is None and small.shape == (10, 3)
    off = HostPool(capacity=0)
    big = off.empty(BIG, np.float32)
    assert big.base is None
    del big
    assert off.cached_bytes == 0


def test_capacity_bounds_what_is_kept():
    pool = HostPool(capacity=2 * MIN_BYTES)
    arrays = [pool.empty(BIG, np.float32) for _ in range(4)]
    del arrays
    assert pool.cached_bytes == 2 * MIN_BYTES
    bigger = pool.empty((MIN_BYTES // 2, 2), np.float64)  # 4 x MIN_BYTES: over capacity
    del bigger
    assert pool.cached_bytes == 2 * MIN_BYTES
    pool.empty_cache()
    assert pool.cached_bytes == 0


def test_threads_allocating_and_freeing_at_once():
    pool = HostPool(capacity=8 * MIN_BYTES)
    errors = []

    def work(seed: int) -> None:
        for step in range(20):
            array = pool.empty(BIG, np.float32)
            array[:] = seed * 100 + step
            if not (array == seed * 100 + step).all():
                errors.append(seed)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and pool.cached_bytes <= pool.capacity


@pytest.mark.parametrize("order", ["C", "F", "K"])
def test_large_einsum_results_stay_intact_across_calls(order):
    # each call's result comes from the cache once the one before it is gone; a result
    # still held is never written by the next call
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 512, 16)).astype(np.float32)
    b = rng.standard_normal((4, 16, 1100)).astype(np.float32)  # an 8.6 MB result
    want = np.einsum("bik,bkj->bji", a, b)
    kept = tcc.einsum("bik,bkj->bji", a, b, order=order)
    for _ in range(3):
        again = tcc.einsum("bik,bkj->bji", a * 2, b, order=order)
        np.testing.assert_allclose(again, 2 * want, rtol=1e-4, atol=1e-4)
        owner = again
        while owner.base is not None and isinstance(owner.base, np.ndarray):
            owner = owner.base
        if host_memory.POOL.capacity:  # from the cache, back to it when freed
            assert type(owner.base).__name__ == "_Block"
        del again, owner
    np.testing.assert_allclose(kept, want, rtol=1e-4, atol=1e-4)
    if order == "F":
        assert kept.flags.f_contiguous
    kernel = tcc.compile("bik,bkj->bji", a.shape, b.shape, dtype="float32")
    first = kernel(a, b)
    second = kernel(a * 3, b)
    np.testing.assert_allclose(first, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(second, 3 * want, rtol=1e-4, atol=1e-4)
    assert host_memory.cached_bytes() <= host_memory.POOL.capacity

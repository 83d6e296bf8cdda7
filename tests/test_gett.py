"""GETT template: odd sizes, every stride pattern, batches, dtypes, threads, against numpy.

Small blocking parameters force every edge path (partial micro-tiles, partial cache blocks,
several K blocks, several N blocks) on small tensors.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import tcc
from tcc.options import default_options
from tcc.passes.schedule.blocking import GettParams, default_params, fit_params


def _lanes(dtype: str) -> int:
    from tcc.passes.pipeline import vector_bits
    from tcc.runtime.jit import host_target

    return vector_bits(host_target().features) // (8 * np.dtype(dtype).itemsize)


def small_params(dtype: str, threads: int = 1) -> GettParams:
    lanes = _lanes(dtype)
    return GettParams(mr=3, nr=lanes, kc=5, mc=6, nc=2 * lanes, lanes=lanes, threads=threads)


def run(eq, shapes, dtype="float64", threads=1, views=None, seed=0):
    rng = np.random.default_rng(seed)
    ops = [rng.standard_normal(s).astype(dtype) for s in shapes]
    if views:
        ops = [v(o) if v else o for v, o in zip(views, ops, strict=True)]
    options = default_options().with_(gett="always", gett_params=small_params(dtype, threads),
                                      num_threads=threads, verify=True)
    got = tcc.einsum(eq, *ops, options=options)
    want = np.einsum(eq, *[o.astype(np.float64) for o in ops])
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    return got


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (7, 17, 3), (17, 7, 13), (13, 40, 11)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gemm_odd_sizes(m, n, k, dtype):
    run("ik,kj->ij", [(m, k), (k, n)], dtype)


@pytest.mark.parametrize("eq", ["ik,kj->ij", "ki,kj->ij", "ik,jk->ij", "ki,jk->ij",
                                "ik,kj->ji", "kj,ik->ij"])
def test_every_transpose(eq):
    sizes = {"i": 11, "j": 19, "k": 9}
    terms = eq.split("->")[0].split(",")
    run(eq, [tuple(sizes[c] for c in t) for t in terms])


def test_strided_and_negative_views():
    views = [lambda a: a[::2, ::-1], lambda b: b.T[1:, :]]
    run("ik,kj->ij", [(22, 9), (15, 10)], views=views)


def test_multi_index_groups_use_tables():
    # M = (a, c), N = (d, f), K = (b, e): groups that are not mergeable in some tensors
    run("abce,bfde->acdf", [(3, 4, 5, 2), (4, 3, 6, 2)])
    run("abcd,aebf->dfce", [(3, 4, 5, 6), (3, 2, 4, 5)])


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_batched_attention_scores(threads):
    run("bhqd,bhkd->bhqk", [(2, 3, 7, 5), (2, 3, 9, 5)], "float32", threads=threads)


@pytest.mark.parametrize("threads", [2, 4])
def test_parallel_inner_blocks(threads):
    run("ik,kj->ij", [(40, 23), (23, 37)], threads=threads)


def test_broadcast_and_reduced_only_in_one_operand():
    # j is summed in A alone; a size-1 axis broadcasts
    run("ijk,kl->il", [(5, 3, 7), (7, 6)])
    run("ik,kj->ij", [(1, 7), (7, 9)])


def test_generated_kernel_uses_the_template():
    options = default_options().with_(gett="always", gett_params=small_params("float64"))
    kernel = tcc.compile("ik,kj->ij", (8, 8), (8, 8), options=options)
    text = kernel.ir()
    assert "allocate Bp" in text and "allocate Ap" in text and "broadcast" in text


def test_constant_factors_scale_the_result():
    from tcc.passes.schedule.gett import analyze

    prog = tcc.program("S[t,s] = sum_d Q[t,d] * K[s,d] * 0.125",
                       shapes=dict(t=20, s=30, d=16), dtype="float64")
    assert analyze(prog, prog.statements[0], {}).scale == 0.125
    options = default_options().with_(gett="always", gett_params=small_params("float64"))
    f = tcc.compile_program(prog, options)
    rng = np.random.default_rng(0)
    q, k = rng.standard_normal((20, 16)), rng.standard_normal((30, 16))
    np.testing.assert_allclose(f(Q=q, K=k)["S"], q @ k.T * 0.125, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integers_use_the_template(dtype):
    rng = np.random.default_rng(0)
    a = rng.integers(-50, 50, (13, 21)).astype(dtype)
    b = rng.integers(-50, 50, (21, 37)).astype(dtype)
    options = default_options().with_(gett="always", gett_params=small_params(dtype),
                                      verify=True)
    kernel = tcc.compile("ik,kj->ij", a.shape, b.shape, dtype=dtype, options=options)
    assert "allocate Bp" in kernel.ir()
    np.testing.assert_array_equal(kernel(a, b), np.einsum("ik,kj->ij", a, b))
    big = np.full((4, 3), np.iinfo(dtype).max // 2, dtype)
    wrapped = tcc.compile("ik,kj->ij", (4, 3), (3, 5), dtype=dtype, options=options)
    np.testing.assert_array_equal(wrapped(big, np.ones((3, 5), dtype)),
                                  np.einsum("ik,kj->ij", big, np.ones((3, 5), dtype)))


@pytest.mark.parametrize("order", ["ir", "jr"])
@pytest.mark.parametrize("prefetch", [0, 3])
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "int32"])
def test_tile_order_and_prefetch(order, prefetch, dtype):
    # both tile loop orders and panel prefetching, through every edge path, equal numpy
    lanes = _lanes("float32" if dtype == "complex64" else dtype)
    params = GettParams(mr=3, nr=lanes, kc=5, mc=6, nc=2 * lanes, lanes=lanes, threads=2,
                        order=order, prefetch=prefetch)
    rng = np.random.default_rng(7)
    for eq, shapes in (("ik,kj->ij", ((37, 29), (29, 51))),
                       ("abcd,aebf->dfce", ((5, 6, 7, 8), (5, 9, 6, 10)))):
        ops = [(rng.standard_normal(s) * 4).astype(dtype) for s in shapes]
        options = default_options().with_(gett="always", gett_params=params, verify=True)
        kernel = tcc.compile(eq, *shapes, dtype=dtype, options=options)
        want = np.einsum(eq, *ops)
        np.testing.assert_allclose(kernel(*ops), want, rtol=1e-4, atol=1e-3)
        streamed = "prefetch Bp[" if order == "ir" else "prefetch Ap["
        assert (streamed in kernel.ir()) == bool(prefetch)


def _equal_numpy_on_block_edges(params: GettParams, dtype: str, n_wide: int,
                                seed: int) -> dict[str, tcc.Kernel]:
    """Three contractions with edge tiles, several N and K blocks and batches, compiled
    with ``params`` (N of the GEMM ``n_wide``): each equals numpy. The kernels by
    equation."""
    rng = np.random.default_rng(seed)
    kernels = {}
    for eq, shapes in (("ik,kj->ij", ((13, 29), (29, n_wide))),
                       ("abcd,aebf->dfce", ((5, 6, 7, 8), (5, 9, 6, 10))),
                       ("bik,bkj->bij", ((3, 5, 11), (3, 11, 40)))):
        ops = [(rng.standard_normal(s) * 4).astype(dtype) for s in shapes]
        options = default_options().with_(gett="always", gett_params=params, verify=True)
        kernels[eq] = tcc.compile(eq, *shapes, dtype=dtype, options=options)
        tol = 1e-3 if dtype == "float32" else 1e-9
        np.testing.assert_allclose(kernels[eq](*ops), np.einsum(eq, *ops), rtol=tol, atol=tol)
    return kernels


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128", "int64"])
def test_threads_sharing_n_blocks(threads, dtype):
    # parallel "n": each thread runs whole N blocks (packing its own panels)
    lanes = _lanes("float64" if dtype == "complex128" else dtype)
    params = GettParams(mr=3, nr=lanes, kc=5, mc=6, nc=2 * lanes, lanes=lanes,
                        threads=threads, parallel="n")
    kernels = _equal_numpy_on_block_edges(params, dtype, 7 * lanes + 3, threads)

    def loops(eq: str, var: str) -> list[str]:
        text = kernels[eq].ir().splitlines()
        return [line for line in text if line.strip().startswith(f"for {var} ")]

    # four N blocks: enough for every thread
    assert all(line.endswith("# parallel") == (threads > 1) for line in loops("ik,kj->ij", "jc"))
    assert not any(line.endswith("# parallel") for line in loops("ik,kj->ij", "ic"))
    # two N blocks: three threads share M blocks instead
    both = loops("bik,bkj->bij", "jc") + loops("bik,bkj->bij", "ic")
    assert any(line.endswith("# parallel") for line in both) == (threads > 1)


@pytest.mark.parametrize("parallel", ["m", "n"])
@pytest.mark.parametrize("order", ["ir", "jr"])
@pytest.mark.parametrize("dtype", ["float32", "complex128"])
def test_a_packed_whole_per_k_block(parallel, order, dtype):
    # pack_a "whole": K blocks outermost, all of A's K block packed once (panels shared
    # out to the threads) and used by every N block
    lanes = _lanes("float64" if dtype == "complex128" else dtype)
    params = GettParams(mr=3, nr=lanes, kc=5, mc=6, nc=2 * lanes, lanes=lanes, threads=2,
                        order=order, prefetch=3, parallel=parallel, pack_a="whole")
    kernels = _equal_numpy_on_block_edges(params, dtype, 51, 11)
    text = [line.strip() for line in kernels["bik,bkj->bij"].ir().splitlines()]
    packs = [k for k, line in enumerate(text) if line.startswith("Ap[")]
    first_jc = min(k for k, line in enumerate(text) if line.startswith("for jc "))
    assert packs and packs[0] < first_jc  # packed before the N blocks
    copies = [line for line in text if line.startswith("Ap[") and not line.endswith("= 0.0")]
    assert len(copies) == 2  # the first K block, then the others


@pytest.mark.parametrize("order", ["ir", "jr"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_a_read_in_place(order, threads, dtype):
    # pack_a "none": the micro-kernel broadcasts A's elements from A itself (affine M and
    # K groups, M whole micro-panels); K and N edges, several K blocks, batches, views
    lanes = _lanes("float32" if dtype == "int32" else dtype)
    params = GettParams(mr=3, nr=lanes, kc=5, mc=6, nc=2 * lanes, lanes=lanes,
                        threads=threads, order=order, prefetch=2, pack_a="none")
    rng = np.random.default_rng(threads)
    options = default_options().with_(gett="always", gett_params=params, verify=True,
                                      num_threads=threads)
    for eq, shapes in (("ik,kj->ij", ((12, 29), (29, 2 * lanes + 5))),
                       ("bqd,bkd->bqk", ((5, 9, 13), (5, lanes + 3, 13))),
                       ("ki,kj->ij", ((11, 6), (11, 7)))):
        ops = [(rng.standard_normal(s) * 4).astype(dtype) for s in shapes]
        kernel = tcc.compile(eq, *shapes, dtype=dtype, options=options)
        np.testing.assert_allclose(kernel(*ops), np.einsum(eq, *ops), rtol=1e-4, atol=1e-3)
        text = kernel.ir()
        assert "Ap[" not in text and "Ap =" not in text  # nothing packed for A
        # strided views of the inputs are read in place too
        views = [np.repeat(o, 2, axis=-1)[..., ::2] for o in ops]
        np.testing.assert_allclose(kernel(*views), np.einsum(eq, *ops), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_row_micro_panels(dtype):
    # MR = 1: A's panels are one element wide even where A is unit-stride along M (a
    # random-blocking case found it: the one-lane copy was emitted as a masked vector load)
    lanes = _lanes(dtype)
    params = GettParams(mr=1, nr=lanes, kc=1, mc=1, nc=lanes, lanes=lanes)
    options = default_options().with_(gett="always", gett_params=params)
    a, b = np.arange(4.0).reshape(2, 2).astype(dtype), np.arange(6.0).reshape(2, 3).astype(dtype)
    got = tcc.einsum("ca,cb->ab", a, b, options=options)
    np.testing.assert_array_equal(got, np.einsum("ca,cb->ab", a, b))


def test_a_packed_where_it_cannot_be_read_in_place():
    # M not whole panels of 3 (13, 56 and 5 rows), or A's M and K groups interleaved
    # (offset tables): A is packed as usual
    lanes = _lanes("float64")
    params = GettParams(mr=3, nr=lanes, kc=5, mc=6, nc=2 * lanes, lanes=lanes,
                        pack_a="none")
    kernels = _equal_numpy_on_block_edges(params, "float64", 2 * lanes + 1, 4)
    rng = np.random.default_rng(5)
    shapes = ((4, 6, 5, 3), (4, 7, 5, 2))
    ops = [rng.standard_normal(s) for s in shapes]
    kernels["acbd"] = tcc.compile("acbd,aebf->dfce", *shapes, dtype="float64",
                                  options=default_options().with_(gett="always",
                                                                  gett_params=params))
    np.testing.assert_allclose(kernels["acbd"](*ops), np.einsum("acbd,aebf->dfce", *ops),
                               rtol=1e-10, atol=1e-10)
    for kernel in kernels.values():
        assert "Ap[" in kernel.ir()


def test_default_reads_a_in_place_for_batched_short_products(monkeypatch):
    from tcc.passes.schedule import blocking

    monkeypatch.setattr(blocking, "cache_sizes", lambda: (48 << 10, 2 << 20, 32 << 20))
    params = default_params("float32", 512, 2)
    scores = fit_params(params, 256, 256, 64, 64, a_in_place=True)  # attention scores
    assert scores.pack_a == "none" and 256 % scores.mr == 0 and scores.mr >= 4
    assert scores.mr * scores.nr // scores.lanes <= params.mr * params.nr // params.lanes
    assert fit_params(params, 256, 256, 64, 64).pack_a == "block"  # A's layout forbids it
    assert fit_params(params, 1024, 1024, 1, 1024, a_in_place=True).pack_a == "block"
    assert fit_params(params, 127, 256, 64, 64, a_in_place=True).pack_a == "block"  # prime M
    # order "ir" (long K): in place only at the full tile height
    long_k = fit_params(params, 256, 256, 64, 256, a_in_place=True)
    assert (long_k.order, long_k.pack_a, long_k.mr) == ("ir", "block", params.mr)
    tall = fit_params(params, 384, 256, 64, 256, a_in_place=True)
    assert (tall.order, tall.pack_a, tall.mr) == ("ir", "none", params.mr)
    text = tcc.compile("bhqd,bhkd->bhqk", (4, 2, 64, 64), (4, 2, 48, 64), dtype="float32",
                       options=default_options().with_(num_threads=2)).ir()
    assert "Ap[" not in text


def test_default_tile_order_keeps_a_short_b_panel_in_l1(monkeypatch):
    from tcc.passes.schedule import blocking

    monkeypatch.setattr(blocking, "cache_sizes", lambda: (48 << 10, 2 << 20, 32 << 20))
    params = default_params("float32", 512, 2)
    assert fit_params(params, 256, 256, 64, 64).order == "jr"  # attention: 64 x 64 x 4 B
    assert fit_params(params, 256, 256, 64, 128).order == "jr"  # 32 KiB of a 48 KiB L1
    assert fit_params(params, 2048, 2048, 1, 2048).order == "ir"  # K blocks of 256
    assert fit_params(params, 256, 256, 64, 64, itemsize=16).order == "ir"  # complex128


def test_default_blocking_shares_n_blocks_when_m_is_small(monkeypatch):
    from tcc.passes.schedule import blocking

    monkeypatch.setattr(blocking, "cache_sizes", lambda: (48 << 10, 2 << 20, 32 << 20))
    params = default_params("float32", 512, 2)
    skinny = fit_params(params, 144, 20736, 1, 144)  # 6-D: two M blocks of rows
    assert skinny.parallel == "n"
    blocks = -(-20736 // skinny.nc)
    assert blocks % 2 == 0 and skinny.nc % skinny.nr == 0  # equal shares
    assert fit_params(params, 1024, 1024, 1, 1024).parallel == "n"  # N >= M
    tall = fit_params(params, 4096, 1152, 1, 1024)
    assert tall.parallel == "m" and 1152 % tall.nc == 0  # equal N blocks
    assert fit_params(default_params("float32", 512, 1), 144, 20736, 1, 144).parallel == "m"
    assert fit_params(params, 144, 20736, 64, 144).parallel == "m"  # batches go parallel


def test_params_reject_unknown_choices():
    with pytest.raises(ValueError, match="pack_a"):
        GettParams(mr=3, nr=8, kc=5, mc=6, nc=16, lanes=8, pack_a="all")
    with pytest.raises(ValueError, match="parallel"):
        GettParams(mr=3, nr=8, kc=5, mc=6, nc=16, lanes=8, parallel="k")
    with pytest.raises(ValueError, match="order"):
        GettParams(mr=3, nr=8, kc=5, mc=6, nc=16, lanes=8, order="kj")
    with pytest.raises(ValueError, match="prefetch"):
        GettParams(mr=3, nr=8, kc=5, mc=6, nc=16, lanes=8, prefetch=-1)


@pytest.mark.parametrize("e", [4, 5, 8, 12, 20, 24, 40])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("wide", [False, True])
def test_output_contiguous_in_runs(e, dtype, wide):
    # C[d,f,c,e] is unit-stride along e only: the N group (f, e) is written in runs of e
    # columns: whole vectors where e is a multiple of the vector width, two masked vector
    # stores per vector (split at the run's end) where e is longer than a vector, through
    # the tile buffer in narrower vectors or elements where it is shorter
    lanes = _lanes(dtype)
    params = GettParams(mr=3, nr=3 * lanes if wide else lanes, kc=5, mc=6,
                        nc=6 * lanes if wide else 2 * lanes, lanes=lanes)
    rng = np.random.default_rng(e)
    x = rng.standard_normal((3, 4, 5, 6)).astype(dtype)
    y = rng.standard_normal((3, e, 4, 7)).astype(dtype)
    options = default_options().with_(gett="always", gett_params=params, verify=True)
    kernel = tcc.compile("abcd,aebf->dfce", x.shape, y.shape, dtype=dtype, options=options,
                         order="C")
    want = np.einsum("abcd,aebf->dfce", x.astype(np.float64), y.astype(np.float64))
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(kernel(x, y), want, rtol=tol, atol=tol)
    width = lanes
    while e % width:
        width //= 2
    stores = [line for line in kernel.ir().splitlines() if line.strip().startswith("out[")]
    vector_stores = [line for line in stores if "Ct[" in line and " : +" in line]
    masked = [line for line in stores if " lanes[" in line]
    assert bool(masked) == (width < lanes < e)
    if width == lanes:  # every vector lies in one run: straight from the registers
        assert any("acc0_0" in line for line in stores)
    elif e > lanes:  # from the registers, each vector split at the run's end
        assert all(line.endswith("= cv") for line in masked) and not vector_stores
        assert any(line.strip().startswith("cv: ") and "acc0_0" in line
                   for line in kernel.ir().splitlines())
    elif width >= 4:
        assert vector_stores and all(f" : +{width}]" in line for line in vector_stores)
    else:
        assert not vector_stores


def test_masked_run_updates_accumulate():
    # C += A B into runs of 20 columns with 16- and 8-lane vectors: the masked loads read
    # only C's own lanes on both sides of a run's end
    prog = tcc.program("C[d,f,c,e] = sum_{a,b} X[a,b,c,d] * Y[a,e,b,f]\n"
                       "C[d,f,c,e] += sum_{a,b} X[a,b,c,d] * Y[a,e,b,f] * 0.5",
                       shapes=dict(a=3, b=4, c=5, d=6, e=20, f=7), dtype="float32")
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 4, 5, 6)).astype("float32")
    y = rng.standard_normal((3, 20, 4, 7)).astype("float32")
    lanes = _lanes("float32")
    params = GettParams(mr=3, nr=lanes, kc=5, mc=6, nc=2 * lanes, lanes=lanes, threads=2)
    options = default_options().with_(gett="always", gett_params=params, verify=True)
    out = tcc.compile_program(prog, options)(X=x, Y=y)["C"]
    np.testing.assert_allclose(out, 1.5 * np.einsum("abcd,aebf->dfce", x, y),
                               rtol=1e-4, atol=1e-4)


def test_output_runs_with_default_blocking():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((9, 9, 20, 20)).astype("float32")
    y = rng.standard_normal((9, 24, 9, 20)).astype("float32")
    options = default_options().with_(gett="always", verify=True)
    got = tcc.einsum("abcd,aebf->dfce", x, y, options=options)
    np.testing.assert_allclose(got, np.einsum("abcd,aebf->dfce", x, y), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("eq,shapes", [
    ("ik,kj->ij", [(17, 13), (13, 23)]),
    ("ki,jk->ij", [(9, 7), (11, 9)]),
    ("abcd,aebf->dfce", [(3, 4, 5, 6), (3, 8, 4, 7)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 7, 5), (2, 3, 9, 5)]),
])
def test_complex_as_one_real_product(dtype, eq, shapes):
    # one real GETT on the interleaved views; B packed as 2 x 2 real blocks (odd kc and
    # the small blocking exercise the complex-column edges)
    rng = np.random.default_rng(3)
    ops = [(rng.standard_normal(s) + 1j * rng.standard_normal(s)).astype(dtype) for s in shapes]
    lanes = _lanes(np.dtype(dtype).type(0).real.dtype.name)
    for params in (None, GettParams(mr=3, nr=lanes, kc=5, mc=6, nc=2 * lanes, lanes=lanes)):
        options = default_options().with_(gett="always", gett_params=params, verify=True)
        kernel = tcc.compile(eq, *shapes, dtype=dtype, options=options)
        ir = kernel.ir()
        assert ir.count("allocate Bp") <= 2 and "allocate Cw" not in ir  # 2: pc = 0 peeled
        assert "= neg(" in ir  # the -bi of each 2 x 2 block
        tol = 1e-4 if dtype == "complex64" else 1e-10
        np.testing.assert_allclose(kernel(*ops), np.einsum(eq, *ops), rtol=tol, atol=tol)


def test_complex_strided_views_and_accumulation():
    rng = np.random.default_rng(4)
    a = (rng.standard_normal((20, 7)) + 1j * rng.standard_normal((20, 7)))[::2, ::-1]
    b = (rng.standard_normal((9, 7)) + 1j * rng.standard_normal((9, 7))).T
    options = default_options().with_(gett="always", verify=True)
    np.testing.assert_allclose(tcc.einsum("ik,kj->ij", a, b, options=options), a @ b,
                               rtol=1e-10, atol=1e-10)
    prog = tcc.program("C[i,j] = sum_k A[i,k] * B[k,j]\nC[i,j] += sum_k A[i,k] * B[k,j] * 0.5",
                       shapes=dict(i=10, k=7, j=9), dtype="complex128")
    out = tcc.compile_program(prog, options)(A=a, B=b)["C"]
    np.testing.assert_allclose(out, 1.5 * (a @ b), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("threads", [2, 3, 4])
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128", "int64"])
@pytest.mark.parametrize("eq,shapes", [
    ("ik,kj->ij", [(7, 171), (171, 9)]),
    ("abc,bda->dc", [(15, 13, 10), (13, 5, 15)]),
    ("bik,bkj->bij", [(2, 5, 170), (2, 170, 6)]),
])
def test_long_k_split_across_threads(threads, dtype, eq, shapes):
    # a small output and a long K: each thread takes a share of K into its own partial
    # output, then the partials are added (one parallel region instead of two per K block)
    rng = np.random.default_rng(5)
    ops = [rng.standard_normal(s) for s in shapes]
    if dtype.startswith("complex"):
        ops = [o + 1j * rng.standard_normal(o.shape) for o in ops]
    ops = [(10 * o).astype(dtype) for o in ops]
    lanes = _lanes("float64" if dtype == "complex128" else dtype)
    params = GettParams(mr=3, nr=lanes, kc=5, mc=6, nc=2 * lanes, lanes=lanes, threads=threads)
    options = default_options().with_(gett="always", gett_params=params, num_threads=threads,
                                      verify=True)
    kernel = tcc.compile(eq, *shapes, dtype=dtype, options=options)
    assert "allocate Cs" in kernel.ir() and "for kt in" in kernel.ir()
    want = np.einsum(eq, *ops)
    if dtype == "int64":
        np.testing.assert_array_equal(kernel(*ops), want)
    else:
        np.testing.assert_allclose(kernel(*ops), want, rtol=1e-4, atol=1e-3)


def test_long_k_split_accumulates_and_scales():
    prog = tcc.program("C[i,j] = sum_k A[i,k] * B[k,j]\nC[i,j] += sum_k A[i,k] * B[k,j] * 0.5",
                       shapes=dict(i=6, k=140, j=10), dtype="float64")
    params = GettParams(mr=3, nr=8, kc=5, mc=6, nc=16, lanes=8, threads=2)
    options = default_options().with_(gett="always", gett_params=params, num_threads=2,
                                      verify=True)
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((6, 140)), rng.standard_normal((140, 10))
    out = tcc.compile_program(prog, options)(A=a, B=b)["C"]
    np.testing.assert_allclose(out, 1.5 * (a @ b), rtol=1e-12, atol=1e-12)


def test_packed_panels_are_zero_past_the_edges():
    # the micro-kernel multiplies whole panels; lanes past M or N must hold zeros, not
    # stale bytes (freed int64 tables read as denormal floats stall every FMA)
    options = default_options().with_(gett="always", gett_params=small_params("float64"))
    text = tcc.compile("ik,kj->ij", (7, 9), (9, 11), options=options).ir()
    lines = text.splitlines()
    for name in ("Ap", "Bp"):
        fills = [k for k, line in enumerate(lines) if line.strip().startswith("for z in")
                 and lines[k + 1].strip().startswith(f"{name}[")]
        # a unit-stride operand is packed a vector per K step, lanes past the edge masked
        # off (masked lanes read zero); a strided one element by element, then zero-filled
        masked = [line for line in lines if line.strip().startswith(f"{name}[")
                  and " lanes[0:" in line]
        assert masked or fills
        assert all(lines[k + 1].strip().endswith("= 0.0") for k in fills)
    assert any(" lanes[0:" in line for line in lines)  # B (kj) is unit-stride along N


def test_accesses_carry_alias_scopes():
    # every load and store names its buffer's scope and the others as noalias: a store to C
    # then leaves the offset tables and packed panels alone (inside outlined parallel
    # bodies the arguments' noalias attributes are lost)
    options = default_options().with_(gett="always", gett_params=small_params("float32"))
    kernel = tcc.compile("abcd,aebf->dfce", (3, 4, 5, 6), (3, 20, 4, 7), dtype="float32",
                         options=options, order="C")
    text = kernel.llvm_ir()
    tagged = [line for line in text.splitlines() if "!alias.scope" in line]
    assert all("!noalias" in line for line in tagged)
    assert any("llvm.masked.store" in line for line in tagged)
    assert any(" = load i64" in line for line in tagged)  # the offset tables
    assert any('!"tcc.' in line and '.tab_out_' in line for line in text.splitlines())


def test_default_blocking_narrows_the_tile_when_it_pads_n_much_less():
    params = default_params("float32", 512, 2)
    lanes = params.lanes
    fitted = fit_params(params, 20736, 9 * lanes, 1, 144)  # 6-D with the K output layout
    assert (fitted.mr, fitted.nr) == (8, 3 * lanes)  # three tiles, none padded
    assert fit_params(params, 2048, 10 * lanes, 1, 512).nr == 2 * lanes
    wide = fit_params(params, 1024, 1000, 1, 1024)  # pads 24 columns: keep the widest
    assert (wide.mr, wide.nr) == (params.mr, params.nr)
    assert fitted.mr * fitted.nr // lanes <= params.mr * params.nr // lanes  # registers


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_b_panels_pack_by_unit_stride_runs(dtype):
    """B's N group is (n, p) with p unit-stride for a whole number of vectors but n far
    apart: panels pack run by run through the offset table, and the runs past N's edge
    (N = 5 runs: the last panel is part padding) read nothing."""
    lanes = _lanes(dtype)
    rng = np.random.default_rng(3)
    a = rng.standard_normal((30, 20)).astype(dtype)
    b = rng.standard_normal((5, 20, lanes)).astype(dtype)
    options = default_options().with_(gett="always")
    kernel = tcc.compile("mk,nkp->mnp", a.shape, b.shape, dtype=dtype, options=options)
    assert re.search(r"\bfor r\b", kernel.ir())  # the run-by-run packing
    np.testing.assert_allclose(kernel(a, b), np.einsum("mk,nkp->mnp", a, b), rtol=1e-4,
                               atol=1e-4)


# ---- B contiguous along K: panels packed by in-register transposes -------------------


@pytest.mark.parametrize("lanes", [4, 8, 16])
def test_transpose_lanes_transposes_a_block_of_vectors(lanes):
    from tcc.ir import loops as L
    from tcc.passes.schedule.gett_pack import transpose_lanes
    from tests.test_schedule_support import KernelRunner

    rows = [f"row{j}" for j in range(lanes)]
    body: list = [L.Declare(r, "float32", L.Load("x", L.Affine((), j * lanes), lanes), lanes)
                  for j, r in enumerate(rows)]
    body += transpose_lanes(rows, "float32", lanes)
    body += [L.Store("out", L.Affine((), t * lanes), L.Local(f"tr_{t}")) for t in range(lanes)]
    kernel = L.Kernel("transpose", (
        L.Buffer("x", "float32", "in", (lanes, lanes), (lanes, 1)),
        L.Buffer("out", "float32", "out", (lanes, lanes), (lanes, 1))), tuple(body))
    x = np.arange(lanes * lanes, dtype=np.float32).reshape(lanes, lanes)
    np.testing.assert_array_equal(KernelRunner(kernel, threads=1)(x), x.T)


def test_shuffle_prints_its_lanes():
    from tcc.ir import loops as L
    from tcc.ir.printer import format_scalar

    shuffle = L.Shuffle(L.Local("a"), L.Local("b"), (0, 4, 1, 5))
    assert format_scalar(shuffle) == "shuffle(a, b, [0,4,1,5])"


NT_CASES = [
    ("ik,jk->ij", (7, 37), (53, 37)),            # N and K not whole vectors
    ("ik,jk->ij", (33, 100), (70, 100)),
    ("bi,oi->bo", (8, 300), (96, 300)),           # a linear layer, x @ W.T
    ("bhqd,bhkd->bhqk", (2, 3, 20, 24), (2, 3, 45, 24)),  # attention scores
    ("bjk,ak->baj", (3, 17, 40), (19, 40)),       # N = (b, j), C contiguous in runs
]


@pytest.mark.parametrize("case", NT_CASES, ids=[c[0] for c in NT_CASES])
@pytest.mark.parametrize("blocking", ["default", "kc20-nr32", "kc16-3threads"])
def test_b_contiguous_along_k_packs_by_transposes(case, blocking):
    from tcc.passes.pipeline import vector_bits
    from tcc.runtime.jit import host_target

    eq, sa, sb = case
    # each dtype (16, 8, 16 and 8 lanes here) meets every case and every blocking
    kinds = ["float32", "float64", "int32", "int64"]
    dtype = kinds[(NT_CASES.index(case) + ["default", "kc20-nr32", "kc16-3threads"].index(
        blocking)) % len(kinds)]
    lanes = vector_bits(host_target().features) // (8 * np.dtype(dtype).itemsize)
    params = {
        "default": None,
        # KC not whole vectors: the last chunk of a K block stops at the block's end
        "kc20-nr32": GettParams(mr=3, nr=2 * lanes, kc=20, mc=6, nc=4 * lanes, lanes=lanes,
                                threads=2),
        "kc16-3threads": GettParams(mr=4, nr=lanes, kc=16, mc=8, nc=3 * lanes, lanes=lanes,
                                    threads=3, parallel="n"),
    }[blocking]
    options = default_options().with_(gett="always", gett_params=params, verify=True,
                                      num_threads=3 if blocking == "kc16-3threads" else 2)
    rng = np.random.default_rng(1)
    a, b = (rng.integers(-4, 5, size=s).astype(dtype) for s in (sa, sb))
    kernel = tcc.compile(eq, sa, sb, dtype=dtype, options=options)
    assert "shuffle(" in kernel.ir()
    np.testing.assert_array_equal(kernel(a, b), np.einsum(eq, a, b))


def test_short_m_gets_a_tile_that_pads_it_less():
    from tcc.passes.schedule.blocking import short_m_tile

    for dtype, lanes in (("float32", 16), ("float64", 8)):
        params = default_params(dtype, 512, 2)
        assert short_m_tile(params, 8, 4096) == (8, 3 * lanes)  # 6 rows would pad 8 to 12
        assert short_m_tile(params, 32, 4096) == (8, 3 * lanes)
        assert short_m_tile(params, 20, 4096) == (4, 4 * lanes)
        for m in (5, 12, 128, 1024):  # no tile pads these a tenth less
            assert short_m_tile(params, m, 4096) == (params.mr, params.nr)
        for m, n in ((8, 4096), (32, 4096), (20, 4096)):
            fitted = fit_params(params, m, n, 1, 1024, np.dtype(dtype).itemsize)
            assert fitted.mr * (fitted.nr // lanes) <= params.mr * (params.nr // lanes)


@pytest.mark.parametrize("eq,sa,sb,dtype", [
    ("bi,io->bo", (8, 300), (300, 96), "float64"),   # 8-row tile = 8 fp64 lanes
    ("bi,oi->bo", (8, 300), (96, 300), "float64"),
    ("ik,jk->ij", (50, 40), (10, 40), "float32"),    # narrow N: a 16-row tile = 16 lanes
])
def test_a_contiguous_along_k_packs_by_transposes_when_mr_is_whole_vectors(eq, sa, sb, dtype):
    rng = np.random.default_rng(2)
    a, b = (rng.integers(-4, 5, size=s).astype(dtype) for s in (sa, sb))
    options = default_options().with_(gett="always", verify=True, num_threads=2)
    kernel = tcc.compile(eq, sa, sb, dtype=dtype, options=options)
    assert re.search(r"Ap\[[^\]]*\] = tr_", kernel.ir())  # A's panels stored from transposes
    np.testing.assert_array_equal(kernel(a, b), np.einsum(eq, a, b))

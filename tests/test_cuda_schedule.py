"""GPU schedules checked without a GPU: a lockstep SIMT emulator runs each scheduled kernel
(every thread of a block at once, as numpy vectors; a barrier needs no work in lockstep)
on the shared corpus and compares with ``numpy.einsum``. This checks the schedule (thread
bindings, guards, shared tiles, register tiles, grid-stride loops), not the PTX renderer;
the GPU tests in test_cuda_runtime.py check that."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from corpus import CORPUS, tolerance
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_einsum_hypothesis import einsums

from tcc.errors import TccError
from tcc.frontend.einsum_program import einsum_program
from tcc.ir import loops as L
from tcc.ir import program as P
from tcc.passes.paths import choose_path
from tcc.passes.schedule import gpu as G
from tcc.plan import parse_operands as _parse

_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
           "max": np.maximum, "min": np.minimum, "pow": np.power}
_COMPARE = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
            "eq": np.equal, "ne": np.not_equal}
_UNARY = {"neg": np.negative, "abs": np.abs, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
          "tanh": np.tanh, "relu": lambda x: np.maximum(x, 0),
          "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "conj": np.conj}


class _Block:
    """One block of ``threads`` threads run in lockstep; values are arrays over threads."""

    def __init__(self, buffers: dict[str, np.ndarray], variables: dict, threads: int,
                 shared: tuple[str, ...]) -> None:
        self.buffers = dict(buffers)
        self.vars = dict(variables)
        self.threads = threads
        self.locals: dict[str, np.ndarray] = {}
        self.shared = shared

    def affine(self, a: L.Affine) -> np.ndarray:
        total = np.full(self.threads, a.const, np.int64)
        for var, coef in a.terms:
            total = total + coef * np.asarray(self.vars[var], np.int64)
        return total

    def scalar(self, e: L.Scalar, mask: np.ndarray) -> np.ndarray:
        if isinstance(e, L.Load):
            index = np.where(mask, self.affine(e.index), 0)
            buffer = self.buffers[e.buffer]
            safe = np.where((index >= 0) & (index < buffer.size), index, 0)
            assert not np.any(mask & (index != safe)), f"out-of-bounds load of {e.buffer}"
            return buffer[safe]
        if isinstance(e, L.Const):
            return np.full(self.threads, e.value, np.dtype(e.dtype))
        if isinstance(e, L.Local):
            return self.locals[e.name]
        if isinstance(e, L.Binary):
            left, right = self.scalar(e.left, mask), self.scalar(e.right, mask)
            with np.errstate(all="ignore"):
                if e.op in _COMPARE:
                    return _COMPARE[e.op](left, right)
                return _BINARY[e.op](left, right).astype(left.dtype)
        if isinstance(e, L.Unary):
            with np.errstate(all="ignore"):
                return _UNARY[e.op](self.scalar(e.operand, mask))
        if isinstance(e, L.Cast):
            return self.scalar(e.operand, mask).astype(np.dtype(e.dtype))
        if isinstance(e, L.Select):
            return np.where(self.scalar(e.condition, mask), self.scalar(e.if_true, mask),
                            self.scalar(e.if_false, mask))
        raise TypeError(e)

    def mma(self, stmt, mask: np.ndarray) -> None:
        """Each warp's m16n8k8 product from its lanes' fragments (``gpu_ir.Mma``), on
        inputs rounded to tf32 as the tensor cores round them."""
        def tf32(x: np.ndarray) -> np.ndarray:
            bits = x.astype(np.float32).view(np.uint32)
            return ((bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)

        lane = np.arange(32)
        g, t = lane // 4, lane % 4
        warps = self.threads // 32
        a = [tf32(self.scalar(x, mask)).reshape(warps, 32) for x in stmt.a]
        b = [tf32(self.scalar(x, mask)).reshape(warps, 32) for x in stmt.b]
        c = [self.locals[name].reshape(warps, 32) for name in stmt.acc]
        A, B, C = np.zeros((warps, 16, 8)), np.zeros((warps, 8, 8)), np.zeros((warps, 16, 8))
        for value, rows, cols in ((a[0], g, t), (a[1], g + 8, t), (a[2], g, t + 4),
                                  (a[3], g + 8, t + 4)):
            A[:, rows, cols] = value
        B[:, t, g], B[:, t + 4, g] = b
        spots = ((g, 2 * t), (g, 2 * t + 1), (g + 8, 2 * t), (g + 8, 2 * t + 1))
        for value, (rows, cols) in zip(c, spots, strict=True):
            C[:, rows, cols] = value
        D = A @ B + C
        for name, (rows, cols) in zip(stmt.acc, spots, strict=True):
            self.locals[name] = D[:, rows, cols].reshape(-1).astype(np.float32)

    def run(self, body, mask: np.ndarray) -> None:
        for stmt in body:
            if not mask.any():
                return
            self.statement(stmt, mask)

    def statement(self, stmt, mask: np.ndarray) -> None:
        if isinstance(stmt, G.Barrier):
            assert mask.all(), "a barrier under divergent control flow"
        elif isinstance(stmt, G.AtomicAdd):
            index = self.affine(stmt.index)[mask]
            np.add.at(self.buffers[stmt.buffer], index, self.scalar(stmt.value, mask)[mask])
        elif isinstance(stmt, G.Mma):
            assert mask.all(), "a tensor-core product under divergent control flow"
            self.mma(stmt, mask)
        elif isinstance(stmt, G.IndexOf):
            value = self.affine(stmt.source) // stmt.divisor
            self.vars[stmt.var] = value if stmt.extent is None else value % stmt.extent
        elif isinstance(stmt, G.WarpReduce):
            assert mask.all(), "a warp shuffle under divergent control flow"
            groups = self.locals[stmt.name].reshape(-1, stmt.lanes)
            total = _BINARY[stmt.op].reduce(groups, axis=1).astype(groups.dtype)
            self.locals[stmt.name] = np.repeat(total, stmt.lanes)
        elif isinstance(stmt, L.For):
            trips = np.full(self.threads, stmt.extent, np.int64)
            if stmt.bound is not None:
                bound = self.affine(stmt.bound)
                trips = np.minimum(trips, np.maximum(-(-bound // stmt.bound_step), 0))
            for k in range(int(trips[mask].max(initial=0))):
                self.vars[stmt.var] = k
                self.run(stmt.body, mask & (k < trips))
            self.vars.pop(stmt.var, None)
        elif isinstance(stmt, L.Allocate):
            assert stmt.name in self.shared, "only shared buffers are expected"
            self.buffers[stmt.name] = np.zeros(stmt.size, np.dtype(stmt.dtype))
            self.run(stmt.body, mask)
        elif isinstance(stmt, L.Store):
            index = self.affine(stmt.index)[mask]
            value = self.scalar(stmt.value, mask)[mask]
            buffer = self.buffers[stmt.buffer]
            assert np.all((index >= 0) & (index < buffer.size)), f"bad store {stmt.buffer}"
            assert len(set(index.tolist())) == len(index), f"racing stores to {stmt.buffer}"
            buffer[index] = value
        elif isinstance(stmt, L.Declare | L.Assign):
            value = self.scalar(stmt.init if isinstance(stmt, L.Declare) else stmt.value, mask)
            old = self.locals.get(stmt.name, np.zeros_like(value))
            self.locals[stmt.name] = np.where(mask, value, old.astype(value.dtype))
        else:
            raise TypeError(stmt)


def emulate(gpu: G.GpuKernel, buffers: dict[str, np.ndarray]) -> None:
    """Run every block of ``gpu`` on flat numpy ``buffers`` (written in place)."""
    for name in gpu.zeroed:
        buffers[name][...] = 0
    sched = gpu.schedule
    bx, by, bz = sched.block
    threads = bx * by * bz
    tz, ty, tx = (a.ravel() for a in np.meshgrid(range(bz), range(by), range(bx), indexing="ij"))
    for z, y, x in itertools.product(*(range(g) for g in reversed(sched.grid))):
        variables = {"threadIdx.x": tx, "threadIdx.y": ty, "threadIdx.z": tz,
                     "blockIdx.x": x, "blockIdx.y": y, "blockIdx.z": z}
        block = _Block(buffers, variables, threads, sched.shared)
        block.run(gpu.kernel.body, np.ones(threads, bool))


def run_program(program, arrays: list[np.ndarray], layouts=None, tiled: str = "auto",
                precision: str = "exact"):
    """Every kernel in order on flat copies of ``arrays`` (C order unless ``layouts``)."""
    buffers = {}
    for k, array in enumerate(arrays):
        base = array if array.base is None else array.base
        buffers[f"in{k}"] = np.ascontiguousarray(base).ravel()
    for tensor in program.tensors:
        if tensor.name not in buffers:
            buffers[tensor.name] = np.zeros(max(int(np.prod(tensor.shape)), 1), tensor.dtype)
    for gpu in G.gpu_kernels(program, layouts, tiled=tiled, precision=precision):
        emulate(gpu, buffers)
    out = program.tensor("out")
    return buffers["out"][: int(np.prod(out.shape))].reshape(out.shape)


def program_for(equation: str, arrays: list[np.ndarray], dtype: str, optimize="auto"):
    parsed, checked = _parse(equation, tuple(arrays))
    choice = choose_path(parsed, optimize, None)
    return einsum_program(parsed, [a.shape for a in checked], [a.dtype.name for a in checked],
                          dtype, dtype, choice.path if choice else None)


@pytest.mark.parametrize("tiled", ["never", "always"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_corpus_emulated(dtype: str, tiled: str) -> None:
    rng = np.random.default_rng(1)
    for case in CORPUS:
        arrays = case.operands(rng, dtype)
        program = program_for(case.equation, arrays, dtype)
        result = run_program(program, arrays, tiled=tiled)
        np.testing.assert_allclose(result, case.reference(arrays), **tolerance(dtype),
                                   err_msg=f"{case.name}: {case.equation}")


def test_corpus_emulated_on_tensor_cores() -> None:
    """Every float32 corpus case with tf32 allowed: pairwise contractions take the
    tensor-core template, everything else its usual schedule."""
    rng = np.random.default_rng(11)
    used = 0
    for case in CORPUS:
        arrays = case.operands(rng, "float32")
        program = program_for(case.equation, arrays, "float32")
        used += any(k.schedule.template == "mma" for k in
                    G.gpu_kernels(program, tiled="always", precision="tf32"))
        result = run_program(program, arrays, tiled="always", precision="tf32")
        expected = case.reference([a.astype(np.float64) for a in arrays])
        error = np.linalg.norm(result - expected) / max(np.linalg.norm(expected), 1e-30)
        assert error < 3e-3, f"{case.name}: {case.equation}: {error}"
    assert used >= 10


@pytest.mark.parametrize("m,n,k", [(2, 3, 2), (17, 33, 5), (70, 65, 40), (64, 64, 16),
                                   (130, 200, 48), (256, 128, 64)])
def test_tiled_gemm_odd_sizes(m: int, n: int, k: int) -> None:
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    program = program_for("ik,kj->ij", [a, b], "float64")
    gpu = G.gpu_kernels(program, tiled="always")[0]
    assert gpu.schedule.template == "tiled" and gpu.schedule.shared == ("As", "Bs")
    np.testing.assert_allclose(run_program(program, [a, b], tiled="always"), a @ b, rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64"])
def test_full_register_tiles_at_ragged_edges(dtype: str, monkeypatch) -> None:
    from tcc.passes.schedule import gpu_tiled

    monkeypatch.setattr(gpu_tiled, "TILED_MIN_BLOCKS", 1)  # keep 128-row tiles on a small problem
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((200, 40)), rng.standard_normal((40, 150))
    if dtype == "complex64":
        a, b = a + 1j * rng.standard_normal(a.shape), b - 1j * rng.standard_normal(b.shape)
    a, b = a.astype(dtype), b.astype(dtype)
    program = program_for("ik,kj->ij", [a, b], dtype)
    tiles = dict(G.gpu_kernels(program)[0].schedule.tiles)
    assert tiles["bm"] == 128 and tiles["tm"] == 8
    np.testing.assert_allclose(run_program(program, [a, b]), a @ b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("equation,shapes", [
    ("kb,kja->jba", [(5, 3), (5, 9, 7)]),  # transposed operands, batch in z
    ("abcd,dbef->aecf", [(3, 4, 5, 6), (6, 4, 3, 2)]),  # permuted 4-D
    ("abcdef,cdgh->abghef", [(2, 3, 4, 2, 2, 3), (4, 2, 3, 5)]),  # 6-D
])
@pytest.mark.parametrize("tiled", ["never", "always"])
def test_permuted_contractions(equation: str, shapes, tiled: str) -> None:
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s).astype("float32") for s in shapes]
    program = program_for(equation, arrays, "float32", optimize=False)
    np.testing.assert_allclose(run_program(program, arrays, tiled=tiled),
                               np.einsum(equation, *arrays), rtol=2e-4, atol=2e-5)


def test_groups_flatten_into_one_gemm() -> None:
    rng = np.random.default_rng(7)
    equation = "abcdef,cdgh->abghef"  # M = (a, b, e, f), N = (g, h), K = (c, d)
    arrays = [rng.standard_normal(s) for s in [(2, 3, 4, 2, 2, 3), (4, 2, 3, 5)]]
    program = program_for(equation, arrays, "float64", optimize=False)
    gpu = G.gpu_kernels(program, tiled="always")[0]
    assert sorted(dict(gpu.schedule.bindings)) == ["a_b_e_f", "g_h"]  # one each on x and y
    text = G.format_gpu_kernel(gpu)
    assert "a.Bs.row0 = (" in text and "% 3" in text  # digits of a flattened row
    assert "As.row0" not in text  # (g, h) is one run of in1: no digits
    np.testing.assert_allclose(run_program(program, arrays, tiled="always"),
                               np.einsum(equation, *arrays), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("z_limit,serial", [(65535, 0), (5, 2)])
def test_batch_group_on_blockIdx_z(z_limit: int, serial: int, monkeypatch) -> None:
    monkeypatch.setitem(G.GRID_LIMITS, "z", z_limit)
    rng = np.random.default_rng(8)
    equation = "xyij,xyjk->xyik"
    arrays = [rng.standard_normal(s) for s in [(2, 3, 5, 4), (2, 3, 4, 6)]]
    program = program_for(equation, arrays, "float64", optimize=False)
    gpu = G.gpu_kernels(program, tiled="always")[0]
    assert gpu.schedule.grid[2] == (6 if not serial else 3)
    assert G.format_gpu_kernel(gpu).count("for a in 0..2") == (serial > 0)
    np.testing.assert_allclose(run_program(program, arrays, tiled="always"),
                               np.einsum(equation, *arrays), rtol=1e-12, atol=1e-12)


def test_constant_factor_scales_the_tiled_product() -> None:
    m, k, n = 70, 40, 65
    product = P.Binary("mul", P.Read("in0", ("i", "k")), P.Read("in1", ("k", "j")))
    stmt = P.Statement("out", ("i", "j"), "sum",
                       P.Binary("mul", P.Constant(2.0, "float64"), product), "float64")
    program = P.Program(
        (P.Tensor("in0", (m, k), "float64"), P.Tensor("in1", (k, n), "float64"),
         P.Tensor("out", (m, n), "float64")), ("in0", "in1"), ("out",), (stmt,),
        (("i", m), ("k", k), ("j", n)))
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    assert G.gpu_kernels(program, tiled="always")[0].schedule.template == "tiled"
    np.testing.assert_allclose(run_program(program, [a, b], tiled="always"), 2 * a @ b,
                               rtol=1e-12, atol=1e-12)


def test_strided_inputs_via_layouts() -> None:
    rng = np.random.default_rng(4)
    base_a, base_b = rng.standard_normal((20, 30)), rng.standard_normal((40, 20))
    a, b = base_a.T, base_b.T  # (30, 20) and (20, 40), column-major views
    program = program_for("ik,kj->ij", [a, b], "float64")
    layouts = {"in0": (1, 30), "in1": (1, 20)}
    for tiled in ("never", "always"):
        np.testing.assert_allclose(run_program(program, [a, b], layouts, tiled), a @ b,
                                   rtol=1e-12)


def test_grid_stride_loop_when_the_grid_is_too_small(monkeypatch) -> None:
    monkeypatch.setitem(G.GRID_LIMITS, "x", 2)
    rng = np.random.default_rng(5)
    a = rng.standard_normal((3, 3000))
    program = program_for("ij->ij", [a], "float64")
    gpu = G.gpu_kernels(program)[0]
    assert gpu.schedule.grid[0] == 2
    assert "b.pass" in G.format_gpu_kernel(gpu)
    np.testing.assert_allclose(run_program(program, [a]), a)


def test_schedule_is_plain_data() -> None:
    a = np.ones((128, 96), np.float32)
    b = np.ones((96, 80), np.float32)
    gpu = G.gpu_kernels(program_for("ik,kj->ij", [a, b], "float32"))[0]
    data = gpu.schedule.to_json()
    # 128 x 128 tiles would make one block: shrunk to 32 x 64 for the SMs' sake, with
    # 8 x 8 threads
    assert data["template"] == "tiled" and data["block"] == [8, 8, 1]
    assert data["grid"] == [2, 4, 1]
    assert data["tiles"] == {"bm": 32, "bn": 64, "bk": 16, "tm": 4, "tn": 8}
    assert dict(gpu.schedule.bindings) == {"c": "x", "a": "y"}
    text = G.format_gpu_kernel(gpu)
    assert "allocate shared As" in text and "barrier" in text


@pytest.mark.parametrize("equation,shapes", [
    ("ij->i", [(37, 300)]),  # rows of a block past the end: guarded
    ("ij,ij,ij->i", [(9, 65)] * 3),  # a fused elementwise product, reduced
    ("ij,j->i", [(5, 3), (3,)]),  # 4 lanes: a block smaller than a warp
    ("abij,bj->ai", [(3, 4, 5, 70), (4, 70)]),  # serial reduction, blockIdx.y output
    ("abcj->abc", [(2, 3, 4, 40)]),  # a serial output loop around the block
    ("ij->", [(3, 100)]),  # everything into one element
])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_warp_reduction_schedule(equation: str, shapes, dtype: str) -> None:
    rng = np.random.default_rng(6)
    arrays = [(rng.standard_normal(s) * 10).astype(dtype) for s in shapes]
    program = program_for(equation, arrays, dtype)
    (gpu,) = G.gpu_kernels(program)
    assert gpu.schedule.template == "reduce", G.format_gpu_kernel(gpu)
    np.testing.assert_allclose(run_program(program, arrays), np.einsum(equation, *arrays),
                               **tolerance(dtype))


@pytest.mark.parametrize("reduce,numpy_op", [("max", np.max), ("min", np.min)])
def test_warp_reduction_of_max_and_min(reduce: str, numpy_op) -> None:
    from tcc.ir import program as P

    x = np.random.default_rng(7).standard_normal((20, 50)).astype(np.float32)
    program = P.Program(
        tensors=(P.Tensor("in0", (20, 50), "float32"), P.Tensor("out", (20,), "float32")),
        inputs=("in0",), outputs=("out",),
        statements=(P.Statement("out", ("i",), reduce, P.Read("in0", ("i", "j")), "float32"),),
        index_sizes=(("i", 20), ("j", 50)))
    (gpu,) = G.gpu_kernels(program)
    assert gpu.schedule.template == "reduce"
    assert f"warp_reduce acc ({reduce}) over 32 lanes" in G.format_gpu_kernel(gpu)
    np.testing.assert_allclose(run_program(program, [x]), numpy_op(x, axis=1))


def test_warp_reduction_printed() -> None:
    x = np.ones((100, 300), np.float32)
    (gpu,) = G.gpu_kernels(program_for("ij->i", [x], "float32"))
    assert G.format_gpu_kernel(gpu).splitlines()[1:] == [
        "  # reduce: grid (13, 1, 1), block (32, 8, 1), bindings {'a': 'x'}",
        "  acc: float32 = 0.0",
        "  for a.guard in 0..1 while < (-8*blockIdx.x - 1*threadIdx.y + 100):",
        "    for b.pass in 0..10:",
        "      for b.guard in 0..1 while < (-32*b.pass - 1*threadIdx.x + 300):",
        "        acc = (acc +~ in0[32*b.pass + 2400*blockIdx.x + threadIdx.x + 300*threadIdx.y])",
        "  warp_reduce acc (add) over 32 lanes",
        "  for lane0 in 0..1 while < (-1*threadIdx.x + 1):",
        "    for a.guard in 0..1 while < (-8*blockIdx.x - 1*threadIdx.y + 100):",
        "      out[8*blockIdx.x + threadIdx.y] = acc",
    ]


def test_columns_keep_the_loop_schedule() -> None:
    x = np.ones((100, 300), np.float32)
    (gpu,) = G.gpu_kernels(program_for("ij->j", [x], "float32"))
    assert gpu.schedule.template == "loops"


@pytest.mark.parametrize("equation,shapes", [
    ("abcde->edcba", [(2, 3, 4, 5, 6)]),
    ("abcd,cd->abdc", [(3, 4, 5, 6), (5, 6)]),
])
def test_outer_output_loops_flattened_on_z(equation: str, shapes) -> None:
    rng = np.random.default_rng(8)
    arrays = [rng.standard_normal(s) for s in shapes]
    program = program_for(equation, arrays, "float64")
    (gpu,) = G.gpu_kernels(program, tiled="never")
    assert gpu.schedule.template == "loops" and gpu.schedule.bindings[-1][1] == "z"
    threads = np.prod(gpu.schedule.grid) * gpu.schedule.threads
    assert threads >= np.prod(shapes[0])  # every output element its thread: no serial loop
    np.testing.assert_allclose(run_program(program, arrays, tiled="never"),
                               np.einsum(equation, *arrays))


@pytest.mark.parametrize("equation,shapes", [
    ("ik,kj->ij", [(130, 70), (70, 136)]),  # ragged M, N and K tiles
    ("ki,jk->ij", [(40, 129), (8, 40)]),  # A and B read along M and N
    ("abcd,dbef->aecf", [(3, 4, 5, 6), (6, 4, 3, 2)]),  # permuted 4-D: flattened groups
    ("bij,bjk->bik", [(3, 20, 9), (3, 9, 17)]),  # batch on blockIdx.z
])
def test_tensor_core_schedule_emulated(equation: str, shapes) -> None:
    rng = np.random.default_rng(9)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    program = program_for(equation, arrays, "float32", optimize=False)
    (gpu,) = G.gpu_kernels(program, tiled="always", precision="tf32")
    assert gpu.schedule.template == "mma" and gpu.schedule.block == (32, 4, 2)
    expected = np.einsum(equation, *[a.astype(np.float64) for a in arrays])
    result = run_program(program, arrays, tiled="always", precision="tf32")
    error = np.linalg.norm(result - expected) / np.linalg.norm(expected)
    assert error < 2e-3, error  # tf32 inputs: about 3e-4 expected


def test_exact_precision_never_uses_tensor_cores() -> None:
    a = np.ones((256, 256), np.float32)
    program = program_for("ik,kj->ij", [a, a], "float32")
    assert G.gpu_kernels(program)[0].schedule.template == "tiled"
    assert G.gpu_kernels(program, precision="tf32")[0].schedule.template == "mma"
    with pytest.raises(Exception, match="precision must be one of"):
        G.gpu_kernels(program, precision="bf16")


@pytest.mark.parametrize("dtype,tiles", [("float32", (128, 128, 8, 8)),
                                         ("float64", (128, 64, 8, 4)),
                                         ("complex128", (64, 64, 4, 4))])
def test_register_tile_per_dtype(dtype: str, tiles) -> None:
    a, b = np.ones((2048, 32), dtype), np.ones((32, 2048), dtype)
    gpu = G.gpu_kernels(program_for("ik,kj->ij", [a, b], dtype))[0]
    data = gpu.schedule.to_json()["tiles"]
    assert (data["bm"], data["bn"], data["tm"], data["tn"]) == tiles
    text = G.format_gpu_kernel(gpu)
    # the sizes divide into whole tiles: no guards but the one skipping the last prefetch
    assert text.count("while <") == 1 and "k.next" in text
    # a thread's rows and columns come in runs of 4 (128-bit shared loads), 64 apart
    if tiles[2] == 8:
        assert "As[132*k.step + 4*threadIdx.y + 64]" in text


def training_step(seed: int):
    """An MLP's loss and gradients as a program, random inputs, and the CPU's results."""
    import tcc

    prog = tcc.program("""
        H[b,h] = relu(sum_i X[b,i] * W1[h,i])
        Y[b,o] = sum_h H[b,h] * W2[o,h]
        L[]    = sum_{b,o} (Y[b,o] - T[b,o])^2
    """, shapes=dict(b=24, i=20, h=18, o=6), dtype="float64")
    step = tcc.grad(prog, of="L", wrt=["W1", "W2"])
    rng = np.random.default_rng(seed)
    inputs = {n: rng.standard_normal(step.tensor(n).shape) for n in step.inputs}
    return step, inputs, tcc.compile(step)(inputs)


def run_planned(prog, inputs: dict, budget=None, tiled: str = "auto") -> dict:
    """A whole program as the GPU runs it (``CudaProgram`` with an execution plan): each
    step's kernels on its tensors, the temporaries at their offsets in one arena (numpy
    views of one byte buffer, poisoned with NaN bytes so a read before a write shows)."""
    from tcc.passes.contract import contract_products
    from tcc.passes.execution import plan_execution
    from tcc.passes.fuse import fuse
    from tcc.runtime.cuda import step_buffers

    program = fuse(contract_products(prog))
    execution, memory = plan_execution(program, budget, time_limit=5.0)
    groups = G.kernels_by_statement(program, tiled=tiled)
    arena = np.full(max(memory.arena_bytes, 1), 0xFF, np.uint8)
    io = {n: np.ascontiguousarray(inputs[n]).ravel().copy() for n in program.inputs}
    io.update({n: np.full(max(int(np.prod(program.tensor(n).shape)), 1), np.nan,
                          program.tensor(n).dtype) for n in program.outputs})
    for index, where in step_buffers(program, execution, memory):
        buffers = {}
        for name, (kind, at) in where.items():
            tensor = program.tensor(name)
            size = max(int(np.prod(tensor.shape)), 1) * np.dtype(tensor.dtype).itemsize
            buffers[name] = io[at] if kind == "io" else arena[at:at + size].view(tensor.dtype)
        for gpu in groups[index]:
            emulate(gpu, buffers)
    return {n: io[n][:max(int(np.prod(program.tensor(n).shape)), 1)].reshape(
        program.tensor(n).shape) for n in program.outputs}


@pytest.mark.parametrize("budget", [None, 9000])
def test_training_step_planned_on_the_gpu(budget) -> None:
    """An MLP's loss and gradients: fused epilogues split off tiled contractions, the
    arena's offsets, and (with a budget: two statements recomputed) temporaries that share
    arena bytes, against the CPU."""
    if budget is not None:
        pytest.importorskip("ortools")  # the GPU machine may lack it
    step, inputs, expected = training_step(10)
    result = run_planned(step, inputs, budget, tiled="always")
    for name in expected:
        np.testing.assert_allclose(result[name], expected[name], rtol=1e-10, atol=1e-10,
                                   err_msg=name)


@given(case=einsums(max_operands=3, allow_ellipsis=False),
       dtype=st.sampled_from(["float64", "float32", "int64"]),
       tiled=st.sampled_from(["never", "always"]), data=st.data())
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_random_einsums_emulated(case, dtype: str, tiled: str, data) -> None:
    """Random equations (repeated labels, broadcasts, sizes 0 and 1) through every GPU
    schedule, the tensor cores included for float32, against numpy.einsum."""
    equation, shapes = case
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    arrays = [(rng.standard_normal(s) * 3).astype(dtype) for s in shapes]
    try:
        expected = np.einsum(equation, *arrays)
        program = program_for(equation, arrays, dtype)
    except (ValueError, TccError):
        assume(False)
    precision = "tf32" if dtype == "float32" and data.draw(st.booleans()) else "exact"
    result = run_program(program, arrays, tiled=tiled, precision=precision)
    if precision == "tf32":
        scale = max(float(np.linalg.norm(expected)), 1.0)
        assert np.linalg.norm(result - expected) / scale < 3e-3
    else:
        np.testing.assert_allclose(result, expected, **tolerance(dtype))


def test_tensor_core_tiles_interleave_k() -> None:
    """Both load directions put K position k at ``interleaved(k)`` of its shared row."""
    from tcc.passes.schedule import gpu_mma as M

    for x in range(32):
        lane = {"threadIdx.x": x, "lane.k8": x // 8, "lane.k4": (x // 4) % 2, "lane.k1": x % 4}
        slot = M.LANE_SLOT.const + sum(c * lane[v] for v, c in M.LANE_SLOT.terms)
        assert slot == M.interleaved(x)
    tile = M._MmaTile.__new__(M._MmaTile)
    tile.f = type("F", (), {"along_k": staticmethod(lambda *_: False)})()
    for z in range(2):
        for _, kk, slot in tile.slots("A", ("m",)):
            values = {"threadIdx.x": 0, "threadIdx.y": 0, "threadIdx.z": z}
            k = kk.const + sum(c * values[v] for v, c in kk.terms)
            at = slot.const + sum(c * values[v] for v, c in slot.terms)
            assert at == M.interleaved(k)
    assert sorted(M.interleaved(k) for k in range(32)) == list(range(32))


@pytest.mark.parametrize("equation,shapes,dtype", [
    ("ij->", [(300, 4000)], "float64"),  # the outer reduction loop split across blocks
    ("j->", [(1 << 20,)], "float32"),  # the lanes' passes split across blocks
    ("ij,ij->", [(600, 2000)] * 2, "int64"),
    ("ijk->i", [(2, 64, 9000)], "float64"),  # two rows: each row's sum split too
    ("bo,bo->o", [(40000, 30)] * 2, "float64"),  # columns: the loop schedule splits the batch
    ("bij->j", [(500, 300, 9)], "int64"),
])
def test_split_reductions_add_atomically(equation: str, shapes, dtype: str) -> None:
    rng = np.random.default_rng(12)
    arrays = [(rng.standard_normal(s) * 3).astype(dtype) for s in shapes]
    program = program_for(equation, arrays, dtype)
    (gpu,) = G.gpu_kernels(program)
    assert gpu.schedule.grid[1] > 1 and gpu.zeroed == ("out",)
    assert "atomic out[" in G.format_gpu_kernel(gpu)
    buffers = {f"in{k}": a.ravel().copy() for k, a in enumerate(arrays)}
    buffers["out"] = np.full(max(int(np.prod(program.tensor("out").shape)), 1), 7, dtype)
    emulate(gpu, buffers)  # zeroes the output first, as the runtime does
    np.testing.assert_allclose(buffers["out"].reshape(program.tensor("out").shape),
                               np.einsum(equation, *arrays), **tolerance(dtype))

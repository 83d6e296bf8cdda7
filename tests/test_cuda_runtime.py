"""The CUDA backend on a GPU: the corpus vs numpy, odd sizes and strides, tiled vs untiled
GEMM, device arrays. Every test here skips cleanly without cuda-python or a device."""

from __future__ import annotations

import numpy as np
import pytest
from corpus import CORPUS, tolerance
from test_cuda_ptx import corpus_program, unary_program
from test_cuda_schedule import training_step

import tcc
from tcc.errors import TccError
from tcc.runtime.cuda import CudaEinsum, DeviceArray, check, cuda_available, device, driver

pytestmark = pytest.mark.skipif(not cuda_available(), reason="needs cuda-python and a CUDA GPU")


class StridedDeviceView:
    """A strided view of a DeviceArray, seen only through ``__cuda_array_interface__``."""

    def __init__(self, owner: DeviceArray, shape, strides_in_elements, offset: int = 0):
        self.owner = owner
        item = owner.dtype.itemsize
        self.__cuda_array_interface__ = {
            "shape": tuple(shape), "typestr": owner.dtype.str, "version": 3,
            "data": (owner.pointer + offset * item, False),
            "strides": tuple(s * item for s in strides_in_elements)}


@pytest.mark.parametrize("tiled", ["never", "always"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_corpus_on_gpu(dtype: str, tiled: str) -> None:
    rng = np.random.default_rng(0)
    for case in CORPUS:
        arrays = case.operands(rng, dtype)
        result = CudaEinsum(corpus_program(case, dtype), tiled=tiled)(*arrays)
        np.testing.assert_allclose(result, case.reference(arrays), **tolerance(dtype),
                                   err_msg=f"{case.name}: {case.equation}")


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool", "complex64"])
def test_corpus_other_dtypes_on_gpu(dtype: str) -> None:
    rng = np.random.default_rng(1)
    for case in CORPUS[:30]:
        arrays = case.operands(rng, dtype)
        np.testing.assert_allclose(tcc.einsum(case.equation, *arrays, device="cuda"),
                                   case.reference(arrays), **tolerance(dtype),
                                   err_msg=case.name)


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (17, 33, 5), (129, 65, 257), (1000, 1, 3),
                                   (512, 512, 512)])
def test_tiled_gemm_matches_untiled(m: int, n: int, k: int) -> None:
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    program = tcc.compile("ik,kj->ij", a.shape, b.shape, target="cuda", load=False).program
    tiled = CudaEinsum(program, tiled="always")(a, b)
    untiled = CudaEinsum(program, tiled="never")(a, b)
    np.testing.assert_allclose(tiled, a @ b, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(tiled, untiled, rtol=1e-10, atol=1e-10)


def test_strided_device_operands() -> None:
    rng = np.random.default_rng(3)
    base_a = rng.standard_normal((70, 90)).astype(np.float32)
    base_b = rng.standard_normal((40, 70)).astype(np.float32)
    da, db = DeviceArray.from_host(base_a), DeviceArray.from_host(base_b)
    a_t = StridedDeviceView(da, (90, 70), (1, 90))  # base_a.T
    b_t = StridedDeviceView(db, (70, 20), (1, 140), offset=70)  # base_b[1::2].T
    result = tcc.einsum("ik,kj->ij", a_t, b_t)
    assert isinstance(result, DeviceArray)  # device operands: the result stays there
    np.testing.assert_allclose(result.numpy(), base_a.T @ base_b[1::2].T, rtol=2e-4,
                               atol=2e-4)


def test_odd_host_strides_and_negative_strides() -> None:
    rng = np.random.default_rng(4)
    a = rng.standard_normal((9, 13))[::-1, ::2]
    b = rng.standard_normal((7, 21))[:, ::3].T
    np.testing.assert_allclose(tcc.einsum("ij,jk->ik", a, b, device="cuda"), a @ b,
                               rtol=1e-12)


def test_zero_size_and_scalar_results() -> None:
    assert tcc.einsum("ij->", np.ones((0, 5)), device="cuda") == 0.0
    assert tcc.einsum("i,i->", np.arange(5.0), np.arange(5.0), device="cuda") == 30.0
    assert tcc.einsum("ij->ji", np.ones((0, 3)), device="cuda").shape == (3, 0)


def test_compiled_kernel_is_reused() -> None:
    kernel = tcc.compile("bij,bjk->bik", (4, 33, 17), (4, 17, 9), dtype="float32",
                         target="cuda")
    rng = np.random.default_rng(5)
    for _ in range(3):
        a = rng.standard_normal((4, 33, 17)).astype(np.float32)
        b = rng.standard_normal((4, 17, 9)).astype(np.float32)
        np.testing.assert_allclose(kernel(a, b), a @ b, rtol=2e-4, atol=2e-5)
    assert ".entry" in kernel.ptx()


def test_transcendental_float32_on_gpu() -> None:
    x = np.linspace(-8, 8, 1001).astype(np.float32)
    cases = [("exp", x, np.exp(x)), ("tanh", x, np.tanh(x)),
             ("sigmoid", x, 1 / (1 + np.exp(-x))), ("log", np.abs(x) + 1e-3, None)]
    for op, operand, expected in cases:
        if expected is None:
            expected = np.log(operand)
        result = CudaEinsum(unary_program(op, "float32", x.size))(operand)
        np.testing.assert_allclose(result, expected, rtol=2e-5, atol=2e-6, err_msg=op)


def test_driver_errors_name_the_call() -> None:
    with pytest.raises(TccError, match="cuMemAlloc.*CUresult"):
        device().make_current()
        check("cuMemAlloc", driver().cuMemAlloc(1 << 60))


def test_allocator_reuses_blocks() -> None:
    first = DeviceArray((1000,), np.float32)
    pointer = first.pointer
    del first
    second = DeviceArray((1000,), np.float32)
    assert second.pointer == pointer


@pytest.mark.parametrize("equation,shapes", [
    ("ik,kj->ij", [(1000, 300), (300, 520)]),
    ("ki,jk->ij", [(260, 129), (200, 260)]),
    ("abcd,dbef->aecf", [(8, 6, 20, 12), (12, 6, 9, 30)]),
    ("bij,bjk->bik", [(5, 130, 72), (5, 72, 140)]),
])
def test_tensor_cores_tf32(equation: str, shapes) -> None:
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    kernel = tcc.compile(equation, *shapes, dtype="float32", target="cuda", precision="tf32")
    assert "mma.sync" in kernel.ptx()
    expected = np.einsum(equation, *[a.astype(np.float64) for a in arrays])
    result = kernel(*arrays)
    error = np.linalg.norm(result - expected) / np.linalg.norm(expected)
    assert error < 2e-3, error  # tf32 inputs: about 3e-4
    exact = tcc.einsum(equation, *arrays, device="cuda")
    np.testing.assert_allclose(exact, expected, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("equation,shapes,instruction", [
    ("ij->i", [(1000, 700)], "shfl.sync.bfly"), ("ij,ij,ij->i", [(300, 1031)] * 3, "shfl"),
    ("ij,j->i", [(77, 5)], "shfl"), ("abcj->abc", [(3, 5, 7, 300)], "shfl"),
    ("ijk->i", [(2, 64, 9000)], "shfl"),
    # a long sum into few outputs: partial sums added atomically into a zeroed output
    ("ij->", [(300, 4000)], "atom.global.add"), ("bo,bo->o", [(40000, 30)] * 2, "atom"),
    ("bij->j", [(500, 300, 9)], "atom"),
])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_reductions_on_gpu(equation: str, shapes, instruction: str, dtype: str) -> None:
    rng = np.random.default_rng(7)
    arrays = [(rng.standard_normal(s) * 10).astype(dtype) for s in shapes]
    kernel = tcc.compile(equation, *shapes, dtype=dtype, target="cuda")
    assert instruction in kernel.ptx()
    for _ in range(2):  # a split sum's output is zeroed before each launch
        np.testing.assert_allclose(kernel(*arrays), np.einsum(equation, *arrays),
                                   **tolerance(dtype))


@pytest.mark.parametrize("budget", [None, "9000B"])
def test_program_on_gpu(budget) -> None:
    if budget is not None:
        pytest.importorskip("ortools")  # the GPU machine may lack it
    step, inputs, expected = training_step(8)
    gpu = tcc.compile(step, target="cuda", memory_budget=budget)
    result = gpu(inputs)
    for name in expected:
        np.testing.assert_allclose(result[name], expected[name], rtol=1e-10, atol=1e-10)
    on_device = gpu({n: DeviceArray.from_host(a) for n, a in inputs.items()})
    assert all(isinstance(a, DeviceArray) for a in on_device.values())
    np.testing.assert_allclose(on_device["dW1"].numpy(), expected["dW1"], rtol=1e-10)


def test_gpu_tuning_end_to_end(tmp_path) -> None:
    result = tcc.tune("ik,kj->ij", (300, 200), (200, 260), dtype="float32", target="cuda",
                      trials=6, db=tmp_path / "t.db", quiet=True, confirm=1, seed=1)
    assert result.best_gflops and result.default_gflops and not result.failures
    from tcc.tune.database import lookup
    from tcc.tune.gpu_space import gpu_target_key

    config = lookup("ik,kj->ij", [(300, 200), (200, 260)], ["float32"] * 2, 1,
                    db=tmp_path / "t.db", target=gpu_target_key("exact"))
    assert config == result.best_config
    a = np.random.default_rng(9).standard_normal((300, 200)).astype(np.float32)
    b = np.random.default_rng(10).standard_normal((200, 260)).astype(np.float32)
    kernel = tcc.Kernel("ik,kj->ij", [a.shape, b.shape], ["float32"] * 2, target="cuda",
                        gpu_config=config)
    np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-3, atol=1e-3)

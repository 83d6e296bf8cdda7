"""GPU tuning without a GPU: the search space's configs are legal, each one compiles to the
schedule it names and computes the right result (in the SIMT emulator), and tuning asks
for a GPU clearly. Measuring on a GPU is covered by tests/test_cuda_runtime.py."""

from __future__ import annotations

import random

import numpy as np
import pytest
from test_cuda_schedule import program_for, run_program

import tcc
from tcc.errors import BackendUnavailableError, ScheduleError
from tcc.passes.schedule import gpu as G
from tcc.runtime.cuda import cuda_available
from tcc.tune.gpu_space import GpuSearchSpace
from tcc.tune.space import Workload


def space(equation="ik,kj->ij", shapes=((96, 80), (80, 72)), precision="exact"):
    return GpuSearchSpace(Workload.of(equation, shapes, "float32"), precision)


def test_samples_mutations_and_crossovers_are_legal() -> None:
    s, rng = space(), random.Random(0)
    configs = [s.sample(rng) for _ in range(200)]
    assert all(s.legal(c) for c in configs)
    assert {c.get("template") for c in configs} == {"tiled", "plain"}
    tiled = [c for c in configs if c["template"] == "tiled"]
    for first, second in zip(tiled, tiled[1:], strict=False):
        assert s.legal(s.mutate(first, rng)) and s.legal(s.crossover(first, second, rng))
    assert len({tuple(s.features(c)) for c in tiled}) > 20
    assert "mma" in space(precision="tf32").templates and "mma" not in s.templates


def test_illegal_configs_are_named() -> None:
    s = space()
    assert s.violations({"template": "tiled", "bm": 128, "bn": 128, "tm": 8, "tn": 8,
                         "bk": 8})  # 16 x 16 threads cannot load an 8-deep K tile evenly
    assert s.violations({"template": "mma"})  # exact precision: no tensor cores
    assert s.violations({"template": "plain", "bm": 64})
    with pytest.raises(ScheduleError, match="does not fit"):
        G.TileParams(128, 128, 8, 8, 8).check()


@pytest.mark.parametrize("seed", range(6))
def test_every_sampled_config_computes_the_contraction(seed: int) -> None:
    rng = np.random.default_rng(seed)
    equation, shapes = "abcd,dbef->aecf", [(5, 3, 7, 6), (6, 3, 4, 9)]
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    program = program_for(equation, arrays, "float32", optimize=False)
    s = GpuSearchSpace(Workload.of(equation, shapes, "float32"), "tf32")
    config = s.sample(random.Random(seed))
    while config.get("template") != "tiled":
        config = s.sample(random.Random(seed + 100))
    gpu = G.gpu_kernels(program, config=G.GpuConfig.of(config))[0]
    tiles = dict(gpu.schedule.tiles)
    assert gpu.schedule.template == "tiled"
    assert {k: tiles[k] for k in ("bm", "bn", "tm", "tn", "bk")} == {
        k: config[k] for k in ("bm", "bn", "tm", "tn", "bk")}
    buffers = {f"in{k}": a.ravel().copy() for k, a in enumerate(arrays)}
    buffers["out"] = np.full(int(np.prod(program.tensor("out").shape)), np.nan, np.float32)
    from test_cuda_schedule import emulate

    emulate(gpu, buffers)
    np.testing.assert_allclose(buffers["out"].reshape(program.tensor("out").shape),
                               np.einsum(equation, *arrays), rtol=2e-4, atol=2e-4)


def test_templates_by_name() -> None:
    a = np.ones((256, 256), np.float32)
    program = program_for("ik,kj->ij", [a, a], "float32")
    for template, expected in (("plain", "loops"), ("tiled", "tiled"), ("auto", "tiled")):
        config = G.GpuConfig.of({"template": template})
        assert G.gpu_kernels(program, config=config)[0].schedule.template == expected
    tf32 = G.GpuConfig.of({"template": "mma"})
    assert G.gpu_kernels(program, config=tf32, precision="tf32")[0].schedule.template == "mma"
    assert np.allclose(run_program(program, [a, a]), 256.0)
    with pytest.raises(ScheduleError, match="GPU template"):
        G.GpuConfig.of({"template": "fastest"})


def test_kernel_takes_a_gpu_config_without_a_gpu() -> None:
    kernel = tcc.compile("ik,kj->ij", (256, 256), (256, 256), dtype="float32", target="cuda",
                         load=False)
    default = dict(kernel._cuda.rendered().kernels[0].schedule.tiles)
    from tcc.kernel import Kernel

    tuned = Kernel("ik,kj->ij", [(256, 256)] * 2, ["float32"] * 2, target="cuda", load=False,
                   gpu_config={"template": "tiled", "bm": 64, "bn": 32, "tm": 4, "tn": 2,
                               "bk": 16})
    tiles = dict(tuned._cuda.rendered().kernels[0].schedule.tiles)
    assert (tiles["bm"], tiles["bn"], tiles["tm"], tiles["tn"]) == (64, 32, 4, 2) != (
        default["bm"], default["bn"], default["tm"], default["tn"])
    assert ".entry" in tuned.ptx()


@pytest.mark.skipif(cuda_available(), reason="a usable CUDA GPU is present")
def test_tuning_for_the_gpu_without_one_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(BackendUnavailableError):
        tcc.tune("ik,kj->ij", (64, 64), (64, 64), target="cuda", trials=2,
                 db=tmp_path / "t.db", quiet=True)

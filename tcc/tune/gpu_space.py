"""The search space of one workload on an NVIDIA GPU (``tcc.tune(..., target="cuda")``).

A config is a plain dict, stored as JSON in the tuning database like the CPU's:

- ``{}``: the default schedule (``tcc.compile(..., target="cuda")`` with no tuning);
- ``{"template": "plain"}``: the loop or warp-reduction schedule, no tiles;
- ``{"template": "mma"}``: the tensor-core template (only with ``precision="tf32"``);
- ``{"template": "tiled", "bm", "bn", "tm", "tn", "bk"}``: the tiled template's block tile
  (BM x BN, BK deep) and register tile (TM x TN per thread, so (BM/TM) x (BN/TN) threads).

Records live under a target key naming the device, its compute capability and the
precision, so a record never crosses GPUs or precisions.
"""

from __future__ import annotations

import json
import random

import numpy as np

from tcc.dtypes import DTYPES
from tcc.errors import ScheduleError
from tcc.passes.schedule.gpu_tiled import TileParams
from tcc.tune.space import Config, Workload, gett_view

BLOCK_TILES = (32, 64, 128, 256)
REGISTER_TILES = (1, 2, 4, 8)
K_TILES = (8, 16, 32)
TILE_KEYS = ("bm", "bn", "tm", "tn", "bk")
MAX_ACCUMULATOR_BYTES = 512  # a thread's register tile: at most 128 32-bit registers


def gpu_target_key(precision: str) -> str:
    """The record key of the GPU in use: name, compute capability, precision."""
    from tcc.runtime.cuda import device, driver

    dev = device()
    name = driver().cuDeviceGetName(64, dev.handle)
    label = name[1].split(b"\0")[0].decode() if isinstance(name, tuple) else "gpu"
    major, minor = dev.compute_capability
    return json.dumps({"triple": "nvptx64-nvidia-cuda", "device": label,
                       "sm": f"{major}{minor}", "precision": precision},
                      sort_keys=True, separators=(",", ":"))


class GpuSearchSpace:
    """The legal GPU configs of one workload."""

    def __init__(self, workload: Workload, precision: str = "exact") -> None:
        self.workload, self.precision = workload, precision
        view = (gett_view(workload.program())
                if workload.dtype in ("float32", "float64") else None)
        self.gett = view is not None
        self.templates = ["tiled", "plain"] + (["mma"] if precision == "tf32" and
                                               workload.dtype == "float32" else [])

    @property
    def tunable(self) -> bool:
        return self.gett

    def violations(self, config: Config) -> list[str]:
        template = config.get("template", "auto")
        if template not in (*self.templates, "auto"):
            return [f"template {template!r} is not one of {self.templates}"]
        if template != "tiled":
            return [] if set(config) <= {"template"} else ["sizes belong to 'tiled' only"]
        try:
            TileParams(**{k: int(config[k]) for k in TILE_KEYS}).check()
        except (KeyError, TypeError, ScheduleError) as exc:
            return [str(exc)]
        itemsize = DTYPES[self.workload.dtype].itemsize
        if config["tm"] * config["tn"] * itemsize > MAX_ACCUMULATOR_BYTES:
            return ["the register tile needs more than 128 registers"]
        return []

    def legal(self, config: Config) -> bool:
        return not self.violations(config)

    def sample(self, rng: random.Random, attempts: int = 500) -> Config:
        if not self.gett:
            return {}
        if rng.random() < 0.1:
            return {"template": rng.choice([t for t in self.templates if t != "tiled"])}
        for _ in range(attempts):
            config = {"template": "tiled", "bm": rng.choice(BLOCK_TILES),
                      "bn": rng.choice(BLOCK_TILES), "tm": rng.choice(REGISTER_TILES),
                      "tn": rng.choice(REGISTER_TILES), "bk": rng.choice(K_TILES)}
            if self.legal(config):
                return config
        raise RuntimeError("no legal GPU config found")

    def mutate(self, config: Config, rng: random.Random) -> Config:
        if config.get("template") != "tiled":
            return self.sample(rng)
        choices = {"bm": BLOCK_TILES, "bn": BLOCK_TILES, "tm": REGISTER_TILES,
                   "tn": REGISTER_TILES, "bk": K_TILES}
        for _ in range(100):
            c = dict(config)
            for key in rng.sample(TILE_KEYS, rng.choice((1, 2))):
                values = choices[key]
                position = values.index(c[key]) if c[key] in values else 0
                c[key] = values[min(max(position + rng.choice((-1, 1)), 0), len(values) - 1)]
            if c != config and self.legal(c):
                return c
        return self.sample(rng)

    def crossover(self, first: Config, second: Config, rng: random.Random) -> Config:
        if first.get("template") != "tiled" or second.get("template") != "tiled":
            return dict(rng.choice((first, second)))
        child = {"template": "tiled",
                 **{k: rng.choice((first[k], second[k])) for k in TILE_KEYS}}
        return child if self.legal(child) else dict(first)

    def features(self, config: Config) -> np.ndarray:
        """Numbers for the cost model: template, log2 sizes, threads, tile areas."""
        template = config.get("template", "auto")
        onehot = [float(template == t) for t in ("auto", "plain", "tiled", "mma")]
        if template != "tiled":
            return np.array([*onehot, 0, 0, 0, 0, 0, 0, 0], float)
        bm, bn, tm, tn, bk = (config[k] for k in TILE_KEYS)
        threads = (bm // tm) * (bn // tn)
        return np.array([*onehot, np.log2(bm), np.log2(bn), np.log2(tm), np.log2(tn),
                         np.log2(bk), np.log2(threads), np.log2(bm * bn)], float)

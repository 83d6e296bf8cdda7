"""The search space of one workload: GETT blockings, plus the plain loop nest.

A *config* is a plain dict, stored as JSON in the tuning database:

- ``{}``: the default schedule (whatever ``tcc.compile`` picks with no tuning);
- ``{"gett": "never"}``: the plain loop nest, no GETT template;
- ``{"mr", "nr", "kc", "mc", "nc", "lanes", "threads"}``: a ``GettParams`` blocking, with
  optional ``"order"`` (the tile loop, "ir" or "jr"), ``"prefetch"`` (K steps ahead) and
  ``"parallel"`` (the threads share M or N blocks: "m" or "n") and ``"pack_a"`` (A packed
  per block, whole per K block, or read in place: "none"); records written before these
  existed lack them and mean "ir", 0, "m" and "block".

The space is derived from the workload's GETT view (the largest pairwise contraction of
its Program); constraints rule out illegal or hopeless points before anything compiles.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tcc.dtypes import DTYPES
from tcc.frontend.einsum import parse_einsum
from tcc.frontend.einsum_program import einsum_program
from tcc.ir import program as P
from tcc.options import Options
from tcc.passes.paths import choose_path
from tcc.passes.pipeline import vector_bits
from tcc.passes.schedule.blocking import (
    A_PACKINGS,
    PARALLEL_GROUPS,
    TILE_ORDERS,
    GettParams,
    cache_sizes,
    real_dtype,
)
from tcc.passes.schedule.gett import GettShape, a_in_place, analyze

MAX_ACCUMULATORS = 28  # vector registers holding the micro-tile (of 32 with AVX-512)
CACHE_FACTOR = 2  # a panel may exceed its cache level by this factor
KC_CHOICES = (16, 32, 48, 64, 96, 128, 192, 256, 320, 384, 512, 768, 1024, 1536, 2048)
MC_BLOCKS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)  # mc = mr * blocks
NC_BLOCKS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)  # nc = nr * blocks
GETT_KEYS = ("mr", "nr", "kc", "mc", "nc", "lanes", "threads")
PREFETCH_CHOICES = (0, 2, 4, 8, 16)  # K steps ahead
# the schedule choices besides sizes, as GettParams defaults them (records written before
# a choice existed were measured with its default)
CHOICE_DEFAULTS = {name: GettParams.__dataclass_fields__[name].default
                   for name in ("order", "prefetch", "parallel", "pack_a")}

Config = dict


def config_key(config: Config) -> str:
    """The canonical JSON text of a config (equal configs, equal text)."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def describe(config: Config) -> str:
    if not config:
        return "default"
    if "mr" not in config:
        return "loop nest"
    c = with_choices(config)
    return (f"mr={c['mr']} nr={c['nr']} kc={c['kc']} mc={c['mc']} nc={c['nc']} "
            f"threads={c['threads']} order={c['order']} prefetch={c['prefetch']} "
            f"parallel={c['parallel']} pack_a={c['pack_a']}")


def with_choices(config: Config) -> Config:
    """``config`` with the schedule choices it lacks set to their defaults."""
    return {**CHOICE_DEFAULTS, **config}


def apply_config(options: Options, config: Config) -> Options:
    """``options`` changed so that compiling with them uses ``config``."""
    if not config:
        return options
    if "mr" not in config:
        return options.with_(gett=config.get("gett", "never"))
    c = with_choices(config)
    return options.with_(gett_params=GettParams(
        **{k: int(c[k]) for k in GETT_KEYS}, order=str(c["order"]), prefetch=int(c["prefetch"]),
        parallel=str(c["parallel"]), pack_a=str(c["pack_a"])))


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Workload:
    """One einsum on operands of fixed shapes and dtype, row-major, as ``tcc.compile``."""

    equation: str
    shapes: tuple[tuple[int, ...], ...]
    dtype: str = "float32"

    @classmethod
    def of(cls, equation: str, shapes: Sequence[Sequence[int]], dtype: object) -> Workload:
        return cls(equation, tuple(tuple(int(x) for x in s) for s in shapes),
                   np.dtype(dtype).name)  # type: ignore[arg-type]

    @property
    def canonical(self) -> str:
        return workload_key(self.equation, self.shapes, [self.dtype] * len(self.shapes))

    def program(self) -> P.Program:
        parsed = parse_einsum(self.equation, self.shapes)
        choice = choose_path(parsed, "auto", None)  # as tcc.compile: no memory limit
        path = getattr(choice, "path", choice)
        dtypes = [self.dtype] * len(self.shapes)
        return einsum_program(parsed, self.shapes, dtypes, self.dtype, self.dtype, path)

    @property
    def flops(self) -> int:
        """Multiply-adds counted twice, over every contraction statement of the program."""
        program = self.program()
        total = 0
        for stmt in program.statements:
            total += 2 * math.prod(program.sizes[i] for i in P.statement_indices(stmt))
        return max(total, 1)

    def to_json(self) -> dict:
        return {"equation": self.equation, "shapes": [list(s) for s in self.shapes],
                "dtype": self.dtype}


def workload_key(equation: str, shapes: Sequence[Sequence[int]], dtypes: Sequence[str]) -> str:
    """``canonical-equation|shape;shape|dtype``: ``ij,jk`` and ``ab,bc`` share records."""
    shapes = [tuple(int(x) for x in s) for s in shapes]
    spec = parse_einsum(equation, shapes).spec.canonical()
    names = [np.dtype(d).name for d in dtypes]
    dtype = names[0] if len(set(names)) == 1 else ",".join(names)
    shape_text = ";".join("x".join(map(str, s)) for s in shapes)
    return f"{spec}|{shape_text}|{dtype}"


def gett_view(program: P.Program) -> GettShape | None:
    """The GETT view of the program's largest pairwise contraction (row-major layouts)."""
    layouts = {}
    for tensor in program.tensors:
        strides, step = [], 1
        for size in reversed(tensor.shape):
            strides.append(0 if size == 1 else step)
            step *= size
        layouts[tensor.name] = tuple(reversed(strides))
    best = None
    for stmt in program.statements:
        shape = analyze(program, stmt, layouts)
        if shape is not None and (best is None or shape.flops > best.flops):
            best = shape
    return best


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


@dataclass
class SearchSpace:
    """The legal configs of one workload on this machine."""

    workload: Workload
    lanes: int
    max_threads: int
    m: int = 1
    n: int = 1
    k: int = 1
    batch: int = 1
    gett: bool = False
    a_in_place: bool = False  # A's layout lets the micro-kernel read it unpacked
    caches: tuple[int, int, int] = field(default_factory=cache_sizes)

    @classmethod
    def build(cls, workload: Workload, features: str, max_threads: int) -> SearchSpace:
        itemsize = DTYPES[real_dtype(workload.dtype)].itemsize
        lanes = max(vector_bits(features) // (8 * itemsize), 1)
        view = gett_view(workload.program()) if workload.dtype in ("float32", "float64") else None
        if view is None:
            return cls(workload, lanes, max(1, max_threads))
        return cls(workload, lanes, max(1, max_threads), m=view.extent(view.m),
                   n=view.extent(view.n), k=view.extent(view.k), batch=view.extent(view.batch),
                   gett=True, a_in_place=a_in_place(view))

    @property
    def tunable(self) -> bool:
        return self.gett

    @property
    def itemsize(self) -> int:
        return DTYPES[real_dtype(self.workload.dtype)].itemsize

    # -- choices per dimension ----------------------------------------------------------
    def mr_choices(self) -> list[int]:
        return list(range(4, 17))

    def nr_choices(self) -> list[int]:
        return [self.lanes * v for v in range(1, 5)]

    def kc_choices(self) -> list[int]:
        choices = [kc for kc in KC_CHOICES if kc < self.k]
        return choices + [min(kc for kc in KC_CHOICES if kc >= self.k)
                          if self.k <= KC_CHOICES[-1] else KC_CHOICES[-1]]

    def thread_choices(self) -> list[int]:
        return list(range(1, self.max_threads + 1))

    # -- legality ----------------------------------------------------------------------
    def normalize(self, config: Config) -> Config:
        """Round mc/nc to multiples of mr/nr and clip blocks to the problem's extents."""
        if "mr" not in config:
            return dict(config)
        c = dict(config)
        c["lanes"] = self.lanes
        c["mc"] = min(max(_round_up(c["mc"], c["mr"]), c["mr"]), _round_up(self.m, c["mr"]))
        c["nc"] = min(max(_round_up(c["nc"], c["nr"]), c["nr"]), _round_up(self.n, c["nr"]))
        c["kc"] = min(c["kc"], max(self.kc_choices()))
        return c

    def violations(self, config: Config) -> list[str]:
        """Why ``config`` is illegal here (empty when it is legal)."""
        if "mr" not in config:
            return [] if self.gett or not config else ["not a GETT workload"]
        c, why = config, []
        if any(int(c.get(key, 0)) <= 0 for key in GETT_KEYS):
            why.append("sizes must be positive")
            return why
        if c["lanes"] != self.lanes:
            why.append(f"lanes {c['lanes']} != vector width {self.lanes}")
        if c["nr"] % c["lanes"]:
            why.append("nr is not a multiple of the vector width")
        if c["mc"] % c["mr"] or c["nc"] % c["nr"]:
            why.append("mc/nc are not multiples of mr/nr")
        if c["mr"] * c["nr"] // c["lanes"] > MAX_ACCUMULATORS:
            why.append(f"{c['mr']}x{c['nr'] // c['lanes']} accumulators > {MAX_ACCUMULATORS}")
        c = with_choices(c)
        if c["order"] not in TILE_ORDERS:
            why.append(f"order {c['order']!r} is not one of {TILE_ORDERS}")
        if c["prefetch"] not in PREFETCH_CHOICES:
            why.append(f"prefetch {c['prefetch']} is not one of {PREFETCH_CHOICES}")
        if c["parallel"] not in PARALLEL_GROUPS:
            why.append(f"parallel {c['parallel']!r} is not one of {PARALLEL_GROUPS}")
        if c["pack_a"] not in A_PACKINGS:
            why.append(f"pack_a {c['pack_a']!r} is not one of {A_PACKINGS}")
        elif c["pack_a"] == "none" and not (self.a_in_place and self.m % c["mr"] == 0):
            why.append("A cannot be read in place (its layout, or M not whole micro-panels)")
        if c["threads"] > self.max_threads:
            why.append(f"threads {c['threads']} > {self.max_threads}")
        l1, l2, l3 = self.caches
        size = self.itemsize
        if (c["mr"] + c["nr"]) * c["kc"] * size > CACHE_FACTOR * l1:
            why.append("micro-panels do not fit L1")
        if c["mc"] * c["kc"] * size > CACHE_FACTOR * l2:
            why.append("A block does not fit L2")
        if c["nc"] * c["kc"] * size > CACHE_FACTOR * l3:
            why.append("B block does not fit L3")
        return why

    def legal(self, config: Config) -> bool:
        return not self.violations(config)

    # -- sampling ----------------------------------------------------------------------
    def sample(self, rng: random.Random, attempts: int = 200) -> Config:
        """A uniformly drawn legal config (the loop nest now and then)."""
        if not self.gett:
            return {}
        if rng.random() < 0.02:
            return {"gett": "never"}
        for _ in range(attempts):
            mr = rng.choice(self.mr_choices())
            nr = rng.choice(self.nr_choices())
            config = {"mr": mr, "nr": nr, "kc": rng.choice(self.kc_choices()),
                      "mc": mr * rng.choice(MC_BLOCKS), "nc": nr * rng.choice(NC_BLOCKS),
                      "lanes": self.lanes, "threads": rng.choice(self.thread_choices()),
                      "order": rng.choice(TILE_ORDERS), "prefetch": rng.choice(PREFETCH_CHOICES),
                      "parallel": rng.choice(PARALLEL_GROUPS), "pack_a": rng.choice(A_PACKINGS)}
            config = self.normalize(config)
            if self.legal(config):
                return config
        raise RuntimeError("no legal config found; the space's constraints are too tight")

    def mutate(self, config: Config, rng: random.Random) -> Config:
        """Move one or two dimensions of ``config`` to a neighbouring value."""
        if "mr" not in config:
            return self.sample(rng)
        for _ in range(50):
            c = dict(config)
            keys = ("mr", "nr", "kc", "mc", "nc", "threads", *CHOICE_DEFAULTS)
            for key in rng.sample(keys, rng.choice((1, 2))):
                c[key] = self._neighbour(key, c, rng)
            c = self.normalize(c)
            if self.legal(c) and c != config:
                return c
        return self.sample(rng)

    def _neighbour(self, key: str, c: Config, rng: random.Random) -> int | str:
        c = with_choices(c)
        few = {"order": TILE_ORDERS, "parallel": PARALLEL_GROUPS, "pack_a": A_PACKINGS}
        if key in few:  # another of the few choices
            return rng.choice([x for x in few[key] if x != c[key]])
        if key in ("mc", "nc"):
            unit = c["mr"] if key == "mc" else c["nr"]
            blocks = max(1, c[key] // unit)
            factor = rng.choice((0.5, 0.75, 1.5, 2.0))
            return unit * max(1, round(blocks * factor))
        choices = {"mr": self.mr_choices, "nr": self.nr_choices, "kc": self.kc_choices,
                   "threads": self.thread_choices, "prefetch": lambda: PREFETCH_CHOICES}[key]()
        position = choices.index(c[key]) if c[key] in choices else len(choices) // 2
        step = rng.choice((-2, -1, 1, 2)) if key == "mr" else rng.choice((-1, 1))
        return choices[min(max(position + step, 0), len(choices) - 1)]

    def crossover(self, first: Config, second: Config, rng: random.Random) -> Config:
        """Each dimension from one parent or the other, repaired to a legal config."""
        if "mr" not in first or "mr" not in second:
            return dict(rng.choice((first, second)))
        for _ in range(20):
            child = {key: with_choices(rng.choice((first, second)))[key]
                     for key in GETT_KEYS + tuple(CHOICE_DEFAULTS)}
            # mc/nc travel as block counts so that they stay meaningful under a new mr/nr
            parent = rng.choice((first, second))
            child["mc"] = child["mr"] * max(1, parent["mc"] // parent["mr"])
            child["nc"] = child["nr"] * max(1, parent["nc"] // parent["nr"])
            child = self.normalize(child)
            if self.legal(child):
                return child
        return dict(first)

    # -- features for the cost model ---------------------------------------------------
    def features(self, config: Config) -> np.ndarray:
        """Numbers describing a config on this workload (inputs of the cost model)."""
        l1, l2, _ = self.caches
        size = self.itemsize
        if "mr" not in config:
            gett = 0.0
            c = {"mr": 1, "nr": self.lanes, "kc": 1, "mc": 1, "nc": 1, "threads": 1}
        else:
            gett, c = 1.0, config
        c = with_choices(c)
        vectors = c["nr"] / self.lanes
        m_tiles = -(-self.m // c["mr"]) * c["mr"] / max(self.m, 1)  # edge waste
        n_tiles = -(-self.n // c["nr"]) * c["nr"] / max(self.n, 1)
        values = [
            gett, 1.0 - gett, math.log2(c["mr"]), vectors, c["mr"] * vectors,
            math.log2(c["kc"]), math.log2(c["mc"]), math.log2(c["nc"]),
            (c["mr"] + c["nr"]) * c["kc"] * size / l1, c["mc"] * c["kc"] * size / l2,
            float(c["threads"]), m_tiles, n_tiles,
            c["mr"] * vectors / (c["mr"] + vectors),  # loads per FMA, inverted
            math.log2(max(self.k / c["kc"], 1.0)),
            float(c["order"] == "jr"), math.log2(1 + c["prefetch"]),
            float(c["parallel"] == "n") * min(c["threads"] - 1, 1),
            float(c["pack_a"] == "whole") * min(math.log2(max(self.n / c["nc"], 1.0)), 4.0),
            float(c["pack_a"] == "none"),
        ]
        return np.asarray(values, dtype=np.float64)

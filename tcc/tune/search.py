"""Search strategies: random, evolutionary, model-guided.

A strategy proposes configs and is told how each one did (``observe``); it never measures.
Everything random draws from one ``random.Random(seed)``, so the same seed and the same
observations give the same candidate sequence. ``seen`` holds every config already
measured (this run or, when resuming, earlier ones): a strategy never proposes it again.
"""

from __future__ import annotations

import math
import random

import numpy as np

from tcc.tune.model import RidgeModel
from tcc.tune.space import Config, SearchSpace, config_key

STRATEGIES = ("evolutionary", "random", "model")


class Strategy:
    name = "base"

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.rng = random.Random(seed)
        self.seen: set[str] = set()
        self.results: list[tuple[Config, float | None]] = []

    def observe(self, config: Config, gflops: float | None) -> None:
        """``gflops`` None: the candidate failed."""
        self.seen.add(config_key(config))
        self.results.append((config, gflops))

    def propose(self, count: int) -> list[Config]:
        out: list[Config] = []
        keys: set[str] = set()
        for _ in range(count * 50):
            if len(out) == count:
                break
            config = self._next()
            key = config_key(config)
            if key not in self.seen and key not in keys:
                keys.add(key)
                out.append(config)
        return out

    def _next(self) -> Config:
        return self.space.sample(self.rng)

    def successes(self) -> list[tuple[Config, float]]:
        return [(c, g) for c, g in self.results if g is not None and "mr" in c]


class RandomSearch(Strategy):
    name = "random"


class Evolutionary(Strategy):
    """Tournament selection over everything measured, uniform crossover, mutation."""

    name = "evolutionary"

    def __init__(self, space: SearchSpace, seed: int = 0, population: int = 12,
                 tournament: int = 3, crossover_rate: float = 0.5,
                 immigrants: float = 0.1) -> None:
        super().__init__(space, seed)
        self.population = population
        self.tournament = tournament
        self.crossover_rate = crossover_rate
        self.immigrants = immigrants

    def _select(self, pool: list[tuple[Config, float]]) -> Config:
        entrants = [pool[self.rng.randrange(len(pool))] for _ in range(self.tournament)]
        return max(entrants, key=lambda entry: entry[1])[0]

    def _next(self) -> Config:
        pool = sorted(self.successes(), key=lambda entry: -entry[1])[: 2 * self.population]
        if len(pool) < min(self.population, 4) or self.rng.random() < self.immigrants:
            return self.space.sample(self.rng)
        first = self._select(pool)
        if self.rng.random() < self.crossover_rate:
            child = self.space.crossover(first, self._select(pool), self.rng)
            if config_key(child) in self.seen or self.rng.random() < 0.5:
                child = self.space.mutate(child, self.rng)
            return child
        return self.space.mutate(first, self.rng)


class ModelGuided(Strategy):
    """Fit a ridge model to log GFLOP/s, rank a large candidate pool, measure the top;
    a share of every batch is random (exploration)."""

    name = "model"

    def __init__(self, space: SearchSpace, seed: int = 0, initial: int = 12,
                 pool: int = 1500, explore: float = 0.2) -> None:
        super().__init__(space, seed)
        self.initial = initial
        self.pool = pool
        self.explore = explore
        self.model = RidgeModel()

    def propose(self, count: int) -> list[Config]:
        good = self.successes()
        if len(good) < self.initial:
            return super().propose(count)
        self._fit()
        exploring = sum(self.rng.random() < self.explore for _ in range(count))
        ranked = self._ranked_pool()
        out = [c for c in ranked[: count - exploring]]
        keys = {config_key(c) for c in out}
        for config in super().propose(count * 2):
            if len(out) >= count:
                break
            if config_key(config) not in keys:
                out.append(config)
                keys.add(config_key(config))
        return out

    def _fit(self) -> None:
        good = [g for _, g in self.results if g is not None]
        floor = math.log(min(good)) - 1.0 if good else 0.0
        configs = [c for c, _ in self.results if "mr" in c]
        targets = [math.log(g) if g is not None else floor
                   for c, g in self.results if "mr" in c]
        features = np.stack([self.space.features(c) for c in configs])
        self.model.fit(features, np.asarray(targets))

    def _ranked_pool(self) -> list[Config]:
        candidates: dict[str, Config] = {}
        top = sorted(self.successes(), key=lambda entry: -entry[1])[:8]
        for _ in range(self.pool):
            if top and self.rng.random() < 0.5:
                config = self.space.mutate(top[self.rng.randrange(len(top))][0], self.rng)
            else:
                config = self.space.sample(self.rng)
            key = config_key(config)
            if "mr" in config and key not in self.seen:
                candidates[key] = config
        pool = list(candidates.values())
        if not pool:
            return []
        scores = self.model.predict(np.stack([self.space.features(c) for c in pool]))
        order = np.argsort(-scores, kind="stable")
        return [pool[i] for i in order]


def make_strategy(name: str, space: SearchSpace, seed: int = 0) -> Strategy:
    classes = {"random": RandomSearch, "evolutionary": Evolutionary, "model": ModelGuided}
    if name not in classes:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    return classes[name](space, seed)

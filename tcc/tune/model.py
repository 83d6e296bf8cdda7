"""A small cost model trained online: ridge regression on config features, in numpy.

The target is log GFLOP/s, so the model ranks configs by predicted speed; failed trials are
taught as a fixed penalty below the worst success. Features are standardized; quadratic
terms of the most telling ones let the fit bend (a best tile size in the middle of a range).
"""

from __future__ import annotations

import numpy as np


class RidgeModel:
    """``predict(features) ~ log(gflops)``, refit on every call to ``fit``."""

    def __init__(self, alpha: float = 0.3) -> None:
        self.alpha = alpha
        self.weights: np.ndarray | None = None
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    @staticmethod
    def expand(features: np.ndarray) -> np.ndarray:
        features = np.atleast_2d(features)
        return np.hstack([features, features[:, 2:11] ** 2])

    def fit(self, features: np.ndarray, targets: np.ndarray) -> RidgeModel:
        x = self.expand(features)
        self.mean = x.mean(axis=0)
        self.scale = x.std(axis=0) + 1e-9
        z = np.hstack([np.ones((len(x), 1)), (x - self.mean) / self.scale])
        penalty = self.alpha * np.eye(z.shape[1])
        penalty[0, 0] = 0.0  # the intercept is not shrunk
        self.weights = np.linalg.solve(z.T @ z + penalty, z.T @ np.asarray(targets, float))
        return self

    @property
    def trained(self) -> bool:
        return self.weights is not None

    def predict(self, features: np.ndarray) -> np.ndarray:
        if self.weights is None or self.mean is None or self.scale is None:
            raise RuntimeError("the cost model has not been trained")
        x = self.expand(features)
        z = np.hstack([np.ones((len(x), 1)), (x - self.mean) / self.scale])
        return z @ self.weights

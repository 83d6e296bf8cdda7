"""Test configuration: verifiers on, a private disk cache, and the ``slow`` marker.

The environment is set at import time, before any test module imports tcc, because
``tcc.options`` reads it once for the process-wide defaults.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

os.environ["TCC_VERIFY"] = "1"
_CACHE_DIR = tempfile.mkdtemp(prefix="tcc-test-cache-")
os.environ["TCC_CACHE_DIR"] = _CACHE_DIR


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: long-running tests (run only when TCC_SLOW_TESTS=1)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("TCC_SLOW_TESTS", "0").strip().lower() in ("1", "true", "yes", "on"):
        return
    skip_slow = pytest.mark.skip(reason="slow test: set TCC_SLOW_TESTS=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_CACHE_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def cache_dir() -> str:
    """The session's TCC_CACHE_DIR."""
    return _CACHE_DIR

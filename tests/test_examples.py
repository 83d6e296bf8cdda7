"""Each example under examples/ runs to completion (small sizes; full sizes when slow)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.py"))


def run_example(path: Path, *args: str, cache_dir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, TCC_CACHE_DIR=str(cache_dir))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True,
                          env=env, timeout=300, cwd=REPO)


def test_the_three_examples_exist() -> None:
    names = {path.name for path in EXAMPLES}
    assert {"attention_scores.py", "tucker_layer.py",
            "equivariant_tensor_product.py"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_small(path: Path, tmp_path: Path) -> None:
    result = run_example(path, "--small", cache_dir=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


@pytest.mark.slow  # skipped unless TCC_SLOW_TESTS=1 (tests/conftest.py)
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_full_size(path: Path, tmp_path: Path) -> None:
    result = run_example(path, cache_dir=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout

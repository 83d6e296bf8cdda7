"""The README's API tour runs as written (with a smaller tuning budget)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_api_tour_runs(tmp_path, monkeypatch):
    text = README.read_text()
    assert text.startswith("## Quickstart")
    code = re.search(r"## API tour\n\n```python\n(.*?)```", text, re.S).group(1)
    assert "trials=64)" in code
    code = code.replace("trials=64)", "trials=2, time_budget=30, quiet=True)")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 (the README's own code)
    assert (tmp_path / "liblinear.so").exists() and (tmp_path / "liblinear.h").exists()
    assert set(namespace["out"]) == {"L", "dW1", "dW2"}
    assert namespace["step"].stats.peak_bytes <= 400_000


def test_quickstart_has_exactly_two_commands():
    block = re.search(r"## Quickstart\n\n```bash\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    assert block.group(1).strip().splitlines() == [
        "pip install . && tcc demo",
        'pip install ".[test]" && python -m pytest -q',
    ]

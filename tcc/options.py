"""Compiler options: one frozen object passed down; environment variables set its defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path


def _default_cache_dir() -> str:
    explicit = os.environ.get("TCC_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "tcc")


def _default_threads() -> int:
    explicit = os.environ.get("TCC_NUM_THREADS")
    if explicit:
        return max(1, int(explicit))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off", "")


@dataclass(frozen=True, slots=True)
class Options:
    """How tcc compiles and runs.

    - ``cache_dir``: where compiled objects are kept (``TCC_CACHE_DIR``; default the user's
      cache folder). ``disk_cache=False`` (``TCC_DISK_CACHE=0``) keeps them in memory only.
    - ``num_threads``: threads for parallel loops (``TCC_NUM_THREADS``; default: the cores
      this process may run on).
    - ``opt_level``: LLVM optimization level, 0-3.
    - ``verify``: run the IR verifiers between passes (``TCC_VERIFY``; tests turn it on).
    - ``gett``: when pairwise contractions use the GETT template: "auto" (big enough ones),
      "always" (wherever it applies) or "never"; ``gett_params`` overrides its blocking
      (a ``tcc.passes.schedule.blocking.GettParams``; the autotuner sets it).
    """

    cache_dir: str = field(default_factory=_default_cache_dir)
    disk_cache: bool = field(default_factory=lambda: _env_flag("TCC_DISK_CACHE", True))
    num_threads: int = field(default_factory=_default_threads)
    opt_level: int = 3
    verify: bool = field(default_factory=lambda: _env_flag("TCC_VERIFY", False))
    gett: str = "auto"
    gett_params: object = None

    def with_(self, **changes: object) -> Options:
        return replace(self, **changes)  # type: ignore[arg-type]


_default: Options | None = None


def default_options() -> Options:
    """The process-wide defaults, read from the environment once."""
    global _default
    if _default is None:
        _default = Options()
    return _default


def set_default_options(options: Options | None) -> None:
    """Replace the process-wide defaults (``None`` re-reads the environment)."""
    global _default
    _default = options

"""The optimizer protocol, the registry, and ``optimize`` (with its LRU path cache).

An optimizer is a function ``(network, *, memory_limit, max_time, objective, seed) ->
SSA path`` over a :class:`~tcc.passes.order.network.Network`; ``@register(name)`` makes
it available to :func:`optimize`. Optimizer modules register themselves on import and
are imported lazily here, so this module never imports them at load time.
"""

from __future__ import annotations

import importlib
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Protocol

from tcc.errors import TccError
from tcc.passes.order.cost import Objective, parse_objective
from tcc.passes.order.network import Network, SsaPath, build_network

Label = Hashable


class Optimizer(Protocol):
    def __call__(
        self,
        network: Network,
        *,
        memory_limit: int | None,
        max_time: float | None,
        objective: Objective,
        seed: int,
    ) -> SsaPath: ...


_REGISTRY: dict[str, Optimizer] = {}
_ALIASES = {"random_greedy": "random-greedy", "branch-all": "optimal", "eager": "naive"}
_MODULES = ("naive", "greedy", "optimal", "dp", "random_greedy", "spectral", "hyper", "auto")


def register(name: str) -> Callable[[Optimizer], Optimizer]:
    """Decorator: make an optimizer available under ``name``."""

    def decorate(function: Optimizer) -> Optimizer:
        _REGISTRY[name] = function
        return function

    return decorate


def _load_builtin() -> None:
    for module in _MODULES:
        importlib.import_module(f"tcc.passes.order.{module}")


def available_optimizers() -> tuple[str, ...]:
    _load_builtin()
    return tuple(sorted(_REGISTRY))


def get_optimizer(name: str) -> Optimizer:
    _load_builtin()
    key = _ALIASES.get(name, name)
    if key not in _REGISTRY:
        raise TccError(
            f"unknown path optimizer {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[key]


def normalize_method(method: object) -> str | list:
    """numpy's ``optimize=`` values: True -> 'greedy', False -> 'naive', paths as lists."""
    if method is True:
        return "greedy"
    if method is False or method is None:
        return "naive"
    if isinstance(method, str):
        return _ALIASES.get(method, method)
    if isinstance(method, Sequence):
        return list(method)
    raise TccError(f"optimize must be a method name, True/False or a path list, got {method!r}")


def canonical_key(
    inputs: Sequence[Sequence[Label]], output: Sequence[Label], size_dict: Mapping[Label, int]
) -> tuple:
    """Rename labels in order of first appearance so ``ij,jk`` and ``ab,bc`` match."""
    rename: dict[Label, int] = {}
    canon_inputs = []
    for term in inputs:
        canon_inputs.append(tuple(rename.setdefault(label, len(rename)) for label in term))
    canon_output = tuple(rename.get(label, -1) for label in output)
    canon_sizes = tuple(int(size_dict[label]) for label in rename)
    return (tuple(canon_inputs), canon_output, canon_sizes)


class _PathCache:
    """A small LRU of SSA paths keyed by canonical network + options."""

    def __init__(self, maxsize: int = 1024) -> None:
        self.maxsize = maxsize
        self.entries: OrderedDict[tuple, tuple[tuple[int, int], ...]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple) -> tuple[tuple[int, int], ...] | None:
        path = self.entries.get(key)
        if path is None:
            self.misses += 1
            return None
        self.hits += 1
        self.entries.move_to_end(key)
        return path

    def put(self, key: tuple, path: SsaPath) -> None:
        self.entries[key] = tuple(path)
        self.entries.move_to_end(key)
        while len(self.entries) > self.maxsize:
            self.entries.popitem(last=False)

    def clear(self) -> None:
        self.entries.clear()
        self.hits = self.misses = 0


PATH_CACHE = _PathCache()


def optimize(
    inputs: Sequence[Sequence[Label]],
    output: Sequence[Label],
    size_dict: Mapping[Label, int],
    method: object = "auto",
    memory_limit: int | None = None,
    max_time: float | None = None,
    objective: str | Objective = "flops",
    seed: int = 0,
    *,
    use_cache: bool = True,
):
    """Find a contraction tree; ``method`` is a registered name, True/False or a path."""
    from tcc.passes.order.tree import ContractionTree

    method = normalize_method(method)
    if isinstance(method, list):
        return ContractionTree.from_path(inputs, output, size_dict, method)
    if memory_limit is not None and (not isinstance(memory_limit, int) or memory_limit < 1):
        raise TccError(f"memory_limit must be a positive number of elements, got {memory_limit!r}")
    goal = parse_objective(objective)
    optimizer = get_optimizer(method)
    network = build_network(inputs, output, dict(size_dict))
    key = None
    if use_cache:
        key = (
            *canonical_key(inputs, output, size_dict),
            method,
            memory_limit,
            str(goal),
            seed,
            max_time,
        )
        cached = PATH_CACHE.get(key)
        if cached is not None:
            return ContractionTree.from_ssa_path(inputs, output, size_dict, cached)
    if network.num_operands == 1:
        ssa: SsaPath = []
    elif network.num_operands == 2:
        ssa = [(0, 1)]
    else:
        ssa = optimizer(
            network, memory_limit=memory_limit, max_time=max_time, objective=goal, seed=seed
        )
    tree = ContractionTree.from_ssa_path(inputs, output, size_dict, ssa)
    if key is not None:
        PATH_CACHE.put(key, ssa)
    return tree

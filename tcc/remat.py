"""Rematerialization under a memory budget (public entry point).

See :mod:`tcc.passes.remat` for the model; this module only re-exports it.
"""

from tcc.passes.remat import (
    InvalidPlanError,
    RematGraph,
    RematPlan,
    SimResult,
    as_remat_graph,
    from_networkx,
    load_benchmark_graph,
    lower_bound,
    memory_profile_in_order,
    parse_budget,
    peak_memory_in_order,
    simulate,
    solve,
)

__all__ = [
    "InvalidPlanError", "RematGraph", "RematPlan", "SimResult", "as_remat_graph",
    "from_networkx", "load_benchmark_graph", "lower_bound", "memory_profile_in_order",
    "parse_budget", "peak_memory_in_order", "simulate", "solve",
]

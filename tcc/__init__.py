"""tcc: a tensor compiler for einsum-style programs.

    import tcc
    y = tcc.einsum("bhqd,bhkd->bhqk", q, k)
    kernel = tcc.compile("bhqd,bhkd->bhqk", q.shape, k.shape, dtype="float32")
"""

from tcc.api import Kernel, compile, einsum, export
from tcc.errors import (
    BackendUnavailableError,
    CompileError,
    DTypeError,
    EinsumSyntaxError,
    MemoryBudgetError,
    OperandError,
    ScheduleError,
    ShapeError,
    SolverTimeoutError,
    TccError,
)
from tcc.options import Options

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError",
    "CompileError",
    "DTypeError",
    "EinsumSyntaxError",
    "Kernel",
    "MemoryBudgetError",
    "OperandError",
    "Options",
    "ScheduleError",
    "ShapeError",
    "SolverTimeoutError",
    "TccError",
    "compile",
    "einsum",
    "export",
]

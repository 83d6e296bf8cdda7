"""tcc: a tensor compiler for einsum-style programs.

    import tcc
    y = tcc.einsum("bhqd,bhkd->bhqk", q, k)
    kernel = tcc.compile("bhqd,bhkd->bhqk", q.shape, k.shape, dtype="float32")
"""

from tcc import remat
from tcc.api import Kernel, compile, contraction_tree, einsum, einsum_path, export
from tcc.errors import (
    BackendUnavailableError,
    CompileError,
    DTypeError,
    EinsumSyntaxError,
    MemoryBudgetError,
    OperandError,
    OperandTypeError,
    ProgramSyntaxError,
    ScheduleError,
    ShapeError,
    SolverTimeoutError,
    TccError,
)
from tcc.options import Options
from tcc.passes.order import ContractionTree, PathReport, SlicedTree
from tcc.programs import CompiledProgramCallable, ProgramBuilder, compile_program, grad, program
from tcc.tune import TuneResult, tune  # noqa: E402 (the function shadows the package name)

__version__ = "0.1.0"

__all__ = [
    "CompiledProgramCallable",
    "ContractionTree",
    "OperandTypeError",
    "PathReport",
    "ProgramBuilder",
    "ProgramSyntaxError",
    "SlicedTree",
    "TuneResult",
    "compile_program",
    "contraction_tree",
    "einsum_path",
    "grad",
    "program",
    "remat",
    "tune",
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

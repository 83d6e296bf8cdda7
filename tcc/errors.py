"""One exception hierarchy for tcc.

Every error a user can provoke is a :class:`TccError`. Each subclass also derives from the
builtin exception that numpy raises for the same mistake, so code written against
``numpy.einsum`` keeps catching what it caught before.
"""

from __future__ import annotations


class TccError(Exception):
    """Base of all tcc errors."""


class EinsumSyntaxError(TccError, ValueError):
    """The subscripts string (or sublist form) is malformed."""


class ProgramSyntaxError(TccError, ValueError):
    """A program (statement text or builder calls) is malformed; text errors carry
    ``line`` and ``column`` (1-based) and show the line with a caret."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.line = line
        self.column = column


class SubscriptTypeError(EinsumSyntaxError, TypeError):
    """A sublist-form subscript of the wrong type: numpy raises TypeError for it."""


class ShapeError(TccError, ValueError):
    """An operand's shape does not match its subscripts or another operand."""


class DTypeError(TccError, TypeError):
    """An unsupported dtype, or a cast that the casting rule forbids."""


class OperandError(TccError, ValueError):
    """Wrong number or kind of operands, or a bad ``out=`` array."""


class OperandTypeError(TccError, TypeError):
    """An argument of the wrong type (``out`` that is not an array, ``casting=None``)."""


class ScheduleError(TccError, ValueError):
    """A schedule primitive was applied where it is not legal."""


class CompileError(TccError, RuntimeError):
    """LLVM rejected generated code, or a kernel could not be loaded."""


class MemoryBudgetError(TccError, ValueError):
    """A memory budget or limit cannot be met; the message names the smallest that can."""


class SolverTimeoutError(TccError, TimeoutError):
    """A solver ran out of time before it found any acceptable answer."""


class BackendUnavailableError(TccError, RuntimeError):
    """A backend (a GPU, a C toolchain) was asked for but is not available here."""

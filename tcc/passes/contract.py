"""Split multi-operand sum-product statements into pairwise contractions.

``S[t,s] = sum_d Q[t,d] * K[s,d] * 0.125`` is an einsum with a scalar factor; a statement
whose right side is a product of three or more tensor reads (times constants) is contracted
in the order the path optimizer picks, through temporaries, exactly as ``tcc.einsum`` does:

    S[t,s] = sum_{d,e} A[t,d] * B[d,e] * C[e,s]
 ->
    S_c0[t,e] = sum_d A[t,d] * B[d,e]
    S[t,s]    = sum_e S_c0[t,e] * C[e,s]

Constant factors join the last step. Statements that accumulate, reduce with anything but
a sum, or read their own target are left alone.
"""

from __future__ import annotations

import math
from dataclasses import replace

from tcc.ir import program as P


def _factors(expr: P.Expr) -> list[P.Expr] | None:
    """The factors of a product of reads and constants (casts of reads count as reads)."""
    if isinstance(expr, P.Binary) and expr.op == "mul":
        left, right = _factors(expr.left), _factors(expr.right)
        return None if left is None or right is None else left + right
    if isinstance(expr, P.Read | P.Constant):
        return [expr]
    if isinstance(expr, P.Cast) and isinstance(expr.operand, P.Read):
        return [expr]
    return None


def _read_of(factor: P.Expr) -> P.Read:
    return factor.operand if isinstance(factor, P.Cast) else factor  # type: ignore[return-value]


def _product(factors: list[P.Expr]) -> P.Expr:
    expr = factors[0]
    for factor in factors[1:]:
        expr = P.Binary("mul", expr, factor)
    return expr


def _split(program: P.Program, stmt: P.Statement, tensors: list[P.Tensor],
           optimize: object) -> list[P.Statement] | None:
    from tcc.passes.order import ContractionTree, contraction_tree

    factors = _factors(stmt.expr)
    if factors is None or stmt.accumulate or stmt.reduce not in ("sum", None):
        return None
    reads = [f for f in factors if not isinstance(f, P.Constant)]
    constants = [f for f in factors if isinstance(f, P.Constant)]
    if len(reads) < 3 or any(_read_of(f).tensor == stmt.target for f in reads):
        return None
    sizes = program.sizes
    inputs = [tuple(_read_of(f).indices) for f in reads]
    tree = contraction_tree(inputs, stmt.indices, sizes, optimize=optimize)
    if not isinstance(tree, ContractionTree):
        return None
    fused = math.prod(sizes[i] for i in P.statement_indices(stmt)) * len(reads)
    if fused <= tree.flops():
        return None  # one loop nest does no more arithmetic
    operands: list[tuple[P.Expr, tuple[str, ...]]] = [(f, tuple(_read_of(f).indices))
                                                      for f in reads]
    needed_by_output = set(stmt.indices)
    statements: list[P.Statement] = []
    path = tree.path()
    for number, step in enumerate(path):
        group = [operands[k] for k in step]
        operands = [op for k, op in enumerate(operands) if k not in step]
        if number == len(path) - 1:
            body = [g for g, _ in group] + constants
            statements.append(replace(stmt, expr=_product(body)))
            break
        needed = {i for _, idx in operands for i in idx} | needed_by_output
        kept = tuple(dict.fromkeys(i for _, idx in group for i in idx if i in needed))
        name = f"{stmt.target}_c{number}"
        while any(t.name == name for t in tensors):
            name += "_"
        tensors.append(P.Tensor(name, tuple(sizes[i] for i in kept), stmt.dtype))
        statements.append(P.Statement(name, kept, "sum", _product([g for g, _ in group]),
                                      stmt.dtype))
        operands.append((P.Read(name, kept), kept))
    return statements


def contract_products(program: P.Program, *, optimize: object = "auto") -> P.Program:
    """Every multi-operand sum-product statement -> pairwise steps (see module docstring)."""
    tensors = list(program.tensors)
    statements: list[P.Statement] = []
    changed = False
    for stmt in program.statements:
        split = _split(program, stmt, tensors, optimize)
        if split is None:
            statements.append(stmt)
        else:
            statements.extend(split)
            changed = True
    if not changed:
        return program
    return replace(program, tensors=tuple(tensors), statements=tuple(statements))

"""Readable text for both IR levels (golden tests compare against it)."""

from __future__ import annotations

from tcc.ir import loops as L
from tcc.ir import program as P

_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


def _index(index: L.Affine, lookups: tuple = (), lanes: int = 1) -> str:
    text = str(index)
    for table, position in lookups:
        text += f" + {table}[{position}]"
    return text + (f" : +{lanes}" if lanes > 1 else "")


def format_scalar(expr: L.Scalar) -> str:
    if isinstance(expr, L.Load):
        return f"{expr.buffer}[{_index(expr.index, expr.lookups, expr.lanes)}]{_mask(expr.mask)}"
    if isinstance(expr, L.IndexValue):
        return f"index({expr.index})"
    if isinstance(expr, L.Broadcast):
        return f"broadcast{expr.lanes}({format_scalar(expr.operand)})"
    if isinstance(expr, L.Const):
        return repr(expr.value)
    if isinstance(expr, L.Local):
        return expr.name
    if isinstance(expr, L.Cast):
        return f"{expr.dtype}({format_scalar(expr.operand)})"
    if isinstance(expr, L.Unary):
        return f"{expr.op}({format_scalar(expr.operand)})"
    if isinstance(expr, L.Select):
        parts = ", ".join(format_scalar(x) for x in L.scalar_children(expr))
        return f"where({parts})"
    if isinstance(expr, L.Shuffle):
        lanes = ",".join(map(str, expr.mask))
        return f"shuffle({format_scalar(expr.left)}, {format_scalar(expr.right)}, [{lanes}])"
    if isinstance(expr, L.Binary):
        left, right = format_scalar(expr.left), format_scalar(expr.right)
        if expr.op in _INFIX:
            mark = "~" if expr.reassoc else ""
            return f"({left} {_INFIX[expr.op]}{mark} {right})"
        return f"{expr.op}({left}, {right})"
    raise TypeError(f"unknown scalar node {expr!r}")


def _format_stmt(stmt: L.Stmt, depth: int, lines: list[str]) -> None:
    pad = "  " * depth
    if isinstance(stmt, L.For):
        kind = "" if stmt.kind == "serial" else f"  # {stmt.kind}"
        bound = ""
        if stmt.bound is not None:
            step = f"/{stmt.bound_step}" if stmt.bound_step > 1 else ""
            bound = f" while < ({stmt.bound}){step}"
        lines.append(f"{pad}for {stmt.var} in 0..{stmt.extent}{bound}:{kind}")
        for child in stmt.body:
            _format_stmt(child, depth + 1, lines)
    elif isinstance(stmt, L.Allocate):
        lines.append(f"{pad}allocate {stmt.name}: {stmt.dtype}[{stmt.size}]:")
        for child in stmt.body:
            _format_stmt(child, depth + 1, lines)
    elif isinstance(stmt, L.Store):
        where = _index(stmt.index, stmt.lookups)
        lines.append(f"{pad}{stmt.buffer}[{where}]{_mask(stmt.mask)} = "
                     f"{format_scalar(stmt.value)}")
    elif isinstance(stmt, L.Prefetch):
        mode = " for write" if stmt.write else ""
        lines.append(f"{pad}prefetch {stmt.buffer}[{_index(stmt.index, stmt.lookups)}]{mode}")
    elif isinstance(stmt, L.Declare):
        vec = f"x{stmt.lanes}" if stmt.lanes > 1 else ""
        lines.append(f"{pad}{stmt.name}: {stmt.dtype}{vec} = {format_scalar(stmt.init)}")
    elif isinstance(stmt, L.Assign):
        lines.append(f"{pad}{stmt.name} = {format_scalar(stmt.value)}")
    else:
        raise TypeError(f"unknown statement node {stmt!r}")


def format_kernel(kernel: L.Kernel) -> str:
    params = ", ".join(
        f"{b.role} {b.name}: {b.dtype}{list(b.shape)} strides {list(b.strides)}"
        for b in kernel.buffers
    )
    lines = [f"kernel {kernel.name}({params}):"]
    for stmt in kernel.body:
        _format_stmt(stmt, 1, lines)
    return "\n".join(lines)


_PRECEDENCE = {"add": 1, "sub": 1, "mul": 2, "div": 2}


def format_expr(expr: P.Expr, context: int = 0, right_side: bool = False) -> str:
    """Infix text with the parentheses the structure needs: ``2.0 * (Y[b] - T[b])``."""
    if isinstance(expr, P.Read):
        return f"{expr.tensor}[{', '.join(expr.indices)}]"
    if isinstance(expr, P.Constant):
        return repr(expr.value)
    if isinstance(expr, P.Cast):
        return f"{expr.dtype}({format_expr(expr.operand)})"
    if isinstance(expr, P.Unary):
        return f"{expr.op}({format_expr(expr.operand)})"
    if isinstance(expr, P.Select):
        return f"where({', '.join(format_expr(x) for x in P.children(expr))})"
    if isinstance(expr, P.Reduced):
        return "@"
    if isinstance(expr, P.Binary):
        if expr.op not in _INFIX:
            return f"{expr.op}({format_expr(expr.left)}, {format_expr(expr.right)})"
        own = _PRECEDENCE[expr.op]
        left = format_expr(expr.left, own)
        right = format_expr(expr.right, own, right_side=True)
        text = f"{left} {_INFIX[expr.op]} {right}"
        needs = own < context or (own == context and right_side)
        return f"({text})" if needs else text
    raise TypeError(f"unknown expression node {expr!r}")


def format_statement(stmt: P.Statement) -> str:
    reduced = P.reduced_indices(stmt)
    op = "+=" if stmt.accumulate else "="
    head = f"{stmt.target}[{', '.join(stmt.indices)}] {op} "
    body = format_expr(stmt.expr)
    if stmt.reduce and reduced:
        body = f"{stmt.reduce}_{{{','.join(reduced)}}} {body}"
    if stmt.epilogue is not None:
        return f"{head}{format_expr(stmt.epilogue)} with @ = {body}  : {stmt.dtype}"
    return head + body + f"  : {stmt.dtype}"


def format_program(program: P.Program) -> str:
    lines = []
    for tensor in program.tensors:
        role = (
            "in " if tensor.name in program.inputs
            else "out" if tensor.name in program.outputs else "tmp"
        )
        lines.append(f"{role} {tensor.name}: {tensor.dtype}{list(tensor.shape)}")
    lines.extend(format_statement(s) for s in program.statements)
    return "\n".join(lines)


def _mask(mask: L.Mask | None) -> str:
    if mask is None:
        return ""
    return f" lanes[{format_scalar(mask.lo)}:{format_scalar(mask.hi)}]"

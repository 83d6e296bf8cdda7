"""Fuse elementwise work into the neighbouring statements, so fewer temporaries are written.

Prologue (inline): an elementwise temporary read by one statement is computed inside it::

    D[b,o] = Y[b,o] - T[b,o]                   L[] = sum_{b,o} (Y[b,o] - T[b,o]) * (Y[b,o] -
    L[]    = sum_{b,o} D[b,o] * D[b,o]    ->                           T[b,o])

Epilogue: an elementwise statement over exactly the iteration space of a reduction it alone
consumes runs as that reduction's epilogue (``Statement.epilogue``, reading ``Reduced``)::

    Z[b,h] = sum_i X[b,i] * W[h,i]
    H[b,h] = relu(Z[b,h] + c[h])          ->   H[b,h] = relu(@ + c[h]), @ = sum_i X*W

Both are legal only when nothing between the two statements changes what they read.
"""

from __future__ import annotations

from dataclasses import replace

from tcc.ir import program as P


def _rename(expr: P.Expr, mapping: dict[str, str]) -> P.Expr:
    if isinstance(expr, P.Read):
        return P.Read(expr.tensor, tuple(mapping.get(i, i) for i in expr.indices))
    return P.with_children(expr, tuple(_rename(c, mapping) for c in P.children(expr)))


def _substitute(expr: P.Expr, tensor: str, make) -> P.Expr:
    """Replace every read of ``tensor`` by ``make(read)``."""
    if isinstance(expr, P.Read):
        return make(expr) if expr.tensor == tensor else expr
    return P.with_children(expr, tuple(_substitute(c, tensor, make) for c in P.children(expr)))


def _readers(program: P.Program, tensor: str) -> list[int]:
    return [k for k, s in enumerate(program.statements)
            if any(r.tensor == tensor for r in P.statement_reads(s))]


def _writers(program: P.Program, tensor: str) -> list[int]:
    return [k for k, s in enumerate(program.statements) if s.target == tensor]


def _untouched_between(program: P.Program, names: set[str], first: int, last: int) -> bool:
    """No statement strictly between ``first`` and ``last`` writes any of ``names``."""
    return all(program.statements[k].target not in names for k in range(first + 1, last))


def _is_temporary(program: P.Program, name: str) -> bool:
    return name not in program.inputs and name not in program.outputs


def _inline_one(program: P.Program) -> P.Program | None:
    sizes = program.sizes
    for k, producer in enumerate(program.statements):
        t = producer.target
        if (producer.reduce is not None and P.reduced_indices(producer)) or \
                producer.accumulate or producer.epilogue is not None or \
                not _is_temporary(program, t) or len(_writers(program, t)) != 1:
            continue
        readers = _readers(program, t)
        tensor = program.tensor(t)
        if len(readers) != 1 or readers[0] <= k or \
                any(size != sizes[i] for i, size in zip(producer.indices, tensor.shape,
                                                         strict=True)):
            continue
        consumer_at = readers[0]
        consumer = program.statements[consumer_at]
        space = set(P.statement_indices(consumer))
        if any(set(r.indices) != space for r in P.statement_reads(consumer) if r.tensor == t):
            continue  # the consumer would recompute each element many times (or a GEMM
            # operand would stop being a plain read)
        inputs = {r.tensor for r in P.reads(producer.expr)}
        if not _untouched_between(program, inputs, k, consumer_at):
            continue

        def inline(read: P.Read, producer=producer, tensor=tensor) -> P.Expr:
            value = _rename(producer.expr, dict(zip(producer.indices, read.indices,
                                                    strict=True)))
            return P.Cast(tensor.dtype, value) if tensor.dtype != producer.dtype else value

        fused = replace(consumer, expr=_substitute(consumer.expr, t, inline))
        if consumer.epilogue is not None:
            fused = replace(fused, epilogue=_substitute(consumer.epilogue, t, inline))
        statements = [s for j, s in enumerate(program.statements) if j != k]
        statements[consumer_at - 1] = fused
        tensors = tuple(x for x in program.tensors if x.name != t)
        return replace(program, statements=tuple(statements), tensors=tensors)
    return None


def _epilogue_one(program: P.Program) -> P.Program | None:
    for e, tail in enumerate(program.statements):
        if tail.reduce is not None and P.reduced_indices(tail) or tail.accumulate or \
                tail.epilogue is not None:
            continue
        for read in P.reads(tail.expr):
            t = read.tensor
            if not _is_temporary(program, t) or read.indices != tail.indices:
                continue
            writers = _writers(program, t)
            if len(writers) != 1 or _readers(program, t) != [e] or writers[0] >= e:
                continue
            r = writers[0]
            head = program.statements[r]
            if not P.reduced_indices(head) or head.accumulate or head.epilogue is not None or \
                    head.dtype != tail.dtype or program.tensor(t).dtype != head.dtype:
                continue
            if any(x.tensor == t and x.indices != tail.indices for x in P.reads(tail.expr)):
                continue
            others = {x.tensor for x in P.reads(tail.expr)} - {t}
            written_before = {s.target for s in program.statements[:r]}
            if any(o not in program.inputs and o not in written_before for o in others) or \
                    not _untouched_between(program, others | {tail.target}, r - 1, e):
                continue
            rename = dict(zip(head.indices, tail.indices, strict=True))
            clash = set(P.reduced_indices(head)) & set(tail.indices)
            if clash:
                continue
            fused = P.Statement(
                tail.target, tail.indices, head.reduce, _rename(head.expr, rename), head.dtype,
                epilogue=_substitute(tail.expr, t, lambda _read: P.Reduced()),
            )
            statements = list(program.statements)
            statements[r] = fused
            del statements[e]
            tensors = tuple(x for x in program.tensors if x.name != t)
            return replace(program, statements=tuple(statements), tensors=tensors)
    return None


def fuse(program: P.Program) -> P.Program:
    """Fold elementwise tails into reductions, then inline elementwise temporaries."""
    for step in (_epilogue_one, _inline_one):
        while True:
            fused = step(program)
            if fused is None:
                break
            program = fused
    return program

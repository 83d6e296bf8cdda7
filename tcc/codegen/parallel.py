"""The parallel runtime, generated as LLVM IR into every module that needs it.

``parallel_for(body, context, n, threads)`` splits ``0..n`` into ``threads`` contiguous
chunks, runs chunk 0 on the calling thread and the rest on POSIX threads, and joins them.
It needs nothing but libc/pthread: no Python, in the JIT and in exported libraries alike.
A thread that cannot be started runs its chunk on the caller, so the result never depends
on it. Each body has the type ``void (i8* context, i64 begin, i64 end)``.
"""

from __future__ import annotations

from llvmlite import ir

from tcc.codegen import scalar as S

I8P = ir.PointerType(S.I8)
BODY_TYPE = ir.FunctionType(ir.VoidType(), [I8P, S.I64, S.I64])
_TASK = ir.ArrayType(S.I64, 4)  # body, context, begin, end


def _external(module: ir.Module, name: str, fnty: ir.FunctionType) -> ir.Function:
    existing = module.globals.get(name)
    return existing if existing is not None else ir.Function(module, fnty, name)


def _worker(module: ir.Module) -> ir.Function:
    name = "tcc.parallel.worker"
    if name in module.globals:
        return module.globals[name]
    fn = ir.Function(module, ir.FunctionType(I8P, [I8P]), name)
    fn.linkage = "internal"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    fields = b.bitcast(fn.args[0], ir.PointerType(S.I64))
    values = [b.load(b.gep(fields, [ir.Constant(S.I64, k)], source_etype=S.I64), typ=S.I64)
              for k in range(4)]
    body = b.inttoptr(values[0], ir.PointerType(BODY_TYPE))
    b.call(body, [b.inttoptr(values[1], I8P), values[2], values[3]])
    b.ret(ir.Constant(I8P, None))
    return fn


def parallel_for(module: ir.Module, threads: int) -> ir.Function:
    """``void tcc.parallel.for.T(body*, i8* ctx, i64 n)`` for a fixed thread count T."""
    name = f"tcc.parallel.for.{threads}"
    if name in module.globals:
        return module.globals[name]
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(),
                                             [ir.PointerType(BODY_TYPE), I8P, S.I64]), name)
    fn.linkage = "internal"
    body_fn, ctx, n = fn.args
    create = _external(module, "pthread_create", ir.FunctionType(
        ir.IntType(32), [ir.PointerType(S.I64), I8P, ir.PointerType(ir.FunctionType(I8P, [I8P])),
                         I8P]))
    join = _external(module, "pthread_join",
                     ir.FunctionType(ir.IntType(32), [S.I64, ir.PointerType(I8P)]))
    worker = _worker(module)
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    tasks = b.alloca(_TASK, size=ir.Constant(S.I64, threads))
    handles = b.alloca(S.I64, size=ir.Constant(S.I64, threads))
    started = b.alloca(ir.IntType(1), size=ir.Constant(S.I64, threads))
    t_const = ir.Constant(S.I64, threads)
    chunk = b.sdiv(b.add(n, ir.Constant(S.I64, threads - 1)), t_const)

    def bounds(t: ir.Value) -> tuple[ir.Value, ir.Value]:
        begin = b.mul(t, chunk)
        end = b.add(begin, chunk)
        too_far = b.icmp_signed(">", end, n)
        return begin, b.select(too_far, n, end)

    zero = ir.Constant(S.I64, 0)
    body_int = b.ptrtoint(body_fn, S.I64)
    ctx_int = b.ptrtoint(ctx, S.I64)
    # start threads 1..T-1 (a chunk that is empty or fails to start runs inline)
    for t in range(1, threads):
        t_val = ir.Constant(S.I64, t)
        begin, end = bounds(t_val)
        task = b.gep(tasks, [t_val], source_etype=_TASK)
        slots = b.bitcast(task, ir.PointerType(S.I64))
        for k, value in enumerate((body_int, ctx_int, begin, end)):
            b.store(value, b.gep(slots, [ir.Constant(S.I64, k)], source_etype=S.I64))
        flag = b.gep(started, [t_val], source_etype=ir.IntType(1))
        b.store(ir.Constant(ir.IntType(1), 0), flag)
        nonempty = b.icmp_signed("<", begin, end)
        with b.if_then(nonempty):
            handle = b.gep(handles, [t_val], source_etype=S.I64)
            status = b.call(create, [handle, ir.Constant(I8P, None), worker,
                                     b.bitcast(task, I8P)])
            ok = b.icmp_signed("==", status, ir.Constant(ir.IntType(32), 0))
            b.store(ok, flag)
            with b.if_then(b.not_(ok)):
                b.call(body_fn, [ctx, begin, end])
    begin0, end0 = bounds(zero)
    b.call(body_fn, [ctx, begin0, end0])
    for t in range(1, threads):
        t_val = ir.Constant(S.I64, t)
        flag = b.load(b.gep(started, [t_val], source_etype=ir.IntType(1)), typ=ir.IntType(1))
        with b.if_then(flag):
            handle = b.load(b.gep(handles, [t_val], source_etype=S.I64), typ=S.I64)
            b.call(join, [handle, ir.Constant(ir.PointerType(I8P), None)])
    b.ret_void()
    return fn

"""The parallel runtime, generated as LLVM IR into every module that needs it.

``parallel_for(body, context, n, threads)`` splits ``0..n`` into contiguous chunks, one per
thread: the caller and the workers of a pool of POSIX threads that the module starts on
first use and keeps. It needs nothing but libc/pthread: no Python, in the JIT and in
exported libraries alike. Each body has the type ``void (i8* context, i64 begin, i64 end)``.
"""

from __future__ import annotations

from llvmlite import ir

from tcc.codegen import scalar as S

I8P = ir.PointerType(S.I8)
BODY_TYPE = ir.FunctionType(ir.VoidType(), [I8P, S.I64, S.I64])


def _external(module: ir.Module, name: str, fnty: ir.FunctionType) -> ir.Function:
    existing = module.globals.get(name)
    return existing if existing is not None else ir.Function(module, fnty, name)


# -- a pool of worker threads per module (started on first use, then reused) ------------
#
# Workers poll briefly, then sleep on a condition variable between regions. Shared state
# is accessed atomically (its address never escapes, so plain loads could be hoisted out
# of the waiting loops); the mutex only guards sleeping and waking. A region: the caller
# publishes (body, context, n, parts), bumps the generation and wakes sleepers; worker w
# runs chunk w and counts itself off; the caller runs chunk 0 and waits for the count.
# A worker that cannot be started
# leaves its chunk to fewer, larger chunks, so results never depend on it. Regions are
# serialized by a second mutex. After fork() the child starts a new pool.

_SYNC = ir.ArrayType(S.I8, 64)  # room for pthread_mutex_t (40 B) / pthread_cond_t (48 B)
_STATE = ("gen", "pending", "fn", "ctx", "n", "parts", "size")


def _pool_globals(module: ir.Module) -> dict[str, ir.GlobalVariable]:
    found = {}
    for name in ("mutex", "work", "done", "region"):
        key = f"tcc.pool.{name}"
        g = module.globals.get(key)
        if g is None:
            g = ir.GlobalVariable(module, _SYNC, key)
            g.linkage = "internal"
            g.initializer = ir.Constant(_SYNC, None)  # zero: the static initializers
            g.align = 64
        found[name] = g
    for name in (*_STATE, "pid"):
        key = f"tcc.pool.{name}"
        g = module.globals.get(key)
        if g is None:
            g = ir.GlobalVariable(module, S.I64, key)
            g.linkage = "internal"
            g.initializer = ir.Constant(S.I64, 0)
            g.align = 8
        found[name] = g
    return found


class _Calls:
    """The libc/pthread functions the pool calls, declared once per module."""

    def __init__(self, module: ir.Module) -> None:
        i32 = ir.IntType(32)
        self.lock = _external(module, "pthread_mutex_lock", ir.FunctionType(i32, [I8P]))
        self.unlock = _external(module, "pthread_mutex_unlock", ir.FunctionType(i32, [I8P]))
        self.wait = _external(module, "pthread_cond_wait", ir.FunctionType(i32, [I8P, I8P]))
        self.broadcast = _external(module, "pthread_cond_broadcast",
                                   ir.FunctionType(i32, [I8P]))
        self.signal = _external(module, "pthread_cond_signal", ir.FunctionType(i32, [I8P]))
        self.create = _external(module, "pthread_create", ir.FunctionType(
            i32, [ir.PointerType(S.I64), I8P, ir.PointerType(ir.FunctionType(I8P, [I8P])),
                  I8P]))
        self.detach = _external(module, "pthread_detach", ir.FunctionType(i32, [S.I64]))
        self.getpid = _external(module, "getpid", ir.FunctionType(i32, []))


def _get(b: ir.IRBuilder, g: ir.GlobalVariable) -> ir.Value:
    return b.load_atomic(g, "seq_cst", 8)


def _set(b: ir.IRBuilder, g: ir.GlobalVariable, value: ir.Value) -> None:
    b.store_atomic(value, g, "seq_cst", 8)


def _ptr(b: ir.IRBuilder, g: ir.GlobalVariable) -> ir.Value:
    return b.bitcast(g, I8P)


SPIN = 3000  # ~0.2 ms of polling (pause ~140 cycles) before a thread sleeps: kernels with
# hundreds of regions per call (long K) skip the kernel's wake-up latency at each one (a
# 722-region kernel: 5800 context switches per 8 calls at 300 polls, 150 at 30000), and an
# idle pool soon sleeps


def _pause(b: ir.IRBuilder) -> None:
    module = b.module
    if not str(module.triple).startswith("x86_64"):
        return
    fn = module.globals.get("llvm.x86.sse2.pause") or ir.Function(
        module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
    b.call(fn, [])


def _spin_until(b: ir.IRBuilder, ready, name: str) -> None:
    """Poll ``ready()`` (an i1 from atomic loads) up to SPIN times, without any lock."""
    fn = b.function
    head, pause, done = (fn.append_basic_block(f"{name}.{x}") for x in ("spin", "pause", "done"))
    before = b.block
    b.branch(head)
    b.position_at_end(head)
    count = b.phi(S.I64)
    count.add_incoming(ir.Constant(S.I64, 0), before)
    more = b.and_(b.not_(ready()), b.icmp_signed("<", count, ir.Constant(S.I64, SPIN)))
    b.cbranch(more, pause, done)
    b.position_at_end(pause)
    _pause(b)
    count.add_incoming(b.add(count, ir.Constant(S.I64, 1)), pause)
    b.branch(head)
    b.position_at_end(done)


def _chunk(b: ir.IRBuilder, w: ir.Value, parts: ir.Value, n: ir.Value):
    """[begin, end) of chunk w of 0..n split into ``parts`` contiguous chunks."""
    size = b.sdiv(b.add(n, b.sub(parts, ir.Constant(S.I64, 1))), parts)
    begin = b.mul(w, size)
    end = b.add(begin, size)
    end = b.select(b.icmp_signed(">", end, n), n, end)
    return begin, end


def _pool_worker(module: ir.Module) -> ir.Function:
    """Worker w: wait for a new generation (polling, then sleeping), run chunk w, report."""
    name = "tcc.pool.worker"
    if name in module.globals:
        return module.globals[name]
    g, c = _pool_globals(module), _Calls(module)
    fn = ir.Function(module, ir.FunctionType(I8P, [I8P]), name)
    fn.linkage = "internal"
    entry, wait, check, sleep, run = (fn.append_basic_block(x) for x in
                                      ("entry", "wait", "check", "sleep", "run"))
    b = ir.IRBuilder(entry)
    arg = b.ptrtoint(fn.args[0], S.I64)
    w = b.and_(arg, ir.Constant(S.I64, 0xFFFF))
    seen = b.alloca(S.I64)
    b.store(b.lshr(arg, ir.Constant(S.I64, 16)), seen)  # the generation at creation
    b.branch(wait)

    b.position_at_end(wait)  # no lock held: poll, then sleep on the condition variable
    last = b.load(seen)
    _spin_until(b, lambda: b.icmp_signed("!=", _get(b, g["gen"]), last), "worker")
    fresh = b.icmp_signed("!=", _get(b, g["gen"]), last)
    locked = b.block
    b.cbranch(fresh, run, check)
    b.position_at_end(check)
    b.call(c.lock, [_ptr(b, g["mutex"])])
    b.branch(sleep)
    b.position_at_end(sleep)
    idle = b.icmp_signed("==", _get(b, g["gen"]), last)
    with b.if_then(idle):
        b.call(c.wait, [_ptr(b, g["work"]), _ptr(b, g["mutex"])])
    still = b.icmp_signed("==", _get(b, g["gen"]), last)
    with b.if_then(b.not_(still)):
        b.call(c.unlock, [_ptr(b, g["mutex"])])
    b.cbranch(still, sleep, run)
    del locked

    b.position_at_end(run)  # the task was published before the generation changed
    b.store(_get(b, g["gen"]), seen)
    body = b.inttoptr(_get(b, g["fn"]), ir.PointerType(BODY_TYPE))
    ctx = b.inttoptr(_get(b, g["ctx"]), I8P)
    n, parts = _get(b, g["n"]), _get(b, g["parts"])
    with b.if_then(b.icmp_signed("<", w, parts)):
        begin, end = _chunk(b, w, parts, n)
        with b.if_then(b.icmp_signed("<", begin, end)):
            b.call(body, [ctx, begin, end])
    before = b.atomic_rmw("sub", g["pending"], ir.Constant(S.I64, 1), "seq_cst")
    with b.if_then(b.icmp_signed("==", before, ir.Constant(S.I64, 1))):  # the last one
        b.call(c.lock, [_ptr(b, g["mutex"])])
        b.call(c.signal, [_ptr(b, g["done"])])
        b.call(c.unlock, [_ptr(b, g["mutex"])])
    b.branch(wait)
    return fn


RUNNER_TYPE = ir.FunctionType(ir.VoidType(), [ir.PointerType(BODY_TYPE), I8P, S.I64, S.I64])
SHARED_RUNNER = "tcc_rt_parallel_for"  # the JIT's one pool per process


def runner(module: ir.Module, shared: bool) -> ir.Function:
    """``void run(body*, i8* ctx, i64 n, i64 threads)``: run ``body`` over 0..n on up to
    ``threads`` threads (the caller is one of them). ``shared``: call the process-wide pool
    of the JIT's runtime module; otherwise this module gets a pool of its own (exported
    libraries, which must stand alone)."""
    if shared:
        found = module.globals.get(SHARED_RUNNER)
        return found if found is not None else ir.Function(module, RUNNER_TYPE, SHARED_RUNNER)
    return _define_runner(module, "tcc.parallel.run", "internal")


def runtime_module(triple: str) -> ir.Module:
    """The JIT's runtime: the shared pool, loaded once per process."""
    module = ir.Module(name="tcc_runtime")
    module.triple = triple
    _define_runner(module, SHARED_RUNNER, "external")
    return module


def _define_runner(module: ir.Module, name: str, linkage: str) -> ir.Function:
    if name in module.globals:
        return module.globals[name]
    g, c = _pool_globals(module), _Calls(module)
    worker = _pool_worker(module)
    fn = ir.Function(module, RUNNER_TYPE, name)
    fn.linkage = linkage
    body_fn, ctx, n, threads = fn.args
    entry, alone, region, grow, start, published, waiting, sleep, finished = (
        fn.append_basic_block(x) for x in ("entry", "alone", "region", "grow", "start",
                                           "published", "waiting", "sleep", "finished"))
    one, zero = ir.Constant(S.I64, 1), ir.Constant(S.I64, 0)
    b = ir.IRBuilder(entry)
    serial = b.or_(b.icmp_signed("<=", n, one), b.icmp_signed("<=", threads, one))
    b.cbranch(serial, alone, region)
    b.position_at_end(alone)
    b.call(body_fn, [ctx, zero, n])
    b.ret_void()

    b.position_at_end(region)
    b.call(c.lock, [_ptr(b, g["region"])])
    b.call(c.lock, [_ptr(b, g["mutex"])])
    pid = b.sext(b.call(c.getpid, []), S.I64)
    with b.if_then(b.icmp_signed("!=", pid, _get(b, g["pid"]))):  # first use, or a fork
        _set(b, g["size"], zero)
        _set(b, g["pid"], pid)
    b.branch(grow)
    b.position_at_end(grow)  # start workers until the pool has threads - 1
    size = _get(b, g["size"])
    b.cbranch(b.icmp_signed("<", size, b.sub(threads, one)), start, published)
    b.position_at_end(start)
    handle = b.alloca(S.I64)
    w = b.add(size, one)
    tag = b.or_(w, b.shl(_get(b, g["gen"]), ir.Constant(S.I64, 16)))
    status = b.call(c.create, [handle, ir.Constant(I8P, None), worker, b.inttoptr(tag, I8P)])
    ok = b.icmp_signed("==", status, ir.Constant(ir.IntType(32), 0))
    with b.if_then(ok):
        b.call(c.detach, [b.load(handle)])
        _set(b, g["size"], w)
    b.cbranch(ok, grow, published)

    b.position_at_end(published)
    pool_size = _get(b, g["size"])
    parts = b.add(pool_size, one)
    parts = b.select(b.icmp_signed("<", threads, parts), threads, parts)
    workers = pool_size  # every worker reports, even one without a chunk this time
    _set(b, g["fn"], b.ptrtoint(body_fn, S.I64))
    _set(b, g["ctx"], b.ptrtoint(ctx, S.I64))
    _set(b, g["n"], n)
    _set(b, g["parts"], parts)
    _set(b, g["pending"], workers)
    _set(b, g["gen"], b.add(_get(b, g["gen"]), one))
    b.call(c.broadcast, [_ptr(b, g["work"])])
    b.call(c.unlock, [_ptr(b, g["mutex"])])
    begin, end = _chunk(b, zero, parts, n)
    b.call(body_fn, [ctx, begin, end])
    _spin_until(b, lambda: b.icmp_signed("==", _get(b, g["pending"]), zero), "caller")
    b.call(c.lock, [_ptr(b, g["mutex"])])
    b.branch(waiting)
    b.position_at_end(waiting)
    b.cbranch(b.icmp_signed(">", _get(b, g["pending"]), zero), sleep, finished)
    b.position_at_end(sleep)
    b.call(c.wait, [_ptr(b, g["done"]), _ptr(b, g["mutex"])])
    b.branch(waiting)
    b.position_at_end(finished)
    b.call(c.unlock, [_ptr(b, g["mutex"])])
    b.call(c.unlock, [_ptr(b, g["region"])])
    b.ret_void()
    return fn

"""Compile (LLVM IR -> machine code) and load (machine code -> addresses), kept apart.

Compiling parses the IR, verifies it, runs LLVM's new pass manager at the chosen level and
emits an object file; the object is cached on disk under a key of (IR text, triple, CPU,
features, tcc and llvmlite versions, level). Loading adds the object to one MCJIT engine
per process and returns function addresses.
"""

from __future__ import annotations

import threading
from functools import cache

import llvmlite
import llvmlite.binding as llvm

from tcc.codegen import parallel
from tcc.codegen.llvm_cpu import CpuTarget
from tcc.errors import CompileError
from tcc.options import Options
from tcc.runtime.cache import DiskCache, cache_key

TCC_VERSION = "0.1.0"
_lock = threading.RLock()


@cache
def _initialize() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    llvm.initialize_native_asmparser()  # inline asm (CPUID checks in exported libraries)


@cache
def host_target() -> CpuTarget:
    """The machine this process runs on, as LLVM names it."""
    _initialize()
    return CpuTarget(
        triple=llvm.get_process_triple(),
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
    )


@cache
def target_machine(target: CpuTarget, opt_level: int = 3) -> llvm.TargetMachine:
    _initialize()
    return llvm.Target.from_triple(target.triple).create_target_machine(
        cpu=target.cpu, features=target.features, opt=opt_level, reloc="pic", codemodel="default"
    )


def optimize(ir_text: str, target: CpuTarget, opt_level: int = 3) -> llvm.ModuleRef:
    """Parse, verify and optimize LLVM IR with the new pass manager."""
    _initialize()
    try:
        module = llvm.parse_assembly(ir_text)
        module.verify()
    except RuntimeError as exc:
        raise CompileError(f"LLVM rejected the generated IR: {exc}") from exc
    machine = target_machine(target, opt_level)
    module.triple = target.triple
    module.data_layout = str(machine.target_data)
    if opt_level > 0:
        tuning = llvm.create_pipeline_tuning_options(speed_level=opt_level)
        tuning.loop_vectorization = True
        tuning.slp_vectorization = True
        tuning.loop_unrolling = True
        builder = llvm.create_pass_builder(machine, tuning)
        builder.getModulePassManager().run(module, builder)
    return module


def emit_object(module: llvm.ModuleRef, target: CpuTarget, opt_level: int = 3) -> bytes:
    return target_machine(target, opt_level).emit_object(module)


def emit_assembly(module: llvm.ModuleRef, target: CpuTarget, opt_level: int = 3) -> str:
    return target_machine(target, opt_level).emit_assembly(module)


def object_key(ir_text: str, target: CpuTarget, opt_level: int) -> str:
    return cache_key(
        ir_text, target.triple, target.cpu, target.features, TCC_VERSION,
        llvmlite.__version__, str(opt_level),
    )


def compile_object(ir_text: str, target: CpuTarget, options: Options) -> bytes:
    """Machine code for ``ir_text``, from the disk cache when it is there."""
    key = object_key(ir_text, target, options.opt_level)
    disk = DiskCache(options.cache_dir) if options.disk_cache else None
    if disk is not None:
        cached = disk.get(key)
        if cached is not None:
            return cached
    with _lock:
        module = optimize(ir_text, target, options.opt_level)
        obj = emit_object(module, target, options.opt_level)
    if disk is not None:
        disk.put(key, obj)
    return obj


class _Engine:
    """One MCJIT engine per process; objects are added to it and never removed."""

    def __init__(self) -> None:
        _initialize()
        machine = target_machine(host_target(), 3)
        self.engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), machine)
        self.loaded: dict[str, dict[str, int]] = {}
        self.runtime_loaded = False

    def load(self, key: str, obj: bytes, symbols: tuple[str, ...]) -> dict[str, int]:
        with _lock:
            if key not in self.loaded:
                self.engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
                self.engine.finalize_object()
                addresses = {s: self.engine.get_function_address(s) for s in symbols}
                missing = [s for s, a in addresses.items() if not a]
                if missing:
                    raise CompileError(f"compiled object lacks symbols {missing}")
                self.loaded[key] = addresses
            return self.loaded[key]


@cache
def engine() -> _Engine:
    return _Engine()


def load_functions(
    ir_text: str, symbols: tuple[str, ...], options: Options
) -> dict[str, int]:
    """Compile (or fetch) and load ``ir_text`` for the host; return symbol addresses.
    Code that runs parallel loops links to the runtime module, loaded once first."""
    target = host_target()
    if parallel.SHARED_RUNNER in ir_text and not engine().runtime_loaded:
        runtime = str(parallel.runtime_module(target.triple))
        engine().load(object_key(runtime, target, options.opt_level),
                      compile_object(runtime, target, options), (parallel.SHARED_RUNNER,))
        engine().runtime_loaded = True
    key = object_key(ir_text, target, options.opt_level)
    loaded = engine().loaded.get(key)
    if loaded is not None:
        return loaded
    obj = compile_object(ir_text, target, options)
    return engine().load(key, obj, symbols)

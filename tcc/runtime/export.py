"""Export compiled programs as a shared or static library plus a C header.

Each exported function has a plain C signature, ``int NAME(const T *op0, ..., T *out)``, on
C-contiguous arrays, and returns 0 on success, 2 when the CPU lacks a feature the library
was built for (checked with CPUID/XGETBV before any vector instruction runs), 3 when the
arena cannot be allocated. The library needs only libc, libm and pthread.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import llvmlite.binding as llvm
from llvmlite import ir

from tcc.codegen import scalar as S
from tcc.codegen.llvm_cpu import CpuTarget
from tcc.errors import BackendUnavailableError, OperandError
from tcc.ir import program as P
from tcc.options import Options
from tcc.runtime import jit
from tcc.runtime.program import render_program

_V2 = "+sse3,+ssse3,+sse4.1,+sse4.2,+popcnt,+cx16"
_V3 = _V2 + ",+avx,+avx2,+fma,+bmi,+bmi2,+f16c,+movbe,+lzcnt"
_V4 = _V3 + ",+avx512f,+avx512bw,+avx512cd,+avx512dq,+avx512vl"
NAMED_CPUS = {
    "generic": ("x86-64", "+sse2"),
    "x86-64": ("x86-64", "+sse2"),
    "x86-64-v2": ("x86-64-v2", _V2),
    "x86-64-v3": ("x86-64-v3", _V3),
    "x86-64-v4": ("x86-64-v4", _V4),
}

# feature -> (cpuid leaf, register index eax=0 ebx=1 ecx=2 edx=3, bit, xgetbv mask)
_CPUID_BITS = {
    "sse4.1": (1, 2, 19, 0), "sse4.2": (1, 2, 20, 0), "popcnt": (1, 2, 23, 0),
    "movbe": (1, 2, 22, 0), "fma": (1, 2, 12, 0x6), "avx": (1, 2, 28, 0x6),
    "f16c": (1, 2, 29, 0x6), "avx2": (7, 1, 5, 0x6), "bmi": (7, 1, 3, 0),
    "bmi2": (7, 1, 8, 0), "avx512f": (7, 1, 16, 0xE6), "avx512dq": (7, 1, 17, 0xE6),
    "avx512cd": (7, 1, 28, 0xE6), "avx512bw": (7, 1, 30, 0xE6), "avx512vl": (7, 1, 31, 0xE6),
    "lzcnt": (0x80000001, 2, 5, 0), "avx512vp2intersect": (7, 3, 8, 0xE6),
}

_C_TYPES = {
    "bool": "uint8_t", "int8": "int8_t", "int16": "int16_t", "int32": "int32_t",
    "int64": "int64_t", "uint8": "uint8_t", "uint16": "uint16_t", "uint32": "uint32_t",
    "uint64": "uint64_t", "float16": "uint16_t", "float32": "float", "float64": "double",
    "complex64": "float", "complex128": "double",
}


def export_target(cpu: str | None) -> CpuTarget:
    """The target for ``cpu``: None/'native'/'host' is this machine; or a named level."""
    host = jit.host_target()
    if cpu in (None, "native", "host"):
        return host
    if cpu not in NAMED_CPUS:
        raise OperandError(f"unknown cpu {cpu!r}; use one of native, {', '.join(NAMED_CPUS)}")
    name, features = NAMED_CPUS[cpu]
    return CpuTarget(host.triple, name, features)


@dataclass(frozen=True, slots=True)
class ExportItem:
    """One function of a library: a program and how its operands are described."""

    name: str
    program: P.Program
    description: str
    index_names: Mapping[str, tuple[str, ...]]  # tensor -> the subscripts of its axes
    size_names: tuple[str, ...] = ()  # C names of the run-time sizes (program.dynamic order)
    execution: object = None  # an ExecutionPlan (remat under a budget); None: program order
    memory_plan: object = None  # its MemoryPlan


def _cpu_check(module: ir.Module, features: list[str]) -> ir.Function:
    """``i32 tcc_cpu_ok()``: 1 when every feature is present (CPUID + XGETBV), else 0."""
    fn = ir.Function(module, ir.FunctionType(S.I32, []), "tcc.cpu_ok")
    fn.linkage = "internal"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    i32 = S.I32
    cpuid = ir.InlineAsm(ir.FunctionType(ir.LiteralStructType([i32] * 4), [i32, i32]),
                         "cpuid", "={ax},={bx},={cx},={dx},{ax},{cx}", side_effect=True)
    xgetbv = ir.InlineAsm(ir.FunctionType(ir.LiteralStructType([i32] * 2), [i32]),
                          "xgetbv", "={ax},={dx},{cx}", side_effect=True)
    ok = ir.Constant(ir.IntType(1), 1)
    leaves: dict[int, ir.Value] = {}
    max_basic = b.extract_value(b.call(cpuid, [ir.Constant(i32, 0), ir.Constant(i32, 0)]), 0)
    max_ext = b.extract_value(
        b.call(cpuid, [ir.Constant(i32, 0x80000000), ir.Constant(i32, 0)]), 0)
    os_mask = 0
    for feature in features:
        leaf, register, bit, mask = _CPUID_BITS[feature]
        if leaf not in leaves:
            leaves[leaf] = b.call(cpuid, [ir.Constant(i32, leaf), ir.Constant(i32, 0)])
            limit = max_ext if leaf >= 0x80000000 else max_basic
            ok = b.and_(ok, b.icmp_unsigned(">=", limit, ir.Constant(i32, leaf)))
        value = b.extract_value(leaves[leaf], register)
        has = b.icmp_unsigned("!=", b.and_(value, ir.Constant(i32, 1 << bit)),
                              ir.Constant(i32, 0))
        ok = b.and_(ok, has)
        os_mask |= mask
    if os_mask:
        osxsave = b.and_(b.extract_value(b.call(cpuid, [ir.Constant(i32, 1),
                                                        ir.Constant(i32, 0)]), 2),
                         ir.Constant(i32, 1 << 27))
        has_os = b.icmp_unsigned("!=", osxsave, ir.Constant(i32, 0))
        with b.if_then(b.not_(has_os)):
            b.ret(ir.Constant(i32, 0))
        xcr0 = b.extract_value(b.call(xgetbv, [ir.Constant(i32, 0)]), 0)
        masked = b.and_(xcr0, ir.Constant(i32, os_mask))
        ok = b.and_(ok, b.icmp_unsigned("==", masked, ir.Constant(i32, os_mask)))
    b.ret(b.zext(ok, i32))
    return fn


def _cached_cpu_check(module: ir.Module, check: ir.Function) -> ir.Function:
    """Run the CPUID check once per process (CPUID traps to the hypervisor in a VM, which
    costs microseconds); later calls read the cached answer. Races only repeat the check."""
    state = ir.GlobalVariable(module, S.I32, "tcc.cpu_state")
    state.linkage = "internal"
    state.initializer = ir.Constant(S.I32, 0)  # 0 unknown, 1 ok, 2 missing a feature
    fn = ir.Function(module, ir.FunctionType(S.I32, []), "tcc.cpu_ok_cached")
    fn.linkage = "internal"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    known = b.load(state, typ=S.I32)
    with b.if_then(b.icmp_signed("==", known, ir.Constant(S.I32, 0)), likely=False):
        ok = b.call(check, [])
        b.store(b.select(b.icmp_signed("!=", ok, ir.Constant(S.I32, 0)),
                         ir.Constant(S.I32, 1), ir.Constant(S.I32, 2)), state)
    final = b.load(state, typ=S.I32)
    b.ret(b.zext(b.icmp_signed("==", final, ir.Constant(S.I32, 1)), S.I32))
    return fn


def _wrapper_module(items: list[ExportItem], arenas: dict[str, int], target: CpuTarget):
    """The public C entry of each item: check the CPU, allocate the arena, run."""
    module = ir.Module(name="tcc_export")
    module.triple = target.triple
    i8p = ir.PointerType(S.I8)
    features = [f[1:] for f in target.features.split(",") if f[1:] in _CPUID_BITS and f[0] == "+"]
    check = _cached_cpu_check(module, _cpu_check(module, features)) if features else None
    alloc = ir.Function(module, ir.FunctionType(i8p, [S.I64, S.I64]), "aligned_alloc")
    free = ir.Function(module, ir.FunctionType(ir.VoidType(), [i8p]), "free")
    for item in items:
        n = len(item.program.inputs) + len(item.program.outputs)
        n_sizes = len(item.program.dynamic)
        arena = arenas[item.name]
        pointer_args = [i8p] * (n + (1 if arena else 0))
        inner = ir.Function(module, ir.FunctionType(S.I32, pointer_args + [S.I64] * n_sizes),
                            f"{item.name}_impl")
        public = ir.Function(module, ir.FunctionType(S.I32, [i8p] * n + [S.I64] * n_sizes),
                             item.name)
        b = ir.IRBuilder(public.append_basic_block("entry"))
        if check is not None:
            with b.if_then(b.icmp_signed("==", b.call(check, []), ir.Constant(S.I32, 0)),
                           likely=False):
                b.ret(ir.Constant(S.I32, 2))
        sizes = list(public.args[n:])
        for size in sizes:
            with b.if_then(b.icmp_signed("<", size, ir.Constant(S.I64, 0)), likely=False):
                b.ret(ir.Constant(S.I32, 4))
        args = list(public.args[:n])
        if arena:
            size = -(-arena // 64) * 64
            memory = b.call(alloc, [ir.Constant(S.I64, 64), ir.Constant(S.I64, size)])
            with b.if_then(b.icmp_unsigned("==", memory, ir.Constant(i8p, None)),
                           likely=False):
                b.ret(ir.Constant(S.I32, 3))
            status = b.call(inner, [*args, memory, *sizes])
            b.call(free, [memory])
        else:
            status = b.call(inner, [*args, *sizes])
        b.ret(status)
    return module


def build_library_object(
    items: list[ExportItem], target: CpuTarget, options: Options
) -> bytes:
    """One object file with every item; only the public names are global."""
    jit._initialize()  # noqa: SLF001 (the JIT owns LLVM's set-up)
    combined = None
    arenas = {}
    for item in items:
        rendered = render_program(item.program, {}, options, target, name=f"{item.name}_impl",
                                  execution=item.execution, memory_plan=item.memory_plan)
        arenas[item.name] = rendered.memory_plan.arena_bytes if rendered.entry.temps else 0
        module = llvm.parse_assembly(rendered.llvm_text)
        if combined is None:
            combined = module
        else:
            combined.link_in(module)
    assert combined is not None
    combined.link_in(llvm.parse_assembly(str(_wrapper_module(items, arenas, target))))
    public = {item.name for item in items}
    for function in combined.functions:
        if not function.is_declaration and function.name not in public:
            function.linkage = llvm.Linkage.internal
    module = jit.optimize(str(combined), target, options.opt_level)
    return jit.emit_object(module, target, options.opt_level)


def c_header(items: list[ExportItem], library: str, target: CpuTarget) -> str:
    guard = "TCC_" + "".join(c if c.isalnum() else "_" for c in library.upper()) + "_H"
    lines = [
        f"/* {library}.h: generated by tcc for CPU {target.cpu}. */",
        f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "",
        "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
    ]
    for item in items:
        prog = item.program
        lines.append(f"/* {item.name}: {item.description}")
        lines.append(" * Arrays are C-contiguous (row-major); complex values are interleaved")
        lines.append(" * (real, imaginary) pairs.")
        params = []
        dynamic = dict(zip(prog.dynamic, item.size_names, strict=True))
        for k, name in enumerate((*prog.inputs, *prog.outputs)):
            tensor = prog.tensor(name)
            ctype = _C_TYPES[tensor.dtype]
            axes_names = item.index_names.get(name, ())
            dims = "".join(f"[{axis}]" if axis in dynamic.values() else f"[{d}]"
                           for d, axis in zip(tensor.shape, axes_names, strict=False))
            axes = ", ".join(axes_names)
            role = "in " if name in prog.inputs else "out"
            arg = f"op{k}" if name in prog.inputs else "out"
            lines.append(f" *   {role} {arg}: {tensor.dtype} {ctype}{dims}  ({axes})")
            const = "const " if name in prog.inputs else ""
            params.append(f"{const}{ctype} *{arg}")
        for size in item.size_names:
            lines.append(f" *   {size}: the run-time size of index {size} (>= 0)")
            params.append(f"int64_t {size}")
        lines.append(" * Returns 0 on success, 2 if this CPU lacks a feature the library was")
        lines.append(" * built for, 3 if working memory cannot be allocated, 4 if a size is")
        lines.append(" * negative. */")
        lines.append(f"int {item.name}({', '.join(params)});")
        lines.append("")
    lines += ["#ifdef __cplusplus", "}", "#endif", "", f"#endif /* {guard} */", ""]
    return "\n".join(lines)


def _ar_member(name: str, data: bytes) -> bytes:
    header = f"{name:<16}{0:<12}{0:<6}{0:<6}{'644':<8}{len(data):<10}`\n".encode()
    return header + data + (b"\n" if len(data) % 2 else b"")


def _write_static_archive(path: Path, member: str, data: bytes, symbols: list[str]) -> None:
    """A System V ``ar`` archive with a symbol index and one object (as ``ar rcs``)."""
    names = b"".join(s.encode() + b"\0" for s in symbols)
    index_size = 4 + 4 * len(symbols) + len(names)
    object_offset = 8 + 60 + index_size + index_size % 2
    index = len(symbols).to_bytes(4, "big")
    index += b"".join(object_offset.to_bytes(4, "big") for _ in symbols) + names
    archive = b"!<arch>\n" + _ar_member("/", index) + _ar_member(f"{member}/", data)
    path.write_bytes(archive)


def find_c_compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def link_shared(object_path: Path, output: Path) -> None:
    compiler = find_c_compiler()
    if compiler is None:
        raise BackendUnavailableError(
            f"linking {output.name} needs a C toolchain (cc, gcc or clang); install one "
            "(e.g. 'apt-get install gcc'), or export to a '.o' object file instead"
        )
    command = [compiler, "-shared", "-o", str(output), str(object_path), "-lpthread", "-lm"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackendUnavailableError(f"{' '.join(command)} failed: {result.stderr.strip()}")


def export_library(
    items: list[ExportItem], path: str | os.PathLike[str], *, cpu: str | None = None,
    options: Options,
) -> dict[str, str]:
    """Write the library (.so, .a or .o, by suffix) and its header beside it."""
    output = Path(path)
    suffix = output.suffix
    if suffix not in (".so", ".a", ".o"):
        raise OperandError(f"export to a .so, .a or .o file, not {output.name!r}")
    names = [item.name for item in items]
    for name in names:
        if not name.isidentifier():
            raise OperandError(f"{name!r} is not a valid C function name")
    if len(set(names)) != len(names):
        raise OperandError(f"function names must differ: {names}")
    target = export_target(cpu)
    obj = build_library_object(items, target, options)
    stem = output.stem
    header = output.with_suffix(".h")
    output.parent.mkdir(parents=True, exist_ok=True)
    header.write_text(c_header(items, header.stem, target))
    if suffix == ".o":
        output.write_bytes(obj)
    elif suffix == ".a":
        _write_static_archive(output, f"{stem}.o", obj, names)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            object_path = Path(scratch) / f"{stem}.o"
            object_path.write_bytes(obj)
            link_shared(object_path, output)
    return {"library": str(output), "header": str(header)}

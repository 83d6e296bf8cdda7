"""Scalar arithmetic in LLVM IR for every tcc dtype, dispatched through tables.

A value is a :class:`Value`: one LLVM value for real, integer and bool dtypes, two (real,
imaginary) for complex ones. Bools are ``i1`` in registers and ``i8`` in memory; float16 is
``half`` in memory and computes in float32 (the frontend inserts the casts).

Fast-math flags are chosen on purpose: every float operation may ``contract`` (form FMAs);
reduction combines also get ``reassoc`` so LLVM can vectorize them. No ``nnan``/``ninf``:
NaN and infinity propagate as in numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from tcc.dtypes import DTYPES, DType
from tcc.errors import TccError

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
_FLOATS = {"float16": ir.HalfType(), "float32": ir.FloatType(), "float64": ir.DoubleType()}
CONTRACT = ("contract",)
REASSOC = ("reassoc", "contract")


@dataclass(frozen=True, slots=True)
class Value:
    parts: tuple[ir.Value, ...]
    dtype: str

    @property
    def v(self) -> ir.Value:
        return self.parts[0]


def register_type(dtype: str) -> ir.Type:
    """The LLVM type of one component of ``dtype`` in registers."""
    d = DTYPES[dtype]
    if d.kind == "bool":
        return I1
    if d.kind in ("int", "uint"):
        return ir.IntType(d.bits)
    return _FLOATS[d.component]


def memory_type(dtype: str) -> ir.Type:
    """The LLVM element type of a buffer of ``dtype`` (complex: of one component)."""
    return I8 if DTYPES[dtype].kind == "bool" else register_type(dtype)


def constant(value: complex | float | int | bool, dtype: str) -> Value:
    d = DTYPES[dtype]
    ty = register_type(dtype)
    if d.kind == "complex":
        c = complex(value)
        return Value((ir.Constant(ty, c.real), ir.Constant(ty, c.imag)), dtype)
    if d.kind == "bool":
        return Value((ir.Constant(I1, int(bool(value))),), dtype)
    if d.kind in ("int", "uint"):
        return Value((ir.Constant(ty, int(value) & ((1 << d.bits) - 1)),), dtype)
    return Value((ir.Constant(ty, float(value)),), dtype)


def from_memory(builder: ir.IRBuilder, raw: ir.Value, dtype: str) -> ir.Value:
    return builder.icmp_unsigned("!=", raw, ir.Constant(I8, 0)) if dtype == "bool" else raw


def to_memory(builder: ir.IRBuilder, value: ir.Value, dtype: str) -> ir.Value:
    return builder.zext(value, I8) if dtype == "bool" else value


# ---- casts ------------------------------------------------------------------------------


def _intrinsic(builder: ir.IRBuilder, name: str, ret: ir.Type, args: list[ir.Value]):
    module = builder.module
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ret, [a.type for a in args]), name)
    return builder.call(fn, args)


def _type_suffix(ty: ir.Type) -> str:
    if isinstance(ty, ir.IntType):
        return f"i{ty.width}"
    return {ir.HalfType: "f16", ir.FloatType: "f32", ir.DoubleType: "f64"}[type(ty)]


def _cast_real(builder: ir.IRBuilder, x: ir.Value, src: DType, dst: DType) -> ir.Value:
    """Cast one real component between real kinds (complex handled by the caller)."""
    src_ty, dst_ty = x.type, register_type(dst.name if dst.kind != "complex" else dst.component)
    src_kind = "float" if src.kind == "complex" else src.kind
    dst_kind = "float" if dst.kind == "complex" else dst.kind
    if dst_kind == "bool":
        if src_kind == "float":
            return builder.fcmp_unordered("!=", x, ir.Constant(src_ty, 0.0))
        return builder.icmp_unsigned("!=", x, ir.Constant(src_ty, 0))
    if src_kind == "bool":
        return builder.uitofp(x, dst_ty) if dst_kind == "float" else builder.zext(x, dst_ty)
    if src_kind == "float" and dst_kind == "float":
        if src_ty == dst_ty:
            return x
        wider = _type_suffix(dst_ty) > _type_suffix(src_ty)  # f16 < f32 < f64
        return builder.fpext(x, dst_ty) if wider else builder.fptrunc(x, dst_ty)
    if src_kind == "float":  # float -> int saturates (defined for NaN and overflow)
        op = "fptosi" if dst_kind == "int" else "fptoui"
        name = f"llvm.{op}.sat.{_type_suffix(dst_ty)}.{_type_suffix(src_ty)}"
        return _intrinsic(builder, name, dst_ty, [x])
    if dst_kind == "float":
        return builder.sitofp(x, dst_ty) if src_kind == "int" else builder.uitofp(x, dst_ty)
    if dst_ty.width < src_ty.width:
        return builder.trunc(x, dst_ty)
    if dst_ty.width > src_ty.width:
        return builder.sext(x, dst_ty) if src_kind == "int" else builder.zext(x, dst_ty)
    return x


def cast(builder: ir.IRBuilder, value: Value, dtype: str) -> Value:
    """numpy's conversion: complex -> real keeps the real part; real -> complex adds 0j."""
    if value.dtype == dtype:
        return value
    src, dst = DTYPES[value.dtype], DTYPES[dtype]
    if dst.kind == "complex":
        re = _cast_real(builder, value.parts[0], src, dst)
        im = (
            _cast_real(builder, value.parts[1], src, dst)
            if src.kind == "complex"
            else ir.Constant(re.type, 0.0)
        )
        return Value((re, im), dtype)
    if src.kind == "complex" and dst.kind == "bool":
        re, im = (_cast_real(builder, p, src, dst) for p in value.parts)
        return Value((builder.or_(re, im),), dtype)
    return Value((_cast_real(builder, value.parts[0], src, dst),), dtype)


# ---- binary operations ------------------------------------------------------------------


def _float_binary(builder, op: str, a, b, flags):
    if op == "add":
        return builder.fadd(a, b, flags=flags)
    if op == "sub":
        return builder.fsub(a, b, flags=flags)
    if op == "mul":
        return builder.fmul(a, b, flags=flags)
    if op == "div":
        return builder.fdiv(a, b, flags=CONTRACT)
    if op in ("max", "min"):  # NaN-propagating, like numpy.maximum / minimum
        name = "maximum" if op == "max" else "minimum"
        return _intrinsic(builder, f"llvm.{name}.{_type_suffix(a.type)}", a.type, [a, b])
    if op == "pow":
        return _intrinsic(builder, f"llvm.pow.{_type_suffix(a.type)}", a.type, [a, b])
    raise TccError(f"unknown float operation {op!r}")


def _int_binary(builder, op: str, a, b, signed: bool):
    if op == "add":
        return builder.add(a, b)
    if op == "sub":
        return builder.sub(a, b)
    if op == "mul":
        return builder.mul(a, b)
    if op in ("max", "min"):
        cmp = builder.icmp_signed if signed else builder.icmp_unsigned
        keep_a = cmp(">" if op == "max" else "<", a, b)
        return builder.select(keep_a, a, b)
    if op == "div":  # numpy's floor division returns 0 for a zero divisor; never trap
        zero = ir.Constant(a.type, 0)
        is_zero = builder.icmp_unsigned("==", b, zero)
        safe = builder.select(is_zero, ir.Constant(a.type, 1), b)
        quotient = builder.sdiv(a, safe) if signed else builder.udiv(a, safe)
        return builder.select(is_zero, zero, quotient)
    raise TccError(f"unknown integer operation {op!r}")


def _bool_binary(builder, op: str, a, b):
    table = {"add": builder.or_, "max": builder.or_, "mul": builder.and_, "min": builder.and_}
    if op not in table:
        raise TccError(f"operation {op!r} is not defined for bool")
    return table[op](a, b)


def _complex_binary(builder, op: str, a: Value, b: Value, flags) -> tuple:
    (ar, ai), (br, bi) = a.parts, b.parts
    if op in ("add", "sub"):
        fn = builder.fadd if op == "add" else builder.fsub
        return fn(ar, br, flags=flags), fn(ai, bi, flags=flags)
    if op == "mul":
        re = builder.fsub(builder.fmul(ar, br, flags=CONTRACT),
                          builder.fmul(ai, bi, flags=CONTRACT), flags=CONTRACT)
        im = builder.fadd(builder.fmul(ar, bi, flags=CONTRACT),
                          builder.fmul(ai, br, flags=CONTRACT), flags=CONTRACT)
        return re, im
    if op == "div":
        denom = builder.fadd(builder.fmul(br, br), builder.fmul(bi, bi))
        re = builder.fadd(builder.fmul(ar, br), builder.fmul(ai, bi))
        im = builder.fsub(builder.fmul(ai, br), builder.fmul(ar, bi))
        return builder.fdiv(re, denom), builder.fdiv(im, denom)
    raise TccError(f"operation {op!r} is not defined for complex dtypes")


_COMPARISONS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}


def _compare(builder: ir.IRBuilder, op: str, a: Value, b: Value) -> ir.Value:
    """A comparison as ``i1``, with numpy's rules: NaN compares false except for ``ne``."""
    d = DTYPES[a.dtype]
    symbol = _COMPARISONS[op]
    if d.kind == "complex":
        if op not in ("eq", "ne"):
            raise TccError(f"{op} is not defined for complex dtype {a.dtype}")
        re, im = (builder.fcmp_ordered("==", x, y) for x, y in zip(a.parts, b.parts, strict=True))
        equal = builder.and_(re, im)
        return equal if op == "eq" else builder.not_(equal)
    if d.kind == "float":
        compare = builder.fcmp_unordered if op == "ne" else builder.fcmp_ordered
        return compare(symbol, a.v, b.v)
    if d.kind == "int":
        return builder.icmp_signed(symbol, a.v, b.v)
    return builder.icmp_unsigned(symbol, a.v, b.v)


def binary(builder: ir.IRBuilder, op: str, a: Value, b: Value, reassoc: bool = False) -> Value:
    if a.dtype != b.dtype:
        raise TccError(f"operands of {op} have dtypes {a.dtype} and {b.dtype}")
    if op in _COMPARISONS:
        return Value((_compare(builder, op, a, b),), "bool")
    d = DTYPES[a.dtype]
    flags = REASSOC if reassoc else CONTRACT
    if d.kind == "complex":
        return Value(_complex_binary(builder, op, a, b, flags), a.dtype)
    if d.kind == "float":
        return Value((_float_binary(builder, op, a.v, b.v, flags),), a.dtype)
    if d.kind == "bool":
        return Value((_bool_binary(builder, op, a.v, b.v),), a.dtype)
    return Value((_int_binary(builder, op, a.v, b.v, d.kind == "int"),), a.dtype)


# ---- unary operations -------------------------------------------------------------------


def _libm(builder: ir.IRBuilder, name: str, x: ir.Value) -> ir.Value:
    symbol = name + ("f" if isinstance(x.type, ir.FloatType) else "")
    return _intrinsic(builder, symbol, x.type, [x])


def unary(builder: ir.IRBuilder, op: str, value: Value) -> Value:
    if value.dtype == "float16" and op not in ("neg", "abs", "conj"):
        # libm has no half functions: compute in float32, round back (numpy does the same)
        return cast(builder, unary(builder, op, cast(builder, value, "float32")), "float16")
    d = DTYPES[value.dtype]
    if d.kind == "complex":
        re, im = value.parts
        if op == "neg":
            return Value((builder.fneg(re), builder.fneg(im)), value.dtype)
        if op == "conj":
            return Value((re, builder.fneg(im)), value.dtype)
        raise TccError(f"{op} is not supported for complex dtypes yet")
    x = value.v
    if op == "conj":
        return value
    if d.kind != "float":
        if op == "neg":
            return Value((builder.neg(x),), value.dtype)
        if op == "abs" and d.kind == "int":
            negative = builder.icmp_signed("<", x, ir.Constant(x.type, 0))
            return Value((builder.select(negative, builder.neg(x), x),), value.dtype)
        if op == "relu" and d.kind == "int":
            zero = ir.Constant(x.type, 0)
            return Value((_int_binary(builder, "max", x, zero, True),), value.dtype)
        raise TccError(f"{op} needs a float operand, got {value.dtype}")
    suffix = _type_suffix(x.type)
    if op == "neg":
        result = builder.fneg(x)
    elif op in ("exp", "log", "sqrt"):
        result = _intrinsic(builder, f"llvm.{op}.{suffix}", x.type, [x])
    elif op == "abs":
        result = _intrinsic(builder, f"llvm.fabs.{suffix}", x.type, [x])
    elif op == "tanh":
        result = _libm(builder, "tanh", x)
    elif op == "sigmoid":
        one = ir.Constant(x.type, 1.0)
        e = _intrinsic(builder, f"llvm.exp.{suffix}", x.type, [builder.fneg(x)])
        result = builder.fdiv(one, builder.fadd(one, e))
    elif op == "relu":
        result = _intrinsic(builder, f"llvm.maximum.{suffix}", x.type,
                            [x, ir.Constant(x.type, 0.0)])
    else:
        raise TccError(f"unknown unary operation {op!r}")
    return Value((result,), value.dtype)

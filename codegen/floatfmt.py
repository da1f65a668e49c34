"""LLVM lowering of casts to and from the storage-only float formats (compiler/floatfmt.py).

bfloat16 and float8 values live in registers as their bit patterns (i16 / i8). A Cast from or
to one of them goes through float32 with integer bit manipulation only (no libcalls, no
target-specific bf16/fp8 instructions), so the same code runs on every target and vectorises
like any integer arithmetic. The algorithm is the one of `tilecc.floatfmt.from_f32_bits` /
`to_f32_bits` (round to nearest even, ONNX saturation, NaN and inf rules), which the unit
tests check bit for bit against onnx's reference.
"""

from __future__ import annotations

from llvmlite import ir

from tilecc.floatfmt import FORMATS, FloatFormat, is_exotic

I1, I32 = ir.IntType(1), ir.IntType(32)
F32 = ir.FloatType()

__all__ = ["emit_cast", "emit_soft_half_cast", "is_exotic", "soft_half"]

# IEEE binary16 by the same bit algorithm, for targets whose ISA cannot convert half <-> float
# (rv64gc without Zfhmin): LLVM would call libgcc's __extendhfsf2 / __truncsfhf2, which the
# Debian 12 RISC-V libgcc does not have, so the conversions are emitted inline instead.
HALF = FloatFormat("float16", 16, 5, 10, 15, "ieee")


def _like(ty: ir.Type, elem: ir.Type) -> ir.Type:
    """`elem`, or a vector of it with as many lanes as `ty`."""
    return ir.VectorType(elem, ty.count) if isinstance(ty, ir.VectorType) else elem


def _k(ty: ir.Type, v) -> ir.Constant:
    if isinstance(ty, ir.VectorType):
        return ir.Constant(ty, [v] * ty.count)
    return ir.Constant(ty, v)


class _Ops:
    """Tiny helpers over one IRBuilder for a scalar or vector i32 value shape."""

    def __init__(self, b: ir.IRBuilder, like: ir.Type):
        self.b = b
        self.i32 = _like(like, I32)
        self.f32 = _like(like, F32)

    def k(self, v):
        return _k(self.i32, v)

    def shr(self, x, n):
        return self.b.lshr(x, self.k(n) if isinstance(n, int) else n)

    def shl(self, x, n):
        return self.b.shl(x, self.k(n) if isinstance(n, int) else n)

    def and_(self, x, n):
        return self.b.and_(x, self.k(n) if isinstance(n, int) else n)

    def or_(self, x, y):
        return self.b.or_(x, y)

    def add(self, x, y):
        return self.b.add(x, self.k(y) if isinstance(y, int) else y)

    def sub(self, x, y):
        return self.b.sub(x, self.k(y) if isinstance(y, int) else y)

    def cmp(self, op, x, y):
        return self.b.icmp_unsigned(op, x, self.k(y) if isinstance(y, int) else y)

    def sel(self, c, x, y):
        return self.b.select(c, self.k(x) if isinstance(x, int) else x,
                             self.k(y) if isinstance(y, int) else y)

    def round_shift(self, x, s):
        """x >> s rounded to nearest even (s >= 1; x + 2^(s-1) must not overflow)."""
        sv = self.k(s) if isinstance(s, int) else s
        half = self.sub(self.b.shl(self.k(1), self.b.sub(sv, self.k(1))), 1)
        odd = self.and_(self.b.lshr(x, sv), 1)
        return self.b.lshr(self.b.add(self.b.add(x, half), odd), sv)


def emit_from_f32(b: ir.IRBuilder, x: ir.Value, f: FloatFormat, saturate: bool = True,
                  round_mode: str = "up") -> ir.Value:
    """float32 (scalar or vector) -> the format's bit pattern (i16 / i8)."""
    o = _Ops(b, x.type)
    u = b.bitcast(x, o.i32)
    out_ty = _like(x.type, ir.IntType(f.bits))
    if f.kind == "e8m0":
        e = o.and_(o.shr(u, 23), 0xFF)
        if round_mode == "up":
            up = o.cmp("!=", o.and_(u, 0x7FFFFF), 0)
        elif round_mode == "nearest":
            g = o.cmp("!=", o.and_(u, 0x400000), 0)
            rs = o.cmp("!=", o.and_(u, 0x3FFFFF), 0)
            up = b.and_(g, b.or_(rs, o.cmp("!=", e, 0)))
        elif round_mode == "down":
            up = None
        else:
            raise ValueError(f"round_mode {round_mode!r}: use up, down or nearest")
        r = e
        if up is not None:
            if saturate:
                up = b.and_(up, o.cmp("!=", e, 0xFE))
            r = b.add(e, b.zext(up, o.i32))
        r = o.sel(o.cmp("==", e, 0xFF), 0xFF, r)
        return b.trunc(r, out_ty)
    sign = o.shr(u, 31)
    a = o.and_(u, 0x7FFFFFFF)
    shift = 23 - f.mbits
    rebias = 127 - f.bias
    code = o.round_shift(a, shift)
    if rebias > 0:
        # Below the format's smallest normal: shift the (implicit-bit) significand by the
        # extra exponent distance, so the rounding lands on the subnormal grid.
        code = o.sub(code, rebias << f.mbits)
        ef = o.shr(a, 23)
        m = o.or_(o.and_(a, 0x7FFFFF), o.sel(o.cmp("!=", ef, 0), 1 << 23, 0))
        efc = o.sel(o.cmp("<", ef, 1), 1, ef)
        s = o.sub(o.k(shift + rebias + 1), efc)
        s = o.sel(o.cmp(">", s, 31), 31, s)  # m < 2^24: a shift of 31 rounds to 0 like more
        sub = o.round_shift(m, s)
        code = o.sel(o.cmp(">", ef, rebias), code, sub)
    over = o.cmp(">", code, f.max_code)
    if saturate and f.bits == 8:
        code = o.sel(over, f.max_code, code)
    elif f.kind == "ieee":
        code = o.sel(over, f.max_code + 1, code)  # inf
    else:
        code = o.sel(over, f.nan_code, code)
    code = o.sel(o.cmp(">", a, 0x7F800000), f.nan_code, code)
    sbit = o.shl(sign, f.bits - 1)
    if f.kind == "fnuz":  # no -0, and NaN is the sign bit alone
        drop = b.or_(o.cmp("==", code, 0), o.cmp("==", code, f.nan_code))
        sbit = o.sel(drop, 0, sbit)
    return b.trunc(o.or_(code, sbit), out_ty)


def emit_to_f32(b: ir.IRBuilder, c: ir.Value, f: FloatFormat) -> ir.Value:
    """The format's bit pattern (i16 / i8, scalar or vector) -> float32 (exact)."""
    o = _Ops(b, c.type)
    cz = b.zext(c, o.i32)
    if f.kind == "e8m0":
        r = o.sel(o.cmp("==", cz, 0), 0x400000, o.shl(cz, 23))  # 2^-127 is subnormal
        r = o.sel(o.cmp("==", cz, 0xFF), 0x7FC00000, r)
        return b.bitcast(r, o.f32)
    if f.name == "bfloat16":  # the top half of a float32
        return b.bitcast(o.shl(cz, 16), o.f32)
    sign = o.shl(o.shr(cz, f.bits - 1), 31)
    mag = o.and_(cz, (1 << (f.bits - 1)) - 1)
    e = o.shr(mag, f.mbits)
    m = o.and_(mag, (1 << f.mbits) - 1)
    normal = o.or_(o.shl(o.add(e, 127 - f.bias), 23), o.shl(m, 23 - f.mbits))
    scale = _k(o.f32, 2.0 ** (1 - f.bias - f.mbits))
    sub = b.bitcast(b.fmul(b.uitofp(m, o.f32), scale), o.i32)  # exact: m * 2^k
    r = o.or_(o.sel(o.cmp("==", e, 0), sub, normal), sign)
    if f.kind == "ieee":
        top = o.cmp("==", e, (1 << f.ebits) - 1)
        special = o.or_(o.sel(o.cmp("==", m, 0), 0x7F800000, 0x7FC00000), sign)
        r = o.sel(top, special, r)
    elif f.kind == "fn":
        r = o.sel(o.cmp("==", mag, f.nan_code), o.or_(o.k(0x7FC00000), sign), r)
    else:
        r = o.sel(o.cmp("==", cz, f.nan_code), 0xFFC00000, r)
    return b.bitcast(r, o.f32)


def _to_f32(b: ir.IRBuilder, v: ir.Value, src: str) -> ir.Value:
    ty = _like(v.type, F32)
    if src == "float32":
        return v
    if src in ("float16", "float64"):
        return b.fpext(v, ty) if src == "float16" else b.fptrunc(v, ty)
    if src == "bool" or src.startswith("uint"):
        return b.uitofp(v, ty)
    return b.sitofp(v, ty)


def _from_f32(b: ir.IRBuilder, v: ir.Value, dst: str, dst_ty: ir.Type) -> ir.Value:
    if dst == "float32":
        return v
    if dst == "bool":
        return b.fcmp_unordered("!=", v, _k(v.type, 0.0))
    if dst in ("float16", "float64"):
        return b.fptrunc(v, dst_ty) if dst == "float16" else b.fpext(v, dst_ty)
    if dst.startswith("uint"):
        return b.fptoui(v, dst_ty)
    return b.fptosi(v, dst_ty)


def emit_cast(b: ir.IRBuilder, v: ir.Value, src: str, dst: str, dst_ty: ir.Type,
              saturate: bool = True, round_mode: str = "up") -> ir.Value:
    """Cast `v` (dtype `src`) to `dst` (LLVM type `dst_ty`) when either side is a storage-only
    format: through float32, rounding once (every exotic value is exact in float32)."""
    if src == dst:
        return v
    # float64 and 64-bit integers round to float32 first, as onnx's reference (ml_dtypes) and
    # onnxruntime do: the result is the conversion of that float32.
    f = emit_to_f32(b, v, FORMATS[src]) if is_exotic(src) else _to_f32(b, v, src)
    if is_exotic(dst):
        return emit_from_f32(b, f, FORMATS[dst], saturate, round_mode)
    return _from_f32(b, f, dst, dst_ty)


def soft_half(target) -> bool:
    """True when float16 <-> float32 conversions must be integer code on `target`."""
    feats = set(getattr(target, "features", "").split(","))
    return (getattr(target, "family", "") == "riscv"
            and not feats & {"+zfhmin", "+zfh", "+zvfhmin", "+zvfh"})


def emit_soft_half_cast(b: ir.IRBuilder, v: ir.Value, src: str, dst: str,
                        dst_ty: ir.Type) -> ir.Value:
    """A Cast with float16 on either side, with half values handled as their i16 bits."""
    i16 = _like(v.type, ir.IntType(16))
    if src == "float16":
        v = emit_to_f32(b, b.bitcast(v, i16), HALF)
        src = "float32"
    if dst != "float16":
        return _from_f32(b, _to_f32(b, v, src), dst, dst_ty)
    bits = emit_from_f32(b, _to_f32(b, v, src), HALF, saturate=False)
    return b.bitcast(bits, dst_ty)

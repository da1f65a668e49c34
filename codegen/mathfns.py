"""Math functions as LLVM IR, for float32 scalars and vectors.

Why not libm: a vector `exp` would otherwise become one libm call per lane (the code stops
being vectorised, and on most targets LLVM has no vector math library to call), and a
bare-metal object must not depend on libm at all. Each function here is emitted once per
(module, type) as an internal LLVM function built only from arithmetic, compares, selects and
bit casts, so every backend (x86, NEON, RVV, scalar RV64GC, ARMv7 VFP) keeps it in registers.

Accuracy (float32, checked against numpy over dense sweeps in tests/codegen/test_mathfns.py):
exp, log, tanh, erf within a few ulp (relative 1e-6 or better) over the whole float range,
with IEEE results at the edges (inf, nan, +-0, denormal inputs and results); pow is evaluated
in double precision internally (log and exp of the product), which keeps large exponents
accurate, and follows C `powf` for the special cases (negative bases with integer
exponents, zeros, infinities, `pow(x, 0) == 1`, `pow(1, y) == 1`).

floor/ceil/round are only replaced on 32-bit ARM, where ARMv7 has no rounding instructions
and LLVM would call libm's floorf (vector code scalarised); other targets round natively.

RVV targets convert float to int without a static rounding mode (`no_static_rounding`): qemu
7.2 (Debian 12's qemu-user, what CI emulates RISC-V with) translates every RVV conversion
that carries its own rounding mode (`vfcvt.rtz.x.f.v`, `vfncvt.rtz.x.f.w`, `vfwcvt.rtz.*`,
`vfncvt.rod.f.f.w`) by switching the rounding mode twice (first to the dynamic mode, to check
`frm`, then to the instruction's), and each switch records the instruction for unwinding:
the second record trips `decode_save_opc: Assertion 'ctx->insn_start != NULL'` in
target/riscv/translate.c and qemu aborts (later qemu, e.g. 8.1, checks `frm` without the
second record). LLVM lowers every vector `fptosi`/`fptoui` to those RTZ forms, so on RVV the
conversions are built from `llvm.lrint` (`vfcvt.x.f.v`, dynamic rounding mode, which qemu
translates correctly) plus a truncation-toward-zero correction (`fp_to_int`); where the
float already holds an integer (exp's 2^k exponent) the `lrint` alone is exact.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
from llvmlite import ir

F32, F64 = ir.FloatType(), ir.DoubleType()
I1, I32, I64 = ir.IntType(1), ir.IntType(32), ir.IntType(64)

_LN2 = math.log(2.0)
# ln2 split so that k * LN2_HI is exact for |k| < 2^8 (float) / 2^20 (double).
_LN2_HI_F = float(np.float32(0.693145751953125))
_LN2_LO_F = _LN2 - _LN2_HI_F
_LN2_HI_D = float.fromhex("0x1.62e42fee00000p-1")
_LN2_LO_D = float.fromhex("0x1.a39ef35793c76p-33")


class _Ops:
    """Arithmetic on a float type `ft` (scalar or vector) and its same-width integer type."""

    def __init__(self, b: ir.IRBuilder, ft, no_rtz: bool = False):
        self.b = b
        self.ft = ft
        self.no_rtz = no_rtz  # see the module docstring (RVV under qemu 7.2)
        base = ft.element if isinstance(ft, ir.VectorType) else ft
        self.bits = 64 if base == F64 else 32
        ib = ir.IntType(self.bits)
        self.n = ft.count if isinstance(ft, ir.VectorType) else 0
        self.it = ir.VectorType(ib, self.n) if self.n else ib
        self.bt = ir.VectorType(I1, self.n) if self.n else I1
        self.mbits = 52 if self.bits == 64 else 23
        self.bias = 1023 if self.bits == 64 else 127

    def f(self, v):
        return ir.Constant(self.ft, [float(v)] * self.n if self.n else float(v))

    def i(self, v):
        return ir.Constant(self.it, [int(v)] * self.n if self.n else int(v))

    def as_int(self, x):
        return self.b.bitcast(x, self.it)

    def as_float(self, x):
        return self.b.bitcast(x, self.ft)

    def fma(self, a, b, c):
        # llvm.fmuladd: one FMA where the target has it (half the latency of a polynomial
        # step, and at least as accurate), a multiply and an add elsewhere.
        return _intrinsic(self.b, f"llvm.fmuladd.{_suffix(self.ft)}", self.ft, [a, b, c])

    def horner(self, x, coeffs):
        """coeffs[0] + x*(coeffs[1] + x*(...)), highest degree innermost."""
        acc = self.f(coeffs[-1])
        for c in reversed(coeffs[:-1]):
            acc = self.fma(acc, x, self.f(c))
        return acc

    def sel(self, c, a, b):
        return self.b.select(c, a, b)

    def lt(self, a, b):
        return self.b.fcmp_ordered("<", a, b)

    def gt(self, a, b):
        return self.b.fcmp_ordered(">", a, b)

    def eq(self, a, b):
        return self.b.fcmp_ordered("==", a, b)

    def isnan(self, x):
        return self.b.fcmp_unordered("uno", x, x)

    def fabs(self, x):
        return self.as_float(self.b.and_(self.as_int(x), self.i((1 << (self.bits - 1)) - 1)))

    def signbit(self, x):
        return self.b.icmp_signed("<", self.as_int(x), self.i(0))

    def copysign(self, mag, sign):
        sb = self.i(-(1 << (self.bits - 1)))
        s = self.b.and_(self.as_int(sign), sb)
        return self.as_float(self.b.or_(self.as_int(self.fabs(mag)), s))

    def round_magic(self, x):
        """round-half-even(x) for |x| < 2^(mbits-1), in the default rounding mode."""
        m = self.f(1.5 * 2.0 ** self.mbits)
        return self.b.fsub(self.b.fadd(x, m), m)

    def pow2i(self, k):
        """2^k as a float, k an integer of the same width within the normal exponent range."""
        return self.as_float(self.b.shl(self.b.add(k, self.i(self.bias)), self.i(self.mbits)))

    def to_int(self, x):
        """Convert a float holding a small integer to the same-width int (no i64 fptosi on
        32-bit ARM: it would be a libgcc call). Also used where only whether the value is
        an integer (and its parity if so) matters: any rounding direction serves there."""
        i32 = ir.VectorType(I32, self.n) if self.n else I32
        if self.no_rtz:
            k = lrint(self.b, x, i32)
        else:
            k = self.b.fptosi(x, i32)
        return self.b.sext(k, self.it) if self.bits == 64 else k


def _expm1_over_x_coeffs():
    """(e^r - 1) / r on [-ln2/2, ln2/2] as a degree-5 polynomial (near-minimax: a Chebyshev
    fit in double), so e^r = 1 + r q(r) costs 6 FMAs and e^0 is exactly 1; its error,
    ~1e-9 relative, is far below float32 rounding."""
    from numpy.polynomial import chebyshev as C

    h = _LN2 / 2
    u = np.cos(np.linspace(0, np.pi, 200))
    r = h * u
    y = np.where(r == 0, 1.0, np.expm1(r) / np.where(r == 0, 1.0, r))
    coefs = C.cheb2poly(C.chebfit(u, y, 5))
    return [float(c) / h ** k for k, c in enumerate(coefs)]


_EXP_Q = _expm1_over_x_coeffs()


def _exp_parts(o: _Ops, x):
    """e^x as (p, k) with e^x = p * 2^k, p in [sqrt(1/2), sqrt(2)], k an integer of the same
    width; x finite."""
    b = o.b
    double = o.bits == 64
    # t = x/ln2 + 1.5*2^m rounded once: t - magic is round(x/ln2) and the low bits of t are
    # that integer, so no float-to-int conversion is needed.
    magic = o.f(1.5 * 2.0 ** o.mbits)
    t = o.fma(x, o.f(1.0 / _LN2), magic)
    n = b.fsub(t, magic)
    k = b.sub(o.as_int(t), o.as_int(magic))
    hi, lo = (_LN2_HI_D, _LN2_LO_D) if double else (_LN2_HI_F, _LN2_LO_F)
    r = o.fma(n, o.f(-hi), x)
    r = o.fma(n, o.f(-lo), r)
    if double:
        return o.horner(r, [1.0 / math.factorial(j) for j in range(13)]), k
    return o.fma(r, o.horner(r, _EXP_Q), o.f(1.0)), k


def _exp_core(o: _Ops, x):
    """e^x for x already clamped to a finite range where 2^(n/2) stays normal."""
    b = o.b
    p, k = _exp_parts(o, x)
    # 2^k applied in two halves so results near overflow and in the denormal range are right.
    k1 = b.ashr(k, o.i(1))
    k2 = b.sub(k, k1)
    return b.fmul(b.fmul(p, o.pow2i(k1)), o.pow2i(k2))


def _expf(o: _Ops, x):
    # The clamps keep a NaN (a compare with NaN is false, so the select passes x through) and
    # every step after them propagates it: no separate NaN test and blend in the hot loop.
    xc = o.sel(o.gt(x, o.f(89.0)), o.f(89.0), x)
    xc = o.sel(o.lt(xc, o.f(-104.0)), o.f(-104.0), xc)
    return _exp_core(o, xc)


def _sigmoidf(o: _Ops, x):
    """1 / (1 + e^-x). e^-x is clamped to [e^-87, e^88], whose 2^k are normal numbers, so one
    exponent scale serves (not exp's two halves): outside, the sigmoid is within 1e-38 of
    0 or 1 anyway. A NaN passes the clamps and comes out NaN."""
    b = o.b
    nx = b.fsub(o.f(-0.0), x)
    nx = o.sel(o.gt(nx, o.f(88.0)), o.f(88.0), nx)
    nx = o.sel(o.lt(nx, o.f(-87.0)), o.f(-87.0), nx)
    p, k = _exp_parts(o, nx)
    return b.fdiv(o.f(1.0), b.fadd(o.f(1.0), b.fmul(p, o.pow2i(k))))


def _log_core(o: _Ops, x):
    """log(x) for finite x > 0 (normal numbers of the type)."""
    b = o.b
    ix = o.as_int(x)
    # Mantissa m in [sqrt(1/2), sqrt(2)), so f = m - 1 is exact and small.
    if o.bits == 32:
        off = 0x3F3504F3
    else:
        off = 0x3FE6A09E667F3BCD
    k = b.ashr(b.sub(ix, o.i(off)), o.i(o.mbits))
    m = o.as_float(b.sub(ix, b.shl(k, o.i(o.mbits))))
    f = b.fsub(m, o.f(1.0))
    s = b.fdiv(f, b.fadd(f, o.f(2.0)))
    z = b.fmul(s, s)
    nterms = 10 if o.bits == 64 else 5
    # log(1+f) = 2 atanh(s) = f - f^2/2 + s (f^2/2 + R(z)), R(z) = sum 2 z^j / (2j+1).
    r = b.fmul(z, o.horner(z, [2.0 / (2 * j + 1) for j in range(1, nterms + 1)]))
    hfsq = b.fmul(o.f(0.5), b.fmul(f, f))
    dk = b.sitofp(b.trunc(k, ir.VectorType(I32, o.n) if o.n else I32), o.ft) \
        if o.bits == 64 else b.sitofp(k, o.ft)
    hi, lo = (_LN2_HI_D, _LN2_LO_D) if o.bits == 64 else (_LN2_HI_F, _LN2_LO_F)
    tail = b.fadd(b.fmul(s, b.fadd(hfsq, r)), b.fmul(dk, o.f(lo)))
    return b.fadd(b.fadd(b.fsub(tail, hfsq), f), b.fmul(dk, o.f(hi)))


def _logf(o: _Ops, x):
    b = o.b
    tiny = o.f(2.0 ** -126 if o.bits == 32 else 2.0 ** -1022)
    denorm = o.lt(x, tiny)
    scale = 2.0 ** (25 if o.bits == 32 else 54)
    xs = o.sel(denorm, b.fmul(x, o.f(scale)), x)
    ok = b.and_(o.gt(x, o.f(0.0)), o.lt(x, o.f(math.inf)))
    xs = o.sel(ok, xs, o.f(1.0))
    res = _log_core(o, xs)
    res = o.sel(denorm, b.fsub(res, o.f(math.log(scale))), res)
    res = o.sel(ok, res, o.f(math.nan))
    res = o.sel(o.eq(x, o.f(0.0)), o.f(-math.inf), res)
    res = o.sel(o.eq(x, o.f(math.inf)), x, res)
    return o.sel(o.isnan(x), b.fadd(x, x), res)


def _tanh_taylor(nterms: int) -> list[float]:
    """Coefficients of tanh(x)/x in x^2: 2^2n (2^2n - 1) B_2n / (2n)!."""
    bern = [Fraction(1)]
    for m in range(1, 2 * nterms + 1):
        bern.append(-sum(Fraction(math.comb(m + 1, k)) * bern[k] for k in range(m)) / (m + 1))
    out = []
    for n in range(1, nterms + 1):
        c = Fraction(4 ** n * (4 ** n - 1)) * bern[2 * n] / math.factorial(2 * n)
        out.append(float(c))
    return out


_TANH_SMALL = _tanh_taylor(13)


def _tanhf(o: _Ops, x):
    b = o.b
    ax = o.fabs(x)
    # Small |x|: odd series (no cancellation); large: 1 - 2/(e^2|x| + 1).
    small = b.fmul(x, o.horner(b.fmul(x, x), _TANH_SMALL))
    e = _expf(o, b.fmul(o.sel(o.gt(ax, o.f(20.0)), o.f(20.0), ax), o.f(2.0)))
    big = b.fsub(o.f(1.0), b.fdiv(o.f(2.0), b.fadd(e, o.f(1.0))))
    res = o.sel(o.lt(ax, o.f(0.625)), small, o.copysign(big, x))
    return o.sel(o.isnan(x), b.fadd(x, x), res)


def _erf_pieces():
    """Polynomials for erf on [0.75, 4): per interval (start, width, coefficients in
    u = (|x| - mid) / half-width), fitted to math.erf in double precision."""
    from numpy.polynomial import chebyshev as C

    edges = [0.75, 1.5, 2.25, 3.0, 4.0]
    pieces = []
    for lo, hi in itertools.pairwise(edges):
        mid, half = (lo + hi) / 2, (hi - lo) / 2
        u = np.cos(np.linspace(0, np.pi, 400))
        y = np.array([math.erf(mid + half * t) for t in u])
        cheb = C.chebfit(u, y, 16)
        pieces.append((lo, mid, half, [float(c) for c in C.cheb2poly(cheb)]))
    return pieces


_ERF_PIECES = _erf_pieces()
_ERF_SMALL = [2.0 / math.sqrt(math.pi) * (-1) ** n / (math.factorial(n) * (2 * n + 1))
              for n in range(11)]


def _erff(o: _Ops, x):
    b = o.b
    ax = o.fabs(x)
    small = b.fmul(x, o.horner(b.fmul(x, x), _ERF_SMALL))
    # Pick the interval's coefficients lane by lane, then one Horner evaluation.
    ncoef = len(_ERF_PIECES[0][3])
    mid, half = o.f(_ERF_PIECES[0][1]), o.f(_ERF_PIECES[0][2])
    coefs = [o.f(c) for c in _ERF_PIECES[0][3]]
    for lo, pm, ph, pc in _ERF_PIECES[1:]:
        ge = b.fcmp_ordered(">=", ax, o.f(lo))
        mid, half = o.sel(ge, o.f(pm), mid), o.sel(ge, o.f(ph), half)
        coefs = [o.sel(ge, o.f(pc[k]), coefs[k]) for k in range(ncoef)]
    u = b.fdiv(b.fsub(ax, mid), half)
    acc = coefs[-1]
    for c in reversed(coefs[:-1]):
        acc = o.fma(acc, u, c)
    big = o.sel(b.fcmp_ordered(">=", ax, o.f(4.0)), o.f(1.0), acc)
    res = o.sel(o.lt(ax, o.f(0.75)), small, o.copysign(big, x))
    return o.sel(o.isnan(x), b.fadd(x, x), res)


def _powf(o: _Ops, x, y):
    """C powf semantics; log and exp in double so y*log|x| keeps ~2^-50 relative error."""
    b = o.b
    dt = ir.VectorType(F64, o.n) if o.n else F64
    d = _Ops(b, dt, o.no_rtz)
    ax = o.fabs(x)
    lx = _logf(d, b.fpext(ax, dt))
    t = b.fmul(b.fpext(y, dt), lx)
    tnan = d.isnan(t)
    tc = d.sel(d.gt(t, d.f(200.0)), d.f(200.0), t)
    tc = d.sel(d.lt(tc, d.f(-200.0)), d.f(-200.0), tc)
    tc = d.sel(tnan, d.f(0.0), tc)
    r = b.fptrunc(_exp_core(d, tc), o.ft)
    r = o.sel(b.fcmp_unordered("uno", t, t), o.f(math.nan), r)
    # Integer / odd exponent: every float with |y| >= 2^24 is an even integer.
    ay = o.fabs(y)
    large = b.fcmp_ordered(">=", ay, o.f(2.0 ** 24))
    yc = o.sel(o.lt(ay, o.f(2.0 ** 24)), y, o.f(0.0))
    yi = o.to_int(yc)
    is_int = b.or_(large, o.eq(b.sitofp(yi, o.ft), y))
    odd = b.and_(b.and_(is_int, b.not_(large)),
                 b.icmp_unsigned("!=", b.and_(yi, o.i(1)), o.i(0)))
    r = o.sel(b.and_(o.signbit(x), odd), b.fsub(o.f(-0.0), r), r)
    neg_finite = b.and_(o.lt(x, o.f(0.0)), o.gt(x, o.f(-math.inf)))
    r = o.sel(b.and_(neg_finite, b.not_(is_int)), o.f(math.nan), r)
    # pow(+-1, +-inf) = 1, pow(1, y) = 1, pow(x, 0) = 1 (even for nan).
    one = b.or_(o.eq(x, o.f(1.0)), b.and_(o.eq(ax, o.f(1.0)), o.eq(ay, o.f(math.inf))))
    one = b.or_(one, o.eq(y, o.f(0.0)))
    return o.sel(one, o.f(1.0), r)


def _rounding(kind: str):
    def fn(o: _Ops, x):
        b = o.b
        ax = o.fabs(x)
        exact = b.fcmp_unordered(">=", ax, o.f(2.0 ** 23))  # also nan and inf
        safe = o.sel(exact, o.f(0.0), x)
        if kind == "round":
            t = o.copysign(o.round_magic(o.fabs(safe)), safe)
        else:
            t = b.sitofp(b.fptosi(safe, o.it), o.ft)  # truncation toward zero
            if kind == "floor":
                t = o.sel(o.gt(t, safe), b.fsub(t, o.f(1.0)), t)
            else:
                t = o.sel(o.lt(t, safe), b.fadd(t, o.f(1.0)), t)
            t = o.copysign(t, safe)
        return o.sel(exact, x, t)
    return fn


_FUNCS = {"exp": (_expf, 1), "sigmoid": (_sigmoidf, 1), "log": (_logf, 1), "tanh": (_tanhf, 1),
          "erf": (_erff, 1), "pow": (_powf, 2)}
_ROUNDING = {k: (_rounding(k), 1) for k in ("floor", "ceil", "round")}


def _needs_rounding(target) -> bool:
    triple = getattr(target, "triple", "")
    return triple.startswith(("arm", "thumb"))


def no_static_rounding(target) -> bool:
    """True for RVV targets: float-to-int conversions must not use `vfcvt.rtz.*` (module
    docstring)."""
    return (getattr(target, "family", "") == "riscv"
            and "+v" in getattr(target, "features", "").split(","))


def _intrinsic(b: ir.IRBuilder, name: str, ret, args: list):
    module = b.module
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ret, [a.type for a in args]), name)
    return b.call(fn, args)


def _suffix(ty) -> str:
    if isinstance(ty, ir.VectorType):
        return f"v{ty.count}{ty.element.intrinsic_name}"
    return ty.intrinsic_name


def lrint(b: ir.IRBuilder, x, ity):
    """x rounded to an integer of type `ity` in the current (dynamic) rounding mode, which
    tilecc code never changes from round-to-nearest-even."""
    return _intrinsic(b, f"llvm.lrint.{_suffix(ity)}.{_suffix(x.type)}", ity, [x])


def fp_to_int(b: ir.IRBuilder, x, ity, signed: bool):
    """`fptosi`/`fptoui` of x (float scalar or vector) to `ity` without a static-rounding
    conversion instruction: lrint, then one step toward zero where rounding went away from
    it. Exact wherever fptosi/fptoui is defined: below 2^mantissa the nearest integer r
    converts back exactly (so `float(r)` vs x decides the step), above it x is an integer
    and r == x."""
    n = ity.count if isinstance(ity, ir.VectorType) else 0
    elem = ity.element if n else ity
    fbase = x.type.element if n else x.type
    if fbase not in (F32, F64):  # half: widen first (exact)
        x = b.fpext(x, ir.VectorType(F32, n) if n else F32)
        fbase = F32
    o = _Ops(b, x.type)
    # The working integer holds the destination's range plus the one-off rounding before the
    # correction (a double just below 2^31 rounds to 2^31): unsigned and double-to-32-bit
    # go through i64; unsigned 64-bit values >= 2^63 are offset into the signed range.
    wide = 64 if elem.width > 32 or (elem.width == 32 and (not signed or fbase == F64)) else 32
    wt = ir.VectorType(ir.IntType(wide), n) if n else ir.IntType(wide)
    big = None
    if not signed and elem.width == 64:
        big = b.fcmp_ordered(">=", x, o.f(2.0 ** 63))
        x = o.sel(big, b.fsub(x, o.f(2.0 ** 63)), x)
    r = lrint(b, x, wt)
    back = b.sitofp(r, x.type)
    zero = o.f(0.0)
    down = b.and_(o.gt(back, x), o.gt(x, zero))  # rounded up past a positive x
    up = b.and_(o.lt(back, x), o.lt(x, zero))  # rounded down past a negative x
    r = b.add(b.sub(r, b.zext(down, wt)), b.zext(up, wt))
    if big is not None:
        top = ir.Constant(wt, [-(1 << 63)] * n if n else -(1 << 63))
        r = b.select(big, b.xor(r, top), r)
    if elem.width < wide:
        r = b.trunc(r, ity)
    return r


def handles(fn: str, target=None) -> bool:
    return fn in _FUNCS or (fn in _ROUNDING and _needs_rounding(target))


def get_function(module: ir.Module, fn: str, ty, target=None) -> ir.Function:
    """The internal function `tilecc_<fn>f[_v<N>]` for float32 type `ty`, emitted on first
    use in `module` (one target per module)."""
    impl, nargs = _FUNCS.get(fn) or _ROUNDING[fn]
    suffix = f"_v{ty.count}" if isinstance(ty, ir.VectorType) else ""
    name = f"tilecc_{fn}f{suffix}"
    f = module.globals.get(name)
    if f is not None:
        return f
    f = ir.Function(module, ir.FunctionType(ty, [ty] * nargs), name)
    f.linkage = "internal"
    b = ir.IRBuilder(f.append_basic_block("entry"))
    b.ret(impl(_Ops(b, ty, no_rtz=no_static_rounding(target)), *f.args))
    return f


def emit_call(cg, builder: ir.IRBuilder, fn: str, args: list) -> ir.Value | None:
    """Call the IR implementation of `fn` on float32 scalar/vector `args`; None when `fn` or
    the type is not covered here (the caller falls back to intrinsics/libm)."""
    if not args or not handles(fn, getattr(cg, "target", None)):
        return None
    ty = args[0].type
    elem = ty.element if isinstance(ty, ir.VectorType) else ty
    if elem != F32:
        return None
    return builder.call(get_function(cg.module, fn, ty, getattr(cg, "target", None)), args)

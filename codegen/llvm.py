"""Loop IR -> LLVM IR (llvmlite) -> object code for a CPU target.

Tables map dtypes and ops to LLVM; one walker emits statements. A `vectorize` loop is emitted
as straight-line vector code: a load whose index is affine in the loop variable with stride 1
becomes one vector load, stride 0 a scalar load, anything else a gather. A `parallel` loop is
outlined into a task function handed to `tilecc_parallel_for` (runtime/c/tilecc_runtime.c).
"""

from __future__ import annotations

import math

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir

from tilecc.codegen.semantics import FLOAT_MINMAX_BEYOND
from tilecc.expr import (
    Bin,
    Call,
    Cast,
    Cmp,
    Const,
    Expr,
    Load,
    Not,
    Select,
    Var,
    cast,
    const,
    linear_coeff,
    substitute,
)
from tilecc.loopir import Allocate, Buffer, For, IfThenElse, PrimFunc, Seq, Store
from tilecc.unswitch import unswitch_guards

from . import dot_intrinsics, floatfmt, mathfns

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
F32, F64, F16 = ir.FloatType(), ir.DoubleType(), ir.HalfType()
PTR = ir.PointerType()

# Register types; bool is i1 in registers and i8 in memory.
TYPES = {"float32": F32, "float64": F64, "float16": F16, "int64": I64, "int32": I32,
         "int16": ir.IntType(16), "int8": I8, "uint8": I8, "uint16": ir.IntType(16),
         "uint32": I32, "uint64": I64, "bool": I1}
# Storage-only float formats are their bit patterns in registers (codegen/floatfmt.py).
TYPES.update({n: ir.IntType(f.bits) for n, f in floatfmt.FORMATS.items()})
MEM_TYPES = dict(TYPES, bool=I8)

FBIN = {"add": "fadd", "sub": "fsub", "mul": "fmul", "div": "fdiv"}
IBIN = {"add": "add", "sub": "sub", "mul": "mul", "and": "and_", "or": "or_", "shl": "shl",
        "shr": "lshr", "sar": "ashr"}
FCMP = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
INTRINSICS = {"exp": "llvm.exp", "log": "llvm.log", "sqrt": "llvm.sqrt", "fabs": "llvm.fabs",
              "floor": "llvm.floor", "ceil": "llvm.ceil", "round": "llvm.roundeven",
              "pow": "llvm.pow", "sin": "llvm.sin", "cos": "llvm.cos"}
LIBM = {"tanh": "tanhf", "erf": "erff", "tan": "tanf", "asin": "asinf", "acos": "acosf",
        "atan": "atanf", "sinh": "sinhf", "cosh": "coshf", "asinh": "asinhf", "acosh": "acoshf",
        "atanh": "atanhf", "fmod": "fmodf"}

_initialized = False


def _init_llvm():
    global _initialized
    if not _initialized:
        llvm.initialize_all_targets()
        llvm.initialize_all_asmprinters()
        _initialized = True


def is_float(dtype: str) -> bool:
    return dtype.startswith("float") and not floatfmt.is_exotic(dtype)


def is_unsigned(dtype: str) -> bool:
    return dtype.startswith("uint") or dtype == "bool"


class Val:
    """An emitted value: scalar, or a vector of `lanes` when `vec`."""

    __slots__ = ("v", "vec")

    def __init__(self, v, vec=False):
        self.v, self.vec = v, vec


class FunctionEmitter:
    def __init__(self, cg: ModuleCodegen, fn: ir.Function):
        self.cg = cg
        self.fn = fn
        self.entry = fn.append_basic_block("entry")
        self.body_block = fn.append_basic_block("body")
        self.b = ir.IRBuilder(self.body_block)
        self.env: dict[Var, ir.Value] = {}
        self.bufs: dict[Buffer, ir.Value] = {}
        self.vvar: Var | None = None
        self.mask = None  # vector of i1: lanes of a partial (tail) vector that are live
        self.lanes = 1
        self._narrow_mul = dot_intrinsics.widening_mul(cg.target)

    def finish(self, ret):
        self.b.ret(ret)
        ir.IRBuilder(self.entry).branch(self.body_block)

    def alloca(self, typ, align=64):
        bb = ir.IRBuilder(self.entry)
        a = bb.alloca(typ)
        a.align = align
        a.type = PTR  # opaque pointer like the kernel arguments, so vector stores type-check
        return a

    # ---------------------------------------------------------------- expressions
    def vtype(self, dtype):
        t = TYPES[dtype]
        return ir.VectorType(t, self.lanes)

    def bcast(self, x: Val, dtype) -> ir.Value:
        if x.vec or self.vvar is None:
            return x.v
        t = self.vtype(dtype)
        undef = ir.Constant(t, ir.Undefined)
        v = self.b.insert_element(undef, x.v, I32(0))
        return self.b.shuffle_vector(v, undef, ir.Constant(ir.VectorType(I32, self.lanes),
                                                           [0] * self.lanes))

    def ev(self, e: Expr) -> Val:
        m = getattr(self, "ev_" + type(e).__name__, None)
        if m is None:
            raise NotImplementedError(f"codegen: no rule for {type(e).__name__}")
        return m(e)

    def ev_Const(self, e: Const) -> Val:
        t = TYPES[e.dtype]
        v = e.value
        if e.dtype == "bool":
            v = int(bool(v))
        return Val(ir.Constant(t, v))

    def ev_Var(self, e: Var) -> Val:
        if e is self.vvar:
            return Val(ir.Constant(ir.VectorType(I64, self.lanes), list(range(self.lanes))), True)
        try:
            return Val(self.env[e])
        except KeyError:
            raise KeyError(f"codegen: unbound variable {e.name}") from None

    def _pair(self, a: Val, b: Val, dtype):
        if a.vec or b.vec:
            return self.bcast(a, dtype), self.bcast(b, dtype), True
        return a.v, b.v, False

    def ev_Bin(self, e: Bin) -> Val:
        if e.op == "add" and (getattr(e.a, "fn", 0) in dot_intrinsics.DOT4
                              or getattr(e.b, "fn", 0) in dot_intrinsics.DOT4):
            dot_first = getattr(e.a, "fn", 0) in dot_intrinsics.DOT4
            return self._dot4_add(*((e.b, e.a) if dot_first else (e.a, e.b)))
        if e.op == "mul" and e.dtype == "int32" and self._narrow_mul:
            narrow = [x.x for x in (e.a, e.b) if isinstance(x, Cast)
                      and x.x.dtype in dot_intrinsics.NARROW]
            if len(narrow) == 2:
                # Extend before broadcasting: a scalar's zero/sign extension stays scalar.
                vals = [self.ev(cast("int16", x)) for x in narrow]
                vec = any(v.vec for v in vals)
                a, b = (self.bcast(v, "int16") if vec else v.v for v in vals)
                return Val(dot_intrinsics.emit_widening_mul(self.b, self.cg.target,
                                                            self.cg.module, a, b), vec)
        if e.op == "add" and is_float(e.dtype):
            # a*b + c as llvm.fmuladd: the backend may contract it into one FMA.
            for m, c in ((e.b, e.a), (e.a, e.b)):
                if isinstance(m, Bin) and m.op == "mul":
                    x, y, z = self.ev(m.a), self.ev(m.b), self.ev(c)
                    vec = x.vec or y.vec or z.vec
                    args = [self.bcast(v, e.dtype) if vec else v.v for v in (x, y, z)]
                    r = self._intrinsic("llvm.fmuladd", args)
                    r.fastmath.update(self.cg.fadd_flags)
                    return Val(r, vec)
        a, b = self.ev(e.a), self.ev(e.b)
        dt = e.a.dtype
        if e.op in ("floordiv", "mod") and not is_float(dt) and isinstance(e.b, Const) \
                and e.b.value > 0 and (e.b.value & (e.b.value - 1)) == 0:
            # Power-of-two divisor: shift/mask give floor semantics for negative values too.
            k = int(e.b.value)
            x = a.v
            ty = x.type
            if e.op == "floordiv":
                c = self._const_like(ty, k.bit_length() - 1)
                return Val(self.b.ashr(x, c), a.vec)
            return Val(self.b.and_(x, self._const_like(ty, k - 1)), a.vec)
        x, y, vec = self._pair(a, b, dt)
        bl = self.b
        if is_float(dt):
            if e.op in FBIN:
                r = getattr(bl, FBIN[e.op])(x, y)
                if e.op == "add":
                    r.flags.extend(self.cg.fadd_flags)
                return Val(r, vec)
            if e.op in ("min", "max"):
                # codegen/semantics.py; "x unless x is not beyond y" would cost x86 a compare
                # and a blend per vector (the two forms disagree on max(-0, +0)).
                c = bl.fcmp_ordered(FLOAT_MINMAX_BEYOND[e.op], y, x)
                return Val(bl.select(c, y, x), vec)
            if e.op == "floordiv":
                return Val(self._intrinsic("llvm.floor", [bl.fdiv(x, y)]), vec)
            if e.op == "mod":
                q = self._intrinsic("llvm.floor", [bl.fdiv(x, y)])
                return Val(bl.fsub(x, bl.fmul(q, y)), vec)
            raise NotImplementedError(f"float op {e.op}")
        if e.op in IBIN:
            return Val(getattr(bl, IBIN[e.op])(x, y), vec)
        uns = is_unsigned(dt)
        if e.op in ("min", "max"):
            op = ("<" if e.op == "min" else ">")
            c = bl.icmp_unsigned(op, x, y) if uns else bl.icmp_signed(op, x, y)
            return Val(bl.select(c, x, y), vec)
        if e.op == "div":
            return Val(bl.udiv(x, y) if uns else bl.sdiv(x, y), vec)
        if uns:
            return Val(bl.udiv(x, y) if e.op == "floordiv" else bl.urem(x, y), vec)
        q, r = bl.sdiv(x, y), bl.srem(x, y)
        zero = self._const_like(x.type, 0)
        adj = bl.and_(bl.icmp_signed("!=", r, zero),
                      bl.xor(bl.icmp_signed("<", r, zero), bl.icmp_signed("<", y, zero)))
        if e.op == "floordiv":
            return Val(bl.sub(q, bl.zext(adj, x.type)), vec)
        return Val(bl.select(adj, bl.add(r, y), r), vec)

    def _const_like(self, ty, v):
        if isinstance(ty, ir.VectorType):
            return ir.Constant(ty, [v] * ty.count)
        return ir.Constant(ty, v)

    def ev_Cmp(self, e: Cmp) -> Val:
        a, b = self.ev(e.a), self.ev(e.b)
        x, y, vec = self._pair(a, b, e.a.dtype)
        op = FCMP[e.op]
        if is_float(e.a.dtype):
            r = self.b.fcmp_unordered(op, x, y) if e.op == "ne" else self.b.fcmp_ordered(op, x, y)
        elif is_unsigned(e.a.dtype):
            r = self.b.icmp_unsigned(op, x, y)
        else:
            r = self.b.icmp_signed(op, x, y)
        return Val(r, vec)

    def ev_Not(self, e: Not) -> Val:
        a = self.ev(e.a)
        return Val(self.b.not_(a.v), a.vec)

    def ev_Select(self, e: Select) -> Val:
        if isinstance(e.a, Load):
            return self._guarded_load(e)
        c, a, b = self.ev(e.cond), self.ev(e.a), self.ev(e.b)
        if c.vec or a.vec or b.vec:
            cv = self.bcast(c, "bool")
            return Val(self.b.select(cv, self.bcast(a, e.dtype), self.bcast(b, e.dtype)), True)
        return Val(self.b.select(c.v, a.v, b.v))

    def ev_Cast(self, e: Cast) -> Val:
        x = self.ev(e.x)
        src, dst = e.x.dtype, e.dtype
        ty = self.vtype(dst) if x.vec else TYPES[dst]
        bl, v = self.b, x.v
        if floatfmt.is_exotic(src) or floatfmt.is_exotic(dst):
            return Val(floatfmt.emit_cast(bl, v, src, dst, ty, e.saturate, e.round_mode), x.vec)
        if "float16" in (src, dst) and src != dst and floatfmt.soft_half(self.cg.target):
            return Val(floatfmt.emit_soft_half_cast(bl, v, src, dst, ty), x.vec)
        if dst == "bool":
            z = self._const_like(v.type, 0.0 if is_float(src) else 0)
            r = bl.fcmp_unordered("!=", v, z) if is_float(src) else bl.icmp_unsigned("!=", v, z)
            return Val(r, x.vec)
        if is_float(src) and is_float(dst):
            sb, db = TYPES[src].intrinsic_name, TYPES[dst].intrinsic_name
            if sb == db:
                return x
            bits = {"f16": 16, "f32": 32, "f64": 64}
            return Val(bl.fpext(v, ty) if bits[db] > bits[sb] else bl.fptrunc(v, ty), x.vec)
        if is_float(src):
            if mathfns.no_static_rounding(self.cg.target):  # qemu 7.2 RVV: see mathfns
                return Val(mathfns.fp_to_int(bl, v, ty, not is_unsigned(dst)), x.vec)
            return Val(bl.fptoui(v, ty) if is_unsigned(dst) else bl.fptosi(v, ty), x.vec)
        if is_float(dst):
            return Val(bl.uitofp(v, ty) if is_unsigned(src) else bl.sitofp(v, ty), x.vec)
        sw, dw = TYPES[src].width, TYPES[dst].width
        if sw == dw:
            return Val(v, x.vec)
        if dw < sw:
            return Val(bl.trunc(v, ty), x.vec)
        return Val(bl.zext(v, ty) if is_unsigned(src) else bl.sext(v, ty), x.vec)

    def _intrinsic(self, name, args, ret=None):
        ty = args[0].type
        suffix = (f"v{ty.count}{ty.element.intrinsic_name}" if isinstance(ty, ir.VectorType)
                  else ty.intrinsic_name)
        fname = f"{name}.{suffix}"
        fn = self.cg.module.globals.get(fname)
        if fn is None:
            fn = ir.Function(self.cg.module, ir.FunctionType(ret or ty, [a.type for a in args]),
                             fname)
        return self.b.call(fn, args)

    def _libm(self, name, args):
        ty = args[0].type
        sname = name if ty == F32 else name.rstrip("f")
        fn = self.cg.module.globals.get(sname)
        if fn is None:
            fn = ir.Function(self.cg.module, ir.FunctionType(ty, [a.type for a in args]), sname)
        return self.b.call(fn, args)

    def _dot4_add(self, acc: Expr, dot: Call) -> Val:
        vals = [self.ev(acc)] + [self.ev(a) for a in dot.args]
        vec = any(v.vec for v in vals)
        v = [self.bcast(x, "int32") for x in vals]
        return Val(dot_intrinsics.emit_dot4_add(self.b, self.cg.module, self.cg.target, dot.fn,
                                                *v), vec)

    def ev_Call(self, e: Call) -> Val:
        if e.fn in dot_intrinsics.DOT4:
            return self._dot4_add(const(0, "int32"), e)
        args = [self.ev(a) for a in e.args]
        vec = any(a.vec for a in args)
        vals = [self.bcast(a, e.dtype) for a in args] if vec else [a.v for a in args]
        inline = mathfns.emit_call(self.cg, self.b, e.fn, vals)  # libm-free, stays vector
        if inline is not None:
            return Val(inline, vec)
        if e.fn in INTRINSICS:
            return Val(self._intrinsic(INTRINSICS[e.fn], vals), vec)
        if e.fn in LIBM:
            if not vec:
                return Val(self._libm(LIBM[e.fn], vals))
            out = ir.Constant(self.vtype(e.dtype), ir.Undefined)
            for lane in range(self.lanes):
                lv = [self.b.extract_element(v, I32(lane)) for v in vals]
                out = self.b.insert_element(out, self._libm(LIBM[e.fn], lv), I32(lane))
            return Val(out, True)
        raise NotImplementedError(f"codegen: math function {e.fn}")

    def _addr(self, buf: Buffer, idx: ir.Value):
        return self.b.gep(self.bufs[buf], [idx], inbounds=True, source_etype=MEM_TYPES[buf.dtype])

    def _from_mem(self, v, dtype):
        if dtype == "bool":
            z = self._const_like(v.type, 0)
            return self.b.icmp_unsigned("!=", v, z)
        return v

    def _to_mem(self, v, dtype, vec):
        if dtype == "bool":
            return self.b.zext(v, ir.VectorType(I8, self.lanes) if vec else I8)
        return v

    def _lane_mode(self, index: Expr):
        """'scalar', 'contig' or 'gather' for an index under the current vector variable."""
        if self.vvar is None:
            return "scalar"
        c = linear_coeff(index, self.vvar)
        if c in (2, 3, 4) and self.cg.masked_ok:
            return "strided"
        return {0: "scalar", 1: "contig"}.get(c, "gather")

    def ev_Load(self, e: Load) -> Val:
        buf, dt = e.buffer, e.buffer.dtype
        mode = self._lane_mode(e.index)
        esize = np.dtype(dt).itemsize
        if mode == "scalar":
            v = self.b.load(self._addr(buf, self.ev(e.index).v), typ=MEM_TYPES[dt], align=esize)
            return Val(self._from_mem(v, dt))
        if mode == "contig":
            base = self.ev(substitute(e.index, {self.vvar: const(0)})).v
            vt = ir.VectorType(MEM_TYPES[dt], self.lanes)
            if self.mask is not None:
                v = self._masked_load(self._addr(buf, base), vt, esize, self.mask,
                                      ir.Constant(vt, ir.Undefined))
            else:
                v = self.b.load(self._addr(buf, base), typ=vt, align=esize)
            return Val(self._from_mem(v, dt), True)
        if mode == "strided" and self.mask is None:
            return Val(self._from_mem(self._strided_load(e, esize), dt), True)
        idx = self.bcast(self.ev(e.index), "int64")
        if self.mask is not None:  # dead lanes read element 0, which every buffer has
            idx = self.b.select(self.mask, idx, ir.Constant(idx.type, [0] * self.lanes))
        out = ir.Constant(ir.VectorType(MEM_TYPES[dt], self.lanes), ir.Undefined)
        for lane in range(self.lanes):
            li = self.b.extract_element(idx, I32(lane))
            x = self.b.load(self._addr(buf, li), typ=MEM_TYPES[dt], align=esize)
            out = self.b.insert_element(out, x, I32(lane))
        return Val(self._from_mem(out, dt), True)

    def _guarded_load(self, e: Select) -> Val:
        """`cond ? buf[idx] : other` where idx may be out of bounds when cond is false (padding):
        lanes that are off never touch memory (masked vector load), scalar and gathered lanes
        read element 0 instead, which every buffer has."""
        load, dt = e.a, e.a.dtype
        c, other = self.ev(e.cond), self.ev(e.b)
        esize = np.dtype(dt).itemsize
        # A uniform (scalar) condition over a contiguous vector is a splatted mask: still one
        # masked vector load, not a per-lane gather through a select on the index.
        if self._lane_mode(load.index) == "contig" and self.cg.masked_ok:
            base = self.ev(substitute(load.index, {self.vvar: const(0)})).v
            vt = ir.VectorType(MEM_TYPES[dt], self.lanes)
            mask = self.bcast(c, "bool")
            if self.mask is not None:
                mask = self.b.and_(mask, self.mask)
            passthru = self.bcast(other, dt)
            if dt == "bool":
                passthru = self._to_mem(passthru, dt, True)
            v = self._masked_load(self._addr(load.buffer, base), vt, esize, mask, passthru)
            return Val(self._from_mem(v, dt), True)
        if self._lane_mode(load.index) == "strided" and (c.vec or other.vec):
            # Widen the lane mask to the stride-s window: element j of the wide load is lane
            # j/s when s divides j, else never needed.
            st = linear_coeff(load.index, self.vvar)
            n = st * self.lanes
            cv = self.bcast(c, "bool")
            if self.mask is not None:
                cv = self.b.and_(cv, self.mask)
            zeros = ir.Constant(cv.type, [0] * self.lanes)
            sel = [j // st if j % st == 0 else self.lanes for j in range(n)]
            wmask = self.b.shuffle_vector(cv, zeros, ir.Constant(ir.VectorType(I32, n), sel))
            et = MEM_TYPES[dt]
            wide = ir.VectorType(et, n)
            base = self.ev(substitute(load.index, {self.vvar: const(0)})).v
            v = self._masked_load(self._addr(load.buffer, base), wide, esize, wmask,
                                  ir.Constant(wide, ir.Undefined))
            pick = ir.Constant(ir.VectorType(I32, self.lanes), [st * j for j in range(self.lanes)])
            x = self._from_mem(self.b.shuffle_vector(v, ir.Constant(wide, ir.Undefined), pick), dt)
            return Val(self.b.select(cv, x, self.bcast(other, dt)), True)
        from tilecc.expr import select as mk_select
        safe = Load(load.buffer, mk_select(e.cond, load.index, const(0)))
        x = self.ev(safe)
        if c.vec or x.vec or other.vec:
            cv = self.bcast(c, "bool")
            return Val(self.b.select(cv, self.bcast(x, dt), self.bcast(other, dt)), True)
        return Val(self.b.select(c.v, x.v, other.v))

    def _masked_load(self, ptr, vt, esize, mask, passthru):
        fname = f"llvm.masked.load.v{vt.count}{vt.element.intrinsic_name}.p0"
        fn = self.cg.module.globals.get(fname)
        if fn is None:
            fn = ir.Function(self.cg.module, ir.FunctionType(vt, [PTR, I32, mask.type, vt]), fname)
        return self.b.call(fn, [ptr, I32(esize), mask, passthru])

    def _strided_load(self, e: Load, esize: int):
        """Stride-s lanes: one masked contiguous load of s*L elements (the mask stops at the
        last element needed, so nothing past it is touched), then a shuffle picks every s-th."""
        s = linear_coeff(e.index, self.vvar)
        n = s * self.lanes
        et = MEM_TYPES[e.buffer.dtype]
        base = self.ev(substitute(e.index, {self.vvar: const(0)})).v
        ptr = self._addr(e.buffer, base)
        wide = ir.VectorType(et, n)
        mask = ir.Constant(ir.VectorType(I1, n), [int(j <= s * (self.lanes - 1)) for j in range(n)])
        fname = f"llvm.masked.load.v{n}{et.intrinsic_name}.p0"
        fn = self.cg.module.globals.get(fname)
        if fn is None:
            fn = ir.Function(self.cg.module, ir.FunctionType(wide, [PTR, I32, mask.type, wide]),
                             fname)
        v = self.b.call(fn, [ptr, I32(esize), mask, ir.Constant(wide, ir.Undefined)])
        sel = ir.Constant(ir.VectorType(I32, self.lanes), [s * j for j in range(self.lanes)])
        return self.b.shuffle_vector(v, ir.Constant(wide, ir.Undefined), sel)

    # ---------------------------------------------------------------- statements
    def emit(self, s):
        getattr(self, "emit_" + type(s).__name__)(s)

    def emit_Seq(self, s: Seq):
        for x in s.stmts:
            self.emit(x)

    def emit_Allocate(self, s: Allocate):
        self.bufs[s.buffer] = self.alloca(ir.ArrayType(MEM_TYPES[s.buffer.dtype], s.buffer.size))
        self.emit(s.body)

    def emit_Store(self, s: Store):
        buf, dt = s.buffer, s.buffer.dtype
        val = self.ev(s.value)
        mode = self._lane_mode(s.index)
        esize = np.dtype(dt).itemsize
        if mode == "strided" or (mode == "scalar" and val.vec):
            mode = "gather"  # every lane writes one place: keep the last lane, like a loop
        if mode == "scalar":
            self.b.store(self._to_mem(val.v, dt, False), self._addr(buf, self.ev(s.index).v),
                         align=esize)
            return
        v = self._to_mem(self.bcast(val, dt), dt, True)
        if mode == "contig":
            base = self.ev(substitute(s.index, {self.vvar: const(0)})).v
            if self.mask is None:
                self.b.store(v, self._addr(buf, base), align=esize)
            else:
                fname = f"llvm.masked.store.v{self.lanes}{v.type.element.intrinsic_name}.p0"
                fn = self.cg.module.globals.get(fname)
                if fn is None:
                    fn = ir.Function(self.cg.module, ir.FunctionType(
                        ir.VoidType(), [v.type, PTR, I32, self.mask.type]), fname)
                self.b.call(fn, [v, self._addr(buf, base), I32(esize), self.mask])
            return
        idx = self.bcast(self.ev(s.index), "int64")
        sink = None
        if self.mask is not None:
            sink = self.alloca(MEM_TYPES[dt], align=esize)  # where dead lanes write
        for lane in range(self.lanes):
            li = self.b.extract_element(idx, I32(lane))
            addr = self._addr(buf, li)
            if sink is not None:
                addr = self.b.select(self.b.extract_element(self.mask, I32(lane)), addr, sink)
            self.b.store(self.b.extract_element(v, I32(lane)), addr, align=esize)

    def emit_IfThenElse(self, s: IfThenElse):
        c = self.ev(s.cond)
        if c.vec:
            # All lanes true: run the vector body; otherwise run the lanes one by one.
            allv = self._intrinsic("llvm.vector.reduce.and", [c.v], ret=I1)
            with self.b.if_else(allv) as (then, other):
                with then:
                    self.emit(s.then)
                with other:
                    if s.other is None and self.mask is None and self.cg.masked_ok:
                        # A partial vector (loop tail): the same vector code with masked
                        # memory accesses.
                        self.mask = c.v
                        self.emit(s.then)
                        self.mask = None
                    else:
                        self._scalar_lanes(s)
            return
        if s.other is None:
            with self.b.if_then(c.v):
                self.emit(s.then)
        else:
            with self.b.if_else(c.v) as (then, other):
                with then:
                    self.emit(s.then)
                with other:
                    self.emit(s.other)

    def _scalar_lanes(self, s):
        var, lanes = self.vvar, self.lanes
        self.vvar, self.lanes = None, 1
        self._serial_loop(var, lanes, s)
        self.vvar, self.lanes = var, lanes

    def _serial_loop(self, var: Var, extent, body, start=None):
        """for var in [start, extent): body  (extent/start are ir values or ints)."""
        bl = self.b
        start = I64(0) if start is None else start
        end = I64(extent) if isinstance(extent, int) else extent
        pre = bl.block
        head = self.fn.append_basic_block(f"{var.name}.head")
        loop = self.fn.append_basic_block(f"{var.name}.body")
        done = self.fn.append_basic_block(f"{var.name}.done")
        bl.branch(head)
        bl.position_at_end(head)
        phi = bl.phi(I64, name=var.name)
        phi.add_incoming(start, pre)
        bl.cbranch(bl.icmp_signed("<", phi, end), loop, done)
        bl.position_at_end(loop)
        saved = self.env.get(var)
        self.env[var] = phi
        self.emit(body)
        nxt = bl.add(phi, I64(1))
        phi.add_incoming(nxt, bl.block)
        bl.branch(head)
        bl.position_at_end(done)
        self._restore(var, saved)

    def _restore(self, var, saved):
        if saved is None:
            self.env.pop(var, None)
        else:
            self.env[var] = saved

    def emit_For(self, s: For):
        if s.extent <= 0:
            return
        if s.kind == "parallel" and self.cg.allow_parallel and s.extent > 1:
            self._parallel(s)
        elif s.kind == "vectorize" and self.vvar is None and _vectorizable(s.body) \
                and 1 < s.extent <= 64:
            self.vvar, self.lanes = s.var, s.extent
            self.emit(s.body)
            self.vvar, self.lanes = None, 1
        elif s.kind in ("unroll", "vectorize") and s.extent <= 64:
            saved = self.env.get(s.var)
            for k in range(s.extent):
                self.env[s.var] = I64(k)
                self.emit(s.body)
            self._restore(s.var, saved)
        else:
            self._serial_loop(s.var, s.extent, s.body)

    def _parallel(self, s: For):
        cg = self.cg
        vars_ = list(self.env.items())
        bufs = list(self.bufs.items())
        # The closure: captured loop variables, buffers, then the shared next-chunk counter.
        struct = ir.LiteralStructType([I64] * len(vars_) + [PTR] * len(bufs) + [I64])
        task_fn = ir.Function(cg.module, ir.FunctionType(I32, [I32, I32, PTR]),
                              cg.unique(self.fn.name + "_par"))
        task_fn.linkage = "internal"
        sub = FunctionEmitter(cg, task_fn)
        _tid, ntasks, cdata = task_fn.args
        for k, (var, _) in enumerate(vars_ + bufs):
            p = sub.b.gep(cdata, [I32(0), I32(k)], inbounds=True, source_etype=struct)
            v = sub.b.load(p, typ=struct.elements[k])
            if k < len(vars_):
                sub.env[var] = v
            else:
                sub.bufs[var] = v
        # Dynamic chunks: tasks take the next CHUNKS_PER_TASK-th share of the range from a
        # shared counter until it runs out, so a thread the OS delays (a busy neighbour core)
        # holds up at most one small chunk instead of a whole static 1/T of the loop.
        n = I64(s.extent)
        nt64 = sub.b.sext(ntasks, I64)
        parts = sub.b.mul(nt64, I64(CHUNKS_PER_TASK))
        grain = sub.b.sdiv(sub.b.add(n, sub.b.sub(parts, I64(1))), parts)
        counter = sub.b.gep(cdata, [I32(0), I32(len(vars_) + len(bufs))], inbounds=True,
                            source_etype=struct)
        head = task_fn.append_basic_block("chunk.head")
        work = task_fn.append_basic_block("chunk.work")
        done = task_fn.append_basic_block("chunk.done")
        sub.b.branch(head)
        sub.b.position_at_end(head)
        begin = sub.b.atomic_rmw("add", counter, grain, "monotonic")
        sub.b.cbranch(sub.b.icmp_signed("<", begin, n), work, done)
        sub.b.position_at_end(work)
        end = sub.b.add(begin, grain)
        end = sub.b.select(sub.b.icmp_signed("<", end, n), end, n)
        sub._serial_loop(s.var, end, s.body, start=begin)
        sub.b.branch(head)
        sub.b.position_at_end(done)
        sub.finish(I32(0))
        # Caller side: pack the closure and launch.
        cl = self.alloca(struct, align=8)
        for k, (_, v) in enumerate(vars_ + bufs):
            self.b.store(v, self.b.gep(cl, [I32(0), I32(k)], inbounds=True, source_etype=struct))
        self.b.store(I64(0), self.b.gep(cl, [I32(0), I32(len(vars_) + len(bufs))],
                                        inbounds=True, source_etype=struct))
        rc = self.b.call(cg.parallel_for, [task_fn, cl])
        with self.b.if_then(self.b.icmp_signed("!=", rc, I32(0))):
            self.b.ret(rc)


CHUNKS_PER_TASK = 4


def _vectorizable(s) -> bool:
    if isinstance(s, (Store,)):
        return True
    if isinstance(s, Seq):
        return all(_vectorizable(x) for x in s.stmts)
    if isinstance(s, IfThenElse):
        return _vectorizable(s.then) and (s.other is None or _vectorizable(s.other))
    return False


def masked_loads_ok(target) -> bool:
    """Whether kernels for `target` may use masked vector loads/stores. qemu-user 7.2 aborts
    on the masked RVV loads/stores LLVM emits for masked vector intrinsics, so RISC-V code
    takes the scalar/gather paths instead."""
    return getattr(target, "family", "") != "riscv"


class ModuleCodegen:
    """One LLVM module per model: kernels plus the AOT entry (codegen/aot.py)."""

    def __init__(self, target, name: str = "tilecc_model", allow_parallel: bool = True,
                 reassociate: bool = False):
        _init_llvm()
        self.target = target
        # -O3: float additions may be reassociated (passes/pipeline.py says what that trades).
        self.fadd_flags = ["reassoc", "nsz"] if reassociate else []
        self.module = ir.Module(name=name)
        self.module.triple = target.triple
        self.allow_parallel = allow_parallel
        self.masked_ok = masked_loads_ok(target)
        self._names: set[str] = set()
        task_ty = ir.FunctionType(I32, [I32, I32, PTR])
        self.parallel_for = ir.Function(self.module, ir.FunctionType(I32, [PTR, PTR]),
                                        "tilecc_parallel_for")
        self._task_ty = task_ty

    def unique(self, base: str) -> str:
        name, k = base, 0
        while name in self._names or name in self.module.globals:
            k += 1
            name = f"{base}{k}"
        self._names.add(name)
        return name

    def add_kernel(self, f: PrimFunc) -> ir.Function:
        fnty = ir.FunctionType(I32, [PTR] * len(f.params))
        fn = ir.Function(self.module, fnty, self.unique(f.name))
        fn.linkage = "internal"
        for a in fn.args:
            a.add_attribute("noalias")
        em = FunctionEmitter(self, fn)
        for buf, arg in zip(f.params, fn.args):
            em.bufs[buf] = arg
        # Padding guards hoisted out of interior tiles (compiler/unswitch.py): CPU code only,
        # where a guarded vector load is a masked load.
        em.emit(unswitch_guards(f.body))
        em.finish(I32(0))
        return fn

    def target_machine(self):
        for opt in getattr(self.target, "llvm_options", ()):  # e.g. RVV's LMUL cap
            llvm.set_option("tilecc", opt)
        t = llvm.Target.from_triple(self.target.triple)
        return t.create_target_machine(cpu=self.target.cpu, features=self.target.features,
                                       opt=3, reloc="pic", codemodel="default")

    def compile(self, opt_level: int = 3) -> tuple[bytes, str]:
        """Optimise and emit an object file; returns (object bytes, optimised IR text)."""
        mod = llvm.parse_assembly(str(self.module))
        mod.verify()
        tm = self.target_machine()
        mod.triple = self.target.triple
        mod.data_layout = str(tm.target_data)
        if opt_level > 0:
            pto = llvm.create_pipeline_tuning_options(speed_level=min(3, opt_level))
            pto.loop_vectorization = True
            pto.slp_vectorization = True
            pto.loop_unrolling = True
            pb = llvm.create_pass_builder(tm, pto)
            pb.getModulePassManager().run(mod, pb)
        return tm.emit_object(mod), str(mod)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


__all__ = ["ModuleCodegen", "ceil_div", "math"]

"""Loop IR -> LLVM IR (llvmlite) -> object code for a CPU target.

Tables map dtypes and ops to LLVM; one walker emits statements. This module has the
expression rules and the module-level code generator; the emitter's other parts live next to
it: llvm_base.py (types, emitted values, shared helpers), llvm_memory.py (vector, strided,
gathered and masked loads and stores), llvm_control.py (branches, vector/unrolled/serial
loops, parallel loops outlined into `tilecc_parallel_for` tasks), llvm_half.py (fp16
arithmetic on CPUs with native half).
"""

from __future__ import annotations

import math

import llvmlite.binding as llvm
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
)
from tilecc.loopir import PrimFunc
from tilecc.unswitch import unswitch_guards

from . import dot_intrinsics, floatfmt, mathfns
from .llvm_base import (
    F16,
    F32,
    F64,
    I1,
    I8,
    I32,
    I64,
    MEM_TYPES,
    PTR,
    TYPES,
    Val,
    is_float,
    is_unsigned,
)
from .llvm_control import CHUNKS_PER_TASK, ControlFlow
from .llvm_memory import MemoryAccess

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



class FunctionEmitter(MemoryAccess, ControlFlow):
    """Loop IR of one kernel -> the body of its LLVM function: the expression rules
    (here), loads and stores (llvm_memory.py), branches and loops (llvm_control.py)."""

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


# Re-exported: other modules and tests take the types and tables from here.
__all__ = ["CHUNKS_PER_TASK", "F16", "F32", "F64", "I1", "I8", "I32", "I64", "MEM_TYPES",
           "PTR", "TYPES", "FunctionEmitter", "ModuleCodegen", "Val", "ceil_div",
           "is_float", "is_unsigned", "masked_loads_ok", "math"]

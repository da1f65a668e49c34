"""The LLVM types of loop-IR dtypes, emitted values, and the base of the kernel emitter
(codegen/llvm.py puts it together with llvm_memory.py and llvm_control.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir

from tilecc.expr import Expr, Var
from tilecc.loopir import Allocate, Buffer, Seq

from . import dot_intrinsics, floatfmt

if TYPE_CHECKING:
    from .llvm import ModuleCodegen

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


def is_float(dtype: str) -> bool:
    return dtype.startswith("float") and not floatfmt.is_exotic(dtype)


def is_unsigned(dtype: str) -> bool:
    return dtype.startswith("uint") or dtype == "bool"


class Val:
    """An emitted value: scalar, or a vector of `lanes` when `vec`."""

    __slots__ = ("v", "vec")

    def __init__(self, v, vec=False):
        self.v, self.vec = v, vec


class EmitterBase:
    """The state of one function being emitted and the helpers every part of the
    emitter uses (llvm.py: expressions; llvm_memory.py: loads and stores;
    llvm_control.py: branches and loops)."""

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

    def _const_like(self, ty, v):
        if isinstance(ty, ir.VectorType):
            return ir.Constant(ty, [v] * ty.count)
        return ir.Constant(ty, v)

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

    # ---------------------------------------------------------------- statements
    def emit(self, s):
        getattr(self, "emit_" + type(s).__name__)(s)

    def emit_Seq(self, s: Seq):
        for x in s.stmts:
            self.emit(x)

    def emit_Allocate(self, s: Allocate):
        self.bufs[s.buffer] = self.alloca(ir.ArrayType(MEM_TYPES[s.buffer.dtype], s.buffer.size))
        self.emit(s.body)

"""Half-precision arithmetic for LLVM kernels on CPUs that have it (Target.native_half:
ARMv8.2-A FEAT_FP16, `+fullfp16`), precision "fp16".

The kernel arrives with half storage already in place (passes/precision.py: half loads are
widened to float32, stores narrowed). This rewrite retypes its float32 arithmetic to float16
wherever the shared policy (codegen/half_policy.py) says the value is half, so the emitter
produces `<8 x half>` operations (`fmla v.8h`, `fmax v.8h`) instead of widening every load:
- elementwise math, and reductions of at most HALF_ACC_MAX terms per accumulator (3x3
  depthwise convs, pools), compute and accumulate in half;
- longer reductions (pointwise and dense convs, GEMM K, softmax and norm sums) keep the
  float32 update of the storage path, the products included: half products added into a
  float32 accumulator widen every product (two `fcvtl` per 8 lanes), which executed 2.5x the
  instructions of fp32 for DS-CNN's pointwise convs where widening the loads costs 1.3x;
- transcendental and library functions (exp, tanh, erf, log, pow, ...) take their half
  argument widened and round their float32 result once to half: LLVM has no half libm, and
  a half polynomial would lose more than that one rounding; the IEEE-exact ones (fabs,
  floor, ceil, round, sqrt) stay half;
- anything computed from an integer, or mixing in a float32 value, stays float32.
Constants take their context's type (rounded to half; beyond half's range they become inf,
which is what a -FLT_MAX max-pool start or a FLT_MAX clip bound mean in half).
"""

from __future__ import annotations

import numpy as np

from tilecc.codegen.half_policy import FLOAT, HALF, FloatKinds, _reads, half_locals
from tilecc.expr import Call, Cast, Cmp, Const, Expr, Load, Select, cast, children, rebuild
from tilecc.loopir import Allocate, Buffer, For, IfThenElse, PrimFunc, Seq, Stmt, Store

F16, F32 = "float16", "float32"
# Correctly rounded in half by the ISA (no libm involved), so nothing is gained in float32.
HALF_EXACT_FNS = frozenset({"fabs", "floor", "ceil", "round", "sqrt"})


def _half_const(e: Const) -> Const:
    with np.errstate(over="ignore"):
        return Const(float(np.float16(e.value)), F16)


def _to(e: Expr, dtype: str) -> Expr:
    """`e` (a float32 or float16 value) in `dtype`."""
    if e.dtype == dtype or e.dtype not in (F16, F32) or dtype not in (F16, F32):
        return e
    if isinstance(e, Const):
        return _half_const(e) if dtype == F16 else Const(e.value, dtype)
    return cast(dtype, e)


class _Lowering:
    def __init__(self, pf: PrimFunc):
        local = half_locals(pf.body, lambda b: b.dtype == F16)
        self.swap = {b: Buffer(b.name, b.shape, F16, b.scope) for b in local}
        self.kinds = FloatKinds(lambda b: b.dtype == F16 or b in self.swap)
        self.memo: dict[int, Expr] = {}

    def halved(self, e: Expr) -> bool:
        return e.dtype == F32 and self.kinds(e) == HALF

    def ex(self, e: Expr) -> Expr:
        r = self.memo.get(id(e))
        if r is None:
            r = self.memo[id(e)] = self._ex(e)
        return r

    def _ex(self, e: Expr) -> Expr:
        if isinstance(e, Const):
            return e
        if isinstance(e, Load):
            buf = e.buffer  # a loopir.Buffer (expr.py cannot name the type)
            assert isinstance(buf, Buffer)
            return Load(self.swap.get(buf, buf), self.ex(e.index))
        if isinstance(e, Cast):
            x = self.ex(e.x)
            if self.halved(e):  # a widening of a half value: the value itself
                return _to(x, F16)
            if e.dtype in (F16, F32) and e.x.dtype in (F16, F32):
                return _to(x, e.dtype)
            return cast(e.dtype, x, e.saturate, e.round_mode)
        if isinstance(e, Call) and self.halved(e) and e.fn not in HALF_EXACT_FNS:
            return _to(Call(e.fn, tuple(_to(self.ex(a), F32) for a in e.args), F32), F16)
        kids = children(e)
        new = [self.ex(k) for k in kids]
        if self.halved(e):
            want = F16
        elif isinstance(e, Cmp):
            ks = {self.kinds(k) for k in kids}
            want = F16 if HALF in ks and FLOAT not in ks else F32
        else:
            want = e.dtype if e.dtype in (F16, F32) else F32
        if isinstance(e, Select) and isinstance(e.a, Load) and new[1].dtype == F16 and want == F32:
            # The load stays directly under its select, which the emitter guards (padding
            # reads may be out of bounds): select in half, then widen.
            return _to(rebuild(e, (new[0], new[1], _to(new[2], F16))), F32)
        first = 1 if isinstance(e, Select) else 0  # a select's condition is not converted
        new = new[:first] + [_to(k, want) for k in new[first:]]
        if isinstance(e, Call):
            return Call(e.fn, tuple(new), want if e.dtype in (F16, F32) else e.dtype)
        if all(a is b for a, b in zip(kids, new)):
            return e
        return rebuild(e, tuple(new))

    def float_update(self, e: Expr) -> Expr:
        """`e` as the storage path computes it (float32), reading half locals widened."""
        if isinstance(e, Load):
            buf = e.buffer
            assert isinstance(buf, Buffer)
            return _to(Load(self.swap[buf], e.index), F32) if buf in self.swap else e
        kids = children(e)
        new = [self.float_update(k) for k in kids]
        return e if all(a is b for a, b in zip(kids, new)) else rebuild(e, tuple(new))

    def st(self, s: Stmt) -> Stmt:
        if isinstance(s, Store):
            buf = self.swap.get(s.buffer, s.buffer)
            if buf.dtype == F32 and buf.scope == "local" and _reads(s.value, buf):
                return Store(buf, self.ex(s.index), self.float_update(s.value))
            return Store(buf, self.ex(s.index), _to(self.ex(s.value), buf.dtype))
        if isinstance(s, Seq):
            return Seq([self.st(x) for x in s.stmts])
        if isinstance(s, For):
            return For(s.var, s.extent, s.kind, self.st(s.body))
        if isinstance(s, IfThenElse):
            return IfThenElse(self.ex(s.cond), self.st(s.then),
                              self.st(s.other) if s.other is not None else None)
        if isinstance(s, Allocate):
            return Allocate(self.swap.get(s.buffer, s.buffer), self.st(s.body))
        raise TypeError(f"half arithmetic: no rule for {type(s).__name__}")


def half_arithmetic(pf: PrimFunc) -> PrimFunc:
    """`pf` (half storage applied) with its half-policy values computed in float16."""
    return PrimFunc(pf.name, pf.params, _Lowering(pf).st(pf.body), dict(pf.attrs))

"""Target-specific integer dot products for the LLVM codegen.

`dot4_u8s8(a, b)` (an int32 expr Call, see compiler/topi/quant.py) treats each int32 operand as
four packed bytes, a unsigned and b signed, and returns sum_k a[k] * b[k]. An `acc + dot4(...)`
in a vector loop becomes one VNNI `vpdpbusd` (acc += four u8 x s8 products per i32 lane) on
targets with AVX-512 VNNI (16/8/4 lanes) or AVX-VNNI (8/4 lanes). Elsewhere it is widened to
int32 multiplies and a horizontal add of each group of four, so the same kernel stays correct
(and exact: four products of |x| <= 255 * 128 cannot overflow int32) on any target.
"""

from __future__ import annotations

from llvmlite import ir

DOT4 = "dot4_u8s8"
I8, I32 = ir.IntType(8), ir.IntType(32)


def has_vnni(features: str, lanes: int) -> bool:
    f = set(features.split(","))
    if lanes == 16:
        return "+avx512vnni" in f
    return lanes in (4, 8) and ("+avxvnni" in f or {"+avx512vnni", "+avx512vl"} <= f)


def target_has_vnni(target) -> bool:
    """VNNI at the target's full vector width (what the int8 kernels are packed for)."""
    return getattr(target, "kind", None) == "cpu" and has_vnni(target.features, target.lanes(4))


def _declare(module, name, ty):
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ty, [ty, ty, ty]), name)
    return fn


def emit_dot4_add(b: ir.IRBuilder, module, features: str, acc, x, w):
    """acc + dot4_u8s8(x, w) for i32 scalars or <n x i32> vectors (all the same type)."""
    ty = acc.type
    n = ty.count if isinstance(ty, ir.VectorType) else 1
    if n > 1 and has_vnni(features, n):
        fn = _declare(module, f"llvm.x86.avx512.vpdpbusd.{n * 32}", ty)
        return b.call(fn, [acc, x, w])
    bt, wt = ir.VectorType(I8, 4 * n), ir.VectorType(I32, 4 * n)
    xs = b.zext(b.bitcast(x, bt), wt)
    ws = b.sext(b.bitcast(w, bt), wt)
    prod = b.mul(xs, ws)
    out = acc
    for k in range(4):
        part = b.shuffle_vector(prod, ir.Constant(wt, ir.Undefined),
                                ir.Constant(ir.VectorType(I32, n), [4 * j + k for j in range(n)]))
        if n == 1:
            part = b.extract_element(part, I32(0))
        out = b.add(out, part)
    return out

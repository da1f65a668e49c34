"""Target-specific integer dot products for the LLVM codegen.

`dot4_u8s8(a, b)` (an int32 expr Call, see compiler/topi/quant.py) treats each int32 operand as
four packed bytes, a unsigned and b signed, and returns sum_k a[k] * b[k]. An `acc + dot4(...)`
in a vector loop becomes one VNNI `vpdpbusd` (acc += four u8 x s8 products per i32 lane) on
targets with AVX-512 VNNI (16/8/4 lanes) or AVX-VNNI (8/4 lanes). Elsewhere it is widened to
int32 multiplies and a horizontal add of each group of four, so the same kernel stays correct
(and exact: four products of |x| <= 255 * 128 cannot overflow int32) on any target.

`dot4_u8s7(a, b)` is the same sum with b's bytes promised to lie in [-64, 64] (weights quantized
to 7 bits for it, passes/quant_dot.py). Without VNNI it becomes `pmaddubsw` (u8 x s8 pairs
summed to int16, which saturates only past 32767: two products of 255 * 64 stay below) and
`pmaddwd` by ones (int16 pairs to int32): 32 multiply-adds in two instructions on AVX2, where
fp32 FMA does 8 per instruction. With VNNI it is `vpdpbusd` like dot4_u8s8.
"""

from __future__ import annotations

from llvmlite import ir

DOT4 = "dot4_u8s8"
DOT4_S7 = "dot4_u8s7"
DOTS = (DOT4, DOT4_S7)
I8, I16, I32 = ir.IntType(8), ir.IntType(16), ir.IntType(32)
# lanes -> (feature, pmaddubsw, pmaddwd) for the 7-bit-weight dot product without VNNI. Not
# at 16 lanes: AVX-512 targets without VNNI keep exact 8-bit weights (tests/quant/test_vnni.py
# compares VNNI builds bit for bit with builds of the same host minus VNNI).
_MADD = {4: ("+ssse3", "llvm.x86.ssse3.pmadd.ub.sw.128", "llvm.x86.sse2.pmadd.wd"),
         8: ("+avx2", "llvm.x86.avx2.pmadd.ub.sw", "llvm.x86.avx2.pmadd.wd")}


def has_vnni(features: str, lanes: int) -> bool:
    f = set(features.split(","))
    if lanes == 16:
        return "+avx512vnni" in f
    return lanes in (4, 8) and ("+avxvnni" in f or {"+avx512vnni", "+avx512vl"} <= f)


def target_has_vnni(target) -> bool:
    """VNNI at the target's full vector width (what the int8 kernels are packed for)."""
    return getattr(target, "kind", None) == "cpu" and has_vnni(target.features, target.lanes(4))


def has_madd_s7(features: str, lanes: int) -> bool:
    """pmaddubsw/pmaddwd at `lanes` int32 lanes (the dot4_u8s7 lowering without VNNI)."""
    return lanes in _MADD and _MADD[lanes][0] in set(features.split(","))


def target_has_dot4_s7(target) -> bool:
    """A fast dot4_u8s7 at the target's full vector width (VNNI, or pmaddubsw without it)."""
    if getattr(target, "kind", None) != "cpu" or target.family != "x86":
        return False
    lanes = target.lanes(4)
    return has_vnni(target.features, lanes) or has_madd_s7(target.features, lanes)


def _declare(module, name, ty, args=None):
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ty, args or [ty, ty, ty]), name)
    return fn


def emit_dot4_add(b: ir.IRBuilder, module, features: str, acc, x, w, narrow: bool = False):
    """acc + dot4_u8s8(x, w) for i32 scalars or <n x i32> vectors (all the same type);
    `narrow`: w's bytes lie in [-64, 64] (dot4_u8s7), so pmaddubsw cannot saturate."""
    ty = acc.type
    n = ty.count if isinstance(ty, ir.VectorType) else 1
    if n > 1 and has_vnni(features, n):
        fn = _declare(module, f"llvm.x86.avx512.vpdpbusd.{n * 32}", ty)
        return b.call(fn, [acc, x, w])
    if narrow and n > 1 and has_madd_s7(features, n):
        _, ubsw, wd = _MADD[n]
        bt, ht = ir.VectorType(I8, 4 * n), ir.VectorType(I16, 2 * n)
        pairs = b.call(_declare(module, ubsw, ht, [bt, bt]),
                       [b.bitcast(x, bt), b.bitcast(w, bt)])
        quads = b.call(_declare(module, wd, ty, [ht, ht]), [pairs, ir.Constant(ht, [1] * 2 * n)])
        return b.add(acc, quads)
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

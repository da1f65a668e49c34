"""Packed int8 dot products for the LLVM codegen, one dispatch for every CPU target.

`dot4_u8s8(a, b)` and `dot4_s8s8(a, b)` (int32 expr Calls, see compiler/topi/quant.py) treat
each int32 operand as four packed bytes, b signed and a unsigned (u8s8) or signed (s8s8), and
return sum_k a[k] * b[k]. An `acc + dot4(...)` in a vector loop of n int32 lanes becomes one
instruction that adds four byte products into each lane, where the target has it:

  u8s8  x86 AVX-512 VNNI (16/8/4 lanes) or AVX-VNNI (8/4): `vpdpbusd`
        AArch64/AArch32 with +i8mm (ARMv8.6): `usdot`
  s8s8  AArch64/AArch32 with +dotprod (ARMv8.2): `sdot`

Lane counts wider than an ARM register are split into 4-lane (or 2-lane) instructions. Any
other call is widened to int32 multiplies and a horizontal add of each group of four, so the
same kernel stays correct (and exact: four products of |x| <= 255 * 128 cannot overflow int32)
on any target. `packed_dot(target)` tells the weight packer which form, if any, the target
runs natively at its full vector width; the packer prefers u8s8, which needs no change to
uint8 activations (s8s8 takes them XOR 0x80 with the bias corrected, passes/quant_pack.py).

`dot4_u8s7(a, b)` is dot4_u8s8 with b's bytes promised to lie in [-64, 64] (weights quantized
with `reduce_range`, or a QDQ model's 7-bit weights; passes/quant_dot.py). On x86 without VNNI
it becomes `pmaddubsw` (u8 x s8 pairs summed to int16, which saturates only past 32767: two
products of 255 * 64 stay below) and `pmaddwd` by ones (int16 pairs to int32): 32
multiply-adds in two instructions on AVX2, where fp32 FMA does 8 per instruction. With VNNI it
is `vpdpbusd` like dot4_u8s8.

dot4_u8s8 itself on x86 without VNNI splits each activation byte a = (a & 0x7f) + (a & 0x80)
and runs `pmaddubsw` on each part: pairs of 127 * 128 and 128 * 128 both fit int16, so full
8-bit weights stay exact (the same integers as VNNI, ARM and the widening path) at two
`pmaddubsw` where 7-bit weights take one. That is why int8 weights need not depend on the
target: one quantized model gives the same numbers on every CPU.
"""

from __future__ import annotations

from llvmlite import ir

DOT4_U8S8, DOT4_S8S8, DOT4_U8S7 = "dot4_u8s8", "dot4_s8s8", "dot4_u8s7"
DOT4 = (DOT4_U8S8, DOT4_S8S8, DOT4_U8S7)
PACKED = (DOT4_U8S8, DOT4_S8S8)  # what int8 weights are packed for (u8s7 is chosen by PTQ)
I8, I16, I32 = ir.IntType(8), ir.IntType(16), ir.IntType(32)
# lanes -> (feature, pmaddubsw, pmaddwd) for dot4_u8s7 without VNNI. Not at 16 lanes: AVX-512
# targets without VNNI keep exact 8-bit weights (tests/quant/test_vnni.py compares VNNI builds
# bit for bit with builds of the same host minus VNNI).
_MADD = {4: ("+ssse3", "llvm.x86.ssse3.pmadd.ub.sw.128", "llvm.x86.sse2.pmadd.wd"),
         8: ("+avx2", "llvm.x86.avx2.pmadd.ub.sw", "llvm.x86.avx2.pmadd.wd")}
_ARM_DOT = {DOT4_U8S8: ("+i8mm", "usdot"), DOT4_S8S8: ("+dotprod", "sdot")}


def has_vnni(features: str, lanes: int) -> bool:
    f = set(features.split(","))
    if lanes == 16:
        return "+avx512vnni" in f
    return lanes in (4, 8) and ("+avxvnni" in f or {"+avx512vnni", "+avx512vl"} <= f)


def _arm_arch(triple: str) -> str | None:
    arch = triple.split("-")[0]
    if arch.startswith("aarch64"):
        return "aarch64"
    return "arm" if arch.startswith(("arm", "thumb")) else None


def _native(triple: str, features: str, fn: str, n: int):
    """(LLVM intrinsic, int32 lanes per instruction, whether it takes x and w as byte vectors)
    computing acc + fn(x, w) on n lanes, or None when the target has no such instruction."""
    if _x86(triple):
        if fn in (DOT4_U8S8, DOT4_U8S7) and n > 1 and has_vnni(features, n):
            return f"llvm.x86.avx512.vpdpbusd.{n * 32}", n, False
        return None
    arch = _arm_arch(triple)
    feature, insn = _ARM_DOT[DOT4_U8S8 if fn == DOT4_U8S7 else fn]
    if arch is None or feature not in features.split(","):
        return None
    width = next((w for w in (4, 2) if n % w == 0), 0)
    return (f"llvm.{arch}.neon.{insn}.v{width}i32.v{4 * width}i8", width, True) if width \
        else None


def _x86(triple: str) -> bool:
    return triple.startswith(("x86_64", "i686", "i386"))


def _split_madd(triple: str, features: str, lanes: int) -> bool:
    """dot4_u8s8 as two pmaddubsw on the split activation (x86 without VNNI)."""
    return _x86(triple) and has_madd_s7(features, lanes) and not has_vnni(features, lanes)


def packed_dot(target) -> str | None:
    """The dot4 call the target runs fast at its full vector width (what int8 weights are
    packed for): one instruction (VNNI, usdot, sdot; u8s8 first) or x86's split pmaddubsw;
    None when it has none."""
    if getattr(target, "kind", None) != "cpu":
        return None
    lanes = target.lanes(4)
    native = next((fn for fn in PACKED if _native(target.triple, target.features, fn, lanes)),
                  None)
    if native is None and _split_madd(target.triple, target.features, lanes):
        return DOT4_U8S8
    return native


def target_has_vnni(target) -> bool:
    """VNNI-style u8 x s8 dots in one instruction at the target's full vector width (x86
    VNNI, ARM usdot)."""
    return getattr(target, "kind", None) == "cpu" and _native(
        target.triple, target.features, DOT4_U8S8, target.lanes(4)) is not None


def has_madd_s7(features: str, lanes: int) -> bool:
    """pmaddubsw/pmaddwd at `lanes` int32 lanes (the dot4_u8s7 lowering without VNNI)."""
    return lanes in _MADD and _MADD[lanes][0] in set(features.split(","))


def target_has_dot4_s7(target) -> bool:
    """A fast dot4_u8s7 on x86 at the target's full vector width (VNNI, or pmaddubsw)."""
    if getattr(target, "kind", None) != "cpu" or target.family != "x86":
        return False
    lanes = target.lanes(4)
    return has_vnni(target.features, lanes) or has_madd_s7(target.features, lanes)


def _declare(module, name, ty, args):
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ty, args), name)
    return fn


def emit_dot4_add(b: ir.IRBuilder, module, target, fn: str, acc, x, w):
    """acc + fn(x, w) for i32 scalars or <n x i32> vectors (all the same type)."""
    ty = acc.type
    n = ty.count if isinstance(ty, ir.VectorType) else 1
    native = _native(target.triple, target.features, fn, n) if n > 1 else None
    if native is not None:
        name, width, as_bytes = native
        cty = ir.VectorType(I32, width)
        bty = ir.VectorType(I8, 4 * width) if as_bytes else cty
        f = _declare(module, name, cty, [cty, bty, bty])

        def call(a, p, q):
            return b.call(f, [a, b.bitcast(p, bty), b.bitcast(q, bty)] if as_bytes else [a, p, q])
        return _by_chunks(b, width, call, (acc, x, w), acc)
    split = fn == DOT4_U8S8 and n > 1 and _split_madd(target.triple, target.features, n)
    if split or (fn == DOT4_U8S7 and n > 1 and _x86(target.triple)
                 and has_madd_s7(target.features, n)):
        _, ubsw, wd = _MADD[n]
        bt, ht = ir.VectorType(I8, 4 * n), ir.VectorType(I16, 2 * n)
        madd = _declare(module, ubsw, ht, [bt, bt])
        wide = _declare(module, wd, ty, [ht, ht])
        ones = ir.Constant(ht, [1] * 2 * n)
        xb, wb = b.bitcast(x, bt), b.bitcast(w, bt)
        parts = [xb]
        if split:  # a = (a & 0x7f) + (a & 0x80): each part's pairs fit int16 exactly
            parts = [b.and_(xb, ir.Constant(bt, [m] * 4 * n)) for m in (0x7F, -0x80)]
        for part in parts:
            acc = b.add(acc, b.call(wide, [b.call(madd, [part, wb]), ones]))
        return acc
    bt, wt = ir.VectorType(I8, 4 * n), ir.VectorType(I32, 4 * n)
    xb = b.bitcast(x, bt)
    xs = b.sext(xb, wt) if fn == DOT4_S8S8 else b.zext(xb, wt)
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


def _by_chunks(b: ir.IRBuilder, width: int, f, vals, out):
    """out with lanes c..c+width replaced by f(lanes c..c+width of each of vals), for every
    chunk: an n-lane operation on an instruction `width` lanes wide."""
    n = out.type.count
    if width == n:
        return f(*vals)
    mask = ir.VectorType(I32, n)
    for c in range(0, n, width):
        r = f(*(_lanes(b, v, range(c, c + width)) for v in vals))
        wide = _lanes(b, r, [i if i < width else 0 for i in range(n)])  # lanes >= width unused
        out = b.shuffle_vector(out, wide, ir.Constant(mask, [
            n + i - c if c <= i < c + width else i for i in range(n)]))
    return out


def _lanes(b: ir.IRBuilder, v, idx):
    idx = list(idx)
    return b.shuffle_vector(v, ir.Constant(v.type, ir.Undefined),
                            ir.Constant(ir.VectorType(I32, len(idx)), idx))


# ---- widening int8/int16 products (targets without a packed dot) ---------------------------

NARROW = ("int8", "uint8", "int16")  # every value of these fits a signed i16
_SMULL = {"aarch64": "llvm.aarch64.neon.smull.v4i32", "arm": "llvm.arm.neon.vmulls.v4i32"}


def widening_mul(target) -> bool:
    """Whether int32 products of NARROW values are emitted as i16 x i16 -> i32 widening
    multiplies (ARM NEON `smull`/`vmull.s16`, which LLVM fuses with the accumulation into
    `smlal`/`vmlal.s16`): a 4-lane int8 MAC is then one instruction. LLVM's ARMv7 backend
    otherwise sign-extends both operands to i32 and uses `vmla.i32`; the i16 product is exact
    (|u8 * s8| <= 255 * 128) and each product is added to the i32 accumulator on its own, so
    nothing overflows where i16 accumulation (`vmlal.s8`) would."""
    return getattr(target, "kind", None) == "cpu" and _arm_arch(target.triple) in _SMULL \
        and "+neon" in target.features.split(",")


def emit_widening_mul(b: ir.IRBuilder, target, module, x, y):
    """int32 x * y of i16 scalars or <n x i16> vectors (NARROW values extended to i16)."""
    n = x.type.count if isinstance(x.type, ir.VectorType) else 1
    if n % 4:  # scalar code has its own 16-bit multiplies (smulbb); tails stay generic
        wide = ir.VectorType(I32, n) if n > 1 else I32
        return b.mul(b.sext(x, wide), b.sext(y, wide))
    name = _SMULL[_arm_arch(target.triple) or "arm"]  # widening_mul(target) holds
    q, d = ir.VectorType(I32, 4), ir.VectorType(ir.IntType(16), 4)
    fn = _declare(module, name, q, [d, d])
    return _by_chunks(b, 4, lambda p, r: b.call(fn, [p, r]), (x, y),
                      ir.Constant(ir.VectorType(I32, n), ir.Undefined))

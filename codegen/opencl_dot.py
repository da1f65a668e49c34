"""4-way 8-bit dot products in OpenCL C: the helpers kernels.cl defines and the loop shape
the emitter renders with them.

A `vectorize` loop of extent 4 whose body is `acc[i] = acc[i] + int32(a) * int32(b)` (a, b
8-bit; compiler/topi/gpu_quant.py makes it) becomes `acc[i] += tl_dot4_<sa><sb>(a4, b4)` with
the four bytes of each operand gathered into a uchar4/char4. The helper uses, in order:

- cl_khr_integer_dot_product: `dot_4x8packed_<sa><sb>_int` on the packed 32-bit words, any
  signedness (one instruction on Valhall and Adreno 7xx);
- cl_arm_integer_dot_product_int8: `arm_dot`, which has only uchar4 x uchar4 and
  char4 x char4. A mixed u8 x s8 product flips the unsigned operand's sign bit,
  a ^ 0x80 = a - 128 as a char, and adds back 128 * sum(b) (itself an arm_dot with ones);
- otherwise int4 multiply-adds.

Only the extensions the preset declares are emitted, each under its macro, so a device whose
driver lacks them (PoCL on a CPU) still compiles the plain branch and computes the same
integers: every branch is exact int32 arithmetic.
"""

from __future__ import annotations

from tilecc.expr import Bin, Expr, Load, const, free_vars, substitute
from tilecc.loopir import For, IfThenElse, Store
from tilecc.topi.gpu_quant import DOT, int8_product

SIGN = {"uint8": "u", "int8": "s"}
VEC = {"u": "uchar4", "s": "char4"}


def dot_loop(s: For) -> tuple[Expr | None, Store, Expr, Expr] | None:
    """(guard, store, a, b) when `s` is a dot-product loop (see the module docstring); the
    guard is a bounds test of the work-item's tile that does not depend on the lane."""
    if s.kind != "vectorize" or s.extent != DOT:
        return None
    guard, st = None, s.body
    if isinstance(st, IfThenElse) and st.other is None and s.var not in free_vars(st.cond):
        guard, st = st.cond, st.then
    if not isinstance(st, Store):
        return None
    v = st.value
    if st.buffer.scope != "local" or st.buffer.dtype != "int32" \
            or not (isinstance(v, Bin) and v.op == "add"):
        return None
    acc, term = v.a, v.b
    if not (isinstance(acc, Load) and acc.buffer is st.buffer and repr(acc.index)
            == repr(st.index)):
        return None
    ab = int8_product(term)
    return None if ab is None else (guard, st, ab[0], ab[1])


def lanes(e, var) -> list:
    """`e` at each of the four values of the loop variable."""
    return [substitute(e, {var: const(k)}) for k in range(DOT)]


def helper_name(a_dtype: str, b_dtype: str) -> str:
    return f"tl_dot4_{SIGN[a_dtype]}{SIGN[b_dtype]}"


def _arm(sa: str, sb: str) -> str:
    if sa == sb:
        return "(int)arm_dot(a, b)"
    # arm_dot has no mixed signedness: shift the unsigned side into char range.
    u, s = ("a", "b") if sa == "u" else ("b", "a")
    return f"arm_dot(as_char4({u} ^ (uchar4)(0x80)), {s}) + 128 * arm_dot((char4)(1), {s})"


def preamble(extensions) -> str:
    """The pragmas and the four helpers, for the extensions a preset declares."""
    khr = "cl_khr_integer_dot_product" in extensions
    arm = "cl_arm_integer_dot_product_int8" in extensions
    out = []
    if arm:
        out += ["#ifdef cl_arm_integer_dot_product_int8",
                "#pragma OPENCL EXTENSION cl_arm_integer_dot_product_int8 : enable", "#endif"]
    for sa in "us":
        for sb in "us":
            out.append(f"inline int tl_dot4_{sa}{sb}({VEC[sa]} a, {VEC[sb]} b) {{")
            branches = []
            if khr:
                # uu is the one variant with an unsigned result (at most 4 * 255^2).
                fn = "(int)dot_4x8packed_uu_uint" if sa + sb == "uu" else \
                    f"dot_4x8packed_{sa}{sb}_int"
                branches.append(("__opencl_c_integer_dot_product_input_4x8bit_packed",
                                 f"{fn}(as_uint(a), as_uint(b))"))
            if arm:
                branches.append(("cl_arm_integer_dot_product_int8", _arm(sa, sb)))
            for k, (macro, code) in enumerate(branches):
                out += [f"#{'el' if k else ''}if defined({macro})", f"  return {code};"]
            if branches:
                out.append("#else")
            out += ["  const int4 p = convert_int4(a) * convert_int4(b);",
                    "  return p.x + p.y + p.z + p.w;"]
            if branches:
                out.append("#endif")
            out.append("}")
    return "\n".join(out) + "\n"

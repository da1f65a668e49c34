"""fp16 arithmetic in OpenCL C: the kernels.cl preamble that makes `hf` half where the device
has cl_khr_fp16 and float where it does not. Which values are `hf` is the shared policy of
codegen/half_policy.py (HALF kind: `hf`, or hfN with the loop's vector width; softmax's exp
computes in half too).

Without cl_khr_fp16 (the generic preset, or a driver that lacks it: PoCL on a CPU) `hf` is
float and half loads/stores go through vload_half/vstore_half: the same kernels run with
fp32 arithmetic on half storage.
"""

from __future__ import annotations


def preamble(extensions) -> str:
    """`hf`/`hfN` and the half load/store macros for kernels.cl (fp16 precision)."""
    widths = ("", "2", "3", "4", "8", "16")
    out = []
    if "cl_khr_fp16" in extensions:
        out += ["#ifdef cl_khr_fp16", "#pragma OPENCL EXTENSION cl_khr_fp16 : enable"]
        out += [f"typedef half{n} hf{n};" for n in widths]
        out += ["#define TL_LD(i, p) ((p)[i])", "#define TL_LDV(n, o, p) vload##n(o, p)",
                "#define TL_ST(v, i, p) ((p)[i] = (half)(v))",
                "#define TL_STV(n, v, o, p) vstore##n(convert_half##n(v), o, p)",
                "#define TL_HF(n, v) convert_half##n(v)",
                "#define TL_HF_ISNAN(x) ((as_ushort(x) & (ushort)0x7fff) > (ushort)0x7c00)",
                "#else"]
    out += [f"typedef float{n} hf{n};" for n in widths]
    out += ["#define TL_LD(i, p) vload_half(i, p)", "#define TL_LDV(n, o, p) vload_half##n(o, p)",
            "#define TL_ST(v, i, p) vstore_half(v, i, p)",
            "#define TL_STV(n, v, o, p) vstore_half##n(convert_float##n(v), o, p)",
            "#define TL_HF(n, v) convert_float##n(v)",
            "#define TL_HF_ISNAN(x) ((as_uint(x) & 0x7fffffffu) > 0x7f800000u)"]
    if "cl_khr_fp16" in extensions:
        out.append("#endif")
    return "\n".join(out) + "\n"

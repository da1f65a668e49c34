"""Storage-only float formats: bfloat16 and the ONNX float8 types.

numpy has no native dtypes for these, so tilecc stores them as their bit patterns (bfloat16 in
16 bits, float8 in 8) and computes in float32: a value is widened to float32 when it is loaded
for arithmetic and rounded back when it is stored. `FORMATS` describes each format; the
conversions here work on numpy bit patterns (constant folding) and `codegen/floatfmt.py` emits
the same algorithm as LLVM integer code (kernels), so the two agree bit for bit.

Semantics follow the ONNX Cast operator (and its reference implementation):
- float32 -> format rounds to nearest, ties to even. With `saturate` (float8 only, the ONNX
  default), values beyond the largest finite value and +-inf become +-max; without it they
  become inf (e5m2) or NaN (the fn/fnuz formats, which have no inf). bfloat16 never
  saturates (its range is float32's). NaN stays NaN.
- fnuz formats have no negative zero: -0 and negative values that round to zero give +0.
- float8_e8m0fnu is an unsigned power of two 2^(e-127) (e = 0..254, 0xFF is NaN): its
  conversion takes the float32 exponent and rounds per `round_mode` (up / down / nearest).
Dtype names are numpy/ml_dtypes names ("bfloat16", "float8_e4m3fn", ...); onnx (a tilecc
dependency) uses ml_dtypes for these arrays, and importing it here registers the names with
numpy so `np.dtype("bfloat16")` works wherever the compiler sizes a buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

try:  # a dependency of onnx: registers the exotic dtype names with numpy
    import ml_dtypes
except ImportError:  # pragma: no cover - onnx always installs it
    ml_dtypes = None


@dataclass(frozen=True)
class FloatFormat:
    name: str
    bits: int  # storage width: 16 or 8
    ebits: int
    mbits: int
    bias: int
    kind: str  # "ieee" (inf and NaN at the top exponent), "fn" (no inf, NaN = all ones),
    #            "fnuz" (no inf, no -0, NaN = 0x80), "e8m0" (unsigned power of two)

    @property
    def storage(self) -> str:
        return "uint16" if self.bits == 16 else "uint8"

    @property
    def max_code(self) -> int:
        """Bit pattern (sign clear) of the largest finite value."""
        if self.kind == "ieee":
            return (((1 << self.ebits) - 1) << self.mbits) - 1
        if self.kind == "fn":
            return (1 << (self.bits - 1)) - 2
        return (1 << (self.bits - 1)) - 1  # fnuz

    @property
    def nan_code(self) -> int:
        """Quiet NaN pattern (sign clear; fnuz NaN is the sign bit alone)."""
        if self.kind == "fnuz":
            return 1 << (self.bits - 1)
        if self.kind == "fn":
            return (1 << (self.bits - 1)) - 1
        if self.kind == "e8m0":
            return 0xFF
        return ((1 << (self.ebits + 1)) - 1) << (self.mbits - 1)  # exponent ones + quiet bit


FORMATS: dict[str, FloatFormat] = {f.name: f for f in (
    FloatFormat("bfloat16", 16, 8, 7, 127, "ieee"),
    FloatFormat("float8_e4m3fn", 8, 4, 3, 7, "fn"),
    FloatFormat("float8_e4m3fnuz", 8, 4, 3, 8, "fnuz"),
    FloatFormat("float8_e5m2", 8, 5, 2, 15, "ieee"),
    FloatFormat("float8_e5m2fnuz", 8, 5, 2, 16, "fnuz"),
    FloatFormat("float8_e8m0fnu", 8, 8, 0, 127, "e8m0"),
)}

ROUND_MODES = ("up", "down", "nearest")


def is_exotic(dtype: str) -> bool:
    """A storage-only float format (kept as bits, computed in float32)."""
    return dtype in FORMATS


def storage_dtype(dtype: str) -> np.dtype:
    """The numpy dtype of a tensor's memory: the bit-pattern integer for exotic formats."""
    f = FORMATS.get(dtype)
    return np.dtype(f.storage if f else dtype)


def np_dtype(dtype: str) -> np.dtype:
    """The numpy dtype constants of `dtype` carry (ml_dtypes for the exotic formats)."""
    return np.dtype(dtype)


# ---------------------------------------------------------------- numpy (bit patterns)
def _round_shift(m: np.ndarray, s: np.ndarray) -> np.ndarray:
    """m >> s rounded to nearest even (uint64 arithmetic, 1 <= s <= 63)."""
    s = s.astype(np.uint64)
    half = (np.uint64(1) << (s - np.uint64(1))) - np.uint64(1)
    return (m + half + ((m >> s) & np.uint64(1))) >> s


def from_f32_bits(u: np.ndarray, dtype: str, saturate: bool = True,
                  round_mode: str = "up") -> np.ndarray:
    """float32 bit patterns (uint32) -> `dtype` bit patterns (its storage dtype)."""
    f = FORMATS[dtype]
    u = np.asarray(u, np.uint32).astype(np.uint64)
    if f.kind == "e8m0":
        return _to_e8m0(u, saturate, round_mode).astype(np.uint8)
    sign = u >> np.uint64(31)
    a = u & np.uint64(0x7FFFFFFF)
    shift = 23 - f.mbits
    rebias = 127 - f.bias
    ef = a >> np.uint64(23)
    code_n = _round_shift(a, np.full(a.shape, shift)) - np.uint64(max(rebias, 0) << f.mbits)
    if rebias <= 0:  # bfloat16: float32's exponent range, one formula for every value
        code = code_n
    else:
        m = (a & np.uint64(0x7FFFFF)) | np.where(ef != 0, np.uint64(1 << 23), np.uint64(0))
        s = np.minimum(shift + rebias + 1 - np.maximum(ef, np.uint64(1)).astype(np.int64), 63)
        code = np.where(ef > np.uint64(rebias), code_n, _round_shift(m, np.maximum(s, 1)))
    over = code > np.uint64(f.max_code)
    if saturate and f.bits == 8:
        code = np.where(over, np.uint64(f.max_code), code)
    elif f.kind == "ieee":
        code = np.where(over, np.uint64(f.max_code + 1), code)  # inf
    else:
        code = np.where(over, np.uint64(f.nan_code), code)
    code = np.where(a > np.uint64(0x7F800000), np.uint64(f.nan_code), code)
    sbit = sign << np.uint64(f.bits - 1)
    if f.kind == "fnuz":  # no -0; NaN is 0x80 whatever the sign
        sbit = np.where((code == 0) | (code == np.uint64(f.nan_code)), np.uint64(0), sbit)
    return (code | sbit).astype(f.storage)


def _to_e8m0(u: np.ndarray, saturate: bool, round_mode: str) -> np.ndarray:
    if round_mode not in ROUND_MODES:
        raise ValueError(f"round_mode {round_mode!r}: use one of {', '.join(ROUND_MODES)}")
    e = (u >> np.uint64(23)) & np.uint64(0xFF)
    special = e == np.uint64(0xFF)
    if round_mode == "up":
        up = (u & np.uint64(0x7FFFFF)) != 0
    elif round_mode == "nearest":
        g = (u & np.uint64(0x400000)) != 0
        rs = (u & np.uint64(0x3FFFFF)) != 0
        up = g & (rs | (e > 0))
    else:
        up = np.zeros(u.shape, bool)
    if saturate:
        up &= e != np.uint64(0xFE)
    e = e + up.astype(np.uint64)
    return np.where(special, np.uint64(0xFF), e)


def to_f32_bits(c: np.ndarray, dtype: str) -> np.ndarray:
    """`dtype` bit patterns -> float32 bit patterns (uint32); exact (every value fits)."""
    f = FORMATS[dtype]
    c = np.asarray(c).astype(np.uint32)
    if f.kind == "e8m0":
        out = np.where(c == 0, np.uint32(0x400000), c << np.uint32(23))
        return np.where(c == 0xFF, np.uint32(0x7FC00000), out).astype(np.uint32)
    sign = (c >> np.uint32(f.bits - 1)) << np.uint32(31)
    mag = c & np.uint32((1 << (f.bits - 1)) - 1)
    shift = 23 - f.mbits
    rebias = 127 - f.bias
    if f.bits == 16:
        return (c << np.uint32(16)).astype(np.uint32)  # bfloat16 is float32's top half
    e = mag >> np.uint32(f.mbits)
    m = mag & np.uint32((1 << f.mbits) - 1)
    normal = ((e + np.uint32(rebias)) << np.uint32(23)) | (m << np.uint32(shift))
    sub = (m.astype(np.float32) * np.float32(2.0 ** (1 - f.bias - f.mbits))).view(np.uint32)
    out = np.where(e == 0, sub, normal) | sign
    qnan = np.uint32(0x7FC00000)
    if f.kind == "ieee":
        top = e == np.uint32((1 << f.ebits) - 1)
        out = np.where(top & (m == 0), np.uint32(0x7F800000) | sign, out)
        out = np.where(top & (m != 0), qnan | sign, out)
    elif f.kind == "fn":
        out = np.where(mag == np.uint32(f.nan_code), qnan | sign, out)
    else:
        out = np.where(c == np.uint32(f.nan_code), np.uint32(0xFFC00000), out)
    return out.astype(np.uint32)


def cast_array(x: np.ndarray, to: str, saturate: bool = True,
               round_mode: str = "up") -> np.ndarray:
    """ONNX Cast of a numpy array when the source or the target is an exotic format (the
    exotic side is an ml_dtypes array); the fold of the Cast op."""
    src = x.dtype.name
    if is_exotic(src):
        f32 = to_f32_bits(x.view(FORMATS[src].storage), src).view(np.float32)
        if not is_exotic(to):
            with np.errstate(invalid="ignore", over="ignore"):
                return f32.astype(np.dtype(to))
        x = f32
    if is_exotic(to):
        bits = from_f32_bits(_to_f32(x).view(np.uint32), to, saturate, round_mode)
        return bits.view(np_dtype(to))
    return x.astype(np.dtype(to))


def _to_f32(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        return np.array(x, dtype=np.float32, order="C")  # keeps 0-d arrays 0-d

"""Quantized ops: QuantizeLinear / DequantizeLinear (kept only until passes/quantize.py lowers
them) and the integer kernels QConv / QGemm.

QConv(x, w, bias, scale) and QGemm(a, b, bias, scale) compute an int32 accumulator
acc = sum(x * w) + bias[c] (x uint8/int8, w int8 or int16, bias int32 already holding the
-x_zero_point * sum(w) correction, so the reduction never subtracts a zero point), then the
epilogue `requant(acc)`:
  out_dtype "float32": acc * scale[c]                      (dequantized output)
  out_dtype "int32":   acc                                  (ConvInteger / MatMulInteger)
  out_dtype uint8/int8: saturate(round_half_even(acc * scale[c]) + y_zp)  (as onnxruntime)
with attrs["relu"] clamping at zero (or at y_zp) first. Padding reads x_zp (real value 0).
"""

from __future__ import annotations

import numpy as np

from ..graph import TensorType
from ._util import expect_inputs, expect_rank
from .nn import _conv_infer, conv2d
from .registry import register_op

QRANGE = {"uint8": (0, 255), "int8": (-128, 127)}


def _quantize_infer(types, attrs):
    expect_inputs("QuantizeLinear", types, 2, 3)
    dtype = types[2].dtype if len(types) > 2 else attrs.get("dtype", "uint8")
    if dtype not in QRANGE:
        raise ValueError(f"QuantizeLinear: output type {dtype} is not uint8/int8")
    return [TensorType(types[0].shape, dtype)]


def _dequantize_infer(types, attrs):
    expect_inputs("DequantizeLinear", types, 2, 3)
    return [TensorType(types[0].shape, types[1].dtype)]


def _param_shape(shape, axis, p):
    """Broadcast a per-axis scale/zero point (1-D over `axis`) against a tensor of `shape`."""
    p = np.asarray(p)
    if p.ndim == 0 or p.size == 1:
        return p.reshape(())
    axis = axis % len(shape)
    return p.reshape([-1 if d == axis else 1 for d in range(len(shape))])


def quantize_ref(x, scale, zp, axis=1, dtype="uint8"):
    lo, hi = QRANGE[dtype]
    s = _param_shape(x.shape, axis, scale).astype(np.float32)
    z = _param_shape(x.shape, axis, zp).astype(np.float32)
    return np.clip(np.round(x.astype(np.float32) / s) + z, lo, hi).astype(dtype)


def dequantize_ref(q, scale, zp, axis=1):
    s = _param_shape(q.shape, axis, scale).astype(np.float32)
    z = _param_shape(q.shape, axis, zp).astype(np.int32)
    return ((q.astype(np.int32) - z).astype(np.float32) * s).astype(np.float32)


register_op("QuantizeLinear", _quantize_infer,
            lambda a, at: [quantize_ref(a[0], a[1], a[2] if len(a) > 2 else 0, at.get("axis", 1),
                                        a[2].dtype.name if len(a) > 2
                                        else at.get("dtype", "uint8"))])
# No fold: a DequantizeLinear of a constant weight must stay visible to the QDQ rewrite.
register_op("DequantizeLinear", _dequantize_infer)


def requant_ref(acc: np.ndarray, scale, attrs, axis: int) -> np.ndarray:
    """The integer kernels' epilogue in numpy (float32 math, like the kernels)."""
    out = attrs["out_dtype"]
    if out == "int32":
        return acc.astype(np.int32)
    s = _param_shape(acc.shape, axis, scale).astype(np.float32)
    v = acc.astype(np.float32) * s
    if out == "float32":
        return np.maximum(v, 0) if attrs.get("relu") else v
    lo, hi = QRANGE[out]
    y = np.round(v) + np.float32(attrs.get("y_zp", 0))
    if attrs.get("relu"):
        lo = max(lo, attrs.get("y_zp", 0))
    return np.clip(y, lo, hi).astype(out)


def _out_type(shape, attrs):
    return TensorType(shape, attrs["out_dtype"])


def _qconv_infer(types, attrs):
    expect_inputs("QConv", types, 4)
    x, w = types[0], types[1]
    wdt = ("int32",) if attrs.get("vnni") else ("int8", "int16")
    if x.dtype not in QRANGE or w.dtype not in wdt:
        raise ValueError(f"QConv: needs uint8/int8 X and int8/int16 W, got {x.dtype}, {w.dtype}")
    if attrs.get("vnni"):  # (OC/b, IC/4, KH, KW, b) int32 words of 4 int8, zero-padded
        w = TensorType((attrs["channels"], x.shape[1]) + w.shape[2:4], "float32")
    elif attrs.get("weight_block"):
        ob = attrs["weight_block"]
        oc = attrs.get("channels") or w.shape[0] * ob  # channels: OC before zero padding
        w = TensorType((oc,) + w.shape[1:4], "float32")
    shape = _conv_infer([TensorType(x.shape, "float32"), TensorType(w.shape, "float32")],
                        attrs)[0].shape
    return [_out_type(shape, attrs)]


def qconv_ref(x, w, bias, scale, attrs):
    if attrs.get("vnni"):
        from tilecc.passes.quant_pack import vnni_unpack_conv
        w = vnni_unpack_conv(w, attrs["channels"], x.shape[1])
    elif attrs.get("weight_block"):
        w = w.transpose(0, 4, 1, 2, 3).reshape((-1,) + w.shape[1:4])[:attrs.get("channels")]
    pads = attrs["pads"]
    flip = 128 if attrs.get("x_flip") else 0  # x enters as x - 128, the bias gives it back
    xp = np.pad(x.astype(np.float64) - flip,
                ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])),
                constant_values=attrs.get("x_zp", 0) - flip)
    acc = conv2d(xp, w.astype(np.float64), None, attrs["strides"], (0, 0, 0, 0),
                 attrs["dilations"], attrs["group"])
    acc = np.rint(acc).astype(np.int64) + bias.reshape(1, -1, 1, 1)
    return requant_ref(acc, scale, attrs, 1)


register_op("QConv", _qconv_infer, lambda a, at: [qconv_ref(*a, at)])


def _qgemm_infer(types, attrs):
    expect_inputs("QGemm", types, 4)
    a, b = types[0], types[1]
    expect_rank("QGemm", a, 2, "A")
    if attrs.get("vnni"):  # (N/nb, K/4, nb) int32 panels of 4 int8 words
        b = TensorType((a.shape[1], attrs["channels"]), "int8")
    expect_rank("QGemm", b, 2, "B")
    if a.dtype not in QRANGE or b.dtype not in ("int8", "int16"):
        raise ValueError(f"QGemm: needs uint8/int8 A and int8/int16 B, got {a.dtype}, {b.dtype}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"QGemm: inner dims differ: {list(a.shape)} @ {list(b.shape)}")
    return [_out_type((a.shape[0], b.shape[1]), attrs)]


def qgemm_ref(a, b, bias, scale, attrs):
    if attrs.get("vnni"):
        from tilecc.passes.quant_pack import vnni_unpack_gemm
        b = vnni_unpack_gemm(b, a.shape[1], attrs["channels"])
    flip = 128 if attrs.get("x_flip") else 0  # as in qconv_ref
    acc = (a.astype(np.int64) - flip) @ b.astype(np.int64) + bias.reshape(1, -1)
    return requant_ref(acc, scale, attrs, 1)


register_op("QGemm", _qgemm_infer, lambda a, at: [qgemm_ref(*a, at)])

"""Neural-network ops: Conv, Gemm, MatMul, BatchNormalization, pools, LRN, Softmax."""

from __future__ import annotations

import math

import numpy as np

from ..graph import TensorType
from ._util import (
    broadcast_shapes,
    check_axis,
    expect_inputs,
    expect_min_rank,
    expect_per_channel,
    expect_rank,
    same_dtype,
)
from .registry import Pattern, register_op


def _window_out(op: str, size: int, k: int, s: int, d: int, p0: int, p1: int,
                ceil_mode: int = 0) -> int:
    span = d * (k - 1) + 1
    num = size + p0 + p1 - span
    if num < 0:
        raise ValueError(f"{op}: window of extent {span} (kernel {k}, dilation {d}) is larger "
                         f"than the padded input {size + p0 + p1}")
    out = (-(-num // s) if ceil_mode else num // s) + 1
    # ONNX/ORT: with ceil_mode the last window must start inside the input or the begin pad,
    # otherwise it would cover only end padding.
    if ceil_mode and (out - 1) * s >= size + p0:
        out -= 1
    return out


def _windows(x: np.ndarray, kernel, strides, dilations, begin, out_hw, fill) -> np.ndarray:
    """Pad x (N, C, H, W) and return all windows as (N, C, kh, kw, OH, OW).

    The padded extent is exactly what the output windows touch, which covers explicit pads
    and any ceil_mode overhang; `fill` goes into every position outside the input.
    """
    (kh, kw), (sh, sw), (dh, dw), (pt, pl), (oh, ow) = kernel, strides, dilations, begin, out_hw
    need_h = (oh - 1) * sh + dh * (kh - 1) + 1
    need_w = (ow - 1) * sw + dw * (kw - 1) + 1
    n, c, h, w = x.shape
    xp = np.full((n, c, max(need_h, pt + h), max(need_w, pl + w)), fill, dtype=x.dtype)
    xp[:, :, pt:pt + h, pl:pl + w] = x
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                                  j * dw:j * dw + sw * (ow - 1) + 1:sw]
    return cols


# ---- Conv -------------------------------------------------------------------------------

def _conv_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    expect_inputs("Conv", types, 2, 3)
    x, w = types[0], types[1]
    expect_rank("Conv", x, 4, "X")
    expect_rank("Conv", w, 4, "W")
    same_dtype("Conv", types)
    g = attrs["group"]
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    if c != cg * g:
        raise ValueError(f"Conv: X has {c} channels but W expects {cg} x group {g} = {cg * g}")
    if m % g:
        raise ValueError(f"Conv: {m} output channels are not divisible by group {g}")
    if len(types) == 3 and types[2].shape != (m,):
        raise ValueError(f"Conv: bias shape {list(types[2].shape)} must be [{m}]")
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = attrs["strides"], attrs["dilations"], attrs["pads"]
    oh = _window_out("Conv", h, kh, sh, dh, pt, pb)
    ow = _window_out("Conv", wd, kw, sw, dw, pl, pr)
    return [TensorType((n, m, oh, ow), x.dtype)]


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, strides, pads, dilations,
           group: int) -> np.ndarray:
    """Reference NCHW convolution via im2col + one einsum per call (groups batched)."""
    n, _c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    oh = _window_out("Conv", h, kh, strides[0], dilations[0], pads[0], pads[2])
    ow = _window_out("Conv", wd, kw, strides[1], dilations[1], pads[1], pads[3])
    cols = _windows(x, (kh, kw), strides, dilations, pads[:2], (oh, ow), 0)
    cols = cols.reshape(n, group, cg, kh, kw, oh, ow)
    wg = w.reshape(group, m // group, cg, kh, kw)
    acc = np.float64 if x.dtype == np.float64 else np.float32
    y = np.einsum("gmckl,ngcklhw->ngmhw", wg.astype(acc), cols.astype(acc), optimize=True)
    y = y.reshape(n, m, oh, ow)
    if b is not None:
        y = y + b.astype(acc).reshape(1, m, 1, 1)
    return y.astype(x.dtype)


def _conv_fold(arrays, attrs):
    b = arrays[2] if len(arrays) > 2 else None
    return [conv2d(arrays[0], arrays[1], b, attrs["strides"], attrs["pads"],
                   attrs["dilations"], attrs["group"])]


register_op("Conv", _conv_infer, _conv_fold)


# ---- Gemm / MatMul --------------------------------------------------------------------

def _gemm_infer(types, attrs):
    expect_inputs("Gemm", types, 2, 3)
    a, b = types[0], types[1]
    expect_rank("Gemm", a, 2, "A")
    expect_rank("Gemm", b, 2, "B")
    m, k = a.shape[::-1] if attrs["transA"] else a.shape
    k2, n = b.shape[::-1] if attrs["transB"] else b.shape
    if k != k2:
        raise ValueError(f"Gemm: inner dims differ: A gives K={k}, B gives K={k2} "
                         f"(transA={attrs['transA']}, transB={attrs['transB']})")
    if len(types) == 3 and broadcast_shapes("Gemm", types[2].shape, (m, n)) != (m, n):
        raise ValueError(f"Gemm: C shape {list(types[2].shape)} does not broadcast to [{m},{n}]")
    return [TensorType((m, n), same_dtype("Gemm", types))]


def _gemm_fold(arrays, attrs):
    a, b = arrays[0], arrays[1]
    a = a.T if attrs["transA"] else a
    b = b.T if attrs["transB"] else b
    y = attrs["alpha"] * (a.astype(np.float64) @ b.astype(np.float64))
    if len(arrays) > 2:
        y = y + attrs["beta"] * arrays[2].astype(np.float64)
    return [y.astype(arrays[0].dtype)]


register_op("Gemm", _gemm_infer, _gemm_fold)


def _matmul_infer(types, attrs):
    expect_inputs("MatMul", types, 2)
    a, b = types[0].shape, types[1].shape
    if not a or not b:
        raise ValueError("MatMul: operands must have rank >= 1")
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise ValueError(f"MatMul: inner dims differ: {list(a)} @ {list(b)}")
    batch = broadcast_shapes("MatMul", a2[:-2], b2[:-2])
    out = batch + (a2[-2],) * (len(a) > 1) + (b2[-1],) * (len(b) > 1)
    return [TensorType(out, same_dtype("MatMul", types))]


def _matmul_fold(arrays, attrs):
    a, b = arrays
    return [np.matmul(a, b).astype(a.dtype, copy=False)]


register_op("MatMul", _matmul_infer, _matmul_fold)


# ---- BatchNormalization ----------------------------------------------------------------

def _bn_infer(types, attrs):
    expect_inputs("BatchNormalization", types, 5)
    x = types[0]
    expect_min_rank("BatchNormalization", x, 2, "X")
    expect_per_channel("BatchNormalization", x.shape[1], ("scale", "bias", "mean", "var"),
                       types[1:])
    return [x]


def bn_scale_shift(scale, bias, mean, var, eps):
    """Per-channel (multiplier, offset) with y = x * multiplier + offset, in float64."""
    mul = scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
    return mul, bias.astype(np.float64) - mean.astype(np.float64) * mul


def _bn_fold(arrays, attrs):
    x = arrays[0]
    mul, add = bn_scale_shift(*arrays[1:], attrs["epsilon"])
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return [(x * mul.reshape(shape) + add.reshape(shape)).astype(x.dtype)]


# Elementwise once its statistics are constants: a per-channel scale and shift.
register_op("BatchNormalization", _bn_infer, _bn_fold, pattern=Pattern.ELEMWISE)


# ---- Pools ---------------------------------------------------------------------------

def _pool_infer(op):
    def infer(types, attrs):
        expect_inputs(op, types, 1)
        x = types[0]
        expect_rank(op, x, 4, "X")
        (kh, kw), (sh, sw), (pt, pl, pb, pr) = attrs["kernel"], attrs["strides"], attrs["pads"]
        dh, dw = attrs.get("dilations", (1, 1))
        n, c, h, w = x.shape
        oh = _window_out(op, h, kh, sh, dh, pt, pb, attrs["ceil_mode"])
        ow = _window_out(op, w, kw, sw, dw, pl, pr, attrs["ceil_mode"])
        return [TensorType((n, c, oh, ow), x.dtype)]
    return infer


def _pool_geometry(x, attrs):
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = attrs["kernel"], attrs["strides"], attrs["pads"]
    dil = attrs.get("dilations", (1, 1))
    oh = _window_out("pool", x.shape[2], kh, sh, dil[0], pt, pb, attrs["ceil_mode"])
    ow = _window_out("pool", x.shape[3], kw, sw, dil[1], pl, pr, attrs["ceil_mode"])
    return (kh, kw), (sh, sw), dil, (pt, pl), (oh, ow)


def _maxpool_fold(arrays, attrs):
    x = arrays[0]
    low = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
    cols = _windows(x, *_pool_geometry(x, attrs), low)
    return [cols.max(axis=(2, 3))]


def _avgpool_fold(arrays, attrs):
    x = arrays[0]
    geo = _pool_geometry(x, attrs)
    sums = _windows(x.astype(np.float64), *geo, 0.0).sum(axis=(2, 3))
    # The divisor counts input positions, plus the explicit pads when count_include_pad;
    # the ceil_mode overhang past the end pad never counts (ORT behaviour).
    pt, pl, pb, pr = attrs["pads"]
    if attrs["count_include_pad"]:
        ones = np.ones((1, 1, x.shape[2] + pt + pb, x.shape[3] + pl + pr))
        geo = geo[:3] + ((0, 0),) + geo[4:]
    else:
        ones = np.ones((1, 1) + x.shape[2:])
    counts = _windows(ones, *geo, 0.0).sum(axis=(2, 3))
    return [(sums / np.maximum(counts, 1)).astype(x.dtype)]


register_op("MaxPool", _pool_infer("MaxPool"), _maxpool_fold)
register_op("AveragePool", _pool_infer("AveragePool"), _avgpool_fold)


def _global_infer(op):
    def infer(types, attrs):
        expect_inputs(op, types, 1)
        x = types[0]
        if len(x.shape) < 3:
            raise ValueError(f"{op}: X must be (N, C, spatial...), got {list(x.shape)}")
        return [TensorType(x.shape[:2] + (1,) * (len(x.shape) - 2), x.dtype)]
    return infer


def _global_fold(fn):
    def fold(arrays, attrs):
        x = arrays[0]
        return [np.asarray(fn(x, axis=tuple(range(2, x.ndim)), keepdims=True)).astype(x.dtype)]
    return fold


register_op("GlobalAveragePool", _global_infer("GlobalAveragePool"), _global_fold(np.mean))
register_op("GlobalMaxPool", _global_infer("GlobalMaxPool"), _global_fold(np.max))


# ---- LRN / Softmax -------------------------------------------------------------------

def _lrn_infer(types, attrs):
    expect_inputs("LRN", types, 1)
    expect_min_rank("LRN", types[0], 2, "X")
    return [types[0]]


def _lrn_fold(arrays, attrs):
    x = arrays[0]
    size = attrs["size"]
    c = x.shape[1]
    sq = np.square(x.astype(np.float64))
    lo, hi = (size - 1) // 2, math.ceil((size - 1) / 2)
    padded = np.pad(sq, [(0, 0), (lo, hi)] + [(0, 0)] * (x.ndim - 2))
    csum = np.cumsum(padded, axis=1)
    csum = np.concatenate([np.zeros_like(csum[:, :1]), csum], axis=1)
    window = csum[:, size:size + c] - csum[:, :c]
    y = x / (attrs["bias"] + attrs["alpha"] / size * window) ** attrs["beta"]
    return [y.astype(x.dtype)]


register_op("LRN", _lrn_infer, _lrn_fold)


def _softmax_infer(op):
    def infer(types, attrs):
        expect_inputs(op, types, 1)
        check_axis(op, attrs["axis"], len(types[0].shape))
        return [types[0]]
    return infer


def _softmax_fold(log: bool):
    def fold(arrays, attrs):
        x = arrays[0]
        z = x.astype(np.float64)
        z = z - z.max(axis=attrs["axis"], keepdims=True)
        lse = np.log(np.exp(z).sum(axis=attrs["axis"], keepdims=True))
        y = z - lse if log else np.exp(z - lse)
        return [y.astype(x.dtype)]
    return fold


register_op("Softmax", _softmax_infer("Softmax"), _softmax_fold(False))
register_op("LogSoftmax", _softmax_infer("LogSoftmax"), _softmax_fold(True))

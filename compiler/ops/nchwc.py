"""Blocked-layout (NCHW{b}c) ops made by passes/blocked_layout.py for CPU targets.

A blocked tensor is (N, C/b, H, W, b): b channels are one contiguous vector. These ops never
come from a model; their numpy folds exist so constant subgraphs still fold after the pass.
"""

from __future__ import annotations

import numpy as np

from ..graph import TensorType
from ._util import expect_inputs
from .nn import _avgpool_fold, _conv_infer, _maxpool_fold, _pool_infer, conv2d
from .registry import register_op


def to_blocked(x: np.ndarray, b: int) -> np.ndarray:
    n, c, h, w = x.shape
    return np.ascontiguousarray(x.reshape(n, c // b, b, h, w).transpose(0, 1, 3, 4, 2))


def from_blocked(x: np.ndarray) -> np.ndarray:
    n, cb, h, w, b = x.shape
    return np.ascontiguousarray(x.transpose(0, 1, 4, 2, 3).reshape(n, cb * b, h, w))


def nchw_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    n, cb, h, w, b = shape
    return (n, cb * b, h, w)


def blocked_shape(shape: tuple[int, ...], b: int) -> tuple[int, ...]:
    n, c, h, w = shape
    return (n, c // b, h, w, b)


# ---- LayoutTransform: attrs src_block, dst_block (0 = plain NCHW) -------------------------

def _transform_infer(types, attrs):
    expect_inputs("LayoutTransform", types, 1)
    x = types[0]
    shape = nchw_shape(x.shape) if attrs["src_block"] else x.shape
    if attrs["dst_block"]:
        if shape[1] % attrs["dst_block"]:
            raise ValueError(f"LayoutTransform: {shape[1]} channels are not a multiple of the "
                             f"block {attrs['dst_block']}")
        shape = blocked_shape(shape, attrs["dst_block"])
    return [TensorType(tuple(shape), x.dtype)]


def _transform_fold(arrays, attrs):
    x = arrays[0]
    if attrs["src_block"]:
        x = from_blocked(x)
    return [to_blocked(x, attrs["dst_block"]) if attrs["dst_block"] else x]


register_op("LayoutTransform", _transform_infer, _transform_fold)


# ---- ConvNCHWc -------------------------------------------------------------------------
# attrs: the Conv attrs plus in_block (0: input is plain NCHW), out_block, depthwise.
# Weights: dense (OC/ob, IC/ib, KH, KW, ib, ob), or (OC/ob, IC, KH, KW, ob) when in_block is
# 0; depthwise (C/b, KH, KW, b). Bias stays (OC,).

def unpack_conv_weight(w: np.ndarray, attrs: dict) -> np.ndarray:
    if attrs["depthwise"]:
        cb, kh, kw, b = w.shape
        return np.ascontiguousarray(w.transpose(0, 3, 1, 2).reshape(cb * b, 1, kh, kw))
    if attrs["in_block"]:
        ocb, icb, kh, kw, ib, ob = w.shape
        return np.ascontiguousarray(w.transpose(0, 5, 1, 4, 2, 3).reshape(ocb * ob, icb * ib,
                                                                           kh, kw))
    ocb, ic, kh, kw, ob = w.shape
    return np.ascontiguousarray(w.transpose(0, 4, 1, 2, 3).reshape(ocb * ob, ic, kh, kw))


def _plain_conv_attrs(attrs: dict, channels: int) -> dict:
    keep = {k: attrs[k] for k in ("strides", "pads", "dilations")}
    return dict(keep, group=channels if attrs["depthwise"] else 1)


def _conv_nchwc_infer(types, attrs):
    expect_inputs("ConvNCHWc", types, 2, 3)
    x = types[0]
    xs = nchw_shape(x.shape) if attrs["in_block"] else x.shape
    w = np.empty(types[1].shape, np.uint8)
    ws = unpack_conv_weight(w, attrs).shape
    plain = [TensorType(tuple(xs), x.dtype), TensorType(ws, types[1].dtype)] + list(types[2:])
    (out,) = _conv_infer(plain, _plain_conv_attrs(attrs, xs[1]))
    return [TensorType(blocked_shape(out.shape, attrs["out_block"]), x.dtype)]


def _conv_nchwc_fold(arrays, attrs):
    x = from_blocked(arrays[0]) if attrs["in_block"] else arrays[0]
    w = unpack_conv_weight(arrays[1], attrs)
    a = _plain_conv_attrs(attrs, x.shape[1])
    y = conv2d(x, w, arrays[2] if len(arrays) > 2 else None, a["strides"], a["pads"],
               a["dilations"], a["group"])
    return [to_blocked(y, attrs["out_block"])]


register_op("ConvNCHWc", _conv_nchwc_infer, _conv_nchwc_fold)


# ---- Pools on blocked tensors: attrs as the NCHW pool ops ---------------------------------

def _blocked_pool(op, infer, fold):
    def infer5(types, attrs):
        x = types[0]
        (out,) = infer([TensorType(nchw_shape(x.shape), x.dtype)], attrs)
        return [TensorType(blocked_shape(out.shape, x.shape[4]), x.dtype)]

    def fold5(arrays, attrs):
        b = arrays[0].shape[4]
        return [to_blocked(fold([from_blocked(arrays[0])], attrs)[0], b)]

    register_op(op, infer5, fold5)


def _global_infer(types, attrs):
    n, cb, _h, _w, b = types[0].shape
    return [TensorType((n, cb, 1, 1, b), types[0].dtype)]


def _global_fold(fn):
    return lambda arrays, attrs: [fn(arrays[0], axis=(2, 3), keepdims=True)
                                  .astype(arrays[0].dtype)]


_blocked_pool("MaxPoolNCHWc", _pool_infer("MaxPool"), _maxpool_fold)
_blocked_pool("AveragePoolNCHWc", _pool_infer("AveragePool"), _avgpool_fold)
register_op("GlobalAveragePoolNCHWc", _global_infer, _global_fold(np.mean))
register_op("GlobalMaxPoolNCHWc", _global_infer, _global_fold(np.max))

"""Image-style ops: Resize (all ONNX interpolation modes, as per-axis tap tables).
ConvTranspose has no op of its own: the frontend rewrites it to zero insertion + Conv.

Resize's canonical form carries its sampling pattern as constant inputs the frontend computes
once: for every axis d, `idx_d` (O_d, K_d) int64 source indices and `w_d` (O_d, K_d) weights,
K_d = 1 (nearest or untouched axis), 2 (linear) or 4 (cubic). The output is
    y[o] = sum over taps k of  prod_d w_d[o_d, k_d] * x[idx_0[o_0, k_0], ..., idx_r[o_r, k_r]]
and an index of -1 marks a sample outside the input (tf_crop_and_resize), which takes
attrs["extrapolation_value"]. Every coordinate-transformation mode, nearest mode, cubic
coefficient and exclude_outside setting is thereby resolved at compile time.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..graph import TensorType
from ._util import expect_inputs
from .registry import register_op

# ---- Resize ---------------------------------------------------------------------------


def _resize_infer(types, attrs):
    x = types[0]
    r = len(x.shape)
    expect_inputs("Resize", types, 1 + 2 * r)
    out = []
    for d in range(r):
        idx, w = types[1 + 2 * d], types[2 + 2 * d]
        if len(idx.shape) != 2 or idx.shape != w.shape or idx.dtype != "int64":
            raise ValueError(f"Resize: axis {d} tables must be int64 idx and weights of one "
                             f"shape (O, K), got {idx} and {w}")
        out.append(idx.shape[0])
    return [TensorType(tuple(out), x.dtype)]


def _resize_fold(arrays, attrs):
    x = arrays[0]
    r = x.ndim
    idx = arrays[1::2]
    ws = arrays[2::2]
    out_shape = tuple(i.shape[0] for i in idx)
    acc = np.zeros(out_shape, np.float64)
    valid = np.ones(out_shape, bool)
    for taps in itertools.product(*[range(i.shape[1]) for i in idx]):
        sel = [i[:, k] for i, k in zip(idx, taps)]
        grid = np.ix_(*[np.clip(s, 0, x.shape[d] - 1) for d, s in enumerate(sel)])
        weight = np.ones(out_shape)
        for d, (w, k) in enumerate(zip(ws, taps)):
            shape = [1] * r
            shape[d] = -1
            weight = weight * w[:, k].astype(np.float64).reshape(shape)
            valid &= (sel[d] >= 0).reshape(shape)
        acc += weight * x[grid]
    y = np.where(valid, acc, attrs["extrapolation_value"])
    if np.issubdtype(x.dtype, np.integer):
        y = np.rint(y)
    return [y.astype(x.dtype)]


register_op("Resize", _resize_infer, _resize_fold)


def _f32(v):
    return np.float32(v)


def resize_tables(in_len: int, out_len: int, scale: float, attrs: dict,
                  roi: tuple[float, float] = (0.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """(idx, w) for one axis, computed in float32 like onnxruntime."""
    mode, ctm = attrs["mode"], attrs["coordinate_transformation_mode"]
    o = np.arange(out_len, dtype=np.float32)
    s = _f32(scale)
    if in_len == out_len and scale == 1.0 and ctm != "tf_crop_and_resize":
        return np.arange(out_len, dtype=np.int64)[:, None], np.ones((out_len, 1), np.float32)
    if ctm == "half_pixel":
        xo = (o + _f32(0.5)) / s - _f32(0.5)
    elif ctm == "half_pixel_symmetric":
        adj = _f32(out_len) / (s * _f32(in_len))
        center = _f32(in_len) / _f32(2)
        off = center * (_f32(1) - adj)
        xo = off + (o + _f32(0.5)) / s - _f32(0.5)
    elif ctm == "pytorch_half_pixel":
        xo = (o + _f32(0.5)) / s - _f32(0.5) if out_len > 1 else np.zeros_like(o)
    elif ctm == "align_corners":
        xo = (o * _f32(in_len - 1) / _f32(out_len - 1)) if out_len > 1 else np.zeros_like(o)
    elif ctm == "asymmetric":
        xo = o / s
    elif ctm == "tf_half_pixel_for_nn":
        xo = (o + _f32(0.5)) / s
    elif ctm == "tf_crop_and_resize":
        a, b = _f32(roi[0]), _f32(roi[1])
        if out_len > 1:
            xo = a * _f32(in_len - 1) + o * (b - a) * _f32(in_len - 1) / _f32(out_len - 1)
        else:
            xo = np.full_like(o, _f32(0.5) * (a + b) * _f32(in_len - 1))
    else:
        raise ValueError(f"Resize: coordinate_transformation_mode {ctm!r} is not supported")
    xo = xo.astype(np.float32)
    outside = (xo < 0) | (xo > in_len - 1) if ctm == "tf_crop_and_resize" else None
    if mode == "nearest":
        nm = attrs["nearest_mode"]
        if nm == "round_prefer_floor":
            i = np.where(xo == np.floor(xo) + _f32(0.5), np.floor(xo), np.round(xo))
        elif nm == "round_prefer_ceil":
            i = np.where(xo == np.floor(xo) + _f32(0.5), np.ceil(xo), np.round(xo))
        elif nm == "floor":
            i = np.floor(xo)
        elif nm == "ceil":
            i = np.ceil(xo)
        else:
            raise ValueError(f"Resize: nearest_mode {nm!r} is not supported")
        idx = np.clip(i.astype(np.int64), 0, in_len - 1)[:, None]
        w = np.ones((out_len, 1), np.float32)
    else:
        if mode == "linear":
            base = np.floor(xo)
            t = (xo - base).astype(np.float64)
            offs = np.array([0, 1])
            coeffs = np.stack([1 - t, t], axis=1)
        elif mode == "cubic":
            base = np.floor(xo)
            t = (xo - base).astype(np.float64)
            a = attrs["cubic_coeff_a"]
            offs = np.array([-1, 0, 1, 2])

            def near(u):  # |u| <= 1
                return ((a + 2) * u - (a + 3)) * u * u + 1

            def far(u):  # 1 < |u| < 2
                return ((a * u - 5 * a) * u + 8 * a) * u - 4 * a
            coeffs = np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=1)
        else:
            raise ValueError(f"Resize: mode {mode!r} is not nearest, linear or cubic")
        raw = base.astype(np.int64)[:, None] + offs[None, :]
        if attrs["exclude_outside"]:
            inside = (raw >= 0) & (raw < in_len)
            coeffs = np.where(inside, coeffs, 0.0)
            coeffs = coeffs / coeffs.sum(axis=1, keepdims=True)
        idx = np.clip(raw, 0, in_len - 1)
        w = coeffs.astype(np.float32)
    if outside is not None:
        idx = np.where(outside[:, None], -1, idx)
    return idx.astype(np.int64), w

"""Normalisations and the activations transformer/NN exports use beyond the elementwise set:
LayerNormalization, GroupNormalization (InstanceNormalization is its groups == C case), Gelu,
PRelu, Selu, Celu, Mish, Softsign, ThresholdedRelu."""

from __future__ import annotations

import math

import numpy as np

from ..graph import TensorType
from ._util import broadcast_shapes, check_axis, expect_inputs, expect_per_channel, same_dtype
from .registry import Pattern, register_op

# ---- LayerNormalization ---------------------------------------------------------------


def _ln_infer(types, attrs):
    expect_inputs("LayerNormalization", types, 2, 3)
    x = types[0]
    axis = check_axis("LayerNormalization", attrs["axis"], len(x.shape))
    norm = x.shape[axis:]
    for name, t in zip(("scale", "bias"), types[1:]):
        if broadcast_shapes("LayerNormalization", t.shape, norm) != norm:
            raise ValueError(f"LayerNormalization: {name} shape {list(t.shape)} does not "
                             f"broadcast to the normalised dims {list(norm)}")
    same_dtype("LayerNormalization", types)
    return [x]


def _ln_fold(arrays, attrs):
    x = arrays[0]
    axes = tuple(range(attrs["axis"], x.ndim))
    xf = x.astype(np.float64)
    mean = xf.mean(axis=axes, keepdims=True)
    var = np.square(xf - mean).mean(axis=axes, keepdims=True)
    y = (xf - mean) / np.sqrt(var + attrs["epsilon"]) * arrays[1]
    if len(arrays) > 2:
        y = y + arrays[2]
    return [y.astype(x.dtype)]


register_op("LayerNormalization", _ln_infer, _ln_fold)

# ---- GroupNormalization (per-channel scale and bias) ------------------------------------


def _gn_infer(types, attrs):
    expect_inputs("GroupNormalization", types, 3)
    x = types[0]
    if len(x.shape) < 3:
        raise ValueError(f"GroupNormalization: X must be (N, C, spatial...), got {list(x.shape)}")
    c, g = x.shape[1], attrs["groups"]
    if g <= 0 or c % g:
        raise ValueError(f"GroupNormalization: {c} channels do not split into {g} groups")
    expect_per_channel("GroupNormalization", c, ("scale", "bias"), types[1:])
    same_dtype("GroupNormalization", types)
    return [x]


def _gn_fold(arrays, attrs):
    x, scale, bias = arrays
    n, c = x.shape[:2]
    g = attrs["groups"]
    xg = x.astype(np.float64).reshape(n, g, -1)
    mean = xg.mean(axis=2, keepdims=True)
    var = np.square(xg - mean).mean(axis=2, keepdims=True)
    y = ((xg - mean) / np.sqrt(var + attrs["epsilon"])).reshape(x.shape)
    shape = (1, c) + (1,) * (x.ndim - 2)
    return [(y * scale.reshape(shape) + bias.reshape(shape)).astype(x.dtype)]


register_op("GroupNormalization", _gn_infer, _gn_fold)

# ---- activations ------------------------------------------------------------------------

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _gelu(x, a):
    if a["approximate"] == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + _erf(x / math.sqrt(2))) if x.size else x


def _softplus(x):
    return np.logaddexp(0.0, x)


ACTIVATIONS = {
    "Gelu": _gelu,
}


def _act_infer(op):
    def infer(types, attrs):
        expect_inputs(op, types, 1)
        return [types[0]]
    return infer


def _act_fold(fn):
    def fold(arrays, attrs):
        x = arrays[0]
        return [np.asarray(fn(x.astype(np.float64), attrs)).astype(x.dtype)]
    return fold


for _name, _fn in ACTIVATIONS.items():
    register_op(_name, _act_infer(_name), _act_fold(_fn), pattern=Pattern.ELEMWISE)


def _prelu_infer(types, attrs):
    expect_inputs("PRelu", types, 2)
    x, s = types
    if broadcast_shapes("PRelu", x.shape, s.shape) != x.shape:
        raise ValueError(f"PRelu: slope shape {list(s.shape)} does not broadcast to X "
                         f"{list(x.shape)}")
    return [TensorType(x.shape, same_dtype("PRelu", types))]


def _prelu_fold(arrays, attrs):
    x, s = arrays
    return [np.where(x < 0, x * s, x).astype(x.dtype)]


register_op("PRelu", _prelu_infer, _prelu_fold, pattern=Pattern.ELEMWISE)

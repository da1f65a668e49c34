"""Reductions over a sorted tuple of axes: ReduceMean/Sum/Max/Min/Prod/L1/L2/LogSum/
LogSumExp/SumSquare; ArgMax/ArgMin over one axis."""

from __future__ import annotations

import numpy as np

from ..graph import TensorType
from ._util import expect_inputs
from .registry import register_op


def _infer(op):
    def infer(types, attrs):
        expect_inputs(op, types, 1)
        shape = types[0].shape
        axes = tuple(attrs["axes"])
        if list(axes) != sorted(set(axes)) or any(not 0 <= a < len(shape) for a in axes):
            raise ValueError(f"{op}: axes {list(axes)} must be sorted, unique and in "
                             f"[0, {len(shape) - 1}]")
        if attrs["keepdims"]:
            out = tuple(1 if i in axes else d for i, d in enumerate(shape))
        else:
            out = tuple(d for i, d in enumerate(shape) if i not in axes)
        return [TensorType(out, types[0].dtype)]
    return infer


def _fold(fn):
    def fold(arrays, attrs):
        x = arrays[0]
        xf = x.astype(np.float64) if x.dtype == np.float16 else x
        if fn in (np.max, np.min) and x.size == 0:
            # An empty reduction yields the identity (ONNX): -inf/+inf or the integer limits.
            info = np.finfo(x.dtype) if x.dtype.kind == "f" else np.iinfo(x.dtype)
            lim = (-np.inf if fn is np.max else np.inf) if x.dtype.kind == "f" else (
                info.min if fn is np.max else info.max)
            y = np.full(_out_shape(x.shape, attrs), lim)
        else:
            y = fn(xf, axis=tuple(attrs["axes"]), keepdims=bool(attrs["keepdims"]))
        return [np.asarray(y).astype(x.dtype)]
    return fold


def _out_shape(shape, attrs):
    axes = attrs["axes"]
    if attrs["keepdims"]:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _lse(x, axis, keepdims):
    m = np.max(x, axis=axis, keepdims=True) if x.size else np.zeros(())
    m = np.where(np.isfinite(m), m, 0)
    y = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return y if keepdims else np.squeeze(y, axis=axis)


_NEW = {
    "ReduceL1": lambda x, axis, keepdims: np.sum(np.abs(x), axis=axis, keepdims=keepdims),
    "ReduceL2": lambda x, axis, keepdims: np.sqrt(np.sum(np.square(x), axis=axis,
                                                         keepdims=keepdims)),
    "ReduceLogSum": lambda x, axis, keepdims: np.log(np.sum(x, axis=axis, keepdims=keepdims)),
    "ReduceLogSumExp": _lse,
    "ReduceSumSquare": lambda x, axis, keepdims: np.sum(np.square(x), axis=axis,
                                                        keepdims=keepdims),
}

for _name, _fn in _NEW.items():
    register_op(_name, _infer(_name), _fold(_fn))


def _arg_infer(op):
    def infer(types, attrs):
        expect_inputs(op, types, 1)
        shape = types[0].shape
        ax = attrs["axis"]
        if not 0 <= ax < len(shape):
            raise ValueError(f"{op}: axis {ax} out of range for rank {len(shape)}")
        out = _out_shape(shape, {"axes": (ax,), "keepdims": attrs["keepdims"]})
        return [TensorType(out, "int64")]
    return infer


def _arg_fold(fn):
    def fold(arrays, attrs):
        x, ax = arrays[0], attrs["axis"]
        if attrs["select_last_index"]:
            flipped = np.flip(x, axis=ax)
            y = x.shape[ax] - 1 - fn(flipped, axis=ax)
        else:
            y = fn(x, axis=ax)
        y = np.asarray(y, np.int64)
        return [np.expand_dims(y, ax) if attrs["keepdims"] else y]
    return fold


register_op("ArgMax", _arg_infer("ArgMax"), _arg_fold(np.argmax))
register_op("ArgMin", _arg_infer("ArgMin"), _arg_fold(np.argmin))


for _name, _fn in {"ReduceMean": np.mean, "ReduceSum": np.sum, "ReduceMax": np.max,
                   "ReduceMin": np.min, "ReduceProd": np.prod}.items():
    register_op(_name, _infer(_name), _fold(_fn))

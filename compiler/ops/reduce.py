"""Reductions over a sorted tuple of axes: ReduceMean/Sum/Max/Min/Prod."""

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
        y = fn(x, axis=tuple(attrs["axes"]), keepdims=bool(attrs["keepdims"]))
        return [np.asarray(y).astype(x.dtype)]
    return fold


for _name, _fn in {"ReduceMean": np.mean, "ReduceSum": np.sum, "ReduceMax": np.max,
                   "ReduceMin": np.min, "ReduceProd": np.prod}.items():
    register_op(_name, _infer(_name), _fold(_fn))

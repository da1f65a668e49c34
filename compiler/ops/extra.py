"""Ops added for ONNX conformance that have no composition in other canonical ops: CumProd."""

from __future__ import annotations

import numpy as np

from ._util import check_axis, expect_inputs
from .registry import register_op


def _cumprod_infer(types, attrs):
    expect_inputs("CumProd", types, 1)
    check_axis("CumProd", attrs["axis"], len(types[0].shape))
    return [types[0]]


def _cumprod_fold(arrays, attrs):
    x = arrays[0]
    ax = attrs["axis"]
    y = np.flip(x, ax) if attrs["reverse"] else x
    if attrs["exclusive"]:
        # Shift by one along the axis with a leading 1 (the empty product).
        one = np.ones_like(np.take(y, [0], axis=ax))
        y = np.concatenate([one, np.take(y, range(y.shape[ax] - 1), axis=ax)], axis=ax)
    c = np.cumprod(y, axis=ax, dtype=x.dtype)
    return [np.ascontiguousarray(np.flip(c, ax) if attrs["reverse"] else c).astype(x.dtype)]


register_op("CumProd", _cumprod_infer, _cumprod_fold)

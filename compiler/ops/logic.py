"""Comparison, logic and bitwise ops (numpy broadcasting), Where, IsNaN/IsInf.

Comparisons and logic ops produce bool; bitwise ops keep their integer dtype.
"""

from __future__ import annotations

import numpy as np

from ..graph import TensorType
from ._util import broadcast_shapes, expect_inputs, same_dtype
from .registry import Pattern, register_op

ELEMWISE = Pattern.ELEMWISE

COMPARE = {"Equal": np.equal, "Less": np.less, "Greater": np.greater,
           "LessOrEqual": np.less_equal, "GreaterOrEqual": np.greater_equal}
LOGIC = {"And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor}
BITWISE = {"BitwiseAnd": np.bitwise_and, "BitwiseOr": np.bitwise_or,
           "BitwiseXor": np.bitwise_xor}


def _binary_infer(op: str, out_dtype: str | None, need: str | None = None):
    def infer(types, attrs):
        expect_inputs(op, types, 2)
        dtype = same_dtype(op, types)
        if need == "bool" and dtype != "bool":
            raise ValueError(f"{op}: inputs must be bool, got {dtype}")
        if need == "int" and np.dtype(dtype).kind not in "iu":
            raise ValueError(f"{op}: inputs must be integers, got {dtype}")
        shape = broadcast_shapes(op, types[0].shape, types[1].shape)
        return [TensorType(shape, out_dtype or dtype)]
    return infer


def _binary_fold(fn):
    def fold(arrays, attrs):
        a, b = arrays
        return [np.asarray(fn(a, b))]
    return fold


for _name, _fn in COMPARE.items():
    register_op(_name, _binary_infer(_name, "bool"), _binary_fold(_fn), pattern=ELEMWISE)
for _name, _fn in LOGIC.items():
    register_op(_name, _binary_infer(_name, "bool", "bool"), _binary_fold(_fn), pattern=ELEMWISE)
for _name, _fn in BITWISE.items():
    register_op(_name, _binary_infer(_name, None, "int"), _binary_fold(_fn), pattern=ELEMWISE)


def _shift_fold(arrays, attrs):
    a, b = arrays
    fn = np.left_shift if attrs["direction"] == "LEFT" else np.right_shift
    return [fn(a, b).astype(a.dtype)]


register_op("BitShift", _binary_infer("BitShift", None, "int"), _shift_fold, pattern=ELEMWISE)


def _unary_infer(op: str, out_dtype: str | None, need: str | None = None):
    def infer(types, attrs):
        expect_inputs(op, types, 1)
        dtype = types[0].dtype
        if need == "bool" and dtype != "bool":
            raise ValueError(f"{op}: input must be bool, got {dtype}")
        if need == "int" and np.dtype(dtype).kind not in "iu":
            raise ValueError(f"{op}: input must be an integer tensor, got {dtype}")
        if need == "float" and np.dtype(dtype).kind != "f":
            raise ValueError(f"{op}: input must be a float tensor, got {dtype}")
        return [TensorType(types[0].shape, out_dtype or dtype)]
    return infer


def _isinf(x, a):
    pos = np.isposinf(x) if a["detect_positive"] else np.zeros(x.shape, bool)
    neg = np.isneginf(x) if a["detect_negative"] else np.zeros(x.shape, bool)
    return pos | neg


register_op("Not", _unary_infer("Not", None, "bool"), lambda xs, a: [np.logical_not(xs[0])],
            pattern=ELEMWISE)
register_op("BitwiseNot", _unary_infer("BitwiseNot", None, "int"),
            lambda xs, a: [np.invert(xs[0])], pattern=ELEMWISE)
register_op("IsNaN", _unary_infer("IsNaN", "bool", "float"), lambda xs, a: [np.isnan(xs[0])],
            pattern=ELEMWISE)
register_op("IsInf", _unary_infer("IsInf", "bool", "float"), lambda xs, a: [_isinf(xs[0], a)],
            pattern=ELEMWISE)


def _where_infer(types, attrs):
    expect_inputs("Where", types, 3)
    c, x, y = types
    if c.dtype != "bool":
        raise ValueError(f"Where: condition must be bool, got {c.dtype}")
    dtype = same_dtype("Where", [x, y])
    return [TensorType(broadcast_shapes("Where", c.shape, x.shape, y.shape), dtype)]


register_op("Where", _where_infer, lambda xs, a: [np.where(*xs).astype(xs[1].dtype)],
            pattern=ELEMWISE)

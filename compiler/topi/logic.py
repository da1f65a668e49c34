"""Comparison, logic and bitwise ops, Where, IsNaN/IsInf as tensor expressions."""

from __future__ import annotations

import math

import numpy as np

from .. import te
from ..expr import Bin, Not, all_of, binop, cast, cmp, const, select
from .common import broadcast_load
from .registry import register_compute

_CMP = {"Equal": "eq", "Less": "lt", "Greater": "gt", "LessOrEqual": "le",
        "GreaterOrEqual": "ge"}


def _f32(x):
    # float16 compares exactly in float32 (every half value is a float).
    return cast("float32", x) if x.dtype == "float16" else x


def _xor(a, b):
    # Two's-complement wrap-around makes (a | b) - (a & b) exact for every integer width.
    return binop("sub", Bin("or", a, b), Bin("and", a, b))


def _bin(op):
    def f(a, b):
        if op in _CMP:
            return cmp(_CMP[op], _f32(a), _f32(b))
        if op in ("And", "BitwiseAnd"):
            return Bin("and", a, b)
        if op in ("Or", "BitwiseOr"):
            return Bin("or", a, b)
        if op == "Xor":
            return cmp("ne", a, b)
        if op == "BitwiseXor":
            return _xor(a, b)
        raise KeyError(op)
    return f


def _binary(op, fn):
    def compute(inputs, attrs, out_types):
        a, b = inputs
        shape = out_types[0].shape
        return [te.compute(shape, lambda *i: fn(broadcast_load(a, shape, i),
                                                broadcast_load(b, shape, i), attrs),
                           name=op.lower(), tag="elemwise")]
    return compute


def _no_attrs(fn):
    return lambda a, b, attrs: fn(a, b)


for _op in list(_CMP) + ["And", "Or", "Xor", "BitwiseAnd", "BitwiseOr", "BitwiseXor"]:
    register_compute(_op)(_binary(_op, _no_attrs(_bin(_op))))


def _shift(a, b, attrs):
    # Shift counts outside [0, width) saturate as in numpy (and the ONNX reference): a left
    # shift gives 0, a right shift the sign fill (arithmetic for signed, 0 for unsigned).
    width = np.dtype(a.dtype).itemsize * 8
    ok = all_of(cmp("ge", b, const(0, b.dtype)), cmp("lt", b, const(width, b.dtype)))
    zero = const(0, a.dtype)
    if attrs["direction"] == "LEFT":
        return select(ok, Bin("shl", a, b), zero)
    if np.dtype(a.dtype).kind == "u":
        return select(ok, Bin("shr", a, b), zero)
    return Bin("sar", a, select(ok, b, const(width - 1, b.dtype)))


register_compute("BitShift")(_binary("BitShift", _shift))


def _unary(op, fn):
    def compute(inputs, attrs, out_types):
        (x,) = inputs
        return [te.compute(out_types[0].shape, lambda *i: fn(x[i], attrs), name=op.lower(),
                           tag="elemwise")]
    return compute


def _isinf(x, a):
    x = _f32(x)
    conds = []
    if a["detect_positive"]:
        conds.append(cmp("eq", x, const(math.inf, x.dtype)))
    if a["detect_negative"]:
        conds.append(cmp("eq", x, const(-math.inf, x.dtype)))
    if not conds:
        return const(False, "bool")
    return conds[0] if len(conds) == 1 else Bin("or", conds[0], conds[1])


register_compute("Not")(_unary("Not", lambda x, a: Not(x)))
register_compute("BitwiseNot")(_unary(
    "BitwiseNot", lambda x, a: binop("sub", binop("sub", const(0, x.dtype), x),
                                     const(1, x.dtype))))
# NaN is the only value unequal to itself (codegen's "ne" is an unordered compare).
register_compute("IsNaN")(_unary("IsNaN", lambda x, a: cmp("ne", _f32(x), _f32(x))))
register_compute("IsInf")(_unary("IsInf", _isinf))


@register_compute("Where")
def where(inputs, attrs, out_types):
    c, x, y = inputs
    shape = out_types[0].shape
    return [te.compute(shape, lambda *i: select(broadcast_load(c, shape, i),
                                                broadcast_load(x, shape, i),
                                                broadcast_load(y, shape, i)),
                       name="where", tag="elemwise")]


"""Elementwise ops as tensor expressions (numpy broadcasting for binary ops)."""

from __future__ import annotations

import math

from .. import te
from ..expr import binop, call, cast, cmp, const, maximum, minimum, select
from .common import broadcast_load
from .registry import register_compute


def _f(x, v):
    return const(v, x.dtype)


UNARY = {
    "Relu": lambda x, a: maximum(x, _f(x, 0)),
    "Sigmoid": lambda x, a: _f(x, 1) / (_f(x, 1) + call("exp", -x)),
    "Tanh": lambda x, a: call("tanh", x),
    "Exp": lambda x, a: call("exp", x),
    "Log": lambda x, a: call("log", x),
    "Sqrt": lambda x, a: call("sqrt", x),
    "Neg": lambda x, a: -x,
    "Abs": lambda x, a: call("fabs", x) if x.dtype.startswith("float")
    else select(cmp("lt", x, _f(x, 0)), -x, x),
    "Reciprocal": lambda x, a: _f(x, 1) / x,
    "Erf": lambda x, a: call("erf", x),
    "Floor": lambda x, a: call("floor", x),
    "Ceil": lambda x, a: call("ceil", x),
    "Round": lambda x, a: call("round", x),
    # Stable form: max(x, 0) + log(1 + exp(-|x|)) never overflows.
    "Softplus": lambda x, a: maximum(x, _f(x, 0)) + call(
        "log", _f(x, 1) + call("exp", -call("fabs", x))),
    "Clip": lambda x, a: _clip(x, a),
    "LeakyRelu": lambda x, a: select(cmp("lt", x, _f(x, 0)), x * _f(x, a["alpha"]), x),
    "HardSigmoid": lambda x, a: maximum(_f(x, 0), minimum(
        _f(x, 1), x * _f(x, a["alpha"]) + _f(x, a["beta"]))),
    "HardSwish": lambda x, a: x * maximum(_f(x, 0), minimum(
        _f(x, 1), x * _f(x, 1 / 6) + _f(x, 0.5))),
    "Elu": lambda x, a: select(cmp("lt", x, _f(x, 0)),
                               _f(x, a["alpha"]) * (call("exp", x) - _f(x, 1)), x),
    "Cast": lambda x, a: cast(a["to"], x),
}


def _clip(x, a):
    lo, hi = a.get("min", -math.inf), a.get("max", math.inf)
    if not x.dtype.startswith("float"):
        import numpy as np
        info = np.iinfo(x.dtype)
        lo = max(lo, info.min) if lo != -math.inf else info.min
        hi = min(hi, info.max) if hi != math.inf else info.max
    y = x
    if lo != -math.inf:
        y = maximum(y, _f(x, lo))
    if hi != math.inf:
        y = minimum(y, _f(x, hi))
    return y


def _unary(op):
    fn = UNARY[op]

    def compute(inputs, attrs, out_types):
        (x,) = inputs
        return [te.compute(out_types[0].shape, lambda *i: fn(x[i], attrs), name=op.lower(),
                           tag="elemwise")]
    return compute


for _op in UNARY:
    register_compute(_op)(_unary(_op))

BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Max": "max", "Min": "min"}


def _binary(op):
    def compute(inputs, attrs, out_types):
        a, b = inputs
        shape = out_types[0].shape

        def f(*i):
            x, y = broadcast_load(a, shape, i), broadcast_load(b, shape, i)
            if op == "Pow":
                if y.dtype != x.dtype:
                    y = cast(x.dtype, y)
                return call("pow", x, y)
            if op == "Div" and not x.dtype.startswith("float"):
                return binop("div", x, y)
            return binop(BINARY[op], x, y)
        return [te.compute(shape, f, name=op.lower(), tag="elemwise")]
    return compute


for _op in list(BINARY) + ["Pow"]:
    register_compute(_op)(_binary(_op))

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
    # float32: one inline function (codegen/mathfns.py) cheaper than exp then divide
    "Sigmoid": lambda x, a: call("sigmoid", x) if x.dtype == "float32"
    else _f(x, 1) / (_f(x, 1) + call("exp", -x)),
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
    "Cast": lambda x, a: cast(a["to"], x, bool(a.get("saturate", 1)), a.get("round_mode", "up")),
    "Sin": lambda x, a: call("sin", x), "Cos": lambda x, a: call("cos", x),
    "Tan": lambda x, a: call("tan", x), "Asin": lambda x, a: call("asin", x),
    "Acos": lambda x, a: call("acos", x), "Atan": lambda x, a: call("atan", x),
    "Sinh": lambda x, a: call("sinh", x), "Cosh": lambda x, a: call("cosh", x),
    "Asinh": lambda x, a: call("asinh", x), "Acosh": lambda x, a: call("acosh", x),
    "Atanh": lambda x, a: call("atanh", x),
    "Sign": lambda x, a: select(cmp("gt", x, _f(x, 0)), _f(x, 1),
                                select(cmp("lt", x, _f(x, 0)), _f(x, -1), _f(x, 0))),
    "Softsign": lambda x, a: x / (_f(x, 1) + call("fabs", x)),
    "Selu": lambda x, a: select(cmp("gt", x, _f(x, 0)), x * _f(x, a["gamma"]),
                                _f(x, a["gamma"] * a["alpha"]) * (call("exp", x) - _f(x, 1))),
    "Celu": lambda x, a: maximum(x, _f(x, 0)) + minimum(
        _f(x, 0), _f(x, a["alpha"]) * (call("exp", x / _f(x, a["alpha"])) - _f(x, 1))),
    "ThresholdedRelu": lambda x, a: select(cmp("gt", x, _f(x, a["alpha"])), x, _f(x, 0)),
    "Shrink": lambda x, a: select(cmp("lt", x, _f(x, -a["lambd"])), x + _f(x, a["bias"]),
                                  select(cmp("gt", x, _f(x, a["lambd"])),
                                         x - _f(x, a["bias"]), _f(x, 0))),
    # Stable softplus as in "Softplus" above.
    "Mish": lambda x, a: x * call("tanh", maximum(x, _f(x, 0)) + call(
        "log", _f(x, 1) + call("exp", -call("fabs", x)))),
}

# Ops whose float16 form is computed in float32 and rounded once at the end (storage-only
# float16: LLVM has no half-precision libm and per-op rounding would drift from references).
_EXACT_IN_F16 = {"Cast", "Neg", "Abs", "Relu", "Sign", "Floor", "Ceil", "Round", "Clip"}


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

        def f(*i):
            v = x[i]
            if v.dtype == "float16" and op not in _EXACT_IN_F16:
                return cast("float16", fn(cast("float32", v), attrs))
            return fn(v, attrs)
        return [te.compute(out_types[0].shape, f, name=op.lower(), tag="elemwise")]
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
            if x.dtype == "float16":
                x = cast("float32", x)
                y = cast("float32", y) if y.dtype == "float16" else y
                return cast("float16", g(x, y))
            return g(x, y)

        def g(x, y):
            if op == "Mod":
                if not attrs["fmod"]:
                    return _float_mod(x, y) if x.dtype.startswith("float") else \
                        binop("mod", x, y)
                if x.dtype.startswith("float"):
                    return call("fmod", x, y)
                # Truncated remainder for integers: div truncates toward zero.
                return x - binop("div", x, y) * y
            if op == "Pow":
                if not x.dtype.startswith("float"):
                    # llvm.pow is float-only; double holds every exact integer power that
                    # fits in 53 bits, and the conversion back wraps like integer products.
                    return cast(x.dtype, call("pow", cast("float64", x), cast("float64", y)))
                if y.dtype != x.dtype:
                    y = cast(x.dtype, y)
                return call("pow", x, y)
            if op == "Div" and not x.dtype.startswith("float"):
                return binop("div", x, y)
            return binop(BINARY[op], x, y)
        return [te.compute(shape, f, name=op.lower(), tag="elemwise")]
    return compute


def _float_mod(x, y):
    """Python/numpy float modulus (sign of the divisor) with its edge cases: a zero result
    carries y's sign; a finite x over an infinite y is x when they agree in sign (or x is 0),
    else y; infinite x, zero y and NaNs give NaN (from x - floor(x / y) * y itself)."""
    r = binop("mod", x, y)
    zero = const(0.0, x.dtype)
    r = select(cmp("eq", r, zero), y * zero, r)
    inf = const(math.inf, x.dtype)
    y_inf = cmp("eq", call("fabs", y), inf)
    x_fin = cmp("lt", call("fabs", x), inf)
    agree = binop("or", cmp("eq", x, zero), cmp("eq", cmp("lt", x, zero), cmp("lt", y, zero)))
    return select(binop("and", y_inf, x_fin), select(agree, x, y), r)


for _op in list(BINARY) + ["Pow", "Mod"]:
    register_compute(_op)(_binary(_op))

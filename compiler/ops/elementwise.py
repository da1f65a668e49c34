"""Elementwise ops: unary math, activations with attributes, binary broadcasting ops, Cast."""

from __future__ import annotations

import math

import numpy as np

from ..floatfmt import cast_array, is_exotic
from ..graph import TensorType
from ._util import broadcast_shapes, expect_inputs, same_dtype
from .registry import Pattern, register_op

ELEMWISE = Pattern.ELEMWISE


def _same_type(op: str):
    def infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
        expect_inputs(op, types, 1)
        return [types[0]]
    return infer


def _unary(fn):
    # Every fold returns the input dtype: numpy ufuncs may promote (e.g. float16 -> float32
    # through math helpers) and a folded constant must keep the graph's declared type.
    def fold(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
        x = arrays[0]
        return [np.asarray(fn(x, attrs)).astype(x.dtype, copy=False)]
    return fold


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x, a):
    # Split by sign so exp never overflows for large |x|.
    xf = x.astype(np.float64)
    e = np.exp(-np.abs(xf))
    return np.where(xf >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


UNARY = {
    "Relu": lambda x, a: np.maximum(x, np.zeros((), x.dtype)),
    "Sigmoid": _sigmoid,
    "Tanh": lambda x, a: np.tanh(x),
    "Exp": lambda x, a: np.exp(x),
    "Log": lambda x, a: np.log(x),
    "Sqrt": lambda x, a: np.sqrt(x),
    "Neg": lambda x, a: np.negative(x),
    "Abs": lambda x, a: np.abs(x),
    "Reciprocal": lambda x, a: np.reciprocal(x),
    "Erf": lambda x, a: _erf(x) if x.size else x,
    "Floor": lambda x, a: np.floor(x),
    "Ceil": lambda x, a: np.ceil(x),
    "Round": lambda x, a: np.round(x),  # half to even, as ONNX
    "Softplus": lambda x, a: np.logaddexp(0.0, x.astype(np.float64)),
    "LeakyRelu": lambda x, a: np.where(x >= 0, x, x * np.asarray(a["alpha"], x.dtype)),
    "HardSigmoid": lambda x, a: np.clip(
        x.astype(np.float64) * a["alpha"] + a["beta"], 0.0, 1.0),
    "HardSwish": lambda x, a: x * np.clip(x.astype(np.float64) / 6.0 + 0.5, 0.0, 1.0),
    "Elu": lambda x, a: np.where(
        x >= 0, x, a["alpha"] * np.expm1(np.minimum(x.astype(np.float64), 0.0))),
}


def _clip(x: np.ndarray, a: dict) -> np.ndarray:
    # Apply only finite bounds so integer tensors never meet a float infinity.
    out = x
    if a["min"] != -math.inf:
        out = np.maximum(out, np.asarray(a["min"]).astype(x.dtype))
    if a["max"] != math.inf:
        out = np.minimum(out, np.asarray(a["max"]).astype(x.dtype))
    return out


UNARY["Clip"] = _clip


def _f64(fn):
    return lambda x, a: fn(x.astype(np.float64))


UNARY.update({
    "Sin": _f64(np.sin), "Cos": _f64(np.cos), "Tan": _f64(np.tan), "Asin": _f64(np.arcsin),
    "Acos": _f64(np.arccos), "Atan": _f64(np.arctan), "Sinh": _f64(np.sinh),
    "Cosh": _f64(np.cosh), "Asinh": _f64(np.arcsinh), "Acosh": _f64(np.arccosh),
    "Atanh": _f64(np.arctanh), "Sign": lambda x, a: np.sign(x),
    "Softsign": lambda x, a: x / (1 + np.abs(x)),
    "Selu": lambda x, a: a["gamma"] * np.where(
        x > 0, x, a["alpha"] * np.expm1(np.minimum(x.astype(np.float64), 0.0))),
    "Celu": lambda x, a: np.maximum(0, x) + np.minimum(
        0, a["alpha"] * np.expm1(x.astype(np.float64) / a["alpha"])),
    "ThresholdedRelu": lambda x, a: np.where(x > a["alpha"], x, 0),
    "Shrink": lambda x, a: np.where(x < -a["lambd"], x + a["bias"],
                                    np.where(x > a["lambd"], x - a["bias"], 0)),
    "Mish": lambda x, a: x * np.tanh(np.logaddexp(0.0, x.astype(np.float64))),
})

for _name, _fn in UNARY.items():
    register_op(_name, _same_type(_name), _unary(_fn), pattern=ELEMWISE)


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # ONNX integer Div truncates toward zero (C semantics), numpy's // floors.
    q = np.floor_divide(np.abs(a), np.abs(b))
    return np.where((a < 0) != (b < 0), -q, q)


def _div(a, b):
    if np.issubdtype(a.dtype, np.integer):
        return _int_div(a, b)
    return a / b


def _pow(a, b):
    if np.issubdtype(a.dtype, np.integer):
        return np.power(a, b.astype(a.dtype))
    return np.power(a.astype(np.float64), b.astype(np.float64))


BINARY = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Div": _div,
    "Pow": _pow,
    "Max": np.maximum,
    "Min": np.minimum,
}


def _binary_infer(op: str):
    def infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
        expect_inputs(op, types, 2)
        # Pow allows a different exponent dtype; the result takes the base's dtype.
        dtype = types[0].dtype if op == "Pow" else same_dtype(op, types)
        return [TensorType(broadcast_shapes(op, types[0].shape, types[1].shape), dtype)]
    return infer


def _binary_fold(fn):
    def fold(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
        a, b = arrays
        return [np.asarray(fn(a, b)).astype(a.dtype, copy=False)]
    return fold


for _name, _fn in BINARY.items():
    register_op(_name, _binary_infer(_name), _binary_fold(_fn), pattern=ELEMWISE)


def _cast_infer(types: list[TensorType], attrs: dict) -> list[TensorType]:
    expect_inputs("Cast", types, 1)
    try:
        dtype = np.dtype(attrs["to"]).name
    except TypeError:
        raise ValueError(f"Cast: unknown target dtype {attrs['to']!r}") from None
    return [TensorType(types[0].shape, dtype)]


def _cast_fold(arrays: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    x, to = arrays[0], np.dtype(attrs["to"]).name
    if is_exotic(to) or is_exotic(x.dtype.name):  # ONNX rounding/saturation, not ml_dtypes'
        return [cast_array(x, to, bool(attrs.get("saturate", 1)),
                           attrs.get("round_mode", "up"))]
    return [x.astype(np.dtype(to))]


register_op("Cast", _cast_infer, _cast_fold, pattern=ELEMWISE)


def _mod_fold(arrays, attrs):
    a, b = arrays
    if attrs["fmod"]:
        return [np.fmod(a, b).astype(a.dtype)]
    return [np.mod(a, b).astype(a.dtype)]


register_op("Mod", _binary_infer("Mod"), _mod_fold, pattern=ELEMWISE)

"""ONNX converters for the general (non-NN) ops: comparisons and logic, Where, CastLike,
trigonometric and other unary math, Mod, bitwise ops, Expand/Tile, gathers and scatters,
ArgMax/ArgMin, TopK, CumSum, Trilu, OneHot, Hardmax, the remaining Reduce* ops, and Range /
NonZero folded from constant inputs. Same conventions as onnx_converters.py."""

from __future__ import annotations

import numpy as np
from onnx import helper

from .onnx_builder import Builder, converter
from .onnx_converters import _axis, _flag, _ints, _legacy_broadcast, _reduce, _reshape, cast_attrs


def _dtype_of_onnx(b: Builder, to: int) -> str:
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(to)).name
    except (KeyError, TypeError, ValueError):
        raise b.error(f"ONNX element type {to} is not supported") from None


@converter("CastLike", 15)
def CastLike(b, ins, n_out, *, saturate=1, round_mode="up"):
    dtype = b.type(ins[1]).dtype
    if dtype == b.type(ins[0]).dtype:
        return [ins[0]]
    return b.emit("Cast", [ins[0]], cast_attrs(b, dtype, saturate, round_mode))


# ---- binary ops with numpy broadcasting ---------------------------------------------

def _binary(op, since, modern_since=7):
    def legacy(b, ins, n_out, *, broadcast=0, axis=None, **_legacy):
        return b.emit(op, [ins[0], _legacy_broadcast(b, ins[0], ins[1], broadcast, axis)])

    def modern(b, ins, n_out):
        return b.emit(op, [ins[0], ins[1]])
    legacy.__name__ = modern.__name__ = op
    if since < modern_since:
        converter(op, since)(legacy)
    converter(op, max(since, modern_since))(modern)


for _op in ("Equal", "Less", "Greater", "And", "Or", "Xor"):
    _binary(_op, 1)
for _op in ("LessOrEqual", "GreaterOrEqual"):
    _binary(_op, 12)
for _op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor"):
    _binary(_op, 18)


@converter("BitShift", 11)
def BitShift(b, ins, n_out, *, direction):
    if direction not in ("LEFT", "RIGHT"):
        raise b.error(f"direction {direction!r} is not LEFT/RIGHT")
    return b.emit("BitShift", [ins[0], ins[1]], {"direction": direction})


@converter("Mod", 10)
def Mod(b, ins, n_out, *, fmod=0):
    return b.emit("Mod", [ins[0], ins[1]], {"fmod": int(fmod)})


@converter("Where", 9)
def Where(b, ins, n_out):
    return b.emit("Where", list(ins[:3]))


# ---- unary ops ----------------------------------------------------------------------

def _unary(op, since, **defaults):
    def convert(b, ins, n_out, **attrs):
        a = {k: type(v)(attrs.get(k, v)) for k, v in defaults.items()}
        return b.emit(op, [ins[0]], a)
    convert.__name__ = op
    converter(op, since)(convert)


for _op in ("Sin", "Cos", "Tan", "Asin", "Acos", "Atan"):
    _unary(_op, 7)
for _op in ("Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Sign", "IsNaN"):
    _unary(_op, 9)
_unary("Not", 1)
_unary("BitwiseNot", 18)
_unary("Softsign", 1)
_unary("Mish", 18)
_unary("IsInf", 10, detect_negative=1, detect_positive=1)
_unary("Selu", 1, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875)
_unary("Celu", 12, alpha=1.0)
_unary("ThresholdedRelu", 10, alpha=1.0)
_unary("Shrink", 9, bias=0.0, lambd=0.5)


# ---- shape-driven data movement ----------------------------------------------------

@converter("Expand", 8)
def Expand(b, ins, n_out):
    shape = _ints(b.static(ins[1], "shape"))
    out = b.emit("Expand", [ins[0]], {"shape": shape})[0]
    return [out]


@converter("Tile", 6)
def Tile(b, ins, n_out):
    reps = _ints(b.static(ins[1], "repeats"))
    if all(r == 1 for r in reps):
        return [ins[0]]
    return b.emit("Tile", [ins[0]], {"repeats": reps})


@converter("GatherElements", 11)
def GatherElements(b, ins, n_out, *, axis=0):
    axis = _axis(b, axis, len(b.shape(ins[0])))
    return b.emit("GatherElements", [ins[0], ins[1]], {"axis": axis})


@converter("GatherND", 11)
def GatherND(b, ins, n_out, *, batch_dims=0):
    return b.emit("GatherND", [ins[0], ins[1]], {"batch_dims": int(batch_dims)})


@converter("ScatterND", 11)
def ScatterND(b, ins, n_out, *, reduction="none"):
    return b.emit("ScatterND", list(ins[:3]), {"reduction": reduction})


@converter("ScatterElements", 11)
def ScatterElements(b, ins, n_out, *, axis=0, reduction="none"):
    axis = _axis(b, axis, len(b.shape(ins[0])))
    return b.emit("ScatterElements", list(ins[:3]), {"axis": axis, "reduction": reduction})


@converter("Scatter", 9)
def Scatter(b, ins, n_out, *, axis=0):
    return ScatterElements(b, ins, n_out, axis=axis)


# ---- reductions and selections ------------------------------------------------------

for _op in ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"):
    _reduce(_op, 18)


def _arg(op):
    def convert(b, ins, n_out, *, axis=0, keepdims=1, select_last_index=0):
        axis = _axis(b, axis, len(b.shape(ins[0])))
        return b.emit(op, [ins[0]], {"axis": axis, "keepdims": _flag(b, "keepdims", keepdims),
                                     "select_last_index": _flag(b, "select_last_index",
                                                                select_last_index)})
    convert.__name__ = op
    converter(op, 1)(convert)


_arg("ArgMax")
_arg("ArgMin")


@converter("TopK", 1)
def TopK(b, ins, n_out, *, axis=-1, k=None, largest=1, sorted=1):
    if len(ins) > 1 and ins[1]:
        k = int(_ints(b.static(ins[1], "K"))[0])
    if k is None:
        raise b.error("TopK needs k")
    axis = _axis(b, axis, len(b.shape(ins[0])))
    # sorted=0 allows any order; the sorted order is one of them.
    return b.emit("TopK", [ins[0]], {"axis": axis, "k": k, "largest": int(largest)}, n_out=2)


@converter("CumSum", 11)
def CumSum(b, ins, n_out, *, exclusive=0, reverse=0):
    axis = int(_ints(b.static(ins[1], "axis"))[0])
    axis = _axis(b, axis, len(b.shape(ins[0])))
    return b.emit("CumSum", [ins[0]], {"axis": axis, "exclusive": int(exclusive),
                                       "reverse": int(reverse)})


@converter("Trilu", 14)
def Trilu(b, ins, n_out, *, upper=1):
    k = int(_ints(b.static(ins[1], "k"))[0]) if len(ins) > 1 and ins[1] else 0
    return b.emit("Trilu", [ins[0]], {"k": k, "upper": int(upper)})


@converter("OneHot", 9)
def OneHot(b, ins, n_out, *, axis=-1):
    depth = int(np.asarray(b.static(ins[1], "depth")).reshape(-1)[0])
    axis = _axis(b, axis, len(b.shape(ins[0])) + 1)
    return b.emit("OneHot", [ins[0], ins[2]], {"depth": depth, "axis": axis})


def _hardmax_legacy(b, ins, n_out, *, axis=1):
    # Before opset 13 the input is coerced to 2-D at `axis`, as for Softmax.
    s = b.shape(ins[0])
    axis = _axis(b, axis, len(s))
    rows = int(np.prod(s[:axis], dtype=np.int64))
    x2 = _reshape(b, ins[0], (rows, int(np.prod(s[axis:], dtype=np.int64))))
    return [_reshape(b, b.emit("Hardmax", [x2], {"axis": 1})[0], s)]


converter("Hardmax", 1)(_hardmax_legacy)


@converter("Hardmax", 13)
def Hardmax(b, ins, n_out, *, axis=-1):
    return b.emit("Hardmax", [ins[0]], {"axis": _axis(b, axis, len(b.shape(ins[0])))})


# ---- value-dependent shapes: only when the inputs are constants ----------------------

@converter("Range", 11)
def Range(b, ins, n_out):
    start, limit, delta = (np.asarray(b.static(v, w)).reshape(())
                           for v, w in zip(ins, ("start", "limit", "delta")))
    n = max(int(np.ceil((limit - start) / delta)), 0)
    out = (start + np.arange(n, dtype=np.float64 if start.dtype.kind == "f" else np.int64)
           * delta).astype(start.dtype)
    return [b.add_const(out, "range")]


@converter("NonZero", 9)
def NonZero(b, ins, n_out):
    x = b.static(ins[0], "X")
    return [b.add_const(np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1),
                        "nonzero")]

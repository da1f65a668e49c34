"""ONNX converters for the general (non-NN) ops: comparisons and logic, Where, CastLike,
trigonometric and other unary math, Mod, bitwise ops, Expand/Tile, gathers and scatters,
ArgMax/ArgMin, TopK, CumSum, CumProd, Trilu, OneHot, Hardmax, the remaining Reduce* ops, and
Range, NonZero, Unique and NonMaxSuppression folded from constant inputs. Same conventions as
onnx_converters.py."""

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


def _cumulative(op, since):
    def convert(b, ins, n_out, *, exclusive=0, reverse=0):
        axis = int(_ints(b.static(ins[1], "axis"))[0])
        axis = _axis(b, axis, len(b.shape(ins[0])))
        return b.emit(op, [ins[0]], {"axis": axis, "exclusive": int(exclusive),
                                     "reverse": int(reverse)})
    convert.__name__ = op
    converter(op, since)(convert)


_cumulative("CumSum", 11)
_cumulative("CumProd", 26)


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
# Static shapes need these inputs at compile time (the backend adapter binds them); the
# result is then a constant.

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


@converter("Unique", 11)
def Unique(b, ins, n_out, *, axis=None, sorted=1):
    x = np.asarray(b.static(ins[0], "X"))
    if axis is None:
        flat = x.reshape(-1)
        vals, first, inverse, counts = np.unique(flat, return_index=True, return_inverse=True,
                                                 return_counts=True)
    else:
        ax = _axis(b, axis, x.ndim)
        vals, first, inverse, counts = np.unique(x, return_index=True, return_inverse=True,
                                                 return_counts=True, axis=ax)
    inverse = np.asarray(inverse).reshape(-1)
    if not sorted:
        # Order of first occurrence instead of value order.
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        vals = np.take(vals, order, axis=0 if axis is None else ax)
        first, counts, inverse = first[order], counts[order], rank[inverse]
    outs = [vals.astype(x.dtype), first, inverse, counts]
    return [b.add_const(np.ascontiguousarray(o) if k == 0 else np.asarray(o, np.int64),
                        "unique") for k, o in enumerate(outs[:n_out])]


def _corners(boxes: np.ndarray, center: bool) -> np.ndarray:
    if center:
        xc, yc, w, h = boxes.T
        return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=1)
    y1, x1, y2, x2 = boxes.T
    return np.stack([np.minimum(y1, y2), np.minimum(x1, x2), np.maximum(y1, y2),
                     np.maximum(x1, x2)], axis=1)


@converter("NonMaxSuppression", 10)
def NonMaxSuppression(b, ins, n_out, *, center_point_box=0):
    ins = list(ins) + [""] * (5 - len(ins))

    def scalar(i, what, default):
        return np.asarray(b.static(ins[i], what)).reshape(-1)[0] if ins[i] else default
    boxes = np.asarray(b.static(ins[0], "boxes"), np.float64)
    scores = np.asarray(b.static(ins[1], "scores"), np.float64)
    limit = int(scalar(2, "max_output_boxes_per_class", 0))
    iou_max = float(scalar(3, "iou_threshold", 0.0))
    floor = float(scalar(4, "score_threshold", -np.inf))
    picked = []
    for n in range(scores.shape[0]):
        c = _corners(boxes[n], bool(center_point_box))
        area = (c[:, 2] - c[:, 0]) * (c[:, 3] - c[:, 1])
        for k in range(scores.shape[1]):
            s = scores[n, k]
            order = [i for i in np.argsort(-s, kind="stable") if s[i] > floor]
            keep: list[int] = []
            for i in order:
                if len(keep) >= limit:
                    break
                ok = True
                for j in keep:
                    hh = min(c[i, 2], c[j, 2]) - max(c[i, 0], c[j, 0])
                    ww = min(c[i, 3], c[j, 3]) - max(c[i, 1], c[j, 1])
                    inter = max(hh, 0.0) * max(ww, 0.0)
                    union = area[i] + area[j] - inter
                    if union > 0 and inter / union > iou_max:
                        ok = False
                        break
                if ok:
                    keep.append(int(i))
            picked.extend([n, k, i] for i in keep)
    if not picked:
        raise b.error("no box is selected; tilecc does not compile empty tensors")
    return [b.add_const(np.array(picked, np.int64).reshape(-1, 3), "selected")]

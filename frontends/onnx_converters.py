"""ONNX op converters: one function per ONNX op, named like it, attributes as keywords.

Each converter gets the Builder, the graph values of the node's inputs ("" when an optional
input is absent), the number of requested outputs, and the node's ONNX attributes; it emits
canonical nodes (docs/ops.md) and returns one graph value per ONNX output. `**_legacy`
swallows attributes that carry no meaning for inference (consumed_inputs, is_test, ...).
"""

from __future__ import annotations

import math

import numpy as np
from onnx import helper

from tilecc.floatfmt import FORMATS, ROUND_MODES

from .onnx_builder import Builder, converter

# ---- helpers --------------------------------------------------------------------------


def _axis(b: Builder, axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < rank:
        raise b.error(f"{what} {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _flag(b: Builder, name: str, value) -> int:
    """A 0/1 attribute: onnxruntime refuses other values, so tilecc does not guess."""
    if value not in (0, 1):
        raise b.error(f"attribute {name} is {value}; it must be 0 or 1")
    return int(value)


def _ints(arr) -> tuple[int, ...]:
    return tuple(int(v) for v in np.asarray(arr).reshape(-1))


def _reshape(b: Builder, x: str, shape) -> str:
    shape = tuple(int(d) for d in shape)
    if b.shape(x) == shape:
        return x
    return b.emit("Reshape", [x], {"shape": shape})[0]


def _full(b: Builder, shape, value, dtype: str, base: str = "const") -> str:
    return b.add_const(np.full(shape, value, dtype=dtype), base)


def _window_pads(b: Builder, in_hw, kernel, strides, dilations, pads, auto_pad):
    """Explicit (begins..., ends...) pads; auto_pad SAME_* keeps ceil(in / stride) outputs."""
    n = len(in_hw)
    if auto_pad in ("NOTSET", ""):
        return tuple(pads) if pads else (0,) * (2 * n)
    if auto_pad == "VALID":
        return (0,) * (2 * n)
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise b.error(f"auto_pad {auto_pad!r} is not NOTSET/SAME_UPPER/SAME_LOWER/VALID")
    begins, ends = [], []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations):
        out = -(-size // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small = total // 2
        begins.append(small if auto_pad == "SAME_UPPER" else total - small)
        ends.append(total - begins[-1])
    return tuple(begins + ends)


def _windowed(b: Builder, x: str, kernel, strides, dilations, pads, auto_pad, emit2d):
    """Normalise a 1-D/2-D windowed op (Conv, pools) and emit it in its 2-D canonical form.

    1-D inputs (N, C, L) become (N, C, 1, L) with a unit kernel row and are reshaped back.
    `emit2d(x4, attrs)` emits the 2-D op given strides/pads/dilations for 2 spatial dims.
    """
    shape = b.shape(x)
    nsp = len(shape) - 2
    if nsp not in (1, 2):
        raise b.error(f"only 1-D and 2-D spatial inputs are supported, got shape {list(shape)}; "
                      "3-D convolutions and pools are not implemented")
    strides = tuple(strides or (1,) * nsp)
    dilations = tuple(dilations or (1,) * nsp)
    pads = _window_pads(b, shape[2:], kernel, strides, dilations, pads, auto_pad)
    if nsp == 2:
        return emit2d(x, {"strides": strides, "dilations": dilations, "pads": pads})
    x4 = _reshape(b, x, shape[:2] + (1,) + shape[2:])
    attrs = {"strides": (1,) + strides, "dilations": (1,) + dilations,
             "pads": (0, pads[0], 0, pads[1])}
    y4 = emit2d(x4, attrs)
    ys = b.shape(y4)
    return _reshape(b, y4, ys[:2] + ys[3:])


# ---- constants and plumbing -----------------------------------------------------------

@converter("Constant", 1)
def Constant(b, ins, n_out, *, value=None, value_float=None, value_floats=None, value_int=None,
             value_ints=None, sparse_value=None, value_string=None, value_strings=None):
    if value is not None:
        arr = np.asarray(value)
    elif value_float is not None:
        arr = np.array(value_float, np.float32)
    elif value_floats is not None:
        arr = np.array(value_floats, np.float32)
    elif value_int is not None:
        arr = np.array(value_int, np.int64)
    elif value_ints is not None:
        arr = np.array(value_ints, np.int64)
    else:
        raise b.error("only numeric dense Constant values are supported (sparse/string "
                      "constants are not); replace it with a numeric initializer")
    return [b.add_const(arr, b.node_name or "const")]


@converter("ConstantOfShape", 9)
def ConstantOfShape(b, ins, n_out, *, value=None):
    shape = _ints(b.static(ins[0], "shape"))
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    return [b.add_const(np.full(shape, fill[0], dtype=fill.dtype))]


@converter("Shape", 1)
def Shape(b, ins, n_out, *, start=0, end=None):
    # Static shapes make Shape a constant even when its input is computed at run time.
    shape = b.shape(ins[0])
    r = len(shape)
    lo = min(max(start + r if start < 0 else start, 0), r)
    hi = r if end is None else min(max(end + r if end < 0 else end, 0), r)
    return [b.add_const(np.array(shape[lo:hi], np.int64))]


@converter("Size", 1)
def Size(b, ins, n_out):
    return [b.add_const(np.array(b.type(ins[0]).size, np.int64))]


@converter("Identity", 1)
def Identity(b, ins, n_out):
    return [ins[0]]


@converter("Dropout", 1)
def Dropout(b, ins, n_out, *, training_mode=None, **_legacy):
    # Inference: the data passes through; the mask, when asked for, keeps everything.
    if len(ins) > 2 and ins[2] and b.const(ins[2]) is not None and bool(b.const(ins[2])):
        raise b.error("training_mode=True is not supported; export the model in eval mode")
    outs = [ins[0]]
    if n_out > 1:
        outs.append(b.add_const(np.ones(b.shape(ins[0]), bool), "dropout_mask"))
    return outs


def cast_attrs(b: Builder, dtype: str, saturate=1, round_mode="up") -> dict:
    """Canonical Cast attributes; `saturate` (float8 targets) and `round_mode`
    (float8_e8m0fnu) are only recorded where they change the result."""
    attrs = {"to": dtype}
    f = FORMATS.get(dtype)
    if f is not None and f.bits == 8 and not saturate:
        attrs["saturate"] = 0
    if f is not None and f.kind == "e8m0" and round_mode != "up":
        if round_mode not in ROUND_MODES:
            raise b.error(f"round_mode {round_mode!r} is not one of {', '.join(ROUND_MODES)}")
        attrs["round_mode"] = round_mode
    return attrs


@converter("Cast", 1)
def Cast(b, ins, n_out, *, to, saturate=1, round_mode="up"):
    if isinstance(to, str):  # opset 1 spelled the type as a string
        dtype = np.dtype(to.lower()).name
    else:
        try:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(to)).name
        except (KeyError, TypeError, ValueError):
            raise b.error(f"Cast to ONNX type {to} is not supported; cast to a numeric "
                          "type") from None
    if dtype == b.type(ins[0]).dtype:
        return [ins[0]]
    return b.emit("Cast", [ins[0]], cast_attrs(b, dtype, saturate, round_mode))


# ---- shape ops ------------------------------------------------------------------------

@converter("Reshape", 1, 5)
def Reshape(b, ins, n_out, *, shape=None, allowzero=0, **_legacy):
    target = list(shape) if len(ins) < 2 else list(_ints(b.static(ins[1], "shape")))
    src = b.shape(ins[0])
    out = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= len(src):
                raise b.error(f"shape {target}: 0 at position {i} copies a dim the input "
                              f"{list(src)} does not have")
            d = src[i]
        out.append(d)
    if out.count(-1) > 1:
        raise b.error(f"shape {target} has more than one -1")
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1], dtype=np.int64))
        total = int(np.prod(src, dtype=np.int64))
        if known == 0 or total % known:
            raise b.error(f"cannot infer -1 in shape {target} for input {list(src)}")
        out[out.index(-1)] = total // known
    return [_reshape(b, ins[0], out)]


@converter("Flatten", 1)
def Flatten(b, ins, n_out, *, axis=1):
    s = b.shape(ins[0])
    axis = axis + len(s) if axis < 0 else axis
    if not 0 <= axis <= len(s):
        raise b.error(f"axis {axis} out of range for rank {len(s)}")
    lead = int(np.prod(s[:axis], dtype=np.int64))
    return [_reshape(b, ins[0], (lead, int(np.prod(s[axis:], dtype=np.int64))))]


@converter("Squeeze", 1, 13)
def Squeeze(b, ins, n_out, *, axes=None):
    s = b.shape(ins[0])
    if len(ins) > 1 and ins[1]:
        axes = _ints(b.static(ins[1], "axes"))
    if axes is None:
        axes = [i for i, d in enumerate(s) if d == 1]
    axes = {_axis(b, a, len(s)) for a in axes}
    for a in axes:
        if s[a] != 1:
            raise b.error(f"cannot squeeze axis {a} of size {s[a]} in shape {list(s)}")
    return [_reshape(b, ins[0], [d for i, d in enumerate(s) if i not in axes])]


@converter("Unsqueeze", 1, 13)
def Unsqueeze(b, ins, n_out, *, axes=None):
    s = list(b.shape(ins[0]))
    if len(ins) > 1 and ins[1]:
        axes = _ints(b.static(ins[1], "axes"))
    if axes is None:
        raise b.error("Unsqueeze needs axes")
    rank = len(s) + len(axes)
    norm = sorted(_axis(b, a, rank) for a in axes)
    if len(set(norm)) != len(norm):
        raise b.error(f"axes {list(axes)} repeat an axis")
    for a in norm:
        s.insert(a, 1)
    return [_reshape(b, ins[0], s)]


@converter("Transpose", 1)
def Transpose(b, ins, n_out, *, perm=None):
    rank = len(b.shape(ins[0]))
    perm = tuple(reversed(range(rank))) if perm is None else tuple(perm)
    if perm == tuple(range(rank)):
        return [ins[0]]
    return b.emit("Transpose", [ins[0]], {"perm": perm})


@converter("Concat", 1)
def Concat(b, ins, n_out, *, axis=1):
    xs = [x for x in ins if x]
    axis = _axis(b, axis, len(b.shape(xs[0])))
    # Zero-sized pieces (e.g. empty shape fragments) add nothing and are dropped.
    kept = [x for x in xs if b.shape(x)[axis] != 0] or xs[:1]
    if len(kept) == 1:
        return [kept[0]]
    return b.emit("Concat", kept, {"axis": axis})


def _slice(b: Builder, x: str, starts, ends, axes, steps) -> str:
    shape = b.shape(x)
    rank = len(shape)
    axes = list(range(len(starts))) if axes is None else list(axes)
    steps = [1] * len(starts) if steps is None else list(steps)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise b.error("starts, ends, axes and steps must have the same length")
    lo, hi, st = [0] * rank, list(shape), [1] * rank
    seen = set()
    for start, end, axis, step in zip(starts, ends, axes, steps):
        a = _axis(b, int(axis), rank)
        if a in seen:
            raise b.error(f"axis {a} sliced twice")
        seen.add(a)
        dim, start, end, step = shape[a], int(start), int(end), int(step)
        if step == 0:
            raise b.error(f"step 0 on axis {a}")
        start += dim if start < 0 else 0
        end += dim if end < 0 else 0
        # Clamp as ONNX does; a negative step may run down to -1, meaning "through index 0".
        if step > 0:
            start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        else:
            start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
            if dim == 0:
                start, end = 0, 0
        lo[a], hi[a], st[a] = start, end, step
    if lo == [0] * rank and hi == list(shape) and st == [1] * rank:
        return x
    return b.emit("Slice", [x], {"starts": tuple(lo), "ends": tuple(hi), "steps": tuple(st)})[0]


@converter("Slice", 1, 10)
def Slice(b, ins, n_out, *, starts=None, ends=None, axes=None):
    if len(ins) == 1:
        return [_slice(b, ins[0], starts, ends, axes, None)]

    def opt(i, what):
        return _ints(b.static(ins[i], what)) if len(ins) > i and ins[i] else None
    return [_slice(b, ins[0], opt(1, "starts"), opt(2, "ends"), opt(3, "axes"), opt(4, "steps"))]


@converter("Split", 1)
def Split(b, ins, n_out, *, axis=0, split=None, num_outputs=None):
    s = b.shape(ins[0])
    axis = _axis(b, axis, len(s))
    if len(ins) > 1 and ins[1]:
        split = _ints(b.static(ins[1], "split"))
    dim = s[axis]
    if split is None:
        if num_outputs is not None:  # opset 18: equal chunks, the last one may be smaller
            chunk = -(-dim // num_outputs)
            split = [min(chunk, max(0, dim - i * chunk)) for i in range(num_outputs)]
        else:
            if dim % n_out:
                raise b.error(f"cannot split dim {dim} into {n_out} equal parts; give split")
            split = [dim // n_out] * n_out
    if sum(split) != dim or len(split) != n_out:
        raise b.error(f"split {list(split)} does not cover dim {dim} with {n_out} outputs")
    outs, begin = [], 0
    for size in split:
        starts, ends = [0] * len(s), list(s)
        starts[axis], ends[axis] = begin, begin + size
        outs.append(_slice(b, ins[0], starts, ends, None, None))
        begin += size
    return outs


@converter("Gather", 1)
def Gather(b, ins, n_out, *, axis=0):
    x, idx = ins
    axis = _axis(b, axis, len(b.shape(x)))
    if b.type(idx).dtype not in ("int32", "int64"):
        raise b.error(f"indices must be int32/int64, got {b.type(idx).dtype}")
    const = b.const(idx)
    dim = b.shape(x)[axis]
    if const is not None and const.size and (const.min() < -dim or const.max() >= dim):
        # The kernel clamps (it cannot fail mid-run); onnxruntime refuses such an index, so a
        # constant one is refused here rather than silently read from the edge.
        bad = int(const.min() if const.min() < -dim else const.max())
        raise b.error(f"constant index {bad} is out of range for axis {axis} of size {dim} "
                      f"(valid: {-dim}..{dim - 1}); fix the indices")
    return b.emit("Gather", [x, idx], {"axis": axis})


@converter("Pad", 1, 2, 11)
def Pad(b, ins, n_out, *, mode="constant", pads=None, paddings=None, value=0.0):
    x = ins[0]
    rank = len(b.shape(x))
    if len(ins) > 1:  # opset 11+: pads, constant_value, axes are inputs
        pads = list(_ints(b.static(ins[1], "pads")))
        if len(ins) > 2 and ins[2]:
            value = float(np.asarray(b.static(ins[2], "constant_value")).reshape(-1)[0])
        if len(ins) > 3 and ins[3]:
            axes = [_axis(b, a, rank) for a in _ints(b.static(ins[3], "axes"))]
            full = [0] * (2 * rank)
            for k, a in enumerate(axes):
                full[a], full[rank + a] = pads[k], pads[len(axes) + k]
            pads = full
    else:
        pads = list(pads if pads is not None else paddings)
    if len(pads) != 2 * rank:
        raise b.error(f"pads {pads} needs {2 * rank} entries for rank {rank}")
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise b.error(f"pad mode {mode!r} is not supported; use constant, reflect, edge or wrap")
    if not any(pads):
        return [x]
    if mode == "wrap":
        # Circular padding: one constant-index Gather per padded axis. Negative pads crop
        # first and the wrap then repeats the cropped extent (as the ONNX reference).
        shape = b.shape(x)
        for a in range(rank):
            pb, pe = pads[a], pads[rank + a]
            if pb or pe:
                lo, n = max(0, -pb), shape[a] - max(0, -pb) - max(0, -pe)
                if n < 1:
                    raise b.error(f"pads {pads} crop axis {a} of size {shape[a]} away")
                out = n + max(pb, 0) + max(pe, 0)
                idx = lo + (np.arange(out, dtype=np.int64) - max(pb, 0)) % n
                x = b.emit("Gather", [x, b.add_const(idx, "wrap_idx")], {"axis": a})[0]
        return [x]
    return b.emit("Pad", [x], {"pads": tuple(pads), "mode": mode, "value": float(value)})


# ---- nn -------------------------------------------------------------------------------

@converter("Conv", 1)
def Conv(b, ins, n_out, *, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None,
         pads=None, strides=None):
    x, w = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 and ins[2] else None
    kernel = tuple(kernel_shape or b.shape(w)[2:])
    if len(b.shape(w)) == 3:
        w = _reshape(b, w, b.shape(w)[:2] + (1,) + b.shape(w)[2:])

    def emit2d(x4, attrs):
        return b.emit("Conv", [x4, w] + ([bias] if bias else []), {**attrs, "group": group})[0]
    return [_windowed(b, x, kernel, strides, dilations, pads, auto_pad, emit2d)]


@converter("GlobalAveragePool", 1)
def GlobalAveragePool(b, ins, n_out):
    return b.emit("GlobalAveragePool", [ins[0]])


@converter("GlobalMaxPool", 1)
def GlobalMaxPool(b, ins, n_out):
    return b.emit("GlobalMaxPool", [ins[0]])


@converter("BatchNormalization", 1)
def BatchNormalization(b, ins, n_out, *, epsilon=1e-5, momentum=0.9, training_mode=0,
                       spatial=1, **_legacy):
    if training_mode:
        raise b.error("training_mode=1 is not supported; export the model in eval mode")
    if not spatial:
        raise b.error("spatial=0 (per-activation statistics) is not supported")
    y = b.emit("BatchNormalization", list(ins[:5]), {"epsilon": float(epsilon)})[0]
    # Extra outputs only exist in training graphs; in inference they are the running stats.
    return [y, ins[3], ins[4], ins[3], ins[4]][:n_out]


@converter("Gemm", 1)
def Gemm(b, ins, n_out, *, alpha=1.0, beta=1.0, transA=0, transB=0, broadcast=0):
    inputs = [i for i in ins[:3] if i]
    return b.emit("Gemm", inputs, {"alpha": float(alpha), "beta": float(beta),
                                   "transA": int(transA), "transB": int(transB)})


@converter("MatMul", 1)
def MatMul(b, ins, n_out):
    return b.emit("MatMul", list(ins[:2]))


@converter("LRN", 1)
def LRN(b, ins, n_out, *, size, alpha=1e-4, beta=0.75, bias=1.0):
    return b.emit("LRN", [ins[0]], {"size": int(size), "alpha": float(alpha),
                                     "beta": float(beta), "bias": float(bias)})


def _softmax(op):
    def legacy(b, ins, n_out, *, axis=1):
        # Before opset 13 the input is coerced to 2-D at `axis` and normalised per row.
        s = b.shape(ins[0])
        axis = _axis(b, axis, len(s)) if s else 0
        if axis == len(s) - 1:
            return b.emit(op, [ins[0]], {"axis": axis})
        rows = int(np.prod(s[:axis], dtype=np.int64))
        x2 = _reshape(b, ins[0], (rows, int(np.prod(s[axis:], dtype=np.int64))))
        return [_reshape(b, b.emit(op, [x2], {"axis": 1})[0], s)]

    def modern(b, ins, n_out, *, axis=-1):
        return b.emit(op, [ins[0]], {"axis": _axis(b, axis, len(b.shape(ins[0])))})
    legacy.__name__ = modern.__name__ = op
    converter(op, 1)(legacy)
    converter(op, 13)(modern)


_softmax("Softmax")
_softmax("LogSoftmax")


# ---- reductions -----------------------------------------------------------------------

def _reduce(op, input_axes_from):
    def convert(b, ins, n_out, *, axes=None, keepdims=1, noop_with_empty_axes=0):
        rank = len(b.shape(ins[0]))
        keepdims = _flag(b, "keepdims", keepdims)
        if b.opset >= input_axes_from:
            axes = _ints(b.static(ins[1], "axes")) if len(ins) > 1 and ins[1] else None
        if not axes:
            if noop_with_empty_axes:
                return [ins[0]]
            axes = range(rank)
        axes = tuple(sorted({_axis(b, a, rank) for a in axes}))
        return b.emit(op, [ins[0]], {"axes": axes, "keepdims": int(keepdims)})
    convert.__name__ = op
    converter(op, 1)(convert)


for _op in ("ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd"):
    _reduce(_op, 18)
_reduce("ReduceSum", 13)


# ---- elementwise ----------------------------------------------------------------------

_UNARY_SINCE = {"Relu": 1, "Sigmoid": 1, "Tanh": 1, "Exp": 1, "Log": 1, "Sqrt": 1, "Neg": 1,
                "Abs": 1, "Reciprocal": 1, "Floor": 1, "Ceil": 1, "Softplus": 1, "Erf": 9,
                "Round": 11, "HardSwish": 14}


def _unary(op, since):
    def convert(b, ins, n_out, **_legacy):
        return b.emit(op, [ins[0]])
    convert.__name__ = op
    converter(op, since)(convert)


for _op, _since in _UNARY_SINCE.items():
    _unary(_op, _since)


@converter("LeakyRelu", 1)
def LeakyRelu(b, ins, n_out, *, alpha=0.01, **_legacy):
    return b.emit("LeakyRelu", [ins[0]], {"alpha": float(alpha)})


@converter("HardSigmoid", 1)
def HardSigmoid(b, ins, n_out, *, alpha=0.2, beta=0.5, **_legacy):
    return b.emit("HardSigmoid", [ins[0]], {"alpha": float(alpha), "beta": float(beta)})


@converter("Elu", 1)
def Elu(b, ins, n_out, *, alpha=1.0, **_legacy):
    return b.emit("Elu", [ins[0]], {"alpha": float(alpha)})


@converter("Clip", 1, 11)
def Clip(b, ins, n_out, *, min=-math.inf, max=math.inf, **_legacy):
    lo, hi = float(min), float(max)
    if len(ins) > 1 and ins[1]:
        lo = float(np.asarray(b.static(ins[1], "min")).reshape(-1)[0])
    if len(ins) > 2 and ins[2]:
        hi = float(np.asarray(b.static(ins[2], "max")).reshape(-1)[0])
    return b.emit("Clip", [ins[0]], {"min": lo, "max": hi})


def _legacy_broadcast(b, a, bb, broadcast, axis):
    """Opset < 7 binary ops: B broadcasts onto A only with broadcast=1, aligned at `axis`."""
    sa, sb = b.shape(a), b.shape(bb)
    if not broadcast:
        if sa != sb:
            raise b.error(f"shapes {list(sa)} and {list(sb)} differ and broadcast=0")
        return bb
    if axis is None:
        return bb
    axis = _axis(b, axis, len(sa))
    return _reshape(b, bb, tuple(sb) + (1,) * (len(sa) - axis - len(sb)))


def _binary(op):
    def legacy(b, ins, n_out, *, broadcast=0, axis=None, **_legacy):
        return b.emit(op, [ins[0], _legacy_broadcast(b, ins[0], ins[1], broadcast, axis)])

    def modern(b, ins, n_out):
        return b.emit(op, [ins[0], ins[1]])
    legacy.__name__ = modern.__name__ = op
    converter(op, 1)(legacy)
    converter(op, 7)(modern)


for _op in ("Add", "Sub", "Mul", "Div", "Pow"):
    _binary(_op)


def _variadic(op, combine, mean=False):
    def convert(b, ins, n_out, **_legacy):
        xs = [x for x in ins if x]
        acc = xs[0]
        for x in xs[1:]:
            acc = b.emit(combine, [acc, x])[0]
        if mean and len(xs) > 1:
            n = b.add_const(np.array(len(xs), dtype=b.type(acc).dtype), "mean_count")
            acc = b.emit("Div", [acc, n])[0]
        return [acc]
    convert.__name__ = op
    converter(op, 1)(convert)


_variadic("Sum", "Add")
_variadic("Max", "Max")
_variadic("Min", "Min")
_variadic("Mean", "Add", mean=True)

"""ONNX converters for the remaining conformance ops, lowered to canonical ops.

Attention (opsets 23-25) becomes Reshape/Transpose/MatMul/Softmax with an additive bias built
from the mask, causal and sliding-window rules (folded to a constant when nothing depends on a
runtime input). Same conventions as onnx_converters.py: one function per ONNX op, attributes as
keywords, canonical nodes (docs/ops.md) emitted through the Builder.
"""

from __future__ import annotations

import numpy as np
from onnx import helper

from .onnx_builder import Builder, converter, pick_converter
from .onnx_converters import _axis, _ints, _reshape

# ---- Attention ------------------------------------------------------------------------


def _full(b: Builder, shape, value, dtype: str, base: str = "const") -> str:
    return b.add_const(np.full(shape, value, dtype=dtype), base)


def _split_heads(b: Builder, x: str, heads: int) -> str:
    """(B, S, H*D) -> (B, H, S, D)."""
    n, s, hidden = b.shape(x)
    if hidden % heads:
        raise b.error(f"hidden size {hidden} is not divisible by the {heads} heads")
    t = _reshape(b, x, (n, s, heads, hidden // heads))
    return b.emit("Transpose", [t], {"perm": (0, 2, 1, 3)})[0]


def _additive(b: Builder, mask: str, dtype: str) -> str:
    """A boolean mask (True = attend) as 0 / -inf; a float mask cast to the compute type."""
    if b.type(mask).dtype == "bool":
        zero = _full(b, (), 0, dtype, "zero")
        ninf = _full(b, (), -np.inf, dtype, "ninf")
        return b.emit("Where", [mask, zero, ninf])[0]
    if b.type(mask).dtype != dtype:
        return b.emit("Cast", [mask], {"to": dtype})[0]
    return mask


def _allowed_bias(b: Builder, allowed: str, dtype: str) -> str:
    zero = _full(b, (), 0, dtype, "zero")
    ninf = _full(b, (), -np.inf, dtype, "ninf")
    return b.emit("Where", [allowed, zero, ninf])[0]


def _band(b: Builder, q: int, kv: int, offset, lo: int | None, hi: int | None) -> str:
    """Bool mask of keys j a query i attends: lo <= (i + offset) - j <= hi (None = open).

    `offset` is an int (the same frontier for every batch) or the name of a runtime (batch,)
    int64 tensor, giving a (batch, 1, q, kv) mask.
    """
    diff = (np.arange(q).reshape(q, 1) - np.arange(kv).reshape(1, kv)).astype(np.int64)
    if isinstance(offset, int):
        ok = np.ones((q, kv), bool)
        if lo is not None:
            ok &= diff + offset >= lo
        if hi is not None:
            ok &= diff + offset <= hi
        return b.add_const(ok, "band")
    d = b.add_const(diff.reshape(1, 1, q, kv), "diff")
    total = b.emit("Add", [d, offset])[0]
    parts = []
    if lo is not None:
        parts.append(b.emit("GreaterOrEqual", [total, b.add_const(np.int64(lo), "lo")])[0])
    if hi is not None:
        parts.append(b.emit("LessOrEqual", [total, b.add_const(np.int64(hi), "hi")])[0])
    if not parts:
        return b.add_const(np.ones((q, kv), bool), "band")
    return parts[0] if len(parts) == 1 else b.emit("And", parts)[0]


@converter("Attention", 23)
def Attention(b, ins, n_out, *, is_causal=0, kv_num_heads=None, q_num_heads=None,
              qk_matmul_output_mode=0, scale=None, softcap=0.0, softmax_precision=None,
              left_window_size=-1, right_window_size=-1):
    ins = list(ins) + [""] * (7 - len(ins))
    q, k, v, mask, past_k, past_v, nonpad = ins
    dtype = b.type(q).dtype
    rank = len(b.shape(q))
    if rank == 3:
        if q_num_heads is None or kv_num_heads is None:
            raise b.error("3-D inputs need the q_num_heads and kv_num_heads attributes")
        q = _split_heads(b, q, int(q_num_heads))
        k = _split_heads(b, k, int(kv_num_heads))
        v = _split_heads(b, v, int(kv_num_heads))
    elif rank != 4:
        raise b.error(f"Q must be 3-D or 4-D, got shape {list(b.shape(ins[0]))}")
    if bool(past_k) != bool(past_v):
        raise b.error("past_key and past_value must be given together")
    if nonpad and past_k:
        raise b.error("nonpad_kv_seqlen cannot be combined with past_key/past_value")
    batch, hq, sq, dq = b.shape(q)

    # Q and K are each scaled by sqrt(scale) in the input type, as the spec's function body
    # does (this keeps fp16 products in range).
    if past_k:
        k = b.emit("Concat", [past_k, k], {"axis": 2})[0]
        v = b.emit("Concat", [past_v, v], {"axis": 2})[0]
    present_k, present_v = k, v
    out_dtype = dtype
    if dtype == "float16":
        # float16 is storage-only in tilecc: the whole attention runs in float32 and rounds
        # once (per-op half rounding inside fused kernels drifts from the references).
        dtype = "float32"
        q, k, v = (b.emit("Cast", [t], {"to": dtype})[0] for t in (q, k, v))
    s = 1.0 / np.sqrt(dq) if scale is None else float(scale)
    root = _full(b, (), np.sqrt(s), dtype, "scale")
    q = b.emit("Mul", [q, root])[0]
    kv = b.shape(k)[2]
    past_len = b.shape(past_k)[2] if past_k else 0

    # The additive bias: mask (padded to kv with -inf), causal and window bands, padding.
    bias = None
    if mask:
        bias = _additive(b, mask, dtype)
        width = b.shape(bias)[-1]
        if width < kv:
            pad_shape = b.shape(bias)[:-1] + (kv - width,)
            bias = b.emit("Concat", [bias, _full(b, pad_shape, -np.inf, dtype, "ninf")],
                          {"axis": len(pad_shape) - 1})[0]
    offset = past_len
    if nonpad:
        lens = nonpad
        if b.type(lens).dtype != "int64":
            lens = b.emit("Cast", [lens], {"to": "int64"})[0]
        lens = _reshape(b, lens, (batch, 1, 1, 1))
        offset = b.emit("Sub", [lens, b.add_const(np.int64(sq), "sq")])[0]

    def add(bias, term):
        if bias is None:
            return term
        return b.emit("Add", [bias, term])[0]

    if is_causal:
        bias = add(bias, _allowed_bias(b, _band(b, sq, kv, offset, 0, None), dtype))
    lw, rw = int(left_window_size), int(right_window_size)
    if lw >= 0 or rw >= 0:
        band = _band(b, sq, kv, offset, -rw if rw >= 0 else None, lw if lw >= 0 else None)
        bias = add(bias, _allowed_bias(b, band, dtype))
    if nonpad:
        j = b.add_const(np.arange(kv, dtype=np.int64).reshape(1, 1, 1, kv), "j")
        bias = add(bias, _allowed_bias(b, b.emit("Less", [j, lens])[0], dtype))

    # Grouped-query attention: each KV head serves q_heads / kv_heads consecutive Q heads.
    hk = b.shape(k)[1]
    if hq != hk:
        if hq % hk:
            raise b.error(f"{hq} query heads are not a multiple of {hk} key/value heads")
        reps = hq // hk

        def repeat(t):
            n, h, s_, d = b.shape(t)
            t = _reshape(b, t, (n, h, 1, s_, d))
            t = b.emit("Expand", [t], {"shape": (n, h, reps, s_, d)})[0]
            return _reshape(b, t, (n, h * reps, s_, d))
        k, v = repeat(k), repeat(v)

    k = b.emit("Mul", [k, root])[0]
    kt = b.emit("Transpose", [k], {"perm": (0, 1, 3, 2)})[0]
    qk = b.emit("MatMul", [q, kt])[0]
    if softcap and float(softcap) > 0:
        cap = _full(b, (), float(softcap), dtype, "softcap")
        qk = b.emit("Mul", [b.emit("Tanh", [b.emit("Div", [qk, cap])[0]])[0], cap])[0]
    qk_out = qk
    logits = qk if bias is None else b.emit("Add", [qk, bias])[0]
    mode = int(qk_matmul_output_mode)
    if mode == 2:
        qk_out = logits
    if softmax_precision is not None:
        sdt = np.dtype(helper.tensor_dtype_to_np_dtype(int(softmax_precision))).name
        if sdt != dtype:
            logits = b.emit("Cast", [logits], {"to": sdt})[0]
    probs = b.emit("Softmax", [logits], {"axis": 3})[0]
    if bias is not None:
        # A row whose bias is all -inf attends to nothing: the spec makes it 0 (Softmax gives
        # NaN there). Decided on the bias, not the logits, as the spec's function body does.
        row_max = b.emit("ReduceMax", [bias], {"axes": (len(b.shape(bias)) - 1,),
                                              "keepdims": 1})[0]
        dead = b.emit("IsInf", [row_max], {"detect_positive": 0, "detect_negative": 1})[0]
        const_dead = b.const(dead)
        if const_dead is None or const_dead.any():
            zero = _full(b, (), 0, b.type(probs).dtype, "zero")
            probs = b.emit("Where", [dead, zero, probs])[0]
    if mode == 3:
        qk_out = probs
    if b.type(probs).dtype != dtype:
        probs = b.emit("Cast", [probs], {"to": dtype})[0]
    if b.type(qk_out).dtype != out_dtype:
        qk_out = b.emit("Cast", [qk_out], {"to": out_dtype})[0]
    y = b.emit("MatMul", [probs, v])[0]
    if out_dtype != dtype:
        y = b.emit("Cast", [y], {"to": out_dtype})[0]
    if rank == 3:
        n, h, s_, d = b.shape(y)
        y = _reshape(b, b.emit("Transpose", [y], {"perm": (0, 2, 1, 3)})[0], (n, s_, h * d))
    return [y, present_k, present_v, qk_out][:n_out]


# ---- normalisations and activations ---------------------------------------------------


@converter("RMSNormalization", 23)
def RMSNormalization(b, ins, n_out, *, axis=-1, epsilon=1e-5, stash_type=1):
    x, scale = ins[0], ins[1]
    rank = len(b.shape(x))
    axis = _axis(b, axis, rank)
    dtype = b.type(x).dtype
    xs = b.emit("Cast", [x], {"to": "float32"})[0] if dtype == "float16" else x
    ct = b.type(xs).dtype
    ms = b.emit("ReduceMean", [b.emit("Mul", [xs, xs])[0]],
                {"axes": tuple(range(axis, rank)), "keepdims": 1})[0]
    rms = b.emit("Sqrt", [b.emit("Add", [ms, _full(b, (), epsilon, ct, "eps")])[0]])[0]
    y = b.emit("Div", [xs, rms])[0]
    if ct != dtype:
        y = b.emit("Cast", [y], {"to": dtype})[0]
    return b.emit("Mul", [y, scale])


@converter("MeanVarianceNormalization", 9)
def MeanVarianceNormalization(b, ins, n_out, *, axes=(0, 2, 3)):
    x = ins[0]
    rank = len(b.shape(x))
    red = {"axes": tuple(sorted(_axis(b, a, rank) for a in axes)), "keepdims": 1}
    mean = b.emit("ReduceMean", [x], red)[0]
    d = b.emit("Sub", [x, mean])[0]
    var = b.emit("ReduceMean", [b.emit("Mul", [d, d])[0]], red)[0]
    eps = _full(b, (), 1e-9, b.type(x).dtype, "eps")
    return b.emit("Div", [d, b.emit("Sqrt", [b.emit("Add", [var, eps])[0]])[0]])


@converter("LpNormalization", 1)
def LpNormalization(b, ins, n_out, *, axis=-1, p=2):
    x = ins[0]
    axis = _axis(b, axis, len(b.shape(x)))
    if int(p) not in (1, 2):
        raise b.error(f"p={p} is not 1 or 2")
    norm = b.emit("ReduceL1" if int(p) == 1 else "ReduceL2", [x],
                  {"axes": (axis,), "keepdims": 1})[0]
    # A zero norm gives 0, not 0/0.
    dtype = b.type(x).dtype
    zero = _full(b, (), 0, dtype, "zero")
    is0 = b.emit("Equal", [norm, zero])[0]
    safe = b.emit("Where", [is0, _full(b, (), 1, dtype, "one"), norm])[0]
    return b.emit("Where", [is0, zero, b.emit("Div", [x, safe])[0]])


def _swish(b, x, alpha):
    ax = x if alpha == 1.0 else b.emit("Mul", [x, _full(b, (), alpha, b.type(x).dtype,
                                                         "alpha")])[0]
    return b.emit("Mul", [x, b.emit("Sigmoid", [ax])[0]])[0]


@converter("Swish", 24)
def Swish(b, ins, n_out, *, alpha=1.0):
    return [_swish(b, ins[0], float(alpha))]


@converter("SwiGLU", 26)
def SwiGLU(b, ins, n_out, *, alpha=1.0):
    a, g = ins[0], ins[1]
    if b.shape(a) != b.shape(g):
        raise b.error(f"A {list(b.shape(a))} and B {list(b.shape(g))} must have one shape")
    return b.emit("Mul", [_swish(b, a, float(alpha)), g])


# ---- scans ----------------------------------------------------------------------------


@converter("CumProd", 26)
def CumProd(b, ins, n_out, *, exclusive=0, reverse=0):
    axis = int(_ints(b.static(ins[1], "axis"))[0])
    axis = _axis(b, axis, len(b.shape(ins[0])))
    return b.emit("CumProd", [ins[0]], {"axis": axis, "exclusive": int(exclusive),
                                        "reverse": int(reverse)})


# ---- pooling ----------------------------------------------------------------------------


def _abs_pow(b, x, p: float) -> str:
    if p == 1:
        return b.emit("Abs", [x])[0]
    if p == 2:
        return b.emit("Mul", [x, x])[0]
    return b.emit("Pow", [b.emit("Abs", [x])[0], _full(b, (), p, b.type(x).dtype, "p")])[0]


def _root(b, s, p: float) -> str:
    if p == 1:
        return s
    if p == 2:
        return b.emit("Sqrt", [s])[0]
    return b.emit("Pow", [s, _full(b, (), 1.0 / p, b.type(s).dtype, "inv_p")])[0]


@converter("LpPool", 2)
def LpPool(b, ins, n_out, *, kernel_shape, p=2, auto_pad="NOTSET", ceil_mode=0,
           dilations=None, pads=None, strides=None):
    # sum |x|^p over the window = a depthwise convolution with a ones kernel.
    x = ins[0]
    shape = b.shape(x)
    if ceil_mode:
        raise b.error("ceil_mode=1 is not supported for LpPool")
    c = shape[1]
    if len(shape) == 5:
        # 3-D: the window sum is an average over the padded window (every window covers
        # exactly prod(kernel) padded positions without ceil_mode) times the window size.
        (avg,) = pick_converter("AveragePool", b.opset)(
            b, [_abs_pow(b, x, float(p))], 1, kernel_shape=tuple(kernel_shape),
            auto_pad=auto_pad, count_include_pad=1, dilations=dilations, pads=pads,
            strides=strides)
        size = _full(b, (), float(np.prod(kernel_shape)), b.type(x).dtype, "lp_size")
        return [_root(b, b.emit("Mul", [avg, size])[0], float(p))]
    w = b.add_const(np.ones((c, 1) + tuple(kernel_shape), b.type(x).dtype), "lp_ones")
    conv = pick_converter("Conv", b.opset)
    (s,) = conv(b, [_abs_pow(b, x, float(p)), w], 1, auto_pad=auto_pad, dilations=dilations,
                group=c, kernel_shape=tuple(kernel_shape), pads=pads, strides=strides)
    return [_root(b, s, float(p))]


@converter("GlobalLpPool", 2)
def GlobalLpPool(b, ins, n_out, *, p=2):
    x = ins[0]
    rank = len(b.shape(x))
    s = b.emit("ReduceSum", [_abs_pow(b, x, float(p))],
               {"axes": tuple(range(2, rank)), "keepdims": 1})[0]
    return [_root(b, s, float(p))]


# ---- data movement by a constant index map --------------------------------------------


def _remap(b: Builder, x: str, index: np.ndarray) -> str:
    """y[...] = x.flat[index[...]], with index -1 reading 0 (padding)."""
    flat = _reshape(b, x, (int(np.prod(b.shape(x), dtype=np.int64)),))
    index = np.asarray(index, np.int64)
    if (index < 0).any():
        zero = b.add_const(np.zeros(1, b.type(x).dtype), "zero")
        flat = b.emit("Concat", [flat, zero], {"axis": 0})[0]
        index = np.where(index < 0, b.shape(flat)[0] - 1, index)
    if index.ndim == 0:
        index = index.reshape(1)
    y = b.emit("Gather", [flat, b.add_const(index.reshape(-1), "index")], {"axis": 0})[0]
    return _reshape(b, y, index.shape)


def _positions(b, x) -> np.ndarray:
    shape = b.shape(x)
    return np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64).reshape(shape)


@converter("CenterCropPad", 18)
def CenterCropPad(b, ins, n_out, *, axes=None):
    x = ins[0]
    shape = b.shape(x)
    rank = len(shape)
    target = _ints(b.static(ins[1], "shape"))
    axes = [_axis(b, a, rank) for a in axes] if axes is not None else list(range(rank))
    if len(axes) != len(target):
        raise b.error(f"shape has {len(target)} values for {len(axes)} axes")
    pos = _positions(b, x)
    for a, want in zip(axes, target):
        have = pos.shape[a]
        if want < have:  # crop: keep the centre, the extra element on the high side goes
            lo = (have - want) // 2
            pos = np.take(pos, range(lo, lo + want), axis=a)
        elif want > have:  # pad with zeros, the extra element on the high side
            lo = (want - have) // 2
            widths = [(0, 0)] * rank
            widths[a] = (lo, want - have - lo)
            pos = np.pad(pos, widths, constant_values=-1)
    return [_remap(b, x, pos)]


@converter("ReverseSequence", 10)
def ReverseSequence(b, ins, n_out, *, batch_axis=1, time_axis=0):
    x = ins[0]
    lens = _ints(b.static(ins[1], "sequence_lens"))
    pos = _positions(b, x)
    out = pos.copy()
    for i, n in enumerate(lens):
        src = [slice(None)] * pos.ndim
        dst = [slice(None)] * pos.ndim
        src[batch_axis] = dst[batch_axis] = i
        dst[time_axis] = slice(0, n)
        src[time_axis] = slice(n - 1, None, -1) if n else slice(0, 0)
        out[tuple(dst)] = pos[tuple(src)]
    return [_remap(b, x, out)]


@converter("Compress", 9)
def Compress(b, ins, n_out, *, axis=None):
    x = ins[0]
    cond = np.asarray(b.static(ins[1], "condition")).astype(bool).reshape(-1)
    pos = _positions(b, x)
    if axis is None:
        sel = np.compress(cond, pos.reshape(-1))
    else:
        sel = np.compress(cond, pos, axis=_axis(b, axis, pos.ndim))
    if sel.size == 0:
        raise b.error("the condition selects nothing; tilecc does not compile empty tensors")
    return [_remap(b, x, sel)]


@converter("EyeLike", 9)
def EyeLike(b, ins, n_out, *, dtype=None, k=0):
    from .converters_general import _dtype_of_onnx

    n, m = b.shape(ins[0])
    dt = _dtype_of_onnx(b, dtype) if dtype is not None else b.type(ins[0]).dtype
    return [b.add_const(np.eye(n, m, int(k), dtype=dt), "eye")]


@converter("MaxUnpool", 9)
def MaxUnpool(b, ins, n_out, *, kernel_shape, pads=None, strides=None):
    x, idx = ins[0], ins[1]
    shape = b.shape(x)
    nsp = len(shape) - 2
    strides = tuple(strides or (1,) * nsp)
    pads = tuple(pads or (0,) * (2 * nsp))
    inferred = tuple(shape[:2]) + tuple(
        (shape[2 + d] - 1) * strides[d] - (pads[d] + pads[nsp + d]) + kernel_shape[d]
        for d in range(nsp))
    total_in = int(np.prod(shape, dtype=np.int64))
    total = int(np.prod(inferred, dtype=np.int64))
    zeros = b.add_const(np.zeros((1, total), b.type(x).dtype), "zeros")
    i2 = _reshape(b, idx, (1, total_in))
    if b.type(i2).dtype != "int64":
        i2 = b.emit("Cast", [i2], {"to": "int64"})[0]
    y = b.emit("ScatterElements", [zeros, i2, _reshape(b, x, (1, total_in))],
               {"axis": 1, "reduction": "none"})[0]
    y = _reshape(b, y, inferred)
    if len(ins) > 2 and ins[2]:
        want = _ints(b.static(ins[2], "output_shape"))
        extra = [w - h for w, h in zip(want, inferred)]
        if any(e < 0 for e in extra):
            raise b.error(f"output_shape {list(want)} is smaller than {list(inferred)}")
        if any(extra):
            y = b.emit("Pad", [y], {"pads": (0,) * len(want) + tuple(extra),
                                    "mode": "constant", "value": 0.0})[0]
    return [y]


# ---- signal windows (constants once the size is known) --------------------------------


def _window(kind):
    def convert(b, ins, n_out, *, output_datatype=1, periodic=1):
        from .converters_general import _dtype_of_onnx

        size = int(_ints(b.static(ins[0], "size"))[0])
        if size < 1:
            raise b.error(f"window size {size} is not positive")
        n = np.arange(size, dtype=np.float64)
        period = size if periodic else size - 1
        t = 2 * np.pi * n / max(period, 1)
        if kind == "Hann":
            w = np.sin(np.pi * n / max(period, 1)) ** 2
        elif kind == "Hamming":
            w = 25.0 / 46.0 - (21.0 / 46.0) * np.cos(t)
        else:
            w = 0.42 - 0.5 * np.cos(t) + 0.08 * np.cos(2 * t)
        return [b.add_const(w.astype(_dtype_of_onnx(b, int(output_datatype))), "window")]
    convert.__name__ = f"{kind}Window"
    converter(f"{kind}Window", 17)(convert)


for _kind in ("Hann", "Hamming", "Blackman"):
    _window(_kind)


# ---- data-dependent output shapes, folded from compile-time inputs --------------------
# Static shapes need these inputs at compile time (the backend adapter binds them); the
# result is then a constant.


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


# ---- Scan (unrolled: the trip count is the static scan-axis length) -------------------


def _take(b: Builder, x: str, axis: int, i: int) -> str:
    """x[..., i, ...] along `axis`, the axis removed."""
    shape = b.shape(x)
    t = b.emit("Slice", [x], {"starts": tuple(i if a == axis else 0 for a in range(len(shape))),
                              "ends": tuple(i + 1 if a == axis else d
                                            for a, d in enumerate(shape)),
                              "steps": (1,) * len(shape)})[0]
    return _reshape(b, t, shape[:axis] + shape[axis + 1:])


def _stack(b: Builder, parts: list[str], axis: int) -> str:
    shape = b.shape(parts[0])
    parts = [_reshape(b, p, shape[:axis] + (1,) + shape[axis:]) for p in parts]
    return parts[0] if len(parts) == 1 else b.emit("Concat", parts, {"axis": axis})[0]


def _scan(b, states, scans, body, in_axes, in_dirs, out_axes, out_dirs):
    from .converters_control import MAX_UNROLL, _inline_graph

    if not scans:
        raise b.error("Scan needs at least one scan input")
    trip = b.shape(scans[0])[in_axes[0]]
    if any(b.shape(s)[a] != trip for s, a in zip(scans, in_axes)):
        raise b.error("scan inputs differ in their scan-axis length")
    if trip > MAX_UNROLL:
        raise b.error(f"scan length {trip} exceeds the unroll limit {MAX_UNROLL}")
    names = [i.name for i in body.input]
    n_state = len(states)
    outs_per_step: list[list[str]] = []
    for t in range(trip):
        binds = dict(zip(names[:n_state], states))
        for name, s, a, d in zip(names[n_state:], scans, in_axes, in_dirs):
            binds[name] = _take(b, s, a, trip - 1 - t if d else t)
        outs = _inline_graph(b, body, binds)
        states = outs[:n_state]
        outs_per_step.append(outs[n_state:])
    results = list(states)
    for k in range(len(body.output) - n_state):
        parts = [o[k] for o in outs_per_step]
        if out_dirs[k]:
            parts = parts[::-1]
        rank = len(b.shape(parts[0])) + 1
        results.append(_stack(b, parts, _axis(b, out_axes[k], rank)))
    return results


@converter("Scan", 9)
def Scan(b, ins, n_out, *, body, num_scan_inputs, scan_input_axes=None,
         scan_input_directions=None, scan_output_axes=None, scan_output_directions=None):
    m = int(num_scan_inputs)
    states, scans = list(ins[:len(ins) - m]), list(ins[len(ins) - m:])
    n_scan_out = len(body.output) - len(states)
    in_axes = [_axis(b, a, len(b.shape(s))) for a, s in
               zip(scan_input_axes or (0,) * m, scans)]
    return _scan(b, states, scans, body, in_axes, scan_input_directions or (0,) * m,
                 scan_output_axes or (0,) * n_scan_out,
                 scan_output_directions or (0,) * n_scan_out)[:n_out]


@converter("Scan", 8)
def Scan8(b, ins, n_out, *, body, num_scan_inputs, directions=None):
    # Opset 8 adds a leading batch axis to every input and scans axis 1; each batch entry is
    # scanned separately and the results are stacked back on axis 0.
    m = int(num_scan_inputs)
    lens, rest = ins[0], list(ins[1:])
    states, scans = rest[:len(rest) - m], rest[len(rest) - m:]
    batch, seq = b.shape(scans[0])[:2]
    if lens:
        got = _ints(b.static(lens, "sequence_lens"))
        if any(v != seq for v in got):
            raise b.error("sequence_lens must all equal the scan length (no ragged batches)")
    n_scan_out = len(body.output) - len(states)
    per_batch = []
    for n in range(batch):
        per_batch.append(_scan(b, [_take(b, s, 0, n) for s in states],
                               [_take(b, s, 0, n) for s in scans], body, (0,) * m,
                               directions or (0,) * m, (0,) * n_scan_out, (0,) * n_scan_out))
    return [_stack(b, [r[k] for r in per_batch], 0)
            for k in range(len(per_batch[0]))][:n_out]


# ---- ops defined by an ONNX function body ---------------------------------------------


def _function_op(op: str, since: int):
    """Convert `op` by inlining the function body its ONNX schema defines for this node."""
    def convert(b, ins, n_out, **attrs):
        import onnx
        from onnx import defs

        from .converters_control import _inline_graph

        schema = defs.get_schema(op, b.opset)
        formal_in = [f"__fn_in{i}" for i in range(len(ins))]
        formal_out = [f"__fn_out{i}" for i in range(n_out)]
        node = helper.make_node(op, [f if x else "" for f, x in zip(formal_in, ins)],
                                formal_out, **attrs)
        if schema.has_function:
            fn = schema.function_body
        else:
            types = [helper.make_tensor_type_proto(
                helper.np_dtype_to_tensor_dtype(np.dtype(b.type(x).dtype)), b.shape(x))
                if x else onnx.TypeProto() for x in ins]
            fn = onnx.FunctionProto()
            fn.ParseFromString(schema.get_context_dependent_function(
                node.SerializeToString(), [t.SerializeToString() for t in types]))
        given = {a.name: a for a in node.attribute}
        nodes = []
        for n in fn.node:
            c = onnx.NodeProto()
            c.CopyFrom(n)
            keep = []
            for a in c.attribute:
                if a.ref_attr_name:  # an attribute of the function: the caller's value
                    if a.ref_attr_name not in given:
                        continue
                    v = onnx.AttributeProto()
                    v.CopyFrom(given[a.ref_attr_name])
                    v.name = a.name
                    keep.append(v)
                else:
                    keep.append(a)
            del c.attribute[:]
            c.attribute.extend(keep)
            nodes.append(c)
        body = helper.make_graph(nodes, f"{op}_function",
                                 [onnx.ValueInfoProto(name=i) for i in fn.input],
                                 [onnx.ValueInfoProto(name=o) for o in fn.output[:n_out]])
        binds = {name: (ins[i] if i < len(ins) else "") for i, name in enumerate(fn.input)}
        return _inline_graph(b, body, binds)
    convert.__name__ = op
    converter(op, since)(convert)


for _op, _since in (("LinearAttention", 27), ("CausalConvWithState", 27), ("AffineGrid", 20),
                    ("RotaryEmbedding", 23)):
    _function_op(_op, _since)

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

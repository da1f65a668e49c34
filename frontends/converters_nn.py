"""ONNX converters for transformer/NN ops and recurrent ops (If/Loop: converters_control.py).

Same conventions as onnx_converters.py: one function per ONNX op, attributes as keywords,
canonical nodes (docs/ops.md) emitted through the Builder. Ops ONNX defines as compositions
(DepthToSpace, SpaceToDepth, Einsum, Upsample, InstanceNormalization, RMSNormalization,
MeanVarianceNormalization, LpNormalization, Swish, SwiGLU) lower to existing canonical ops
here.
"""

from __future__ import annotations

import numpy as np

from .onnx_builder import Builder, converter
from .onnx_converters import _axis, _full, _reshape

# ---- normalisations and activations ---------------------------------------------------


@converter("LayerNormalization", 17)
def LayerNormalization(b, ins, n_out, *, axis=-1, epsilon=1e-5, stash_type=1):
    x = ins[0]
    axis = _axis(b, axis, len(b.shape(x)))
    inputs = [x, ins[1]] + ([ins[2]] if len(ins) > 2 and ins[2] else [])
    y = b.emit("LayerNormalization", inputs, {"axis": axis, "epsilon": float(epsilon)})
    if n_out == 1:
        return y
    # Mean and InvStdDev (float32 by stash_type): recomputed from the input for the callers
    # that read them; the fused kernel keeps producing Y alone.
    xs = b.emit("Cast", [x], {"to": "float32"})[0] if b.type(x).dtype != "float32" else x
    red = {"axes": tuple(range(axis, len(b.shape(x)))), "keepdims": 1}
    mean = b.emit("ReduceMean", [xs], red)[0]
    d = b.emit("Sub", [xs, mean])[0]
    var = b.emit("ReduceMean", [b.emit("Mul", [d, d])[0]], red)[0]
    eps = b.add_const(np.array(epsilon, np.float32), "eps")
    inv = b.emit("Reciprocal", [b.emit("Sqrt", [b.emit("Add", [var, eps])[0]])[0]])[0]
    return [y[0], mean, inv][:n_out]


@converter("InstanceNormalization", 1)
def InstanceNormalization(b, ins, n_out, *, epsilon=1e-5, **_legacy):
    x = ins[0]
    return b.emit("GroupNormalization", [x, ins[1], ins[2]],
                  {"groups": b.shape(x)[1], "epsilon": float(epsilon)})


def _per_channel(b: Builder, v: str, groups: int, channels: int) -> str:
    """Opset-18 per-group scale/bias (G,) repeated to per-channel (C,)."""
    if b.shape(v) == (channels,):
        return v
    col = _reshape(b, v, (groups, 1))
    ones = b.add_const(np.ones((1, channels // groups), b.type(v).dtype), "ones")
    return _reshape(b, b.emit("Mul", [col, ones])[0], (channels,))


@converter("GroupNormalization", 18)
def GroupNormalization(b, ins, n_out, *, num_groups, epsilon=1e-5, stash_type=1):
    x = ins[0]
    c = b.shape(x)[1]
    scale, bias = (_per_channel(b, v, num_groups, c) for v in ins[1:3])
    return b.emit("GroupNormalization", [x, scale, bias],
                  {"groups": int(num_groups), "epsilon": float(epsilon)})


@converter("Gelu", 20)
def Gelu(b, ins, n_out, *, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise b.error(f"approximate={approximate!r} is not 'none' or 'tanh'")
    return b.emit("Gelu", [ins[0]], {"approximate": approximate})


@converter("PRelu", 1, 7)
def PRelu(b, ins, n_out, **_legacy):
    x, slope = ins
    xs, ss = b.shape(x), b.shape(slope)
    # Opset < 7 and common exports give a per-channel slope (C,) for NCHW input; it applies
    # along axis 1 (unidirectional broadcast would align it with the last axis instead).
    if b.opset < 7 and len(ss) == 1 and len(xs) > 2 and ss[0] == xs[1] != xs[-1]:
        slope = _reshape(b, slope, (ss[0],) + (1,) * (len(xs) - 2))
    return b.emit("PRelu", [x, slope])


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


# ---- data movement --------------------------------------------------------------------


@converter("DepthToSpace", 1, 11)
def DepthToSpace(b, ins, n_out, *, blocksize, mode="DCR"):
    x = ins[0]
    n, c, h, w = b.shape(x)
    s = int(blocksize)
    if c % (s * s):
        raise b.error(f"{c} channels are not divisible by blocksize^2 = {s * s}")
    if mode == "DCR":
        t = _reshape(b, x, (n, s, s, c // (s * s), h, w))
        perm = (0, 3, 4, 1, 5, 2)
    elif mode == "CRD":
        t = _reshape(b, x, (n, c // (s * s), s, s, h, w))
        perm = (0, 1, 4, 2, 5, 3)
    else:
        raise b.error(f"mode {mode!r} is not DCR or CRD")
    t = b.emit("Transpose", [t], {"perm": perm})[0]
    return [_reshape(b, t, (n, c // (s * s), h * s, w * s))]


@converter("SpaceToDepth", 1)
def SpaceToDepth(b, ins, n_out, *, blocksize, mode="DCR"):
    x = ins[0]
    n, c, h, w = b.shape(x)
    s = int(blocksize)
    if h % s or w % s:
        raise b.error(f"spatial dims {h}x{w} are not divisible by blocksize {s}")
    t = _reshape(b, x, (n, c, h // s, s, w // s, s))
    if mode not in ("DCR", "CRD"):
        raise b.error(f"mode {mode!r} is not DCR or CRD")
    perm = (0, 3, 5, 1, 2, 4) if mode == "DCR" else (0, 1, 3, 5, 2, 4)
    t = b.emit("Transpose", [t], {"perm": perm})[0]
    return [_reshape(b, t, (n, c * s * s, h // s, w // s))]


# ---- Einsum ---------------------------------------------------------------------------


def _einsum_terms(b: Builder, equation: str, ranks: list[int]) -> tuple[list[str], str]:
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise b.error(f"equation {equation!r} names {len(terms)} operands, got {len(ranks)}")
    # Ellipses become fresh upper-case letters (ONNX equations use lower case by convention;
    # any letter not used by the equation works).
    free = [ch for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if ch not in eq]
    ell_rank = max((r - (len(t) - 3) for t, r in zip(terms, ranks) if "..." in t), default=0)
    ell = "".join(free[:ell_rank])
    out_terms = []
    for t, r in zip(terms, ranks):
        if "..." in t:
            k = r - (len(t) - 3)
            t = t.replace("...", ell[ell_rank - k:])
        if len(t) != r:
            raise b.error(f"einsum term {t!r} does not match an operand of rank {r}")
        out_terms.append(t)
    if arrow:
        rhs = rhs.replace("...", ell)
    else:
        counts = {}
        for t in out_terms:
            for ch in t:
                counts[ch] = counts.get(ch, 0) + 1
        rhs = ell + "".join(sorted(ch for ch, k in counts.items() if k == 1 and ch not in ell))
    return out_terms, rhs


def _einsum_diagonal(b, x, term):
    """Take the diagonal for every letter an operand term repeats ('ii' -> 'i'): move the two
    positions last, flatten them and Gather every (n + 1)-th element."""
    while len(set(term)) != len(term):
        ch = next(c for c in term if term.count(c) > 1)
        p, q = term.index(ch), term.index(ch, term.index(ch) + 1)
        n = b.shape(x)[p]
        if b.shape(x)[q] != n:
            raise b.error(f"einsum letter {ch!r} repeats with sizes {n} and {b.shape(x)[q]}")
        rest = [k for k in range(len(term)) if k not in (p, q)]
        order = "".join(term[k] for k in rest) + ch + ch
        perm = tuple(rest) + (p, q)
        if perm != tuple(range(len(perm))):
            x = b.emit("Transpose", [x], {"perm": perm})[0]
        lead = tuple(b.shape(x)[:-2])
        x = _reshape(b, x, lead + (n * n,))
        idx = b.add_const(np.arange(n, dtype=np.int64) * (n + 1), "diag_idx")
        x = b.emit("Gather", [x, idx], {"axis": len(lead)})[0]
        term = order[:-1]
    return x, term


def _einsum_reduce(b, x, term, keep):
    """Sum away letters of `term` not in `keep`; returns (value, remaining term)."""
    axes = tuple(k for k, ch in enumerate(term) if ch not in keep)
    if not axes:
        return x, term
    x = b.emit("ReduceSum", [x], {"axes": axes, "keepdims": 0})[0]
    return x, "".join(ch for ch in term if ch in keep)


def _transpose_to(b, x, term, order):
    perm = tuple(term.index(ch) for ch in order)
    if perm == tuple(range(len(perm))):
        return x
    return b.emit("Transpose", [x], {"perm": perm})[0]


@converter("Einsum", 12)
def Einsum(b, ins, n_out, *, equation):
    terms, out = _einsum_terms(b, equation, [len(b.shape(x)) for x in ins])
    ins, terms = map(list, zip(*(_einsum_diagonal(b, x, t) for x, t in zip(ins, terms))))
    dims: dict[str, int] = {}
    for x, t in zip(ins, terms):
        for ch, d in zip(t, b.shape(x)):
            if dims.setdefault(ch, d) != d and d != 1 and dims[ch] != 1:
                raise b.error(f"letter {ch!r} has sizes {dims[ch]} and {d}")
            dims[ch] = max(dims[ch], d)
    if len(ins) == 1:
        x, t = _einsum_reduce(b, ins[0], terms[0], out)
        return [_transpose_to(b, x, t, out)]
    if len(ins) != 2:
        raise b.error(f"Einsum with {len(ins)} operands is not supported; use at most two")
    (x, tx), (y, ty) = (_einsum_reduce(b, v, t, set(out) | set(o))
                        for v, t, o in ((ins[0], terms[0], terms[1]),
                                        (ins[1], terms[1], terms[0])))
    for v, t in ((x, tx), (y, ty)):
        if any(b.shape(v)[k] != dims[ch] for k, ch in enumerate(t)):
            raise b.error("einsum operands that broadcast a letter are not supported")
    batch = [ch for ch in out if ch in tx and ch in ty]
    left = [ch for ch in out if ch in tx and ch not in ty]
    right = [ch for ch in out if ch in ty and ch not in tx]
    contract = [ch for ch in tx if ch in ty and ch not in out]

    def size(chs):
        return int(np.prod([dims[ch] for ch in chs], dtype=np.int64))
    nb, nl, nr, nk = size(batch), size(left), size(right), size(contract)
    a = _reshape(b, _transpose_to(b, x, tx, batch + left + contract), (nb, nl, nk))
    c = _reshape(b, _transpose_to(b, y, ty, batch + contract + right), (nb, nk, nr))
    prod = b.emit("MatMul", [a, c])[0]
    prod_term = "".join(batch + left + right)
    prod = _reshape(b, prod, tuple(dims[ch] for ch in prod_term))
    return [_transpose_to(b, prod, prod_term, out)]


# ---- recurrent ------------------------------------------------------------------------


def _recurrent(b: Builder, op: str, ins, n_out, hidden_size, direction, activations,
               activation_alpha, activation_beta, clip, layout, extra: dict):
    from tilecc.ops.recurrent import GATES
    from tilecc.topi.recurrent import ACTIVATIONS, DEFAULT_ACTS
    if direction not in ("forward", "reverse", "bidirectional"):
        raise b.error(f"direction {direction!r} is not forward, reverse or bidirectional")
    ndir = 2 if direction == "bidirectional" else 1
    ins = list(ins)
    if layout:
        # Batch-major: transpose X and the initial states to time-major and the outputs back.
        for i in (0, 5, 6):
            if len(ins) > i and ins[i]:
                ins[i] = b.emit("Transpose", [ins[i]], {"perm": (1, 0, 2)})[0]
    x = ins[0]
    t, batch, _ = b.shape(x)
    w = ins[1]
    hid = int(hidden_size) if hidden_size else b.shape(w)[1] // GATES[op]
    dtype = b.type(x).dtype

    def opt(i, shape):
        if len(ins) > i and ins[i]:
            return ins[i]
        return b.add_const(np.zeros(shape, dtype), "rnn_zeros")
    if len(ins) > 4 and ins[4]:
        lens = b.static(ins[4], "sequence_lens")
        if not (np.asarray(lens) == t).all():
            raise b.error("sequence_lens must be absent or a constant equal to the sequence "
                          f"length {t} for every batch entry; variable lengths are not "
                          "supported")
    names = tuple(activations) if activations else DEFAULT_ACTS[op] * ndir
    if len(names) != len(DEFAULT_ACTS[op]) * ndir:
        raise b.error(f"{len(names)} activations given, {op} needs "
                      f"{len(DEFAULT_ACTS[op]) * ndir} for direction {direction!r}")
    for a in names:
        if a not in ACTIVATIONS:
            raise b.error(f"activation {a!r} is not supported; supported: {sorted(ACTIVATIONS)}")
    wt, rt = (b.emit("Transpose", [v], {"perm": (0, 2, 1)})[0] for v in (w, ins[2]))
    inputs = [x, wt, rt, opt(3, (ndir, 2 * GATES[op] * hid)), opt(5, (ndir, batch, hid))]
    if op == "LSTM":
        inputs += [opt(6, (ndir, batch, hid)), opt(7, (ndir, 3 * hid))]
    attrs = {"hidden_size": hid, "direction": direction, "activations": names,
             "activation_alpha": tuple(float(v) for v in activation_alpha or ()),
             "activation_beta": tuple(float(v) for v in activation_beta or ()),
             "clip": float(clip) if clip is not None else float("inf"), **extra}
    outs = b.emit(op, inputs, attrs, n_out=3 if op == "LSTM" else 2)[:max(n_out, 1)]
    if layout:
        outs = [b.emit("Transpose", [o], {"perm": (2, 0, 1, 3) if k == 0 else (1, 0, 2)})[0]
                for k, o in enumerate(outs)]
    return outs


@converter("LSTM", 7, 14)
def LSTM(b, ins, n_out, *, hidden_size=None, direction="forward", activations=None,
         activation_alpha=None, activation_beta=None, clip=None, input_forget=0, layout=0):
    return _recurrent(b, "LSTM", ins, n_out, hidden_size, direction, activations,
                      activation_alpha, activation_beta, clip, layout,
                      {"input_forget": int(input_forget)})


@converter("GRU", 7, 14)
def GRU(b, ins, n_out, *, hidden_size=None, direction="forward", activations=None,
        activation_alpha=None, activation_beta=None, clip=None, linear_before_reset=0, layout=0):
    return _recurrent(b, "GRU", ins, n_out, hidden_size, direction, activations,
                      activation_alpha, activation_beta, clip, layout,
                      {"linear_before_reset": int(linear_before_reset)})


@converter("RNN", 7, 14)
def RNN(b, ins, n_out, *, hidden_size=None, direction="forward", activations=None,
        activation_alpha=None, activation_beta=None, clip=None, layout=0):
    return _recurrent(b, "RNN", ins, n_out, hidden_size, direction, activations,
                      activation_alpha, activation_beta, clip, layout, {})


# ---- Resize / Upsample / ConvTranspose ------------------------------------------------


def _emit_resize(b: Builder, x: str, scales, sizes, attrs: dict, roi=None) -> str:
    from tilecc.ops.image import resize_tables

    shape = b.shape(x)
    r = len(shape)
    if sizes is not None:
        out = [int(v) for v in sizes]
        scales = [o / i for o, i in zip(out, shape)]
    else:
        scales = [float(v) for v in scales]
        if len(scales) != r:
            raise b.error(f"{len(scales)} scales for an input of rank {r}")
        out = [int(np.floor(i * s * ((roi[d + r] - roi[d]) if roi is not None and
                                     attrs["coordinate_transformation_mode"] ==
                                     "tf_crop_and_resize" else 1.0)))
               for d, (i, s) in enumerate(zip(shape, scales))]
    if len(out) != r or any(o <= 0 for o in out):
        raise b.error(f"output sizes {out} are invalid for input shape {list(shape)}")
    inputs = [x]
    for d in range(r):
        span = (float(roi[d]), float(roi[d + r])) if roi is not None and len(roi) == 2 * r \
            else (0.0, 1.0)
        try:
            idx, w = resize_tables(shape[d], out[d], scales[d], attrs, span)
        except ValueError as e:
            raise b.error(str(e)) from None
        inputs += [b.add_const(idx, "resize_idx"), b.add_const(w, "resize_w")]
    return b.emit("Resize", inputs, attrs)[0]


def _resize_attrs(b, mode, ctm, nearest_mode, cubic_coeff_a, exclude_outside,
                  extrapolation_value):
    if mode not in ("nearest", "linear", "cubic"):
        raise b.error(f"mode {mode!r} is not nearest, linear or cubic")
    return {"mode": mode, "coordinate_transformation_mode": ctm, "nearest_mode": nearest_mode,
            "cubic_coeff_a": float(cubic_coeff_a), "exclude_outside": int(exclude_outside),
            "extrapolation_value": float(extrapolation_value)}


@converter("Resize", 10)
def Resize10(b, ins, n_out, *, mode="nearest"):
    # Opset 10 Resize is Upsample: asymmetric coordinates, nearest rounds down.
    attrs = _resize_attrs(b, mode, "asymmetric", "floor", -0.75, 0, 0.0)
    return [_emit_resize(b, ins[0], _ints_f(b.static(ins[1], "scales")), None, attrs)]


def _ints_f(arr) -> list[float]:
    return [float(v) for v in np.asarray(arr).reshape(-1)]


@converter("Resize", 11)
def Resize(b, ins, n_out, *, mode="nearest", coordinate_transformation_mode="half_pixel",
           nearest_mode="round_prefer_floor", cubic_coeff_a=-0.75, exclude_outside=0,
           extrapolation_value=0.0, antialias=0, axes=None, keep_aspect_ratio_policy="stretch"):
    if antialias:
        raise b.error("antialias=1 is not supported; resize without antialiasing")
    x = ins[0]
    r = len(b.shape(x))

    def opt(i, what):
        if len(ins) > i and ins[i]:
            arr = np.asarray(b.static(ins[i], what)).reshape(-1)
            return arr if arr.size else None
        return None
    roi, scales, sizes = opt(1, "roi"), opt(2, "scales"), opt(3, "sizes")
    if (scales is None) == (sizes is None):
        raise b.error("exactly one of scales and sizes must be given")
    ax = [_axis(b, a, r) for a in axes] if axes else list(range(r))
    if axes:  # opset 18: values for the listed axes only
        full_s, full_z = [1.0] * r, list(b.shape(x))
        full_roi = [0.0] * r + [1.0] * r
        for k, a in enumerate(ax):
            if scales is not None:
                full_s[a] = float(scales[k])
            else:
                full_z[a] = int(sizes[k])
            if roi is not None:
                full_roi[a], full_roi[a + r] = roi[k], roi[k + len(ax)]
        scales = full_s if scales is not None else None
        sizes = full_z if sizes is not None else None
        roi = full_roi if roi is not None else None
    if sizes is not None and keep_aspect_ratio_policy != "stretch":
        shape = b.shape(x)
        ratios = [sizes[a] / shape[a] for a in ax]
        s = min(ratios) if keep_aspect_ratio_policy == "not_larger" else max(ratios)
        sizes = list(shape)
        for a in ax:
            sizes[a] = int(np.round(s * shape[a]))
        scales_for = [s if a in ax else 1.0 for a in range(r)]
        attrs = _resize_attrs(b, mode, coordinate_transformation_mode, nearest_mode,
                              cubic_coeff_a, exclude_outside, extrapolation_value)
        return [_emit_resize_scaled(b, x, sizes, scales_for, attrs, roi)]
    attrs = _resize_attrs(b, mode, coordinate_transformation_mode, nearest_mode, cubic_coeff_a,
                          exclude_outside, extrapolation_value)
    return [_emit_resize(b, x, scales, sizes, attrs, roi)]


def _emit_resize_scaled(b, x, sizes, scales, attrs, roi):
    """Resize to `sizes` while the coordinate transform uses `scales` (aspect-kept sizes)."""
    from tilecc.ops.image import resize_tables
    shape = b.shape(x)
    r = len(shape)
    inputs = [x]
    for d in range(r):
        span = (float(roi[d]), float(roi[d + r])) if roi is not None else (0.0, 1.0)
        idx, w = resize_tables(shape[d], int(sizes[d]), scales[d], attrs, span)
        inputs += [b.add_const(idx, "resize_idx"), b.add_const(w, "resize_w")]
    return b.emit("Resize", inputs, attrs)[0]


@converter("Upsample", 7, 9)
def Upsample(b, ins, n_out, *, mode="nearest", scales=None, **_legacy):
    if len(ins) > 1 and ins[1]:
        scales = b.static(ins[1], "scales")
    if scales is None:
        raise b.error("Upsample needs scales")
    attrs = _resize_attrs(b, "linear" if mode in ("linear", "bilinear") else mode,
                          "asymmetric", "floor", -0.75, 0, 0.0)
    return [_emit_resize(b, ins[0], _ints_f(scales), None, attrs)]


@converter("ConvTranspose", 1)
def ConvTranspose(b, ins, n_out, *, auto_pad="NOTSET", dilations=None, group=1,
                  kernel_shape=None, output_padding=None, output_shape=None, pads=None,
                  strides=None):
    x, w = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 and ins[2] else None
    xs, ws = b.shape(x), b.shape(w)
    nsp = len(xs) - 2
    if nsp not in (1, 2):
        raise b.error(f"only 1-D and 2-D ConvTranspose is supported, got input {list(xs)}")
    kernel = list(kernel_shape or ws[2:])
    strides = list(strides or [1] * nsp)
    dilations = list(dilations or [1] * nsp)
    opad = list(output_padding or [0] * nsp)
    if output_shape is not None:
        output_shape = list(output_shape)[-nsp:]
    if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        want = output_shape or [xs[2 + k] * strides[k] for k in range(nsp)]
        begins, ends = [], []
        for k in range(nsp):
            total = strides[k] * (xs[2 + k] - 1) + opad[k] + (kernel[k] - 1) * dilations[k] \
                + 1 - want[k]
            if total < 0:
                # A larger requested output grows output_padding (extra rows at the end).
                opad[k] -= total
                total = 0
            # onnxruntime puts the odd extra pad at the end for SAME_UPPER / explicit
            # output_shape and at the beginning for SAME_LOWER.
            small = total // 2
            begin = total - small if auto_pad == "SAME_LOWER" else small
            begins.append(begin)
            ends.append(total - begin)
        pads = begins + ends
    elif auto_pad == "VALID" or not pads:
        pads = [0] * (2 * nsp)
    pads = list(pads)
    if nsp == 1:
        x4 = _reshape(b, x, xs[:2] + (1,) + xs[2:])
        w4 = _reshape(b, w, ws[:2] + (1,) + ws[2:])
        y = _conv_transpose_2d(b, x4, w4, bias, (1, strides[0]), (1, dilations[0]),
                               (0, pads[0], 0, pads[1]), (0, opad[0]), int(group))
        ys = b.shape(y)
        return [_reshape(b, y, ys[:2] + ys[3:])]
    return [_conv_transpose_2d(b, x, w, bias, strides, dilations, pads, opad, int(group))]


def _conv_transpose_2d(b: Builder, x, w, bias, strides, dilations, pads, opad, group) -> str:
    """ConvTranspose as the Conv it is: insert (stride - 1) zeros between input pixels, pad by
    dilation * (kernel - 1) minus the transposed pads (cropping where that is negative), and
    convolve with the kernel flipped and its in/out channels swapped per group. The Conv then
    runs on the optimised Conv template; the weight rewrite folds for constant weights."""
    n, c, h, wd = b.shape(x)
    cw, mg, kh, kw = b.shape(w)
    if cw != c or c % group:
        raise b.error(f"W has {cw} input channels, X has {c} (group {group})")
    (sh, sw), (dh, dw) = strides, dilations
    if sh > 1 or sw > 1:
        # (N, C, H, 1, W, 1) padded to (N, C, H, sh, W, sw) puts the zeros after each pixel.
        t = _reshape(b, x, (n, c, h, 1, wd, 1))
        t = b.emit("Pad", [t], {"pads": (0, 0, 0, 0, 0, 0, 0, 0, 0, sh - 1, 0, sw - 1),
                                "mode": "constant", "value": 0.0})[0]
        t = _reshape(b, t, (n, c, h * sh, wd * sw))
        x = b.emit("Slice", [t], {"starts": (0, 0, 0, 0),
                                  "ends": (n, c, (h - 1) * sh + 1, (wd - 1) * sw + 1),
                                  "steps": (1, 1, 1, 1)})[0]
    cg = c // group
    wt = _reshape(b, w, (group, cg, mg, kh, kw))
    wt = b.emit("Transpose", [wt], {"perm": (0, 2, 1, 3, 4)})[0]
    wt = _reshape(b, wt, (group * mg, cg, kh, kw))
    wt = b.emit("Slice", [wt], {"starts": (0, 0, kh - 1, kw - 1), "ends": (group * mg, cg, -1, -1),
                                "steps": (1, 1, -1, -1)})[0]
    begin = [dh * (kh - 1) - pads[0], dw * (kw - 1) - pads[1]]
    end = [dh * (kh - 1) - pads[2] + opad[0], dw * (kw - 1) - pads[3] + opad[1]]
    if min(begin + end) < 0:  # transposed pads larger than the kernel reach: crop instead
        xs = b.shape(x)
        starts = (0, 0, max(0, -begin[0]), max(0, -begin[1]))
        ends = (xs[0], xs[1], xs[2] - max(0, -end[0]), xs[3] - max(0, -end[1]))
        x = b.emit("Slice", [x], {"starts": starts, "ends": ends, "steps": (1, 1, 1, 1)})[0]
        begin, end = [max(0, v) for v in begin], [max(0, v) for v in end]
    attrs = {"strides": (1, 1), "dilations": (dh, dw), "pads": (begin[0], begin[1], end[0], end[1]),
             "group": group}
    return b.emit("Conv", [x, wt] + ([bias] if bias else []), attrs)[0]

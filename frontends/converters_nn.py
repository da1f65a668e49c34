"""ONNX converters for transformer/NN ops, recurrent ops and constant control flow.

Same conventions as onnx_converters.py: one function per ONNX op, attributes as keywords,
canonical nodes (docs/ops.md) emitted through the Builder. Ops ONNX defines as compositions
(DepthToSpace, SpaceToDepth, Einsum, Upsample, InstanceNormalization) lower to existing
canonical ops here; If with a constant condition and Loop with a constant trip count are
inlined/unrolled so the compiled graph stays a static dataflow graph.
"""

from __future__ import annotations

import numpy as np

from .onnx_builder import Builder, converter
from .onnx_converters import _axis, _reshape

# ---- normalisations and activations ---------------------------------------------------


@converter("LayerNormalization", 17)
def LayerNormalization(b, ins, n_out, *, axis=-1, epsilon=1e-5, stash_type=1):
    if n_out > 1:
        raise b.error("the Mean and InvStdDev outputs are training-only and not supported; "
                      "use only the first output")
    x = ins[0]
    axis = _axis(b, axis, len(b.shape(x)))
    inputs = [x, ins[1]] + ([ins[2]] if len(ins) > 2 and ins[2] else [])
    return b.emit("LayerNormalization", inputs, {"axis": axis, "epsilon": float(epsilon)})


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


@converter("Selu", 1, 6)
def Selu(b, ins, n_out, *, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875,
         **_legacy):
    return b.emit("Selu", [ins[0]], {"alpha": float(alpha), "gamma": float(gamma)})


@converter("Celu", 12)
def Celu(b, ins, n_out, *, alpha=1.0):
    return b.emit("Celu", [ins[0]], {"alpha": float(alpha)})


@converter("ThresholdedRelu", 10)
def ThresholdedRelu(b, ins, n_out, *, alpha=1.0):
    return b.emit("ThresholdedRelu", [ins[0]], {"alpha": float(alpha)})


@converter("Mish", 18)
def Mish(b, ins, n_out):
    return b.emit("Mish", [ins[0]])


@converter("Softsign", 1)
def Softsign(b, ins, n_out):
    return b.emit("Softsign", [ins[0]])


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
def SpaceToDepth(b, ins, n_out, *, blocksize):
    x = ins[0]
    n, c, h, w = b.shape(x)
    s = int(blocksize)
    if h % s or w % s:
        raise b.error(f"spatial dims {h}x{w} are not divisible by blocksize {s}")
    t = _reshape(b, x, (n, c, h // s, s, w // s, s))
    t = b.emit("Transpose", [t], {"perm": (0, 3, 5, 1, 2, 4)})[0]
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
    for t in out_terms:
        if len(set(t)) != len(t):
            raise b.error(f"einsum term {t!r} repeats a letter (diagonals) which is not supported")
    return out_terms, rhs


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
    if layout:
        raise b.error("layout=1 (batch-major) is not supported; export with layout=0 "
                      "(time-major, the default)")
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
        lens = b.const(ins[4])
        if lens is None or not (np.asarray(lens) == t).all():
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
    inputs = [x, w, ins[2], opt(3, (ndir, 2 * GATES[op] * hid)), opt(5, (ndir, batch, hid))]
    if op == "LSTM":
        inputs += [opt(6, (ndir, batch, hid)), opt(7, (ndir, 3 * hid))]
    attrs = {"hidden_size": hid, "direction": direction, "activations": names,
             "activation_alpha": tuple(float(v) for v in activation_alpha or ()),
             "activation_beta": tuple(float(v) for v in activation_beta or ()),
             "clip": float(clip) if clip is not None else float("inf"), **extra}
    outs = b.emit(op, inputs, attrs, n_out=3 if op == "LSTM" else 2)
    return outs[:max(n_out, 1)]


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

"""Normalisations and extra activations as tensor expressions.

LayerNormalization and GroupNormalization are one kernel each: a mean reduction, a variance
reduction over the centred input, and the normalising epilogue. The two statistics are read at
broadcast indices, so the scheduler keeps each as its own small stage (one row of statistics per
reduction row) inside the same kernel: three passes over a row, no extra graph-level buffers.
"""

from __future__ import annotations

import math

from .. import te
from ..expr import call, cmp, const, maximum, minimum, select
from .common import broadcast_load
from .registry import register_compute, register_schedule


def _f(x, v):
    return const(v, x.dtype)


LANES = 16  # partial sums per row: one AVX-512 fp32 vector, two AVX2/NEON-pair vectors


def _row_stat(x, lead, tail, name, term, epilogue=lambda v: v):
    """epilogue(sum over the tail of term(x element, lead index) / count), per lead index.

    When the last tail dim splits into LANES columns, the sum runs in two stages: LANES partial
    sums per row (their loads are contiguous along the row, so the stage vectorises over the
    lanes) and then a 16-term sum per row. Otherwise it is one plain reduction."""
    count = math.prod(tail)
    inv = const(1.0 / count, x.dtype)
    last = tail[-1]
    if last % LANES or last == LANES:
        r = [te.reduce_axis(e, f"r{k}") for k, e in enumerate(tail)]
        return te.compute(lead, lambda *i: epilogue(
            te.sum(term(x[tuple(i) + tuple(r)], i), axis=r) * inv), name=name)
    r = [te.reduce_axis(e, f"r{k}") for k, e in enumerate(tail[:-1])]
    rk = te.reduce_axis(last // LANES, "rk")

    def part(*i):
        head, lane = i[:-1], i[-1]
        v = x[tuple(head) + tuple(r) + (rk * LANES + lane,)]
        return te.sum(term(v, head), axis=r + [rk])
    partial = te.compute(lead + (LANES,), part, name=f"{name}_part")
    rl = te.reduce_axis(LANES, "rl")
    return te.compute(lead, lambda *i: epilogue(te.sum(partial[tuple(i) + (rl,)], axis=rl) * inv),
                      name=name)


@register_compute("LayerNormalization")
def layer_norm(inputs, attrs, out_types):
    x, scale = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    ax = attrs["axis"]
    lead, tail = x.shape[:ax], x.shape[ax:]
    mean = _row_stat(x, lead, tail, "ln_mean", lambda v, i: v)

    def centred_sq(v, i):
        d = v - mean[tuple(i)]
        return d * d
    eps = const(attrs["epsilon"], x.dtype)
    # 1 / sqrt(var + eps) once per row, in the variance reduction's epilogue.
    rstd = _row_stat(x, lead, tail, "ln_rstd", centred_sq,
                     lambda v: const(1.0, x.dtype) / call("sqrt", v + eps))

    def f(*i):
        head, rest = i[:ax], i[ax:]
        y = (x[i] - mean[head]) * rstd[head]
        y = y * broadcast_load(scale, tail, rest)
        if bias is not None:
            y = y + broadcast_load(bias, tail, rest)
        return y
    return [te.compute(x.shape, f, name="layernorm", tag="norm")]


@register_compute("GroupNormalization")
def group_norm(inputs, attrs, out_types):
    x, scale, bias = inputs
    n, c = x.shape[:2]
    sp = x.shape[2:]
    g = attrs["groups"]
    cg = c // g
    inv = const(1.0 / (cg * math.prod(sp)), x.dtype)

    def raxes():
        return [te.reduce_axis(cg, "rc")] + [te.reduce_axis(e, f"rs{k}") for k, e in enumerate(sp)]

    r1 = raxes()
    mean = te.compute((n, g), lambda b, k: te.sum(x[(b, k * cg + r1[0]) + tuple(r1[1:])], axis=r1)
                      * inv, name="gn_mean")
    r2 = raxes()

    def var(b, k):
        d = x[(b, k * cg + r2[0]) + tuple(r2[1:])] - mean[b, k]
        return te.sum(d * d, axis=r2) * inv
    var_t = te.compute((n, g), var, name="gn_var")
    eps = const(attrs["epsilon"], x.dtype)

    def f(b, ch, *rest):
        k = ch // cg if cg > 1 else ch
        y = (x[(b, ch) + rest] - mean[b, k]) / call("sqrt", var_t[b, k] + eps)
        return y * scale[ch] + bias[ch]
    return [te.compute(x.shape, f, name="groupnorm", tag="norm")]


# Below this many input elements a normalisation kernel runs serially: its three stages would
# each wake the thread pool, and for transformer-sized rows (e.g. 128 x 256) those wake-ups
# cost several times the passes themselves.
NORM_PARALLEL_MIN = 1 << 18


def _norm_schedule(sch, stage, target, cfg=None):
    from .generic import schedule_default
    serial = math.prod(stage.tensor.shape) < NORM_PARALLEL_MIN
    for st in sch.root_stages():
        schedule_default(st, target)
        if serial:
            st.annot = {iv: k for iv, k in st.annot.items() if k != "parallel"}


register_schedule("LayerNormalization")(_norm_schedule)
register_schedule("GroupNormalization")(_norm_schedule)


# erf(x) ~= x * P(x^2) / Q(x^2) on [-4, 4] (clamped outside; erf(4) = 1 - 1.5e-8). Coefficients
# fitted for tilecc by iteratively reweighted least squares on 20,000 points of [0, 4] against
# math.erf; max abs error 2.2e-7 in float64, 5e-7 evaluated in float32. Unlike a libm erff
# call it is plain arithmetic, so Gelu's loop vectorises.
_ERF_P = (1.1283791065216064, 0.2000434845685959, 0.05057508125901222, 0.0036998384166508913,
          0.0001412652200087905, -1.9421870547375875e-06, 1.967192275742491e-08)
_ERF_Q = (1.0, 0.5106157064437866, 0.1150345727801323, 0.01435406319797039,
          0.000953921873588115)


def _horner(z, coeffs):
    acc = _f(z, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = acc * z + _f(z, c)
    return acc


def erf_rational(x):
    xc = maximum(minimum(x, _f(x, 4.0)), _f(x, -4.0))
    z = xc * xc
    return xc * _horner(z, _ERF_P) / _horner(z, _ERF_Q)


def _gelu(x, a):
    half, one = _f(x, 0.5), _f(x, 1.0)
    if a["approximate"] == "tanh":
        inner = _f(x, math.sqrt(2 / math.pi)) * (x + _f(x, 0.044715) * x * x * x)
        return half * x * (one + call("tanh", inner))
    return half * x * (one + erf_rational(x * _f(x, 1 / math.sqrt(2))))


def _softplus(x):
    return maximum(x, _f(x, 0)) + call("log", _f(x, 1) + call("exp", -call("fabs", x)))


def _expm1_neg(x, scale):
    """exp(min(x, 0) * scale) - 1: the negative branch of Elu-like activations, never
    overflowing in the arm that is not selected."""
    return call("exp", minimum(x, _f(x, 0)) * _f(x, scale)) - _f(x, 1)


ACTIVATIONS = {
    "Gelu": _gelu,
}


def _act(op):
    fn = ACTIVATIONS[op]

    def compute(inputs, attrs, out_types):
        (x,) = inputs
        return [te.compute(x.shape, lambda *i: fn(x[i], attrs), name=op.lower(),
                           tag="elemwise")]
    return compute


for _op in ACTIVATIONS:
    register_compute(_op)(_act(_op))


@register_compute("PRelu")
def prelu(inputs, attrs, out_types):
    x, s = inputs
    shape = x.shape

    def f(*i):
        v = x[i]
        return select(cmp("lt", v, _f(v, 0)), v * broadcast_load(s, shape, i), v)
    return [te.compute(shape, f, name="prelu", tag="elemwise")]

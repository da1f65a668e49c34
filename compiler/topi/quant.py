"""Integer kernels as tensor expressions: QConv and QGemm (compiler/ops/quant.py has the
semantics). The int32 reduction and the requantization epilogue are one compute body, so the
accumulator never leaves registers: int8 x int8 products widen to int32, sum, add the folded
bias, scale in float32, round half to even, add the output zero point, saturate.

The loop nests are the float templates' (output channels or pixels as vector lanes, register
blocked accumulators): the TE has the same axes, so compiler/topi/nn.py's schedules apply.
"""

from __future__ import annotations

from .. import te
from ..expr import Bin, all_of, call, cast, const, maximum, minimum, select
from ..ops.quant import QRANGE
from .common import in_range
from .nn import _conv_knobs, _matmul_knobs, _schedule_matmul_like, pad_nchw, schedule_conv2d
from .registry import register_compute, register_schedule

VNNI_BLOCK = 16  # output channels per packed weight vector (one zmm of int32 lanes)


def _requant(acc, scale_v, attrs):
    out = attrs["out_dtype"]
    if out == "int32":
        return acc
    v = cast("float32", acc) * scale_v
    if out == "float32":
        return maximum(v, const(0.0)) if attrs.get("relu") else v
    lo, hi = QRANGE[out]
    zp = attrs.get("y_zp", 0)
    if attrs.get("relu"):
        lo = max(lo, zp)
    r = call("round", v) + const(float(zp))
    r = minimum(maximum(r, const(float(lo))), const(float(hi)))
    return cast(out, r)


@register_compute("QConv")
def qconv2d(inputs, attrs, out_types):
    x, w, bias, scale = inputs
    if attrs.get("vnni"):
        return _qconv_vnni(x, w, bias, scale, attrs, out_types)
    sh, sw = attrs["strides"]
    dh, dw = attrs["dilations"]
    G = attrs["group"]
    ob = attrs.get("weight_block", 0)
    # Packed weights are (OC/ob, ICg, KH, KW, ob), OC zero-padded up to a multiple of ob.
    ICg, KH, KW = w.shape[1:4]
    N, OC, OH, OW = out_types[0].shape
    OCg = OC // G
    xp = pad_nchw(x, attrs["pads"], attrs.get("x_zp", 0))
    rc, ry, rx = te.reduce_axis(ICg, "rc"), te.reduce_axis(KH, "ry"), te.reduce_axis(KW, "rx")

    def f(n, oc, oh, ow):
        c = (oc // OCg) * ICg + rc if G > 1 else rc
        wv = w[oc // ob, rc, ry, rx, oc % ob] if ob else w[oc, rc, ry, rx]
        xv = xp[n, c, oh * sh + ry * dh, ow * sw + rx * dw]
        acc = te.sum(cast("int32", xv) * cast("int32", wv), axis=[rc, ry, rx])
        return _requant(acc + bias[oc], scale[oc], attrs)

    pointwise = (KH, KW) == (1, 1) and (sh, sw) == (1, 1) and not any(attrs["pads"]) and G == 1
    return [te.compute((N, OC, OH, OW), f, name="qconv2d", tag="conv2d",
                       attrs={"weight_block": ob, "pointwise": pointwise})]


register_schedule("QConv", knobs=_conv_knobs, version=1)(schedule_conv2d)


@register_compute("QGemm")
def qgemm(inputs, attrs, out_types):
    a, b, bias, scale = inputs
    if attrs.get("vnni"):
        return _qgemm_vnni(a, b, bias, scale, attrs, out_types)
    M, N = out_types[0].shape
    k = te.reduce_axis(a.shape[1], "k")

    def f(i, j):
        acc = te.sum(cast("int32", a[i, k]) * cast("int32", b[k, j]), axis=k)
        return _requant(acc + bias[j], scale[j], attrs)

    return [te.compute((M, N), f, name="qgemm", tag="gemm")]


register_schedule("QGemm", knobs=_matmul_knobs, version=2)(
    lambda sch, stage, target, cfg=None: _qgemm_schedule(sch, stage, target, cfg))


# ---- VNNI (u8 x s8 dot products of four reduction elements per int32 lane) ----------------


def _pack4(get, ic: int, flip: bool = False):
    """int32 whose byte k is get(4 * c4 + k) as uint8 (channels past `ic` read the zero point:
    their packed weights are zero, so any in-range value would do). With `flip` each byte is
    XOR 0x80 (x - 128 as int8), for targets whose dot is signed x signed (see x_flip)."""
    def f(c4):
        word = None
        for k in range(4):
            c = c4 * 4 + k
            v = cast("int32", get(c, in_range(c, 0, ic)))
            if flip:
                v = Bin("mod", v + const(128, "int32"), const(256, "int32"))
            v = v if k == 0 else Bin("shl", v, const(8 * k, "int32"))
            word = v if word is None else Bin("or", word, v)
        return word
    return f


def _dot4(attrs) -> str:
    """The packed dot call: x_flip (passes/quant_pack.py: pack_qweights) means the activations
    enter as int8 x - 128 and the bias already holds the +128 * sum(w) that gives back."""
    if attrs.get("dot"):  # dot4_u8s7: 7-bit weights (passes/quant_dot.py)
        return attrs["dot"]
    return "dot4_s8s8" if attrs.get("x_flip") else "dot4_u8s8"


def _qconv_vnni(x, w, bias, scale, attrs, out_types):
    """QConv with weights packed (OC/16, ceil(IC/4), KH, KW, 16) int32 (4 input channels of
    int8 per lane, passes/quant_pack.py: pack_qweights): the input is padded and packed into
    (N, ceil(IC/4), Hp, Wp) int32 words once, then every reduction step is one dot4 per
    output channel lane. Groups are not packed this way (group == 1 only)."""
    sh, sw = attrs["strides"]
    dh, dw = attrs["dilations"]
    ob = attrs["weight_block"]
    IC4, KH, KW = w.shape[1:4]
    N, C, H, W = x.shape
    _, OC, OH, OW = out_types[0].shape
    zp = attrs.get("x_zp", 0)
    t, lf, b, r = attrs["pads"]
    zpc = const(zp, x.dtype)

    def xpack(n, c4, h, ww):
        hh, wi = h - t, ww - lf

        def get(c, c_ok):
            cond = all_of(c_ok, in_range(hh, 0, H), in_range(wi, 0, W))
            return select(cond, x[n, c, hh, wi], zpc)
        return _pack4(get, C, attrs.get("x_flip", False))(c4)

    xq = te.compute((N, IC4, H + t + b, W + lf + r), xpack, name="xpack4", tag="pad")
    rc, ry, rx = te.reduce_axis(IC4, "rc"), te.reduce_axis(KH, "ry"), te.reduce_axis(KW, "rx")

    def f(n, oc, oh, ow):
        xv = xq[n, rc, oh * sh + ry * dh, ow * sw + rx * dw]
        acc = te.sum(call(_dot4(attrs), xv, w[oc // ob, rc, ry, rx, oc % ob], dtype="int32"),
                     axis=[rc, ry, rx])
        return _requant(acc + bias[oc], scale[oc], attrs)

    return [te.compute((N, OC, OH, OW), f, name="qconv2d_vnni", tag="conv2d",
                       attrs={"weight_block": ob, "pointwise": False})]


def _qgemm_vnni(a, b, bias, scale, attrs, out_types):
    """QGemm with B packed (N/nb, ceil(K/4), nb) int32 panels; A's rows are packed into
    int32 words of four uint8 once."""
    M, N = out_types[0].shape
    K = a.shape[1]
    nb = attrs["b_block"]
    K4 = b.shape[1]
    zp = const(attrs.get("x_zp", 0), a.dtype)

    def apack(i, k4):
        return _pack4(lambda c, ok: select(ok, a[i, c], zp), K, attrs.get("x_flip", False))(k4)

    aq = te.compute((M, K4), apack, name="apack4", tag="pad")
    k = te.reduce_axis(K4, "k")

    def f(i, j):
        acc = te.sum(call(_dot4(attrs), aq[i, k], b[j // nb, k, j % nb], dtype="int32"),
                     axis=k)
        return _requant(acc + bias[j], scale[j], attrs)

    return [te.compute((M, N), f, name="qgemm_vnni", tag="gemm", attrs={"b_block": nb})]


def _qgemm_schedule(sch, stage, target, cfg=None):
    from .nn import _materialize_pads
    _materialize_pads(sch, target)
    _schedule_matmul_like(stage, target, cfg)

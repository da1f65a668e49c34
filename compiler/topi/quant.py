"""Integer kernels as tensor expressions: QConv and QGemm (compiler/ops/quant.py has the
semantics). The int32 reduction and the requantization epilogue are one compute body, so the
accumulator never leaves registers: int8 x int8 products widen to int32, sum, add the folded
bias, scale in float32, round half to even, add the output zero point, saturate.

The loop nests are the float templates' (output channels or pixels as vector lanes, register
blocked accumulators): the TE has the same axes, so compiler/topi/nn.py's schedules apply.
"""

from __future__ import annotations

from .. import te
from ..expr import call, cast, const, maximum, minimum
from ..ops.quant import QRANGE
from .nn import _conv_knobs, _matmul_knobs, _schedule_matmul_like, pad_nchw, schedule_conv2d
from .registry import register_compute, register_schedule


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
    sh, sw = attrs["strides"]
    dh, dw = attrs["dilations"]
    G = attrs["group"]
    ob = attrs.get("weight_block", 0)
    if ob:
        ICg, KH, KW = w.shape[1:4]
        OC = w.shape[0] * ob
    else:
        OC, ICg, KH, KW = w.shape
    N, _, OH, OW = out_types[0].shape
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
    M, N = out_types[0].shape
    k = te.reduce_axis(a.shape[1], "k")

    def f(i, j):
        acc = te.sum(cast("int32", a[i, k]) * cast("int32", b[k, j]), axis=k)
        return _requant(acc + bias[j], scale[j], attrs)

    return [te.compute((M, N), f, name="qgemm", tag="gemm")]


register_schedule("QGemm", knobs=_matmul_knobs)(
    lambda sch, stage, target, cfg=None: _schedule_matmul_like(stage, target, cfg))

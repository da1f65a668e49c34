"""Depthwise QConv (QDWConv) on CPUs. Each input element of a depthwise convolution is read
KH * KW times and vectors run along output width: on uint8 data those are 5- or 6-wide byte
vectors, which LLVM assembles byte by byte (MobileNet's 96x6x6 depthwise QConv took 75 us
where fp32 takes 2). Here the padded input is first widened to an int32 scratch copy, so the
reduction reads int32 vectors, multiplies and adds as QConv does, and ends in the same
requantization epilogue (exact: 9 products of 255 * 128 fit int32 easily)."""

from __future__ import annotations

from .. import te
from ..expr import all_of, cast, const, select
from .common import in_range
from .nn import _conv_knobs, _materialize_pads, _schedule_conv_ow_vector
from .quant import _requant
from .registry import register_compute, register_schedule


@register_compute("QDWConv")
def qdwconv2d(inputs, attrs, out_types):
    x, w, bias, scale = inputs
    sh, sw = attrs["strides"]
    dh, dw = attrs["dilations"]
    t, lf, b, r = attrs["pads"]
    N, C, H, W = x.shape
    KH, KW = w.shape[2:4]
    zp = const(attrs.get("x_zp", 0), x.dtype)

    def widen(n, c, h, ww):
        hh, wi = h - t, ww - lf
        return cast("int32", select(all_of(in_range(hh, 0, H), in_range(wi, 0, W)),
                                    x[n, c, hh, wi], zp))

    xw = te.compute((N, C, H + t + b, W + lf + r), widen, name="xwiden", tag="pad")
    rc, ry, rx = te.reduce_axis(1, "rc"), te.reduce_axis(KH, "ry"), te.reduce_axis(KW, "rx")

    def f(n, oc, oh, ow):
        xv = xw[n, oc + rc, oh * sh + ry * dh, ow * sw + rx * dw]
        acc = te.sum(xv * cast("int32", w[oc, rc, ry, rx]), axis=[rc, ry, rx])
        return _requant(acc + bias[oc], scale[oc], attrs)

    return [te.compute(out_types[0].shape, f, name="qdwconv2d", tag="conv2d",
                       attrs={"weight_block": 0, "pointwise": False})]


@register_schedule("QDWConv", knobs=_conv_knobs, version=1)
def schedule_qdwconv(sch, stage, target, cfg=None):
    _materialize_pads(sch, target)
    _schedule_conv_ow_vector(stage, target, cfg)

"""Depthwise QConv (QDWConv) on CPUs. Each input element of a depthwise convolution is read
KH * KW times and vectors run along output width: on uint8 data those are 5- or 6-wide byte
vectors, which LLVM assembles byte by byte (MobileNet's 96x6x6 depthwise QConv took 75 us
where fp32 takes 2). Here the padded input is first widened to a channels-last int32 scratch
copy, so the reduction reads int32 vectors along channels, multiplies and adds as QConv does,
and ends in the same requantization epilogue (exact: 9 products of 255 * 128 fit int32).
ds_cnn_kws's 64x25x5 layer: 20 us with vectors along width, 14 us so; blocked fp32 is 2.5 us,
which is why PTQ leaves depthwise convs fp32 on CPUs by default (QuantOptions.depthwise).
With attrs["widen"] false (bare metal, where the arena is what runs out) the reduction reads
the uint8 NCHW input in place, the padding as the input zero point."""

from __future__ import annotations

from .. import te
from ..expr import all_of, cast, const, select
from .common import in_range
from .nn import _materialize_pads
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

    def widen(n, h, ww, c):
        hh, wi = h - t, ww - lf
        return cast("int32", select(all_of(in_range(hh, 0, H), in_range(wi, 0, W)),
                                    x[n, c, hh, wi], zp))

    rc, ry, rx = te.reduce_axis(1, "rc"), te.reduce_axis(KH, "ry"), te.reduce_axis(KW, "rx")
    if not attrs.get("widen", True):
        def direct(n, oc, oh, ow):
            xv = widen(n, oh * sh + ry * dh, ow * sw + rx * dw, oc + rc)
            acc = te.sum(xv * cast("int32", w[oc + rc, 0, ry, rx]), axis=[rc, ry, rx])
            return _requant(acc + bias[oc], scale[oc], attrs)

        return [te.compute(out_types[0].shape, direct, name="qdwconv2d", tag="conv2d",
                           attrs={"weight_block": 0, "pointwise": False})]
    # Channels last in both scratch copies: the reduction's vectors run along channels.
    xw = te.compute((N, H + t + b, W + lf + r, C), widen, name="xwiden", tag="pad")
    ww_ = te.compute((KH, KW, C), lambda y, z, c: cast("int32", w[c, 0, y, z]),
                     name="wwiden", tag="pad")

    def f(n, oc, oh, ow):
        xv = xw[n, oh * sh + ry * dh, ow * sw + rx * dw, oc + rc]
        acc = te.sum(xv * ww_[ry, rx, oc], axis=[rc, ry, rx])
        return _requant(acc + bias[oc], scale[oc], attrs)

    return [te.compute(out_types[0].shape, f, name="qdwconv2d", tag="conv2d",
                       attrs={"weight_block": 0, "pointwise": False})]


@register_schedule("QDWConv", version=2)
def schedule_qdwconv(sch, stage, target, cfg=None):
    """Output channels as vector lanes over a short row of output pixels (accumulators in
    registers); the NCHW output is then stored lane by lane, which costs far less than
    byte-assembled pixel vectors in the reduction."""
    _materialize_pads(sch, target)
    n, oc, oh, ow = stage.axes
    lanes = target.lanes(4)
    oco, oci = stage.split(oc, lanes) if oc.extent % lanes == 0 else (None, oc)
    tile = next(f for f in (6, 5, 4, 3, 2, 1) if ow.extent % f == 0)
    owo, owi = stage.split(ow, tile)
    rc, ry, rx = stage.reduce_axes
    order = [n, oh, owo] + ([oco] if oco is not None else []) + [rc, ry, rx, owi, oci]
    stage.reorder(*order)
    stage.unroll(rx)
    stage.unroll(owi)
    if oci.extent > 1:
        stage.vectorize(oci)


"""Resize (tap tables, see compiler/ops/image.py) and ConvTranspose as tensor expressions."""

from __future__ import annotations

from .. import te
from ..expr import all_of, cast, cmp, const, select
from .common import clamp, in_range
from .registry import register_compute


@register_compute("Resize")
def resize(inputs, attrs, out_types):
    x = inputs[0]
    r = x.ndim
    idx, ws = inputs[1::2], inputs[2::2]
    taps = [te.reduce_axis(i.shape[1], f"t{d}") if i.shape[1] > 1 else None
            for d, i in enumerate(idx)]
    marks = attrs["coordinate_transformation_mode"] == "tf_crop_and_resize"
    float_out = x.dtype.startswith("float")

    def f(*o):
        src, weight, valid = [], None, []
        for d in range(r):
            k = taps[d] if taps[d] is not None else const(0)
            i = idx[d][o[d], k]
            # An outside sample has -1 in every tap of its row: test tap 0, outside the sum.
            valid.append(cmp("ge", idx[d][o[d], const(0)], const(0, "int64")))
            src.append(clamp(i, 0, x.shape[d] - 1))
            if taps[d] is not None:
                wd = ws[d][o[d], k]
                weight = wd if weight is None else weight * wd
        v = x[tuple(src)]
        if not float_out:
            v = cast("float32", v)
        if weight is not None:
            v = v * cast(v.dtype, weight)
        red = [t for t in taps if t is not None]
        y = te.sum(v, axis=red) if red else v
        if marks:
            y = select(all_of(*valid), y, const(attrs["extrapolation_value"], y.dtype))
        if not float_out:
            y = cast(x.dtype, y)
        return y

    return [te.compute(out_types[0].shape, f, name="resize", tag="resize")]


@register_compute("ConvTranspose")
def conv_transpose(inputs, attrs, out_types):
    x, w = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    _, c, h, wd = x.shape
    _, mg, kh, kw = w.shape
    g = attrs["group"]
    cg = c // g
    (sh, sw), (dh, dw) = attrs["strides"], attrs["dilations"]
    pt, pl = attrs["pads"][0], attrs["pads"][1]
    rc, ry, rx = te.reduce_axis(cg, "rc"), te.reduce_axis(kh, "ry"), te.reduce_axis(kw, "rx")

    def f(b, m, oh, ow):
        ch = (m // mg) * cg + rc if g > 1 else rc
        # Output row oh takes input row ih where ih * sh + ry * dh = oh + pt.
        th, tw = oh + pt - ry * dh, ow + pl - rx * dw
        ih, iw = th // sh, tw // sw
        ok = [in_range(ih, 0, h), in_range(iw, 0, wd)]
        if sh > 1:
            ok.append(cmp("eq", th % sh, const(0)))
        if sw > 1:
            ok.append(cmp("eq", tw % sw, const(0)))
        v = x[b, ch, clamp(ih, 0, h - 1), clamp(iw, 0, wd - 1)] * w[ch, m % mg if g > 1 else m,
                                                                    ry, rx]
        s = te.sum(select(all_of(*ok), v, const(0.0, x.dtype)), axis=[rc, ry, rx])
        return s + bias[m] if bias is not None else s

    return [te.compute(out_types[0].shape, f, name="convtranspose", tag="convtranspose")]

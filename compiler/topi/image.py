"""Resize (tap tables, see compiler/ops/image.py) as a tensor expression."""

from __future__ import annotations

from .. import te
from ..expr import all_of, cast, cmp, const, select
from .common import clamp
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

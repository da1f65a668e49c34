"""MaxPoolIndices (compiler/ops/pool.py): a min-reduction over the window of the flat index
of every element equal to the pooled maximum, so ties pick the first element."""

from __future__ import annotations

from .. import te
from ..expr import INDEX, cmp, const, select
from .nn import _pool_out_padding, pad_nchw
from .registry import register_compute


@register_compute("MaxPoolIndices")
def max_pool_indices(inputs, attrs, out_types):
    x, y = inputs
    N, C, OH, OW = out_types[0].shape
    H, W = x.shape[2:]
    kh, kw = attrs["kernel"]
    sh, sw = attrs["strides"]
    dh, dw = attrs.get("dilations", (1, 1))
    t, lf = attrs["pads"][:2]
    lowest = float("-inf") if x.dtype.startswith("float") else -(2 ** 31)
    xp = pad_nchw(x, attrs["pads"], lowest, _pool_out_padding(attrs, (H, W), (OH, OW)))
    ry, rx = te.reduce_axis(kh, "ry"), te.reduce_axis(kw, "rx")
    never = N * C * H * W  # larger than every flat index

    def f(n, c, oh, ow):
        hp, wp = oh * sh + ry * dh, ow * sw + rx * dw
        h, w = hp - t, wp - lf
        if attrs.get("storage_order", 0):
            flat = (n * C + c) * (H * W) + w * H + h
        else:
            flat = ((n * C + c) * H + h) * W + w
        hit = cmp("eq", xp[n, c, hp, wp], y[n, c, oh, ow])
        return te.min(select(hit, flat, const(never, INDEX)), axis=[ry, rx])

    return [te.compute((N, C, OH, OW), f, name="maxpool_indices", tag="pool")]

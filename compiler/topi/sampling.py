"""GridSample (compiler/ops/sampling.py) as one tensor expression.

Every output element is a weighted sum over the interpolation taps of each spatial dim (1 for
nearest, 2 for linear, 4 for cubic), written as a reduction over one tap axis per dim, so the
expression stays one load per tap whatever the rank. Coordinates are computed in float32 like
the ONNX reference: denormalise, (nearest) round half to even, then move out-of-range
coordinates by the padding mode; every tap index is handled again by the padding mode (zeros:
0 outside; border: clamp; reflection: mirror at the borders).
"""

from __future__ import annotations

from .. import te
from ..expr import INDEX, all_of, call, cast, cmp, const, maximum, minimum, select
from .common import clamp, in_range
from .registry import register_compute

F32 = "float32"
CUBIC_A = -0.75  # the Keys kernel GridSample fixes (PyTorch's)


def _f(v) -> object:
    return const(float(v), F32)


def _reflect(x, lo: float, hi: float):
    """Mirror x into [lo, hi] by folding at the borders as often as needed (float32)."""
    span = hi - lo
    if span <= 0:
        return _f(lo)

    def fold(dist):
        """(remainder, whether an even number of whole spans was folded away)."""
        n = call("floor", dist / _f(span))
        even = cmp("eq", n - _f(2) * call("floor", n / _f(2)), _f(0))
        return dist - n * _f(span), even

    rb, eb = fold(_f(lo) - x)
    ra, ea = fold(x - _f(hi))
    below = select(eb, _f(lo) + rb, _f(hi) - rb)
    above = select(ea, _f(hi) - ra, _f(lo) + ra)
    return select(cmp("lt", x, _f(lo)), below, select(cmp("gt", x, _f(hi)), above, x))


def _cubic_weight(t, k):
    """Keys cubic weight of tap k (offset k - 1 from floor(x)) at fraction t."""
    a = CUBIC_A

    def near(u):
        return ((_f(a + 2) * u - _f(a + 3)) * u) * u + _f(1)

    def far(u):
        return ((_f(a) * u - _f(5 * a)) * u + _f(8 * a)) * u - _f(4 * a)

    one = _f(1)
    w = select(cmp("eq", k, const(0)), far(t + one), near(t))
    w = select(cmp("eq", k, const(2)), near(one - t), w)
    return select(cmp("eq", k, const(3)), far(_f(2) - t), w)


@register_compute("GridSample")
def grid_sample(inputs, attrs, out_types):
    x, grid = inputs
    sizes = x.shape[2:]
    r = len(sizes)
    mode, pad, align = attrs["mode"], attrs["padding_mode"], bool(attrs["align_corners"])
    ntap = {"nearest": 1, "linear": 2, "cubic": 4}[mode]
    taps = [te.reduce_axis(ntap, f"t{d}") for d in range(r)] if ntap > 1 else []
    bounds = [(0.0, s - 1.0) if align else (-0.5, s - 0.5) for s in sizes]

    def coord(n, o, d):
        g = grid[(n,) + tuple(o) + (const(r - 1 - d),)]
        g = g if g.dtype == F32 else cast(F32, g)
        s = sizes[d]
        v = (g + _f(1)) / _f(2) * _f(s - 1) if align else ((g + _f(1)) * _f(s) - _f(1)) / _f(2)
        if mode == "nearest":
            v = call("round", v)
        lo, hi = bounds[d]
        if pad == "border":
            out = all_of(cmp("ge", v, _f(lo)), cmp("le", v, _f(hi)))
            v = select(out, v, minimum(maximum(v, _f(0)), _f(s - 1)))
        elif pad == "reflection":
            v = _reflect(v, lo, hi)
        return v

    def tap_index(fi, d):
        """(index, in-range condition or None) of the float tap position fi on dim d."""
        s = sizes[d]
        if pad == "reflection":
            fi = _reflect(fi, *bounds[d])
        i = cast(INDEX, fi)
        if pad == "zeros":
            return clamp(i, 0, s - 1), in_range(i, 0, s)
        return clamp(i, 0, s - 1), None

    def f(n, c, *o):
        idx, conds, weight = [], [], None
        for d in range(r):
            v = coord(n, o, d)
            if mode == "nearest":
                fi = v
            else:
                base = call("floor", v)
                t = v - base
                k = taps[d]
                kf = cast(F32, k)
                if mode == "linear":
                    fi = base + kf
                    w = select(cmp("eq", k, const(0)), _f(1) - t, t)
                else:
                    fi = base + kf - _f(1)
                    w = _cubic_weight(t, k)
                weight = w if weight is None else weight * w
            i, cond = tap_index(fi, d)
            idx.append(i)
            if cond is not None:
                conds.append(cond)
        val = x[(n, c) + tuple(idx)]
        val = val if val.dtype == F32 else cast(F32, val)
        if conds:
            val = select(all_of(*conds), val, _f(0))
        if weight is not None:
            val = te.sum(val * weight, axis=taps)
        return val if x.dtype == F32 else cast(x.dtype, val)

    return [te.compute(out_types[0].shape, f, name="grid_sample", tag="grid_sample")]

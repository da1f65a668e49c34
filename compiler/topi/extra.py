"""TE computes for the ops of compiler/ops/extra.py: CumProd."""

from __future__ import annotations

from .. import te
from ..expr import cmp, const, select
from .registry import register_compute


@register_compute("CumProd")
def cumprod(inputs, attrs, out_types):
    (x,) = inputs
    ax, excl, rev = attrs["axis"], attrs["exclusive"], attrs["reverse"]
    n = x.shape[ax]

    def f(*i):
        # Product over the prefix (suffix when reversed); excluded terms contribute 1.
        r = te.reduce_axis(n, "r")
        op = ("gt" if excl else "ge") if rev else ("lt" if excl else "le")
        keep = cmp(op, r.var, i[ax])
        v = x[tuple(i[:ax]) + (r,) + tuple(i[ax + 1:])]
        return te.prod(select(keep, v, const(1, x.dtype)), axis=r)
    return [te.compute(x.shape, f, name="cumprod", tag="reduce")]

"""Data movement ops as tensor expressions: Concat, Reshape, Transpose, Slice, Gather, Pad."""

from __future__ import annotations

from .. import te
from ..expr import all_of, cmp, const, select
from .common import clamp, in_range
from .registry import register_compute


@register_compute("Concat")
def concat(inputs, attrs, out_types):
    ax = attrs["axis"]
    shape = out_types[0].shape
    starts = []
    off = 0
    for t in inputs:
        starts.append(off)
        off += t.shape[ax]

    def f(*i):
        # Walk back from the last input: each arm reads with a clamped, in-bounds index.
        out = None
        for t, s in reversed(list(zip(inputs, starts))):
            j = clamp(i[ax] - s, 0, t.shape[ax] - 1)
            v = t[tuple(i[:ax]) + (j,) + tuple(i[ax + 1:])]
            out = v if out is None else select(cmp("lt", i[ax], s + t.shape[ax]), v, out)
        return out

    return [te.compute(shape, f, name="concat", tag="injective")]


def _unravel(flat, shape):
    idx = []
    for d in reversed(shape):
        idx.append(flat % d)
        flat = flat // d
    return tuple(reversed(idx))


@register_compute("Reshape")
def reshape(inputs, attrs, out_types):
    (x,) = inputs
    shape = out_types[0].shape

    def f(*i):
        flat = const(0)
        for d, k in zip(shape, i):
            flat = flat * d + k
        return x[_unravel(flat, x.shape)] if x.ndim else x[()]

    return [te.compute(shape, f, name="reshape", tag="injective")]


@register_compute("Transpose")
def transpose(inputs, attrs, out_types):
    (x,) = inputs
    perm = attrs["perm"]
    inv = [0] * len(perm)
    for k, p in enumerate(perm):
        inv[p] = k
    return [te.compute(out_types[0].shape, lambda *i: x[tuple(i[inv[d]] for d in range(x.ndim))],
                       name="transpose", tag="injective")]


@register_compute("Slice")
def slice_(inputs, attrs, out_types):
    (x,) = inputs
    starts, steps = attrs["starts"], attrs["steps"]
    return [te.compute(out_types[0].shape,
                       lambda *i: x[tuple(s + k * st for k, s, st in zip(i, starts, steps))],
                       name="slice", tag="injective")]


@register_compute("Gather")
def gather(inputs, attrs, out_types):
    x, ind = inputs
    ax = attrs["axis"]
    n = x.shape[ax]
    q = ind.ndim

    def f(*i):
        j = ind[tuple(i[ax:ax + q])] if q else ind[()]
        from ..expr import cast
        j = cast("int64", j)
        j = select(cmp("lt", j, const(0)), j + n, j)
        return x[tuple(i[:ax]) + (clamp(j, 0, n - 1),) + tuple(i[ax + q:])]

    return [te.compute(out_types[0].shape, f, name="gather", tag="injective")]


@register_compute("Pad")
def pad(inputs, attrs, out_types):
    (x,) = inputs
    pads, mode, value = attrs["pads"], attrs.get("mode", "constant"), attrs.get("value", 0.0)
    nd = x.ndim
    begin = pads[:nd]

    def f(*i):
        src = []
        for d in range(nd):
            j = i[d] - begin[d]
            size = x.shape[d]
            if mode == "reflect" and size > 1:
                # Reflect without repeating the edge: fold the index into [0, 2*size-2).
                period = 2 * size - 2
                m = (j % period + period) % period
                j = select(cmp("lt", m, size), m, period - m)
            elif mode in ("edge", "reflect"):
                j = clamp(j, 0, size - 1)
            src.append(j)
        # Constant mode: the load is the select's true arm, which codegen guards.
        v = x[tuple(src)]
        if mode != "constant":
            return v
        ok = all_of(*[in_range(i[d] - begin[d], 0, x.shape[d]) for d in range(nd)])
        return select(ok, v, const(value, x.dtype))

    return [te.compute(out_types[0].shape, f, name="pad", tag="injective")]


@register_compute("Copy")
def copy(inputs, attrs, out_types):
    (x,) = inputs
    return [te.compute(x.shape, lambda *i: x[i], name="copy", tag="injective")]

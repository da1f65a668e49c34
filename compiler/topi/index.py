"""Index ops as tensor expressions: Expand, Tile, GatherElements, GatherND, ScatterND,
ScatterElements, TopK, CumSum, Trilu, OneHot, Hardmax.

Scatters and TopK have no natural "one output element = one expression" form; they are
written as per-output reductions over the candidate sources (O(output x candidates)), which is
exact and needs no loop-IR extension. TopK ranks every element by counting the elements that
beat it (ties broken by index, as ONNX specifies) and then picks the element of each rank.
"""

from __future__ import annotations

from .. import te
from ..expr import Bin, all_of, cast, cmp, const, select
from .common import broadcast_load, clamp, in_range
from .registry import register_compute


def _norm(j, n: int):
    """An index value from a tensor: int64, negatives wrapped, clamped in bounds."""
    j = cast("int64", j)
    j = select(cmp("lt", j, const(0)), j + n, j)
    return clamp(j, 0, max(n - 1, 0))


@register_compute("Expand")
def expand(inputs, attrs, out_types):
    (x,) = inputs
    shape = out_types[0].shape
    return [te.compute(shape, lambda *i: broadcast_load(x, shape, i) if x.ndim else x[()],
                       name="expand", tag="injective")]


@register_compute("Tile")
def tile(inputs, attrs, out_types):
    (x,) = inputs
    return [te.compute(out_types[0].shape,
                       lambda *i: x[tuple(k % d if r != 1 else k
                                          for k, d, r in zip(i, x.shape, attrs["repeats"]))],
                       name="tile", tag="injective")]


@register_compute("GatherElements")
def gather_elements(inputs, attrs, out_types):
    x, ind = inputs
    ax = attrs["axis"]

    def f(*i):
        j = _norm(ind[i], x.shape[ax])
        return x[tuple(i[:ax]) + (j,) + tuple(i[ax + 1:])]
    return [te.compute(out_types[0].shape, f, name="gather_elements", tag="injective")]


@register_compute("GatherND")
def gather_nd(inputs, attrs, out_types):
    x, ind = inputs
    b = attrs["batch_dims"]
    q = ind.shape[-1]
    m = ind.ndim - 1  # output dims taken from indices (batch dims included)

    def f(*i):
        pos = tuple(_norm(ind[tuple(i[:m]) + (const(k),)], x.shape[b + k]) for k in range(q))
        return x[tuple(i[:b]) + pos + tuple(i[m:])]
    return [te.compute(out_types[0].shape, f, name="gather_nd", tag="injective")]


def _scatter(x, upd_at, match, raxes, reduction, name):
    """out[i] = data[i] combined with every update whose target is i.

    `match(i, r)` says whether candidate r (reduce axes) targets output i; `upd_at(i, r)` is
    its value. "none": the last matching candidate wins (ONNX leaves duplicates undefined).
    """
    shape = x.shape
    if reduction == "none":
        def last(*i):
            rs = [te.reduce_axis(e, "s") for e in raxes]
            flat = const(0)
            for r, e in zip(rs, raxes):
                flat = flat * e + r.var
            return te.max(select(match(i, rs), flat, const(-1)), axis=rs)
        hit = te.compute(shape, last, name=f"{name}_hit")

        def f(*i):
            h = hit[i]
            rs, rem = [], clamp(h, 0, max(1, _prod(raxes)) - 1)
            for e in reversed(raxes):
                rs.append(rem % e)
                rem = rem // e
            rs.reverse()
            return select(cmp("ge", h, const(0)), upd_at(i, rs), x[i])
        return te.compute(shape, f, name=name, tag="scatter")
    comb = {"add": te.sum, "mul": te.prod, "max": te.max, "min": te.min}[reduction]
    ident = te.reduce_init({"add": "sum", "mul": "prod", "max": "max",
                            "min": "min"}[reduction], x.dtype)

    def g(*i):
        rs = [te.reduce_axis(e, "s") for e in raxes]
        return comb(select(match(i, rs), upd_at(i, rs), ident), axis=rs)
    red = te.compute(shape, g, name=f"{name}_red")
    op = {"add": "add", "mul": "mul", "max": "max", "min": "min"}[reduction]
    return te.compute(shape, lambda *i: Bin(op, x[i], red[i]) if op in ("max", "min")
                      else _arith(op, x[i], red[i]), name=name, tag="scatter")


def _arith(op, a, b):
    return a + b if op == "add" else a * b


def _prod(xs):
    out = 1
    for v in xs:
        out *= v
    return out


@register_compute("ScatterND")
def scatter_nd(inputs, attrs, out_types):
    x, ind, upd = inputs
    q = ind.shape[-1]
    raxes = list(ind.shape[:-1])

    def match(i, rs):
        return all_of(*[cmp("eq", _norm(ind[tuple(rs) + (const(k),)], x.shape[k]), i[k])
                        for k in range(q)])

    def upd_at(i, rs):
        return upd[tuple(rs) + tuple(i[q:])]
    return [_scatter(x, upd_at, match, raxes, attrs["reduction"], "scatter_nd")]


@register_compute("ScatterElements")
def scatter_elements(inputs, attrs, out_types):
    x, ind, upd = inputs
    ax = attrs["axis"]
    n = ind.shape[ax]

    def src(i, r):
        return tuple(clamp(i[d], 0, ind.shape[d] - 1) if d != ax else r
                     for d in range(x.ndim))

    def match(i, rs):
        (r,) = rs
        inside = [in_range(i[d], 0, ind.shape[d]) for d in range(x.ndim)
                  if d != ax and ind.shape[d] < x.shape[d]]
        return all_of(*inside, cmp("eq", _norm(ind[src(i, r)], x.shape[ax]), i[ax]))

    def upd_at(i, rs):
        return upd[src(i, rs[0])]
    return [_scatter(x, upd_at, match, [n], attrs["reduction"], "scatter_elements")]


@register_compute("TopK")
def topk(inputs, attrs, out_types):
    (x,) = inputs
    ax, largest = attrs["axis"], attrs["largest"]
    n = x.shape[ax]

    def at(i, j):
        return tuple(i[:ax]) + (j,) + tuple(i[ax + 1:])

    def rank(*i):
        r = te.reduce_axis(n, "r")
        a, b = x[at(i, r)], x[i]
        beats = cmp("gt" if largest else "lt", a, b)
        tie = all_of(cmp("eq", a, b), cmp("lt", r.var, i[ax]))
        return te.sum(select(Bin("or", beats, tie), const(1), const(0)), axis=r)
    rk = te.compute(x.shape, rank, name="topk_rank")

    def pick(*i):
        r = te.reduce_axis(n, "r")
        return te.sum(select(cmp("eq", rk[at(i, r)], i[ax]), cast("int64", r.var), const(0)),
                      axis=r)
    shape = out_types[0].shape
    idx = te.compute(shape, pick, name="topk_idx", tag="topk")
    vals = te.compute(shape, lambda *i: x[at(i, clamp(idx[i], 0, n - 1))], name="topk_val",
                      tag="topk")
    return [vals, idx]


def cumulative(name: str, reducer, identity: int):
    """CumSum/CumProd: each output reduces the prefix (suffix when reversed) of its axis;
    excluded terms contribute the combiner's identity."""
    def compute(inputs, attrs, out_types):
        (x,) = inputs
        ax, excl, rev = attrs["axis"], attrs["exclusive"], attrs["reverse"]
        n = x.shape[ax]

        def f(*i):
            r = te.reduce_axis(n, "r")
            op = ("gt" if excl else "ge") if rev else ("lt" if excl else "le")
            keep = cmp(op, r.var, i[ax])
            v = x[tuple(i[:ax]) + (r,) + tuple(i[ax + 1:])]
            return reducer(select(keep, v, const(identity, x.dtype)), axis=r)
        return [te.compute(x.shape, f, name=name.lower(), tag="reduce")]
    return register_compute(name)(compute)


cumulative("CumSum", te.sum, 0)


@register_compute("Trilu")
def trilu(inputs, attrs, out_types):
    (x,) = inputs
    k, upper = attrs["k"], attrs["upper"]

    def f(*i):
        d = i[-1] - i[-2]
        keep = cmp("ge" if upper else "le", d, const(k))
        return select(keep, x[i], const(0, x.dtype))
    return [te.compute(x.shape, f, name="trilu", tag="injective")]


@register_compute("OneHot")
def onehot(inputs, attrs, out_types):
    ind, values = inputs
    depth, ax = attrs["depth"], attrs["axis"]
    flat = values.ndim

    def val(k):
        return values[(const(k),) if flat == 1 else tuple(const(0) for _ in range(flat - 1))
                      + (const(k),)] if flat else values[()]

    def f(*i):
        src = tuple(i[:ax]) + tuple(i[ax + 1:])
        j = ind[src] if ind.ndim else ind[()]
        if j.dtype.startswith("float"):
            j = cast("int64", j)
        j = cast("int64", j)
        j = select(cmp("lt", j, const(0)), j + depth, j)
        return select(cmp("eq", j, i[ax]), val(1), val(0))
    return [te.compute(out_types[0].shape, f, name="onehot", tag="injective")]


@register_compute("Hardmax")
def hardmax(inputs, attrs, out_types):
    (x,) = inputs
    ax = attrs["axis"]
    n = x.shape[ax]
    red = x.shape[:ax] + (1,) + x.shape[ax + 1:]

    def at(i, j):
        return tuple(i[:ax]) + (j,) + tuple(i[ax + 1:])

    r1 = te.reduce_axis(n, "r")
    mx = te.compute(red, lambda *i: te.max(x[at(i, r1)], axis=r1), name="hardmax_max")

    def first(*i):
        r = te.reduce_axis(n, "r")
        hit = cmp("eq", x[at(i, r)], mx[i])
        return te.min(select(hit, cast("int64", r.var), const(n)), axis=r)
    am = te.compute(red, first, name="hardmax_arg")
    return [te.compute(x.shape, lambda *i: select(cmp("eq", am[at(i, const(0))], i[ax]),
                                                  const(1, x.dtype), const(0, x.dtype)),
                       name="hardmax", tag="injective")]

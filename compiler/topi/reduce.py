"""Reductions over axes: ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare;
ArgMax/ArgMin (two passes: the extreme value, then its first or last index)."""

from __future__ import annotations

import math

from .. import te
from ..expr import call, cast, cmp, const, select
from .registry import register_compute

_COMBINER = {"ReduceSum": "sum", "ReduceMean": "sum", "ReduceMax": "max", "ReduceMin": "min",
             "ReduceProd": "prod", "ReduceL1": "sum", "ReduceL2": "sum", "ReduceLogSum": "sum",
             "ReduceLogSumExp": "sum", "ReduceSumSquare": "sum"}
# Elementwise map before the combiner and finish after it (in the accumulation dtype).
_PRE = {"ReduceL1": lambda v: select(cmp("lt", v, const(0, v.dtype)), -v, v),
        "ReduceL2": lambda v: v * v, "ReduceSumSquare": lambda v: v * v}
_POST = {"ReduceL2": lambda r: call("sqrt", r), "ReduceLogSum": lambda r: call("log", r)}


def _index(x, raxes, keep, i):
    """Input index for output index `i`: reduced dims read their reduce axis."""
    it = iter(i)
    idx = []
    for d in range(x.ndim):
        if d in raxes:
            idx.append(raxes[d])
            if keep:
                next(it)
        else:
            idx.append(next(it))
    return tuple(idx)


def _reduce(op):
    def compute(inputs, attrs, out_types):
        (x,) = inputs
        axes, keep = attrs["axes"], attrs["keepdims"]
        count = math.prod(x.shape[a] for a in axes)
        # float16 accumulates in float32 (storage-only half precision).
        acc_t = "float32" if x.dtype == "float16" else x.dtype
        shape = out_types[0].shape

        def load(i, raxes):
            return cast(acc_t, x[_index(x, raxes, keep, i)])

        mx = None
        if op == "ReduceLogSumExp":
            r0 = {a: te.reduce_axis(x.shape[a], f"m{a}") for a in axes}
            mx = te.compute(shape, lambda *i: te.max(load(i, r0), axis=list(r0.values())),
                            name="lse_max")

        def f(*i):
            raxes = {a: te.reduce_axis(x.shape[a], f"r{a}") for a in axes}
            v = load(i, raxes)
            if mx is not None:
                # Shift by the max so exp never overflows; an all -inf row keeps shift 0.
                m = mx[i]
                m = select(cmp("eq", m, const(-math.inf, acc_t)), const(0, acc_t), m)
                v = call("exp", v - m)
            v = _PRE.get(op, lambda t: t)(v)
            fn = getattr(te, _COMBINER[op])
            r = fn(v, axis=list(raxes.values())) if raxes else v
            r = _POST.get(op, lambda t: t)(r)
            if mx is not None:
                r = call("log", r) + m
            if op == "ReduceMean" and count != 1:
                r = r * const(1.0 / count, acc_t) if acc_t.startswith("float") else r // count
            return cast(x.dtype, r)

        return [te.compute(shape, f, name=op.lower(), tag="reduce")]
    return compute


for _op in _COMBINER:
    register_compute(_op)(_reduce(_op))


def _arg(op):
    def compute(inputs, attrs, out_types):
        (x,) = inputs
        ax, keep, last = attrs["axis"], attrs["keepdims"], attrs["select_last_index"]
        n = x.shape[ax]
        shape = out_types[0].shape
        r1 = te.reduce_axis(n, "r")
        ext = te.max if op == "ArgMax" else te.min
        best = te.compute(shape, lambda *i: ext(x[_index(x, {ax: r1}, keep, i)], axis=r1),
                          name=f"{op.lower()}_val")

        def f(*i):
            r = te.reduce_axis(n, "r")
            hit = cmp("eq", x[_index(x, {ax: r}, keep, i)], best[i])
            rr = cast("int64", r.var)
            if last:
                return te.max(select(hit, rr, const(-1, "int64")), axis=r)
            return te.min(select(hit, rr, const(n, "int64")), axis=r)

        return [te.compute(shape, f, name=op.lower(), tag="reduce")]
    return compute


register_compute("ArgMax")(_arg("ArgMax"))
register_compute("ArgMin")(_arg("ArgMin"))

"""Reductions over axes: ReduceSum/Mean/Max/Min/Prod."""

from __future__ import annotations

import math

from .. import te
from ..expr import const
from .registry import register_compute

_COMBINER = {"ReduceSum": "sum", "ReduceMean": "sum", "ReduceMax": "max", "ReduceMin": "min",
             "ReduceProd": "prod"}


def _reduce(op):
    def compute(inputs, attrs, out_types):
        (x,) = inputs
        axes, keep = attrs["axes"], attrs["keepdims"]
        raxes = {a: te.reduce_axis(x.shape[a], f"r{a}") for a in axes}
        fn = getattr(te, _COMBINER[op])
        count = math.prod(x.shape[a] for a in axes)

        def f(*i):
            it = iter(i)
            idx = []
            for d in range(x.ndim):
                if d in raxes:
                    idx.append(raxes[d])
                    if keep:
                        next(it)
                else:
                    idx.append(next(it))
            r = fn(x[tuple(idx)], axis=list(raxes.values())) if raxes else x[tuple(idx)]
            if op == "ReduceMean" and count != 1:
                r = r * const(1.0 / count, x.dtype) if x.dtype.startswith("float") else r // count
            return r

        return [te.compute(out_types[0].shape, f, name=op.lower(), tag="reduce")]
    return compute


for _op in _COMBINER:
    register_compute(_op)(_reduce(_op))

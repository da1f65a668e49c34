"""ONNX linear-algebra converters: Det.

Det of a small matrix is its Leibniz expansion, sum over permutations p of
sign(p) * prod_i x[i, p(i)]: one constant-index Gather of every permutation's entries, a
ReduceProd and a signed ReduceSum. That is n! terms, so it is limited to n <= 4 (24 terms);
larger matrices would need a pivoted LU factorisation, which has no compiled form here.
"""

from __future__ import annotations

import itertools

import numpy as np

from .onnx_builder import converter
from .onnx_converters import _reshape

MAX_DET_N = 4


def _sign(p) -> int:
    inv = sum(1 for i in range(len(p)) for j in range(i + 1, len(p)) if p[i] > p[j])
    return -1 if inv % 2 else 1


@converter("Det", 11)
def Det(b, ins, n_out):
    x = ins[0]
    shape = b.shape(x)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise b.error(f"input must be (..., n, n), got {list(shape)}")
    n = shape[-1]
    if n > MAX_DET_N:
        raise b.error(f"Det of {n}x{n} matrices is not supported (n <= {MAX_DET_N})")
    perms = list(itertools.permutations(range(n)))
    idx = np.array([[i * n + p[i] for i in range(n)] for p in perms], np.int64)
    lead = tuple(shape[:-2])
    flat = _reshape(b, x, lead + (n * n,))
    terms = b.emit("Gather", [flat, b.add_const(idx, "det_idx")], {"axis": len(lead)})[0]
    prods = b.emit("ReduceProd", [terms], {"axes": (len(lead) + 1,), "keepdims": 0})[0]
    signs = b.add_const(np.array([_sign(p) for p in perms], b.type(x).dtype), "det_sign")
    signed = b.emit("Mul", [prods, signs])[0]
    return b.emit("ReduceSum", [signed], {"axes": (len(lead),), "keepdims": 0})

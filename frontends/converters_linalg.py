"""ONNX linear-algebra and cache converters: Det, TensorScatter.

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


@converter("TensorScatter", 24)
def TensorScatter(b, ins, n_out, *, axis=-2, mode="linear"):
    """KV-cache write: along `axis`, batch entry n takes update rows at positions
    write_indices[n] + j (mod the cache length when circular), the cache elsewhere. Every
    output position s reads update row s - write_indices[n] (wrapped) through one
    GatherElements, and a Where keeps the cache where that row does not exist."""
    cache, upd = ins[0], ins[1]
    shape, ushape = b.shape(cache), b.shape(upd)
    r = len(shape)
    if not -r <= axis < r or mode not in ("linear", "circular"):
        raise b.error(f"axis {axis} / mode {mode!r} invalid for a cache of rank {r}")
    axis %= r
    if axis == 0 or len(ushape) != r or any(ushape[d] != shape[d] for d in range(r) if d != axis) \
            or ushape[axis] > shape[axis]:
        raise b.error(f"update {list(ushape)} does not fit cache {list(shape)} along axis {axis}")
    m, seq, batch = shape[axis], ushape[axis], shape[0]
    if len(ins) > 2 and ins[2]:
        w = ins[2] if b.type(ins[2]).dtype == "int64" else \
            b.emit("Cast", [ins[2]], {"to": "int64"})[0]
    else:
        w = b.add_const(np.zeros(batch, np.int64), "write_idx")
    col = [batch if d == 0 else 1 for d in range(r)]
    pos = [m if d == axis else 1 for d in range(r)]
    rel = b.emit("Sub", [b.add_const(np.arange(m, dtype=np.int64).reshape(pos), "cache_pos"),
                         _reshape(b, w, col)])[0]
    if mode == "circular":
        rel = b.emit("Mod", [rel, b.add_const(np.int64(m), "cache_len")], {"fmod": 0})[0]
    inside = b.emit("And", [
        b.emit("GreaterOrEqual", [rel, b.add_const(np.int64(0), "zero")])[0],
        b.emit("Less", [rel, b.add_const(np.int64(seq), "seq_len")])[0]])[0]
    row = b.emit("Min", [b.emit("Max", [rel, b.add_const(np.int64(0), "zero")])[0],
                         b.add_const(np.int64(seq - 1), "last_row")])[0]
    idx_shape = tuple(m if d == axis else shape[d] for d in range(r))
    idx = b.emit("Expand", [row], {"shape": idx_shape})[0]
    taken = b.emit("GatherElements", [upd, idx], {"axis": axis})[0]
    return b.emit("Where", [inside, taken, cache])

"""Index helpers shared by the TE op families."""

from __future__ import annotations

from ..expr import Expr, cmp, const, maximum, minimum, wrap


def broadcast_load(t, out_shape, idx) -> Expr:
    """t[...] read at output index `idx` under numpy broadcasting."""
    nd = len(t.shape)
    off = len(out_shape) - nd
    sub = []
    for k in range(nd):
        i = idx[off + k]
        sub.append(const(0) if t.shape[k] == 1 and out_shape[off + k] != 1 else i)
    return t[tuple(sub)]


def clamp(i, lo: int, hi: int) -> Expr:
    """Clamp an index into [lo, hi] so a load in an unselected arm stays in bounds."""
    return minimum(maximum(wrap(i), lo), hi)


def in_range(i, lo: int, hi: int) -> Expr:
    """lo <= i < hi"""
    from ..expr import all_of

    return all_of(cmp("ge", i, lo), cmp("lt", i, hi))

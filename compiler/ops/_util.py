"""Small helpers shared by the op family modules."""

from __future__ import annotations

import numpy as np

from ..graph import TensorType


def broadcast_shapes(op: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(
            f"{op}: shapes {' and '.join(str(list(s)) for s in shapes)} do not broadcast "
            "(numpy rules: trailing dims must be equal or 1)") from None


def same_dtype(op: str, types: list[TensorType]) -> str:
    dtypes = {t.dtype for t in types}
    if len(dtypes) != 1:
        raise ValueError(f"{op}: inputs must share one dtype, got {sorted(dtypes)}; "
                         "insert a Cast")
    return types[0].dtype


def expect_inputs(op: str, types: list[TensorType], lo: int, hi: int | None = None) -> None:
    hi = lo if hi is None else hi
    if not lo <= len(types) <= hi:
        want = str(lo) if lo == hi else f"{lo}..{hi}"
        raise ValueError(f"{op}: expects {want} inputs, got {len(types)}")


def expect_rank(op: str, t: TensorType, rank: int, what: str = "input") -> None:
    if len(t.shape) != rank:
        raise ValueError(f"{op}: {what} must have rank {rank}, got shape {list(t.shape)}")


def expect_min_rank(op: str, t: TensorType, rank: int, what: str = "input") -> None:
    if len(t.shape) < rank:
        raise ValueError(f"{op}: {what} must have rank >= {rank}, got {list(t.shape)}")


def expect_per_channel(op: str, channels: int, names: tuple[str, ...],
                       types: list[TensorType]) -> None:
    """Per-channel parameters (scale, bias, ...) are vectors as long as X's axis 1."""
    for name, t in zip(names, types):
        if t.shape != (channels,):
            raise ValueError(f"{op}: {name} shape {list(t.shape)} must be [{channels}]")


def check_axis(op: str, axis: int, rank: int) -> int:
    if not 0 <= axis < rank:
        raise ValueError(f"{op}: axis {axis} out of range for rank {rank} "
                         "(canonical axes are non-negative)")
    return axis

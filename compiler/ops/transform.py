"""Data-movement ops: Concat, Reshape, Transpose, Slice, Gather, Pad."""

from __future__ import annotations

import numpy as np

from ..graph import TensorType
from ._util import check_axis, expect_inputs, same_dtype
from .registry import register_op


def _concat_infer(types, attrs):
    if not types:
        raise ValueError("Concat: needs at least one input")
    rank = len(types[0].shape)
    axis = check_axis("Concat", attrs["axis"], rank)
    dtype = same_dtype("Concat", types)
    out = list(types[0].shape)
    for t in types[1:]:
        if len(t.shape) != rank or any(
                a != b for i, (a, b) in enumerate(zip(t.shape, types[0].shape)) if i != axis):
            raise ValueError(f"Concat: shapes {[list(t.shape) for t in types]} differ outside "
                             f"axis {axis}")
        out[axis] += t.shape[axis]
    return [TensorType(tuple(out), dtype)]


register_op("Concat", _concat_infer,
            lambda arrays, attrs: [np.concatenate(arrays, axis=attrs["axis"])])


def _reshape_infer(types, attrs):
    expect_inputs("Reshape", types, 1)
    shape = tuple(int(d) for d in attrs["shape"])
    if any(d < 0 for d in shape):
        raise ValueError(f"Reshape: shape {list(shape)} must be fully resolved (no -1)")
    if int(np.prod(shape, dtype=np.int64)) != types[0].size:
        raise ValueError(f"Reshape: cannot reshape {list(types[0].shape)} "
                         f"({types[0].size} elements) to {list(shape)}")
    return [TensorType(shape, types[0].dtype)]


register_op("Reshape", _reshape_infer,
            lambda arrays, attrs: [arrays[0].reshape(attrs["shape"])])


def _transpose_infer(types, attrs):
    expect_inputs("Transpose", types, 1)
    perm = tuple(attrs["perm"])
    shape = types[0].shape
    if sorted(perm) != list(range(len(shape))):
        raise ValueError(f"Transpose: perm {list(perm)} is not a permutation of "
                         f"0..{len(shape) - 1}")
    return [TensorType(tuple(shape[p] for p in perm), types[0].dtype)]


register_op("Transpose", _transpose_infer,
            lambda arrays, attrs: [np.asarray(arrays[0].transpose(attrs["perm"]), order="C")])


def slice_len(start: int, end: int, step: int) -> int:
    """Length of a canonical slice (see `slice_index`)."""
    if step > 0:
        return max(0, -(-(end - start) // step))
    return max(0, -(-(start - end) // -step))


def slice_index(start: int, end: int, step: int) -> slice:
    """Python slice for canonical bounds.

    Canonical bounds are already clamped: for step > 0, 0 <= start, end <= dim; for step < 0,
    0 <= start <= dim - 1 and -1 <= end <= dim - 1, where end == -1 means "through index 0"
    (in Python -1 would mean the last element, so it maps to None).
    """
    return slice(start, None if end < 0 else end, step)


def _slice_infer(types, attrs):
    expect_inputs("Slice", types, 1)
    shape = types[0].shape
    starts, ends, steps = attrs["starts"], attrs["ends"], attrs["steps"]
    if not len(starts) == len(ends) == len(steps) == len(shape):
        raise ValueError(f"Slice: starts/ends/steps need one entry per dim ({len(shape)}), got "
                         f"{len(starts)}/{len(ends)}/{len(steps)}")
    out = []
    for d, (b, e, s) in enumerate(zip(starts, ends, steps)):
        dim = shape[d]
        ok = (s > 0 and 0 <= b <= dim and 0 <= e <= dim) or (
            s < 0 and 0 <= b <= max(dim - 1, 0) and -1 <= e <= dim - 1)
        if not ok:
            raise ValueError(f"Slice: dim {d} (size {dim}): bounds start={b} end={e} step={s} "
                             "are not clamped canonical bounds")
        out.append(slice_len(b, e, s))
    return [TensorType(tuple(out), types[0].dtype)]


def _slice_fold(arrays, attrs):
    idx = tuple(slice_index(b, e, s)
                for b, e, s in zip(attrs["starts"], attrs["ends"], attrs["steps"]))
    return [np.asarray(arrays[0][idx], order="C")]


register_op("Slice", _slice_infer, _slice_fold)


def _gather_infer(types, attrs):
    expect_inputs("Gather", types, 2)
    x, idx = types
    axis = check_axis("Gather", attrs["axis"], len(x.shape))
    if idx.dtype not in ("int32", "int64"):
        raise ValueError(f"Gather: indices must be int32/int64, got {idx.dtype}")
    return [TensorType(x.shape[:axis] + idx.shape + x.shape[axis + 1:], x.dtype)]


def _gather_fold(arrays, attrs):
    x, idx = arrays
    dim = x.shape[attrs["axis"]]
    if idx.size and (idx.min() < -dim or idx.max() >= dim):
        raise ValueError(f"Gather: indices out of range [-{dim}, {dim - 1}]")
    return [np.take(x, idx.astype(np.int64), axis=attrs["axis"])]


register_op("Gather", _gather_infer, _gather_fold)


def _pad_infer(types, attrs):
    expect_inputs("Pad", types, 1)
    shape = types[0].shape
    pads = attrs["pads"]
    r = len(shape)
    if len(pads) != 2 * r:
        raise ValueError(f"Pad: pads needs {2 * r} entries (begins then ends), got {len(pads)}")
    if attrs["mode"] not in ("constant", "reflect", "edge"):
        raise ValueError(f"Pad: mode {attrs['mode']!r} is not constant/reflect/edge")
    out = tuple(shape[i] + pads[i] + pads[r + i] for i in range(r))
    if any(d < 0 for d in out):
        raise ValueError(f"Pad: pads {list(pads)} crop {list(shape)} below zero")
    return [TensorType(out, types[0].dtype)]


def _pad_fold(arrays, attrs):
    x = arrays[0]
    r = x.ndim
    pads = attrs["pads"]
    # Negative pads crop: crop first, then pad with the non-negative part.
    crop = tuple(slice(max(0, -pads[i]), x.shape[i] - max(0, -pads[r + i])) for i in range(r))
    x = x[crop]
    width = [(max(0, pads[i]), max(0, pads[r + i])) for i in range(r)]
    if attrs["mode"] == "constant":
        y = np.pad(x, width, mode="constant", constant_values=np.asarray(attrs["value"],
                                                                         x.dtype))
    else:
        y = np.pad(x, width, mode=attrs["mode"])
    return [y]


register_op("Pad", _pad_infer, _pad_fold)

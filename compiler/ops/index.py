"""Index and data-movement ops: Expand, Tile, GatherElements, GatherND, ScatterND,
ScatterElements, TopK, CumSum, Trilu, OneHot, Hardmax. (Range and NonZero have
value-dependent shapes: their converters fold them when the inputs are constant.)"""

from __future__ import annotations

import numpy as np

from ..graph import TensorType
from ._util import broadcast_shapes, check_axis, expect_inputs, expect_min_rank
from .registry import register_op


def _need_int(op, t, what="indices"):
    if t.dtype not in ("int32", "int64"):
        raise ValueError(f"{op}: {what} must be int32/int64, got {t.dtype}")


def _norm(idx, dim):
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < -dim or idx.max() >= dim):
        raise ValueError(f"indices out of range [-{dim}, {dim - 1}]")
    return np.where(idx < 0, idx + dim, idx)


# ---- Expand / Tile -----------------------------------------------------------------------

def _expand_infer(types, attrs):
    expect_inputs("Expand", types, 1)
    shape = broadcast_shapes("Expand", types[0].shape, tuple(attrs["shape"]))
    return [TensorType(shape, types[0].dtype)]


def _expand_fold(arrays, attrs):
    x = arrays[0]
    shape = broadcast_shapes("Expand", x.shape, tuple(attrs["shape"]))
    return [np.ascontiguousarray(np.broadcast_to(x, shape))]


register_op("Expand", _expand_infer, _expand_fold)


def _tile_infer(types, attrs):
    expect_inputs("Tile", types, 1)
    reps = tuple(attrs["repeats"])
    shape = types[0].shape
    if len(reps) != len(shape) or any(r < 0 for r in reps):
        raise ValueError(f"Tile: repeats {list(reps)} need one non-negative entry per dim "
                         f"of {list(shape)}")
    return [TensorType(tuple(d * r for d, r in zip(shape, reps)), types[0].dtype)]


register_op("Tile", _tile_infer, lambda xs, a: [np.tile(xs[0], tuple(a["repeats"]))])


# ---- Gather/Scatter ----------------------------------------------------------------------

def _gather_elements_infer(types, attrs):
    expect_inputs("GatherElements", types, 2)
    x, idx = types
    _need_int("GatherElements", idx)
    check_axis("GatherElements", attrs["axis"], len(x.shape))
    if len(idx.shape) != len(x.shape):
        raise ValueError(f"GatherElements: indices rank {len(idx.shape)} != data rank "
                         f"{len(x.shape)}")
    return [TensorType(idx.shape, x.dtype)]


def _gather_elements_fold(arrays, attrs):
    x, idx = arrays
    ax = attrs["axis"]
    return [np.take_along_axis(x, _norm(idx, x.shape[ax]), axis=ax)]


register_op("GatherElements", _gather_elements_infer, _gather_elements_fold)


def _gather_nd_infer(types, attrs):
    expect_inputs("GatherND", types, 2)
    x, idx = types
    _need_int("GatherND", idx)
    b = attrs["batch_dims"]
    q = idx.shape[-1] if idx.shape else 0
    if not idx.shape or b + q > len(x.shape) or x.shape[:b] != idx.shape[:b]:
        raise ValueError(f"GatherND: indices {list(idx.shape)} do not fit data "
                         f"{list(x.shape)} with batch_dims={b}")
    return [TensorType(idx.shape[:-1] + x.shape[b + q:], x.dtype)]


def _gather_nd_fold(arrays, attrs):
    x, idx = arrays
    b = attrs["batch_dims"]
    q = idx.shape[-1]
    bshape = x.shape[:b]
    nb = int(np.prod(bshape, dtype=np.int64))
    xb = x.reshape((nb,) + x.shape[b:])
    ib = idx.reshape((nb, -1, q))
    out = []
    for k in range(nb):
        cols = tuple(_norm(ib[k][:, j], x.shape[b + j]) for j in range(q))
        out.append(xb[k][cols])
    res = np.stack(out) if out else np.zeros((0,) + ib.shape[1:2] + x.shape[b + q:], x.dtype)
    return [np.ascontiguousarray(res.reshape(idx.shape[:-1] + x.shape[b + q:]))]


register_op("GatherND", _gather_nd_infer, _gather_nd_fold)

_REDUCTIONS = ("none", "add", "mul", "max", "min")


def _scatter_nd_infer(types, attrs):
    expect_inputs("ScatterND", types, 3)
    x, idx, upd = types
    _need_int("ScatterND", idx)
    q = idx.shape[-1] if idx.shape else 0
    if attrs["reduction"] not in _REDUCTIONS:
        raise ValueError(f"ScatterND: reduction {attrs['reduction']!r} not in {_REDUCTIONS}")
    if not idx.shape or q > len(x.shape) or upd.shape != idx.shape[:-1] + x.shape[q:]:
        raise ValueError(f"ScatterND: updates {list(upd.shape)} must be indices.shape[:-1] + "
                         f"data.shape[q:] for indices {list(idx.shape)}, data {list(x.shape)}")
    return [x]


_UFUNC = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def _scatter_at(out, pos, value, reduction: str) -> None:
    out[pos] = value if reduction == "none" else _UFUNC[reduction](out[pos], value)


def _scatter_nd_fold(arrays, attrs):
    x, idx, upd = arrays
    out = x.copy()
    q = idx.shape[-1]
    flat_i = idx.reshape(-1, q)
    flat_u = upd.reshape((flat_i.shape[0],) + x.shape[q:])
    for k in range(flat_i.shape[0]):
        pos = tuple(int(_norm(flat_i[k, j:j + 1], x.shape[j])[0]) for j in range(q))
        _scatter_at(out, pos, flat_u[k], attrs["reduction"])
    return [out]


register_op("ScatterND", _scatter_nd_infer, _scatter_nd_fold)


def _scatter_el_infer(types, attrs):
    expect_inputs("ScatterElements", types, 3)
    x, idx, upd = types
    _need_int("ScatterElements", idx)
    check_axis("ScatterElements", attrs["axis"], len(x.shape))
    if attrs["reduction"] not in _REDUCTIONS:
        raise ValueError(f"ScatterElements: reduction {attrs['reduction']!r} not in "
                         f"{_REDUCTIONS}")
    if idx.shape != upd.shape or len(idx.shape) != len(x.shape):
        raise ValueError(f"ScatterElements: indices {list(idx.shape)} and updates "
                         f"{list(upd.shape)} must have one shape of data's rank")
    return [x]


def _scatter_el_fold(arrays, attrs):
    x, idx, upd = arrays
    ax = attrs["axis"]
    out = x.copy()
    nidx = _norm(idx, x.shape[ax])
    for pos in np.ndindex(*idx.shape):
        tgt = list(pos)
        tgt[ax] = nidx[pos]
        tgt = tuple(tgt)
        _scatter_at(out, tgt, upd[pos], attrs["reduction"])
    return [out]


register_op("ScatterElements", _scatter_el_infer, _scatter_el_fold)


# ---- TopK / CumSum / Trilu / OneHot / Hardmax ----------------------------------------

def _topk_infer(types, attrs):
    expect_inputs("TopK", types, 1)
    x = types[0]
    ax = check_axis("TopK", attrs["axis"], len(x.shape))
    k = attrs["k"]
    if not 0 <= k <= x.shape[ax]:
        raise ValueError(f"TopK: k={k} out of range for axis size {x.shape[ax]}")
    shape = x.shape[:ax] + (k,) + x.shape[ax + 1:]
    return [TensorType(shape, x.dtype), TensorType(shape, "int64")]


def _topk_fold(arrays, attrs):
    x = arrays[0]
    ax, k = attrs["axis"], attrs["k"]
    # Stable sort keeps equal values in index order, as ONNX requires.
    key = -x.astype(np.float64) if attrs["largest"] else x.astype(np.float64)
    order = np.argsort(key, axis=ax, kind="stable")
    idx = np.take(order, np.arange(k), axis=ax).astype(np.int64)
    return [np.take_along_axis(x, idx, axis=ax), idx]


register_op("TopK", _topk_infer, _topk_fold)


def _same_infer(op, n=1):
    def infer(types, attrs):
        expect_inputs(op, types, n)
        if "axis" in attrs:
            check_axis(op, attrs["axis"], len(types[0].shape))
        return [types[0]]
    return infer


def _cumsum_fold(arrays, attrs):
    x = arrays[0]
    ax = attrs["axis"]
    y = np.flip(x, ax) if attrs["reverse"] else x
    c = np.cumsum(y, axis=ax, dtype=x.dtype)
    if attrs["exclusive"]:
        c = c - y
    return [np.ascontiguousarray(np.flip(c, ax) if attrs["reverse"] else c).astype(x.dtype)]


register_op("CumSum", _same_infer("CumSum"), _cumsum_fold)


def _trilu_infer(types, attrs):
    expect_inputs("Trilu", types, 1)
    expect_min_rank("Trilu", types[0], 2)
    return [types[0]]


def _trilu_fold(arrays, attrs):
    x, k = arrays[0], attrs["k"]
    return [np.triu(x, k) if attrs["upper"] else np.tril(x, k)]


register_op("Trilu", _trilu_infer, _trilu_fold)


def _onehot_infer(types, attrs):
    expect_inputs("OneHot", types, 2)
    idx, values = types
    if values.size != 2:
        raise ValueError(f"OneHot: values must hold [off, on], got shape {list(values.shape)}")
    r = len(idx.shape) + 1
    ax = check_axis("OneHot", attrs["axis"], r)
    shape = idx.shape[:ax] + (attrs["depth"],) + idx.shape[ax:]
    return [TensorType(shape, values.dtype)]


def _onehot_fold(arrays, attrs):
    idx, values = arrays
    depth, ax = attrs["depth"], attrs["axis"]
    i = idx.astype(np.int64)
    i = np.where(i < 0, i + depth, i)
    hot = np.expand_dims(i, ax) == np.arange(depth).reshape(
        (1,) * ax + (depth,) + (1,) * (idx.ndim - ax))
    flat = values.reshape(-1)
    return [np.where(hot, flat[1], flat[0]).astype(values.dtype)]


register_op("OneHot", _onehot_infer, _onehot_fold)


def _hardmax_fold(arrays, attrs):
    x, ax = arrays[0], attrs["axis"]
    am = np.expand_dims(np.argmax(x, axis=ax), ax)
    out = np.zeros_like(x)
    np.put_along_axis(out, am, 1, axis=ax)
    return [out]


register_op("Hardmax", _same_infer("Hardmax"), _hardmax_fold)

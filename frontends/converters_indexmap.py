"""ONNX data-movement ops whose every output element comes from a position known at compile
time: CenterCropPad, ReverseSequence, Compress (constant condition), MaxUnpool, and EyeLike (a
constant). Each builds the index map with numpy and emits one Gather (or ScatterElements).
"""

from __future__ import annotations

import numpy as np

from .converters_general import _dtype_of_onnx
from .onnx_builder import Builder, converter
from .onnx_converters import _axis, _ints, _reshape


def _remap(b: Builder, x: str, index: np.ndarray) -> str:
    """y[...] = x.flat[index[...]], with index -1 reading 0 (padding)."""
    flat = _reshape(b, x, (int(np.prod(b.shape(x), dtype=np.int64)),))
    index = np.asarray(index, np.int64)
    if (index < 0).any():
        zero = b.add_const(np.zeros(1, b.type(x).dtype), "zero")
        flat = b.emit("Concat", [flat, zero], {"axis": 0})[0]
        index = np.where(index < 0, b.shape(flat)[0] - 1, index)
    if index.ndim == 0:
        index = index.reshape(1)
    y = b.emit("Gather", [flat, b.add_const(index.reshape(-1), "index")], {"axis": 0})[0]
    return _reshape(b, y, index.shape)


def _positions(b, x) -> np.ndarray:
    shape = b.shape(x)
    return np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64).reshape(shape)


@converter("CenterCropPad", 18)
def CenterCropPad(b, ins, n_out, *, axes=None):
    x = ins[0]
    shape = b.shape(x)
    rank = len(shape)
    target = _ints(b.static(ins[1], "shape"))
    axes = [_axis(b, a, rank) for a in axes] if axes is not None else list(range(rank))
    if len(axes) != len(target):
        raise b.error(f"shape has {len(target)} values for {len(axes)} axes")
    pos = _positions(b, x)
    for a, want in zip(axes, target):
        have = pos.shape[a]
        if want < have:  # crop: keep the centre, the extra element on the high side goes
            lo = (have - want) // 2
            pos = np.take(pos, range(lo, lo + want), axis=a)
        elif want > have:  # pad with zeros, the extra element on the high side
            lo = (want - have) // 2
            widths = [(0, 0)] * rank
            widths[a] = (lo, want - have - lo)
            pos = np.pad(pos, widths, constant_values=-1)
    return [_remap(b, x, pos)]


@converter("ReverseSequence", 10)
def ReverseSequence(b, ins, n_out, *, batch_axis=1, time_axis=0):
    x = ins[0]
    lens = _ints(b.static(ins[1], "sequence_lens"))
    pos = _positions(b, x)
    out = pos.copy()
    for i, n in enumerate(lens):
        src = [slice(None)] * pos.ndim
        dst = [slice(None)] * pos.ndim
        src[batch_axis] = dst[batch_axis] = i
        dst[time_axis] = slice(0, n)
        src[time_axis] = slice(n - 1, None, -1) if n else slice(0, 0)
        out[tuple(dst)] = pos[tuple(src)]
    return [_remap(b, x, out)]


@converter("Compress", 9)
def Compress(b, ins, n_out, *, axis=None):
    x = ins[0]
    cond = np.asarray(b.static(ins[1], "condition")).astype(bool).reshape(-1)
    pos = _positions(b, x)
    if axis is None:
        sel = np.compress(cond, pos.reshape(-1))
    else:
        sel = np.compress(cond, pos, axis=_axis(b, axis, pos.ndim))
    if sel.size == 0:
        raise b.error("the condition selects nothing; tilecc does not compile empty tensors")
    return [_remap(b, x, sel)]


@converter("EyeLike", 9)
def EyeLike(b, ins, n_out, *, dtype=None, k=0):
    n, m = b.shape(ins[0])
    dt = _dtype_of_onnx(b, dtype) if dtype is not None else b.type(ins[0]).dtype
    return [b.add_const(np.eye(n, m, int(k), dtype=dt), "eye")]


@converter("MaxUnpool", 9)
def MaxUnpool(b, ins, n_out, *, kernel_shape, pads=None, strides=None):
    x, idx = ins[0], ins[1]
    shape = b.shape(x)
    nsp = len(shape) - 2
    strides = tuple(strides or (1,) * nsp)
    pads = tuple(pads or (0,) * (2 * nsp))
    inferred = tuple(shape[:2]) + tuple(
        (shape[2 + d] - 1) * strides[d] - (pads[d] + pads[nsp + d]) + kernel_shape[d]
        for d in range(nsp))
    total_in = int(np.prod(shape, dtype=np.int64))
    total = int(np.prod(inferred, dtype=np.int64))
    zeros = b.add_const(np.zeros((1, total), b.type(x).dtype), "zeros")
    i2 = _reshape(b, idx, (1, total_in))
    if b.type(i2).dtype != "int64":
        i2 = b.emit("Cast", [i2], {"to": "int64"})[0]
    y = b.emit("ScatterElements", [zeros, i2, _reshape(b, x, (1, total_in))],
               {"axis": 1, "reduction": "none"})[0]
    y = _reshape(b, y, inferred)
    if len(ins) > 2 and ins[2]:
        want = _ints(b.static(ins[2], "output_shape"))
        extra = [w - h for w, h in zip(want, inferred)]
        if any(e < 0 for e in extra):
            raise b.error(f"output_shape {list(want)} is smaller than {list(inferred)}")
        if any(extra):
            y = b.emit("Pad", [y], {"pads": (0,) * len(want) + tuple(extra),
                                    "mode": "constant", "value": 0.0})[0]
    return [y]

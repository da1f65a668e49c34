"""ONNX MaxPool and AveragePool (1-D to 3-D) as canonical 2-D pools; window sizes, strides
and dilations below 1 are refused as onnxruntime refuses them. LpPool is |x|^p through a
depthwise ones-kernel Conv (3-D: an AveragePool), GlobalLpPool a ReduceSum."""

from __future__ import annotations

import numpy as np

from .onnx_builder import converter, pick_converter
from .onnx_converters import _full, _reshape, _window_pads, _windowed


def _pool(b, op, ins, n_out, auto_pad, ceil_mode, kernel_shape, pads, strides, dilations,
          extra, storage_order=0):
    for what, values in (("kernel_shape", kernel_shape), ("strides", strides),
                         ("dilations", dilations)):
        if values is not None and any(int(v) < 1 for v in values):
            raise b.error(f"{what} {list(values)} has an entry below 1; every window size, "
                          "stride and dilation must be >= 1")
    if n_out > 1 and len(b.shape(ins[0])) != 4:
        raise b.error(f"{op} Indices output is supported for 2-D pools only, got input shape "
                      f"{list(b.shape(ins[0]))}; drop the second output")
    indices = []

    def emit2d(x4, attrs):
        pool = {"kernel": tuple([1] * (2 - len(kernel_shape)) + list(kernel_shape)),
                "strides": attrs["strides"], "pads": attrs["pads"],
                "dilations": attrs["dilations"], "ceil_mode": int(ceil_mode), **extra}
        y = b.emit(op, [x4], pool)[0]
        if n_out > 1:
            indices.extend(b.emit("MaxPoolIndices", [x4, y],
                                  {**pool, "storage_order": int(storage_order)}))
        return y
    if len(b.shape(ins[0])) == 5:
        return [_pool3d(b, op, ins[0], auto_pad, ceil_mode, kernel_shape, pads, strides,
                        dilations, extra)]
    y = _windowed(b, ins[0], kernel_shape, strides, dilations, pads, auto_pad, emit2d)
    return [y] + indices


def _pool3d(b, op, x, auto_pad, ceil_mode, kernel, pads, strides, dilations, extra):
    """A 3-D max/average pool as two 2-D pools: over (H, W) with depth folded into channels,
    then over depth with (H, W) flattened. Exact because the window is a box: the max of
    maxes is the max, and both the window sum and ONNX's divisor (valid or padded positions,
    never the ceil_mode overhang) factor per dim."""
    n, c, d, h, w = b.shape(x)
    kernel = tuple(kernel)
    strides = tuple(strides or (1, 1, 1))
    dil = tuple(dilations or (1, 1, 1))
    p = _window_pads(b, (d, h, w), kernel, strides, dil, pads, auto_pad)
    common = {"ceil_mode": int(ceil_mode), **extra}
    hw = b.emit(op, [_reshape(b, x, (n, c * d, h, w))],
                {"kernel": kernel[1:], "strides": strides[1:], "dilations": dil[1:],
                 "pads": (p[1], p[2], p[4], p[5]), **common})[0]
    oh, ow = b.shape(hw)[2:]
    dd = b.emit(op, [_reshape(b, hw, (n, c, d, oh * ow))],
                {"kernel": (kernel[0], 1), "strides": (strides[0], 1), "dilations": (dil[0], 1),
                 "pads": (p[0], 0, p[3], 0), **common})[0]
    return _reshape(b, dd, (n, c, b.shape(dd)[2], oh, ow))


@converter("MaxPool", 1)
def MaxPool(b, ins, n_out, *, kernel_shape, auto_pad="NOTSET", ceil_mode=0, dilations=None,
            pads=None, storage_order=0, strides=None):
    return _pool(b, "MaxPool", ins, n_out, auto_pad, ceil_mode, kernel_shape, pads, strides,
                 dilations, {}, storage_order)


@converter("AveragePool", 1)
def AveragePool(b, ins, n_out, *, kernel_shape, auto_pad="NOTSET", ceil_mode=0,
                count_include_pad=0, dilations=None, pads=None, strides=None):
    return _pool(b, "AveragePool", ins, n_out, auto_pad, ceil_mode, kernel_shape, pads, strides,
                 dilations, {"count_include_pad": int(count_include_pad)})


# ---- pooling ----------------------------------------------------------------------------


def _abs_pow(b, x, p: float) -> str:
    if p == 1:
        return b.emit("Abs", [x])[0]
    if p == 2:
        return b.emit("Mul", [x, x])[0]
    return b.emit("Pow", [b.emit("Abs", [x])[0], _full(b, (), p, b.type(x).dtype, "p")])[0]


def _root(b, s, p: float) -> str:
    if p == 1:
        return s
    if p == 2:
        return b.emit("Sqrt", [s])[0]
    return b.emit("Pow", [s, _full(b, (), 1.0 / p, b.type(s).dtype, "inv_p")])[0]


@converter("LpPool", 2)
def LpPool(b, ins, n_out, *, kernel_shape, p=2, auto_pad="NOTSET", ceil_mode=0,
           dilations=None, pads=None, strides=None):
    # sum |x|^p over the window = a depthwise convolution with a ones kernel.
    x = ins[0]
    shape = b.shape(x)
    if ceil_mode:
        raise b.error("ceil_mode=1 is not supported for LpPool")
    c = shape[1]
    if len(shape) == 5:
        # 3-D: the window sum is an average over the padded window (every window covers
        # exactly prod(kernel) padded positions without ceil_mode) times the window size.
        (avg,) = pick_converter("AveragePool", b.opset)(
            b, [_abs_pow(b, x, float(p))], 1, kernel_shape=tuple(kernel_shape),
            auto_pad=auto_pad, count_include_pad=1, dilations=dilations, pads=pads,
            strides=strides)
        size = _full(b, (), float(np.prod(kernel_shape)), b.type(x).dtype, "lp_size")
        return [_root(b, b.emit("Mul", [avg, size])[0], float(p))]
    w = b.add_const(np.ones((c, 1) + tuple(kernel_shape), b.type(x).dtype), "lp_ones")
    conv = pick_converter("Conv", b.opset)
    (s,) = conv(b, [_abs_pow(b, x, float(p)), w], 1, auto_pad=auto_pad, dilations=dilations,
                group=c, kernel_shape=tuple(kernel_shape), pads=pads, strides=strides)
    return [_root(b, s, float(p))]


@converter("GlobalLpPool", 2)
def GlobalLpPool(b, ins, n_out, *, p=2):
    x = ins[0]
    rank = len(b.shape(x))
    s = b.emit("ReduceSum", [_abs_pow(b, x, float(p))],
               {"axes": tuple(range(2, rank)), "keepdims": 1})[0]
    return [_root(b, s, float(p))]

"""ONNX quantization converters: QuantizeLinear, DequantizeLinear (kept as nodes for the QDQ
rewrite in passes/quantize.py), the QOperator ops QLinearConv, QLinearMatMul, ConvInteger,
MatMulInteger (straight to the integer kernels QConv/QGemm), DynamicQuantizeLinear (float
ops computing the scale at run time)."""

from __future__ import annotations

import numpy as np
from onnx import helper

from tilecc.passes.quantize import QLayer, fold_layer

from .onnx_builder import Builder, converter
from .onnx_converters import _reshape, _windowed


def _opt(b: Builder, ins, k: int, what: str, default):
    if len(ins) > k and ins[k]:
        return np.asarray(b.static(ins[k], what))
    return np.asarray(default)


def _scalar(b: Builder, arr, what: str):
    arr = np.asarray(arr)
    if arr.size != 1:
        raise b.error(f"{what} must be a single value (per-tensor), got shape {list(arr.shape)}")
    return arr.reshape(()).item()


@converter("QuantizeLinear", 10)
def QuantizeLinear(b, ins, n_out, *, axis=1, saturate=1, block_size=0, output_dtype=0):
    if block_size:
        raise b.error("blocked quantization (block_size) is not supported")
    if len(ins) > 2 and ins[2]:
        dtype = b.graph.types[ins[2]].dtype
    else:
        dtype = helper.tensor_dtype_to_np_dtype(output_dtype).name if output_dtype else "uint8"
    if dtype not in ("uint8", "int8"):
        raise b.error(f"QuantizeLinear to {dtype} is not supported (uint8/int8 only)")
    inputs = [i for i in ins[:3] if i]
    return b.emit("QuantizeLinear", inputs, {"axis": int(axis), "dtype": dtype})


@converter("DequantizeLinear", 10)
def DequantizeLinear(b, ins, n_out, *, axis=1, block_size=0):
    if block_size:
        raise b.error("blocked quantization (block_size) is not supported")
    if b.graph.types[ins[0]].dtype not in ("uint8", "int8", "int32"):
        raise b.error(f"DequantizeLinear of {b.graph.types[ins[0]].dtype} is not supported")
    inputs = [i for i in ins[:3] if i]
    return b.emit("DequantizeLinear", inputs, {"axis": int(axis)})


def _qconv(b, x, w_q, layer_kw, out_dtype, bias_q, y, group, kernel_shape, auto_pad,
           dilations, pads, strides):
    if w_q.ndim == 3:
        w_q = w_q.reshape(w_q.shape[:2] + (1,) + w_q.shape[2:])
    q = QLayer(w_q=w_q, bias_q=bias_q, conv=True, **layer_kw)
    if y is not None:
        q.y_scale, q.y_zp, q.y_dtype = y
    else:
        q.y_dtype = out_dtype
    wf, bias, scale = fold_layer(q)
    consts = [b.add_const(wf, "qw"), b.add_const(bias, "qbias"), b.add_const(scale, "qscale")]
    kernel = tuple(kernel_shape or w_q.shape[2:])
    qattrs = {"group": int(group), "x_zp": int(q.x_zp), "y_zp": int(q.y_zp),
              "out_dtype": q.y_dtype, "relu": False}
    if len(b.shape(x)) == 3:
        kernel = kernel[-1:]

    def emit2d(x4, attrs):
        return b.emit("QConv", [x4] + consts, {**attrs, **qattrs})[0]
    return [_windowed(b, x, kernel, strides, dilations, pads, auto_pad, emit2d)]


@converter("QLinearConv", 10)
def QLinearConv(b, ins, n_out, *, auto_pad="NOTSET", dilations=None, group=1,
                kernel_shape=None, pads=None, strides=None):
    x = ins[0]
    xs, xz = b.static(ins[1], "x_scale"), b.static(ins[2], "x_zero_point")
    w_q = b.static(ins[3], "w (weights)")
    ws, wz = b.static(ins[4], "w_scale"), b.static(ins[5], "w_zero_point")
    ys, yz = b.static(ins[6], "y_scale"), b.static(ins[7], "y_zero_point")
    bias = _opt(b, ins, 8, "B (bias)", np.zeros(w_q.shape[0], np.int32))
    kw = {"w_scale": ws, "w_zp": wz, "x_scale": _scalar(b, xs, "x_scale"),
              "x_zp": _scalar(b, xz, "x_zero_point")}
    y = (_scalar(b, ys, "y_scale"), _scalar(b, yz, "y_zero_point"), yz.dtype.name)
    return _qconv(b, x, w_q, kw, None, bias, y, group, kernel_shape, auto_pad, dilations,
                  pads, strides)


@converter("ConvInteger", 10)
def ConvInteger(b, ins, n_out, *, auto_pad="NOTSET", dilations=None, group=1,
                kernel_shape=None, pads=None, strides=None):
    w_q = b.static(ins[1], "w (weights)")
    xz = _opt(b, ins, 2, "x_zero_point", 0)
    wz = _opt(b, ins, 3, "w_zero_point", 0)
    kw = {"w_scale": np.ones(1, np.float32), "w_zp": wz, "x_scale": 1.0,
              "x_zp": _scalar(b, xz, "x_zero_point")}
    return _qconv(b, ins[0], w_q, kw, "int32", None, None, group, kernel_shape, auto_pad,
                  dilations, pads, strides)


def _qmatmul(b, a, b_q, layer_kw, y, out_dtype):
    if b_q.ndim != 2:
        raise b.error(f"only 2-D constant B is supported, got shape {list(b_q.shape)}")
    q = QLayer(w_q=b_q, bias_q=None, conv=False, **layer_kw)
    if y is not None:
        q.y_scale, q.y_zp, q.y_dtype = y
    else:
        q.y_dtype = out_dtype
    wf, bias, scale = fold_layer(q)
    consts = [b.add_const(wf, "qw"), b.add_const(bias, "qbias"), b.add_const(scale, "qscale")]
    shape = b.shape(a)
    if len(shape) == 1:
        a2 = _reshape(b, a, (1, shape[0]))
    else:
        a2 = _reshape(b, a, (int(np.prod(shape[:-1])), shape[-1]))
    out = b.emit("QGemm", [a2] + consts, {"x_zp": int(q.x_zp), "y_zp": int(q.y_zp),
                                          "out_dtype": q.y_dtype, "relu": False})[0]
    return [_reshape(b, out, tuple(shape[:-1]) + (b_q.shape[1],))]


@converter("QLinearMatMul", 10)
def QLinearMatMul(b, ins, n_out):
    as_, az = b.static(ins[1], "a_scale"), b.static(ins[2], "a_zero_point")
    b_q = b.static(ins[3], "b (weights)")
    bs, bz = b.static(ins[4], "b_scale"), b.static(ins[5], "b_zero_point")
    ys, yz = b.static(ins[6], "y_scale"), b.static(ins[7], "y_zero_point")
    kw = {"w_scale": bs, "w_zp": bz, "x_scale": _scalar(b, as_, "a_scale"),
              "x_zp": _scalar(b, az, "a_zero_point")}
    y = (_scalar(b, ys, "y_scale"), _scalar(b, yz, "y_zero_point"), yz.dtype.name)
    return _qmatmul(b, ins[0], b_q, kw, y, None)


@converter("MatMulInteger", 10)
def MatMulInteger(b, ins, n_out):
    b_q = b.static(ins[1], "B (weights)")
    az = _opt(b, ins, 2, "a_zero_point", 0)
    bz = _opt(b, ins, 3, "b_zero_point", 0)
    kw = {"w_scale": np.ones(1, np.float32), "w_zp": bz, "x_scale": 1.0,
              "x_zp": _scalar(b, az, "a_zero_point")}
    return _qmatmul(b, ins[0], b_q, kw, None, "int32")


@converter("DynamicQuantizeLinear", 11)
def DynamicQuantizeLinear(b, ins, n_out):
    x = ins[0]
    axes = tuple(range(len(b.shape(x))))
    zero = b.add_const(np.float32(0), "zero")
    lo = b.emit("Min", [b.emit("ReduceMin", [x], {"axes": axes, "keepdims": 0})[0], zero])[0]
    hi = b.emit("Max", [b.emit("ReduceMax", [x], {"axes": axes, "keepdims": 0})[0], zero])[0]
    scale = b.emit("Div", [b.emit("Sub", [hi, lo])[0], b.add_const(np.float32(255), "qmax")])[0]
    zpf = b.emit("Round", [b.emit("Clip", [b.emit("Div", [b.emit("Neg", [lo])[0], scale])[0]],
                                  {"min": 0.0, "max": 255.0})[0]])[0]
    v = b.emit("Add", [b.emit("Round", [b.emit("Div", [x, scale])[0]])[0], zpf])[0]
    y = b.emit("Cast", [b.emit("Clip", [v], {"min": 0.0, "max": 255.0})[0]], {"to": "uint8"})[0]
    return [y, scale, b.emit("Cast", [zpf], {"to": "uint8"})[0]]

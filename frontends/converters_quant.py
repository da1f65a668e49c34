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


_QRANGES = {"uint8": (0, 255), "int8": (-128, 127), "uint16": (0, 65535),
            "int16": (-32768, 32767)}


def _qparam(b: Builder, p: str, x: str, axis: int, block_size: int) -> str:
    """Scale or zero point `p` as float32, shaped to broadcast against x: per-tensor (scalar),
    per-axis (1-D along `axis`) or blocked (x's rank, `axis` holding ceil(n / block_size)
    entries, each repeated over its block with a constant-index Gather)."""
    shape = b.shape(x)
    v = p if b.type(p).dtype == "float32" else b.emit("Cast", [p], {"to": "float32"})[0]
    ps = b.shape(v)
    if block_size:
        if len(ps) != len(shape):
            raise b.error(f"blocked quantization needs a parameter of rank {len(shape)}, got "
                          f"shape {list(ps)}")
        idx = b.add_const(np.arange(shape[axis], dtype=np.int64) // block_size, "block_idx")
        return b.emit("Gather", [v, idx], {"axis": axis})[0]
    size = int(np.prod(ps, dtype=np.int64))
    if size == 1:
        return _reshape(b, v, ())
    if len(ps) != 1 or ps[0] != shape[axis]:
        raise b.error(f"a per-axis parameter must be 1-D with {shape[axis]} entries (axis "
                      f"{axis}), got shape {list(ps)}")
    return _reshape(b, v, [shape[axis] if d == axis else 1 for d in range(len(shape))])


def _quantize(b: Builder, x: str, scale: str, zp: str, axis: int, block_size: int,
              dtype: str) -> str:
    """ONNX QuantizeLinear as float ops: saturate(round_half_even(x / scale) + zp)."""
    lo, hi = _QRANGES[dtype]
    xf = x if b.type(x).dtype == "float32" else b.emit("Cast", [x], {"to": "float32"})[0]
    v = b.emit("Round", [b.emit("Div", [xf, _qparam(b, scale, x, axis, block_size)])[0]])[0]
    if zp:
        v = b.emit("Add", [v, _qparam(b, zp, x, axis, block_size)])[0]
    v = b.emit("Clip", [v], {"min": float(lo), "max": float(hi)})[0]
    return b.emit("Cast", [v], {"to": dtype})[0]


def _dequantize(b: Builder, q: str, scale: str, zp: str, axis: int, block_size: int) -> str:
    """ONNX DequantizeLinear as float ops: (q - zp) * scale, in scale's type."""
    v = b.emit("Cast", [q], {"to": "float32"})[0]
    if zp:
        v = b.emit("Sub", [v, _qparam(b, zp, q, axis, block_size)])[0]
    v = b.emit("Mul", [v, _qparam(b, scale, q, axis, block_size)])[0]
    out = b.type(scale).dtype
    return v if out == "float32" else b.emit("Cast", [v], {"to": out})[0]


def _kernel_form(b: Builder, ins, dtypes) -> bool:
    """True when a Q/DQ node has the form passes/quantize.py fuses into integer kernels:
    constant float32 scale and zero point, 8-bit types, no blocks."""
    return (all(b.const(i) is not None for i in ins[1:3] if i)
            and b.type(ins[1]).dtype == "float32" and dtypes <= {"uint8", "int8", "int32"})


@converter("QuantizeLinear", 10)
def QuantizeLinear(b, ins, n_out, *, axis=1, saturate=1, block_size=0, output_dtype=0,
                   precision=0):
    if len(ins) > 2 and ins[2]:
        dtype = b.type(ins[2]).dtype
    else:
        dtype = helper.tensor_dtype_to_np_dtype(output_dtype).name if output_dtype else "uint8"
    if dtype not in _QRANGES:
        raise b.error(f"QuantizeLinear to {dtype} is not supported (uint8/int8/uint16/int16)")
    # A per-tensor parameter ignores axis (even one past a 1-D input's rank).
    axis = int(axis) % max(1, len(b.shape(ins[0])))
    if not block_size and _kernel_form(b, ins, {dtype}):
        inputs = [i for i in ins[:3] if i]
        return b.emit("QuantizeLinear", inputs, {"axis": axis, "dtype": dtype})
    zp = ins[2] if len(ins) > 2 else ""
    return [_quantize(b, ins[0], ins[1], zp, axis, int(block_size), dtype)]


@converter("DequantizeLinear", 10)
def DequantizeLinear(b, ins, n_out, *, axis=1, block_size=0, output_dtype=0):
    dtype = b.type(ins[0]).dtype
    if dtype not in set(_QRANGES) | {"int32"}:
        raise b.error(f"DequantizeLinear of {dtype} is not supported "
                      "(uint8/int8/uint16/int16/int32)")
    axis = int(axis) % max(1, len(b.shape(ins[0])))
    if not block_size and _kernel_form(b, ins, {dtype}):
        inputs = [i for i in ins[:3] if i]
        return b.emit("DequantizeLinear", inputs, {"axis": axis})
    zp = ins[2] if len(ins) > 2 else ""
    return [_dequantize(b, ins[0], ins[1], zp, axis, int(block_size))]


def _folded_layer(b, w_q, bias_q, conv, layer_kw, y, out_dtype):
    """The QLayer of a QLinear*/…Integer op and its folded weights, bias and scale as graph
    constants. `y` is (scale, zero point, dtype) of a requantized output; None: the
    accumulator comes out as `out_dtype`."""
    q = QLayer(w_q=w_q, bias_q=bias_q, conv=conv, **layer_kw)
    if y is not None:
        q.y_scale, q.y_zp, q.y_dtype = y
    else:
        q.y_dtype = out_dtype
    wf, bias, scale = fold_layer(q)
    return q, [b.add_const(wf, "qw"), b.add_const(bias, "qbias"), b.add_const(scale, "qscale")]


def _qconv(b, x, w_q, layer_kw, out_dtype, bias_q, y, group, kernel_shape, auto_pad,
           dilations, pads, strides):
    if w_q.ndim == 3:
        w_q = w_q.reshape(w_q.shape[:2] + (1,) + w_q.shape[2:])
    q, consts = _folded_layer(b, w_q, bias_q, True, layer_kw, y, out_dtype)
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
    q, consts = _folded_layer(b, b_q, None, False, layer_kw, y, out_dtype)
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
    if b_q.ndim != 2 or as_.dtype != np.float32:
        return [_qlinear_matmul_float(b, ins[0], b_q, (as_, az), (bs, bz), (ys, yz))]
    kw = {"w_scale": bs, "w_zp": bz, "x_scale": _scalar(b, as_, "a_scale"),
              "x_zp": _scalar(b, az, "a_zero_point")}
    y = (_scalar(b, ys, "y_scale"), _scalar(b, yz, "y_zero_point"), yz.dtype.name)
    return _qmatmul(b, ins[0], b_q, kw, y, None)


def _qlinear_matmul_float(b: Builder, a: str, b_q: np.ndarray, qa, qb, qy) -> str:
    """QLinearMatMul with batched B or float16 scales: the zero-point-shifted integer operands
    multiply exactly in float32 (exact while K * 255**2 < 2**24, checked), then one combined
    scale, round half to even, add the output zero point, saturate."""
    k = b.shape(a)[-1]
    if k * 255 * 255 >= 2 ** 24:
        raise b.error(f"batched QLinearMatMul with K={k} would lose exactness in float32; "
                      "use a 2-D B")
    (as_, az), (bs, bz), (ys, yz) = qa, qb, qy
    for v, what in ((as_, "a_scale"), (ys, "y_scale"), (az, "a_zero_point"),
                    (yz, "y_zero_point")):
        _scalar(b, v, what)
    af = b.emit("Sub", [b.emit("Cast", [a], {"to": "float32"})[0],
                        b.add_const(np.float32(az.reshape(-1)[0]), "a_zp")])[0]
    bz_col = np.asarray(bz, np.float32).reshape(-1)
    bf = b.add_const(b_q.astype(np.float32) - bz_col, "b_shifted")
    acc = b.emit("MatMul", [af, bf])[0]
    # The scales multiply in their own type, as the ONNX reference does, then widen.
    comb = (as_.reshape(-1)[0] * np.asarray(bs).reshape(-1) / ys.reshape(-1)[0])
    v = b.emit("Mul", [acc, b.add_const(comb.astype(np.float32), "qscale")])[0]
    v = b.emit("Add", [b.emit("Round", [v])[0],
                       b.add_const(np.float32(yz.reshape(-1)[0]), "y_zp")])[0]
    lo, hi = _QRANGES[yz.dtype.name]
    v = b.emit("Clip", [v], {"min": float(lo), "max": float(hi)})[0]
    return b.emit("Cast", [v], {"to": yz.dtype.name})[0]


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

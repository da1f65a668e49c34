"""Quantization passes.

- `lower_qdq`: pre-quantized (QDQ) models. DequantizeLinear -> Conv/Gemm/MatMul [-> Relu]
  [-> QuantizeLinear] becomes one integer kernel (QConv/QGemm) with requantization in its
  epilogue; the Q/DQ nodes left over become elementwise float chains (which fuse into their
  neighbours' kernels). Runs right after import, before constant folding would turn quantized
  weights into float ones.
- `quantize_ptq`: post-training int8 quantization of an fp32 graph from calibration data
  (passes/calibrate.py): per-output-channel symmetric int8 weights, per-tensor asymmetric
  uint8 activations, bias correction, ops in `keep_fp32` left alone.

Weight packing for the target's kernels is passes/quant_pack.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tilecc.errors import TileccError
from tilecc.graph import Graph, Node
from tilecc.ops.quant import QRANGE
from tilecc.ops.registry import get_op

# Ops PTQ keeps in fp32 by default: only Conv/Gemm/MatMul are ever quantized, the list makes
# the policy explicit for `--keep-fp32` (normalisations and softmax stay float everywhere).
DEFAULT_KEEP_FP32 = ("Softmax", "LogSoftmax", "LayerNormalization", "GroupNormalization",
                     "InstanceNormalization", "ReduceMean")
QUANTIZABLE = ("Conv", "Gemm", "MatMul")


class _Emitter:
    """Appends typed nodes to a node list being rebuilt."""

    def __init__(self, g: Graph, nodes: list[Node]):
        self.g, self.nodes = g, nodes

    def emit(self, op, inputs, attrs=None, name="", out=None):
        attrs = dict(attrs or {})
        t = get_op(op).infer([self.g.types[i] for i in inputs], attrs)[0]
        out = out or self.g.fresh_name(f"{name or op.lower()}_out")
        self.g.types[out] = t
        self.nodes.append(Node(op, tuple(inputs), (out,), attrs, name or op.lower()))
        return out

    def const(self, base, value):
        return self.g.add_const(base, np.asarray(value))


def _per_axis(g: Graph, shape, axis, p, dtype, base):
    """A constant scale/zero point shaped to broadcast over `axis` of a tensor of `shape`."""
    p = np.asarray(p, dtype)
    if p.size > 1:
        axis = axis % len(shape)
        p = p.reshape([-1 if d == axis else 1 for d in range(len(shape))])
    else:
        p = p.reshape(())
    return g.add_const(base, p)


def emit_quantize(em: _Emitter, x: str, scale, zp, dtype: str, axis: int = 1, out=None) -> str:
    """x / scale, round half to even, + zero point, saturate, cast: as QuantizeLinear."""
    shape = em.g.types[x].shape
    lo, hi = QRANGE[dtype]
    s = _per_axis(em.g, shape, axis, scale, "float32", "q_scale")
    v = em.emit("Round", [em.emit("Div", [x, s])])
    if np.any(np.asarray(zp) != 0):
        v = em.emit("Add", [v, _per_axis(em.g, shape, axis, zp, "float32", "q_zp")])
    v = em.emit("Clip", [v], {"min": float(lo), "max": float(hi)})
    return em.emit("Cast", [v], {"to": dtype}, out=out)


def emit_dequantize(em: _Emitter, q: str, scale, zp, axis: int = 1, out=None) -> str:
    shape = em.g.types[q].shape
    v = em.emit("Cast", [q], {"to": "float32"})
    if np.any(np.asarray(zp) != 0):
        v = em.emit("Sub", [v, _per_axis(em.g, shape, axis, zp, "float32", "dq_zp")])
    return em.emit("Mul", [v, _per_axis(em.g, shape, axis, scale, "float32", "dq_scale")],
                   out=out)


@dataclass
class QLayer:
    """What an integer kernel needs, in ONNX's terms: quantized weights with the output
    channel on axis 0 (Conv OIHW) or 1 (B as K x N), per-channel weight scales/zero points."""

    w_q: np.ndarray
    w_scale: np.ndarray
    w_zp: np.ndarray
    x_scale: float
    x_zp: int
    bias_q: np.ndarray | None  # int32, scale x_scale * w_scale
    y_scale: float | None = None  # None: float output
    y_zp: int = 0
    y_dtype: str = "float32"
    conv: bool = True


def fold_layer(q: QLayer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights, bias, requant scale) for QConv/QGemm: weight zero points subtracted at
    compile time (int16 storage when that leaves int8's range), and -x_zp * sum(w) folded
    into the int32 bias so the kernel's reduction has no zero-point term."""
    oc_axis = 0 if q.conv else 1
    oc = q.w_q.shape[oc_axis]
    shape = [1] * q.w_q.ndim
    shape[oc_axis] = -1
    w = q.w_q.astype(np.int32) - np.broadcast_to(np.asarray(q.w_zp, np.int32).reshape(-1),
                                                 (oc,)).reshape(shape)
    red = tuple(d for d in range(w.ndim) if d != oc_axis)
    wsum = w.astype(np.int64).sum(axis=red)
    bias = np.zeros(oc, np.int64) if q.bias_q is None else q.bias_q.astype(np.int64).reshape(-1)
    bias = bias - int(q.x_zp) * wsum
    if np.abs(bias).max(initial=0) >= 2**31:
        raise TileccError("quantized layer: folded bias overflows int32 (weights or zero "
                          "points out of the usual int8 ranges)")
    wdt = np.int8 if w.min(initial=0) >= -128 and w.max(initial=0) <= 127 else np.int16
    ws = np.broadcast_to(np.asarray(q.w_scale, np.float32).reshape(-1), (oc,))
    scale = np.float32(q.x_scale) * ws
    if q.y_scale is not None:
        scale = scale / np.float32(q.y_scale)
    return w.astype(wdt), bias.astype(np.int32), scale.astype(np.float32)


def emit_qlayer(em: _Emitter, x: str, q: QLayer, attrs: dict, relu: bool, out=None,
                name="") -> str:
    """QConv (attrs: strides, pads, dilations, group) or QGemm on a quantized input x;
    inputs of rank > 2 to a GEMM are flattened to rows and reshaped back."""
    w, bias, scale = fold_layer(q)
    qattrs = {"x_zp": int(q.x_zp), "y_zp": int(q.y_zp), "out_dtype": q.y_dtype,
              "relu": bool(relu)}
    ins = [em.const("qw", w), em.const("qbias", bias), em.const("qscale", scale)]
    if q.conv:
        return em.emit("QConv", [x] + ins, {**attrs, **qattrs}, name=name or "qconv", out=out)
    shape = em.g.types[x].shape
    if len(shape) != 2:
        x = em.emit("Reshape", [x], {"shape": (int(np.prod(shape[:-1])), shape[-1])})
    y = em.emit("QGemm", [x] + ins, qattrs, name=name or "qgemm",
                out=out if len(shape) == 2 else None)
    if len(shape) != 2:
        y = em.emit("Reshape", [y], {"shape": tuple(shape[:-1]) + (w.shape[1],)}, out=out)
    return y


# ---- QDQ models ---------------------------------------------------------------------------


def _const_params(g: Graph, n: Node):
    """(scale, zero point) of a Q/DQ node if both are constants, else None."""
    s = g.consts.get(n.inputs[1])
    if s is None:
        return None
    if len(n.inputs) > 2 and n.inputs[2]:
        z = g.consts.get(n.inputs[2])
        if z is None:
            return None
    else:
        z = np.zeros((), n.attrs.get("dtype", "uint8"))
    return s, z


def lower_qdq(graph: Graph) -> Graph:
    """Rewrite DQ -> Conv/Gemm/MatMul [-> Relu] [-> Q] into integer kernels, then lower every
    remaining QuantizeLinear/DequantizeLinear into elementwise float ops."""
    if not any(n.op in ("QuantizeLinear", "DequantizeLinear") for n in graph.nodes):
        return graph
    g = graph.copy()
    prod, cons = g.producers(), g.consumers()
    outputs = set(g.outputs)
    nodes: list[Node] = []
    em = _Emitter(g, nodes)
    skip: set[int] = set()  # ids of nodes absorbed into an integer kernel
    for n in g.nodes:
        if id(n) in skip:
            continue
        m = _match_qdq(g, n, prod, cons, outputs)
        if m is None:
            nodes.append(n)
            continue
        x, q, attrs, relu, tail, absorbed = m
        skip.update(id(a) for a in absorbed)
        emit_qlayer(em, x, q, attrs, relu, out=tail, name=n.name)
    # Leftover Q/DQ: float chains.
    final: list[Node] = []
    em2 = _Emitter(g, final)
    for n in nodes:
        if n.op in ("QuantizeLinear", "DequantizeLinear"):
            p = _const_params(g, n)
            if p is None:
                raise TileccError(f"node {n.name or n.op}: {n.op} with a non-constant scale or "
                                  "zero point is not supported (quantization parameters must "
                                  "be initializers)")
            s, z = p
            axis = n.attrs.get("axis", 1)
            if n.op == "QuantizeLinear":
                emit_quantize(em2, n.inputs[0], s, z, g.types[n.outputs[0]].dtype, axis,
                              out=n.outputs[0])
            else:
                emit_dequantize(em2, n.inputs[0], s, z, axis, out=n.outputs[0])
        else:
            final.append(n)
    g.nodes = final
    return g


def _match_qdq(g, n, prod, cons, outputs):
    if n.op not in QUANTIZABLE:
        return None
    dx, dw = prod.get(n.inputs[0]), prod.get(n.inputs[1])
    if dx is None or dw is None or dx.op != "DequantizeLinear" or dw.op != "DequantizeLinear":
        return None
    px, pw = _const_params(g, dx), _const_params(g, dw)
    if px is None or pw is None or dw.inputs[0] not in g.consts or np.size(px[0]) != 1:
        return None
    xq = dx.inputs[0]
    if g.types[xq].dtype not in QRANGE:
        return None
    w_q = g.consts[dw.inputs[0]]
    ws, wz = pw
    conv = n.op == "Conv"
    attrs: dict = {}
    if conv:
        attrs = {k: n.attrs[k] for k in ("strides", "pads", "dilations", "group")}
        if np.size(ws) > 1 and dw.attrs.get("axis", 1) % 4 != 0:
            return None
    else:
        if n.op == "Gemm":
            a = n.attrs
            if a.get("transA") or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
                return None
            if a.get("transB"):
                if np.size(ws) > 1 and dw.attrs.get("axis", 1) % 2 != 0:
                    return None
                w_q = w_q.T
            elif np.size(ws) > 1 and dw.attrs.get("axis", 1) % 2 != 1:
                return None
        elif w_q.ndim != 2 or (np.size(ws) > 1 and dw.attrs.get("axis", 1) % 2 != 1):
            return None
    x_scale, x_zp = float(np.asarray(px[0]).reshape(())), int(np.asarray(px[1]).reshape(()))
    bias_q = None
    if len(n.inputs) > 2 and n.inputs[2]:
        b = n.inputs[2]
        db = prod.get(b)
        oc = w_q.shape[0 if conv else 1]
        if db is not None and db.op == "DequantizeLinear" and db.inputs[0] in g.consts:
            bias_q = g.consts[db.inputs[0]].astype(np.int64)
        elif b in g.consts and g.consts[b].size in (1, oc):
            bs = np.float32(x_scale) * np.broadcast_to(np.asarray(ws, np.float32).reshape(-1),
                                                       (oc,))
            bias_q = np.round(np.broadcast_to(g.consts[b].reshape(-1), (oc,)) / bs)
        else:
            return None
        bias_q = np.broadcast_to(bias_q.reshape(-1), (oc,)).astype(np.int64)
    q = QLayer(w_q=w_q, w_scale=ws, w_zp=wz, x_scale=x_scale, x_zp=x_zp, bias_q=bias_q,
               conv=conv)
    absorbed = [n]
    y, relu = n.outputs[0], False
    users = cons.get(y, [])
    if len(users) == 1 and users[0].op == "Relu" and y not in outputs:
        relu = True
        absorbed.append(users[0])
        y = users[0].outputs[0]
        users = cons.get(y, [])
    tail = y
    if len(users) == 1 and users[0].op == "QuantizeLinear" and y not in outputs:
        pq = _const_params(g, users[0])
        if pq is not None and np.size(pq[0]) == 1:
            q.y_scale = float(np.asarray(pq[0]).reshape(()))
            q.y_zp = int(np.asarray(pq[1]).reshape(()))
            q.y_dtype = g.types[users[0].outputs[0]].dtype
            absorbed.append(users[0])
            tail = users[0].outputs[0]
    return xq, q, attrs, relu, tail, absorbed


# ---- post-training quantization -------------------------------------------------------------


@dataclass
class QuantOptions:
    calibration: object = None  # path, or a list of {input name: array} samples
    method: str = "minmax"
    keep_fp32: tuple[str, ...] = DEFAULT_KEEP_FP32
    bias_correction: bool = True
    expose: bool = False  # add each quantized layer's (dequantized) output as a graph output
    percentile: float = 99.99
    # Depthwise convs in int8 (QDWConv)? None: not on CPUs with an OS, yes on GPUs and bare
    # metal. Int8 activations stay NCHW while fp32 ones are channel-blocked, and a depthwise
    # conv over NCHW bytes vectorises along narrow rows: on Zen 3 a ds_cnn_kws depthwise layer
    # took 14 us as QDWConv but 9.8 us as a blocked fp32 conv with its layout transforms and
    # quantize fused (fp32 alone: 2.5 us). On a microcontroller memory decides: fp32
    # activations around each depthwise conv would take four times the arena.
    depthwise: bool | None = None
    # Weights in [-64, 64] (7 bits) instead of [-127, 127]: faster on x86 without VNNI
    # (passes/quant_dot.py), the same on every other target; onnxruntime's option of the name.
    reduce_range: bool = False
    report: dict = field(default_factory=dict)  # filled: tensor -> (scale, zero point)


def _depthwise_conv(g: Graph, n: Node) -> bool:
    return n.op == "Conv" and n.attrs["group"] > 1 and n.inputs[1] in g.consts \
        and g.consts[n.inputs[1]].shape[1] == 1


def _candidates(g: Graph, keep, packed_ok: bool = False, depthwise: bool = True) -> list[Node]:
    out = []
    for n in g.nodes:
        if n.op not in QUANTIZABLE or n.op in keep or (n.name and n.name in keep):
            continue
        if not depthwise and _depthwise_conv(g, n):
            continue
        if n.inputs[1] not in g.consts or g.types[n.inputs[0]].dtype != "float32":
            continue
        if n.op == "Gemm" and (n.attrs.get("transA") or n.attrs.get("alpha", 1.0) != 1.0
                               or n.attrs.get("beta", 1.0) != 1.0):
            continue
        if n.op == "MatMul" and g.consts[n.inputs[1]].ndim != 2:
            continue
        if n.op == "Conv" and n.attrs.get("weight_block") and not packed_ok:
            continue
        out.append(n)
    return out


def _activation(y: str, cons, outputs) -> Node | None:
    """The activation a layer writing `y` may absorb: a sole Relu, or a sole Clip(0, b)
    (Relu6). With uint8 outputs a Clip(0, b) is the requantization's own clamp: its output
    range, calibrated, lies in [0, b], so zero point 0 clamps at 0 and 255 saturates at or
    below b; quantize(clip(v)) equals quantize(v) exactly."""
    users = cons.get(y, [])
    if len(users) != 1 or y in outputs:
        return None
    a = users[0]
    if a.op == "Relu" or (a.op == "Clip" and len(a.inputs) == 1 and a.attrs.get("min") == 0.0
                          and (a.attrs.get("max") or 0.0) > 0.0):
        return a
    return None


def layer_tensors(graph: Graph, keep=DEFAULT_KEEP_FP32) -> list[str]:
    """The float tensors PTQ quantizes layer by layer (each layer's output, after a Relu or
    Relu6 it absorbs), in graph order: `tilecc compare` reports these."""
    cons, outputs = graph.consumers(), set(graph.outputs)
    outs = []
    for n in _candidates(graph, set(keep), packed_ok=True):
        act = _activation(n.outputs[0], cons, outputs)
        outs.append(act.outputs[0] if act is not None else n.outputs[0])
    return outs


def _act_qparams(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric uint8 over [lo, hi] widened to hold 0 exactly."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0 if hi > lo else 1.0
    zp = int(np.clip(np.round(-lo / scale), 0, 255))
    return float(np.float32(scale)), zp


def default_int8_depthwise(target) -> bool:
    """QuantOptions.depthwise when not given: int8 depthwise convs except on CPUs with an OS."""
    return getattr(target, "kind", None) != "cpu" or bool(getattr(target, "bare_metal", False))


def quantize_ptq(graph: Graph, opts: QuantOptions, target) -> Graph:
    from .calibrate import collect, load_samples, tensor_range
    from .quant_dot import weight_limit

    keep = set(opts.keep_fp32)
    wmax = weight_limit(opts.reduce_range)
    g = graph.copy()
    dw = opts.depthwise if opts.depthwise is not None else default_int8_depthwise(target)
    cands = _candidates(g, keep, depthwise=dw)
    if not cands:
        return g
    cons = g.consumers()
    outputs = set(g.outputs)
    acts = {id(n): _activation(n.outputs[0], cons, outputs) for n in cands}
    layer_out = {id(n): acts[id(n)].outputs[0] if acts[id(n)] is not None else n.outputs[0]
                 for n in cands}
    tensors = list(dict.fromkeys([n.inputs[0] for n in cands]
                                 + [layer_out[id(n)] for n in cands]))
    axes = {n.inputs[0]: (1 if n.op == "Conv" else -1) for n in cands}
    samples = opts.calibration
    if not isinstance(samples, list):
        samples = load_samples(samples, g)
    stats = collect(g, tensors, samples, target, opts.method, axes)
    qp = {t: _act_qparams(*tensor_range(stats[t], opts.method, opts.percentile))
          for t in tensors}
    opts.report.update(qp)

    in_q = {id(n) for n in cands}
    # A uint8 output serves layers that all read it quantized, and average pools (which then
    # dequantize their mean: QAveragePool); anything else reads float.
    int8_out = {}
    for n in cands:
        y = layer_out[id(n)]
        users = cons.get(y, [])
        int8_out[id(n)] = bool(users) and y not in outputs and all(
            (id(u) in in_q and u.inputs[0] == y) or _qpool_attrs(g, u) is not None
            for u in users)
    # Relu always folds into the epilogue; Clip(0, b) only into a uint8 one (a float
    # epilogue has no upper clamp, so the Clip stays and fuses after the layer).
    absorbed = {id(a) for n in cands if (a := acts[id(n)]) is not None
                and (a.op == "Relu" or int8_out[id(n)])}
    qvalue: dict[str, str] = {}  # float tensor -> its uint8 twin
    nodes: list[Node] = []
    em = _Emitter(g, nodes)
    pooled: dict[str, tuple[float, int]] = {}  # uint8 layer output -> its scale, zero point
    for n in g.nodes:
        if id(n) in absorbed:
            continue
        if id(n) not in in_q:
            pool = _qpool_attrs(g, n) if n.inputs and qvalue.get(n.inputs[0]) in pooled \
                else None
            if pool is None:
                nodes.append(n)
                continue
            xs_, xz_ = pooled[qvalue[n.inputs[0]]]
            em.emit("QAveragePool", [qvalue[n.inputs[0]]],
                    dict(pool, x_scale=xs_, x_zp=xz_), name=n.name, out=n.outputs[0])
            continue
        x = n.inputs[0]
        xs, xz = qp[x]
        if x not in qvalue:
            qvalue[x] = emit_quantize(em, x, xs, xz, "uint8")
        act = acts[id(n)]
        relu = act is not None and id(act) in absorbed
        y = layer_out[id(n)] if relu else n.outputs[0]
        q = _ptq_layer(g, n, xs, xz, stats[x], opts.bias_correction, wmax)
        if int8_out[id(n)]:
            q.y_scale, q.y_zp = qp[y]
            q.y_dtype = "uint8"
            yq = g.fresh_name(f"{y}_q")
            emit_qlayer(em, qvalue[x], q, _conv_attrs(n), relu, out=yq, name=n.name)
            qvalue[y] = yq
            pooled[yq] = (q.y_scale, q.y_zp)
            if opts.expose:
                emit_dequantize(em, yq, q.y_scale, q.y_zp, out=y)
                g.outputs.append(y)
        else:
            emit_qlayer(em, qvalue[x], q, _conv_attrs(n), relu, out=y, name=n.name)
            if opts.expose and layer_out[id(n)] not in g.outputs:
                g.outputs.append(layer_out[id(n)])
    g.nodes = nodes
    return g


def _qpool_attrs(g: Graph, n: Node) -> dict | None:
    """QAveragePool's window for an average pool PTQ may feed uint8 (a global pool, or one
    whose windows lie inside a 4-D input: no padding, no ceil_mode overhang), else None."""
    if len(n.inputs) != 1 or len(g.types[n.inputs[0]].shape) != 4:
        return None
    h, w = g.types[n.inputs[0]].shape[2:]
    if n.op == "GlobalAveragePool":
        return {"kernel": (h, w), "strides": (1, 1)}
    if n.op != "AveragePool" or any(n.attrs["pads"]) \
            or tuple(n.attrs.get("dilations", (1, 1))) != (1, 1):
        return None
    (kh, kw), (sh, sw) = n.attrs["kernel"], n.attrs["strides"]
    if n.attrs.get("ceil_mode") and ((h - kh) % sh or (w - kw) % sw):  # a partial window
        return None
    return {"kernel": (kh, kw), "strides": (sh, sw)}


def _conv_attrs(n: Node) -> dict:
    if n.op != "Conv":
        return {}
    return {k: n.attrs[k] for k in ("strides", "pads", "dilations", "group")}


def _ptq_layer(g: Graph, n: Node, xs: float, xz: int, xstats, bias_correction: bool,
               wmax: int = 127) -> QLayer:
    w = g.consts[n.inputs[1]].astype(np.float32)
    conv = n.op == "Conv"
    if n.op == "Gemm" and n.attrs.get("transB"):
        w = w.T
    oc_axis = 0 if conv else 1
    red = tuple(d for d in range(w.ndim) if d != oc_axis)
    amax = np.abs(w).max(axis=red)
    ws = np.where(amax > 0, amax / wmax, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[oc_axis] = -1
    w_q = np.clip(np.round(w / ws.reshape(shape)), -wmax, wmax).astype(np.int8)
    oc = w.shape[oc_axis]
    b = np.zeros(oc, np.float64)
    if len(n.inputs) > 2 and n.inputs[2]:
        bc = g.consts.get(n.inputs[2])
        if bc is None or bc.size not in (1, oc):
            raise TileccError(f"{n.name or n.op}: bias must be a constant of {oc} values to "
                              "quantize this layer (or keep its op in fp32 with --keep-fp32)")
        b = np.broadcast_to(bc.reshape(-1).astype(np.float64), (oc,)).copy()
    if bias_correction and xstats.channel_sum is not None and xstats.count:
        # Weight rounding shifts each output channel's mean by sum(dW * E[x]); cancel it.
        mean_x = xstats.channel_sum / xstats.count
        dw = (w_q.astype(np.float64) * ws.reshape(shape)) - w
        if conv:
            g_ = n.attrs["group"]
            icg = w.shape[1]
            mx = mean_x.reshape(g_, icg)
            dwg = dw.sum(axis=(2, 3)).reshape(g_, oc // g_, icg)
            shift = np.einsum("goc,gc->go", dwg, mx).reshape(oc)
        else:
            shift = mean_x @ dw
        b = b - shift
    bias_q = np.round(b / (np.float64(np.float32(xs)) * ws.astype(np.float64)))
    return QLayer(w_q=w_q, w_scale=ws, w_zp=np.zeros(oc, np.int8), x_scale=xs, x_zp=xz,
                  bias_q=bias_q.astype(np.int64), conv=conv)

"""Torch-free builders of ONNX CNN models (float32, opset 17, batch 1, static shapes).

Every builder returns an `onnx.ModelProto` that passes `onnx.checker.check_model`. Weights are
random from a seeded numpy RNG (He-normal convolutions, BatchNormalization with random
statistics), so a builder called twice gives the same bytes. The full-size models follow the
real architectures (torchvision / MLPerf Tiny channel counts, kernels and strides) so their
FLOPs match; the graphs look like PyTorch exports: Conv without bias followed by
BatchNormalization, Clip with min/max inputs for ReLU6, x*Sigmoid(x) for SiLU, HardSwish and
HardSigmoid for MobileNetV3, Gemm with transB=1 for Linear layers.

Builders: small ones for fast tests (`resnet_block_model`, `mobilenet_block_model`,
`grouped_conv_model`, `ds_cnn_kws`, `mobilenet_tiny`) and full-size ones (`resnet18`,
`resnet50`, `mobilenet_v2`, `mobilenet_v3_small`, `squeezenet1_1`, `shufflenet_v2`,
`efficientnet_b0`). `BUILDERS` maps each name to its function. (A BERT encoder is not in
scope yet.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
Shape = tuple[int, ...]


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _pool_out(size: int, k: int, s: int, pb: int, pe: int, d: int = 1, ceil: bool = False) -> int:
    span = size + pb + pe - d * (k - 1) - 1
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + pb:  # last window would start in the end padding
        out -= 1
    return out


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's `_make_divisible`: round channels to a multiple of `divisor`."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class GraphBuilder:
    """Append-only ONNX graph builder that tracks the static shape of every value it makes."""

    def __init__(self, name: str, seed: int = 0, opset: int = OPSET):
        self.name = name
        self.opset = opset
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.shapes: dict[str, Shape] = {}
        self._count: dict[str, int] = {}

    # -- plumbing -------------------------------------------------------------------------
    def fresh(self, prefix: str) -> str:
        self._count[prefix] = self._count.get(prefix, 0) + 1
        return f"{prefix}_{self._count[prefix]}"

    def input(self, shape: Shape, name: str = "input") -> str:
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
        self.shapes[name] = tuple(shape)
        return name

    def const(self, value, prefix: str = "const", dtype=np.float32) -> str:
        arr = np.asarray(value, dtype=dtype)
        name = self.fresh(prefix)
        self.inits.append(numpy_helper.from_array(arr, name))
        self.shapes[name] = arr.shape
        return name

    def op(self, op_type: str, inputs: Sequence[str], shape: Shape | None = None, **attrs) -> str:
        """One single-output node; `shape` None means "same shape as the first input"."""
        out = self.fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        self.shapes[out] = tuple(shape) if shape is not None else self.shapes[inputs[0]]
        return out

    def build(self, output: str, output_name: str = "output") -> onnx.ModelProto:
        self.nodes.append(helper.make_node("Identity", [output], [output_name], name="out"))
        self.shapes[output_name] = self.shapes[output]
        graph = helper.make_graph(
            self.nodes,
            self.name,
            self.inputs,
            [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, self.shape(output))],
            initializer=self.inits,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", self.opset)],
            producer_name="tilecc-tests",
        )
        model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
        onnx.checker.check_model(model, full_check=True)
        self._check_shapes(model)
        return model

    def _check_shapes(self, model: onnx.ModelProto) -> None:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        for vi in inferred.graph.value_info:
            dims = tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)
            if vi.name in self.shapes and dims != self.shapes[vi.name]:
                raise AssertionError(f"{vi.name}: builder shape {self.shapes[vi.name]} != {dims}")

    def shape(self, name: str) -> Shape:
        return self.shapes[name]

    def channels(self, name: str) -> int:
        return self.shapes[name][1]

    # -- layers ---------------------------------------------------------------------------
    def conv(self, x: str, cout: int, k, stride=1, pads=None, group: int = 1, dilation=1,
             bias: bool = False) -> str:
        n, cin, h, w = self.shape(x)
        kh, kw = _pair(k)
        sh, sw = _pair(stride)
        dh, dw = _pair(dilation)
        if pads is None:
            ph, pw = dh * (kh - 1) // 2, dw * (kw - 1) // 2
            pads = (ph, pw, ph, pw)
        fan_in = cin // group * kh * kw
        wgt = self.rng.normal(0.0, math.sqrt(2.0 / fan_in), (cout, cin // group, kh, kw))
        inputs = [x, self.const(wgt, "weight")]
        if bias:
            inputs.append(self.const(self.rng.uniform(-0.1, 0.1, cout), "bias"))
        oh = _pool_out(h, kh, sh, pads[0], pads[2], dh)
        ow = _pool_out(w, kw, sw, pads[1], pads[3], dw)
        return self.op("Conv", inputs, (n, cout, oh, ow), kernel_shape=[kh, kw],
                       strides=[sh, sw], pads=list(pads), dilations=[dh, dw], group=group)

    def bn(self, x: str, gamma: tuple[float, float] = (0.7, 1.2)) -> str:
        c = self.channels(x)
        rng = self.rng
        params = [rng.uniform(*gamma, c), rng.normal(0.0, 0.1, c), rng.normal(0.0, 0.1, c),
                  rng.uniform(0.6, 1.4, c)]
        names = [self.const(p, n) for p, n in zip(params, ("gamma", "beta", "mean", "var"))]
        return self.op("BatchNormalization", [x, *names], epsilon=1e-5)

    def act(self, x: str, kind: str | None) -> str:
        if kind is None:
            return x
        if kind == "relu":
            return self.op("Relu", [x])
        if kind == "relu6":
            return self.op("Clip", [x, self.const(0.0, "min"), self.const(6.0, "max")])
        if kind == "hswish":
            return self.op("HardSwish", [x])
        if kind == "hsigmoid":
            return self.op("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)
        if kind == "sigmoid":
            return self.op("Sigmoid", [x])
        if kind == "swish":
            return self.op("Mul", [x, self.op("Sigmoid", [x])])
        raise ValueError(f"unknown activation {kind!r}")

    def conv_bn(self, x: str, cout: int, k, stride=1, group: int = 1, act: str | None = "relu",
                pads=None, gamma: tuple[float, float] = (0.7, 1.2)) -> str:
        y = self.bn(self.conv(x, cout, k, stride, pads=pads, group=group), gamma)
        return self.act(y, act)

    def add(self, a: str, b: str) -> str:
        return self.op("Add", [a, b])

    def mul(self, a: str, b: str) -> str:
        return self.op("Mul", [a, b], np.broadcast_shapes(self.shape(a), self.shape(b)))

    def maxpool(self, x: str, k: int, stride: int, pad: int = 0, ceil: bool = False) -> str:
        n, c, h, w = self.shape(x)
        oh = _pool_out(h, k, stride, pad, pad, ceil=ceil)
        ow = _pool_out(w, k, stride, pad, pad, ceil=ceil)
        return self.op("MaxPool", [x], (n, c, oh, ow), kernel_shape=[k, k], strides=[stride] * 2,
                       pads=[pad] * 4, ceil_mode=int(ceil))

    def avgpool(self, x: str, k, stride, pad: int = 0, count_include_pad: int = 0) -> str:
        n, c, h, w = self.shape(x)
        (kh, kw), (sh, sw) = _pair(k), _pair(stride)
        oh, ow = _pool_out(h, kh, sh, pad, pad), _pool_out(w, kw, sw, pad, pad)
        return self.op("AveragePool", [x], (n, c, oh, ow), kernel_shape=[kh, kw],
                       strides=[sh, sw], pads=[pad] * 4, count_include_pad=count_include_pad)

    def gap(self, x: str) -> str:
        n, c = self.shape(x)[:2]
        return self.op("GlobalAveragePool", [x], (n, c, 1, 1))

    def flatten(self, x: str) -> str:
        s = self.shape(x)
        return self.op("Flatten", [x], (s[0], int(np.prod(s[1:]))), axis=1)

    def gemm(self, x: str, nout: int) -> str:
        n, nin = self.shape(x)
        bound = 1.0 / math.sqrt(nin)
        w = self.const(self.rng.uniform(-bound, bound, (nout, nin)), "fc_weight")
        b = self.const(self.rng.uniform(-bound, bound, nout), "fc_bias")
        return self.op("Gemm", [x, w, b], (n, nout), alpha=1.0, beta=1.0, transB=1)

    def concat(self, xs: Sequence[str], axis: int = 1) -> str:
        shape = list(self.shape(xs[0]))
        shape[axis] = sum(self.shape(x)[axis] for x in xs)
        return self.op("Concat", list(xs), tuple(shape), axis=axis)

    def split_channels(self, x: str, parts: Sequence[int]) -> list[str]:
        n, _, h, w = self.shape(x)
        outs = [self.fresh("split") for _ in parts]
        sizes = self.const(list(parts), "split_sizes", np.int64)
        self.nodes.append(helper.make_node("Split", [x, sizes], outs, name=outs[0], axis=1))
        for o, c in zip(outs, parts):
            self.shapes[o] = (n, c, h, w)
        return outs

    def reshape(self, x: str, shape: Shape) -> str:
        return self.op("Reshape", [x, self.const(list(shape), "shape", np.int64)], tuple(shape))

    def channel_shuffle(self, x: str, groups: int) -> str:
        n, c, h, w = self.shape(x)
        y = self.reshape(x, (n, groups, c // groups, h, w))
        y = self.op("Transpose", [y], (n, c // groups, groups, h, w), perm=[0, 2, 1, 3, 4])
        return self.reshape(y, (n, c, h, w))

    def squeeze_excite(self, x: str, squeeze: int, inner: str, gate: str) -> str:
        c = self.channels(x)
        s = self.act(self.conv(self.gap(x), squeeze, 1, bias=True), inner)
        s = self.act(self.conv(s, c, 1, bias=True), gate)
        return self.mul(x, s)


# -- small models ---------------------------------------------------------------------------


def _basic_block(g: GraphBuilder, x: str, cout: int, stride: int) -> str:
    y = g.conv_bn(x, cout, 3, stride)
    y = g.conv_bn(y, cout, 3, 1, act=None, gamma=(0.2, 0.5))
    if stride != 1 or g.channels(x) != cout:
        x = g.conv_bn(x, cout, 1, stride, act=None)
    return g.act(g.add(y, x), "relu")


def _bottleneck(g: GraphBuilder, x: str, width: int, stride: int) -> str:
    cout = width * 4
    y = g.conv_bn(x, width, 1)
    y = g.conv_bn(y, width, 3, stride)
    y = g.conv_bn(y, cout, 1, act=None, gamma=(0.2, 0.5))
    if stride != 1 or g.channels(x) != cout:
        x = g.conv_bn(x, cout, 1, stride, act=None)
    return g.act(g.add(y, x), "relu")


def _classifier(g: GraphBuilder, x: str, num_classes: int) -> onnx.ModelProto:
    return g.build(g.gemm(g.flatten(g.gap(x)), num_classes))


def resnet_block_model(seed: int = 0) -> onnx.ModelProto:
    """Small ResNet: stem conv7x7/2+BN+ReLU+maxpool, two basic blocks (the second with
    stride 2 and a 1x1 downsample), GlobalAveragePool, Flatten, Gemm. Input 1x3x32x32."""
    g = GraphBuilder("resnet_block", seed)
    x = g.maxpool(g.conv_bn(g.input((1, 3, 32, 32)), 16, 7, 2), 3, 2, 1)
    x = _basic_block(g, x, 16, 1)
    x = _basic_block(g, x, 32, 2)
    return _classifier(g, x, 10)


def _inverted_residual(g: GraphBuilder, x: str, cout: int, stride: int, expand: float,
                       act: str = "relu6", k: int = 3) -> str:
    cin = g.channels(x)
    hidden = round(cin * expand)
    y = g.conv_bn(x, hidden, 1, act=act) if hidden != cin else x
    y = g.conv_bn(y, hidden, k, stride, group=hidden, act=act)
    y = g.conv_bn(y, cout, 1, act=None, gamma=(0.3, 0.6))
    return g.add(y, x) if stride == 1 and cin == cout else y


def mobilenet_block_model(seed: int = 0) -> onnx.ModelProto:
    """Small MobileNetV2-like net: inverted residuals (1x1 expand, 3x3 depthwise, 1x1
    project, residual Add) with ReLU6 as Clip(min, max inputs), plus a HardSwish variant.
    Input 1x3x32x32."""
    g = GraphBuilder("mobilenet_block", seed)
    x = g.conv_bn(g.input((1, 3, 32, 32)), 16, 3, 2, act="relu6")
    x = _inverted_residual(g, x, 16, 1, 4)
    x = _inverted_residual(g, x, 24, 2, 4)
    x = _inverted_residual(g, x, 24, 1, 3, act="hswish")
    x = g.conv_bn(x, 64, 1, act="hswish")
    return _classifier(g, x, 10)


def _shufflenet_v1_unit(g: GraphBuilder, x: str, cout: int, stride: int, groups: int) -> str:
    cin = g.channels(x)
    branch_out = cout - cin if stride == 2 else cout
    mid = cout // 4
    y = g.conv_bn(x, mid, 1, group=groups)
    y = g.channel_shuffle(y, groups)
    y = g.conv_bn(y, mid, 3, stride, group=mid, act=None)
    y = g.conv_bn(y, branch_out, 1, group=groups, act=None, gamma=(0.3, 0.6))
    if stride == 2:
        return g.act(g.concat([g.avgpool(x, 3, 2, 1), y]), "relu")
    return g.act(g.add(y, x), "relu")


def grouped_conv_model(seed: int = 0) -> onnx.ModelProto:
    """Small ShuffleNet(v1)-like net: grouped 1x1 convs, Reshape/Transpose/Reshape channel
    shuffle, depthwise 3x3, Concat with an AveragePool shortcut. Input 1x3x32x32."""
    g = GraphBuilder("grouped_conv", seed)
    x = g.maxpool(g.conv_bn(g.input((1, 3, 32, 32)), 24, 3, 2), 3, 2, 1)
    x = _shufflenet_v1_unit(g, x, 48, 2, 3)
    x = _shufflenet_v1_unit(g, x, 48, 1, 3)
    x = _shufflenet_v1_unit(g, x, 96, 2, 3)
    return _classifier(g, x, 10)


def ds_cnn_kws(seed: int = 0) -> onnx.ModelProto:
    """MLPerf Tiny keyword spotting DS-CNN: input 1x1x49x10 (MFCC), conv 10x4/2 (TF "same"
    padding, asymmetric) to 64 channels + BN + ReLU, four depthwise-separable blocks (3x3
    depthwise + BN + ReLU, 1x1 pointwise + BN + ReLU), AveragePool 25x5, Flatten, Gemm to 12
    classes, Softmax."""
    g = GraphBuilder("ds_cnn_kws", seed)
    x = g.conv_bn(g.input((1, 1, 49, 10)), 64, (10, 4), 2, pads=(4, 1, 5, 1))
    for _ in range(4):
        x = g.conv_bn(x, 64, 3, 1, group=64)
        x = g.conv_bn(x, 64, 1)
    x = g.flatten(g.avgpool(x, (25, 5), (25, 5)))
    x = g.gemm(x, 12)
    return g.build(g.op("Softmax", [x], axis=-1))


# -- full-size models -----------------------------------------------------------------------


def _resnet(name: str, block: Callable, layers: Sequence[int], seed: int) -> onnx.ModelProto:
    g = GraphBuilder(name, seed)
    x = g.maxpool(g.conv_bn(g.input((1, 3, 224, 224)), 64, 7, 2), 3, 2, 1)
    for i, (n, width) in enumerate(zip(layers, (64, 128, 256, 512))):
        for j in range(n):
            x = block(g, x, width, 2 if (j == 0 and i > 0) else 1)
    return _classifier(g, x, 1000)


def resnet18(seed: int = 0) -> onnx.ModelProto:
    """torchvision ResNet-18 (basic blocks [2, 2, 2, 2]), 1x3x224x224 -> 1x1000."""
    return _resnet("resnet18", _basic_block, (2, 2, 2, 2), seed)


def resnet50(seed: int = 0) -> onnx.ModelProto:
    """torchvision ResNet-50 v1.5 (bottlenecks [3, 4, 6, 3], stride on the 3x3)."""
    return _resnet("resnet50", _bottleneck, (3, 4, 6, 3), seed)


_MBV2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                  (6, 160, 3, 2), (6, 320, 1, 1))


def mobilenet_v2(seed: int = 0, width_mult: float = 1.0, resolution: int = 224,
                 num_classes: int = 1000, last_channel: int | None = None) -> onnx.ModelProto:
    """torchvision MobileNetV2 (inverted residuals, ReLU6 as Clip)."""
    g = GraphBuilder("mobilenet_v2", seed)
    x = g.input((1, 3, resolution, resolution))
    x = g.conv_bn(x, make_divisible(32 * width_mult), 3, 2, act="relu6")
    for t, c, n, s in _MBV2_SETTINGS:
        for i in range(n):
            x = _inverted_residual(g, x, make_divisible(c * width_mult), s if i == 0 else 1, t)
    if last_channel is None:
        last_channel = make_divisible(1280 * max(1.0, width_mult))
    x = g.conv_bn(x, last_channel, 1, act="relu6")
    return _classifier(g, x, num_classes)


def mobilenet_tiny(seed: int = 0) -> onnx.ModelProto:
    """MobileNetV2 at width 0.25, 96x96 input, 256-channel head, 10 classes (< 1 MB)."""
    return mobilenet_v2(seed, width_mult=0.25, resolution=96, num_classes=10, last_channel=256)


# (kernel, expanded, out, use_se, activation, stride) per bottleneck; input 16 channels.
_MBV3_SMALL = ((3, 16, 16, True, "relu", 2), (3, 72, 24, False, "relu", 2),
               (3, 88, 24, False, "relu", 1), (5, 96, 40, True, "hswish", 2),
               (5, 240, 40, True, "hswish", 1), (5, 240, 40, True, "hswish", 1),
               (5, 120, 48, True, "hswish", 1), (5, 144, 48, True, "hswish", 1),
               (5, 288, 96, True, "hswish", 2), (5, 576, 96, True, "hswish", 1),
               (5, 576, 96, True, "hswish", 1))


def mobilenet_v3_small(seed: int = 0) -> onnx.ModelProto:
    """torchvision MobileNetV3-Small: HardSwish, squeeze-excite with HardSigmoid gates."""
    g = GraphBuilder("mobilenet_v3_small", seed)
    x = g.conv_bn(g.input((1, 3, 224, 224)), 16, 3, 2, act="hswish")
    for k, exp, cout, se, act, stride in _MBV3_SMALL:
        cin = g.channels(x)
        y = g.conv_bn(x, exp, 1, act=act) if exp != cin else x
        y = g.conv_bn(y, exp, k, stride, group=exp, act=act)
        if se:
            y = g.squeeze_excite(y, make_divisible(exp // 4), "relu", "hsigmoid")
        y = g.conv_bn(y, cout, 1, act=None, gamma=(0.3, 0.6))
        x = g.add(y, x) if stride == 1 and cin == cout else y
    x = g.flatten(g.gap(g.conv_bn(x, 576, 1, act="hswish")))
    x = g.act(g.gemm(x, 1024), "hswish")
    return g.build(g.gemm(x, 1000))


def _fire(g: GraphBuilder, x: str, squeeze: int, e1: int, e3: int) -> str:
    s = g.act(g.conv(x, squeeze, 1, bias=True), "relu")
    a = g.act(g.conv(s, e1, 1, bias=True), "relu")
    b = g.act(g.conv(s, e3, 3, bias=True), "relu")
    return g.concat([a, b])


def squeezenet1_1(seed: int = 0) -> onnx.ModelProto:
    """torchvision SqueezeNet 1.1 (Fire modules, ceil-mode max pools, conv classifier; no BN,
    as in the real network)."""
    g = GraphBuilder("squeezenet1_1", seed)
    x = g.act(g.conv(g.input((1, 3, 224, 224)), 64, 3, 2, pads=(0, 0, 0, 0), bias=True), "relu")
    x = g.maxpool(x, 3, 2, ceil=True)
    x = _fire(g, _fire(g, x, 16, 64, 64), 16, 64, 64)
    x = g.maxpool(x, 3, 2, ceil=True)
    x = _fire(g, _fire(g, x, 32, 128, 128), 32, 128, 128)
    x = g.maxpool(x, 3, 2, ceil=True)
    for sq, e in ((48, 192), (48, 192), (64, 256), (64, 256)):
        x = _fire(g, x, sq, e, e)
    x = g.act(g.conv(x, 1000, 1, bias=True), "relu")
    return g.build(g.flatten(g.gap(x)))


def _shufflenet_v2_unit(g: GraphBuilder, x: str, cout: int, stride: int) -> str:
    half = cout // 2
    if stride == 1:
        x1, x2 = g.split_channels(x, (half, half))
    else:
        x1 = g.conv_bn(x, g.channels(x), 3, stride, group=g.channels(x), act=None)
        x1 = g.conv_bn(x1, half, 1)
        x2 = x
    y = g.conv_bn(x2, half, 1)
    y = g.conv_bn(y, half, 3, stride, group=half, act=None)
    y = g.conv_bn(y, half, 1)
    return g.channel_shuffle(g.concat([x1, y]), 2)


def shufflenet_v2(seed: int = 0) -> onnx.ModelProto:
    """torchvision ShuffleNetV2 x1.0 (Split, channel shuffle, ReduceMean head)."""
    g = GraphBuilder("shufflenet_v2", seed)
    x = g.maxpool(g.conv_bn(g.input((1, 3, 224, 224)), 24, 3, 2), 3, 2, 1)
    for repeats, cout in zip((4, 8, 4), (116, 232, 464)):
        for i in range(repeats):
            x = _shufflenet_v2_unit(g, x, cout, 2 if i == 0 else 1)
    x = g.conv_bn(x, 1024, 1)
    x = g.op("ReduceMean", [x], g.shape(x)[:2], axes=[2, 3], keepdims=0)  # torch's mean([2, 3])
    return g.build(g.gemm(x, 1000))


# (expand, kernel, stride, out, repeats) per stage; stem 32 channels.
_EFFNET_B0 = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
              (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))


def efficientnet_b0(seed: int = 0) -> onnx.ModelProto:
    """torchvision EfficientNet-B0: MBConv with SiLU (x*Sigmoid(x)) and squeeze-excite
    (GlobalAveragePool, 1x1 convs, Sigmoid gate, Mul)."""
    g = GraphBuilder("efficientnet_b0", seed)
    x = g.conv_bn(g.input((1, 3, 224, 224)), 32, 3, 2, act="swish")
    for expand, k, stride, cout, repeats in _EFFNET_B0:
        for i in range(repeats):
            s = stride if i == 0 else 1
            cin = g.channels(x)
            y = g.conv_bn(x, cin * expand, 1, act="swish") if expand != 1 else x
            y = g.conv_bn(y, cin * expand, k, s, group=cin * expand, act="swish")
            y = g.squeeze_excite(y, max(1, cin // 4), "swish", "sigmoid")
            y = g.conv_bn(y, cout, 1, act=None, gamma=(0.3, 0.6))
            x = g.add(y, x) if s == 1 and cin == cout else y
    x = g.conv_bn(x, 1280, 1, act="swish")
    return _classifier(g, x, 1000)


SMALL_BUILDERS: dict[str, Callable[..., onnx.ModelProto]] = {
    "resnet_block": resnet_block_model,
    "mobilenet_block": mobilenet_block_model,
    "grouped_conv": grouped_conv_model,
    "ds_cnn_kws": ds_cnn_kws,
    "mobilenet_tiny": mobilenet_tiny,
}
FULL_BUILDERS: dict[str, Callable[..., onnx.ModelProto]] = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3_small": mobilenet_v3_small,
    "squeezenet1_1": squeezenet1_1,
    "shufflenet_v2": shufflenet_v2,
    "efficientnet_b0": efficientnet_b0,
}
BUILDERS = {**SMALL_BUILDERS, **FULL_BUILDERS}


def random_inputs(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded standard-normal float32 feeds for every non-initializer graph input."""
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name not in inits:
            shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            feeds[vi.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def count_macs(model: onnx.ModelProto) -> int:
    """Multiply-accumulates of the Conv and Gemm nodes (for sanity checks and reports)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in [*inferred.graph.value_info, *inferred.graph.output]}
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm"):
            out = shapes[node.output[0]]
            w = weights[node.input[1]]
            per_out = int(np.prod(w[1:]))  # Conv: cin/group*kh*kw; Gemm (transB=1): K
            total += int(np.prod(out)) * per_out
    return total


# -- transformers ---------------------------------------------------------------------------
# Graphs shaped like Hugging Face / PyTorch exports (opset 17): shape arithmetic through
# Shape/Gather/Unsqueeze/Concat feeding Reshape, position ids sliced from a buffer, token type
# ids from ConstantOfShape, the extended attention mask (1 - mask) * -10000, LayerNorm and Gelu
# decomposed into primitive ops the way torch.onnx spells them.


def _build_dynamic(g: GraphBuilder, output: str, output_name: str) -> onnx.ModelProto:
    """GraphBuilder.build for graphs whose view shapes come from Shape arithmetic: onnx shape
    inference leaves those dims unknown (0), so only the dims it does know are compared."""
    g.nodes.append(helper.make_node("Identity", [output], [output_name], name="out"))
    g.shapes[output_name] = g.shapes[output]
    graph = helper.make_graph(g.nodes, g.name, g.inputs, [helper.make_tensor_value_info(
        output_name, TensorProto.FLOAT, g.shape(output))], initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", g.opset)],
                              producer_name="tilecc-tests")
    model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True)
    for vi in inferred.graph.value_info:
        dims = [d.dim_value if d.HasField("dim_value") else None
                for d in vi.type.tensor_type.shape.dim]
        want = g.shapes.get(vi.name)
        if want is not None and dims and len(dims) == len(want) and any(
                d is not None and d != w for d, w in zip(dims, want)):
            raise AssertionError(f"{vi.name}: builder shape {want} != {dims}")
    return model


def _int_input(g: GraphBuilder, name: str, shape: Shape) -> str:
    g.inputs.append(helper.make_tensor_value_info(name, TensorProto.INT64, list(shape)))
    g.shapes[name] = tuple(shape)
    return name


def _linear(g: GraphBuilder, x: str, nout: int) -> str:
    nin = g.shape(x)[-1]
    bound = 1.0 / math.sqrt(nin)
    w = g.const(g.rng.uniform(-bound, bound, (nin, nout)), "linear_weight")
    b = g.const(g.rng.uniform(-bound, bound, nout), "linear_bias")
    y = g.op("MatMul", [x, w], g.shape(x)[:-1] + (nout,))
    return g.op("Add", [y, b])


def _layernorm_decomposed(g: GraphBuilder, x: str, eps: float = 1e-12) -> str:
    h = g.shape(x)[-1]
    red = g.shape(x)[:-1] + (1,)
    mean = g.op("ReduceMean", [x], red, axes=[-1], keepdims=1)
    d = g.op("Sub", [x, mean])
    var = g.op("ReduceMean", [g.op("Pow", [d, g.const(2.0, "two")])], red, axes=[-1], keepdims=1)
    std = g.op("Sqrt", [g.op("Add", [var, g.const(eps, "eps")])])
    y = g.op("Div", [d, std], g.shape(x))
    y = g.op("Mul", [y, g.const(g.rng.uniform(0.8, 1.2, h), "ln_gamma")])
    return g.op("Add", [y, g.const(g.rng.normal(0.0, 0.1, h), "ln_beta")])


def _layernorm_op(g: GraphBuilder, x: str, eps: float = 1e-5) -> str:
    h = g.shape(x)[-1]
    return g.op("LayerNormalization", [x, g.const(g.rng.uniform(0.8, 1.2, h), "ln_gamma"),
                                       g.const(g.rng.normal(0.0, 0.1, h), "ln_beta")],
                axis=-1, epsilon=eps)


def _gelu_erf(g: GraphBuilder, x: str) -> str:
    e = g.op("Erf", [g.op("Div", [x, g.const(1.4142135381698608, "sqrt2")])])
    y = g.op("Mul", [x, g.op("Add", [e, g.const(1.0, "one")])])
    return g.op("Mul", [y, g.const(0.5, "half")])


def _dim(g: GraphBuilder, x: str, axis: int) -> str:
    """Shape(x)[axis] as a 1-element int64 tensor, the way exports compute view shapes."""
    s = g.op("Shape", [x], (len(g.shape(x)),))
    d = g.op("Gather", [s, g.const(axis, "axis", np.int64)], (), axis=0)
    return g.op("Unsqueeze", [d, g.const([0], "axes", np.int64)], (1,))


def _heads_view(g: GraphBuilder, x: str, heads: int) -> str:
    """(B, S, H) -> (B, heads, S, H / heads) with the shape built from Shape/Concat."""
    b, s, h = g.shape(x)
    shape = g.op("Concat", [_dim(g, x, 0), _dim(g, x, 1), g.const([heads], "heads", np.int64),
                            g.const([h // heads], "head_dim", np.int64)], (4,), axis=0)
    y = g.op("Reshape", [x, shape], (b, s, heads, h // heads))
    return g.op("Transpose", [y], (b, heads, s, h // heads), perm=[0, 2, 1, 3])


def _attention(g: GraphBuilder, x: str, heads: int, mask_bias: str) -> str:
    b, s, h = g.shape(x)
    dh = h // heads
    q = _heads_view(g, _linear(g, x, h), heads)
    k = _heads_view(g, _linear(g, x, h), heads)
    v = _heads_view(g, _linear(g, x, h), heads)
    kt = g.op("Transpose", [k], (b, heads, dh, s), perm=[0, 1, 3, 2])
    scores = g.op("MatMul", [q, kt], (b, heads, s, s))
    scores = g.op("Div", [scores, g.const(math.sqrt(dh), "scale")])
    scores = g.op("Add", [scores, mask_bias], (b, heads, s, s))
    probs = g.op("Softmax", [scores], axis=-1)
    ctx = g.op("MatMul", [probs, v], (b, heads, s, dh))
    ctx = g.op("Transpose", [ctx], (b, s, heads, dh), perm=[0, 2, 1, 3])
    shape = g.op("Concat", [_dim(g, x, 0), _dim(g, x, 1), g.const([h], "hidden", np.int64)],
                 (3,), axis=0)
    ctx = g.op("Reshape", [ctx, shape], (b, s, h))
    return _linear(g, ctx, h)


def bert_encoder(layers: int = 2, seq: int = 128, hidden: int = 256, heads: int = 4,
                 vocab: int = 1000, max_pos: int = 512, seed: int = 0) -> onnx.ModelProto:
    """BERT encoder (post-LN, erf Gelu, decomposed LayerNorm) with int64 `input_ids` and
    `attention_mask` of shape (1, seq); output: the last hidden state (1, seq, hidden)."""
    g = GraphBuilder("bert_encoder", seed)
    ids = _int_input(g, "input_ids", (1, seq))
    mask = _int_input(g, "attention_mask", (1, seq))
    rng = g.rng

    def table(rows):
        return g.const(rng.normal(0.0, 0.5, (rows, hidden)), "embedding")
    words = g.op("Gather", [table(vocab), ids], (1, seq, hidden), axis=0)
    # position_ids = buffer[:, :seq] with seq taken from Shape(input_ids), as HF exports it.
    pos_buf = g.const(np.arange(max_pos)[None, :], "position_ids", np.int64)
    pos_ids = g.op("Slice", [pos_buf, g.const([0], "start", np.int64), _dim(g, ids, 1),
                             g.const([1], "axis", np.int64)], (1, seq))
    pos = g.op("Gather", [table(max_pos), pos_ids], (1, seq, hidden), axis=0)
    tt_ids = g.op("ConstantOfShape", [g.op("Shape", [ids], (2,))], (1, seq),
                  value=numpy_helper.from_array(np.zeros(1, np.int64)))
    tt = g.op("Gather", [table(2), tt_ids], (1, seq, hidden), axis=0)
    x = _layernorm_decomposed(g, g.op("Add", [g.op("Add", [words, pos]), tt]))
    # Extended attention mask: (1 - mask[:, None, None, :]) * -10000.
    m = g.op("Unsqueeze", [mask, g.const([1, 2], "axes", np.int64)], (1, 1, 1, seq))
    m = g.op("Cast", [m], to=TensorProto.FLOAT)
    mask_bias = g.op("Mul", [g.op("Sub", [g.const(1.0, "one"), m], (1, 1, 1, seq)),
                             g.const(-10000.0, "neg")])
    for _ in range(layers):
        x = _layernorm_decomposed(g, g.op("Add", [x, _attention(g, x, heads, mask_bias)]))
        ff = _gelu_erf(g, _linear(g, x, 4 * hidden))
        x = _layernorm_decomposed(g, g.op("Add", [x, _linear(g, ff, hidden)]))
    return _build_dynamic(g, x, "last_hidden_state")


def gpt_block(seq: int = 64, hidden: int = 256, heads: int = 4, max_pos: int = 1024,
              seed: int = 0) -> onnx.ModelProto:
    """One pre-LN GPT-2 style block on a float input (1, seq, hidden): LayerNormalization ops,
    causal self-attention with the lower-triangular mask sliced from a constant buffer (the
    GPT-2 `bias` buffer) by Shape-derived bounds, erf Gelu MLP, residuals."""
    g = GraphBuilder("gpt_block", seed)
    x = g.input((1, seq, hidden), "hidden_states")
    tril = g.const(np.tril(np.ones((max_pos, max_pos)))[None, None], "causal_buffer")
    n = _dim(g, x, 1)
    zero = g.const([0, 0], "start", np.int64)
    causal = g.op("Slice", [tril, zero, g.op("Concat", [n, n], (2,), axis=0),
                            g.const([2, 3], "axes", np.int64)], (1, 1, seq, seq))
    # scores * mask + (mask - 1) * 10000: masked positions get -10000, others stay.
    mask_bias = g.op("Mul", [g.op("Sub", [causal, g.const(1.0, "one")]),
                             g.const(10000.0, "big")])
    h = _layernorm_op(g, x)
    b, s, hd = g.shape(h)
    dh = hd // heads
    q, k, v = (_heads_view(g, _linear(g, h, hd), heads) for _ in range(3))
    kt = g.op("Transpose", [k], (b, heads, dh, s), perm=[0, 1, 3, 2])
    scores = g.op("Div", [g.op("MatMul", [q, kt], (b, heads, s, s)),
                          g.const(math.sqrt(dh), "scale")])
    scores = g.op("Add", [g.op("Mul", [scores, causal]), mask_bias])
    ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v], (b, heads, s, dh))
    ctx = g.op("Transpose", [ctx], (b, s, heads, dh), perm=[0, 2, 1, 3])
    ctx = g.op("Reshape", [ctx, g.const([b, s, hd], "shape", np.int64)], (b, s, hd))
    x = g.op("Add", [x, _linear(g, ctx, hd)])
    ff = _linear(g, _gelu_erf(g, _linear(g, _layernorm_op(g, x), 4 * hd)), hd)
    return _build_dynamic(g, g.op("Add", [x, ff]), "output")


TRANSFORMER_BUILDERS: dict[str, Callable[..., onnx.ModelProto]] = {
    "bert_encoder": bert_encoder,
    "gpt_block": gpt_block,
}

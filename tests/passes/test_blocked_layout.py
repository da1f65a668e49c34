"""passes/blocked_layout.py: which nodes become blocked, where layout transforms go, and that
compiled blocked graphs match onnxruntime (fp32: rtol 1e-4, atol 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.models.harness import compile_and_run, ort_run
from tilecc.build import prepare_graph
from tilecc.ops.nchwc import from_blocked, to_blocked, unpack_conv_weight
from tilecc.ops.registry import get_op
from tilecc.passes.blocked_layout import block_constant, channel_block
from tilecc.targets import get_target

RNG = np.random.default_rng(7)


def _w(*shape):
    return (RNG.standard_normal(shape) * 0.2).astype(np.float32)


class _Model:
    """A tiny ONNX graph builder: y = b.conv(x, 16, k=3) ..."""

    def __init__(self, shape):
        self.nodes, self.inits, self.n = [], [], 0
        self.x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))

    def name(self, base):
        self.n += 1
        return f"{base}{self.n}"

    def const(self, value):
        nm = self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), nm))
        return nm

    def op(self, op, *ins, **attrs):
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, list(ins), [out], **attrs))
        return out

    def conv(self, x, cin, cout, k=3, stride=1, group=1, bias=True):
        ins = [x, self.const(_w(cout, cin // group, k, k))]
        if bias:
            ins.append(self.const(_w(cout)))
        return self.op("Conv", *ins, kernel_shape=[k, k], strides=[stride, stride],
                       pads=[k // 2] * 4, group=group)

    def model(self, *outs):
        ys = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs]
        g = helper.make_graph(self.nodes, "g", [self.x], ys, self.inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _check(model, tmp_path, shape):
    x = RNG.standard_normal(shape).astype(np.float32)
    got = compile_and_run(model, {"x": x}, tmp_path)
    ref = ort_run(model, {"x": x})
    for k, v in ref.items():
        np.testing.assert_allclose(got[k], v, rtol=1e-4, atol=1e-5, err_msg=k)


def _ops(model):
    g, _ = prepare_graph(model, target=get_target("host"))
    return [n.op for n in g.nodes]


def test_channel_block_picks_wide_power_of_two():
    assert channel_block(64, 16) == 16
    assert channel_block(24, 16) == 8
    assert channel_block(116, 16) == 0  # 4 lanes of 16: not worth it
    assert channel_block(116, 4) == 4
    assert channel_block(58, 16) == 0


def test_layout_folds_round_trip():
    x = RNG.standard_normal((2, 32, 5, 3)).astype(np.float32)
    assert np.array_equal(from_blocked(to_blocked(x, 8)), x)
    (y,) = get_op("LayoutTransform").fold([x], {"src_block": 0, "dst_block": 16})
    (z,) = get_op("LayoutTransform").fold([y], {"src_block": 16, "dst_block": 8})
    assert np.array_equal(from_blocked(z), x)
    # A per-channel constant lays out like the tensor it broadcasts against.
    c = RNG.standard_normal((32, 1, 1)).astype(np.float32)
    cb = block_constant(c, x.shape, 8)
    assert np.array_equal(from_blocked(np.broadcast_to(cb, (2, 4, 5, 3, 8))),
                          np.broadcast_to(c, x.shape))


def test_conv_fold_matches_plain_conv():
    from tilecc.ops.nn import conv2d

    x = RNG.standard_normal((1, 32, 6, 6)).astype(np.float32)
    w = _w(16, 32, 3, 3)
    attrs = {"strides": (1, 1), "pads": (1, 1, 1, 1), "dilations": (1, 1), "in_block": 16,
             "out_block": 8, "depthwise": False}
    packed = w.reshape(2, 8, 2, 16, 3, 3).transpose(0, 2, 4, 5, 3, 1)
    assert np.array_equal(unpack_conv_weight(packed, attrs), w)
    (y,) = get_op("ConvNCHWc").fold([to_blocked(x, 16), packed], attrs)
    np.testing.assert_allclose(from_blocked(y), conv2d(x, w, None, (1, 1), (1, 1, 1, 1),
                                                       (1, 1), 1), rtol=1e-5, atol=1e-5)


def test_depthwise_separable_chain_is_blocked_end_to_end(tmp_path):
    b = _Model((1, 3, 20, 20))
    y = b.op("Relu", b.conv("x", 3, 32, stride=2))
    y = b.op("Clip", b.conv(y, 32, 32, group=32), b.const(0.0), b.const(6.0))
    y = b.op("Relu", b.conv(y, 32, 64, k=1))
    y = b.op("GlobalAveragePool", y)
    y = b.op("Flatten", y)
    m = b.model(y)
    ops = _ops(m)
    assert ops.count("ConvNCHWc") == 3 and "Conv" not in ops
    assert "GlobalAveragePoolNCHWc" in ops
    # Only the 1x1 pooled result leaves the blocked layout, as a Reshape (no copy kernel).
    assert "LayoutTransform" not in ops
    _check(m, tmp_path, (1, 3, 20, 20))


def test_residual_se_block_and_pools(tmp_path):
    b = _Model((1, 16, 15, 15))
    x0 = b.op("Relu", b.conv("x", 16, 32, k=1))
    y = b.op("Relu", b.conv(x0, 32, 32))
    y = b.conv(y, 32, 32, group=32, stride=1)
    # Squeeze-and-excitation: pooled -> 1x1 convs -> sigmoid -> channel scale.
    s = b.op("GlobalAveragePool", y)
    s = b.op("Relu", b.conv(s, 32, 8, k=1))
    s = b.op("Sigmoid", b.conv(s, 8, 32, k=1))
    y = b.op("Mul", y, s)
    y = b.op("Add", y, x0)  # residual
    y = b.op("Mul", y, b.const(_w(32, 1, 1)))  # per-channel constant
    p = b.op("MaxPool", y, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    q = b.op("AveragePool", y, kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1],
             ceil_mode=1)
    z = b.op("Concat", p, q, axis=1)
    m = b.model(z, y)
    ops = _ops(m)
    assert "MaxPoolNCHWc" in ops and "AveragePoolNCHWc" in ops and "Conv" not in ops
    _check(m, tmp_path, (1, 16, 15, 15))


def test_plain_consumers_get_a_transform(tmp_path):
    b = _Model((1, 8, 9, 9))
    y = b.op("Relu", b.conv("x", 8, 32))
    t = b.op("Transpose", y, perm=[0, 2, 3, 1])  # no blocked form: needs NCHW
    z = b.conv(y, 32, 24, k=1)  # 24 channels: block 8 on a 16-lane target
    m = b.model(t, z)
    ops = _ops(m)
    if get_target("host").lanes(4) >= 16:
        assert ops.count("LayoutTransform") == 2  # one for Transpose, one for the output z
    _check(m, tmp_path, (1, 8, 9, 9))


def test_unblockable_convs_stay_plain(tmp_path):
    b = _Model((1, 6, 10, 10))
    y = b.conv("x", 6, 6, group=3)  # grouped, not depthwise
    y = b.conv(y, 6, 10, k=1)  # 10 output channels: no block
    m = b.model(y)
    assert "ConvNCHWc" not in _ops(m)
    _check(m, tmp_path, (1, 6, 10, 10))


@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_padding_edges(tmp_path, stride):
    b = _Model((1, 32, 7, 11))
    y = b.op("Relu", b.conv("x", 32, 32, k=1))
    y = b.conv(y, 32, 32, k=5, stride=stride, group=32)
    m = b.model(y)
    _check(m, tmp_path, (1, 32, 7, 11))


POOLS = {  # name: (op, attributes, input H x W)
    "max-k3s2-pad1": ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1] * 4},
                      (16, 16)),
    "max-k3s2-ceil": ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
                      (15, 15)),
    "max-k2s2-odd": ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2]}, (13, 11)),
    "max-k3s1-dilated-asym": ("MaxPool", {"kernel_shape": [3, 3], "dilations": [2, 2],
                                          "pads": [2, 0, 1, 2]}, (9, 13)),
    "max-k9-wide": ("MaxPool", {"kernel_shape": [3, 9], "pads": [1, 4, 1, 4]}, (7, 20)),
    "avg-k3s2-pad1-exclude": ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2],
                                              "pads": [1] * 4}, (14, 14)),
    "avg-k3s2-pad1-include": ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2],
                                              "pads": [1] * 4, "count_include_pad": 1},
                              (14, 14)),
    "avg-k2s1-ceil-asym": ("AveragePool", {"kernel_shape": [2, 3], "strides": [1, 2],
                                           "pads": [0, 1, 1, 0], "ceil_mode": 1}, (10, 17)),
}


@pytest.mark.parametrize("case", sorted(POOLS))
def test_blocked_pools_read_padding_in_place(tmp_path, case):
    """Blocked pools (topi/nchwc.py `_schedule_pool_nchwc`: guarded in-place reads of the padding,
    unrolled window columns, pixel tiles of a row) against onnxruntime. The input is shifted
    negative so a border tap that read 0 instead of skipping the padding changes a max."""
    op, attrs, (h, w) = POOLS[case]
    b = _Model((1, 16, h, w))
    y = b.op("Sub", b.conv("x", 16, 32, k=1), b.const(2.0))
    z = b.op("Relu", b.op(op, y, **attrs)) if op == "AveragePool" else b.op(op, y, **attrs)
    m = b.model(z)
    assert f"{op}NCHWc" in _ops(m)
    _check(m, tmp_path, (1, 16, h, w))

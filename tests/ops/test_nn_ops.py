"""Transformer/NN/recurrent op table vs onnxruntime, in the style of test_ops_table.py (same
row format and helpers): every row compiles a one-node (or small) ONNX model with tilecc and
compares all outputs with onnxruntime at rtol 1e-4 / atol 1e-5 unless the row says why not."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from tests.models.harness import compile_and_run, ort_run
from tests.ops.test_ops_table import C, Case, W, X, case_rows, check_case

CASES: list[Case] = []
row, graph_row = case_rows(CASES)


# -- normalisations -------------------------------------------------------------------------
row("LayerNormalization", "last-axis-bias", [X(2, 5, 16), W(16), W(16)])
row("LayerNormalization", "no-bias", [X(3, 32), W(32)])
row("LayerNormalization", "axis1-3d", [X(2, 4, 6), W(4, 6), W(4, 6)], {"axis": 1})
row("LayerNormalization", "axis-2-eps", [X(2, 3, 4, 5), W(4, 5)], {"axis": -2, "epsilon": 1e-3})
row("LayerNormalization", "wide-768", [X(1, 4, 768, scale=3.0), W(768), W(768)],
    atol=2e-5, reason="768-long float32 mean/variance sums in a different order")
row("LayerNormalization", "large-parallel-path", [X(2, 256, 512), W(512), W(512)],
    atol=2e-5, reason="512-long float32 sums in a different order")
row("GroupNormalization", "large-parallel-path", [X(1, 32, 96, 96), W(32), W(32)],
    {"num_groups": 8}, opset=21, atol=2e-5, reason="36,864-long float32 sums per group")
row("InstanceNormalization", "4d", [X(2, 3, 5, 6), W(3), W(3)])
row("InstanceNormalization", "3d-eps", [X(2, 4, 7), W(4), W(4)], {"epsilon": 1e-2})
row("GroupNormalization", "opset21-per-channel", [X(2, 6, 4, 5), W(6), W(6)],
    {"num_groups": 3}, opset=21)
row("GroupNormalization", "opset21-groups1", [X(1, 4, 3, 3), W(4), W(4)], {"num_groups": 1},
    opset=21)
row("GroupNormalization", "opset18-per-group", [X(2, 6, 4, 5), W(2), W(2)], {"num_groups": 2},
    opset=18)

# -- activations ----------------------------------------------------------------------------
row("Gelu", "none", [X(2, 3, 17, scale=3.0)], opset=20)
row("Gelu", "none-wide-range", [X(3, 1000, scale=8.0)], opset=20)
row("Gelu", "tanh", [X(4, 33, scale=3.0)], {"approximate": "tanh"}, opset=20)
row("PRelu", "per-channel", [X(2, 3, 4, 5), W(3, 1, 1)])
row("PRelu", "scalar-slope", [X(2, 7), C([0.2], "float32")])
row("PRelu", "full-slope", [X(3, 4), W(3, 4)])
row("PRelu", "last-axis", [X(2, 3, 6), W(6)])
row("Selu", "default", [X(3, 4, 5)])
row("Selu", "attrs", [X(20)], {"alpha": 2.0, "gamma": 0.5})
row("Celu", "default", [X(3, 11)])
row("Celu", "alpha2", [X(3, 11)], {"alpha": 2.0})
row("Mish", "3d", [X(2, 3, 9, scale=3.0)], opset=18)
row("Softsign", "2d", [X(5, 6)])
row("ThresholdedRelu", "default", [X(4, 9)], exact=True)
row("ThresholdedRelu", "alpha0.3", [X(4, 9)], {"alpha": 0.3}, exact=True)
row("Elu", "alpha", [X(4, 9)], {"alpha": 0.7})

# -- data movement --------------------------------------------------------------------------
row("DepthToSpace", "DCR", [X(1, 8, 3, 4)], {"blocksize": 2}, exact=True)
row("DepthToSpace", "CRD", [X(2, 18, 2, 3)], {"blocksize": 3, "mode": "CRD"}, exact=True)
row("SpaceToDepth", "b2", [X(1, 3, 4, 6)], {"blocksize": 2}, exact=True)
row("SpaceToDepth", "b3", [X(2, 2, 6, 3)], {"blocksize": 3}, exact=True)

# -- Einsum ---------------------------------------------------------------------------------
row("Einsum", "matmul", [X(3, 4), X(4, 5)], {"equation": "ij,jk->ik"})
row("Einsum", "batched", [X(2, 3, 4), X(2, 4, 5)], {"equation": "bij,bjk->bik"})
row("Einsum", "attention-scores", [X(1, 2, 6, 8), X(1, 2, 5, 8)],
    {"equation": "bhqd,bhkd->bhqk"})
row("Einsum", "attention-context", [X(1, 2, 6, 5), X(1, 2, 5, 8)],
    {"equation": "bhqk,bhkd->bqhd"})
row("Einsum", "transpose", [X(2, 3, 4)], {"equation": "ijk->kij"}, exact=True)
row("Einsum", "reduce-sum", [X(2, 3, 4)], {"equation": "ijk->j"})
row("Einsum", "implicit-output", [X(3, 4), X(4, 5)], {"equation": "ij,jk"})
row("Einsum", "outer", [X(3), X(4)], {"equation": "i,j->ij"})
row("Einsum", "dot", [X(7), X(7)], {"equation": "i,i->"})
row("Einsum", "ellipsis", [X(2, 3, 4, 5), X(2, 3, 5, 6)], {"equation": "...ij,...jk->...ik"})
row("Einsum", "reduce-in-operand", [X(3, 4, 2), X(4, 5)], {"equation": "ijx,jk->ik"})

# -- Resize / Upsample ------------------------------------------------------------------------
_F = "float32"
for _ctm in ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
             "tf_half_pixel_for_nn"):
    for _nm in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"):
        row("Resize", f"nearest-{_ctm}-{_nm}-up", [X(1, 2, 4, 5), None,
                                                   C([1, 1, 1.5, 2.4], _F)],
            {"mode": "nearest", "coordinate_transformation_mode": _ctm, "nearest_mode": _nm},
            exact=True, opset=13)
    row("Resize", f"linear-{_ctm}-down", [X(1, 2, 7, 9), None, C([1, 1, 0.6, 0.5], _F)],
        {"mode": "linear", "coordinate_transformation_mode": _ctm}, opset=13)
    row("Resize", f"cubic-{_ctm}-sizes", [X(1, 2, 5, 6), None, None, C([1, 2, 9, 11])],
        {"mode": "cubic", "coordinate_transformation_mode": _ctm}, opset=13)
row("Resize", "nearest-sizes-down", [X(2, 3, 8, 8), None, None, C([2, 3, 3, 5])], opset=13,
    exact=True)
row("Resize", "linear-up2-opset11", [X(1, 3, 4, 4), C([], _F), C([1, 1, 2, 2], _F)],
    {"mode": "linear"}, opset=11)
row("Resize", "cubic-A-0.5-exclude", [X(1, 1, 6, 7), None, C([1, 1, 1.7, 0.8], _F)],
    {"mode": "cubic", "cubic_coeff_a": -0.5, "exclude_outside": 1}, opset=13)
row("Resize", "tf_crop_and_resize", [X(1, 1, 6, 6), C([0, 0, 0.2, 0.1, 1, 1, 0.9, 1.3], _F),
                                     None, C([1, 1, 4, 5])],
    {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize",
     "extrapolation_value": -3.0}, opset=13)
row("Resize", "opset10-nearest", [X(1, 2, 3, 4), C([1, 1, 2, 1.5], _F)], opset=10, exact=True)
row("Resize", "opset10-linear", [X(1, 2, 3, 4), C([1, 1, 2, 1.5], _F)], {"mode": "linear"},
    opset=10)
row("Resize", "opset18-axes", [X(1, 2, 5, 6), None, C([1.5, 0.5], _F)],
    {"mode": "linear", "axes": [2, 3]}, opset=18)
row("Resize", "opset18-keep-aspect", [X(1, 2, 5, 6), None, None, C([8, 8])],
    {"mode": "nearest", "axes": [2, 3], "keep_aspect_ratio_policy": "not_larger"}, opset=18,
    exact=True)
row("Resize", "opset19-half_pixel_symmetric", [X(1, 2, 5, 6), None, C([1, 1, 1.6, 0.7], _F)],
    {"mode": "linear", "coordinate_transformation_mode": "half_pixel_symmetric"}, opset=19)
row("Resize", "3d-nearest", [X(2, 5, 7), None, C([1, 2.0, 0.5], _F)], opset=13, exact=True)
row("Upsample", "opset9-nearest", [X(1, 2, 3, 3), C([1, 1, 2, 3], _F)], opset=9, exact=True)
row("Upsample", "opset7-linear", [X(1, 2, 3, 3)], {"mode": "linear", "scales": [1.0, 1.0, 2.0, 2.0]},
    opset=7)

# -- ConvTranspose ------------------------------------------------------------------------------
row("ConvTranspose", "basic", [X(1, 3, 5, 5), W(3, 4, 3, 3)])
row("ConvTranspose", "stride2-pads-bias", [X(1, 4, 5, 6), W(4, 2, 3, 3), W(2)],
    {"strides": [2, 2], "pads": [1, 1, 1, 1]})
row("ConvTranspose", "output_padding", [X(2, 2, 4, 4), W(2, 3, 3, 3)],
    {"strides": [2, 3], "output_padding": [1, 2]})
row("ConvTranspose", "groups-dilation", [X(1, 4, 5, 5), W(4, 3, 3, 3), W(6)],
    {"group": 2, "dilations": [2, 2], "pads": [1, 2, 0, 1]})
row("ConvTranspose", "depthwise-k4s2", [X(1, 3, 6, 6), W(3, 1, 4, 4)],
    {"group": 3, "strides": [2, 2], "pads": [1, 1, 1, 1]})
row("ConvTranspose", "output_shape", [X(1, 2, 4, 4), W(2, 2, 3, 3)],
    {"strides": [2, 2], "output_shape": [10, 9]})
row("ConvTranspose", "auto_pad-SAME_UPPER", [X(1, 2, 4, 5), W(2, 2, 3, 3)],
    {"strides": [2, 2], "auto_pad": "SAME_UPPER"})
row("ConvTranspose", "auto_pad-SAME_LOWER", [X(1, 2, 4, 5), W(2, 2, 4, 4)],
    {"strides": [2, 2], "auto_pad": "SAME_LOWER"})
row("ConvTranspose", "pads-beyond-kernel-crop", [X(1, 2, 6, 6), W(2, 3, 3, 3)],
    {"strides": [2, 2], "pads": [3, 2, 3, 4]})
row("ConvTranspose", "unet-up-32ch", [X(1, 32, 16, 16), W(32, 16, 4, 4), W(16)],
    {"strides": [2, 2], "pads": [1, 1, 1, 1]}, atol=1e-4, reason="512-term sums")
row("ConvTranspose", "1d", [X(1, 3, 7), W(3, 2, 3), W(2)], {"strides": [2], "pads": [1, 0]})

# -- recurrent (one kernel each: the time loop is an extern loop-IR kernel) -------------------
# Shapes: X (T, B, I), hidden H; W (D, G*H, I), R (D, G*H, H), B (D, 2*G*H).


def _rnn_inputs(g: int, d: int, t=5, b=2, i=3, h=4, bias=True, init=False, cell=False,
                lens=False, peep=False):
    ins = [X(t, b, i), W(d, g * h, i), W(d, g * h, h)]
    ins.append(W(d, 2 * g * h) if bias else None)
    if init or lens or cell or peep:
        ins.append(C([t] * b, "int32") if lens else None)
        ins.append(X(d, b, h) if init else None)
    if cell or peep:
        ins.append(X(d, b, h) if cell else None)
    if peep:
        ins.append(W(d, 3 * h))
    while ins and ins[-1] is None:
        ins.pop()
    return ins


for _d, _dir in ((1, "forward"), (1, "reverse"), (2, "bidirectional")):
    row("LSTM", _dir, _rnn_inputs(4, _d), {"hidden_size": 4, "direction": _dir}, n_out=3)
    row("GRU", _dir, _rnn_inputs(3, _d), {"hidden_size": 4, "direction": _dir}, n_out=2)
    row("RNN", _dir, _rnn_inputs(1, _d), {"hidden_size": 4, "direction": _dir}, n_out=2)
row("LSTM", "init-states-peepholes-lens", _rnn_inputs(4, 1, init=True, cell=True, lens=True,
                                                       peep=True), {"hidden_size": 4}, n_out=3)
row("LSTM", "bidir-init-no-bias", _rnn_inputs(4, 2, bias=False, init=True, cell=True),
    {"hidden_size": 4, "direction": "bidirectional"}, n_out=3)
row("LSTM", "clip-input_forget", _rnn_inputs(4, 1), {"hidden_size": 4, "clip": 0.5,
                                                     "input_forget": 1}, n_out=3)
row("LSTM", "only-Y", _rnn_inputs(4, 1, t=7, b=1, i=8, h=16), {"hidden_size": 16})
row("LSTM", "activations", _rnn_inputs(4, 1), {"hidden_size": 4, "activations": [
    "HardSigmoid", "Tanh", "Relu"]}, n_out=3)
row("GRU", "linear_before_reset", _rnn_inputs(3, 1, init=True), {"hidden_size": 4,
                                                                 "linear_before_reset": 1},
    n_out=2)
row("GRU", "bidir-lbr-init", _rnn_inputs(3, 2, init=True),
    {"hidden_size": 4, "direction": "bidirectional", "linear_before_reset": 1}, n_out=2)
row("GRU", "no-bias-lens", _rnn_inputs(3, 1, bias=False, lens=True), {"hidden_size": 4},
    n_out=2)
row("RNN", "relu-init", _rnn_inputs(1, 1, init=True), {"hidden_size": 4,
                                                       "activations": ["Relu"]}, n_out=2)
row("LSTM", "odd-hidden-5", _rnn_inputs(4, 2, h=5, init=True, cell=True),
    {"hidden_size": 5, "direction": "bidirectional"}, n_out=3)
row("GRU", "odd-hidden-3", _rnn_inputs(3, 1, h=3, i=5), {"hidden_size": 3}, n_out=2)
row("GRU", "hidden-32-batch3", _rnn_inputs(3, 1, t=6, b=3, i=16, h=32), {"hidden_size": 32},
    n_out=2)
row("RNN", "larger", _rnn_inputs(1, 1, t=10, b=3, i=16, h=32), {"hidden_size": 32}, n_out=2)

# All inputs constant: the frontend folds the op with its numpy reference (ops/recurrent.py).
row("LSTM", "folded-peepholes-bidir", [W(4, 2, 3), W(2, 16, 3), W(2, 16, 4), W(2, 32), None,
                                       W(2, 2, 4), W(2, 2, 4), W(2, 12)],
    {"hidden_size": 4, "direction": "bidirectional"}, n_out=3)
row("GRU", "folded-reverse", [W(4, 2, 3), W(1, 12, 3), W(1, 12, 4), W(1, 24)],
    {"hidden_size": 4, "direction": "reverse"}, n_out=2)
row("GRU", "folded-lbr", [W(4, 2, 3), W(1, 12, 3), W(1, 12, 4), W(1, 24)],
    {"hidden_size": 4, "linear_before_reset": 1, "clip": 0.7}, n_out=2)
row("RNN", "folded-affine", [W(4, 2, 3), W(1, 4, 3), W(1, 4, 4)],
    {"hidden_size": 4, "activations": ["Affine"], "activation_alpha": [0.5],
     "activation_beta": [0.1]}, n_out=2)

assert len({c.id for c in CASES}) == len(CASES), "duplicate case ids"


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_nn_op(case: Case, tmp_path) -> None:
    check_case(case, tmp_path)


# -- control flow: If with a constant condition is inlined, Loop with a constant trip count is
# unrolled (both in the frontend); anything data-dependent is a clear import error. -----------

def _model(nodes, inputs, outputs, inits=(), opset=17, check=True):
    import onnx
    g = helper.make_graph(nodes, "cf", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = helper.find_min_ir_version_for(list(m.opset_import))
    if check:  # models with unsupported ops in branches cannot be shape-checked
        onnx.checker.check_model(m, full_check=True)
    return m


def _vi(name, shape, elem=1):
    return helper.make_tensor_value_info(name, elem, shape)


def _if_model(cond_nodes, extra_inputs=()):
    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [],
                               [_vi("t", [2, 3])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"]),
                                helper.make_node("Exp", ["e"], ["e2"])], "else", [],
                               [_vi("e2", [2, 3])])
    nodes = cond_nodes + [helper.make_node("If", ["cond"], ["y"], then_branch=then_g,
                                           else_branch=else_g)]
    return _model(nodes, [_vi("x", [2, 3]), *extra_inputs], [_vi("y", [2, 3])])


def _shape_cond(k):
    """cond = bool(Shape(x)[0] - k): folds to a constant at import."""
    from onnx import numpy_helper
    return [helper.make_node("Shape", ["x"], ["s"]),
            helper.make_node("Constant", [], ["i0"], value=numpy_helper.from_array(
                np.array(0, np.int64))),
            helper.make_node("Gather", ["s", "i0"], ["d0"], axis=0),
            helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(
                np.array(k, np.int64))),
            helper.make_node("Sub", ["d0", "k"], ["diff"]),
            helper.make_node("Cast", ["diff"], ["cond"], to=9)]


def _loop_model(trip, cond_out_nodes=None):
    from onnx import numpy_helper
    body_nodes = [helper.make_node("Mul", ["y_in", "two"], ["y2"]),
                  helper.make_node("Add", ["y2", "x"], ["y_out"]),
                  helper.make_node("Cast", ["i"], ["i_f"], to=1),
                  helper.make_node("Add", ["y_out", "i_f"], ["scan"])]
    body_nodes += cond_out_nodes or [helper.make_node("Identity", ["c_in"], ["c_out"])]
    body = helper.make_graph(
        body_nodes, "body", [_vi("i", [], 7), _vi("c_in", [], 9), _vi("y_in", [2, 3])],
        [_vi("c_out", [], 9), _vi("y_out", [2, 3]), _vi("scan", [2, 3])],
        initializer=[numpy_helper.from_array(np.array(2.0, np.float32), "two")])
    inits = [numpy_helper.from_array(np.array(trip, np.int64), "M"),
             numpy_helper.from_array(np.array(True), "c0")]
    nodes = [helper.make_node("Loop", ["M", "c0", "x"], ["y", "scans"], body=body)]
    return _model(nodes, [_vi("x", [2, 3])], [_vi("y", [2, 3]), _vi("scans", [trip, 2, 3])],
                  inits)


@pytest.mark.parametrize("k,desc", [(0, "then"), (2, "else")])
def test_if_constant_condition_inlined(k, desc, tmp_path):
    model = _if_model(_shape_cond(k))
    feeds = {"x": np.random.default_rng(3).standard_normal((2, 3)).astype(np.float32)}
    ref = ort_run(model, feeds)
    got = compile_and_run(model, feeds, tmp_path)
    np.testing.assert_allclose(got["y"], ref["y"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("trip", [1, 4])
def test_loop_constant_trip_count_unrolled(trip, tmp_path):
    model = _loop_model(trip)
    feeds = {"x": np.random.default_rng(4).standard_normal((2, 3)).astype(np.float32)}
    ref = ort_run(model, feeds)
    got = compile_and_run(model, feeds, tmp_path)
    for name in ("y", "scans"):
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-5, atol=1e-5, err_msg=name)


def test_control_flow_runtime_conditions_are_clear_errors():
    from tilecc.frontends.onnx import FrontendError, from_onnx
    model = _if_model([], [_vi("cond", [], 9)])
    with pytest.raises(FrontendError, match="cond .*must be a compile-time constant"):
        from_onnx(model)
    dyn = _loop_model(3, [helper.make_node("ReduceMax", ["y_out"], ["c_f"], keepdims=0),
                          helper.make_node("Cast", ["c_f"], ["c_out"], to=9)])
    with pytest.raises(FrontendError, match="data-dependent termination"):
        from_onnx(dyn)


def test_unsupported_ops_in_a_subgraph_listed_at_once():
    from tilecc.frontends.onnx import UnsupportedOpsError, from_onnx
    then_g = helper.make_graph([helper.make_node("TfIdfVectorizer", ["x"], ["t0"], name="nz"),
                                helper.make_node("ImageDecoder", ["x"], ["t"], name="uq")], "then",
                               [], [_vi("t", None)])
    else_g = helper.make_graph([helper.make_node("Relu", ["x"], ["e"])], "else", [],
                               [_vi("e", [2, 3])])
    from onnx import numpy_helper
    model = _model([helper.make_node("If", ["c"], ["y"], then_branch=then_g,
                                     else_branch=else_g)],
                   [_vi("x", [2, 3])], [_vi("y", None)],
                   [numpy_helper.from_array(np.array(True), "c")], check=False)
    with pytest.raises(UnsupportedOpsError) as ei:
        from_onnx(model)
    assert {"TfIdfVectorizer", "ImageDecoder"} <= set(ei.value.unsupported), str(ei.value)
    assert "'nz' in subgraph 'then'" in str(ei.value)


def test_recurrent_ops_are_extern_kernels_without_tuning_tasks():
    """LSTM compiles through the extern hook (one kernel, no TE schedule): the autotuner finds
    no task in it, and asking for its TE schedule (GPU path) is a clear TileccError."""
    from tilecc.autotune.task import extract_tasks
    from tilecc.build import build_schedule, prepare_graph
    from tilecc.errors import TileccError
    from tilecc.passes.fuse import fuse_ops
    from tilecc.targets import get_target

    case = next(c for c in CASES if c.id == "LSTM-forward")
    _, model = case.feeds_and_model()
    assert extract_tasks(model, "host") == []
    graph, _ = prepare_graph(model)
    fused = fuse_ops(graph)
    (node,) = [n for n in fused.nodes if n.attrs.get("anchor") == "LSTM"]
    assert [m.op for m in node.attrs["nodes"]] == ["LSTM"]
    with pytest.raises(TileccError, match="CPU targets only"):
        build_schedule(node, fused, get_target("host"))

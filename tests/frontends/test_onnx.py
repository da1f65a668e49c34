"""ONNX frontend: model import, errors, and every canonical op's fold checked vs onnxruntime."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tilecc.frontends.onnx import FrontendError, UnsupportedOpsError, from_onnx
from tilecc.graph import verify
from tilecc.passes.fold import fold_constants
from tilecc.passes.pipeline import PassContext, run_passes, run_pipeline

ort = pytest.importorskip("onnxruntime")

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend/test/data/light")
LIGHT_MODELS = sorted(f for f in os.listdir(LIGHT) if f.endswith(".onnx"))
RNG = np.random.default_rng(0)


def evaluate(graph, feeds):
    """Run a graph by turning its inputs into constants and folding everything."""
    g = graph.copy()
    for k, v in feeds.items():
        g.consts[k] = v
    g.inputs = []
    g = fold_constants(g)
    return [g.consts[o] for o in g.outputs]


# ---- whole models ---------------------------------------------------------------------

def test_light_model_list_complete():
    assert len(LIGHT_MODELS) == 9


@pytest.mark.parametrize("fname", LIGHT_MODELS)
def test_light_models_import_and_optimize(fname):
    g = from_onnx(os.path.join(LIGHT, fname))
    verify(g)
    model = onnx.load(os.path.join(LIGHT, fname), load_external_data=False)
    assert g.outputs == [o.name for o in model.graph.output]
    opt = run_passes(g, verify_each=True)
    verify(opt)
    left = {n.op for n in opt.nodes}
    assert not left & {"BatchNormalization", "ConstantOfShape", "Shape", "Identity", "Dropout"}


def test_light_densenet_matches_onnxruntime_after_passes():
    # densenet's light weights are not all zero, so this is a real numerical check of the
    # Conv -> BN -> Mul -> Add folding on a full model.
    path = os.path.join(LIGHT, "light_densenet121.onnx")
    g = from_onnx(path)
    x = RNG.standard_normal(g.types[g.inputs[0]].shape).astype(np.float32)
    ref = session(path).run(None, {g.inputs[0]: x})[0]
    got = evaluate(run_passes(g), {g.inputs[0]: x})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


# ---- errors ---------------------------------------------------------------------------

def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "t", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8  # the newest IR that every onnxruntime in the test extra accepts
    return model


def session(model):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # old-opset models make ORT warn about its own optimizers
    src = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def _vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def test_unsupported_ops_listed_all_at_once():
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="r0"),
             helper.make_node("ImageDecoder", ["a"], ["b"], name="nz1"),
             helper.make_node("TfIdfVectorizer", ["a"], ["c"], name="tfidf1"),
             helper.make_node("ImageDecoder", ["a"], ["d"], name="nz2"),
             helper.make_node("HardSwish", ["a"], ["e"], name="hs")]  # needs opset 14
    m = _model(nodes, [_vi("x", [2])], [_vi("b", None), _vi("c", None), _vi("d", None),
                                        _vi("e", None)], opset=13)
    with pytest.raises(UnsupportedOpsError) as ei:
        from_onnx(m)
    msg = str(ei.value)
    assert "ImageDecoder" in msg and "'nz1'" in msg and "'nz2'" in msg
    assert "TfIdfVectorizer" in msg and "'tfidf1'" in msg
    assert "HardSwish" in msg and "'hs'" in msg
    assert "Relu" not in msg
    assert set(ei.value.unsupported) >= {"ImageDecoder", "TfIdfVectorizer"}


def test_dynamic_dim_needs_override():
    m = _model([helper.make_node("Relu", ["x"], ["y"])],
               [_vi("x", ["batch", 3])], [_vi("y", None)])
    with pytest.raises(FrontendError) as ei:
        from_onnx(m)
    msg = str(ei.value)
    assert "'x'" in msg and "dimension 0" in msg and "batch" in msg
    assert "--input-shape x=d0,d1,..." in msg
    g = from_onnx(m, input_shapes={"x": (4, 3)})
    assert g.types["x"].shape == (4, 3) and g.types["y"].shape == (4, 3)
    with pytest.raises(FrontendError, match="not model inputs"):
        from_onnx(m, input_shapes={"nope": (1,)})


def test_non_constant_static_input_is_reported():
    m = _model([helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")],
               [_vi("x", [2, 3]), _vi("s", [2], TensorProto.INT64)], [_vi("y", None)])
    with pytest.raises(FrontendError, match="'rs'.*compile-time constant"):
        from_onnx(m)


def test_external_data_round_trip(tmp_path):
    w = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
    m = _model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
               [_vi("x", [1, 3, 5, 5])], [_vi("y", None)],
               [numpy_helper.from_array(w, "w")])
    path = tmp_path / "sub" / "model.onnx"
    path.parent.mkdir()
    onnx.save_model(m, str(path), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    assert (path.parent / "weights.bin").exists()
    g = from_onnx(path)
    verify(g)
    np.testing.assert_array_equal(g.consts["w"], w)
    x = RNG.standard_normal((1, 3, 5, 5)).astype(np.float32)
    ref = session(str(path)).run(None, {"x": x})[0]
    np.testing.assert_allclose(evaluate(g, {"x": x})[0], ref, rtol=1e-5, atol=1e-5)


def test_constant_output_and_identity_output_keep_names():
    shape = helper.make_node("Shape", ["x"], ["s"])
    ident = helper.make_node("Identity", ["x"], ["y"])
    m = _model([shape, ident], [_vi("x", [2, 5])],
               [_vi("s", None), _vi("y", None), _vi("x", None)])
    g = from_onnx(m)
    verify(g)
    assert g.outputs == ["s", "y", "x"]
    np.testing.assert_array_equal(g.consts["s"], [2, 5])
    ctx = PassContext(verify_each=True)
    g2 = run_pipeline(g, ctx)
    # The optimising passes keep the names; prepare_outputs then gives each a kernel's copy.
    assert ctx.out_names == ["s", "y", "x"] and "s" in g2.consts
    assert g2.outputs == ["s_copy", "y_copy", "x_copy"]


def test_shape_chain_folds_into_static_reshape():
    # x.shape -> Gather(0) -> Unsqueeze -> Concat([-1]) -> Reshape: the classic flatten idiom.
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
             helper.make_node("Concat", ["n1", "m1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["y"])]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "i0"),
             numpy_helper.from_array(np.array([0], np.int64), "ax0"),
             numpy_helper.from_array(np.array([-1], np.int64), "m1")]
    g = from_onnx(_model(nodes, [_vi("x", [2, 3, 4])], [_vi("y", None)], inits))
    assert [n.op for n in g.nodes] == ["Reshape"]
    assert g.nodes[0].attrs["shape"] == (2, 12) and g.types["y"].shape == (2, 12)


# ---- op table vs onnxruntime ----------------------------------------------------------

def X(*shape, kind="normal", dtype=np.float32):
    """A runtime input of the given shape."""
    return ("input", shape, kind, dtype)


def C(value, dtype=None):
    """A constant (initializer) input."""
    return np.asarray(value, dtype=dtype)


def case(op, inputs, opset=17, n_out=1, id=None, expect=None, **attrs):
    """One op test; `expect(*inputs)` replaces onnxruntime for opsets it no longer runs."""
    return pytest.param(op, inputs, attrs, opset, n_out, expect,
                        id=id or f"{op}-{opset}-{len(CASES)}")


def _data(shape, kind, dtype):
    if kind == "pos":
        return (RNG.random(shape) + 0.5).astype(dtype)
    if kind == "int":
        return RNG.integers(-5, 6, shape).astype(dtype)
    if kind == "idx":
        return RNG.integers(-3, 3, shape).astype(dtype)
    return RNG.standard_normal(shape).astype(dtype)


CASES: list = []
A = CASES.append

for _op in ("Relu", "Sigmoid", "Tanh", "Exp", "Neg", "Abs", "Floor", "Ceil", "Softplus"):
    A(case(_op, [X(2, 3, 4)], opset=13))
    A(case(_op, [X(5)], opset=6))
for _op in ("Log", "Sqrt", "Reciprocal"):
    A(case(_op, [X(3, 4, kind="pos")], opset=13))
A(case("Erf", [X(3, 7)], opset=13))
A(case("Round", [C([0.5, 1.5, 2.5, -0.5, -1.5, 1.2, -2.7], np.float32)], opset=13))
A(case("HardSwish", [X(2, 9)], opset=14))
A(case("LeakyRelu", [X(4, 5)], opset=6))
A(case("LeakyRelu", [X(4, 5)], opset=16, alpha=0.3))
A(case("HardSigmoid", [X(4, 5)], opset=6))
A(case("HardSigmoid", [X(4, 5)], opset=6, alpha=0.4, beta=0.3))
A(case("Elu", [X(4, 5)], opset=6))
A(case("Elu", [X(4, 5)], opset=6, alpha=0.7))
A(case("Clip", [X(3, 4)], opset=6, min=-0.5, max=0.7))
A(case("Clip", [X(3, 4)], opset=6))
A(case("Clip", [X(3, 4), C(-0.2, np.float32)], opset=11))
A(case("Clip", [X(3, 4), None, C(0.3, np.float32)], opset=13))
A(case("Clip", [X(3, 4), C(0.0, np.float32), C(6.0, np.float32)], opset=13))
A(case("Clip", [X(3, 4, kind="int", dtype=np.int64), C(-2), C(3)], opset=13))
for _op in ("Add", "Sub", "Mul", "Div"):
    A(case(_op, [X(2, 3, 4), X(3, 1)], opset=14))
    A(case(_op, [X(4), X(2, 3, 4)], opset=7))
    _np = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[_op]
    A(case(_op, [X(2, 3, 4, 5), X(3, 4)], opset=6, broadcast=1, axis=1,
           expect=lambda a, b, f=_np: [f(a, b[:, :, None])]))
    A(case(_op, [X(2, 3, 4), X(4)], opset=6, broadcast=1, expect=lambda a, b, f=_np: [f(a, b)]))
A(case("Div", [X(2, 6, kind="int", dtype=np.int32), C([[3, -2, 4, -5, 7, 2]], np.int32)],
       opset=14))
A(case("Pow", [X(3, 4, kind="pos"), X(4)], opset=15))
A(case("Pow", [X(3, 4, kind="pos"), C(2, np.int64)], opset=15))
A(case("Pow", [X(2, 3, kind="pos"), X(2, 3)], opset=7))
for _op in ("Sum", "Max", "Min", "Mean"):
    A(case(_op, [X(2, 3), X(3), X(1, 3)], opset=13))
    A(case(_op, [X(4)], opset=13))
A(case("Conv", [X(1, 3, 7, 7), C(RNG.standard_normal((4, 3, 3, 3)), np.float32),
                C(RNG.standard_normal(4), np.float32)], strides=[2, 2], pads=[1, 1, 1, 1]))
A(case("Conv", [X(2, 4, 9, 8), C(RNG.standard_normal((6, 2, 3, 2)), np.float32)],
       group=2, dilations=[2, 1], pads=[0, 1, 2, 0]))
A(case("Conv", [X(1, 3, 9, 9), C(RNG.standard_normal((3, 1, 3, 3)), np.float32)],
       group=3, strides=[2, 2], auto_pad="SAME_UPPER"))
A(case("Conv", [X(1, 2, 8, 9), C(RNG.standard_normal((2, 2, 4, 4)), np.float32)],
       strides=[3, 2], auto_pad="SAME_LOWER"))
A(case("Conv", [X(1, 2, 8, 9), C(RNG.standard_normal((2, 2, 3, 3)), np.float32)],
       auto_pad="VALID", opset=11))
A(case("Conv", [X(2, 3, 11), C(RNG.standard_normal((5, 3, 3)), np.float32),
                C(RNG.standard_normal(5), np.float32)], strides=[2], pads=[1, 2], id="Conv1d"))
A(case("Gemm", [X(3, 4), X(4, 5)]))
A(case("Gemm", [X(4, 3), X(5, 4), X(5)], transA=1, transB=1, alpha=0.5, beta=2.0))
A(case("Gemm", [X(3, 4), X(4, 5), X(3, 1)], opset=11, beta=0.5))
A(case("Gemm", [X(3, 4), X(4, 5), C(RNG.standard_normal((3, 5)), np.float32)], opset=9))
A(case("MatMul", [X(3, 4), X(4, 5)]))
A(case("MatMul", [X(2, 1, 3, 4), X(3, 4, 2)]))
A(case("MatMul", [X(4), X(2, 4, 3)]))
A(case("MatMul", [X(2, 3, 4), X(4)]))
A(case("BatchNormalization",
       [X(2, 3, 4, 5), X(3), X(3), X(3), X(3, kind="pos")], opset=15, epsilon=1e-3))
A(case("BatchNormalization", [X(4, 3), X(3), X(3), X(3), X(3, kind="pos")], opset=9))
A(case("MaxPool", [X(1, 2, 5, 5)], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1))
A(case("MaxPool", [X(1, 2, 6, 7)], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
       ceil_mode=1))
A(case("MaxPool", [X(1, 1, 4, 4)], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1],
       ceil_mode=1, id="MaxPool-ceil-window-in-end-pad"))
A(case("AveragePool", [X(1, 1, 4, 4)], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1],
       ceil_mode=1, count_include_pad=1, id="AveragePool-ceil-window-in-end-pad"))
A(case("MaxPool", [X(1, 2, 8, 8)], kernel_shape=[3, 2], strides=[2, 3], dilations=[2, 1],
       pads=[1, 0, 1, 1]))
A(case("MaxPool", [X(1, 3, 7, 6)], kernel_shape=[3, 3], strides=[2, 2],
       auto_pad="SAME_UPPER"))
A(case("MaxPool", [X(1, 3, 7, 6)], kernel_shape=[3, 3], strides=[2, 2],
       auto_pad="SAME_LOWER", opset=8))
A(case("MaxPool", [X(2, 3, 10)], kernel_shape=[3], strides=[2], pads=[1, 1], id="MaxPool1d"))
for _cip in (0, 1):
    A(case("AveragePool", [X(1, 2, 7, 7)], kernel_shape=[3, 3], strides=[2, 2],
           pads=[1, 1, 1, 1], count_include_pad=_cip))
    A(case("AveragePool", [X(1, 2, 6, 7)], kernel_shape=[3, 3], strides=[2, 2],
           pads=[1, 0, 1, 1], count_include_pad=_cip, ceil_mode=1))
    A(case("AveragePool", [X(1, 2, 5, 5)], kernel_shape=[2, 2], strides=[2, 2],
           count_include_pad=_cip, ceil_mode=1))
A(case("AveragePool", [X(1, 2, 7, 6)], kernel_shape=[3, 2], auto_pad="SAME_UPPER"))
A(case("AveragePool", [X(1, 2, 7, 6)], kernel_shape=[3, 3], strides=[2, 2],
       auto_pad="SAME_LOWER", opset=7))
A(case("GlobalAveragePool", [X(2, 3, 5, 4)]))
A(case("GlobalMaxPool", [X(2, 3, 5, 4)]))
A(case("GlobalAveragePool", [X(2, 3, 5)]))
A(case("LRN", [X(1, 7, 3, 3)], size=3))
A(case("LRN", [X(2, 6, 4, 3)], size=3, alpha=0.01, beta=0.5, bias=2.0))
A(case("LRN", [X(1, 5, 2, 2)], size=5, alpha=1e-3))
for _op in ("Softmax", "LogSoftmax"):
    A(case(_op, [X(2, 3, 4)], opset=11))
    A(case(_op, [X(2, 3, 4)], opset=11, axis=2))
    A(case(_op, [X(2, 3, 4)], opset=11, axis=0))
    A(case(_op, [X(2, 3, 4)], opset=13))
    A(case(_op, [X(2, 3, 4)], opset=13, axis=1))
A(case("Concat", [X(2, 3), X(2, 5), X(2, 1)], axis=1))
A(case("Concat", [X(2, 3), X(1, 3)], axis=-2, opset=11))
A(case("Reshape", [X(2, 3, 4), C([0, -1], np.int64)]))
A(case("Reshape", [X(2, 3, 4), C([4, 1, -1, 1], np.int64)], opset=5))
A(case("Reshape", [X(2, 3, 4)], opset=1, shape=[6, 4]))
A(case("Flatten", [X(2, 3, 4, 5)]))
A(case("Flatten", [X(2, 3, 4, 5)], axis=0))
A(case("Flatten", [X(2, 3, 4, 5)], axis=-2, opset=13))
A(case("Transpose", [X(2, 3, 4)]))
A(case("Transpose", [X(2, 3, 4, 5)], perm=[0, 2, 3, 1]))
A(case("Squeeze", [X(1, 3, 1, 4)], opset=11))
A(case("Squeeze", [X(1, 3, 1, 4)], opset=11, axes=[-2]))
A(case("Squeeze", [X(1, 3, 1, 4), C([0, 2], np.int64)], opset=13))
A(case("Unsqueeze", [X(3, 4)], opset=11, axes=[0, -1]))
A(case("Unsqueeze", [X(3, 4), C([1, 3], np.int64)], opset=13))
A(case("Slice", [X(5, 6, 7)], opset=1, starts=[1, -4], ends=[100, -1], axes=[0, 2]))
A(case("Slice", [X(5, 6, 7)], opset=9, starts=[2, 0], ends=[4, 3]))
A(case("Slice", [X(5, 6), C([4, -1], np.int64), C([-100, 0], np.int64),
                 C([0, 1], np.int64), C([-2, -3], np.int64)], opset=13))
A(case("Slice", [X(5, 6), C([-1], np.int64), C([-2 ** 63], np.int64),
                 C([1], np.int64), C([-1], np.int64)], opset=13))
A(case("Slice", [X(5, 6), C([1], np.int64), C([2 ** 62], np.int64)], opset=10))
A(case("Slice", [X(5, 6), C([0, 1], np.int64), C([5, 6], np.int64), None,
                 C([2, 2], np.int64)], opset=11))
A(case("Split", [X(6, 4)], opset=11, n_out=3))
A(case("Split", [X(6, 5)], opset=11, n_out=2, axis=1, split=[2, 3]))
A(case("Split", [X(6, 5)], opset=2, n_out=2, axis=-1, split=[4, 1]))
A(case("Split", [X(4, 7), C([1, 2, 4], np.int64)], opset=13, n_out=3, axis=1))
A(case("Split", [X(4, 7)], opset=18, n_out=3, axis=1, num_outputs=3))
A(case("Split", [X(4, 7)], opset=13, n_out=1, axis=1))
A(case("Gather", [X(5, 4), C([[0, -1], [2, 3]], np.int64)], axis=0))
A(case("Gather", [X(3, 5, 2), X(4, kind="idx", dtype=np.int64)], axis=1))
A(case("Gather", [X(3, 5), C(-2, np.int32)], axis=-1))
A(case("Pad", [X(2, 3)], opset=2, pads=[1, 0, 2, 3], value=1.5))
A(case("Pad", [X(2, 3)], opset=1, paddings=[0, 1, 1, 0],
       expect=lambda x: [np.pad(x, [(0, 1), (1, 0)])]))
A(case("Pad", [X(1, 2, 4, 5), C([0, 0, 1, 2, 0, 0, 2, 1], np.int64)], opset=11))
A(case("Pad", [X(1, 2, 4, 5), C([0, 0, 1, 2, 0, 0, 2, 1], np.int64), C(-3.0, np.float32)],
       opset=13))
A(case("Pad", [X(1, 2, 4, 5), C([0, 0, 2, 1, 0, 0, 1, 3], np.int64)], opset=13,
       mode="reflect"))
A(case("Pad", [X(1, 2, 4, 5), C([0, 0, 2, 1, 0, 0, 1, 3], np.int64)], opset=13, mode="edge"))
A(case("Pad", [X(3, 5), C([1, -1, -1, 2], np.int64)], opset=13))
A(case("Pad", [X(2, 3, 4), C([1, 2, 0, 1], np.int64), C(0.5, np.float32),
               C([0, -1], np.int64)], opset=18))
for _op in ("ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSum"):
    A(case(_op, [X(2, 3, 4)], opset=11, axes=[1, -1]))
    A(case(_op, [X(2, 3, 4)], opset=11, keepdims=0))
    A(case(_op, [X(2, 3, 4), C([0, 2], np.int64)], opset=18, keepdims=0))
    A(case(_op, [X(2, 3, 4)], opset=18))
    A(case(_op, [X(2, 3, 4), C([], np.int64)], opset=18, noop_with_empty_axes=1))
A(case("ReduceSum", [X(2, 3, 4), C([-2], np.int64)], opset=13))
A(case("Cast", [X(3, 4)], opset=13, to=TensorProto.INT32))
A(case("Cast", [X(3, 4, kind="int", dtype=np.int64)], opset=13, to=TensorProto.FLOAT))
A(case("Cast", [X(3, 4)], opset=13, to=TensorProto.FLOAT))
A(case("Identity", [X(3, 4)]))
A(case("Dropout", [X(3, 4)], opset=13, n_out=2))
A(case("Shape", [X(3, 4, 5)], opset=15, start=1))
A(case("ConstantOfShape", [C([2, 3], np.int64)], opset=9,
       value=numpy_helper.from_array(np.array([1.5], np.float32))))
A(case("Constant", [], opset=13, value_ints=[1, 2, 3]))
A(case("Constant", [], opset=9, value=numpy_helper.from_array(np.ones((2, 2), np.float32))))


def _build(op, inputs, attrs, opset, n_out):
    names, graph_inputs, inits, feeds = [], [], [], {}
    for k, spec in enumerate(inputs):
        name = f"in{k}"
        if spec is None:
            names.append("")
        elif isinstance(spec, tuple):
            _, shape, kind, dtype = spec
            feeds[name] = _data(shape, kind, dtype)
            graph_inputs.append(helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), list(shape)))
            names.append(name)
        else:
            inits.append(numpy_helper.from_array(spec, name))
            names.append(name)
    outs = [f"out{k}" for k in range(n_out)]
    node = helper.make_node(op, names, outs, name="the_node", **attrs)
    model = _model([node], graph_inputs, [helper.make_empty_tensor_value_info(o) for o in outs],
                   inits, opset)
    return model, feeds


@pytest.mark.parametrize("op, inputs, attrs, opset, n_out, expect", CASES)
@pytest.mark.parametrize("as_consts", [False, True], ids=["runtime", "folded"])
def test_op_matches_onnxruntime(op, inputs, attrs, opset, n_out, expect, as_consts):
    model, feeds = _build(op, inputs, attrs, opset, n_out)
    if expect is None:
        refs = session(model).run(None, feeds)
    else:
        refs = [np.asarray(r, np.float32) for r in expect(*feeds.values())]
    if as_consts:
        # All inputs become initializers: the frontend folds the op while converting.
        for vi in list(model.graph.input):
            model.graph.initializer.append(numpy_helper.from_array(feeds[vi.name], vi.name))
        del model.graph.input[:]
        g = from_onnx(model)
        assert not g.nodes
        verify(g)
        got = [g.consts[o] for o in g.outputs]
    else:
        g = from_onnx(model)
        verify(g)
        for n in g.nodes:
            assert n.op not in {"Identity", "Dropout", "Shape", "Constant", "Flatten", "Split",
                                "Squeeze", "Unsqueeze", "Sum", "Mean", "ConstantOfShape"}
        got = evaluate(g, feeds)
    assert len(got) == len(refs)
    for o, r, out in zip(got, refs, g.outputs):
        assert o.dtype == r.dtype, f"{out}: dtype {o.dtype} != onnxruntime {r.dtype}"
        assert o.shape == r.shape, f"{out}: shape {o.shape} != onnxruntime {r.shape}"
        assert g.types[out].shape == r.shape
        np.testing.assert_allclose(o, r, rtol=1e-5, atol=1e-5)

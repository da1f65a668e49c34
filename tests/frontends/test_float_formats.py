"""bfloat16 / float8 tensors through a saved artifact: graph inputs and outputs cross the
runtime boundary as uint16 / uint8 bit patterns (ml_dtypes arrays are accepted too), ops on
them compute in float32 with one rounding per ONNX node, bfloat16 weights are stored as
bits, and a Cast's saturate attribute reaches the generated code."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.models.harness import compile_and_run
from tilecc import floatfmt


def _model(nodes, inputs, outputs, inits=()):
    g = helper.make_graph(nodes, "m", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])


def test_bfloat16_matmul_add_with_bf16_weights(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 8)).astype(ml_dtypes.bfloat16)
    w = rng.standard_normal((8, 5)).astype(ml_dtypes.bfloat16)
    bias = rng.standard_normal(5).astype(ml_dtypes.bfloat16)
    m = _model([helper.make_node("MatMul", ["x", "w"], ["t"]),
                helper.make_node("Add", ["t", "b"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [4, 8])],
               [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [4, 5])],
               [numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "b")])
    out = compile_and_run(m, {"x": x.view(np.uint16)}, tmp_path)["y"]
    assert out.dtype == np.uint16 and out.shape == (4, 5)
    # Reference: float32 math, each node's result rounded once to bfloat16 (RNE).
    f32 = np.float32
    t = (x.astype(f32) @ w.astype(f32)).astype(ml_dtypes.bfloat16)
    want = (t.astype(f32) + bias.astype(f32)).astype(ml_dtypes.bfloat16)
    got = out.view(ml_dtypes.bfloat16).astype(f32)
    # The MatMul's float32 sum order may differ from numpy's: one bfloat16 ulp (2^-7 relative).
    np.testing.assert_allclose(got, want.astype(f32), rtol=2 ** -7, atol=1e-6)


@pytest.mark.parametrize("saturate, code", [(1, 0x7E), (0, 0x7F)])
def test_float8_cast_saturate_and_ml_dtypes_input(tmp_path, saturate, code):
    m = _model([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT8E4M3FN,
                                 saturate=saturate),
                helper.make_node("Cast", ["y"], ["z"], to=TensorProto.FLOAT)],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT8E4M3FN, [4]),
                helper.make_tensor_value_info("z", TensorProto.FLOAT, [4])])
    x = np.array([1000.0, -0.3, 2.0 ** -9, 3.0], np.float32)
    out = compile_and_run(m, {"x": x}, tmp_path)
    assert out["y"].dtype == np.uint8
    want = floatfmt.from_f32_bits(x.view(np.uint32), "float8_e4m3fn", bool(saturate))
    np.testing.assert_array_equal(out["y"], want)
    assert out["y"][0] == code
    np.testing.assert_array_equal(out["z"][1:], want[1:].view(ml_dtypes.float8_e4m3fn)
                                  .astype(np.float32))


def test_runtime_accepts_bits_and_ml_dtypes_refuses_other_types(tmp_path):
    import tilecc
    from tilecc.errors import InputError

    m = _model([helper.make_node("Relu", ["x"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [3])],
               [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [3])])
    art = tilecc.compile(m, target="host")
    art.save(str(tmp_path / "m.tar"))
    mod = tilecc.load(str(tmp_path / "m.tar"))
    assert mod.input_info[0]["dtype"] == "bfloat16"
    x = np.array([-1.5, 0.0, 2.25], ml_dtypes.bfloat16)
    a = mod.run({"x": x})["y"]
    b = mod.run({"x": x.view(np.uint16)})["y"]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a.view(ml_dtypes.bfloat16).astype(np.float32), [0, 0, 2.25])
    with pytest.raises(InputError, match="bfloat16 .as uint16 bit patterns"):
        mod.run({"x": x.astype(np.float32)})


def test_computing_on_storage_only_values_is_refused():
    """A canonical op reading bfloat16 bits directly would compute on the bit patterns."""
    from tilecc.errors import UnsupportedError
    from tilecc.frontends.onnx import _check_storage_only
    from tilecc.graph import Graph, Node, TensorType

    t = TensorType((3,), "bfloat16")
    g = Graph([Node("Relu", ("x",), ("y",))], ["x"], ["y"], {"x": t, "y": t})
    with pytest.raises(UnsupportedError, match="Cast the value to float32"):
        _check_storage_only(g)


def test_bf16_graph_ops_are_wrapped_in_casts():
    from tilecc.frontends.onnx import from_onnx

    m = _model([helper.make_node("Relu", ["x"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [3])],
               [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [3])])
    g = from_onnx(m)
    assert [n.op for n in g.nodes] == ["Cast", "Relu", "Cast"]
    assert g.types["y"].dtype == "bfloat16"

"""Inputs whose dims are dynamic in the model: Paddle2ONNX writes dim_value -1, older
exporters 0, most name them with dim_param. Each compiles once the size is given, by input
(--input-shape x=1,3,8,8) or, for a named dim, by name (--input-shape batch=2); without it
the error names the input, the dim and both ways to give it."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.models.harness import compile_and_run, import_tilecc, ort_run


def _model(dims) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, None)
    for d in dims:
        dim = x.type.tensor_type.shape.dim.add()
        if isinstance(d, str):
            dim.dim_param = d
        else:
            dim.dim_value = d
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3],
                           np.random.default_rng(0).standard_normal(108).astype(np.float32))
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                           helper.make_node("Relu", ["c"], ["y"])], "dyn", [x],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("dims", [[-1, 3, 8, 8], [0, 3, 8, 8], ["batch", 3, -1, -1]])
def test_override_fixes_a_dynamic_dim(dims, tmp_path):
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    model = _model(dims)
    got = compile_and_run(model, {"x": x}, tmp_path, input_shapes={"x": (2, 3, 8, 8)})
    # onnxruntime reads a 0 as an empty dim, so the reference names the dims instead.
    ref = ort_run(_model(["n", 3, "h", "w"]), {"x": x})["y"]
    np.testing.assert_allclose(got["y"], ref, rtol=1e-4, atol=1e-5)


def test_named_dim_bound_by_name(tmp_path):
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    model = _model(["batch", 3, 8, 8])
    got = compile_and_run(model, {"x": x}, tmp_path, input_shapes={"batch": (2,)})
    np.testing.assert_allclose(got["y"], ort_run(model, {"x": x})["y"], rtol=1e-4, atol=1e-5)


def test_unbound_dims_say_how_to_bind_them():
    tilecc = import_tilecc()
    from tilecc.frontends.onnx_builder import FrontendError

    with pytest.raises(FrontendError, match=r"dimension 0 is dynamic \(dim_value -1\).*"
                       r"--input-shape x="):
        tilecc.compile(_model([-1, 3, 8, 8]))
    with pytest.raises(FrontendError, match=r"'batch'.*--input-shape batch=N"):
        tilecc.compile(_model(["batch", 3, 8, 8]))
    with pytest.raises(FrontendError, match="give it one positive size"):
        tilecc.compile(_model(["batch", 3, 8, 8]), input_shapes={"batch": (2, 3)})

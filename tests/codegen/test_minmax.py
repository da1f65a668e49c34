"""Float min/max as the LLVM back end emits them: NaN and infinity semantics of Relu, Clip, Max
and Min on the host, and one instruction per vector on x86 (a compare-and-blend pair in every
Relu and Clip epilogue cost a depthwise convolution a tenth of its time)."""

from __future__ import annotations

import re

import llvmlite.binding as llvm
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.models.harness import import_tilecc

SPECIAL = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 6.0, -6.0, 5.999, 6.001,
                    1e-45, -1e-45, 3.4e38, -3.4e38, 0.5, -0.5], np.float32)


def _model(op: str, n: int) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])
    inits = [helper.make_tensor("lo", TensorProto.FLOAT, [], [0.0]),
             helper.make_tensor("hi", TensorProto.FLOAT, [], [6.0])]
    node = {"Relu": helper.make_node("Relu", ["x"], ["y"]),
            "Clip": helper.make_node("Clip", ["x", "lo", "hi"], ["y"]),
            "Max": helper.make_node("Max", ["x", "hi"], ["y"]),
            "Min": helper.make_node("Min", ["x", "lo"], ["y"])}[op]
    g = helper.make_graph([node], op, [x], [y], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def _expected(op: str, x: np.ndarray) -> np.ndarray:
    # numpy's maximum/minimum propagate a NaN operand, as ONNX's reference does for these.
    return {"Relu": lambda: np.maximum(x, 0), "Clip": lambda: np.clip(x, 0, 6),
            "Max": lambda: np.maximum(x, 6), "Min": lambda: np.minimum(x, 0)}[op]()


@pytest.mark.parametrize("op", ["Relu", "Clip", "Max", "Min"])
def test_special_values_match_numpy(tmp_path, op):
    tilecc = import_tilecc()
    # Long enough for vector loops and a scalar tail, every special value in every lane.
    x = np.tile(SPECIAL, 9)[:139].reshape(1, -1)
    tilecc.compile(_model(op, x.shape[1]), default_logs=False).save(str(tmp_path / "m.tar"))
    got = tilecc.load(str(tmp_path / "m.tar")).run({"x": x})["y"]
    np.testing.assert_array_equal(got, _expected(op, x))


def _x86_asm(model: onnx.ModelProto) -> str:
    from tilecc.build import compile_graph, prepare_graph
    from tilecc.codegen.llvm import ModuleCodegen
    from tilecc.targets import get_target

    target = get_target("x86-64-avx2")
    graph, outs = prepare_graph(model, target=target)
    cm = compile_graph(graph, target, "m", outs, debug_ir=True)
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    return ModuleCodegen(target, "m").target_machine().emit_assembly(
        llvm.parse_assembly(cm.llvm_ir))


@pytest.mark.parametrize("op, insn", [("Relu", "vmaxps"), ("Clip", "vminps")])
def test_x86_clamps_are_one_instruction(op, insn):
    asm = _x86_asm(_model(op, 1024))
    assert re.search(rf"\b{insn}\s[^\n]*%ymm", asm), f"no 256-bit {insn} in the {op} kernel"
    assert not re.search(r"\bv(cmp\w*ps|blendvps)\b", asm), f"{op}: compare/blend per vector"


# Reductions propagate a NaN from anywhere in the window or axis, as numpy, PyTorch and IEEE
# 754-2019 `maximum` do. onnxruntime has no one rule here (its vectorised kernels drop or keep
# a NaN by its position: ReduceMax([0, nan, 2, 3]) = 2 and MaxPool over the same = 3 in
# onnxruntime 1.2x), so the reductions are checked against numpy instead.
REDUCTIONS = {"MaxPool": lambda x: x.reshape(1, 4, 3, 2, 3, 2).max(axis=(3, 5)),
              "ReduceMax": lambda x: x.max(axis=3, keepdims=True),
              "ReduceMin": lambda x: x.min(axis=3, keepdims=True)}


@pytest.mark.parametrize("op", ["Relu", "Clip", "Max", "Min", *REDUCTIONS])
@pytest.mark.parametrize("backend", ["host", "mali-g76"])
def test_special_values_match_onnxruntime_on_every_backend(tmp_path, backend, op):
    """The same NaN/inf/signed-zero semantics from the LLVM and the OpenCL emitter
    (codegen/semantics.py), equal to onnxruntime's outputs bit for bit where NaN is involved
    (OpenCL's fmax/fmin would turn Relu(NaN) into 0); reductions equal to numpy's."""
    from tests.codegen.test_opencl import require_opencl
    from tests.models.harness import ort_run

    if backend != "host":
        require_opencl()
    tilecc = import_tilecc()
    x = np.tile(SPECIAL, 9)[:144].reshape(1, -1)
    if op in REDUCTIONS:
        x = x.reshape(1, 4, 6, 6)
        xi = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))
        yi = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
        node = (helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])
                if op == "MaxPool" else
                helper.make_node(op, ["x"], ["y"], axes=[3], keepdims=1))
        model = helper.make_model(helper.make_graph([node], op, [xi], [yi]),
                                  opset_imports=[helper.make_opsetid("", 13)])
    else:
        model = _model(op, x.shape[1])
    art = tilecc.compile(model, target=backend, default_logs=False)
    got = tilecc.load(art.save(tmp_path / "m.tar")).run({"x": x})["y"]
    want = REDUCTIONS[op](x) if op in REDUCTIONS else ort_run(model, {"x": x})["y"]
    assert np.isnan(want).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got, want)

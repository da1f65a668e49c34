"""Bad inputs and the one-line error each must give (shared by the tests and docs/cli.md)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def model(nodes, inputs, outputs, inits=(), opset=17) -> onnx.ModelProto:
    m = helper.make_model(helper.make_graph(nodes, "bad", inputs, outputs, list(inits)),
                          opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def vi(name, shape, et=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, et, shape)


def relu_model(op: str = "Relu") -> onnx.ModelProto:
    return model([helper.make_node(op, ["x"], ["y"], name=op.lower())], [vi("x", [2, 3])],
                 [vi("y", [2, 3])])


def conv_model() -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")
    return model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])],
                 [vi("x", [1, 1, 4, 4])], [vi("y", None)], [w])


def _with(m: onnx.ModelProto, fn) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(m)
    fn(out)
    return out


def _attr_type(m):
    m.graph.node[0].attribute[0].CopyFrom(helper.make_attribute("pads", 1.5))


def _huge(m):
    for d, v in zip(m.graph.input[0].type.tensor_type.shape.dim, [1 << 20, 1 << 20]):
        d.dim_value = v


def _negative(m):
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -4


def _drop_init(m):
    del m.graph.initializer[:]


def _int_input(m):
    m.graph.input[0].type.tensor_type.elem_type = TensorProto.INT32


# (label, model bytes, exit code, exception class name, text the message must contain)
def compile_cases() -> list[tuple[str, bytes, int, str, str]]:
    relu, conv = relu_model(), conv_model()
    good = conv.SerializeToString()
    cycle = model([helper.make_node("Relu", ["b"], ["a"], name="r1"),
                   helper.make_node("Relu", ["a"], ["b"], name="r2"),
                   helper.make_node("Add", ["x", "a"], ["y"], name="add")],
                  [vi("x", [2])], [vi("y", None)])
    undefined = model([helper.make_node("Add", ["x", "ghost"], ["y"], name="add")],
                      [vi("x", [2])], [vi("y", None)])
    unsupported = model([helper.make_node("ImageDecoder", ["x"], ["y"], name="uq"),
                         helper.make_node("Relu", ["x"], ["z"], name="r")],
                        [vi("x", [2])], [vi("y", None), vi("z", None)])
    return [
        ("truncated protobuf", good[: len(good) // 2], 6, "FrontendError",
         "cannot load ONNX model"),
        ("not an ONNX file", b"\x00\xff garbage" * 10, 6, "FrontendError",
         "cannot load ONNX model"),
        ("cycle in the graph", cycle.SerializeToString(), 6, "ModelError",
         "the graph has a cycle: node 'r2' (Relu) -> node 'r1' (Relu) -> node 'r2' (Relu)"),
        ("undefined input", undefined.SerializeToString(), 6, "ModelError",
         "node 'add' (Add) reads 'ghost', which no node, graph input or initializer defines"),
        ("missing initializer", _with(conv, _drop_init).SerializeToString(), 6, "ModelError",
         "node 'conv' (Conv) reads 'w', which no node"),
        ("wrong attribute type", _with(conv, _attr_type).SerializeToString(), 6, "ModelError",
         "node 'conv' (Conv): attribute 'pads' is FLOAT, the op wants INTS"),
        ("negative dimension", _with(relu, _negative).SerializeToString(), 6, "FrontendError",
         "input 'x': dimension 0 is dynamic (dim_value -4); tilecc compiles static shapes"),
        ("absurd shape (2^20 x 2^20)", _with(relu, _huge).SerializeToString(), 8,
         "ResourceError", "input 'x' needs 4.0 TiB, over the"),
        ("input of the wrong type", _with(relu_model("Sigmoid"), _int_input).SerializeToString(),
         6, "ModelError",
         ("node 'sigmoid' (Sigmoid): input 0 ('x') is tensor(int32); Sigmoid takes")),
        ("unsupported op", unsupported.SerializeToString(), 7, "UnsupportedOpsError",
         "ImageDecoder: used by 'uq'"),
    ]

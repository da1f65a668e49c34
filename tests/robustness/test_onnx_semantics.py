"""Models onnxruntime refuses are refused by tilecc too, at compile time, in one message naming
the node (instead of a clamped index, a -inf pool, a guessed attribute or a crash)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tilecc
from tilecc.errors import ModelError, UnsupportedError

sys.path.insert(0, str(Path(__file__).parent))
from cases import model, vi

ort = pytest.importorskip("onnxruntime")


def _ort_error(m: onnx.ModelProto, feeds: dict) -> str | None:
    """onnxruntime's error for this model (at load or at run), or None if it runs."""
    try:
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        sess.run(None, feeds)
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        return str(e)
    return None


def _gather(indices) -> onnx.ModelProto:
    idx = numpy_helper.from_array(np.array(indices, np.int64), "i")
    return model([helper.make_node("Gather", ["x", "i"], ["y"], name="g", axis=0)],
                 [vi("x", [3, 4])], [vi("y", None)], [idx])


def _pool(op: str, **attrs) -> onnx.ModelProto:
    return model([helper.make_node(op, ["x"], ["y"], name="pool", **attrs)],
                 [vi("x", [1, 1, 4, 4])], [vi("y", None)])


def _relu(opset: int = 17, ir: int = 8) -> onnx.ModelProto:
    m = model([helper.make_node("Relu", ["x"], ["y"], name="r")], [vi("x", [3, 4])],
              [vi("y", None)], opset=opset)
    m.ir_version = ir
    return m


X = {"x": np.ones((3, 4), np.float32)}
X4 = {"x": np.ones((1, 1, 4, 4), np.float32)}
REFUSED = [
    ("gather index above", _gather([1, 5]), X, ModelError,
     "node 'g' (Gather): constant index 5 is out of range for axis 0 of size 3 (valid: -3..2)"),
    ("gather index below", _gather([[-4]]), X, ModelError,
     "node 'g' (Gather): constant index -4 is out of range"),
    ("maxpool kernel 0", _pool("MaxPool", kernel_shape=[0, 2]), X4, ModelError,
     "node 'pool' (MaxPool): kernel_shape [0, 2] has an entry below 1"),
    ("averagepool kernel 0", _pool("AveragePool", kernel_shape=[2, 0]), X4, ModelError,
     "node 'pool' (AveragePool): kernel_shape [2, 0] has an entry below 1"),
    ("maxpool stride 0", _pool("MaxPool", kernel_shape=[2, 2], strides=[0, 1]), X4, ModelError,
     "node 'pool' (MaxPool): strides [0, 1] has an entry below 1"),
    ("opset 1000", _relu(opset=1000), X, UnsupportedError,
     (f"the model uses opset 1000, newer than the newest the installed onnx package knows "
     f"({onnx.defs.onnx_opset_version()})")),
    ("IR version 99", _relu(ir=99), X, UnsupportedError,
     (f"the model's IR version 99 is newer than the installed onnx package supports "
     f"({onnx.IR_VERSION})")),
]


@pytest.mark.parametrize("label,m,feeds,cls,text", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_like_onnxruntime(label, m, feeds, cls, text):
    assert _ort_error(m, feeds) is not None, "onnxruntime accepts this model"
    with pytest.raises(cls) as e:
        tilecc.compile(m)
    assert text in str(e.value)
    assert "\n" not in str(e.value)


def test_in_range_negative_gather_index_still_compiles(tmp_path):
    m = _gather([-3, 2])
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x})[0]
    module = tilecc.load(tilecc.compile(m).save(tmp_path / "g.tar"))
    np.testing.assert_array_equal(module.run({"x": x})["y"], want)


@pytest.mark.parametrize("op,attrs,otype", [
    ("ReduceMean", {"axes": [1], "keepdims": -2}, TensorProto.FLOAT),
    ("ArgMax", {"axis": 1, "keepdims": 2}, TensorProto.INT64),
])
def test_keepdims_other_than_0_or_1_refused(op, attrs, otype):
    m = model([helper.make_node(op, ["x"], ["y"], name="red", **attrs)], [vi("x", [3, 4])],
              [vi("y", None, otype)])
    # onnxruntime reads any non-zero keepdims as 1; the ONNX spec defines only 0 and 1, and
    # tilecc refuses rather than guess which the exporter meant.
    assert _ort_error(m, X) is None
    with pytest.raises(ModelError, match=f"node 'red' \\({op}\\): attribute keepdims is "
                                         f"{attrs['keepdims']}; it must be 0 or 1"):
        tilecc.compile(m)


def test_node_without_outputs_named_in_the_message():
    m = model([helper.make_node("Relu", ["x"], [], name=""),
               helper.make_node("Relu", ["x"], ["y"], name="r")], [vi("x", [3, 4])],
              [vi("y", None)])
    assert _ort_error(m, X) is not None
    with pytest.raises(ModelError, match=r"node #0 \(Relu\): has 0 outputs, the op makes 1..1"):
        tilecc.compile(m)


def test_unsupported_node_without_outputs_named_in_the_message():
    m = model([helper.make_node("ImageDecoder", ["x"], [], name="")], [vi("x", [3, 4])],
              [vi("x", None)])
    with pytest.raises(UnsupportedError, match=r"ImageDecoder: used by #0 \(no outputs\)"):
        tilecc.compile(m)

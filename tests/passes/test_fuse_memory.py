"""Fusion groups and the static memory plan."""

from __future__ import annotations

import numpy as np
import pytest

from tests.models.builders import GraphBuilder, resnet_block_model
from tests.models.harness import import_tilecc, ort_run
from tilecc.build import prepare_graph
from tilecc.passes.fuse import fuse_ops
from tilecc.passes.memory import plan_memory


def test_conv_epilogues_fuse_into_one_group():
    graph, _ = prepare_graph(resnet_block_model())
    fused = fuse_ops(graph)
    groups = [[m.op for m in n.attrs["nodes"]] for n in fused.nodes if n.op == "Fused"]
    # BatchNorm is folded away, so the residual block's second conv carries Add and Relu.
    assert ["Conv", "Add", "Relu"] in groups
    assert all(g.count("Conv") <= 1 for g in groups)
    assert not any(n.op in ("BatchNormalization",) for n in graph.nodes)


def _se_block():
    g = GraphBuilder("se_block", 0)
    x = g.conv_bn(g.input((1, 16, 14, 14)), 32, 3, 1, act="swish")
    return g.build(g.squeeze_excite(x, 8, "swish", "sigmoid"))


def test_broadcast_gate_is_not_fused_into_its_tiny_producer(tmp_path):
    """x * sigmoid(conv(gap(x))): the Mul broadcasts the 1x1 gate over x. Joined to the gate's
    group, the sigmoid would run once per element of x; it must stay a kernel of its own,
    and the block must still compute what onnxruntime computes."""
    model = _se_block()
    graph, _ = prepare_graph(model)
    fused = fuse_ops(graph)
    groups = [[m.op for m in n.attrs["nodes"]] for n in fused.nodes if n.op == "Fused"]
    gate = [g for g in groups if g[-1] == "Sigmoid"]
    assert gate and all("Mul" not in g for g in gate), groups
    for n in fused.nodes:
        if n.op == "Fused":
            last = n.attrs["nodes"][-1]
            for i in last.inputs:
                if i in {o for m in n.attrs["nodes"] for o in m.outputs}:
                    assert graph.types[i].size == graph.types[last.outputs[0]].size, groups
    tilecc = import_tilecc()
    x = np.random.default_rng(1).standard_normal((1, 16, 14, 14)).astype(np.float32)
    tilecc.compile(model, default_logs=False).save(str(tmp_path / "m.tar"))
    got = tilecc.load(str(tmp_path / "m.tar")).run({"input": x})["output"]
    np.testing.assert_allclose(got, ort_run(model, {"input": x})["output"], rtol=1e-4,
                               atol=1e-5)


def test_plan_shares_memory_and_never_overlaps_live_buffers():
    rng = np.random.default_rng(0)
    sizes, life = {}, {}
    for k in range(60):
        a = int(rng.integers(0, 40))
        sizes[f"t{k}"] = int(rng.integers(1, 5000))
        life[f"t{k}"] = (a, a + int(rng.integers(0, 6)))
    offsets, total = plan_memory(sizes, life)
    assert total < sum(-(-s // 64) * 64 for s in sizes.values())
    names = list(sizes)
    for i, x in enumerate(names):
        assert offsets[x] % 64 == 0
        for y in names[i + 1:]:
            live = not (life[x][1] < life[y][0] or life[y][1] < life[x][0])
            apart = (offsets[x] + sizes[x] <= offsets[y] or offsets[y] + sizes[y] <= offsets[x])
            assert not live or apart, (x, y)


def _concat_model(batch=1, axis=1, repeat=False, expose=False, nested=False, width=16):
    """Fire-module-like: squeeze 1x1 conv, two expands, Concat, a conv reading the concat.
    `width` 13 keeps the expands in plain NCHW (no channel blocks divide it)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(4)

    def w(name, shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.3,
                                       name)

    inits = [w("ws", (8, 16, 1, 1)), w("we1", (width, 8, 1, 1)), w("we3", (width, 8, 3, 3)),
             w("wo", (8, width * (3 if nested else 2), 3, 3))]
    nodes = [helper.make_node("Conv", ["x", "ws"], ["s"]),
             helper.make_node("Relu", ["s"], ["sr"]),
             helper.make_node("Conv", ["sr", "we1"], ["e1"]),
             helper.make_node("Relu", ["e1"], ["e1r"]),
             helper.make_node("Conv", ["sr", "we3"], ["e3"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["e3"], ["e3r"])]
    parts = ["e1r", "e1r"] if repeat else ["e1r", "e3r"]
    nodes.append(helper.make_node("Concat", parts, ["cat"], axis=axis))
    last = "cat"
    if nested:
        nodes.append(helper.make_node("Sigmoid", ["e1"], ["e1s"]))
        nodes.append(helper.make_node("Concat", ["cat", "e1s"], ["cat2"], axis=axis))
        last = "cat2"
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if axis == 1:
        nodes.append(helper.make_node("Conv", [last, "wo"], ["y"], pads=[1, 1, 1, 1]))
    else:
        nodes.append(helper.make_node("Relu", [last], ["y"]))
    if expose:
        outs.append(helper.make_tensor_value_info("e3r", TensorProto.FLOAT, None))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [batch, 16, 10, 10])], outs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


CONCATS = {  # case -> (model kwargs, concats written in place)
    "fire": ({}, 1),
    "nested": ({"nested": True}, 2),
    "batch2": ({"batch": 2}, 0),
    "height_axis": ({"axis": 2}, 0),
    "repeated_input": ({"repeat": True}, 0),
    # Blocked, the slice is e3r's NCHWc form (in place); e3r gets its own layout kernel.
    "blocked_slice_is_an_output": ({"expose": True}, 1),
    "plain": ({"width": 13}, 1),
    "plain_slice_is_an_output": ({"width": 13, "expose": True}, 0),
}


@pytest.mark.parametrize("case", sorted(CONCATS))
def test_concat_inputs_written_in_place(tmp_path, case):
    """With unit dims before the axis each input is a contiguous slice of the concat, so its
    producer writes there and no concat kernel runs; where that does not hold (batch 2, a
    later axis, an input listed twice, an input that is a graph output) the copy stays.
    Results match onnxruntime either way (fp32: rtol 1e-4, atol 1e-5)."""
    kwargs, in_place = CONCATS[case]
    model = _concat_model(**kwargs)
    tilecc = import_tilecc()
    art = tilecc.compile(model, default_logs=False)
    arena = art.metadata["arena"]
    assert len(arena.get("concats") or {}) == in_place
    ops = [op for k in art.metadata["kernels"] for op in k["ops"]]
    assert ("Concat" in ops) == (in_place < 1 + kwargs.get("nested", False))
    art.save(str(tmp_path / "m.tar"))
    x = np.random.default_rng(2).standard_normal(
        [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]).astype(np.float32)
    got = tilecc.load(str(tmp_path / "m.tar")).run({"x": x})
    want = ort_run(model, {"x": x})
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5)


def test_fusion_roles_come_from_the_op_definitions():
    """passes/fuse.py keeps no list of op names: the elementwise set is every op registered
    with Pattern.ELEMWISE, so an op defined elementwise fuses (the bitwise ops and BitShift
    were missing from the old hand-kept list and never fused)."""
    from tilecc.ops.registry import OPS, Pattern, get_op
    from tilecc.passes.fuse import ELEMWISE

    assert {"BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot", "BitShift", "Relu",
            "Add", "Where", "BatchNormalization"} <= ELEMWISE
    assert not {"Conv", "MatMul", "Softmax", "ReduceSum", "Reshape"} & ELEMWISE
    assert ELEMWISE == {n for n in OPS if get_op(n).pattern is Pattern.ELEMWISE}


def test_bitwise_ops_fuse_into_one_kernel(tmp_path):
    """Add -> BitwiseAnd -> BitShift -> BitwiseNot on int32 is one kernel, equal to
    onnxruntime's result (integers: exact)."""
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.INT32, [4, 33])
    y = helper.make_tensor_value_info("y", TensorProto.INT32, None)
    inits = [numpy_helper.from_array(np.array([7], np.int32), "k"),
             numpy_helper.from_array(np.array([0x5A5A5], np.int32), "m"),
             numpy_helper.from_array(np.array([3], np.int32), "s")]
    nodes = [helper.make_node("Add", ["x", "k"], ["a"]),
             helper.make_node("BitwiseAnd", ["a", "m"], ["b"]),
             helper.make_node("Cast", ["b"], ["bu"], to=TensorProto.UINT32),
             helper.make_node("Cast", ["s"], ["su"], to=TensorProto.UINT32),
             helper.make_node("BitShift", ["bu", "su"], ["c"], direction="RIGHT"),
             helper.make_node("Cast", ["c"], ["ci"], to=TensorProto.INT32),
             helper.make_node("BitwiseNot", ["ci"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "bits", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 18)])
    tilecc = import_tilecc()
    art = tilecc.compile(model, default_logs=False)
    assert len(art.metadata["kernels"]) == 1, [k["ops"] for k in art.metadata["kernels"]]
    data = np.random.default_rng(0).integers(-(1 << 20), 1 << 20, (4, 33)).astype(np.int32)
    got = tilecc.load(art.save(tmp_path / "m.tar")).run({"x": data})["y"]
    np.testing.assert_array_equal(got, ort_run(model, {"x": data})["y"])

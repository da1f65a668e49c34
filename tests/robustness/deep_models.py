"""Generated models that are deep rather than big (nested Loops, long fused chains, wide
Concats), and a driver compiling one in this process: `python deep_models.py KIND N` exits 0
when tilecc's output equals onnxruntime's, else with the exit code of tilecc's error (the
tests run it in a subprocess, so a RecursionError, a hang or a crash fails only that test)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).parent))
from cases import model, vi


def chain(n: int) -> onnx.ModelProto:
    """n Sigmoids in a row: one fusable elementwise chain."""
    nodes, prev = [], "x"
    for i in range(n):
        out = "y" if i == n - 1 else f"t{i}"
        nodes.append(helper.make_node("Sigmoid", [prev], [out], name=f"n{i}"))
        prev = out
    return model(nodes, [vi("x", [2, 3])], [vi("y", None)])


def add_mul(n: int) -> onnx.ModelProto:
    """n alternating Add/Mul by a constant (nothing folds or simplifies away)."""
    c = numpy_helper.from_array(np.array(1.0001, np.float32), "c")
    nodes, prev = [], "x"
    for i in range(n):
        out = "y" if i == n - 1 else f"t{i}"
        nodes.append(helper.make_node("Mul" if i % 2 else "Add", [prev, "c"], [out],
                                      name=f"n{i}"))
        prev = out
    return model(nodes, [vi("x", [2, 3])], [vi("y", None)], [c])


def concat(n: int) -> onnx.ModelProto:
    return model([helper.make_node("Concat", [f"x{i}" for i in range(n)], ["y"], name="cat",
                                   axis=0)], [vi(f"x{i}", [1, 2]) for i in range(n)],
                 [vi("y", None)])


def nested_loops(depth: int, trip: int = 2) -> onnx.ModelProto:
    """`depth` Loops inside each other, each of `trip` iterations; the innermost adds 1."""
    def body(level: int) -> onnx.GraphProto:
        inputs = [helper.make_tensor_value_info(f"i{level}", TensorProto.INT64, []),
                  helper.make_tensor_value_info(f"c{level}", TensorProto.BOOL, []),
                  helper.make_tensor_value_info(f"v{level}", TensorProto.FLOAT, [2])]
        nodes = [helper.make_node("Identity", [f"c{level}"], [f"co{level}"])]
        if level == depth - 1:
            nodes.append(helper.make_node("Add", [f"v{level}", f"one{level}"], [f"vo{level}"]))
            inits = [helper.make_tensor(f"one{level}", TensorProto.FLOAT, [], [1.0])]
        else:
            nodes.append(helper.make_node("Loop", [f"trip{level}", "", f"v{level}"],
                                          [f"vo{level}"], body=body(level + 1),
                                          name=f"loop{level + 1}"))
            inits = [helper.make_tensor(f"trip{level}", TensorProto.INT64, [], [trip])]
        outs = [helper.make_tensor_value_info(f"co{level}", TensorProto.BOOL, []),
                helper.make_tensor_value_info(f"vo{level}", TensorProto.FLOAT, [2])]
        return helper.make_graph(nodes, f"body{level}", inputs, outs, inits)

    loop = helper.make_node("Loop", ["trip", "", "x"], ["y"], body=body(0), name="loop0")
    return model([loop], [vi("x", [2])], [vi("y", None)],
                 [numpy_helper.from_array(np.array(trip, np.int64), "trip")])


def loop(trip: int) -> onnx.ModelProto:
    return nested_loops(1, trip)


KINDS = {"chain": chain, "add_mul": add_mul, "concat": concat, "nested_loops": nested_loops,
         "loop": loop}


def main(kind: str, n: int, workdir: str) -> int:
    import onnxruntime as ort

    import tilecc
    from tilecc.errors import TileccError

    m = KINDS[kind](n)
    feeds = {i.name: np.random.default_rng(0).standard_normal(
        [d.dim_value for d in i.type.tensor_type.shape.dim]).astype(np.float32)
        for i in m.graph.input}
    try:
        module = tilecc.load(tilecc.compile(m).save(Path(workdir) / "m.tar"))
    except TileccError as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return e.exit_code
    got = module.run(feeds)["y"]
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, feeds)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))

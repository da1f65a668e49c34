"""Graph passes: folding, DCE, BN / scale-shift folding (numerically), reshapes, pipeline."""

from __future__ import annotations

import io

import numpy as np
import pytest

from tilecc.graph import Graph, GraphError, Node, TensorType, verify
from tilecc.ops.registry import get_op
from tilecc.passes.fold import eliminate_dead_code, fold_constants
from tilecc.passes.pipeline import PASSES, run_passes
from tilecc.passes.simplify import fold_batchnorm, fold_scale_shift, simplify_reshapes

RNG = np.random.default_rng(1)


class G:
    """Tiny graph builder for tests: typed via each op's shape rule."""

    def __init__(self, **inputs):
        self.g = Graph([], list(inputs), [], {k: TensorType(s, "float32")
                                              for k, s in inputs.items()})

    def const(self, name, arr):
        arr = np.asarray(arr, np.float32)
        self.g.consts[name] = arr
        self.g.types[name] = TensorType(arr.shape, "float32")
        return name

    def node(self, op, inputs, out, **attrs):
        (t,) = get_op(op).infer([self.g.types[i] for i in inputs], attrs)
        self.g.types[out] = t
        self.g.nodes.append(Node(op, tuple(inputs), (out,), attrs, out))
        return out

    def done(self, *outputs):
        self.g.outputs = list(outputs)
        verify(self.g)
        return self.g


def run(graph, feeds):
    """Evaluate a graph by folding it with its inputs bound to constants."""
    g = graph.copy()
    g.consts.update(feeds)
    g.inputs = []
    g = fold_constants(g)
    return [g.consts[o] for o in g.outputs]


CONV = {"strides": (1, 1), "pads": (1, 1, 1, 1), "dilations": (1, 1), "group": 1}


def _bn_params(b, c):
    return [b.const("s", RNG.standard_normal(c)), b.const("bb", RNG.standard_normal(c)),
            b.const("m", RNG.standard_normal(c)), b.const("v", RNG.random(c) + 0.5)]


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("group", [1, 2])
def test_conv_bn_fold_is_numerically_preserved(bias, group):
    b = G(x=(2, 4, 6, 6))
    w = b.const("w", RNG.standard_normal((6, 4 // group, 3, 3)))
    ins = ["x", w] + ([b.const("b", RNG.standard_normal(6))] if bias else [])
    y = b.node("Conv", ins, "y", **{**CONV, "group": group})
    b.node("BatchNormalization", [y, *_bn_params(b, 6)], "z", epsilon=1e-3)
    g = b.done("z")
    folded = fold_batchnorm(g)
    verify(folded)
    assert [n.op for n in folded.nodes] == ["Conv"] and folded.nodes[0].outputs == ("z",)
    assert [n.op for n in g.nodes] == ["Conv", "BatchNormalization"]  # input untouched
    x = RNG.standard_normal((2, 4, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(run(folded, {"x": x})[0], run(g, {"x": x})[0],
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("with_c", [False, True])
def test_gemm_bn_fold(trans_b, with_c):
    b = G(a=(3, 5))
    bw = b.const("bw", RNG.standard_normal((4, 5) if trans_b else (5, 4)))
    ins = ["a", bw] + ([b.const("c", RNG.standard_normal(4))] if with_c else [])
    y = b.node("Gemm", ins, "y", alpha=0.5, beta=2.0, transA=0, transB=trans_b)
    b.node("BatchNormalization", [y, *_bn_params(b, 4)], "z", epsilon=1e-5)
    g = b.done("z")
    folded = fold_batchnorm(g)
    verify(folded)
    assert [n.op for n in folded.nodes] == ["Gemm"]
    a = RNG.standard_normal((3, 5)).astype(np.float32)
    np.testing.assert_allclose(run(folded, {"a": a})[0], run(g, {"a": a})[0],
                               rtol=1e-4, atol=1e-4)


def test_bn_with_shared_conv_output_becomes_mul_add():
    b = G(x=(1, 3, 4, 4))
    y = b.node("Conv", ["x", b.const("w", RNG.standard_normal((3, 3, 3, 3)))], "y", **CONV)
    b.node("BatchNormalization", [y, *_bn_params(b, 3)], "z", epsilon=1e-5)
    b.node("Relu", [y], "r")
    g = b.done("z", "r")
    folded = fold_batchnorm(g)
    verify(folded)
    assert [n.op for n in folded.nodes] == ["Conv", "Mul", "Add", "Relu"]
    assert folded.consts[folded.nodes[1].inputs[1]].shape == (3, 1, 1)
    x = RNG.standard_normal((1, 3, 4, 4)).astype(np.float32)
    for got, ref in zip(run(folded, {"x": x}), run(g, {"x": x})):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_conv_mul_add_scale_shift_folds():
    b = G(x=(1, 2, 5, 5))
    y = b.node("Conv", ["x", b.const("w", RNG.standard_normal((4, 2, 3, 3))),
                        b.const("b", RNG.standard_normal(4))], "y", **CONV)
    m = b.node("Mul", [b.const("k", RNG.standard_normal((4, 1, 1))), y], "m")
    b.node("Add", [m, b.const("t", RNG.standard_normal((1, 4, 1, 1)))], "z")
    g = b.done("z")
    folded = fold_scale_shift(g)
    verify(folded)
    assert [n.op for n in folded.nodes] == ["Conv"]
    x = RNG.standard_normal((1, 2, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(run(folded, {"x": x})[0], run(g, {"x": x})[0],
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", [(5, 1), (1, 4, 5, 1), (2, 4, 1, 1)])
def test_scale_not_per_channel_is_kept(shape):
    b = G(x=(2, 2, 5, 5))
    y = b.node("Conv", ["x", b.const("w", RNG.standard_normal((4, 2, 3, 3)))], "y", **CONV)
    b.node("Mul", [y, b.const("k", RNG.standard_normal(shape))], "z")
    g = b.done("z")
    assert [n.op for n in fold_scale_shift(g).nodes] == ["Conv", "Mul"]


def test_fold_constants_and_dce():
    b = G(x=(2, 3))
    c = b.node("Exp", [b.const("c0", np.ones((2, 3)))], "c")
    b.node("Add", ["x", c], "y")
    b.node("Relu", ["x"], "dead")
    g = b.done("y")
    g2 = eliminate_dead_code(fold_constants(g))
    verify(g2)
    assert [n.op for n in g2.nodes] == ["Add"]
    np.testing.assert_allclose(g2.consts["c"], np.e * np.ones((2, 3)), rtol=1e-6)
    assert "c0" not in g2.consts and "dead" not in g2.types
    assert len(g.nodes) == 3 and "c" not in g.consts  # input untouched


def test_simplify_reshapes():
    b = G(x=(2, 3, 4))
    r1 = b.node("Reshape", ["x"], "r1", shape=(6, 4))
    r2 = b.node("Reshape", [r1], "r2", shape=(24,))
    same = b.node("Reshape", [r2], "r3", shape=(24,))
    b.node("Relu", [same], "y")
    g = b.done("y")
    g2 = eliminate_dead_code(simplify_reshapes(g))
    verify(g2)
    assert [(n.op, n.inputs) for n in g2.nodes] == [("Reshape", ("x",)), ("Relu", ("r2",))]


def test_pipeline_print_verify_and_levels():
    b = G(x=(1, 2, 4, 4))
    y = b.node("Conv", ["x", b.const("w", RNG.standard_normal((2, 2, 3, 3)))], "y", **CONV)
    b.node("BatchNormalization", [y, *_bn_params(b, 2)], "z", epsilon=1e-5)
    g = b.done("z")
    buf = io.StringIO()
    out = run_passes(g, print_ir_after={"fold_batchnorm"}, verify_each=True, out=buf)
    assert "// IR after fold_batchnorm" in buf.getvalue() and "Conv(" in buf.getvalue()
    assert [n.op for n in out.nodes] == ["Conv"]
    assert [n.op for n in run_passes(g, opt_level=0).nodes] == ["Conv", "BatchNormalization"]
    assert [p.name for p in PASSES][:2] == ["lower_qdq", "fold_constants"]
    with pytest.raises(ValueError, match="unknown pass"):
        run_passes(g, print_ir_after={"nope"})


def test_verifier_rejects_broken_graphs():
    b = G(x=(2, 3))
    b.node("Relu", ["x"], "y")
    g = b.done("y")
    broken = g.copy()
    broken.nodes = [Node("Relu", ("missing",), ("y",))]
    with pytest.raises(GraphError, match="not defined"):
        verify(broken)
    broken = g.copy()
    broken.outputs = ["nope"]
    with pytest.raises(GraphError, match="not produced"):
        verify(broken)
    broken = g.copy()
    broken.consts["k"] = np.zeros(3, np.float32)
    broken.types["k"] = TensorType((4,), "float32")
    with pytest.raises(GraphError, match="does not match"):
        verify(broken)


@pytest.mark.parametrize("op, types, attrs, msg", [
    ("Add", [((2, 3), "float32"), ((4,), "float32")], {}, "do not broadcast"),
    ("Conv", [((1, 3, 5, 5), "float32"), ((4, 2, 3, 3), "float32")],
     {**CONV, "group": 1}, "channels"),
    ("MatMul", [((2, 3), "float32"), ((4, 5), "float32")], {}, "inner dims"),
    ("Reshape", [((2, 3), "float32")], {"shape": (5,)}, "cannot reshape"),
    ("Concat", [((2, 3), "float32"), ((3, 4), "float32")], {"axis": 0}, "differ"),
    ("Add", [((2,), "float32"), ((2,), "int64")], {}, "dtype"),
])
def test_shape_rules_reject_inconsistent_shapes(op, types, attrs, msg):
    with pytest.raises(ValueError, match=msg):
        get_op(op).infer([TensorType(s, d) for s, d in types], attrs)


@pytest.mark.parametrize("size, k, s, pads, ceil, expect", [
    (5, 2, 2, (0, 0), 1, 3), (5, 2, 2, (0, 0), 0, 2),
    (6, 3, 2, (1, 1), 1, 4),  # ceil gives 4 windows; all start inside input + begin pad
    (4, 2, 2, (0, 1), 1, 2),  # a 3rd window would start in the end pad only: dropped
])
def test_pool_output_size_ceil_mode(size, k, s, pads, ceil, expect):
    attrs = {"kernel": (1, k), "strides": (1, s), "pads": (0, pads[0], 0, pads[1]),
             "ceil_mode": ceil, "dilations": (1, 1)}
    (t,) = get_op("MaxPool").infer([TensorType((1, 1, 1, size), "float32")], attrs)
    assert t.shape[3] == expect

"""compiler/unswitch.py: padding guards hoisted out of the tiles they are true for. The fast
path must read plain loads, the border must keep its guards, and every padded op must still
compute what onnxruntime computes (fp32: rtol 1e-4, atol 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.models.harness import import_tilecc, ort_run
from tilecc.expr import Load, Select, Var, cmp
from tilecc.loopir import For, IfThenElse, Store
from tilecc.te import walk
from tilecc.unswitch import _lower_bound, _stmts, unswitch_guards


def _model(nodes, inits, shape):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                      shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _depthwise(c, hw, k=3, pads=(1, 1, 1, 1), strides=(1, 1), dilations=(1, 1), seed=0):
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.standard_normal((c, 1, k, k)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(c).astype(np.float32), "b")
    conv = helper.make_node("Conv", ["x", "w", "b"], ["c"], group=c, kernel_shape=[k, k],
                            pads=list(pads), strides=list(strides), dilations=list(dilations))
    relu = helper.make_node("Relu", ["c"], ["y"])
    return _model([conv, relu], [w, b], [1, c, hw, hw])


def _pool(op, hw, **attrs):
    return _model([helper.make_node(op, ["x"], ["y"], **attrs)], [], [1, 16, hw, hw])


def _stem(hw):
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.standard_normal((16, 3, 3, 3)).astype(np.float32), "w")
    conv = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                            strides=[2, 2])
    return _model([conv], [w], [1, 3, hw, hw])


def _classifier_conv(cout, hw):
    """SqueezeNet's classifier: a 1x1 conv to `cout` classes (1000 = 125 blocks of 8, whose
    only divisor up to 4 is 1: the default takes a partial last block row)."""
    rng = np.random.default_rng(5)
    w = numpy_helper.from_array(rng.standard_normal((cout, 64, 1, 1)).astype(np.float32) * 0.1,
                                "w")
    b = numpy_helper.from_array(rng.standard_normal(cout).astype(np.float32), "b")
    conv = helper.make_node("Conv", ["x", "w", "b"], ["c"])
    return _model([conv, helper.make_node("Relu", ["c"], ["y"])], [w, b], [1, 64, hw, hw])


CASES = {
    "dw3x3": lambda: _depthwise(32, 20),
    "dw3x3_s2": lambda: _depthwise(24, 23, strides=(2, 2)),
    "dw5x5_dil2_asym": lambda: _depthwise(16, 23, k=5, pads=(1, 3, 4, 2), dilations=(2, 2)),
    "dw3x3_tiny": lambda: _depthwise(40, 3),
    "maxpool_pad": lambda: _pool("MaxPool", 19, kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                 strides=[2, 2]),
    "avgpool_exclude_pad": lambda: _pool("AveragePool", 17, kernel_shape=[3, 3],
                                         pads=[1, 1, 1, 1], count_include_pad=0),
    "stem": lambda: _stem(30),
    "classifier_1000": lambda: _classifier_conv(1000, 13),
    "classifier_56": lambda: _classifier_conv(56, 5),
}


def _avx2_conv_kernel(model):
    """(loop IR, KernelInfo) of the model's NCHWc conv kernel for the AVX2 preset."""
    from tilecc.build import make_kernel, prepare_graph
    from tilecc.passes.fuse import fuse_ops
    from tilecc.targets import get_target

    target = get_target("x86-64-avx2")
    graph, _ = prepare_graph(model, target=target)
    fused = fuse_ops(graph)
    node = next(n for n in fused.nodes if "convnchwc" in n.name.lower())
    return make_kernel(node, fused, target, "k")


def test_prime_block_count_takes_a_partial_block_row():
    _, info = _avx2_conv_kernel(_classifier_conv(1000, 13))
    assert info.resolved["oc_tiles"] > 1 and 125 % info.resolved["oc_tiles"], info.resolved


@pytest.mark.parametrize("case", sorted(CASES))
def test_padded_ops_match_onnxruntime(tmp_path, case):
    tilecc = import_tilecc()
    model = CASES[case]()
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
    tilecc.compile(model, default_logs=False).save(str(tmp_path / "m.tar"))
    got = tilecc.load(str(tmp_path / "m.tar")).run({"x": x})["y"]
    np.testing.assert_allclose(got, ort_run(model, {"x": x})["y"], rtol=1e-4, atol=1e-5)


def _guarded(s) -> int:
    """Guarded loads (select(cond, load, other)) in a statement."""
    return sum(isinstance(e, Select) and isinstance(e.a, Load)
               for x in _stmts(s) if isinstance(x, Store) for e in walk(x.value))


def _ifs(s) -> list[IfThenElse]:
    return [x for x in _stmts(s) if isinstance(x, IfThenElse)]


def test_depthwise_interior_reads_without_guards():
    pf, _ = _avx2_conv_kernel(_depthwise(32, 56))
    before = _guarded(pf.body)
    assert before > 0
    body = unswitch_guards(pf.body)
    hoisted = [s for s in _ifs(body) if s.other is not None]
    assert hoisted, "no guard was hoisted"
    # Rows, then column tiles: the path through both fast branches reads no guarded load,
    # the border paths keep theirs.
    fast = hoisted[0].then
    while _ifs(fast) and _guarded(fast):
        fast = next(s for s in _ifs(fast) if s.other is not None).then
    assert _guarded(fast) == 0
    assert _guarded(hoisted[0].other) > 0


def test_bound_quantifies_over_inner_loops_only():
    po, pi, rx = Var("po"), Var("pi"), Var("rx")
    atom = cmp("ge", po * 7 + pi + rx - 1, 0)
    lo, k = _lower_bound(atom, {pi: (0, 6), rx: (0, 2)}, {po: (0, 7)})
    assert k == 0
    assert [int(po_v * 7 - 1 >= 0) for po_v in range(8)] == \
        [int(_eval(lo, {po: v}) >= k) for v in range(8)]
    upper = cmp("lt", po * 7 + pi + rx - 1, 56)
    lo, k = _lower_bound(upper, {pi: (0, 6), rx: (0, 2)}, {po: (0, 7)})
    assert [_eval(lo, {po: v}) >= k for v in range(8)] == [v * 7 + 7 < 56 for v in range(8)]
    # Not affine in an inner variable: not hoistable.
    assert _lower_bound(cmp("ge", (pi * pi) - 1, 0), {pi: (0, 6)}, {}) is None


def _eval(e, env):
    from tilecc.expr import Bin, Const

    if isinstance(e, Const):
        return e.value
    if isinstance(e, Var):
        return env[e]
    assert isinstance(e, Bin), e
    a, b = _eval(e.a, env), _eval(e.b, env)
    return {"add": a + b, "sub": a - b, "mul": a * b}[e.op]


def test_loops_without_guards_are_unchanged():
    i = Var("i")
    from tilecc.loopir import Buffer

    buf = Buffer("b", (8,), "float32")
    s = For(i, 8, "serial", Store(buf, i, Load(buf, i)))
    assert unswitch_guards(s).body is s.body


def test_split_tail_guard_leaves_the_full_tiles():
    """A pixel split of 50 by 6: `if p*6 + i < 50` guards every store; the full tiles
    (p < 8) take a copy without it, the last tile keeps it."""
    from tilecc.loopir import Buffer

    p, i = Var("p"), Var("i")
    buf = Buffer("b", (54,), "float32")
    guarded = IfThenElse(cmp("lt", p * 6 + i, 50), Store(buf, p * 6 + i, Load(buf, p * 6 + i)))
    s = unswitch_guards(For(p, 9, "serial", For(i, 6, "unroll", guarded)))
    top = s.body
    assert isinstance(top, IfThenElse) and top.other is not None
    assert [_eval(top.cond.a, {p: v}) >= top.cond.b.value for v in range(9)] == \
        [v < 8 for v in range(9)]
    assert not _ifs(top.then)
    assert _ifs(top.other)

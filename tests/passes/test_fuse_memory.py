"""Fusion groups and the static memory plan."""

from __future__ import annotations

import numpy as np

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

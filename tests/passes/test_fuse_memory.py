"""Fusion groups and the static memory plan."""

from __future__ import annotations

import numpy as np

from tests.models.builders import resnet_block_model
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

"""Every config in the blocked convolution templates' knob spaces computes what the default
config computes (the tuner would reject a wrong one at run time, but a knob that is wrong
everywhere would only show up as a space the tuner never uses)."""

from __future__ import annotations

from tilecc.autotune.measure import Builder, LocalRunner, MeasureOptions
from tilecc.autotune.task import extract_tasks

from .conftest import TARGET


def _blocked_model():
    """1x1 and 3x3 convs on a small image (reduction-split knobs), a strided depthwise conv
    and a residual add, all in the blocked layout on AVX-512."""
    from tests.models.builders import GraphBuilder

    g = GraphBuilder("spaces", 0)
    x = g.conv_bn(g.input((1, 32, 7, 7)), 64, 1, 1, act="relu")
    y = g.conv_bn(x, 64, 3, 1, pads=(1, 1, 1, 1), act=None)
    y = g.add(x, y)
    y = g.conv_bn(y, 64, 3, 2, group=64, pads=(1, 1, 1, 1), act="relu")
    return g.build(g.conv_bn(y, 32, 1, 1, act=None))


def test_every_config_matches_the_default(tmp_path, target):
    tasks = extract_tasks(_blocked_model(), target)
    assert tasks and all(t.template.startswith("convnchwc") for t in tasks)
    assert any("ic_split" in t.space.knobs for t in tasks)
    opts = MeasureOptions(parallel=2, repeat=1, min_repeat_ms=0, flush_bytes=0, timeout=30)
    builder, runner = Builder(target, opts), LocalRunner(target, opts)
    try:
        for k, task in enumerate(tasks):
            ref = str(tmp_path / f"ref{k}.npz")
            runner.new_task()
            (d,) = runner.run(builder.build(task, [{}], str(tmp_path)), 0, ref, "save")
            assert d.ok, d.msg
            cfgs = list(task.space)
            res = runner.run(builder.build(task, cfgs, str(tmp_path)), 0, ref)
            bad = [(c, r.error.value, r.msg) for c, r in zip(cfgs, res) if not r.ok]
            assert not bad, f"{task.name} ({TARGET}): {bad[:3]}"
    finally:
        builder.close()
        runner.close()

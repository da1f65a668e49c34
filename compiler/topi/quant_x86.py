"""QConv schedules for x86 CPUs without VNNI (family "x86" overrides the generic one).

The VNNI-packed QConv (4 input channels per int32 word, dot4_u8s7 there) takes output channels
as vector lanes in the generic template. Its NCHW output then goes out one channel plane per
lane: a 1x1 expansion (8 -> 48 channels, 48x48) of MobileNet took 86 us where fp32 (blocked
output) took 29. For 1x1, stride 1, unpadded layers the packed input words run along output
pixels, so pixel vectors with a broadcast weight word (the float pointwise template) load and
store contiguously: that layer runs in 27 us."""

from __future__ import annotations

from .generic import vector_factor
from .nn import (
    _conv_knobs,
    _divisors,
    _materialize_pads,
    _schedule_conv_pointwise,
    schedule_conv2d,
)
from .registry import register_schedule


def _pointwise_dot4(stage, target) -> bool:
    """A 1x1, stride 1, unpadded QConv on packed dot4 words without VNNI: its input words lie
    along output pixels, so pixels can be the vector lanes (contiguous NCHW loads and stores)
    with the weight word broadcast, as the float pointwise template does."""
    from tilecc.codegen.dot_intrinsics import target_has_vnni

    op = stage.anchor_op
    if op.name != "qconv2d_vnni" or target_has_vnni(target):
        return False
    red = stage.reduce_axes
    if len(red) != 3 or (red[1].extent, red[2].extent) != (1, 1):
        return False
    xq = next(t for t in op.inputs if t.op.name == "xpack4")
    oh, ow = stage.axes[2].extent, stage.axes[3].extent
    # Whole vectors of pixels only: a 5-lane dot4 has no pmaddubsw form.
    lanes = target.lanes(4)
    return tuple(xq.shape[2:]) == (oh, ow) and vector_factor(oh * ow, lanes) == lanes


def _qconv_knobs(stage, target):
    if _pointwise_dot4(stage, target):
        oc = stage.axes[1]
        return {"oc_block": _divisors(oc.extent, 12), "p_tiles": [1, 2, 3, 4]}
    return _conv_knobs(stage, target)


@register_schedule("QConv", "x86", knobs=_qconv_knobs, version=1)
def schedule_qconv_x86(sch, stage, target, cfg=None):
    if not _pointwise_dot4(stage, target):
        return schedule_conv2d(sch, stage, target, cfg)
    _materialize_pads(sch, target)
    _schedule_conv_pointwise(stage, target, cfg)
    return None

"""QAveragePool (compiler/ops/quant_pool.py): int32 window sums of uint8 data, then the mean
dequantized in float32, scheduled like the float pools on CPUs and GPUs."""

from __future__ import annotations

from .. import te
from ..expr import cast, const
from .generic import schedule_reduction
from .gpu import schedule_reduction as schedule_reduction_gpu
from .nn import _materialize_pads
from .registry import register_compute, register_schedule


@register_compute("QAveragePool")
def qavgpool2d(inputs, attrs, out_types):
    (q,) = inputs
    (kh, kw), (sh, sw) = attrs["kernel"], attrs["strides"]
    ry, rx = te.reduce_axis(kh, "ry"), te.reduce_axis(kw, "rx")
    inv, zp = 1.0 / (kh * kw), float(attrs["x_zp"])

    def f(n, c, h, w):
        acc = te.sum(cast("int32", q[n, c, h * sh + ry, w * sw + rx]), axis=[ry, rx])
        return (cast("float32", acc) * const(inv, "float32") - const(zp, "float32")) \
            * const(float(attrs["x_scale"]), "float32")

    return [te.compute(out_types[0].shape, f, name="qavgpool", tag="pool")]


@register_schedule("QAveragePool")
def _schedule(sch, stage, target, cfg=None):
    _materialize_pads(sch, target)
    schedule_reduction(stage, target, cfg)


register_schedule("QAveragePool", "opencl")(
    lambda sch, stage, target, cfg=None: schedule_reduction_gpu(stage, target, cfg))

"""GPU schedules (family "opencl") for the integer kernels QConv and QGemm (compiler/topi/
quant.py computes them). An (oc x ow) or (m x n) tile of int32 accumulators per work-item,
unrolled in registers; when the reduction multiplies 8-bit values, its innermost four
elements become one `vectorize` loop of extent 4 over the reduction, which the OpenCL emitter
turns into a 4-way dot product (codegen/opencl_dot.py: cl_khr_integer_dot_product, arm_dot,
or char4 -> int4 arithmetic, by the preset's extensions).

Knobs: oc_block / m_block, ow_block / n_block (accumulators per work-item), local.
"""

from __future__ import annotations

from ..expr import Bin, Cast, Expr
from .gpu import LOCAL_CHOICES, _block, _reset, bind_flat
from .registry import register_schedule

BYTE_TYPES = ("uint8", "int8")
DOT = 4  # reduction elements per dot product (four bytes in one 32-bit word)


def int8_product(e: Expr) -> tuple[Expr, Expr] | None:
    """(a, b) when `e` is int32(a) * int32(b) with a and b 8-bit: a dot product's term."""
    if not (isinstance(e, Bin) and e.op == "mul" and e.dtype == "int32"):
        return None
    a, b = e.a, e.b
    if isinstance(a, Cast) and isinstance(b, Cast) and a.x.dtype in BYTE_TYPES \
            and b.x.dtype in BYTE_TYPES:
        return a.x, b.x
    return None


def _tile(stage, target, cfg, blocks: dict, dot_axis) -> None:
    """Split each axis in `blocks` into (groups, block) and keep the blocks as an unrolled
    accumulator tile inside the reduction; the other axes and the groups go to the launch
    grid. `dot_axis` (a reduction axis) gets an innermost 4-lane dot loop when the stage sums
    8-bit products and 4 divides it; otherwise the tile keeps plain int32 multiply-adds."""
    outer, tile = [], []
    for ax in stage.axes:
        if ax in blocks:
            o, i = stage.split(ax, blocks[ax])
            outer.append(o)
            tile.append(i)
        else:
            outer.append(ax)
    raxes, lanes = stage.reduce_axes, []
    red = stage.reduce
    if red.combiner == "sum" and int8_product(red.source) is not None \
            and dot_axis.extent % DOT == 0:
        ro, ri = stage.split(dot_axis, DOT)
        raxes = [ro if r is dot_axis else r for r in raxes]
        lanes = [ri]
        stage.vectorize(ri)
    stage.reorder(*outer, *raxes, *tile, *lanes)
    for iv in tile:
        stage.unroll(iv)
    bind_flat(stage, outer, target, cfg)


def _blocked(stage, target, cfg, knobs, dot_axis) -> None:
    """`knobs`: (name, axis, default block) per tiled axis; a config's value wins."""
    _reset(stage)
    cfg = dict(cfg or {})
    blocks = {ax: int(cfg.get(name) or default) for name, ax, default in knobs}
    _tile(stage, target, cfg, blocks, dot_axis)
    stage.resolved_config = {name: blocks[ax] for name, ax, _ in knobs}


def _choices(extent: int) -> list[int]:
    return [d for d in (1, 2, 4, 8) if extent % d == 0]


def _qconv_knobs(stage, target):
    _, oc, _, ow = stage.axes
    return {"oc_block": _choices(oc.extent), "ow_block": _choices(ow.extent),
            "local": LOCAL_CHOICES}


@register_schedule("QConv", "opencl", knobs=_qconv_knobs)
def schedule_qconv(sch, stage, target, cfg=None):
    """Direct integer convolution; padding stays inlined as guarded loads of the zero point.
    A depthwise conv (one input channel per output) tiles output columns only."""
    _, oc, _, ow = stage.axes
    rc = stage.reduce_axes[0]
    depthwise = rc.extent == 1 and oc.extent > 1
    _blocked(stage, target, cfg, (("oc_block", oc, 1 if depthwise else _block(oc.extent, 4)),
                                  ("ow_block", ow, _block(ow.extent, 4))), rc)


def _qgemm_knobs(stage, target):
    m, n = stage.axes
    return {"m_block": _choices(m.extent), "n_block": _choices(n.extent),
            "local": LOCAL_CHOICES}


@register_schedule("QGemm", "opencl", knobs=_qgemm_knobs)
def schedule_qgemm(sch, stage, target, cfg=None):
    m, n = stage.axes
    _blocked(stage, target, cfg, (("m_block", m, _block(m.extent, 2)),
                                  ("n_block", n, _block(n.extent, 4))), stage.reduce_axes[0])

"""GPU schedule templates (family "opencl"): every root stage's spatial loops are fused and
split over work-groups x work-items (`bind`), reductions run serially inside a work-item, and
a small output tile per work-item stays in private registers (the reduction lowering's
accumulator tile) with its innermost axis vectorised into floatN loads/stores.

Knobs (all have target-derived defaults, so no tuning log is needed):
  local    work-items per work-group (clamped to the device's max_work_group_size)
  *_block  output rows/channels per work-item (unrolled)
  *_vec    vector width on the innermost output axis
"""

from __future__ import annotations

from ..schedule import THREAD_TAGS, Stage
from .generic import tile_conv_oc_ow
from .gpu_tile import tile_plan
from .registry import register_schedule

LOCAL_CHOICES = [32, 64, 128, 256]


def is_bound(stage: Stage) -> bool:
    return any(v in THREAD_TAGS for v in stage.annot.values())


def _local(target, cfg, work: int) -> int:
    want = int((cfg or {}).get("local") or getattr(target, "default_local_size", 64))
    limit = getattr(target, "max_work_group_size", 256)
    return max(1, min(want, limit, work))


def _vec(extent: int, target, cfg_val=None) -> int:
    """Vector width on an axis: the configured one, else the device's preferred width when it
    divides the extent (a ragged last vector would fall back to scalar code), else 1."""
    if cfg_val:
        return int(cfg_val)
    lanes = target.lanes(4)
    for v in (lanes, 4, 2):
        if v <= lanes and extent % v == 0 and extent >= v:
            return v
    return 1


def _block(extent: int, cap: int) -> int:
    for f in range(min(cap, extent), 0, -1):
        if extent % f == 0:
            return f
    return 1


def bind_flat(stage: Stage, ivs: list, target, cfg=None) -> None:
    """Fuse adjacent leaf loops `ivs` (outermost first) and spread them over the grid."""
    if not ivs:
        return
    cur = ivs[0]
    for iv in ivs[1:]:
        cur = stage.fuse(cur, iv)
    bo, ti = stage.split(cur, _local(target, cfg, cur.extent))
    stage.bind(bo, "blockIdx.x")
    stage.bind(ti, "threadIdx.x")


def _reset(stage: Stage) -> None:
    stage.leaf = stage.axes + stage.reduce_axes
    stage.relations = []
    stage.annot = {}


def schedule_injective(stage: Stage, target, cfg=None) -> None:
    _reset(stage)
    axes = stage.axes
    if not axes:
        return
    v = _vec(axes[-1].extent, target)
    outer = axes
    if v > 1:
        lo, li = stage.split(axes[-1], v)
        stage.vectorize(li)
        outer = axes[:-1] + [lo]
    bind_flat(stage, outer, target, cfg)


def schedule_reduction(stage: Stage, target, cfg=None) -> None:
    """One output (or a vector of outputs along the last axis) per work-item."""
    _reset(stage)
    axes, raxes = stage.axes, stage.reduce_axes
    outer = list(axes)
    v = _vec(axes[-1].extent, target) if axes else 1
    if v > 1 and axes[-1].extent >= 4 * v:
        lo, li = stage.split(axes[-1], v)
        stage.reorder(*(axes[:-1] + [lo] + raxes + [li]))
        stage.vectorize(li)
        outer = axes[:-1] + [lo]
    bind_flat(stage, outer, target, cfg)


def schedule_default(stage: Stage, target, cfg=None) -> None:
    if stage.reduce is None:
        schedule_injective(stage, target, cfg)
    else:
        schedule_reduction(stage, target, cfg)


def _conv_knobs(stage, target):
    _, oc, _, ow = stage.axes
    return {"oc_block": [d for d in (1, 2, 4, 8) if oc.extent % d == 0],
            "ow_vec": [d for d in (1, 2, 4) if ow.extent % d == 0], "local": LOCAL_CHOICES}


@register_schedule("Conv", "opencl", knobs=_conv_knobs)
def schedule_conv2d(sch, stage, target, cfg=None):
    """Direct convolution, one (oc_block x ow_vec) output tile per work-item in registers;
    padding stays inlined as guarded loads (no scratch copy on the GPU)."""
    _reset(stage)
    cfg = dict(cfg or {})
    _, oc, _, ow = stage.axes
    depthwise = stage.reduce_axes[0].extent == 1 and oc.extent > 1
    oc_block = int(cfg.get("oc_block") or (1 if depthwise else _block(oc.extent, 4)))
    ow_vec = _vec(ow.extent, target, cfg.get("ow_vec"))
    bind_flat(stage, tile_conv_oc_ow(stage, oc_block, ow_vec), target, cfg)
    stage.local_tile = tile_plan(stage, target)  # pointwise convs: local-memory tiles


def _matmul_knobs(stage, target):
    m, n = stage.axes[-2], stage.axes[-1]
    return {"m_block": [d for d in (1, 2, 4, 8) if m.extent % d == 0],
            "n_vec": [d for d in (1, 2, 4) if n.extent % d == 0], "local": LOCAL_CHOICES}


def schedule_matmul(sch, stage, target, cfg=None):
    """GEMM: an (m_block x n_vec) register tile per work-item, k serial inside."""
    if len(stage.axes) < 2:
        return schedule_reduction(stage, target, cfg)
    _reset(stage)
    cfg = dict(cfg or {})
    axes = stage.axes
    m, n = axes[-2], axes[-1]
    m_block = int(cfg.get("m_block") or _block(m.extent, 4))
    n_vec = _vec(n.extent, target, cfg.get("n_vec"))
    mo, mi = stage.split(m, m_block)
    no, ni = stage.split(n, n_vec)
    stage.reorder(*axes[:-2], mo, no, *stage.reduce_axes, mi, ni)
    stage.unroll(mi)
    if n_vec > 1:
        stage.vectorize(ni)
    bind_flat(stage, axes[:-2] + [mo, no], target, cfg)
    stage.local_tile = tile_plan(stage, target)


register_schedule("Gemm", "opencl", knobs=_matmul_knobs)(schedule_matmul)
register_schedule("MatMul", "opencl", knobs=lambda st, t: _matmul_knobs(st, t)
                  if len(st.axes) >= 2 else {})(schedule_matmul)


def _schedule_all(sch, stage, target, cfg=None):
    """Ops whose TE has several root stages (softmax: max, sum, normalise): each stage is its
    own kernel launch on the GPU, scheduled by its kind."""
    for st in sch.root_stages():
        schedule_default(st, target, cfg)


for _op in ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LRN",
            "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd"):
    register_schedule(_op, "opencl")(lambda sch, stage, target, cfg=None:
                                     schedule_reduction(stage, target, cfg))
for _op in ("Softmax", "LogSoftmax"):
    register_schedule(_op, "opencl")(_schedule_all)

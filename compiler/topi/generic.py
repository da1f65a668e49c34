"""Default schedules any stage can take: injective loops and plain reductions.

Both pick a vector width that divides the innermost extent (a partial vector would send a
whole tile down the scalar path) and parallelise the outermost loops when there is enough work
to pay for waking the thread pool.
"""

from __future__ import annotations

import math

from ..schedule import Stage

MIN_PARALLEL_WORK = 1 << 14  # elements per kernel below which threads cost more than they give


def vector_factor(extent: int, lanes: int) -> int:
    """Largest divisor of `extent` that is <= lanes (at least a quarter of it when possible):
    exact tiles keep guards out of inner loops."""
    if extent % lanes == 0:
        return lanes
    best = 1
    for f in range(min(lanes, extent), 0, -1):
        if extent % f == 0:
            best = f
            break
    if best * 4 < min(lanes, extent) and extent > lanes:
        return lanes  # few divisors: accept a guarded tail rather than tiny vectors
    return best


def _fuse_all(stage: Stage, ivs):
    cur = ivs[0]
    for iv in ivs[1:]:
        cur = stage.fuse(cur, iv)
    return cur


def tile_conv_oc_ow(stage: Stage, oc_block: int, ow_vec: int) -> list:
    """The register tile of a direct NCHW convolution, CPU or GPU: `oc_block` output channels
    unrolled by `ow_vec` output columns vectorised, inside the whole reduction (channels and
    kernel window). Returns the loops left outside the tile: n, oc outer, oh, ow outer."""
    n, oc, oh, ow = stage.axes
    rc, ry, rx = stage.reduce_axes
    oco, oci = stage.split(oc, oc_block)
    owo, owi = stage.split(ow, ow_vec)
    stage.reorder(n, oco, oh, owo, rc, ry, rx, oci, owi)
    stage.unroll(oci)
    if ow_vec > 1:
        stage.vectorize(owi)
    return [n, oco, oh, owo]


def schedule_injective(stage: Stage, target, cfg=None) -> None:
    """Rows of vectors: the last axis in vectors (a masked tail vector when it has no wide
    divisor: injective stages carry no reduction, so the tail guard costs once per row), the
    axes above it fused and parallel. The row loop stays its own loop, so per-element index
    arithmetic is a base plus the lane."""
    axes = list(stage.axes)
    if not axes:
        return
    lanes = target.float_lanes()
    work = 1
    for a in axes:
        work *= a.extent
    last = axes[-1]
    vf = vector_factor(last.extent, lanes)
    if vf * 2 < min(lanes, last.extent):
        vf = min(lanes, last.extent)
    rows = axes[:-1]
    if vf > 1:
        lo, li = stage.split(last, vf)
        stage.vectorize(li)
        if not rows:
            rows = [lo]
    if work >= MIN_PARALLEL_WORK and target.cores > 1 and rows:
        # The innermost row axis stays a serial loop when the axes above it give the threads
        # enough chunks: fused into the parallel loop, every vector would decompose the fused
        # index by division to address a broadcast operand (x * s[c] in NCHWc).
        if len(rows) > 1 and math.prod(a.extent for a in rows[:-1]) >= 8 * target.cores:
            rows = rows[:-1]
        fused = _fuse_all(stage, rows) if len(rows) > 1 else rows[0]
        stage.parallel(fused)


def schedule_reduction(stage: Stage, target, cfg=None) -> None:
    """Spatial loops outside, reduction inside; the last spatial axis vectorised innermost."""
    axes, raxes = stage.axes, stage.reduce_axes
    lanes = target.float_lanes()
    work = 1
    for a in axes:
        work *= a.extent
    for r in raxes:
        work *= r.extent
    outer = list(axes)
    if axes and axes[-1].extent > 1:
        vf = vector_factor(axes[-1].extent, lanes)
        if vf > 1:
            lo, li = stage.split(axes[-1], vf)
            stage.reorder(*(axes[:-1] + [lo] + raxes + [li]))
            stage.vectorize(li)
            outer = axes[:-1] + [lo]
    if outer and work >= MIN_PARALLEL_WORK and target.cores > 1:
        fused = _fuse_all(stage, outer) if len(outer) > 1 else outer[0]
        stage.parallel(fused)


def schedule_default(stage: Stage, target, cfg=None) -> None:
    if stage.reduce is None:
        schedule_injective(stage, target, cfg)
    else:
        schedule_reduction(stage, target, cfg)

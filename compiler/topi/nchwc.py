"""Blocked-layout (NCHW{b}c) convolution and layout transforms for CPU targets, and the
schedule of windowed blocked pools (their compute, for both layouts, is in nn.py).

With b channels as the innermost, contiguous dimension every vector is b channels of one
pixel: convolutions broadcast one input value against a vector of b output-channel weights
(dense) or multiply b channels elementwise (depthwise), and every load and store is a whole
contiguous vector, whatever the image width.
"""

from __future__ import annotations

import math

from tilecc.codegen.half_policy import HALF_ACC_MAX
from tilecc.codegen.llvm import masked_loads_ok

from .. import te
from .generic import MIN_PARALLEL_WORK, _fuse_all
from .nn import (
    _default_acc,
    _divisors,
    _largest_divisor,
    _materialize_pads,
    _packed_tiles_ow,
    pad_nchw,
)
from .registry import register_compute, register_schedule


@register_compute("LayoutTransform")
def layout_transform(inputs, attrs, out_types):
    (x,) = inputs
    src, dst = attrs["src_block"], attrs["dst_block"]
    shape = out_types[0].shape

    def read(n, c, h, w):  # x at NCHW coordinates
        return x[n, c // src, h, w, c % src] if src else x[n, c, h, w]

    if dst:
        f = lambda n, co, h, w, ci: read(n, co * dst + ci, h, w)
    else:
        f = read
    return [te.compute(shape, f, name="layout", tag="injective")]


@register_compute("ConvNCHWc")
def conv_nchwc(inputs, attrs, out_types):
    """Blocked convolution (weights packed by passes/blocked_layout.py; ops/nchwc.py says how).
    The input is blocked by in_block (or plain NCHW when 0), the output by out_block."""
    x, w = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    ib, ob = attrs["in_block"], attrs["out_block"]
    sh, sw = attrs["strides"]
    dh, dw = attrs["dilations"]
    shape = out_types[0].shape
    xp = pad_nchw(x, attrs["pads"], 0.0)

    def plus_bias(acc, ko, ki):
        return acc + bias[ko * ob + ki] if bias is not None else acc

    if attrs["depthwise"]:
        _, KH, KW, _ = w.shape
        ry, rx = te.reduce_axis(KH, "ry"), te.reduce_axis(KW, "rx")

        def f(n, c, oh, ow, ci):
            acc = te.sum(xp[n, c, oh * sh + ry * dh, ow * sw + rx * dw, ci] * w[c, ry, rx, ci],
                         axis=[ry, rx])
            return plus_bias(acc, c, ci)
    elif ib:
        _, ICB, KH, KW, _, _ = w.shape
        rco, ry, rx = te.reduce_axis(ICB, "rco"), te.reduce_axis(KH, "ry"), \
            te.reduce_axis(KW, "rx")
        rci = te.reduce_axis(ib, "rci")

        def f(n, ko, oh, ow, ki):
            acc = te.sum(xp[n, rco, oh * sh + ry * dh, ow * sw + rx * dw, rci]
                         * w[ko, rco, ry, rx, rci, ki], axis=[rco, ry, rx, rci])
            return plus_bias(acc, ko, ki)
    else:
        _, IC, KH, KW, _ = w.shape
        rc, ry, rx = te.reduce_axis(IC, "rc"), te.reduce_axis(KH, "ry"), te.reduce_axis(KW, "rx")

        def f(n, ko, oh, ow, ki):
            acc = te.sum(xp[n, rc, oh * sh + ry * dh, ow * sw + rx * dw] * w[ko, rc, ry, rx, ki],
                         axis=[rc, ry, rx])
            return plus_bias(acc, ko, ki)

    return [te.compute(shape, f, name="conv2d_nchwc", tag="conv2d_nchwc",
                       attrs={"depthwise": attrs["depthwise"], "in_block": ib})]


def _regs(target) -> int:
    """Vector registers an accumulator tile may take (the rest hold weights and inputs)."""
    wide_file = target.vector_bits >= 512 or target.triple.startswith(("aarch64", "riscv"))
    return 28 if wide_file else 14  # 32 architectural vector registers, else 16


def _acc_regs(stage, target) -> int:
    """_regs for a dense conv's accumulators. fp16 on native-half targets has 8-lane blocks,
    and a reduction longer than HALF_ACC_MAX keeps float32 accumulators (codegen/
    half_policy.py): two registers per block, so half as many blocks fit (with all 28
    planned, ResNet-18 fp16 executed 1.4x its fp32 build's instructions on cortex-a76)."""
    terms = math.prod(r.extent for r in stage.reduce_axes)
    if target.float_bytes == 2 and terms > HALF_ACC_MAX:
        return _regs(target) // 2
    return _regs(target)


def _conv_nchwc_knobs(stage, target):
    _, ko, oh, ow, _ = stage.axes
    regs = _regs(target) if stage.anchor_op.attrs["depthwise"] else _acc_regs(stage, target)
    if stage.anchor_op.attrs["depthwise"]:
        return {"tile": _divisors(ow.extent, regs), "rows": _divisors(oh.extent, 4)}
    by_ow = _packed_tiles_ow(ow.extent, 2, regs)
    knobs = {"oc_tiles": _pixel_tiles(ko.extent, 4),
             "tile": _pixel_tiles(ow.extent if by_ow else oh.extent * ow.extent, regs),
             "order": ["oc", "pix"]}
    # Splitting the reduction keeps the whole image's accumulators in a local array: small
    # images only (at most 64 KiB with the most output-channel blocks).
    b = stage.axes[-1].extent
    if stage.anchor_op.attrs.get("in_block") and oh.extent * ow.extent * b * 4 * 4 <= 65536:
        knobs["ic_split"] = _divisors(stage.reduce_axes[0].extent, 8)
    return knobs


def _pixel_tiles(pix: int, cap: int) -> list[int]:
    """Pixel tiles up to `cap`: the divisors of the pixel count, and tiles whose last, partial
    tile wastes at most an eighth of the work (its stores are guarded). Without them a 7x7
    image offers tiles of 1 or 7 only, too few accumulators on a 16-register file."""
    return [t for t in range(1, min(cap, pix) + 1) if (-pix % t) * 8 <= pix]


@register_schedule("ConvNCHWc", knobs=_conv_nchwc_knobs, version=1)
def schedule_conv_nchwc(sch, stage, target, cfg=None):
    # Dense convolutions reuse each input value many times: copy the padded input once.
    # Depthwise ones read each about KH*KW times: guarded loads in place (one splatted-mask
    # vector load per tap) cost less than a padded copy, except where masked vector loads are
    # off (RISC-V, see codegen.llvm.masked_ok).
    if not stage.anchor_op.attrs["depthwise"] or not masked_loads_ok(target):
        _materialize_pads(sch, target)
    if stage.anchor_op.attrs["depthwise"]:
        stage.resolved_config = _schedule_depthwise(stage, target, dict(cfg or {}))
    else:
        stage.resolved_config = _schedule_dense(stage, target, dict(cfg or {}))


def _schedule_dense(stage, target, cfg):
    """(oc_tiles x tile) accumulator vectors over output channels x output pixels; per
    reduction step oc_tiles weight vectors are loaded and `tile` input values broadcast.
    The tile runs along output width, or along fused pixels when the width has no useful
    divisor. Knobs: oc_tiles, tile, order (output-channel blocks or pixel tiles outermost),
    ic_split (small images only). Returns the knob values taken (the resolved config)."""
    n, ko, oh, ow, ki = stage.axes
    raxes = stage.reduce_axes
    regs = _acc_regs(stage, target)
    by_ow = _packed_tiles_ow(ow.extent, 2, regs)
    pix = ow.extent if by_ow else oh.extent * ow.extent

    acc = _default_acc(regs)

    def padded(t):
        return pix + -pix % t

    def tile_for(ot, partial):
        if cfg.get("tile"):
            return cfg["tile"]
        if not partial:
            return _largest_divisor(pix, max(1, acc // ot), acc)
        return max(_pixel_tiles(pix, max(1, acc // ot)),
                   key=lambda t: (t * pix / padded(t), -padded(t)))

    def useful(ot, partial):
        t = tile_for(ot, partial)
        return min(ot * t, acc) * pix / padded(t) * ko.extent / (ko.extent + -ko.extent % ot)

    # Most accumulators that fit, with the weights one block row streams (oc_tiles blocks of
    # the whole reduction, re-read for every output row) kept within the L2; among
    # equals, a pixel tile of at least 8 (long unit-stride runs of broadcasts), then the most
    # balanced tile (per reduction step it costs oc_tiles + tile loads for their product of
    # FMAs).
    wbytes = math.prod(r.extent for r in raxes) * ki.extent * 4
    def fits(partial):
        # A partial last block row (guarded, hoisted by unswitching) only where no divisor
        # but 1 exists: 1000 classes are 125 blocks, and one weight vector per `tile`
        # broadcasts ran SqueezeNet's classifier at 69 GFLOP/s (Zen 2; 92 with 3x4).
        cands = _divisors(ko.extent, 4)
        if partial and cands == [1]:
            cands = _pixel_tiles(ko.extent, 4)
        return [ot for ot in cands if ot == 1 or ot * wbytes <= target.l2_bytes]

    def pick(partial):
        return cfg.get("oc_tiles") or max(fits(partial), key=lambda ot: (
            partial and tile_for(ot, True) >= 4, partial and ot > 1, useful(ot, partial),
            tile_for(ot, partial) >= 8, -(ot + tile_for(ot, partial))))

    partial = False
    oc_tiles = pick(partial)
    if regs <= 16 and (useful(oc_tiles, False) < 0.75 * acc or oc_tiles == 1):
        # No divisor of the pixel count comes near the accumulators (a 7x7 image with 12 of
        # them), or only with one block of output channels (one weight vector per `tile`
        # broadcasts: a 55x55 image's 1x11 ran 20-30% slower than 2x6 on Zen 2): tiles with a
        # partial last tile, the most useful work per pass, of at least 4 pixels and more
        # than one block where possible (Zen 2: four weight streams feeding 3-pixel tiles ran
        # at half the speed of 2x6 and 3x4 tiles). Measured on 16-register files only; on
        # 32-register ones the tile knob offers them to the tuner and the defaults (the
        # shipped logs' {}) stay.
        partial = True
        oc_tiles = pick(partial)
    tile = tile_for(oc_tiles, partial)
    koo, kot = stage.split(ko, oc_tiles)
    if by_ow:
        po, pi = stage.split(ow, tile)
        pixels, par = [oh, po], [oh]  # `par`: the pixel loops the parallel loop may take
    else:
        po, pi = stage.split(stage.fuse(oh, ow), tile)
        pixels = par = [po]
    chunks = cfg.get("ic_split") or 1
    if chunks > 1:
        # The reduction in `chunks` parts outside the whole image: each part's weights
        # (oc_tiles blocks) stay in L1 across all pixel tiles instead of streaming from L2
        # once per tile; the accumulators of the image live in a small local array.
        rco_o, rco_i = stage.split(raxes[0], raxes[0].extent // chunks)
        stage.reorder(n, koo, rco_o, *pixels, rco_i, *raxes[1:], pi, kot, ki)
        outer = [n, koo]
    elif cfg.get("order") == "pix":
        stage.reorder(n, *pixels, koo, *raxes, pi, kot, ki)
        outer = [n, *par]
    else:
        stage.reorder(n, koo, *pixels, *raxes, pi, kot, ki)
        outer = [n, koo, *par]
    stage.unroll(kot)
    stage.unroll(pi)
    stage.vectorize(ki)
    work = math.prod(a.extent for a in stage.axes) * math.prod(r.extent for r in raxes)
    if target.cores > 1 and work >= MIN_PARALLEL_WORK:
        stage.parallel(_fuse_all(stage, outer))
    return {"oc_tiles": oc_tiles, "tile": tile, "order": cfg.get("order") or "oc",
            "ic_split": chunks}


def _schedule_depthwise(stage, target, cfg):
    """A (rows x tile) block of output pixels, b channels each, accumulated over the window:
    per tap one weight vector and rows*tile input vectors feed rows*tile FMAs; with the
    window unrolled, rows that overlap reuse their input loads. Knobs: tile, rows. Returns the
    knob values taken."""
    ow = stage.axes[3]
    rows = cfg.get("rows") or 1
    tile = cfg.get("tile") or _largest_divisor(ow.extent, max(1, _regs(target) // 2 // rows), 8)
    _schedule_window(stage, target, tile, rows)
    return {"tile": tile, "rows": rows}


def _schedule_window(stage, target, tile: int, rows: int = 1):
    """A (rows x tile) block of output pixels, b channels each, per window step; the window's
    columns (and its rows, with rows > 1) unrolled so overlapping windows share input loads;
    threads over (n, channel block, row block)."""
    n, c, oh, ow, ci = stage.axes
    ry, rx = stage.reduce_axes
    oho, ohi = stage.split(oh, rows)
    po, pi = stage.split(ow, tile)
    stage.reorder(n, c, oho, po, ry, rx, ohi, pi, ci)
    if rows > 1:
        stage.unroll(ry)
    if rx.extent <= 16:
        stage.unroll(rx)
    stage.unroll(ohi)
    stage.unroll(pi)
    stage.vectorize(ci)
    work = math.prod(a.extent for a in stage.axes) * ry.extent * rx.extent
    if target.cores > 1 and work >= MIN_PARALLEL_WORK:
        stage.parallel(_fuse_all(stage, [n, c, oho]))


def _schedule_pool_nchwc(sch, stage, target, cfg=None):
    """Windowed pools over a blocked tensor, laid out as depthwise convolutions are, the padding
    read in place through guarded loads (border tiles only, once unswitched) rather than
    copied. The generic reduction schedule padded ResNet's 112x112 stem output into a scratch
    copy and addressed every output vector through divisions of one flat index (0.43 ms on
    Zen 2, ten times what its loads cost; 0.13 ms now)."""
    if not masked_loads_ok(target):
        _materialize_pads(sch, target)
    _schedule_window(stage, target, _largest_divisor(stage.axes[3].extent, 8, 8))


register_schedule("MaxPoolNCHWc")(_schedule_pool_nchwc)
register_schedule("AveragePoolNCHWc")(_schedule_pool_nchwc)

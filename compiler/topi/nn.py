"""Neural-network ops as tensor expressions, with their default CPU schedule templates:
Conv, Gemm, MatMul, BatchNormalization, pooling, LRN, Softmax/LogSoftmax."""

from __future__ import annotations

import math

from .. import te
from ..expr import all_of, call, cast, const, maximum, minimum, select
from .common import broadcast_load, clamp, in_range
from .generic import MIN_PARALLEL_WORK, _fuse_all, tile_conv_oc_ow, vector_factor
from .registry import register_compute, register_schedule


def pad_nchw(x: te.Tensor, pads, value: float, extra=(0, 0), name="pad") -> te.Tensor:
    """Materialisable padded copy of an NCHW tensor (pads = top, left, bottom, right); dims
    after W (a blocked layout's channel block) pass through unpadded."""
    t, lft, b, r = pads
    N, C, H, W = x.shape[:4]
    if not any(pads) and not any(extra):
        return x
    Hp, Wp = H + t + b + extra[0], W + lft + r + extra[1]

    def f(n, c, h, w, *inner):
        hh, ww = h - t, w - lft
        cond = all_of(in_range(hh, 0, H), in_range(ww, 0, W))
        # The load sits directly under the select: codegen guards it (masked/safe address).
        return select(cond, x[(n, c, hh, ww) + inner], const(value, x.dtype))

    return te.compute((N, C, Hp, Wp) + tuple(x.shape[4:]), f, name=name, tag="pad")


def _materialize_pads(sch, target):
    """Padded inputs become their own loop nest (into a scratch buffer), so the reduction's
    inner loop reads plain contiguous vectors instead of guarded, clamped gathers."""
    from .generic import schedule_injective
    pads = [t for t in sch.tensors if t.op.tag == "pad"]
    if not pads:
        return
    for t in pads:
        sch[t].compute_root()
    sch.refresh()
    for t in pads:
        schedule_injective(sch[t], target)


@register_compute("Conv")
def conv2d(inputs, attrs, out_types):
    """NCHW convolution. With attrs["weight_block"] = b the weights come packed as
    (OC/b, IC, KH, KW, b) (passes/layout.py), so b output channels are one contiguous vector."""
    x, w = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    sh, sw = attrs["strides"]
    dh, dw = attrs["dilations"]
    G = attrs["group"]
    ob = attrs.get("weight_block", 0)
    N, OC, OH, OW = out_types[0].shape
    if ob:
        ICg, KH, KW = w.shape[1:4]  # OC may be padded up to a multiple of ob there
    else:
        _, ICg, KH, KW = w.shape
    OCg = OC // G
    xp = pad_nchw(x, attrs["pads"], 0.0)
    rc, ry, rx = te.reduce_axis(ICg, "rc"), te.reduce_axis(KH, "ry"), te.reduce_axis(KW, "rx")

    def f(n, oc, oh, ow):
        c = (oc // OCg) * ICg + rc if G > 1 else rc
        wv = w[oc // ob, rc, ry, rx, oc % ob] if ob else w[oc, rc, ry, rx]
        acc = te.sum(xp[n, c, oh * sh + ry * dh, ow * sw + rx * dw] * wv, axis=[rc, ry, rx])
        return acc + bias[oc] if bias is not None else acc

    pointwise = (KH, KW) == (1, 1) and (sh, sw) == (1, 1) and not any(attrs["pads"]) and G == 1
    return [te.compute((N, OC, OH, OW), f, name="conv2d", tag="conv2d",
                       attrs={"weight_block": ob, "pointwise": pointwise})]


def _divisors(n: int, cap: int) -> list[int]:
    return [d for d in range(1, min(n, cap) + 1) if n % d == 0]


def _conv_variant(stage) -> str:
    """Which conv template body applies: pointwise (1x1, stride 1, unpadded) convolutions are a
    GEMM over flattened pixels; packed weights take output channels as vector lanes; grouped
    and depthwise ones vectorise along output width."""
    a = stage.anchor_op.attrs
    deep = stage.reduce_axes[0].extent >= 128  # long reductions amortise scattered stores
    _, _, oh, ow = stage.axes
    # Pixel vectors need an exact, wide-enough vector (a guarded tail would sit in the
    # reduction); otherwise output channels make better lanes.
    narrow = vector_factor(oh.extent * ow.extent, 16) < 8
    if a.get("pointwise") and not ((deep or narrow) and a.get("weight_block")):
        return "pointwise"
    return "packed" if a.get("weight_block") else "ow_vector"


def _conv_knobs(stage, target):
    _, oc, oh, ow = stage.axes
    lanes = target.float_lanes()
    variant = _conv_variant(stage)
    if variant == "pointwise":
        return {"oc_block": _divisors(oc.extent, 12), "p_tiles": [1, 2, 3, 4]}
    if variant == "packed":
        ob = stage.anchor_op.attrs["weight_block"]
        regs = 28 if target.vector_bits >= 512 else 14
        by_ow = _packed_tiles_ow(ow.extent, 2, regs)
        return {"oc_tiles": _divisors(-(-oc.extent // ob), 4),
                "tile": _divisors(ow.extent if by_ow else oh.extent * ow.extent, regs)}
    vecs = sorted(set(_divisors(ow.extent, 2 * lanes)) | {min(lanes, ow.extent)})
    return {"oc_block": _divisors(oc.extent, 16), "ow_vec": vecs}


@register_schedule("Conv", knobs=_conv_knobs, version=3)
def schedule_conv2d(sch, stage, target, cfg=None):
    variant = _conv_variant(stage)
    if variant != "ow_vector" or target.family == "riscv":
        # Dense convolutions reuse each input element many times: copy the padded input
        # once. Depthwise ones read each about KH*KW times: masked loads in place are cheaper
        # (not on RISC-V: qemu-user 7.2 aborts on the masked RVV loads LLVM emits for them).
        _materialize_pads(sch, target)
    if variant == "pointwise":
        _schedule_conv_pointwise(stage, target, cfg)
    elif variant == "packed":
        _schedule_conv_packed(stage, target, cfg)
    else:
        _schedule_conv_ow_vector(stage, target, cfg)


def _schedule_conv_pointwise(stage, target, cfg):
    """1x1 convolution as GEMM over flattened pixels (contiguous in NCHW): vectors of pixels,
    an (oc_block x p_tiles vectors) accumulator tile, weights broadcast; the pixel tail runs as
    a masked vector. Knobs: oc_block, p_tiles."""
    n, oc, oh, ow = stage.axes
    (rc, ry, rx) = stage.reduce_axes
    lanes = target.float_lanes()
    cfg = dict(cfg or {})
    p = stage.fuse(oh, ow)
    # Exact tiles: a guard inside the reduction would cost a branch per vector FMA.
    vf = vector_factor(p.extent, lanes)
    p_tiles = cfg.get("p_tiles") or _largest_divisor(-(-p.extent // vf), 4, 4)
    budget = 24 if target.vector_bits >= 512 else 12
    oc_block = cfg.get("oc_block") or _largest_divisor(oc.extent, max(1, budget // p_tiles), 8)
    po, pi = stage.split(p, vf)
    poo, pt = stage.split(po, p_tiles)
    oco, oci = stage.split(oc, oc_block)
    stage.reorder(n, oco, poo, rc, ry, rx, oci, pt, pi)
    stage.unroll(oci)
    stage.unroll(pt)
    stage.vectorize(pi)
    work = n.extent * oc.extent * p.extent * rc.extent
    if target.cores > 1 and work >= MIN_PARALLEL_WORK:
        stage.parallel(_fuse_all(stage, [n, oco, poo]))


def _default_acc(regs: int) -> int:
    """Accumulators a default tile plans for, of the `regs` a knob space allows. With all of a
    16-register file (AVX2, ARMv7 NEON) planned, LLVM's scheduler hoists the next reduction
    step's loads and spills accumulators to the stack inside the innermost loop (Zen 3: the
    1x1 convolutions of MobileNetV2 ran at a fifth of peak): there the default leaves two spare."""
    return regs if regs > 16 else regs - 2


def _packed_tiles_ow(ow: int, oc_tiles: int, regs: int) -> bool:
    """Tile along output width when it has a divisor of useful size: pixel addresses are then
    one base plus constants. Otherwise (prime-ish widths) tile fused pixels."""
    return _largest_divisor(ow, max(1, regs // oc_tiles // 2), regs) >= 4


def _schedule_conv_packed(stage, target, cfg):
    """Output channels as vector lanes (packed weights load as one vector) and an
    (oc_tiles x tile) block of accumulators in registers over output pixels; input pixels are
    broadcast scalars. Per reduction step: oc_tiles vector loads + `tile` broadcasts feed
    oc_tiles*tile FMAs. The tile runs along output width, or along fused (oh, ow) pixels when
    the width has no useful divisor (e.g. 13, 111). Knobs: oc_tiles, tile."""
    n, oc, oh, ow = stage.axes
    rc, ry, rx = stage.reduce_axes
    ob = stage.anchor_op.attrs["weight_block"]
    cfg = dict(cfg or {})
    regs = 28 if target.vector_bits >= 512 else 14
    oc_tiles = cfg.get("oc_tiles") or (2 if -(-oc.extent // ob) % 2 == 0 and
                                       oh.extent * ow.extent >= 4 else 1)
    by_ow = _packed_tiles_ow(ow.extent, oc_tiles, regs)
    oco, ocv = stage.split(oc, ob)
    ocoo, oct_ = stage.split(oco, oc_tiles)
    if by_ow:
        tile = cfg.get("tile") or _largest_divisor(ow.extent, max(1, regs // oc_tiles // 2),
                                                   regs)
        po, pi = stage.split(ow, tile)
        stage.reorder(n, ocoo, oh, po, rc, ry, rx, oct_, pi, ocv)
        outer = [n, ocoo, oh]
        if tile >= 4:
            # Store rows along output width (contiguous) rather than scattering channel lanes.
            stage.epilogue(oct_, ocv, pi)
            stage.epilogue_kind(ocv, "unroll")
            stage.epilogue_kind(pi, "vectorize")
    else:
        p = stage.fuse(oh, ow)
        acc = _default_acc(regs)
        tile = cfg.get("tile") or _largest_divisor(p.extent, max(1, acc // oc_tiles), acc)
        po, pi = stage.split(p, tile)
        stage.reorder(n, ocoo, po, rc, ry, rx, oct_, pi, ocv)
        outer = [n, ocoo, po]
    stage.unroll(oct_)
    stage.unroll(pi)
    stage.vectorize(ocv)
    work = n.extent * oc.extent * oh.extent * ow.extent * rc.extent * ry.extent * rx.extent
    if target.cores > 1 and work >= MIN_PARALLEL_WORK:
        stage.parallel(_fuse_all(stage, outer))


def _schedule_conv_ow_vector(stage, target, cfg):
    """Direct convolution vectorised along output width: an (oc block x ow vector) accumulator
    tile held in registers while the reduction runs over input channels and the kernel window.
    Used for depthwise and grouped convolutions.
    Knobs: oc_block (unrolled output channels), ow_vec (vector width on output width)."""
    n, oc, oh, ow = stage.axes
    rc, ry, rx = stage.reduce_axes
    lanes = target.float_lanes()
    cfg = dict(cfg or {})
    ow_vec = cfg.get("ow_vec") or vector_factor(ow.extent, lanes)
    vregs = max(1, math.ceil(ow_vec / lanes))
    budget = 24 if target.vector_bits >= 512 else 12
    oc_block = cfg.get("oc_block") or _largest_divisor(oc.extent, max(1, budget // vregs), 8)
    outer = tile_conv_oc_ow(stage, oc_block, ow_vec)
    work = n.extent * oc.extent * oh.extent * ow.extent * rc.extent * ry.extent * rx.extent
    if target.cores > 1 and work >= MIN_PARALLEL_WORK:
        stage.parallel(_fuse_all(stage, outer[:3]))


def _largest_divisor(n: int, cap: int, prefer: int) -> int:
    for f in range(min(cap, prefer, n), 0, -1):
        if n % f == 0:
            return f
    return 1


@register_compute("Gemm")
def gemm(inputs, attrs, out_types):
    a, b = inputs[0], inputs[1]
    c = inputs[2] if len(inputs) > 2 else None
    ta, tb = attrs.get("transA", 0), attrs.get("transB", 0)
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    M, N = out_types[0].shape
    K = a.shape[0] if ta else a.shape[1]
    k = te.reduce_axis(K, "k")
    nb = attrs.get("b_block", 0)

    def f(i, j):
        av = a[k, i] if ta else a[i, k]
        bv = b[j // nb, k, j % nb] if nb else (b[j, k] if tb else b[k, j])
        acc = te.sum(av * bv, axis=k)
        if alpha != 1.0:
            acc = acc * const(alpha, acc.dtype)
        if c is not None and beta != 0.0:
            cv = broadcast_load(c, (M, N), (i, j))
            acc = acc + (cv * const(beta, cv.dtype) if beta != 1.0 else cv)
        return acc

    return [te.compute((M, N), f, name="gemm", tag="gemm", attrs={"b_block": nb})]


def _schedule_matmul_like(stage, target, cfg):
    """Register-blocked GEMM: (m block x n vectors) accumulators, k inside. With B packed in
    (N/nb, K, nb) panels the k loop streams one contiguous panel while m_block rows of A are
    broadcast. Knobs: m_block, n_vec (unpacked B only)."""
    axes = stage.axes
    (k,) = stage.reduce_axes[-1:]
    m, n = axes[-2], axes[-1]
    batch = axes[:-2]
    lanes = target.float_lanes()
    cfg = dict(cfg or {})
    budget = 24 if target.vector_bits >= 512 else 12
    nb = stage.anchor_op.attrs.get("b_block", 0)
    if nb:
        nt_ext = max(1, nb // lanes)
        m_block = cfg.get("m_block") or _largest_divisor(m.extent, max(1, budget // nt_ext), 8)
        mo, mi = stage.split(m, m_block)
        no, nin = stage.split(n, nb)
        nt, nv = stage.split(nin, min(lanes, nb))
        stage.reorder(*batch, no, mo, k, mi, nt, nv)
        stage.unroll(mi)
        stage.unroll(nt)
        stage.vectorize(nv)
        outer = batch + [no, mo]
    else:
        n_vec = cfg.get("n_vec") or vector_factor(n.extent, lanes)
        vregs = max(1, math.ceil(n_vec / lanes))
        m_block = cfg.get("m_block") or _largest_divisor(m.extent, max(1, budget // vregs), 6)
        mo, mi = stage.split(m, m_block)
        no, ni = stage.split(n, n_vec)
        stage.reorder(*batch, mo, no, k, mi, ni)
        stage.unroll(mi)
        if n_vec > 1:
            stage.vectorize(ni)
        outer = batch + [mo, no]
    work = math.prod(a.extent for a in axes) * k.extent
    if target.cores > 1 and work >= MIN_PARALLEL_WORK:
        stage.parallel(_fuse_all(stage, outer))


def _matmul_knobs(stage, target):
    m, n = stage.axes[-2], stage.axes[-1]
    lanes = target.float_lanes()
    if stage.anchor_op.attrs.get("b_block"):
        return {"m_block": _divisors(m.extent, 16)}
    vecs = sorted(set(_divisors(n.extent, 4 * lanes)) | {min(lanes, n.extent)})
    return {"m_block": _divisors(m.extent, 12), "n_vec": vecs}


register_schedule("Gemm", knobs=_matmul_knobs, version=2)(
    lambda sch, stage, target, cfg=None: _schedule_matmul_like(stage, target, cfg))


@register_compute("MatMul")
def matmul(inputs, attrs, out_types):
    a, b = inputs
    out_shape = out_types[0].shape
    # 1-D operands: numpy promotes them to matrices and drops the added dimension.
    a_vec, b_vec = a.ndim == 1, b.ndim == 1
    K = a.shape[-1]
    full = list(out_shape)
    if a_vec:
        full.insert(len(full) - (0 if b_vec else 1), 1)
    if b_vec:
        full.append(1)
    k = te.reduce_axis(K, "k")
    nb = attrs.get("b_block", 0)  # constant 2-D B packed as (N/nb, K, nb) panels

    def f(*idx):
        idx = list(idx)
        if a_vec:
            idx.insert(len(idx) - (0 if b_vec else 1), const(0))
        if b_vec:
            idx.append(const(0))
        i, j, batch = idx[-2], idx[-1], idx[:-2]
        av = a[k] if a_vec else _batched(a, batch, len(full) - 2)[i, k]
        if nb:
            bv = b[j // nb, k, j % nb]
        else:
            bv = b[k] if b_vec else _batched(b, batch, len(full) - 2)[k, j]
        if a.dtype == "float16":
            # float16 accumulates in float32 (storage-only half precision, as reductions).
            return cast("float16", te.sum(cast("float32", av) * cast("float32", bv), axis=k))
        return te.sum(av * bv, axis=k)

    return [te.compute(out_shape, f, name="matmul", tag="matmul", attrs={"b_block": nb})]


class _batched:
    """Reads t[batch..., i, j] with numpy batch broadcasting."""

    def __init__(self, t, batch, nbatch):
        self.t, self.batch, self.nb = t, batch, nbatch

    def __getitem__(self, ij):
        t = self.t
        tb = t.ndim - 2
        off = self.nb - tb
        sub = []
        for d in range(tb):
            sub.append(const(0) if t.shape[d] == 1 else self.batch[off + d])
        return t[tuple(sub) + tuple(ij)]


@register_schedule("MatMul", knobs=lambda st, t: _matmul_knobs(st, t) if len(st.axes) >= 2
                   else {}, version=2)
def schedule_matmul(sch, stage, target, cfg=None):
    if len(stage.axes) < 2:
        from .generic import schedule_reduction
        return schedule_reduction(stage, target, cfg)
    _schedule_matmul_like(stage, target, cfg)


@register_compute("BatchNormalization")
def batch_norm(inputs, attrs, out_types):
    x, scale, bias, mean, var = inputs
    eps = attrs.get("epsilon", 1e-5)

    def f(*idx):
        c = idx[1]
        inv = scale[c] / call("sqrt", var[c] + const(eps, var.dtype))
        return (x[idx] - mean[c]) * inv + bias[c]

    return [te.compute(x.shape, f, name="batchnorm", tag="elemwise")]


def _pool_out_padding(attrs, in_hw, out_hw):
    """Extra bottom/right padding so ceil_mode windows stay inside the padded copy."""
    kh, kw = attrs["kernel"]
    sh, sw = attrs["strides"]
    dh, dw = attrs.get("dilations", (1, 1))
    t, lf, b, r = attrs["pads"]
    need_h = (out_hw[0] - 1) * sh + (kh - 1) * dh + 1
    need_w = (out_hw[1] - 1) * sw + (kw - 1) * dw + 1
    return (max(0, need_h - (in_hw[0] + t + b)), max(0, need_w - (in_hw[1] + lf + r)))


def avg_pool_divisor(attrs, in_hw, out_hw, h, w, dtype):
    """The AveragePool divisor at output (h, w) as an expression, or None when every window
    is whole (then the mean is a constant scale)."""
    H, W = in_hw
    kh, kw = attrs["kernel"]
    sh, sw = attrs["strides"]
    dh, dw = attrs.get("dilations", (1, 1))
    t, lf, b, r = attrs["pads"]
    include = attrs.get("count_include_pad", 0)
    extra = _pool_out_padding(attrs, in_hw, out_hw)
    if not any(attrs["pads"]) and not any(extra):
        return None

    def count(o, s, k, size, p0, p1, d, n_out):
        start = o * s - p0
        if d > 1:
            return _dilated_count(start, k, d, (-p0, size + p1) if include else (0, size),
                                  (n_out - 1) * s + size + p0 + p1 + k * d)
        end = minimum(start + k, size + p1)
        if include:
            return end - start
        return minimum(end, size) - maximum(start, 0)

    return cast(dtype, count(h, sh, kh, H, t, b, dh, out_hw[0])
                * count(w, sw, kw, W, lf, r, dw, out_hw[1]))


def pool2d(x: te.Tensor, attrs, out_shape, is_max: bool) -> te.Tensor:
    """MaxPool / AveragePool over dims 2, 3 of an NCHW tensor or of a blocked (N, C/b, H, W, b)
    one (the trailing channel block passes through)."""
    OH, OW = out_shape[2:4]
    kh, kw = attrs["kernel"]
    sh, sw = attrs["strides"]
    dh, dw = attrs.get("dilations", (1, 1))
    extra = _pool_out_padding(attrs, x.shape[2:4], (OH, OW))
    if is_max:
        fill = -math.inf if x.dtype.startswith("float") else -(2 ** 31)
    else:
        fill = 0.0
    xp = pad_nchw(x, attrs["pads"], fill, extra)
    ry, rx = te.reduce_axis(kh, "ry"), te.reduce_axis(kw, "rx")

    def f(n, c, h, w, *inner):
        v = xp[(n, c, h * sh + ry * dh, w * sw + rx * dw) + inner]
        if is_max:
            return te.max(v, axis=[ry, rx])
        acc = te.sum(v, axis=[ry, rx])
        div = avg_pool_divisor(attrs, x.shape[2:4], (OH, OW), h, w, x.dtype)
        return acc * const(1.0 / (kh * kw), x.dtype) if div is None else acc / div

    return te.compute(tuple(out_shape), f, name="maxpool" if is_max else "avgpool", tag="pool")


for _op, _max in (("MaxPool", True), ("MaxPoolNCHWc", True), ("AveragePool", False),
                  ("AveragePoolNCHWc", False)):
    register_compute(_op)(lambda i, a, o, m=_max: [pool2d(i[0], a, o[0].shape, m)])


def _dilated_count(start, k: int, d: int, valid: tuple[int, int], reach: int):
    """How many taps start + j*d (0 <= j < k) fall in [valid[0], valid[1]); `reach` bounds
    |valid - start| so the divisions below only see non-negative numerators."""
    lo, hi = valid
    m = reach // d + 1
    first = maximum((lo - start + (m * d + d - 1)) // d - m, 0)
    last = minimum((hi - 1 - start + m * d) // d - m, k - 1)
    return maximum(last - first + 1, 0)


def global_pool(inputs, attrs, out_types, is_max: bool, spatial: int | None = None):
    """Global pool over the dims after N, C (or over `spatial` of them: a blocked tensor keeps
    its trailing channel block)."""
    (x,) = inputs
    sp = x.shape[2:] if spatial is None else x.shape[2:2 + spatial]
    axes = [te.reduce_axis(s, f"r{k}") for k, s in enumerate(sp)]
    size = math.prod(sp)

    def f(n, c, *rest):
        v = x[(n, c) + tuple(axes) + tuple(rest[len(sp):])]
        if is_max:
            return te.max(v, axis=axes)
        return te.sum(v, axis=axes) * const(1.0 / size, x.dtype)

    return [te.compute(out_types[0].shape, f, name="globalpool", tag="pool")]


register_compute("GlobalAveragePool")(lambda i, a, o: global_pool(i, a, o, False))
register_compute("GlobalMaxPool")(lambda i, a, o: global_pool(i, a, o, True))
register_compute("GlobalAveragePoolNCHWc")(lambda i, a, o: global_pool(i, a, o, False, 2))
register_compute("GlobalMaxPoolNCHWc")(lambda i, a, o: global_pool(i, a, o, True, 2))


def _schedule_pool(sch, stage, target, cfg=None):
    from .generic import schedule_reduction
    _materialize_pads(sch, target)
    schedule_reduction(stage, target, cfg)


for _op in ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"):
    register_schedule(_op)(_schedule_pool)
register_schedule("GlobalAveragePoolNCHWc")(_schedule_pool)
register_schedule("GlobalMaxPoolNCHWc")(_schedule_pool)  # windowed blocked pools: nchwc.py


@register_compute("LRN")
def lrn(inputs, attrs, out_types):
    (x,) = inputs
    size, alpha, beta, bias = attrs["size"], attrs["alpha"], attrs["beta"], attrs["bias"]
    C = x.shape[1]
    lo = (size - 1) // 2
    r = te.reduce_axis(size, "r")

    def f(n, c, *rest):
        cc = c - lo + r
        v = x[(n, clamp(cc, 0, C - 1)) + tuple(rest)]
        sq = te.sum(select(in_range(cc, 0, C), v * v, const(0.0, x.dtype)), axis=r)
        base = const(bias, x.dtype) + sq * const(alpha / size, x.dtype)
        return x[(n, c) + tuple(rest)] / call("pow", base, const(beta, x.dtype))

    return [te.compute(x.shape, f, name="lrn", tag="lrn")]


def _softmax(inputs, attrs, out_types, log: bool):
    (x,) = inputs
    if x.dtype == "float16":
        # Computed in float32 and rounded once (storage-only half precision).
        x32 = te.compute(x.shape, lambda *i: cast("float32", x[i]), name="softmax_f32")
        (y,) = _softmax([x32], attrs, out_types, log)
        return [te.compute(x.shape, lambda *i: cast("float16", y[i]), name="softmax_f16",
                           tag="softmax")]
    ax = attrs["axis"]
    shape = x.shape
    red_shape = shape[:ax] + (1,) + shape[ax + 1:]

    def at(idx, r):
        return tuple(idx[:ax]) + (r,) + tuple(idx[ax + 1:])

    r1 = te.reduce_axis(shape[ax], "r")
    mx = te.compute(red_shape, lambda *i: te.max(x[at(i, r1)], axis=r1), name="smax_max")
    r2 = te.reduce_axis(shape[ax], "r")
    sm = te.compute(red_shape, lambda *i: te.sum(
        call("exp", x[at(i, r2)] - mx[at(i, const(0))]), axis=r2), name="smax_sum")

    def f(*i):
        z = x[i] - mx[at(i, const(0))]
        s = sm[at(i, const(0))]
        return z - call("log", s) if log else call("exp", z) / s

    return [te.compute(shape, f, name="softmax", tag="softmax")]


register_compute("Softmax")(lambda i, a, o: _softmax(i, a, o, False))
register_compute("LogSoftmax")(lambda i, a, o: _softmax(i, a, o, True))


def _schedule_softmax(sch, stage, target, cfg=None):
    from .generic import schedule_default
    for st in sch.root_stages():
        schedule_default(st, target)


register_schedule("Softmax")(_schedule_softmax)
register_schedule("LogSoftmax")(_schedule_softmax)

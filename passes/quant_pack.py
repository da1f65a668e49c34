"""Int8 weight packing for CPU kernels (after quantization, which never depends on the target):
`pack_qweights` packs QConv weights (OC/b, IC, KH, KW, b) like float Conv weights, or as int32
words of four input channels for the target's packed dot product (`vnni_pack_conv`,
`vnni_pack_gemm`; their inverses serve the ops' reference semantics)."""

from __future__ import annotations

import numpy as np

from tilecc.graph import Graph, Node


def pack_qweights(graph: Graph, target) -> Graph:
    """QConv int8 weights as (OC/b, IC, KH, KW, b): b output channels per vector load. On
    targets with a packed int8 dot (codegen/dot_intrinsics.py: x86 VNNI, ARM sdot/usdot),
    uint8-input QConv (group 1) and QGemm weights are packed for it instead (vnni_pack_conv /
    vnni_pack_gemm)."""
    from tilecc.codegen.dot_intrinsics import DOT4_S8S8, packed_dot

    from .layout import conv_weight_block

    if target is None or target.kind != "cpu":
        return graph
    lanes = target.lanes(4)
    dot = packed_dot(target)
    g = graph.copy()
    for k, n in enumerate(g.nodes):
        if n.op not in ("QConv", "QGemm") or n.attrs.get("weight_block") \
                or n.attrs.get("vnni") or n.inputs[1] not in g.consts:
            continue
        w = g.consts[n.inputs[1]]
        if dot and w.dtype == np.int8 and g.types[n.inputs[0]].dtype == "uint8" \
                and n.attrs.get("group", 1) == 1:
            packed = _pack_dot4(g, n, lanes, dot == DOT4_S8S8)
            if packed is not None:
                g.nodes[k] = packed
                continue
        if n.op != "QConv":
            continue
        b = conv_weight_block(w.shape[0], n.attrs["group"], lanes)
        if not b:
            continue
        oc, ic, kh, kw = w.shape
        pad = -oc % b  # conv_weight_block takes a full vector for a large OC: zero-pad it
        w = np.pad(w, ((0, pad), (0, 0), (0, 0), (0, 0)))
        packed = w.reshape((oc + pad) // b, b, ic, kh, kw).transpose(0, 2, 3, 4, 1)
        wp = g.add_const(f"{n.inputs[1]}_o{b}", np.ascontiguousarray(packed))
        g.nodes[k] = n.replace(inputs=(n.inputs[0], wp) + n.inputs[2:],
                               attrs=dict(n.attrs, weight_block=b, **({"channels": oc} if pad
                                                                      else {})))
    return g


def _pack_dot4(g: Graph, n: Node, lanes: int, flip: bool) -> Node | None:
    """n with its weights packed for dot4 calls. With `flip` (a signed x signed dot: ARM
    sdot) the kernel feeds uint8 x as int8 x - 128 (XOR 0x80), so x*w = (x-128)*w + 128*w and
    the bias takes + 128 * sum(w) over each output channel's reduction, exact in int32; None
    when that bias is not a constant or would overflow."""
    w = g.consts[n.inputs[1]]
    conv = n.op == "QConv"
    attrs: dict = {"vnni": True, "channels": int(w.shape[0] if conv else w.shape[1])}
    inputs = list(n.inputs)
    if flip:
        bias = g.consts.get(n.inputs[2])
        if bias is None:
            return None
        wsum = w.reshape(w.shape[0], -1).sum(1) if conv else w.sum(0)
        fixed = bias.astype(np.int64) + 128 * wsum.astype(np.int64)
        if np.abs(fixed).max(initial=0) >= 2 ** 31:
            return None
        inputs[2] = g.add_const(f"{n.inputs[2]}_x128", fixed.astype(bias.dtype))
        attrs["x_flip"] = True
    if conv:
        wp, attrs["weight_block"] = vnni_pack_conv(w, lanes), lanes
    else:
        nb = lanes * min(4, -(-w.shape[1] // lanes))
        wp, attrs["b_block"] = vnni_pack_gemm(w, nb), nb
    inputs[1] = g.add_const(f"{n.inputs[1]}_vnni", wp)
    return n.replace(inputs=tuple(inputs), attrs=dict(n.attrs, **attrs))


def vnni_pack_conv(w: np.ndarray, ob: int) -> np.ndarray:
    """(OC, IC, KH, KW) int8 -> (ceil(OC/ob), ceil(IC/4), KH, KW, ob) int32 whose byte k holds
    input channel 4c+k (little endian), zero-padded: one 64-byte load feeds `vpdpbusd`."""
    oc, ic, kh, kw = w.shape
    w = np.pad(w, ((0, -oc % ob), (0, -ic % 4), (0, 0), (0, 0)))
    o, i = w.shape[:2]
    p = w.reshape(o // ob, ob, i // 4, 4, kh, kw).transpose(0, 2, 4, 5, 1, 3)
    return np.ascontiguousarray(p).view("<i4").reshape(o // ob, i // 4, kh, kw, ob)


def vnni_unpack_conv(wp: np.ndarray, oc: int, ic: int) -> np.ndarray:
    o16, i4, kh, kw, ob = wp.shape
    w = np.ascontiguousarray(wp).view(np.int8).reshape(o16, i4, kh, kw, ob, 4)
    return w.transpose(0, 4, 1, 5, 2, 3).reshape(o16 * ob, i4 * 4, kh, kw)[:oc, :ic]


def vnni_pack_gemm(b: np.ndarray, nb: int) -> np.ndarray:
    """(K, N) int8 -> (ceil(N/nb), ceil(K/4), nb) int32 panels, byte k of a word = row 4k'+k."""
    kk, nn = b.shape
    b = np.pad(b, ((0, -kk % 4), (0, -nn % nb)))
    k, n = b.shape
    p = b.reshape(k // 4, 4, n // nb, nb).transpose(2, 0, 3, 1)
    return np.ascontiguousarray(p).view("<i4").reshape(n // nb, k // 4, nb)


def vnni_unpack_gemm(bp: np.ndarray, k: int, n: int) -> np.ndarray:
    nblk, k4, nb = bp.shape
    b = np.ascontiguousarray(bp).view(np.int8).reshape(nblk, k4, nb, 4)
    return b.transpose(1, 3, 0, 2).reshape(k4 * 4, nblk * nb)[:k, :n]

"""Weight layout: re-pack constant weights at compile time into the layout kernels read best.

Runs last, after shape inference is final: packed weights no longer follow ONNX's shape rules,
so the node's attrs say how they are laid out (`weight_block`, `transB`).
"""

from __future__ import annotations

import numpy as np

from tilecc.graph import Graph


def conv_weight_block(oc: int, group: int, lanes: int) -> int:
    """Output channels per packed weight vector: a full vector when OC divides or is large
    (the last block is zero-padded: loads stay in bounds, only stores are guarded), else the
    widest of lanes/2, lanes/4 dividing OC (0: not packed; grouped and depthwise convolutions
    keep OIHW)."""
    if group != 1:
        return 0
    if oc % lanes == 0 or oc >= 4 * lanes:
        return lanes
    b = lanes // 2
    while b >= 4:
        if oc % b == 0:
            return b
        b //= 2
    return 0


def gemm_panel(n: int, rows: int, lanes: int) -> int:
    """Columns per packed B panel: two vectors (four when A has few rows, so enough
    independent accumulators hide the FMA latency). N need not divide: the last panel is
    zero-padded, so the kernel's loads stay in bounds and only its stores are guarded."""
    if n < lanes:
        return 0
    if rows >= 4:
        for vecs in (2, 1):
            if n % (vecs * lanes) == 0:
                return vecs * lanes
        return 2 * lanes if n >= 4 * lanes else lanes
    for vecs in (4, 2):
        if n % (vecs * lanes) == 0:
            return vecs * lanes
    # One vector of columns per panel would leave a single FMA chain per row (a 1x1280 by
    # 1280x1000 classifier ran at FMA latency, 7 GFLOP/s on Zen 2): the widest panel whose
    # zero padding stays within an eighth of N.
    for vecs in (4, 2):
        if n >= vecs * lanes and (-n % (vecs * lanes)) * 8 <= n:
            return vecs * lanes
    return lanes


def pack_weights(graph: Graph, target=None) -> Graph:
    """Gemm with a constant transposed B gets B stored (K, N), so vector loads along N are
    contiguous. Conv with constant OIHW weights gets (OC/b, IC, KH, KW, b) with b from the
    target's vector width, so b output channels are one vector load."""
    g = graph.copy()
    lanes = target.float_lanes() if target is not None and target.kind == "cpu" else 0
    for k, n in enumerate(g.nodes):
        if n.op in ("Gemm", "MatMul") and lanes and n.inputs[1] in g.consts \
                and g.consts[n.inputs[1]].ndim == 2 and g.types[n.inputs[0]].shape \
                and not n.attrs.get("b_block"):
            b = g.consts[n.inputs[1]]
            if n.op == "Gemm" and n.attrs.get("transB"):
                b = b.T
            rows = int(np.prod(g.types[n.inputs[0]].shape[:-1])) if n.op == "MatMul" else \
                g.types[n.outputs[0]].shape[0]
            nb = gemm_panel(b.shape[1], rows, lanes)
            if nb:
                kk, nn = b.shape
                pad = -nn % nb
                if pad:
                    b = np.concatenate([b, np.zeros((kk, pad), b.dtype)], axis=1)
                panels = b.reshape(kk, (nn + pad) // nb, nb).transpose(1, 0, 2)
                bp = g.add_const(f"{n.inputs[1]}_p{nb}", np.ascontiguousarray(panels))
                attrs = dict(n.attrs, b_block=nb)
                if n.op == "Gemm":
                    attrs["transB"] = 0
                g.nodes[k] = n.replace(inputs=(n.inputs[0], bp) + n.inputs[2:], attrs=attrs)
                continue
        if n.op == "Gemm" and n.attrs.get("transB") and n.inputs[1] in g.consts:
            bt = g.add_const(n.inputs[1] + "_kn", np.ascontiguousarray(g.consts[n.inputs[1]].T))
            g.nodes[k] = n.replace(inputs=(n.inputs[0], bt) + n.inputs[2:],
                                   attrs=dict(n.attrs, transB=0))
        elif n.op == "Conv" and lanes and n.inputs[1] in g.consts \
                and not n.attrs.get("weight_block"):
            w = g.consts[n.inputs[1]]
            b = conv_weight_block(w.shape[0], n.attrs["group"], lanes)
            if not b:
                continue
            oc, ic, kh, kw = w.shape
            pad = -oc % b
            if pad:
                w = np.concatenate([w, np.zeros((pad, ic, kh, kw), w.dtype)])
            packed = w.reshape((oc + pad) // b, b, ic, kh, kw).transpose(0, 2, 3, 4, 1)
            wp = g.add_const(f"{n.inputs[1]}_o{b}", np.ascontiguousarray(packed))
            g.nodes[k] = n.replace(inputs=(n.inputs[0], wp) + n.inputs[2:],
                                   attrs=dict(n.attrs, weight_block=b))
    return g

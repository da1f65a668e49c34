"""Int8 dot products on x86 CPUs without VNNI (AVX2, AVX-512 without VNNI).

Widening u8 x s8 to int32 multiplies runs 8 products per `vpmulld`, slower than fp32's 8 per
FMA: int8 builds of the bundled models ran 2-12x slower than fp32 on Zen 3. `pmaddubsw` does
32 u8 x s8 products per instruction (pairs summed to int16) but saturates once a pair passes
32767, which two products of 255 x 127 do. 8-bit weights (PTQ's default) take dot4_u8s8,
which splits the activation bytes so two `pmaddubsw` stay exact (codegen/dot_intrinsics.py).
Weights within [-64, 64] (PTQ with `reduce_range`, as onnxruntime's option of that name, or a
QDQ model's 7-bit weights) keep every pair below 2 * 255 * 64 = 32640 with one: for those
layers `pack_qweights_s7` packs the weights like the VNNI ones (4 input channels per int32
word) with `dot4_u8s7`. The weights PTQ picks never depend on the target, so one quantized
model computes the same integers on every CPU and GPU.
"""

from __future__ import annotations

import numpy as np

from tilecc.graph import Graph

S7 = 64  # |weight| bound that keeps pmaddubsw's int16 pair sums exact for uint8 inputs


def _narrow_target(target) -> bool:
    from tilecc.codegen.dot_intrinsics import target_has_dot4_s7, target_has_vnni

    return target is not None and target_has_dot4_s7(target) and not target_has_vnni(target)


def weight_limit(reduce_range: bool = False) -> int:
    """The symmetric int8 weight bound PTQ quantizes to: 127, or 64 with `reduce_range`
    (one `pmaddubsw` per 32 products on x86 without VNNI instead of two, for one bit of
    weight precision). Never the target's choice: see the module docstring."""
    return S7 if reduce_range else 127


def _depthwise(g: Graph, n) -> bool:
    return n.op == "QConv" and not n.attrs.get("weight_block") and n.inputs[1] in g.consts \
        and n.attrs["group"] > 1 and g.consts[n.inputs[1]].shape[1] == 1 \
        and g.consts[n.inputs[1]].dtype == np.int8


def pack_qweights_s7(graph: Graph, target) -> Graph:
    """Depthwise QConv becomes QDWConv on CPUs. On x86 targets without VNNI, QConv (group 1)
    and QGemm with uint8 inputs and weights within [-64, 64] get VNNI-packed weights and
    `dot="dot4_u8s7"`; pack_qweights leaves nodes already packed alone. Other layers (8-bit
    weights from QDQ models) keep the exact widening path."""
    from .quant_pack import vnni_pack_conv, vnni_pack_gemm

    if target is None or target.kind != "cpu":
        return graph
    g = graph.copy()
    for k, n in enumerate(g.nodes):
        if _depthwise(g, n):
            # Bare metal reads the uint8 input in place: the widened int32 copy the fast
            # kernel makes is four times the input, more arena than a microcontroller has.
            g.nodes[k] = n.replace(op="QDWConv", attrs=dict(n.attrs,
                                                            widen=not target.bare_metal))
    if not _narrow_target(target):
        return g
    lanes = target.lanes(4)
    for k, n in enumerate(g.nodes):
        if n.op not in ("QConv", "QGemm") or n.attrs.get("weight_block") \
                or n.attrs.get("vnni") or n.inputs[1] not in g.consts \
                or g.types[n.inputs[0]].dtype != "uint8" or n.attrs.get("group", 1) != 1:
            continue
        w = g.consts[n.inputs[1]]
        if w.dtype != np.int8 or np.abs(w.astype(np.int16)).max(initial=0) > S7:
            continue
        if n.op == "QConv":
            wp, attrs = vnni_pack_conv(w, lanes), {"weight_block": lanes}
            channels = w.shape[0]
        else:
            nb = lanes * min(4, -(-w.shape[1] // lanes))
            wp, attrs = vnni_pack_gemm(w, nb), {"b_block": nb}
            channels = w.shape[1]
        name = g.add_const(f"{n.inputs[1]}_s7", wp)
        g.nodes[k] = n.replace(inputs=(n.inputs[0], name) + n.inputs[2:],
                               attrs=dict(n.attrs, vnni=True, dot="dot4_u8s7",
                                          channels=int(channels), **attrs))
    return g

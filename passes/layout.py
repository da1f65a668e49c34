"""Weight layout: re-pack constant weights at compile time into the layout kernels read best."""

from __future__ import annotations

import numpy as np
from tilecc.graph import Graph


def pack_weights(graph: Graph) -> Graph:
    """Gemm with a constant transposed B gets B stored (K, N): the kernel's vector loads along
    N are then contiguous instead of strided."""
    g = graph.copy()
    for k, n in enumerate(g.nodes):
        if n.op == "Gemm" and n.attrs.get("transB") and n.inputs[1] in g.consts:
            bt = g.add_const(n.inputs[1] + "_kn", np.ascontiguousarray(g.consts[n.inputs[1]].T))
            g.nodes[k] = n.replace(inputs=(n.inputs[0], bt) + n.inputs[2:],
                                   attrs=dict(n.attrs, transB=0))
    return g

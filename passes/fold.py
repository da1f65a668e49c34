"""Constant folding and dead-code elimination."""

from __future__ import annotations

import numpy as np

from tilecc.graph import Graph, GraphError
from tilecc.ops.registry import get_op


def fold_constants(graph: Graph) -> Graph:
    """Evaluate every node whose inputs are all constants with its op's numpy `fold`."""
    g = graph.copy()
    nodes = []
    for n in g.nodes:
        opdef = get_op(n.op)
        if opdef.fold is None or not all(i in g.consts for i in n.inputs if i):
            nodes.append(n)
            continue
        arrays = opdef.fold([g.consts[i] for i in n.inputs if i], n.attrs)
        for o, arr in zip(n.outputs, arrays):
            arr = np.asarray(arr, order="C")
            t = g.types[o]
            if tuple(arr.shape) != t.shape or arr.dtype.name != t.dtype:
                raise GraphError(f"fold of {n.name or n.op} gave {arr.dtype.name}"
                                 f"{list(arr.shape)} for {o!r} typed {t}")
            g.consts[o] = arr
    g.nodes = nodes
    return g


def eliminate_dead_code(graph: Graph) -> Graph:
    """Drop nodes whose outputs never reach a graph output, then unused constants."""
    live = set(graph.outputs)
    kept = []
    for n in reversed(graph.nodes):
        if any(o in live for o in n.outputs):
            kept.append(n)
            live.update(i for i in n.inputs if i)
    kept.reverse()
    live.update(graph.inputs)
    live.update(o for n in kept for o in n.outputs)
    return Graph(kept, list(graph.inputs), list(graph.outputs),
                 {k: t for k, t in graph.types.items() if k in live},
                 {k: v for k, v in graph.consts.items() if k in live}, graph.name)

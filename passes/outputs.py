"""Output copies: the last graph pass before fusion."""

from __future__ import annotations

from tilecc.graph import Graph, Node


def prepare_outputs(graph: Graph) -> Graph:
    """Give every graph output a kernel that writes it: outputs that are inputs, constants,
    Reshape views or repeated get a Copy node."""
    g = graph.copy()
    producers = g.producers()
    seen: set[str] = set()
    for j, o in enumerate(g.outputs):
        p = producers.get(o)
        if o in g.inputs or o in g.consts or o in seen or (p is not None and p.op == "Reshape"):
            new = g.fresh_name(f"{o}_copy")
            g.types[new] = g.types[o]
            g.nodes.append(Node("Copy", (o,), (new,), {}, name=f"copy_{j}"))
            g.outputs[j] = new
        seen.add(g.outputs[j])
    return g

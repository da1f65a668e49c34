"""Operator fusion: elementwise ops join the group of their producer.

The result is a Graph whose nodes are `Fused` nodes (attrs["nodes"] holds the original nodes
in order) plus `Reshape` nodes left alone, which memory planning turns into aliases. A group
has one external output, produced by its last node, so groups stay in topological order.

A group takes at most MAX_GROUP ops: a kernel's expression nests one level per fused op, and
every walker over it (resolve, simplify, lowering, codegen) recurses, so ~330 fused ops in a
row ended in RecursionError. Longer chains are split into several kernels.
"""

from __future__ import annotations

from tilecc.graph import Graph, Node
from tilecc.ops.registry import Pattern, ops_with

# Read from the op definitions (register_op(..., pattern=Pattern.ELEMWISE)), never listed here.
ELEMWISE = ops_with(Pattern.ELEMWISE)
# Groups an elementwise op may join as an epilogue (Softmax/LRN keep their own kernels).
EPILOGUE_HOSTS = ELEMWISE | {"Conv", "Gemm", "MatMul", "QConv", "QDWConv", "QGemm", "QAveragePool",
                             "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
                             "Concat", "Transpose", "Slice", "Gather", "Pad", "ReduceMean",
                             "ReduceSum", "ReduceMax", "ReduceMin", "ConvNCHWc", "MaxPoolNCHWc",
                             "AveragePoolNCHWc", "GlobalAveragePoolNCHWc", "GlobalMaxPoolNCHWc",
                             "LayoutTransform"}
ALIAS_OPS = {"Reshape"}
# Ops per fused group. Real models fuse a handful (conv + bias + activation); 32 deep
# elementwise expansions (Erf, Mish, ...) still stay well inside Python's recursion limit.
MAX_GROUP = 32


def fuse_ops(graph: Graph, elementwise: bool = True) -> Graph:
    """Group the graph's nodes into kernels; `elementwise=False` (-O0) gives every node a
    kernel of its own."""
    consumers = graph.consumers()
    outputs = set(graph.outputs)
    groups: list[list[Node]] = []
    group_of: dict[str, int] = {}  # value name -> index of the group whose last node makes it

    for n in graph.nodes:
        target = None
        if elementwise and n.op in ELEMWISE:
            best = -1
            for i in n.inputs:
                g = group_of.get(i)
                if g is None or i in outputs:
                    continue
                if len(consumers.get(i, [])) != 1 and not _closed_diamond(i, consumers, graph):
                    continue
                if groups[g][-1].outputs[0] != i or len(groups[g][-1].outputs) != 1:
                    continue
                if _broadcasts(graph, i, n) and any(m.op in ELEMWISE for m in groups[g]):
                    continue
                if not all(m.op in EPILOGUE_HOSTS for m in groups[g]):
                    continue
                if len(groups[g]) >= MAX_GROUP:
                    continue
                best = max(best, g)
            if best >= 0:
                target = best
        if target is None or n.op in ALIAS_OPS:
            groups.append([n])
            target = len(groups) - 1
        else:
            groups[target].append(n)
        for o in n.outputs:
            group_of[o] = target

    # Positions and membership by identity: Node equality compares every field, and
    # list.index / `in` over a 10k-node chain made fusion quadratic (minutes).
    position = {id(n): k for k, n in enumerate(graph.nodes)}
    order = sorted(range(len(groups)), key=lambda g: position[id(groups[g][-1])])
    nodes = []
    for g in order:
        members = groups[g]
        member_ids = {id(m) for m in members}
        if len(members) == 1 and members[0].op in ALIAS_OPS:
            nodes.append(members[0])
            continue
        produced = {o for m in members for o in m.outputs}
        ins: list[str] = []
        for m in members:
            for i in m.inputs:
                if i and i not in produced and i not in ins:
                    ins.append(i)
        outs = [o for m in members for o in m.outputs
                if o in outputs or any(id(c) not in member_ids for c in consumers.get(o, []))]
        name = "_".join(m.op.lower() for m in members[:4])
        nodes.append(Node("Fused", tuple(ins), tuple(outs),
                          {"nodes": tuple(members), "anchor": _anchor(members)}, name=name))
    out = graph.copy()
    out.nodes = nodes
    return out


def _broadcasts(graph: Graph, value: str, node: Node) -> bool:
    """`node` reads `value` broadcast to a larger output (an SE block's x * sigmoid(conv(s))):
    fused, the group's elementwise ops would run once per output element instead of once per
    value element (32 sigmoids become 401,408 on EfficientNet's first block). A reduction
    alone is materialised before its broadcast read, so such a group may still take it."""
    t_in, t_out = graph.types.get(value), graph.types.get(node.outputs[0])
    return t_in is not None and t_out is not None and t_in.size < t_out.size


def _closed_diamond(value: str, consumers: dict, graph: Graph) -> bool:
    """All readers of `value` are elementwise and read only it, constants and each other's
    outputs (x * sigmoid(x)): they can all join the producer's group, so `value` stays inside."""
    readers = consumers.get(value, [])
    made = {o for c in readers for o in c.outputs}
    return all(c.op in ELEMWISE and all(i == value or i in graph.consts or i in made
                                        for i in c.inputs if i) for c in readers)


def _anchor(members: list[Node]) -> str:
    for m in members:
        if m.op not in ELEMWISE:
            return m.op
    return members[-1].op

"""Algebraic simplifications: fold BatchNormalization and per-channel scale/shift into the
producing Conv/Gemm, lower what is left of BatchNormalization to Mul+Add, tidy Reshapes."""

from __future__ import annotations

import numpy as np

from tilecc.graph import Graph, Node
from tilecc.ops.nn import bn_scale_shift


def _rewire(nodes: list[Node], alias: dict[str, str]) -> list[Node]:
    if not alias:
        return nodes
    return [n.replace(inputs=tuple(alias.get(i, i) for i in n.inputs)) for n in nodes]


def _sole_consumer(g: Graph, value: str, consumers: dict) -> bool:
    # A producer may absorb its consumer only if nobody else sees the unscaled value.
    return len(consumers.get(value, [])) == 1 and value not in g.outputs


def _absorb_into_conv(g: Graph, conv: Node, mul: np.ndarray | None, add: np.ndarray | None,
                      out: str) -> Node | None:
    """Conv with y' = y * mul + add per output channel, writing `out`; None if not constant."""
    w = g.consts.get(conv.inputs[1])
    bias = g.consts.get(conv.inputs[2]) if len(conv.inputs) > 2 else None
    if w is None or (len(conv.inputs) > 2 and bias is None):
        return None
    m = w.shape[0]
    w64 = w.astype(np.float64)
    b64 = np.zeros(m) if bias is None else bias.astype(np.float64)
    if mul is not None:
        w64 = w64 * mul.reshape(-1, 1, 1, 1)
        b64 = b64 * mul
    if add is not None:
        b64 = b64 + add
    wname = g.add_const(f"{conv.inputs[1]}_folded", w64.astype(w.dtype))
    bname = g.add_const(f"{out}_bias", b64.astype(w.dtype))
    return conv.replace(inputs=(conv.inputs[0], wname, bname), outputs=(out,))


def _absorb_into_gemm(g: Graph, gemm: Node, mul: np.ndarray, add: np.ndarray,
                      out: str) -> Node | None:
    b = g.consts.get(gemm.inputs[1])
    c = g.consts.get(gemm.inputs[2]) if len(gemm.inputs) > 2 else None
    if b is None or (len(gemm.inputs) > 2 and c is None):
        return None
    b64 = b.astype(np.float64)
    # Output column j comes from row j of B when transB, else from column j.
    b64 = b64 * (mul.reshape(-1, 1) if gemm.attrs["transB"] else mul.reshape(1, -1))
    beta = gemm.attrs["beta"]
    c64 = add if c is None else beta * c.astype(np.float64) * mul + add
    bname = g.add_const(f"{gemm.inputs[1]}_folded", b64.astype(b.dtype))
    cname = g.add_const(f"{out}_bias", c64.astype(b.dtype))
    attrs = {**gemm.attrs, "beta": 1.0}
    return gemm.replace(inputs=(gemm.inputs[0], bname, cname), outputs=(out,), attrs=attrs)


def fold_batchnorm(graph: Graph) -> Graph:
    """Fold inference BatchNormalization into a preceding Conv/Gemm, else into Mul+Add."""
    g = graph.copy()
    producers = g.producers()
    consumers = g.consumers()
    nodes: list[Node] = []
    index: dict[str, int] = {}  # value -> position in `nodes` of its producer
    for n in g.nodes:
        params = [g.consts.get(i) for i in n.inputs[1:]]
        if n.op != "BatchNormalization" or any(p is None for p in params):
            index.update((o, len(nodes)) for o in n.outputs)
            nodes.append(n)
            continue
        mul, add = bn_scale_shift(*params, n.attrs["epsilon"])
        x, out = n.inputs[0], n.outputs[0]
        prod = producers.get(x)
        new = None
        if prod is not None and x in index and _sole_consumer(g, x, consumers):
            if prod.op == "Conv":
                new = _absorb_into_conv(g, nodes[index[x]], mul, add, out)
            elif prod.op == "Gemm":
                new = _absorb_into_gemm(g, nodes[index[x]], mul, add, out)
        if new is not None:
            nodes[index[x]] = new
            index[out] = index.pop(x)
            continue
        rank = len(g.types[x].shape)
        shape = (-1,) + (1,) * (rank - 2)
        dtype = g.types[x].dtype
        scale = g.add_const(f"{out}_scale", mul.reshape(shape).astype(dtype))
        shift = g.add_const(f"{out}_shift", add.reshape(shape).astype(dtype))
        mid = g.fresh_name(f"{out}_scaled")
        g.types[mid] = g.types[out]
        for k in (mid, out):
            index[k] = len(nodes)
        nodes.append(Node("Mul", (x, scale), (mid,), {}, n.name))
        nodes.append(Node("Add", (mid, shift), (out,), {}, n.name))
    g.nodes = nodes
    return g


def _channel_vector(g: Graph, const: str, out_shape: tuple[int, ...]) -> np.ndarray | None:
    """The per-channel vector of a constant that broadcasts over axis 1 only, else None."""
    arr = g.consts[const]
    rank = len(out_shape)
    if arr.ndim > rank:
        return None
    full = (1,) * (rank - arr.ndim) + arr.shape
    if any(d != 1 for i, d in enumerate(full) if i != 1) or full[1] not in (1, out_shape[1]):
        return None
    vec = arr.astype(np.float64).reshape(-1)
    return np.broadcast_to(vec, (out_shape[1],))


def fold_scale_shift(graph: Graph) -> Graph:
    """Fold Mul/Add by a per-output-channel constant that directly follows a Conv."""
    g = graph.copy()
    consumers = g.consumers()
    nodes: list[Node] = []
    index: dict[str, int] = {}
    for n in g.nodes:
        new = None
        if n.op in ("Mul", "Add") and len(n.inputs) == 2:
            for x, c in (n.inputs, n.inputs[::-1]):
                if x in index and c in g.consts and nodes[index[x]].op == "Conv" \
                        and _sole_consumer(g, x, consumers) \
                        and g.types[n.outputs[0]] == g.types[x]:
                    vec = _channel_vector(g, c, g.types[x].shape)
                    if vec is None:
                        continue
                    mul, add = (vec, None) if n.op == "Mul" else (None, vec)
                    new = _absorb_into_conv(g, nodes[index[x]], mul, add, n.outputs[0])
                    if new is not None:
                        nodes[index[x]] = new
                        index[n.outputs[0]] = index.pop(x)
                        break
        if new is None:
            index.update((o, len(nodes)) for o in n.outputs)
            nodes.append(n)
    g.nodes = nodes
    return g


def simplify_reshapes(graph: Graph) -> Graph:
    """Drop Reshapes that keep the shape and collapse Reshape-of-Reshape into one."""
    g = graph.copy()
    producers: dict[str, Node] = {}  # value -> its (already rewritten) producer
    alias: dict[str, str] = {}
    nodes: list[Node] = []
    for n in g.nodes:
        n = n.replace(inputs=tuple(alias.get(i, i) for i in n.inputs))
        if n.op == "Reshape":
            src, out = n.inputs[0], n.outputs[0]
            if g.types[src].shape == g.types[out].shape and out not in g.outputs:
                alias[out] = src
                continue
            inner = producers.get(src)
            if inner is not None and inner.op == "Reshape":
                n = n.replace(inputs=inner.inputs)
        producers.update((o, n) for o in n.outputs)
        nodes.append(n)
    g.nodes = nodes
    return g

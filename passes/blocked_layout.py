"""Blocked activation layout (NCHW{b}c) for CPU convolution networks.

Convolutions, the elementwise ops after them, pools and channel concatenations run on blocked
tensors (N, C/b, H, W, b), with b the widest power of two up to the target's vector lanes that
divides the channel count (at least half a vector, and at least 4). Weights are re-packed here, once, at compile time.
Every other op keeps plain NCHW: a LayoutTransform is inserted only where such an op reads a
blocked tensor (or a blocked op reads a plain one), and graph inputs and outputs stay NCHW.
A dense convolution reading a plain tensor (the network input, say) reads it directly.

Tensors are converted lazily: a converted node's outputs get new names, and the original NCHW
name is produced (by a transform) only if some plain consumer or a graph output needs it.
"""

from __future__ import annotations

import numpy as np

from tilecc.graph import Graph, Node, TensorType
from tilecc.ops.nchwc import blocked_shape, to_blocked

from .fuse import ELEMWISE

POOLS = {"MaxPool": "MaxPoolNCHWc", "AveragePool": "AveragePoolNCHWc",
         "GlobalAveragePool": "GlobalAveragePoolNCHWc", "GlobalMaxPool": "GlobalMaxPoolNCHWc"}
# Elementwise ops whose broadcasting is plain numpy broadcasting of all inputs.
_ELEMWISE = ELEMWISE - {"BatchNormalization"}


def channel_block(c: int, lanes: int) -> int:
    """Widest power of two <= lanes dividing c; narrower than half a vector is not worth it
    (vectors of 4 on a 16-lane machine lose to the plain layout's full vectors)."""
    b = lanes
    while b >= max(4, lanes // 2):
        if c % b == 0:
            return b
        b //= 2
    return 0


def block_constant(value: np.ndarray, shape4: tuple[int, ...], b: int) -> np.ndarray:
    """A constant that broadcasts against a (N, C, H, W) tensor, laid out to broadcast against
    its blocked (N, C/b, H, W, b) form."""
    v = value.reshape((1,) * (4 - value.ndim) + value.shape)
    if v.shape[1] == 1:
        return v.reshape(v.shape + (1,))
    return to_blocked(np.broadcast_to(v, (v.shape[0], shape4[1]) + v.shape[2:]), b)


class _Rewriter:
    def __init__(self, graph: Graph, lanes: int):
        self.g = graph.copy()
        self.lanes = lanes
        self.nodes: list[Node] = []
        self.blocked: dict[str, str] = {}  # NCHW value -> its blocked value
        self.block: dict[str, int] = {}  # blocked value -> b
        made = {o for n in graph.nodes for o in n.outputs}
        self.plain: set[str] = set(graph.inputs) | (set(graph.types) - made)

    # -- values ------------------------------------------------------------------------
    def new_value(self, base: str, t: TensorType) -> str:
        name = self.g.fresh_name(base)
        self.g.types[name] = t
        return name

    def as_plain(self, v: str) -> str:
        if v not in self.plain:
            src = self.blocked[v]
            self.emit(_transform(src, v, self.block[src], 0, self.g))
            self.plain.add(v)
        return v

    def as_blocked(self, v: str, b: int) -> str:
        if v in self.blocked and self.block[self.blocked[v]] == b:
            return self.blocked[v]
        src = self.as_plain(v)
        t = self.g.types[src]
        out = self.new_value(f"{v}__b{b}", TensorType(blocked_shape(t.shape, b), t.dtype))
        self.emit(_transform(src, out, 0, b, self.g))
        self.block[out] = b
        self.blocked.setdefault(v, out)  # a value blocked two ways keeps its first form
        return out

    def emit(self, node: Node) -> None:
        self.nodes.append(node)

    def set_blocked(self, v: str, b: int, op: str, ins, attrs, name: str) -> None:
        t = self.g.types[v]
        out = self.new_value(f"{v}__b{b}", TensorType(blocked_shape(t.shape, b), t.dtype))
        self.blocked[v], self.block[out] = out, b
        self.emit(Node(op, tuple(ins), (out,), attrs, name=name))

    # -- node rules --------------------------------------------------------------------
    def conv(self, n: Node) -> bool:
        g = self.g
        x, w = n.inputs[0], n.inputs[1]
        xt, out = g.types[x], n.outputs[0]
        if (w not in g.consts or xt.dtype != "float32" or len(xt.shape) != 4
                or g.consts[w].ndim != 4 or n.attrs.get("weight_block")):
            return False
        wv = g.consts[w]
        oc, icg, kh, kw = wv.shape
        c, group = xt.shape[1], n.attrs["group"]
        depthwise = group == c == oc and icg == 1 and group > 1
        if group != 1 and not depthwise:
            return False
        if depthwise:
            b = self.block[self.blocked[x]] if x in self.blocked else channel_block(c, self.lanes)
            if not b or c % b:
                return False
            xb = self.as_blocked(x, b)
            packed = wv.reshape(c // b, b, kh, kw).transpose(0, 2, 3, 1)
            ib = ob = b
        else:
            ob = channel_block(oc, self.lanes)
            if not ob:
                return False
            if x in self.blocked:
                xb = self.blocked[x]
                ib = self.block[xb]
                packed = wv.reshape(oc // ob, ob, c // ib, ib, kh, kw).transpose(0, 2, 4, 5, 3, 1)
            else:
                xb, ib = x, 0
                packed = wv.reshape(oc // ob, ob, c, kh, kw).transpose(0, 2, 3, 4, 1)
        wp = g.add_const(f"{w}_nchwc{ob}", np.ascontiguousarray(packed))
        attrs = {k: n.attrs[k] for k in ("strides", "pads", "dilations")}
        attrs.update(in_block=ib, out_block=ob, depthwise=depthwise)
        self.set_blocked(out, ob, "ConvNCHWc", (xb, wp) + tuple(n.inputs[2:]), attrs, n.name)
        return True

    def elementwise(self, n: Node) -> bool:
        g = self.g
        out_t = g.types[n.outputs[0]]
        if len(n.outputs) != 1 or len(out_t.shape) != 4:
            return False
        anchors = [i for i in n.inputs if i in self.blocked and g.types[i].shape == out_t.shape]
        if not anchors:
            return False
        b = self.block[self.blocked[anchors[0]]]
        ins = []
        for i in n.inputs:
            if not i:
                ins.append(i)
            elif i in self.blocked and self.block[self.blocked[i]] == b:
                ins.append(self.blocked[i])
            elif i in g.consts:
                v = g.consts[i]
                if v.size == 1:
                    ins.append(i)
                    continue
                v4 = (1,) * (4 - v.ndim) + v.shape if v.ndim <= 4 else None
                if v4 is None or v4[1] not in (1, out_t.shape[1]) \
                        or np.broadcast_shapes(v4, out_t.shape) != out_t.shape:
                    return False
                ins.append(g.add_const(f"{i}_b{b}", block_constant(v, out_t.shape, b)))
            elif len(g.types[i].shape) == 4 and g.types[i].shape[1] == out_t.shape[1]:
                ins.append(None)  # converted below, once the node is known to qualify
            else:
                return False
        ins = [self.as_blocked(i, b) if v is None else v for i, v in zip(n.inputs, ins)]
        self.set_blocked(n.outputs[0], b, n.op, ins, n.attrs, n.name)
        return True

    def pool(self, n: Node) -> bool:
        x = n.inputs[0]
        if x not in self.blocked or len(n.outputs) != 1 or len(self.g.types[x].shape) != 4 \
                or not self.g.types[x].dtype.startswith("float"):
            return False
        xb = self.blocked[x]
        self.set_blocked(n.outputs[0], self.block[xb], POOLS[n.op], (xb,), n.attrs, n.name)
        return True

    def concat(self, n: Node) -> bool:
        g = self.g
        if n.attrs.get("axis") != 1 or len(g.types[n.outputs[0]].shape) != 4:
            return False
        blocks = {self.block[self.blocked[i]] for i in n.inputs if i in self.blocked}
        if len(blocks) != 1:
            return False
        (b,) = blocks
        if any(g.types[i].shape[1] % b or len(g.types[i].shape) != 4 for i in n.inputs):
            return False
        ins = [self.as_blocked(i, b) for i in n.inputs]
        self.set_blocked(n.outputs[0], b, "Concat", ins, n.attrs, n.name)
        return True

    def run(self) -> Graph:
        g = self.g
        for n in list(g.nodes):
            done = False
            if n.op == "Conv":
                done = self.conv(n)
            elif n.op in _ELEMWISE:
                done = self.elementwise(n)
            elif n.op in POOLS:
                done = self.pool(n)
            elif n.op == "Concat":
                done = self.concat(n)
            if not done:
                for i in n.inputs:
                    if i:
                        self.as_plain(i)
                self.emit(n)
                self.plain.update(n.outputs)
        for o in g.outputs:
            self.as_plain(o)
        g.nodes = self.nodes
        return g


def _transform(src: str, dst: str, src_block: int, dst_block: int, g: Graph) -> Node:
    shape = g.types[src].shape
    # With 1x1 images both layouts are the same bytes: a Reshape (an alias, no copy).
    if shape[2:4] == (1, 1):
        return Node("Reshape", (src,), (dst,), {"shape": g.types[dst].shape},
                    name=f"reshape_{dst}")
    return Node("LayoutTransform", (src,), (dst,),
                {"src_block": src_block, "dst_block": dst_block}, name=f"layout_{dst}")


def to_blocked_layout(graph: Graph, target=None) -> Graph:
    """The blocked-layout rewrite for CPU targets with vectors of at least 4 floats."""
    if target is None or target.kind != "cpu" or target.float_lanes() < 4:
        return graph
    if not any(n.op == "Conv" for n in graph.nodes):
        return graph
    g = _Rewriter(graph, target.float_lanes()).run()
    # When most convolutions cannot be blocked (grouped ones, channel counts with no useful
    # block: ShuffleNet), the layout flips back and forth around them and the copies cost more
    # than the blocked kernels gain: keep the whole graph plain then.
    blocked = sum(n.op == "ConvNCHWc" for n in g.nodes)
    plain = sum(n.op == "Conv" for n in g.nodes)
    return graph if plain > blocked else g

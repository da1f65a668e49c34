"""Recognise exported decompositions and rewrite them to single ops.

Rules are data: `(name, match)` pairs where `match(graph, node, ctx)` looks at the subgraph
ending in (or rooted at) `node` and returns `(nodes_to_remove, replacement_node)` or None. One
driver applies them. Rewritten here:

- LayerNorm as PyTorch/older exports spell it: ReduceMean -> Sub -> Pow(2)|Mul(self) ->
  ReduceMean -> Add(eps) -> Sqrt -> Div [-> Mul(gamma)] [-> Add(beta)]  =>  LayerNormalization
- Gelu (erf form): x * 0.5 * (1 + Erf(x / sqrt(2))) in its usual operand orders  =>  Gelu

so each compiles as one kernel instead of a chain of reductions and elementwise kernels.
"""

from __future__ import annotations

import math

import numpy as np

from tilecc.graph import Graph, Node


class _Ctx:
    def __init__(self, g: Graph):
        self.g = g
        self.producers = g.producers()
        self.consumers = g.consumers()
        self.outputs = set(g.outputs)

    def scalar(self, v: str) -> float | None:
        arr = self.g.consts.get(v)
        if arr is None or arr.size != 1:
            return None
        return float(np.asarray(arr).reshape(-1)[0])

    def only_use(self, v: str, n: int = 1) -> bool:
        """`v` is an internal value with exactly n consumer slots (safe to fuse away)."""
        return v not in self.outputs and sum(
            c.inputs.count(v) for c in self.consumers.get(v, [])) == n

    def single_consumer(self, v: str, op: str) -> Node | None:
        cs = self.consumers.get(v, [])
        if len(cs) == 1 and cs[0].op == op and self.only_use(v):
            return cs[0]
        return None

    def other(self, n: Node, v: str) -> str | None:
        """The other operand of binary node n, one of whose operands is v."""
        a, b = n.inputs
        return b if a == v else a if b == v else None


def _close(v: float | None, want: float, tol: float = 1e-4) -> bool:
    return v is not None and abs(v - want) <= tol * max(1.0, abs(want))


# ---- LayerNorm ----------------------------------------------------------------------------


def match_layernorm(g: Graph, m1: Node, ctx: _Ctx):
    if m1.op != "ReduceMean" or not m1.attrs["keepdims"]:
        return None
    x = m1.inputs[0]
    rank = len(g.types[x].shape)
    axes = tuple(m1.attrs["axes"])
    if not axes or axes != tuple(range(axes[0], rank)):
        return None
    mean = m1.outputs[0]
    subs = [c for c in ctx.consumers.get(mean, []) if c.op == "Sub" and c.inputs == (x, mean)]
    if len(subs) != 1 or not ctx.only_use(mean):
        return None
    sub = subs[0]
    d = sub.outputs[0]
    users = list({id(u): u for u in ctx.consumers.get(d, [])}.values())  # Mul(d, d) twice
    if d in ctx.outputs or len(users) != 2:
        return None
    sq = next((u for u in users if (u.op == "Pow" and u.inputs[0] == d
                                    and _close(ctx.scalar(u.inputs[1]), 2.0))
               or (u.op == "Mul" and u.inputs == (d, d))), None)
    div = next((u for u in users if u.op == "Div" and u.inputs[0] == d), None)
    if sq is None or div is None:
        return None
    m2 = ctx.single_consumer(sq.outputs[0], "ReduceMean")
    if m2 is None or tuple(m2.attrs["axes"]) != axes or not m2.attrs["keepdims"]:
        return None
    add = ctx.single_consumer(m2.outputs[0], "Add")
    if add is None:
        return None
    eps = ctx.scalar(ctx.other(add, m2.outputs[0]))
    sqrt = ctx.single_consumer(add.outputs[0], "Sqrt")
    if eps is None or sqrt is None or div.inputs[1] != sqrt.outputs[0] \
            or not ctx.only_use(sqrt.outputs[0]):
        return None
    chain = [m1, sub, sq, m2, add, sqrt, div]
    tail = g.types[x].shape[axes[0]:]
    last, scale, bias = div, None, None

    def fits(v):
        s = g.types[v].shape
        return len(s) <= len(tail) and all(a in (1, b) for a, b in zip(s[::-1], tail[::-1]))

    mul = ctx.single_consumer(div.outputs[0], "Mul")
    if mul is not None and fits(ctx.other(mul, div.outputs[0])):
        scale, last = ctx.other(mul, div.outputs[0]), mul
        chain.append(mul)
        badd = ctx.single_consumer(mul.outputs[0], "Add")
        if badd is not None and fits(ctx.other(badd, mul.outputs[0])):
            bias, last = ctx.other(badd, mul.outputs[0]), badd
            chain.append(badd)
    dtype = g.types[x].dtype
    if scale is None:
        scale = g.add_const("ln_scale", np.ones(tail, dtype))
    if any(g.types[v].dtype != dtype for v in (scale, bias) if v):
        return None
    node = Node("LayerNormalization", (x, scale) + ((bias,) if bias else ()), last.outputs,
                {"axis": axes[0], "epsilon": eps}, name=last.name or "layernorm")
    return chain, node


# ---- Gelu ---------------------------------------------------------------------------------


def match_gelu(g: Graph, erf: Node, ctx: _Ctx):
    if erf.op != "Erf":
        return None
    pre = ctx.producers.get(erf.inputs[0])
    if pre is None or not ctx.only_use(erf.inputs[0]):
        return None
    x = pre.inputs[0]
    if pre.op == "Div" and _close(ctx.scalar(pre.inputs[1]), math.sqrt(2)):
        pass
    elif pre.op == "Mul" and (ctx.other(pre, x) is not None) and any(
            _close(ctx.scalar(v), 1 / math.sqrt(2)) for v in pre.inputs):
        x = next(v for v in pre.inputs if not _close(ctx.scalar(v), 1 / math.sqrt(2)))
    else:
        return None
    add = ctx.single_consumer(erf.outputs[0], "Add")
    if add is None or not _close(ctx.scalar(ctx.other(add, erf.outputs[0])), 1.0):
        return None
    a = add.outputs[0]
    m = ctx.single_consumer(a, "Mul")
    if m is None:
        return None
    chain = [pre, erf, add, m]
    o = ctx.other(m, a)
    if o == x:  # (x * (1 + erf)) * 0.5
        half = ctx.single_consumer(m.outputs[0], "Mul")
        if half is None or not _close(ctx.scalar(ctx.other(half, m.outputs[0])), 0.5):
            return None
        chain.append(half)
        last = half
    else:
        hp = ctx.producers.get(o)
        if _close(ctx.scalar(o), 0.5):  # ((1 + erf) * 0.5) * x
            xm = ctx.single_consumer(m.outputs[0], "Mul")
            if xm is None or ctx.other(xm, m.outputs[0]) != x:
                return None
            chain.append(xm)
            last = xm
        elif hp is not None and hp.op == "Mul" and ctx.only_use(o) and x in hp.inputs \
                and _close(ctx.scalar(ctx.other(hp, x)), 0.5):  # (x * 0.5) * (1 + erf)
            chain.insert(0, hp)
            last = m
        else:
            return None
    if g.types[last.outputs[0]] != g.types[x]:
        return None  # a broadcasting operand somewhere: not a plain Gelu
    node = Node("Gelu", (x,), last.outputs, {"approximate": "none"}, name=last.name or "gelu")
    return chain, node


RULES = [("layernorm", match_layernorm), ("gelu", match_gelu)]


def rewrite_patterns(graph: Graph) -> Graph:
    """Apply RULES until none matches; removed nodes' values disappear with them."""
    g = graph.copy()
    changed = True
    while changed:
        changed = False
        ctx = _Ctx(g)
        for n in g.nodes:
            for _name, match in RULES:
                found = match(g, n, ctx)
                if found is None:
                    continue
                chain, new = found
                drop = {id(c) for c in chain}
                last = max(g.nodes.index(c) for c in chain)
                nodes = []
                for k, m in enumerate(g.nodes):
                    if k == last:
                        nodes.append(new)
                    elif id(m) not in drop:
                        nodes.append(m)
                g.nodes = nodes
                kept = {v for m in nodes for v in (*m.inputs, *m.outputs)}
                for c in chain:
                    for v in c.outputs:
                        if v not in kept:
                            g.types.pop(v, None)
                changed = True
                break
            if changed:
                break
    return g

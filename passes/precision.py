"""fp16 storage on CPU targets (`precision="fp16"`): weights and the activations between
kernels are stored as float16, while every kernel computes and accumulates in float32 (on
targets with native half arithmetic, codegen/llvm_half.py then moves the arithmetic the fp16
policy allows to half).

Kernels are scheduled and lowered exactly as for fp32; then each kernel's loop IR is rewritten
so that loads of a half buffer convert to float32 (`fpext`, `vcvtph2ps` when vectorised) and
stores convert back (`fptrunc`, `vcvtps2ph`). Graph inputs and outputs stay float32, so the
user-facing contract does not change; the first kernel reads float32 and the last writes it.
"""

from __future__ import annotations

import numpy as np

from tilecc.expr import Cast, Load, Select, cast, children, rebuild
from tilecc.graph import Graph, Node
from tilecc.loopir import Allocate, Buffer, For, IfThenElse, PrimFunc, Seq, Store

PRECISIONS = ("fp32", "fp16")


class HalfStorage:
    """Which float32 tensors of a fused graph are stored as float16: all but the graph inputs
    and outputs and anything sharing storage with them (Reshape aliases)."""

    def __init__(self, graph: Graph, fused: Graph):
        parent: dict[str, str] = {}

        def find(v):
            while v in parent:
                v = parent[v]
            return v

        for n in fused.nodes:
            if n.op == "Reshape":
                a, b = find(n.inputs[0]), find(n.outputs[0])
                if a != b:
                    parent[b] = a
        full = {find(v) for v in (*graph.inputs, *graph.outputs)}
        types = dict(graph.types, **fused.types)
        self.half = {v for v, t in types.items() if t.dtype == "float32" and find(v) not in full}

    def flags(self, node: Node) -> tuple[bool, ...]:
        return tuple(v in self.half for v in (*node.inputs, *node.outputs))

    def nbytes(self, v: str, nbytes: int) -> int:
        return nbytes // 2 if v in self.half else nbytes

    def consts(self, consts: dict) -> dict:
        return {k: (a.astype(np.float16) if k in self.half and a.dtype == np.float32 else a)
                for k, a in consts.items()}


def half_storage(pf: PrimFunc, flags) -> PrimFunc:
    """pf with the flagged params (inputs then outputs, as in pf.params) stored as float16."""
    swap = {b: Buffer(b.name, b.shape, "float16", b.scope)
            for b, f in zip(pf.params, flags) if f and b.dtype == "float32"}
    if not swap:
        return pf
    memo: dict[int, object] = {}

    def ex(e):
        r = memo.get(id(e))
        if r is not None:
            return r
        if isinstance(e, Load) and e.buffer in swap:
            r = Cast("float32", Load(swap[e.buffer], ex(e.index)))
        elif isinstance(e, Select) and isinstance(e.a, Load) and e.a.buffer in swap:
            # Keep the load directly under the select: codegen guards it (padding reads).
            r = Cast("float32", Select(ex(e.cond), Load(swap[e.a.buffer], ex(e.a.index)),
                                       cast("float16", ex(e.b))))
        else:
            kids = children(e)
            new = tuple(ex(k) for k in kids)
            r = e if all(a is b for a, b in zip(kids, new)) else rebuild(e, new)
        memo[id(e)] = r
        return r

    def st(s):
        if isinstance(s, Store):
            if s.buffer in swap:
                return Store(swap[s.buffer], ex(s.index), cast("float16", ex(s.value)))
            return Store(s.buffer, ex(s.index), ex(s.value))
        if isinstance(s, Seq):
            return Seq([st(x) for x in s.stmts])
        if isinstance(s, For):
            return For(s.var, s.extent, s.kind, st(s.body))
        if isinstance(s, IfThenElse):
            return IfThenElse(ex(s.cond), st(s.then), st(s.other) if s.other else None)
        if isinstance(s, Allocate):
            return Allocate(s.buffer, st(s.body))
        raise TypeError(f"precision: no rule for {type(s).__name__}")

    params = [swap.get(b, b) for b in pf.params]
    return PrimFunc(pf.name, params, st(pf.body), dict(pf.attrs))

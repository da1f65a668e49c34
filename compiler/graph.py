"""Graph IR: typed nodes over named values, constants as numpy arrays, static shapes.

Ops use ONNX op names with every attribute made explicit and opset-independent (the
frontend normalises them), so passes and op definitions see one form per op.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tilecc.floatfmt import storage_dtype


class GraphError(Exception):
    """A graph that breaks an invariant (bad shapes, dangling values, ...)."""


@dataclass(frozen=True)
class TensorType:
    shape: tuple[int, ...]
    # numpy dtype name: "float32", "int64", "bool", ...; or a storage-only float format
    # ("bfloat16", "float8_e4m3fn", ...: tilecc/floatfmt.py), held as bits, computed in float32
    dtype: str

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * storage_dtype(self.dtype).itemsize

    def __str__(self) -> str:
        return f"{self.dtype}[{','.join(map(str, self.shape))}]"


def _freeze(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, np.ndarray):
        return ("ndarray", v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    return v


@dataclass(frozen=True)
class Node:
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict = field(default_factory=dict, hash=False, compare=False)
    name: str = ""

    @property
    def key(self) -> tuple:
        """Content key: op, attrs and inputs (for CSE and caches)."""
        return (self.op, self.inputs, _freeze(self.attrs))

    def replace(self, **kw) -> Node:
        return dataclasses.replace(self, **kw)


@dataclass
class Graph:
    """A static-shaped dataflow graph.

    `types` maps every value name (inputs, constants, node outputs) to its TensorType;
    `consts` maps constant names to numpy arrays; `nodes` are in topological order.
    """

    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    types: dict[str, TensorType]
    consts: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = "model"

    def copy(self) -> Graph:
        return Graph(list(self.nodes), list(self.inputs), list(self.outputs), dict(self.types),
                     dict(self.consts), self.name)

    def producers(self) -> dict[str, Node]:
        return {o: n for n in self.nodes for o in n.outputs}

    def consumers(self) -> dict[str, list[Node]]:
        out: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    out.setdefault(i, []).append(n)
        return out

    def fresh_name(self, base: str) -> str:
        i = 0
        name = base
        while name in self.types:
            i += 1
            name = f"{base}_{i}"
        return name

    def add_const(self, base: str, value: np.ndarray) -> str:
        name = self.fresh_name(base)
        value = np.asarray(value, order="C")  # keeps 0-d arrays 0-d
        self.consts[name] = value
        self.types[name] = TensorType(tuple(int(d) for d in value.shape), value.dtype.name)
        return name

    def __str__(self) -> str:
        lines = [f"graph {self.name}("]
        lines += [f"  %{i}: {self.types[i]}" for i in self.inputs]
        lines.append(") {")
        for n in self.nodes:
            ins = ", ".join(
                (f"%{i}" if i not in self.consts else f"${i}") if i else "_" for i in n.inputs)
            attrs = ", ".join(f"{k}={_short(v)}" for k, v in sorted(n.attrs.items()))
            outs = ", ".join(f"%{o}: {self.types.get(o, '?')}" for o in n.outputs)
            lines.append(f"  {outs} = {n.op}({ins}){' {' + attrs + '}' if attrs else ''}")
        lines.append(f"  return {', '.join('%' + o for o in self.outputs)}")
        lines.append("}")
        return "\n".join(lines)


def _short(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"array{list(v.shape)}"
    return repr(v)


def verify(graph: Graph) -> None:
    """Check the invariants every pass must keep; raise GraphError naming the first breach."""
    defined = set(graph.inputs) | set(graph.consts)
    for name in graph.inputs:
        if name not in graph.types:
            raise GraphError(f"input {name!r} has no type")
    for name, arr in graph.consts.items():
        t = graph.types.get(name)
        if t is None or tuple(arr.shape) != t.shape or arr.dtype.name != t.dtype:
            raise GraphError(f"constant {name!r}: type {t} does not match array "
                             f"{arr.dtype.name}{list(arr.shape)}")
    for n in graph.nodes:
        for i in n.inputs:
            if i and i not in defined:
                raise GraphError(f"node {n.name or n.op}: input {i!r} is not defined before use")
        for o in n.outputs:
            if o in defined:
                raise GraphError(f"node {n.name or n.op}: output {o!r} defined twice")
            if o not in graph.types:
                raise GraphError(f"node {n.name or n.op}: output {o!r} has no type")
            defined.add(o)
    for o in graph.outputs:
        if o not in defined:
            raise GraphError(f"graph output {o!r} is not produced")

"""Tuning tasks: the unique tunable workloads of a model, and their knob spaces.

A task is one fused kernel whose anchor template declares knobs. It carries a self-contained
JSON description of the fused node (sub-nodes, attrs, value types) so build workers in other
processes or on other machines rebuild exactly the same TE without the model.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import random
from dataclasses import dataclass

import numpy as np

from tilecc.graph import Graph, Node, TensorType


class ConfigSpace:
    """Cartesian product of knob values; configs are plain dicts {knob: value}."""

    def __init__(self, knobs: dict[str, list]):
        self.knobs = {k: list(v) for k, v in sorted(knobs.items())}
        self.names = list(self.knobs)
        self.size = math.prod(len(v) for v in self.knobs.values()) if self.knobs else 0

    def get(self, index: int) -> dict:
        cfg = {}
        for name in reversed(self.names):
            vals = self.knobs[name]
            index, r = divmod(index, len(vals))
            cfg[name] = vals[r]
        return dict(sorted(cfg.items()))

    def index(self, cfg: dict) -> int | None:
        idx = 0
        for name in self.names:
            vals = self.knobs[name]
            if name not in cfg or cfg[name] not in vals:
                return None
            idx = idx * len(vals) + vals.index(cfg[name])
        return idx

    def contains(self, cfg: dict) -> bool:
        """A config applies to this space: every knob it sets is a knob here with a legal
        value (missing knobs fall back to the template default)."""
        return all(k in self.knobs and v in self.knobs[k] for k, v in cfg.items())

    def sample(self, rng: random.Random) -> dict:
        return self.get(rng.randrange(self.size))

    def neighbour(self, cfg: dict, rng: random.Random) -> dict:
        """Change one knob to an adjacent value (the annealer's move)."""
        out = dict(cfg)
        name = rng.choice(self.names)
        vals = self.knobs[name]
        if len(vals) > 1:
            i = vals.index(out[name]) + rng.choice((-1, 1))
            out[name] = vals[min(max(i, 0), len(vals) - 1)]
        return out

    def __iter__(self):
        for combo in itertools.product(*self.knobs.values()):
            yield dict(zip(self.names, combo))


# ---- JSON encoding of node attributes (tuples and arrays survive the round trip) --------

def _enc(v):
    if isinstance(v, tuple):
        return {"__t": [_enc(x) for x in v]}
    if isinstance(v, list):
        return [_enc(x) for x in v]
    if isinstance(v, dict):
        return {"__d": [[k, _enc(x)] for k, x in v.items()]}
    if isinstance(v, np.ndarray):
        return {"__nd": [v.dtype.str, list(v.shape), base64.b64encode(v.tobytes()).decode()]}
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, Node):
        return {"__n": node_to_json(v)}
    return v


def _dec(v):
    if isinstance(v, list):
        return [_dec(x) for x in v]
    if isinstance(v, dict):
        if "__t" in v:
            return tuple(_dec(x) for x in v["__t"])
        if "__d" in v:
            return {k: _dec(x) for k, x in v["__d"]}
        if "__nd" in v:
            dt, shape, data = v["__nd"]
            return np.frombuffer(base64.b64decode(data), dtype=dt).reshape(shape).copy()
        if "__n" in v:
            return node_from_json(v["__n"])
    return v


def node_to_json(n: Node) -> dict:
    return {"op": n.op, "inputs": list(n.inputs), "outputs": list(n.outputs),
            "attrs": _enc(dict(n.attrs)), "name": n.name}


def node_from_json(d: dict) -> Node:
    return Node(d["op"], tuple(d["inputs"]), tuple(d["outputs"]), _dec(d["attrs"]), d["name"])


@dataclass
class Task:
    """One unique tunable kernel of a model."""

    name: str
    workload: str
    template: str
    template_version: int
    space: ConfigSpace
    flops: int  # multiply-adds of the anchor's reduction x 2
    weight: int  # occurrences in the model
    spec: dict  # JSON description: {"node": ..., "types": {...}}
    default_config: dict | None = None  # the default's knob values, where the template says

    def graph_node(self) -> tuple[Node, Graph]:
        node = node_from_json(self.spec["node"])
        types = {k: TensorType(tuple(s), dt) for k, (s, dt) in self.spec["types"].items()}
        return node, Graph([node], list(node.inputs), list(node.outputs), types)

    def to_json(self) -> dict:
        return {"name": self.name, "workload": self.workload, "template": self.template,
                "template_version": self.template_version, "knobs": self.space.knobs,
                "flops": self.flops, "weight": self.weight, "spec": self.spec,
                "default_config": self.default_config}

    @staticmethod
    def from_json(d: dict) -> Task:
        return Task(d["name"], d["workload"], d["template"], d["template_version"],
                    ConfigSpace(d["knobs"]), d["flops"], d["weight"], d["spec"],
                    d.get("default_config"))


def kernel_flops(outputs) -> int:
    """2 x multiply-adds of every reduction in the kernel, counted from the TE (output size x
    product of reduction extents); a kernel with no reduction counts one op per output."""
    from tilecc import te

    total = 0
    for t in te.post_order(list(outputs)):
        red = getattr(t.op, "reduce", None)
        if red is not None:
            total += 2 * math.prod(t.shape) * math.prod(a.extent for a in red.axes)
    return total or sum(math.prod(t.shape) for t in outputs)


def task_from_node(node: Node, graph: Graph, target) -> Task | None:
    """A Task for a fused node whose anchor template has knobs, else None."""
    from tilecc.build import DefaultConfigs, build_schedule

    _, args, info, stage = build_schedule(node, graph, target, DefaultConfigs())
    if stage is None or info.workload is None:
        return None
    space = ConfigSpace(info.space or {})
    if space.size <= 1:
        return None
    names = set(node.inputs) | set(node.outputs)
    for m in node.attrs["nodes"]:
        names |= set(m.inputs) | set(m.outputs)
    types = {k: [list(graph.types[k].shape), graph.types[k].dtype] for k in names
             if k and k in graph.types}
    spec = {"node": node_to_json(node), "types": types}
    return Task(node.name, info.workload, info.template, _template_version(info.workload),
                space, kernel_flops(args[len(node.inputs):]), 1, spec, info.resolved)


def _template_version(workload: str) -> int:
    return int(json.loads(workload)["version"])


def extract_tasks(model, target, input_shapes=None, opt_level: int = 2) -> list[Task]:
    """Unique tunable workloads of a model, each weighted by its occurrences."""
    from tilecc.build import prepare_graph
    from tilecc.passes.fuse import fuse_ops
    from tilecc.targets import get_target
    from tilecc.topi.extern import get_extern

    target = get_target(target)
    graph, _ = prepare_graph(model, input_shapes, opt_level, target=target)
    fused = fuse_ops(graph)
    tasks: dict[str, Task] = {}
    for node in fused.nodes:
        if node.op == "Reshape" or get_extern(node.attrs["anchor"]) is not None:
            continue  # aliases, and hand-written extern kernels (no knobs to tune)
        t = task_from_node(node, fused, target)
        if t is None:
            continue
        # Logs key configs by workload alone, so kernels differing only in their epilogue
        # share one task (tuned on the first of them).
        if t.workload in tasks:
            tasks[t.workload].weight += 1
        else:
            tasks[t.workload] = t
    return list(tasks.values())

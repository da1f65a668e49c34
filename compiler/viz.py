"""Pictures of a compiled model, from its model.json alone: the optimized graph (one box per
kernel call, listing its fused ops; edges carry dtype[shape]) and the memory plan (which
intermediate buffers share arena bytes over which steps).

Formats: DOT (Graphviz; fused groups are clusters), SVG (laid out here: layers by longest
path from the inputs), HTML (self-contained: the SVGs inline plus the buffer table; no
network), ONNX (fused groups as `tilecc` domain nodes listing their member ops, so Netron
shows the optimized graph; weights come from params.bin).
"""

from __future__ import annotations

import html
import re
import zlib
from dataclasses import dataclass, field

_TYPE = re.compile(r"([a-z0-9]+)\[([0-9,]*)\]\Z")


@dataclass
class Step:
    index: int
    kernel: str
    ops: list[str]
    inputs: list[str]
    outputs: list[str]
    flops: int = 0
    weights: list[str] = field(default_factory=list)


@dataclass
class ModelGraph:
    """The kernel-level graph of an artifact: steps in run order, plus value types."""

    name: str
    inputs: list[str]
    outputs: list[tuple[str, str]]  # (value, user-facing name)
    steps: list[Step]
    types: dict[str, str]
    aliases: dict[str, str]
    params: set[str]
    arena: dict

    concats: dict[str, list[str]] = field(default_factory=dict)

    def producers(self, value: str) -> list[str]:
        """Node ids that make `value`: "in:NAME" or "k:INDEX" (aliases resolved; a concat
        written in place is made by the makers of its slices)."""
        seen = set()
        while value in self.aliases and value not in seen:
            seen.add(value)
            value = self.aliases[value]
        if value in self.concats:
            return [p for v in self.concats[value] for p in self.producers(v)]
        if value in self.inputs:
            return [f"in:{value}"]
        return [f"k:{s.index}" for s in self.steps if value in s.outputs][:1]


def model_graph(meta: dict) -> ModelGraph:
    arena = meta.get("arena") or {}
    params = {p["name"] for p in arena.get("params") or []}
    types: dict[str, str] = {}
    for spec in meta["inputs"]:
        types[spec["name"]] = f"{spec['dtype']}[{','.join(map(str, spec['shape']))}]"
    steps = []
    for k, kern in enumerate(meta.get("kernels") or []):
        types.update(kern.get("types") or {})
        ins = list(kern.get("inputs", []))
        steps.append(Step(k, kern["kernel"], list(kern.get("ops", [])),
                          [i for i in ins if i not in params], list(kern.get("outputs", [])),
                          int(kern.get("flops") or 0), [i for i in ins if i in params]))
    values = arena.get("output_values") or [None] * len(meta["outputs"])
    last = {o: s for s in steps for o in s.outputs}
    outputs = []
    for spec, v in zip(meta["outputs"], values):
        if v is None:  # older artifacts: the step whose output has the same type, last
            want = f"{spec['dtype']}[{','.join(map(str, spec['shape']))}]"
            v = next((o for o in reversed(list(last)) if types.get(o) == want), spec["name"])
        outputs.append((v, spec["name"]))
    return ModelGraph(meta["name"], [s["name"] for s in meta["inputs"]], outputs, steps, types,
                      dict(arena.get("aliases") or {}), params, arena,
                      dict(arena.get("concats") or {}))


def _edges(g: ModelGraph) -> list[tuple[str, str, str]]:
    out = []
    for s in g.steps:
        for v in s.inputs:
            for src in g.producers(v):
                out.append((src, f"k:{s.index}", g.types.get(v, "?")))
    for v, name in g.outputs:
        for src in g.producers(v):
            out.append((src, f"out:{name}", g.types.get(v, "?")))
    return out


def _node_lines(g: ModelGraph, node: str) -> list[str]:
    kind, _, key = node.partition(":")
    if kind == "in":
        return [f"input {key}", g.types.get(key, "")]
    if kind == "out":
        return [f"output {key}"]
    s = g.steps[int(key)]
    lines = [f"#{s.index} {s.kernel}", *s.ops]
    if s.weights:
        lines.append(f"+{len(s.weights)} weight(s)")
    if s.flops:
        lines.append(f"{s.flops / 1e6:.2f} MFLOP")
    return lines


# -- DOT -------------------------------------------------------------------------------------

def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(meta: dict) -> str:
    g = model_graph(meta)
    lines = [f"digraph {_q(g.name)} {{", "  rankdir=TB;", '  node [fontname="monospace"];']
    for name in g.inputs:
        lines.append(f"  {_q('in:' + name)} [shape=ellipse, label={_q('input ' + name)}];")
    for _, name in g.outputs:
        lines.append(f"  {_q('out:' + name)} [shape=ellipse, label={_q('output ' + name)}];")
    for s in g.steps:
        # A fused group is a cluster of its member ops, chained in order.
        lines.append(f"  subgraph cluster_{s.index} {{")
        lines.append(f"    label={_q(f'#{s.index} {s.kernel}')}; style=rounded;")
        for j, op in enumerate(s.ops):
            lines.append(f"    {_q(f'k:{s.index}:{j}')} [shape=box, label={_q(op)}];")
        for j in range(len(s.ops) - 1):
            lines.append(f"    {_q(f'k:{s.index}:{j}')} -> {_q(f'k:{s.index}:{j + 1}')};")
        lines.append("  }")

    def port(node: str, head: bool) -> str:
        if node.startswith("k:"):
            s = g.steps[int(node[2:])]
            return _q(f"{node}:{0 if head else max(len(s.ops) - 1, 0)}")
        return _q(node)

    for src, dst, label in _edges(g):
        lines.append(f"  {port(src, False)} -> {port(dst, True)} [label={_q(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- SVG -------------------------------------------------------------------------------------

_CHAR_W, _LINE_H, _ROW_GAP, _COL_GAP = 7.2, 15, 60, 30


def _layout(g: ModelGraph) -> tuple[dict[str, tuple[float, float, float, float]], float, float]:
    nodes = [f"in:{n}" for n in g.inputs] + [f"k:{s.index}" for s in g.steps] + \
            [f"out:{n}" for _, n in g.outputs]
    edges = _edges(g)
    layer = {n: 0 for n in nodes}
    for _ in range(len(nodes)):  # longest path; edges go forward in run order
        changed = False
        for src, dst, _ in edges:
            if layer[dst] < layer[src] + 1:
                layer[dst], changed = layer[src] + 1, True
        if not changed:
            break
    rows: dict[int, list[str]] = {}
    for n in nodes:
        rows.setdefault(layer[n], []).append(n)
    size = {}
    for n in nodes:
        lines = _node_lines(g, n)
        size[n] = (max(len(x) for x in lines) * _CHAR_W + 16, len(lines) * _LINE_H + 10)
    widths = {r: sum(size[n][0] for n in ns) + _COL_GAP * (len(ns) - 1) for r, ns in rows.items()}
    total_w = max(widths.values()) + 40
    boxes, y = {}, 20.0
    for r in sorted(rows):
        x = (total_w - widths[r]) / 2
        h = max(size[n][1] for n in rows[r])
        for n in rows[r]:
            w, hh = size[n]
            boxes[n] = (x, y, w, hh)
            x += w + _COL_GAP
        y += h + _ROW_GAP
    return boxes, total_w, y


def graph_svg(meta: dict) -> str:
    g = model_graph(meta)
    boxes, width, height = _layout(g)
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
            f'height="{height:.0f}" font-family="monospace" font-size="12">'),
           ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
            'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/>'
            '</marker></defs>')]
    for src, dst, label in _edges(g):
        x0, y0, w0, h0 = boxes[src]
        x1, y1, w1, _ = boxes[dst]
        ax, ay, bx, by = x0 + w0 / 2, y0 + h0, x1 + w1 / 2, y1
        out.append(f'<line x1="{ax:.1f}" y1="{ay:.1f}" x2="{bx:.1f}" y2="{by:.1f}" '
                   'stroke="#555" marker-end="url(#arrow)"/>')
        out.append(f'<text x="{(ax + bx) / 2 + 4:.1f}" y="{(ay + by) / 2:.1f}" fill="#236" '
                   f'font-size="10">{html.escape(label)}</text>')
    for n, (x, y, w, h) in boxes.items():
        kind = n.split(":")[0]
        fill = {"in": "#e3f2e1", "out": "#fde8d7", "k": "#e8eef9"}[kind]
        rx = 14 if kind != "k" else 4
        out.append(f'<g><title>{html.escape(n)}</title><rect x="{x:.1f}" y="{y:.1f}" '
                   f'width="{w:.1f}" height="{h:.1f}" rx="{rx}" fill="{fill}" stroke="#333"/>')
        for j, line in enumerate(_node_lines(g, n)):
            weight = ' font-weight="bold"' if j == 0 else ""
            out.append(f'<text x="{x + 8:.1f}" y="{y + 17 + j * _LINE_H:.1f}"{weight}>'
                       f'{html.escape(line)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _color(name: str) -> str:
    h = zlib.crc32(name.encode()) % 360
    return f"hsl({h},60%,70%)"


def memory_svg(meta: dict) -> str:
    """Arena buffers as rectangles: x = steps alive, y = byte range. Overlapping x with
    disjoint y is reuse at work."""
    arena = meta.get("arena") or {}
    tensors = arena.get("tensors") or []
    steps = max(len(meta.get("kernels") or []), 1)
    total = max(int(meta.get("workspace_size") or 0), 1)
    w, h, left, top = 720, 320, 70, 20
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{w + left + 20}" '
            f'height="{h + top + 40}" font-family="monospace" font-size="11">'),
           f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="#fafafa" stroke="#999"/>']
    for t in tensors:
        x = left + w * t["first"] / steps
        tw = max(w * (t["last"] - t["first"] + 1) / steps, 1)
        y = top + h * t["offset"] / total
        th = max(h * t["nbytes"] / total, 1)
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{tw:.1f}" height="{th:.1f}" '
                   f'fill="{_color(t["name"])}" stroke="#333" stroke-width="0.5"><title>'
                   f'{html.escape(t["name"])}: {t["nbytes"]} B at offset {t["offset"]}, steps '
                   f'{t["first"]}..{t["last"]}</title></rect>')
    out.append(f'<text x="{left}" y="{top + h + 16}">step 0</text>')
    out.append(f'<text x="{left + w - 60}" y="{top + h + 16}">step {steps - 1}</text>')
    out.append(f'<text x="4" y="{top + 10}">0</text>')
    out.append(f'<text x="4" y="{top + h}">{total} B</text>')
    out.append(f'<text x="{left}" y="{top + h + 32}">arena offset (down) over kernel steps '
               '(right); hover a block for its tensor</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def to_svg(meta: dict) -> str:
    return graph_svg(meta)


def to_html(meta: dict) -> str:
    arena = meta.get("arena") or {}
    tensors = sorted(arena.get("tensors") or [], key=lambda t: (t["offset"], t["first"]))
    rows = "\n".join(
        f"<tr><td>{html.escape(t['name'])}</td><td>{t['offset']}</td><td>{t['nbytes']}</td>"
        f"<td>{t['first']}</td><td>{t['last']}</td></tr>" for t in tensors)
    naive = arena.get("naive_bytes")
    ws = meta.get("workspace_size", 0)
    summary = f"{len(meta.get('kernels') or [])} kernel calls; workspace {ws} B"
    if naive:
        summary += f" for {naive} B of intermediate tensors ({100 * ws / naive:.0f}%)"
    name = html.escape(meta["name"])
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>tilecc: {name}</title>
<style>body{{font-family:sans-serif;margin:20px}} table{{border-collapse:collapse}}
td,th{{border:1px solid #bbb;padding:2px 8px;font-family:monospace;text-align:right}}
td:first-child{{text-align:left}}</style></head><body>
<h1>{name}</h1>
<p>{html.escape(summary)}; target {html.escape(str((meta.get('target') or {}).get('name', '?')))}
</p>
<h2>Optimized graph</h2>
<p>One box per kernel call (run order #), listing the ops fused into it; edges carry
dtype[shape].</p>
{graph_svg(meta)}
<h2>Memory plan</h2>
{memory_svg(meta)}
<table><tr><th>tensor</th><th>offset</th><th>bytes</th><th>first step</th><th>last step</th>
</tr>
{rows}
</table>
</body></html>
"""


# -- ONNX ------------------------------------------------------------------------------------

def _parse_type(t: str) -> tuple[str, list[int]]:
    m = _TYPE.match(t)
    if not m:
        raise ValueError(f"bad type string {t!r}")
    dims = [int(d) for d in m.group(2).split(",") if d]
    return m.group(1), dims


def _sorted(nodes: list, available: set[str]) -> list:
    """Nodes in an order where every input is made before it is read (ONNX requires it)."""
    out, pending, have = [], list(nodes), set(available)
    while pending:
        ready = [n for n in pending if all(i in have for i in n.input if i)]
        if not ready:  # cannot happen for a compiled model; keep the rest in run order
            ready = pending[:1]
        for n in ready:
            out.append(n)
            have.update(n.output)
            pending.remove(n)
    return out


def to_onnx(meta: dict, params: bytes | None = None):
    """The optimized graph as an ONNX model: each kernel call is a node of domain `tilecc`
    (op type = its member ops joined by '_', attributes `ops`, `kernel`, `flops`), Reshape
    aliases are `tilecc.Alias` nodes, weights are initializers read from `params`."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    g = model_graph(meta)

    def vi(name: str, t: str):
        dtype, dims = _parse_type(t)
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        return helper.make_tensor_value_info(name, elem, dims)

    # Output values take their user-facing names; an internal value that already has such a
    # name (e.g. the Reshape the final Copy reads) moves aside.
    used = set(g.types) | set(g.aliases) | set(g.concats) | {o for s in g.steps
                                                              for o in s.outputs}
    ren: dict[str, str] = {}
    for v, name in g.outputs:
        if v != name:
            if name in used:
                ren[name] = f"{name}.internal"
            ren[v] = name

    def r(v: str) -> str:
        return ren.get(v, v)

    types = {r(v): t for v, t in g.types.items()}
    nodes, inits = [], []
    for alias, src in g.aliases.items():
        nodes.append(helper.make_node("Alias", [r(src)], [r(alias)], name=f"alias_{alias}",
                                      domain="tilecc"))
    for out, parts in g.concats.items():  # producers wrote the slices: no kernel call
        nodes.append(helper.make_node("InPlaceConcat", [r(v) for v in parts], [r(out)],
                                      name=f"concat_{out}", domain="tilecc"))
    for s in g.steps:
        kern = (meta.get("kernels") or [])[s.index]
        ins = [r(i) for i in kern.get("inputs", [])]
        nodes.append(helper.make_node("_".join(s.ops) or "Kernel", ins,
                                      [r(o) for o in s.outputs],
                                      name=f"#{s.index}_{s.kernel}", domain="tilecc",
                                      ops=s.ops, kernel=s.kernel, flops=s.flops))
    for p in (g.arena.get("params") or []) if params is not None else []:
        dtype, dims = _parse_type(p["type"])
        dt = np.dtype(dtype)
        count = int(np.prod(dims, dtype=np.int64))
        raw = np.frombuffer(params, dtype=np.uint8 if dt == np.bool_ else dt, count=count,
                            offset=p["offset"])
        inits.append(numpy_helper.from_array(raw.astype(dt).reshape(dims), p["name"]))
    outputs = [vi(name, types.get(name, "float32[]")) for _, name in g.outputs]
    inputs = [vi(n, types[n]) for n in g.inputs]
    known = set(g.inputs) | {n for _, n in g.outputs}
    value_info = [vi(v, t) for v, t in sorted(types.items()) if v not in known
                  and v not in g.params]
    graph = helper.make_graph(_sorted(nodes, set(g.inputs) | g.params), g.name, inputs,
                              outputs, inits, value_info=value_info)
    model = helper.make_model(graph, producer_name="tilecc",
                              opset_imports=[helper.make_opsetid("", 17),
                                             helper.make_opsetid("tilecc", 1)])
    model.ir_version = 8
    if params is None:
        # Without weights the params are dangling names: declare them as graph inputs.
        for p in g.arena.get("params") or []:
            model.graph.input.append(vi(p["name"], p["type"]))
    onnx.checker.check_model(model)
    return model

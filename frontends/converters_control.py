"""Control flow: If with a constant condition is inlined, Loop with a constant trip count and
Scan (its trip count is the static scan-axis length) unrolled, so the compiled graph stays a
static dataflow graph. Every subgraph converted counts against one budget
(onnx_builder.MAX_UNROLLED_NODES): nested loops multiply."""

from __future__ import annotations

import numpy as np

from .onnx_builder import MAX_UNROLLED_NODES, Builder, converter
from .onnx_converters import _axis, _ints, _reshape

MAX_UNROLL = 4096  # Loop iterations tilecc unrolls before asking for a smaller trip count


def _inline_graph(b: Builder, body, bindings: dict[str, str]) -> list[str]:
    """Convert the nodes of subgraph `body` in place; returns the graph values of its outputs.
    `bindings` maps the subgraph's input names to graph values; other names resolve in the
    enclosing scopes (b.env)."""
    from onnx import numpy_helper

    from .onnx import DEFAULT_DOMAINS, _attrs
    from .onnx_builder import pick_converter

    _check_subgraph_supported(b, body)
    b.unrolled_nodes += len(body.node)
    if b.unrolled_nodes > MAX_UNROLLED_NODES:
        raise b.error(f"unrolling needs more than {MAX_UNROLLED_NODES} subgraph nodes in total "
                      "(nested Loops multiply their trip counts); tilecc unrolls loops at "
                      "compile time: lower the trip counts or the nesting")
    outer_env, outer_where, outer_name = b.env, b.where, b.node_name
    env = dict(outer_env)
    env.update(bindings)
    for t in body.initializer:
        env[t.name] = b.add_const(numpy_helper.to_array(t), t.name)
    b.env = env
    try:
        for k, node in enumerate(body.node):
            label = repr(node.name) if node.name else f"#{k}"
            b.where = f"{outer_where}, subgraph {body.name!r} node {label} ({node.op_type})"
            fn = pick_converter(node.op_type, b.opset) if node.domain in DEFAULT_DOMAINS \
                else None
            if fn is None:
                raise b.error(f"op {node.op_type} (opset {b.opset}) has no converter")
            ins = b.resolve_inputs(node.input, "is not defined in the subgraph or an "
                                   "enclosing scope")
            b.node_name = node.name
            outs = fn(b, ins, len(node.output), **_attrs(node))
            for name, v in zip(node.output, outs):
                if name:
                    env[name] = v
        missing = [o.name for o in body.output if o.name not in env]
        if missing:
            raise b.error(f"subgraph outputs {missing} are not produced")
        return [env[o.name] for o in body.output]
    finally:
        b.env, b.where, b.node_name = outer_env, outer_where, outer_name


def _check_subgraph_supported(b: Builder, body) -> None:
    """Every unsupported op of the subgraph (and its nested subgraphs), reported at once."""
    from onnx import AttributeProto

    from .onnx import DEFAULT_DOMAINS
    from .onnx_builder import UnsupportedOpsError, pick_converter

    missing: dict[str, list[str]] = {}

    def visit(g):
        for k, node in enumerate(g.node):
            if node.domain not in DEFAULT_DOMAINS or pick_converter(node.op_type,
                                                                    b.opset) is None:
                key = node.op_type if node.domain in DEFAULT_DOMAINS \
                    else f"{node.domain}.{node.op_type}"
                missing.setdefault(key, []).append(
                    f"{node.name!r} in subgraph {g.name!r}" if node.name
                    else f"#{k} in subgraph {g.name!r}")
            for a in node.attribute:
                if a.type == AttributeProto.GRAPH:
                    visit(a.g)
    visit(body)
    if missing:
        raise UnsupportedOpsError(missing, b.opset)


def _unrolled_size(body) -> int:
    """Nodes converting `body` once takes, nested Loops unrolled: a Loop whose trip count is an
    initializer of its body's graph counts trip x its body; other trip counts are not known
    yet and count once (their own Loop checks again when it is reached)."""
    from onnx import AttributeProto, numpy_helper

    consts = {t.name: t for t in body.initializer}
    total = 0
    for node in body.node:
        inner = sum(_unrolled_size(a.g) for a in node.attribute
                    if a.type == AttributeProto.GRAPH)
        trip = 1
        if node.op_type == "Loop" and node.input and node.input[0] in consts:
            trip = max(1, int(numpy_helper.to_array(consts[node.input[0]]).reshape(-1)[0]))
        total += 1 + trip * inner
        if total > MAX_UNROLLED_NODES:
            break  # enough to refuse; nested sizes can grow exponentially
    return total


@converter("If", 1)
def If(b, ins, n_out, *, then_branch, else_branch):
    cond = b.static(ins[0], "cond (tilecc inlines the branch a constant condition takes)")
    taken = then_branch if bool(np.asarray(cond).reshape(-1)[0]) else else_branch
    outs = _inline_graph(b, taken, {})
    return outs[:n_out]


@converter("Loop", 1)
def Loop(b, ins, n_out, *, body):
    trip = int(np.asarray(b.static(ins[0], "M (trip count)")).reshape(-1)[0]) \
        if ins and ins[0] else None
    cond = True
    if len(ins) > 1 and ins[1]:
        c = b.static(ins[1], "cond (initial loop condition)")
        cond = bool(np.asarray(c).reshape(-1)[0])
    carried = list(ins[2:])
    n_carried = len(carried)
    limit = MAX_UNROLL if trip is None else trip
    if trip is not None and trip > MAX_UNROLL:
        raise b.error(f"trip count {trip} exceeds the unroll limit {MAX_UNROLL}")
    # Before the first iteration: nested loops are refused at once, not after converting
    # the budget's worth of bodies one by one.
    need = limit * _unrolled_size(body)
    if b.unrolled_nodes + need > MAX_UNROLLED_NODES:
        raise b.error(f"unrolling would convert about {need} subgraph nodes, over the budget "
                      f"of {MAX_UNROLLED_NODES} (nested Loops multiply their trip counts); "
                      "tilecc unrolls loops at compile time: lower the trip counts or the "
                      "nesting")
    names = [i.name for i in body.input]
    scans: list[list[str]] = []
    it = 0
    while cond and it < limit:
        binds = {names[0]: b.add_const(np.array(it, np.int64), "iter"),
                 names[1]: b.add_const(np.array(cond), "cond")}
        binds.update(zip(names[2:], carried))
        outs = _inline_graph(b, body, binds)
        c = b.const(outs[0])
        if c is None:
            raise b.error("the loop body computes its continue-condition at run time "
                          "(data-dependent termination); tilecc unrolls only loops whose "
                          "condition folds to a constant")
        cond = bool(np.asarray(c).reshape(-1)[0])
        carried = outs[1:1 + n_carried]
        scans.append(outs[1 + n_carried:])
        it += 1
    if trip is None and cond:
        raise b.error(f"the loop did not stop within {MAX_UNROLL} iterations")
    n_scan = len(body.output) - 1 - n_carried
    results = list(carried)
    for k in range(n_scan):
        if not scans:
            raise b.error("scan outputs of a loop that runs zero times have no static shape")
        parts = [_reshape(b, s[k], (1,) + b.shape(s[k])) for s in scans]
        results.append(parts[0] if len(parts) == 1 else
                       b.emit("Concat", parts, {"axis": 0})[0])
    return results[:n_out]


# ---- Scan (unrolled: the trip count is the static scan-axis length) -------------------


def _take(b: Builder, x: str, axis: int, i: int) -> str:
    """x[..., i, ...] along `axis`, the axis removed."""
    shape = b.shape(x)
    t = b.emit("Slice", [x], {"starts": tuple(i if a == axis else 0 for a in range(len(shape))),
                              "ends": tuple(i + 1 if a == axis else d
                                            for a, d in enumerate(shape)),
                              "steps": (1,) * len(shape)})[0]
    return _reshape(b, t, shape[:axis] + shape[axis + 1:])


def _stack(b: Builder, parts: list[str], axis: int) -> str:
    shape = b.shape(parts[0])
    parts = [_reshape(b, p, shape[:axis] + (1,) + shape[axis:]) for p in parts]
    return parts[0] if len(parts) == 1 else b.emit("Concat", parts, {"axis": axis})[0]


def _scan(b, states, scans, body, in_axes, in_dirs, out_axes, out_dirs):
    if not scans:
        raise b.error("Scan needs at least one scan input")
    trip = b.shape(scans[0])[in_axes[0]]
    if any(b.shape(s)[a] != trip for s, a in zip(scans, in_axes)):
        raise b.error("scan inputs differ in their scan-axis length")
    if trip > MAX_UNROLL:
        raise b.error(f"scan length {trip} exceeds the unroll limit {MAX_UNROLL}")
    names = [i.name for i in body.input]
    n_state = len(states)
    outs_per_step: list[list[str]] = []
    for t in range(trip):
        binds = dict(zip(names[:n_state], states))
        for name, s, a, d in zip(names[n_state:], scans, in_axes, in_dirs):
            binds[name] = _take(b, s, a, trip - 1 - t if d else t)
        outs = _inline_graph(b, body, binds)
        states = outs[:n_state]
        outs_per_step.append(outs[n_state:])
    results = list(states)
    for k in range(len(body.output) - n_state):
        parts = [o[k] for o in outs_per_step]
        if out_dirs[k]:
            parts = parts[::-1]
        rank = len(b.shape(parts[0])) + 1
        results.append(_stack(b, parts, _axis(b, out_axes[k], rank)))
    return results


@converter("Scan", 9)
def Scan(b, ins, n_out, *, body, num_scan_inputs, scan_input_axes=None,
         scan_input_directions=None, scan_output_axes=None, scan_output_directions=None):
    m = int(num_scan_inputs)
    states, scans = list(ins[:len(ins) - m]), list(ins[len(ins) - m:])
    n_scan_out = len(body.output) - len(states)
    in_axes = [_axis(b, a, len(b.shape(s))) for a, s in
               zip(scan_input_axes or (0,) * m, scans)]
    return _scan(b, states, scans, body, in_axes, scan_input_directions or (0,) * m,
                 scan_output_axes or (0,) * n_scan_out,
                 scan_output_directions or (0,) * n_scan_out)[:n_out]


@converter("Scan", 8)
def Scan8(b, ins, n_out, *, body, num_scan_inputs, directions=None):
    # Opset 8 adds a leading batch axis to every input and scans axis 1; each batch entry is
    # scanned separately and the results are stacked back on axis 0.
    m = int(num_scan_inputs)
    lens, rest = ins[0], list(ins[1:])
    states, scans = rest[:len(rest) - m], rest[len(rest) - m:]
    batch, seq = b.shape(scans[0])[:2]
    if lens:
        got = _ints(b.static(lens, "sequence_lens"))
        if any(v != seq for v in got):
            raise b.error("sequence_lens must all equal the scan length (no ragged batches)")
    n_scan_out = len(body.output) - len(states)
    per_batch = []
    for n in range(batch):
        per_batch.append(_scan(b, [_take(b, s, 0, n) for s in states],
                               [_take(b, s, 0, n) for s in scans], body, (0,) * m,
                               directions or (0,) * m, (0,) * n_scan_out, (0,) * n_scan_out))
    return [_stack(b, [r[k] for r in per_batch], 0)
            for k in range(len(per_batch[0]))][:n_out]

"""Model validation before conversion: structural problems are found here, before any
converter runs or any tensor is allocated, and reported with the node or value they concern.

`validate_model(proto)` checks, in order:
- every value is defined once (graph input, initializer or node output) and every node input
  and graph output is defined somewhere;
- the graph has no cycle (nodes out of topological order are sorted, not refused);
- initializers: known data type, non-negative dims, data size matching the dims, no missing
  external data;
- graph inputs: declared sizes within the memory limit (dims <= 0 are dynamic: from_onnx
  asks for their size);
- nodes of the default domain: input/output counts and attribute names, types and presence
  against the op's ONNX schema for the model's opset, and input element types against the
  schema's type constraints (types of intermediate values come from ONNX type inference);
- memory: no tensor (declared or inferred later, see `check_tensor_types`) and not all the
  initializers together may exceed `tilecc.errors.memory_limit()` bytes, so an absurd shape is refused
  before numpy tries to allocate it.

Problems of one kind are collected and reported together (at most MAX_LISTED of them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import onnx
from onnx import defs, helper

from tilecc.errors import ModelError, UnsupportedError, check_bytes
from tilecc.floatfmt import FORMATS

DEFAULT_DOMAINS = ("", "ai.onnx")
MAX_LISTED = 8
# Element types codegen can load, store and compute on (codegen/llvm.py's TYPES).
COMPUTE_DTYPES = ("float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8",
                  "uint16", "uint32", "uint64", "bool", *FORMATS)

_TYPED_FIELDS = ("float_data", "int32_data", "int64_data", "double_data", "uint64_data")


def check_tensor_types(types: Iterable, where: str) -> None:
    """Check inferred (shape, dtype) types: no negative dims, none above the memory limit.
    Called by the frontend's builder for every value it creates, before folding allocates."""
    for t in types:
        if t.dtype not in COMPUTE_DTYPES:
            raise UnsupportedError(f"{where}: tensors of type {t.dtype} are not supported "
                                   f"(tilecc computes on {', '.join(COMPUTE_DTYPES)})")
        if any(d < 0 for d in t.shape):
            raise ModelError(f"{where}: inferred shape {list(t.shape)} has a negative dimension; "
                             "check the node's attributes and constant inputs")
        nbytes = math.prod(int(d) for d in t.shape) * np.dtype(t.dtype).itemsize
        check_bytes(nbytes, f"{where}: a {t.dtype}{list(t.shape)} tensor")


def _label(node: onnx.NodeProto, index: int) -> str:
    name = repr(node.name) if node.name else f"#{index}"
    return f"node {name} ({node.op_type})"


def _raise(kind: type, title: str, problems: list[str], hint: str) -> None:
    if not problems:
        return
    shown = problems[:MAX_LISTED]
    more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    raise kind(f"invalid model: {title}:\n" + "\n".join(f"  {p}" for p in shown) + more +
               f"\n{hint}")


def _opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in DEFAULT_DOMAINS:
            return imp.version
    return 1


def validate_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """Validate `model`; returns it, or a copy whose nodes are put in topological order."""
    g = model.graph
    _check_initializers(g)
    _check_inputs(g)
    order = _check_values(g)
    _check_nodes(g, _opset(model))
    _check_types(model, _opset(model))
    if order != list(range(len(g.node))):
        model = _reordered(model, order)
    return model


def _check_initializers(g: onnx.GraphProto) -> None:
    problems, total = [], 0
    for t in g.initializer:
        what = f"initializer {t.name!r}"
        try:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type))
        except (KeyError, TypeError, ValueError):
            problems.append(f"{what}: unknown data type {t.data_type}")
            continue
        if any(d < 0 for d in t.dims):
            problems.append(f"{what}: negative dimension in {list(t.dims)}")
            continue
        count = math.prod(t.dims)
        if t.data_location == onnx.TensorProto.EXTERNAL:
            problems.append(f"{what}: its external data was not loaded (is the data file next "
                            "to the model?)")
            continue
        check_bytes(count * dtype.itemsize, what)
        total += count * dtype.itemsize
        if dtype.kind in "OSU":
            continue  # strings: tilecc never computes on them, the converter reports them
        if t.HasField("raw_data"):
            have, want = len(t.raw_data), count * dtype.itemsize
            unit = "bytes"
        else:
            fields = [f for f in _TYPED_FIELDS if len(getattr(t, f))]
            have = sum(len(getattr(t, f)) for f in fields)
            # complex values take two slots; bool/int8/int16/float16 sit one per int32 slot
            want = count * (2 if dtype.kind == "c" else 1)
            unit = "values"
        if have != want:
            problems.append(f"{what}: dims {list(t.dims)} need {want} {unit} of {dtype.name} "
                            f"data, it holds {have}")
    _raise(ModelError, "bad initializers", problems,
           "re-export the model; the weights are truncated or do not match their shapes")
    check_bytes(total, "the model's initializers together")


def _check_inputs(g: onnx.GraphProto) -> None:
    inits = {t.name for t in g.initializer}
    problems = []
    for vi in g.input:
        if vi.name in inits or not vi.type.tensor_type.HasField("shape"):
            continue
        # -1 (and 0) are how some exporters mark a dynamic dim; from_onnx asks for a size.
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim
                if d.HasField("dim_value") and d.dim_value > 0]
        try:
            itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(
                vi.type.tensor_type.elem_type)).itemsize
        except (KeyError, TypeError, ValueError):
            itemsize = 1  # an unknown type is reported by from_onnx with the input's name
        check_bytes(math.prod(dims) * itemsize, f"input {vi.name!r}")
    _raise(ModelError, "bad input shapes", problems,
           "fix the model's input shapes or override them with --input-shape NAME=D0,D1,...")


def _check_values(g: onnx.GraphProto) -> list[int]:
    """Definitions, uses and cycles; returns a topological order of node indices."""
    defined: dict[str, str] = {}
    problems = []
    for vi in g.input:
        defined.setdefault(vi.name, f"graph input {vi.name!r}")
    for t in g.initializer:
        if t.name in defined and not defined[t.name].startswith("graph input"):
            problems.append(f"initializer {t.name!r} is defined twice")
        defined[t.name] = f"initializer {t.name!r}"
    producer: dict[str, int] = {}
    for i, n in enumerate(g.node):
        for o in n.output:
            if not o:
                continue
            if o in defined:
                problems.append(f"{_label(n, i)} writes {o!r}, already defined by {defined[o]}")
            else:
                defined[o] = _label(n, i)
                producer[o] = i
    for i, n in enumerate(g.node):
        for x in n.input:
            if x and x not in defined:
                problems.append(f"{_label(n, i)} reads {x!r}, which no node, graph input or "
                                "initializer defines")
    for o in g.output:
        if o.name not in defined:
            problems.append(f"graph output {o.name!r} is not produced by any node")
    if not g.output:
        problems.append("the graph has no outputs")
    _raise(ModelError, "undefined or duplicate values", problems,
           "the model is broken (onnx.checker.check_model shows the same); re-export it")

    deps = [{producer[x] for x in n.input if x in producer} for n in g.node]
    users: list[list[int]] = [[] for _ in g.node]
    for i, d in enumerate(deps):
        for j in d:
            users[j].append(i)
    indeg = [len(d) for d in deps]
    ready = [i for i, k in enumerate(indeg) if k == 0]
    order: list[int] = []
    while ready:
        ready.sort(reverse=True)  # keep the model's own order where it is already valid
        i = ready.pop()
        order.append(i)
        for u in users[i]:
            indeg[u] -= 1
            if indeg[u] == 0:
                ready.append(u)
    if len(order) < len(g.node):
        cycle = _find_cycle(deps, set(range(len(g.node))) - set(order))
        path = " -> ".join(_label(g.node[i], i) for i in cycle)
        raise ModelError(f"invalid model: the graph has a cycle: {path}; ONNX graphs must be "
                         "acyclic (loops belong in a Loop node): re-export the model")
    return order


def _find_cycle(deps: list[set[int]], stuck: set[int]) -> list[int]:
    # Every stuck node depends on another stuck node, so walking dependencies must revisit one.
    start = min(stuck)
    seen: dict[int, int] = {}
    path: list[int] = []
    i = start
    while i not in seen:
        seen[i] = len(path)
        path.append(i)
        i = min(d for d in deps[i] if d in stuck)
    cycle = path[seen[i]:]
    return list(reversed(cycle)) + [cycle[-1]]


def _check_nodes(g: onnx.GraphProto, opset: int) -> None:
    problems = []
    for i, n in enumerate(g.node):
        label = _label(n, i)
        names = [a.name for a in n.attribute]
        dup = {a for a in names if names.count(a) > 1}
        if dup:
            problems.append(f"{label}: attribute {min(dup)!r} given twice")
        if n.domain not in DEFAULT_DOMAINS:
            continue
        try:
            schema = defs.get_schema(n.op_type, opset, "")
        except defs.SchemaError:
            continue  # unknown op: check_supported lists these together
        n_in = len(n.input)
        if not schema.min_input <= n_in <= schema.max_input:
            problems.append(f"{label}: has {n_in} inputs, the op takes {schema.min_input}.."
                            f"{schema.max_input}")
        n_out = len(n.output)
        if not schema.min_output <= n_out <= schema.max_output:
            problems.append(f"{label}: has {n_out} outputs, the op makes {schema.min_output}.."
                            f"{schema.max_output}")
        for a in n.attribute:
            spec = schema.attributes.get(a.name)
            if spec is None:
                problems.append(f"{label}: unknown attribute {a.name!r} for opset {opset} "
                                f"(known: {sorted(schema.attributes) or 'none'})")
            elif a.type != spec.type:
                problems.append(f"{label}: attribute {a.name!r} is {_tname(a.type)}, the op "
                                f"wants {_tname(spec.type)}")
        for name, spec in schema.attributes.items():
            if spec.required and name not in names:
                problems.append(f"{label}: required attribute {name!r} is missing")
    _raise(ModelError, "bad nodes", problems,
           "re-export the model with a valid ONNX exporter, or fix these nodes")


def _check_types(model: onnx.ModelProto, opset: int) -> None:
    g = model.graph
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False)
    except Exception:  # noqa: BLE001 - no inferred types: tilecc's own shape rules still run
        inferred = model
    types: dict[str, str] = {}
    for vi in [*g.input, *inferred.graph.value_info]:
        et = vi.type.tensor_type.elem_type if vi.type.HasField("tensor_type") else 0
        if et:
            types[vi.name] = _type_str(et)
    for t in g.initializer:
        types[t.name] = _type_str(t.data_type)
    problems = []
    for i, n in enumerate(g.node):
        if n.domain not in DEFAULT_DOMAINS:
            continue
        try:
            schema = defs.get_schema(n.op_type, opset, "")
        except defs.SchemaError:
            continue
        if not schema.inputs:
            continue
        allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
        bound: dict[str, tuple[str, str]] = {}
        for k, x in enumerate(n.input):
            if not x or x not in types:
                continue
            formal = schema.inputs[min(k, len(schema.inputs) - 1)]
            ok = allowed.get(formal.type_str, {formal.type_str})
            have = types[x]
            if have not in ok:
                problems.append(f"{_label(n, i)}: input {k} ({x!r}) is {have}; {n.op_type} takes "
                                f"{', '.join(sorted(ok))}")
            elif formal.type_str in allowed:
                prev = bound.setdefault(formal.type_str, (x, have))
                if prev[1] != have:
                    problems.append(f"{_label(n, i)}: inputs {prev[0]!r} ({prev[1]}) and {x!r} "
                                    f"({have}) must have the same type")
    _raise(ModelError, "inputs of the wrong type", problems,
           "insert a Cast or fix the model's input types")


def _type_str(elem_type: int) -> str:
    try:
        return f"tensor({onnx.TensorProto.DataType.Name(elem_type).lower()})"
    except ValueError:
        return f"tensor(type {elem_type})"


def _tname(t: int) -> str:
    try:
        return onnx.AttributeProto.AttributeType.Name(t)
    except ValueError:
        return f"type {t}"


def _reordered(model: onnx.ModelProto, order: list[int]) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    nodes = [out.graph.node[i] for i in order]
    copies = [onnx.NodeProto() for _ in nodes]
    for c, n in zip(copies, nodes):
        c.CopyFrom(n)
    del out.graph.node[:]
    out.graph.node.extend(copies)
    return out

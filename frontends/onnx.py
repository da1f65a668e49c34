"""ONNX importer: `from_onnx(model) -> Graph` with static shapes and canonical ops.

Steps: load (with external data), report every unsupported op at once, resolve input shapes,
then run one converter per ONNX node (chosen by op type and the model's default-domain opset)
while a Builder infers types and folds constant subgraphs as it goes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tilecc.errors import InputError, UnsupportedError
from tilecc.floatfmt import is_exotic
from tilecc.graph import Graph, TensorType

from . import (
    converters_attention,  # noqa: F401  (registers Attention)
    converters_control,  # noqa: F401  (registers If, Loop and Scan)
    converters_function,  # noqa: F401  (registers the ops inlined from their function body)
    converters_general,  # noqa: F401  (registers the general-op converters)
    converters_image,  # noqa: F401  (registers GridSample and the other sampling ops)
    converters_indexmap,  # noqa: F401  (registers CenterCropPad and the other index-map ops)
    converters_linalg,  # noqa: F401  (registers Det, TensorScatter)
    converters_nn,  # noqa: F401  (registers the NN/transformer converters)
    converters_pool,  # noqa: F401  (registers MaxPool, AveragePool and the Lp pools)
    converters_quant,  # noqa: F401  (registers the quantization converters)
    converters_signal,  # noqa: F401  (registers DFT, STFT, MelWeightMatrix, the windows)
    onnx_converters,  # noqa: F401  (registers the converters)
)
from .onnx_builder import CONVERTERS, Builder, FrontendError, UnsupportedOpsError, pick_converter
from .validate import check_tensor_types, validate_model

__all__ = ["CONVERTERS", "FrontendError", "UnsupportedOpsError", "from_onnx"]

DEFAULT_DOMAINS = ("", "ai.onnx")


def _load(model: str | Path | onnx.ModelProto) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray, memoryview)):
        try:
            return onnx.load_from_string(bytes(model))
        except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError and others
            raise FrontendError(f"cannot parse the ONNX model bytes ({len(model)} bytes): {e}; "
                                "the data is truncated or not an ONNX model") from None
    path = Path(model)
    if not path.is_file():
        raise FrontendError(f"model file {str(path)!r} does not exist; check the path")
    try:
        # onnx.load resolves external data relative to the model file's directory.
        return onnx.load(str(path), load_external_data=True)
    except Exception as e:  # noqa: BLE001 - onnx raises several unrelated types for bad files
        raise FrontendError(f"cannot load ONNX model {str(path)!r}: {e}; is it a valid .onnx "
                            "file with its external data files next to it?") from None


def _opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in DEFAULT_DOMAINS:
            return imp.version
    # Very old models carry no opset_import; the IR then implies opset 1.
    return 1


def _node_label(node: onnx.NodeProto, index: int) -> str:
    if node.name:
        return repr(node.name)
    return f"#{index} (output {node.output[0]!r})" if node.output else f"#{index} (no outputs)"


def check_versions(model: onnx.ModelProto) -> None:
    """Refuse IR and opset versions newer than the installed onnx package knows: their ops
    may mean something the converters (written against known schemas) do not do."""
    if model.ir_version > onnx.IR_VERSION:
        raise UnsupportedError(f"the model's IR version {model.ir_version} is newer than the "
                               f"installed onnx package supports ({onnx.IR_VERSION}); export "
                               "it with an older IR version or upgrade onnx")
    newest = onnx.defs.onnx_opset_version()
    opset = _opset(model)
    if opset > newest:
        raise UnsupportedError(f"the model uses opset {opset}, newer than the newest the "
                               f"installed onnx package knows ({newest}); export it with "
                               f"opset <= {newest} or upgrade onnx")


def check_supported(model: onnx.ModelProto) -> None:
    """Raise UnsupportedOpsError listing every unsupported op type with its node names."""
    opset = _opset(model)
    missing: dict[str, list[str]] = {}
    for i, node in enumerate(model.graph.node):
        key = node.op_type
        if node.domain not in DEFAULT_DOMAINS:
            key = f"{node.domain}.{node.op_type}"
        elif node.op_type in CONVERTERS and pick_converter(node.op_type, opset) is None:
            key = f"{node.op_type} (opset {opset}; converters start at opset " \
                  f"{min(CONVERTERS[node.op_type])})"
        elif node.op_type in CONVERTERS:
            continue
        missing.setdefault(key, []).append(_node_label(node, i))
    if missing:
        raise UnsupportedOpsError(missing, opset)


def _input_shape(vi: onnx.ValueInfoProto, override: tuple[int, ...] | None,
                 named: dict[str, int]) -> tuple[int, ...]:
    """The static shape of graph input `vi`: the override if given, else the declared dims
    with `dim_param` names bound from `named`. A `dim_value` of -1 or 0 is read as dynamic
    (exporters such as Paddle2ONNX write -1 for a dynamic dim; 0 is what older exporters
    write), so it needs an override like a named or unnamed dynamic dim."""
    tt = vi.type.tensor_type
    if override is not None:
        shape = tuple(int(d) for d in override)
        if any(d < 0 for d in shape):  # 0 is an empty input, which ONNX allows
            raise FrontendError(f"input {vi.name!r}: override shape {list(shape)} has a "
                                "negative dimension")
        declared = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                    for d in tt.shape.dim]
        if tt.HasField("shape") and len(declared) != len(shape):
            # A wrong rank otherwise surfaces deep in a converter ("too many values to unpack").
            raise InputError(f"input {vi.name!r}: --input-shape gives {len(shape)} "
                             f"dimension(s) {list(shape)} but the model declares rank "
                             f"{len(declared)} {declared}; give {len(declared)} dimensions")
        return shape
    hint = f"pass --input-shape {vi.name}=d0,d1,... (input_shapes={{{vi.name!r}: (...)}})"
    if not tt.HasField("shape"):
        raise FrontendError(f"input {vi.name!r} has no shape in the model; {hint}")
    dims = []
    for k, d in enumerate(tt.shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param") and d.dim_param in named:
            dims.append(named[d.dim_param])
        else:
            what = (f"{d.dim_param!r}" if d.dim_param else
                    f"dim_value {d.dim_value}" if d.HasField("dim_value") else "unknown")
            name_hint = (f" or bind the name with --input-shape {d.dim_param}=N"
                         if d.dim_param else "")
            raise FrontendError(f"input {vi.name!r}: dimension {k} is dynamic ({what}); "
                                f"tilecc compiles static shapes, {hint}{name_hint}")
    return tuple(dims)


def _dim_bindings(real_inputs: list, input_shapes: dict) -> dict[str, int]:
    """Split --input-shape entries that name a `dim_param` (NAME=N) off `input_shapes`."""
    params = {d.dim_param for vi in real_inputs for d in vi.type.tensor_type.shape.dim
              if d.dim_param}
    named = {}
    for key in [k for k in input_shapes if k in params and k not in
                {vi.name for vi in real_inputs}]:
        value = tuple(input_shapes.pop(key)) if not isinstance(input_shapes[key], int) \
            else (input_shapes.pop(key),)
        if len(value) != 1 or int(value[0]) <= 0:
            raise FrontendError(f"--input-shape {key}=...: {key!r} is a named dimension of "
                                f"the model; give it one positive size, e.g. {key}=1")
        named[key] = int(value[0])
    return named


def _attrs(node: onnx.NodeProto) -> dict:
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, onnx.TensorProto):
            v = numpy_helper.to_array(v)
        elif isinstance(v, list):
            v = tuple(x.decode() if isinstance(x, bytes) else x for x in v)
        out[a.name] = v
    return out


def from_onnx(model: str | Path | onnx.ModelProto,
              input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """Import an ONNX model as a static-shaped Graph of canonical ops (docs/ops.md)."""
    proto = _load(model)
    check_versions(proto)
    check_supported(proto)
    proto = validate_model(proto)
    opset = _opset(proto)
    g = proto.graph
    inits = {t.name: t for t in g.initializer}
    real_inputs = [vi for vi in g.input if vi.name not in inits]
    input_shapes = dict(input_shapes or {})
    named = _dim_bindings(real_inputs, input_shapes)
    unknown = set(input_shapes) - {vi.name for vi in real_inputs}
    if unknown:
        raise FrontendError(f"--input-shape names {sorted(unknown)} are not model inputs or "
                            f"named dimensions; the inputs are "
                            f"{[vi.name for vi in real_inputs]}")

    graph = Graph([], [], [], {}, {}, g.name or "model")
    for vi in real_inputs:
        elem = vi.type.tensor_type.elem_type
        try:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(elem)).name
        except (KeyError, TypeError, ValueError):
            raise FrontendError(f"input {vi.name!r}: element type {elem} is not supported; "
                                "use a numeric tensor input") from None
        graph.inputs.append(vi.name)
        shape = _input_shape(vi, input_shapes.get(vi.name), named)
        graph.types[vi.name] = TensorType(shape, dtype)
        check_tensor_types([graph.types[vi.name]], f"input {vi.name!r}")
    for name, t in inits.items():
        arr = numpy_helper.to_array(t)
        graph.consts[name] = np.asarray(arr, order="C")
        graph.types[name] = TensorType(tuple(int(d) for d in arr.shape), arr.dtype.name)

    declared = _declared_types(g)
    reserved = {o for n in g.node for o in n.output} | {o.name for o in g.output}
    b = Builder(graph, opset, reserved)
    env = {name: name for name in graph.types}  # ONNX value name -> graph value name
    b.env = env  # If/Loop bodies (converters_nn.py) resolve outer-scope names through it
    for i, node in enumerate(g.node):
        fn = pick_converter(node.op_type, opset)
        b.where = f"node {_node_label(node, i)} ({node.op_type})"
        b.node_name = node.name
        ins = b.resolve_inputs(node.input, "is not produced by any earlier node; the model is "
                               "not topologically sorted or is broken (run onnx.checker)")
        start = len(graph.nodes)
        before = set(graph.types)
        try:
            if node.op_type not in _OWN_STORAGE_TYPES and any(
                    x and is_exotic(graph.types[x].dtype) for x in ins):
                outs = _via_float32(b, fn, node, ins, declared)
            else:
                outs = fn(b, ins, len(node.output), **_attrs(node))
        except FrontendError:
            raise
        except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError,
                OverflowError, UnicodeDecodeError) as e:
            # Converters trust the attribute values the validator let through (types and
            # presence are checked, values are not): a value they cannot use lands here.
            raise b.error(f"cannot convert this node: {type(e).__name__}: {e}; check its "
                          "attribute values and constant inputs") from e
        renamed: dict[str, str] = {}
        for onnx_name, v in zip(node.output, outs):
            v = renamed.get(v, v)
            if onnx_name and v not in before and v != onnx_name and onnx_name not in graph.types:
                # Values made by this node take the ONNX output name, so the IR reads like
                # the model and user-facing output names survive.
                b.rename(v, onnx_name, start)
                renamed[v] = v = onnx_name
            if onnx_name:
                env[onnx_name] = v

    for o in g.output:
        if o.name not in env:
            raise FrontendError(f"graph output {o.name!r} is not produced by any node")
        v = env[o.name]
        if v != o.name:
            # The output aliases another value (Identity, a graph input, a shared constant):
            # give it its own value so the user-facing name stays the ONNX one.
            if v in graph.consts:
                graph.consts[o.name] = graph.consts[v].copy()
                graph.types[o.name] = graph.types[v]
            else:
                b.node_name = ""
                (copy,) = b.emit("Reshape", [v], {"shape": graph.types[v].shape})
                b.rename(copy, o.name, len(graph.nodes) - 1)
        graph.outputs.append(o.name)
    _check_storage_only(graph)
    return graph


# Converters that handle bfloat16/float8 operands themselves: Cast/CastLike convert them, and
# (De)QuantizeLinear take their float8 target type from the zero point and round with
# saturation, so they must see the storage types rather than float32 copies.
_OWN_STORAGE_TYPES = ("Cast", "CastLike", "QuantizeLinear", "DequantizeLinear")


def _declared_types(g: onnx.GraphProto) -> dict[str, str]:
    """Element types the model declares for its outputs and intermediate values."""
    out = {}
    for vi in [*g.value_info, *g.output]:
        elem = vi.type.tensor_type.elem_type if vi.type.HasField("tensor_type") else 0
        if elem:
            try:
                out[vi.name] = np.dtype(helper.tensor_dtype_to_np_dtype(elem)).name
            except (KeyError, TypeError, ValueError):
                pass
    return out


def _via_float32(b: Builder, fn, node: onnx.NodeProto, ins: list[str],
                 declared: dict[str, str]) -> list[str]:
    """Convert a node reading bfloat16/float8 values in float32: its storage-only inputs are
    widened (exactly), the converter computes in float32, and each float32 result is rounded
    once to the node's output type (the declared one, else the first storage-only input's:
    an ONNX op producing floats from T inputs produces T)."""
    kinds = [b.type(x).dtype for x in ins if x and is_exotic(b.type(x).dtype)]
    wide = [b.emit("Cast", [x], {"to": "float32"})[0] if x and is_exotic(b.type(x).dtype)
            else x for x in ins]
    try:
        outs = fn(b, wide, len(node.output), **_attrs(node))
    except FrontendError as e:
        if type(e) is not FrontendError:
            raise
        # Name the model's values, not the float32 copies (also what the onnx.backend
        # adapter reads to bind an input that must be a compile-time constant).
        msg = str(e)
        for x, w in zip(ins, wide):
            if x != w:
                msg = msg.replace(f"({w!r})", f"({x!r})")
        raise FrontendError(msg) from e
    res = []
    for onnx_name, v in zip(node.output, outs):
        have = b.type(v).dtype if v else None
        want = declared.get(onnx_name) or (kinds[0] if have == "float32" else None)
        if v and want and is_exotic(want) and have != want:
            v = b.emit("Cast", [v], {"to": want})[0]
        res.append(v)
    return res


def _check_storage_only(graph: Graph) -> None:
    """bfloat16/float8 values are bits that only Cast converts (and Reshape copies): any other
    op on them would compute on the bit patterns, so refuse it clearly."""
    for n in graph.nodes:
        if n.op in ("Cast", "Reshape"):
            continue
        bad = [v for v in (*n.inputs, *n.outputs) if v and is_exotic(graph.types[v].dtype)]
        if bad:
            t = graph.types[bad[0]].dtype
            raise UnsupportedError(
                f"node {n.name or n.op!r} ({n.op}): computes on {t} value {bad[0]!r}; tilecc "
                f"stores {t} as bits and converts it with Cast only. Cast the value to float32 "
                "before this op")


def supported_ops_markdown() -> str:
    """The converter table as Markdown: each ONNX op with the opset versions it has converters
    for (a converter handles its version and every later one up to the next)."""
    rows = [f"| {op} | {', '.join(str(v) for v in sorted(CONVERTERS[op]))} |"
            for op in sorted(CONVERTERS)]
    return "\n".join([f"{len(rows)} ONNX ops (default domain):", "",
                      "| op | converter opset versions |", "|---|---|", *rows])

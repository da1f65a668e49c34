"""ONNX ops that tilecc converts by inlining the function body their schema defines
(LinearAttention, CausalConvWithState, AffineGrid, RotaryEmbedding), through the same subgraph
inlining as If and Loop (converters_control.py)."""

from __future__ import annotations

import numpy as np
from onnx import helper

from .converters_control import _inline_graph
from .onnx_builder import converter


def _function_op(op: str, since: int):
    """Convert `op` by inlining the function body its ONNX schema defines for this node."""
    def convert(b, ins, n_out, **attrs):
        import onnx
        from onnx import defs

        schema = defs.get_schema(op, b.opset)
        formal_in = [f"__fn_in{i}" for i in range(len(ins))]
        formal_out = [f"__fn_out{i}" for i in range(n_out)]
        node = helper.make_node(op, [f if x else "" for f, x in zip(formal_in, ins)],
                                formal_out, **attrs)
        if schema.has_function:
            fn = schema.function_body
        else:
            types = [helper.make_tensor_type_proto(
                helper.np_dtype_to_tensor_dtype(np.dtype(b.type(x).dtype)), b.shape(x))
                if x else onnx.TypeProto() for x in ins]
            fn = onnx.FunctionProto()
            fn.ParseFromString(schema.get_context_dependent_function(
                node.SerializeToString(), [t.SerializeToString() for t in types]))
        given = {a.name: a for a in node.attribute}
        nodes = []
        for n in fn.node:
            c = onnx.NodeProto()
            c.CopyFrom(n)
            keep = []
            for a in c.attribute:
                if a.ref_attr_name:  # an attribute of the function: the caller's value
                    if a.ref_attr_name not in given:
                        continue
                    v = onnx.AttributeProto()
                    v.CopyFrom(given[a.ref_attr_name])
                    v.name = a.name
                    keep.append(v)
                else:
                    keep.append(a)
            del c.attribute[:]
            c.attribute.extend(keep)
            nodes.append(c)
        body = helper.make_graph(nodes, f"{op}_function",
                                 [onnx.ValueInfoProto(name=i) for i in fn.input],
                                 [onnx.ValueInfoProto(name=o) for o in fn.output[:n_out]])
        binds = {name: (ins[i] if i < len(ins) else "") for i, name in enumerate(fn.input)}
        return _inline_graph(b, body, binds)
    convert.__name__ = op
    converter(op, since)(convert)


for _op, _since in (("LinearAttention", 27), ("CausalConvWithState", 27), ("AffineGrid", 20),
                    ("RotaryEmbedding", 23)):
    _function_op(_op, _since)

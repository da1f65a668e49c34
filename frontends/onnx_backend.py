"""`onnx.backend` adapter: runs ONNX models through the compiled path (never an interpreter).

    import tilecc.frontends.onnx_backend as backend
    rep = backend.prepare(model)          # BackendRep
    outputs = rep.run([x, y])             # tuple of ndarrays, in graph-output order

Every distinct input signature (shapes and dtypes) is compiled once: import with the run's
shapes -> graph passes -> `compile_graph` -> link -> load the shared library in memory. No
artifact tar is written, which keeps the per-model overhead of the conformance suite small.
Compilation happens on the first `run` with a new signature (inputs may have dynamic dims).

Inputs that the importer needs as compile-time constants (a Reshape shape, Reduce axes, a TopK
k, ... fed as graph inputs) are bound to the values of the run that compiles: the module is
specialised on them and recompiled when they change (their values are part of the cache key).
Every other input stays a runtime input of the compiled code.
The module-level `prepare`, `run_model`, `run_node`, `supports_device` make the module itself
usable as the backend argument of `onnx.backend.test.BackendTest` (as onnxruntime.backend is).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper
from onnx.backend.base import Backend, BackendRep

__all__ = ["TileccBackend", "TileccBackendRep", "prepare", "run_model", "run_node",
           "supports_device"]


# The importer's message when a node input must be known at compile time (Builder.static).
_NEEDS_CONST = re.compile(r"input [^(]*(?:\([^')]*\) )?\('([^']*)'\) must be a compile-time constant")


def _real_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    inits = {t.name for t in model.graph.initializer}
    return [vi for vi in model.graph.input if vi.name not in inits]


def _load_module(cm):
    """A runnable Module from a CompiledModel, linked in a temporary directory."""
    from tilecc.codegen.link import link_shared
    from tilecc.runtime.artifact import aligned_empty
    from tilecc.runtime.cpu import CpuLibrary
    from tilecc.runtime.module import Module

    with tempfile.TemporaryDirectory(prefix="tilecc_backend_") as tmp:
        obj = Path(tmp) / "model.o"
        obj.write_bytes(cm.object_code)
        lib = link_shared([obj], Path(tmp) / "model.so", cm.target).read_bytes()
    params = aligned_empty(len(cm.params))
    params[:] = np.frombuffer(cm.params, np.uint8)
    meta = {"name": cm.name, "workspace_size": cm.workspace_size, "inputs": cm.inputs,
            "outputs": cm.outputs}
    return Module(meta, CpuLibrary(lib, cm.name), params)


def _all_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The nodes of a graph and of its subgraphs, recursively."""
    out = []
    for n in graph.node:
        out.append(n)
        for a in n.attribute:
            for g in [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs):
                out.extend(_all_nodes(g))
    return out


def _outer_names(node: onnx.NodeProto) -> list[str]:
    """Names a node's subgraphs (If/Loop/Scan bodies) read from enclosing scopes."""
    out = []
    for a in node.attribute:
        graphs = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
        for g in graphs:
            local = {i.name for i in g.input} | {t.name for t in g.initializer}
            local |= {o for n in g.node for o in n.output}
            out.extend(i for n in g.node for i in n.input if i and i not in local)
            for n in g.node:
                out.extend(x for x in _outer_names(n) if x not in local)
    return out


def _typed(arr: np.ndarray, dtype: str) -> np.ndarray:
    """A runtime output as onnx's test data holds it: bfloat16/float8 tensors come back from
    the runtime as bit patterns (uint16/uint8) and are viewed as their ml_dtypes type."""
    from tilecc.floatfmt import is_exotic, np_dtype

    return arr.view(np_dtype(dtype)) if is_exotic(dtype) else arr


class TileccBackendRep(BackendRep):
    """A prepared model: one compiled Module per input signature."""

    def __init__(self, model: onnx.ModelProto, target="host", opt_level: int = 2):
        self.model = model
        self.target = target
        self.opt_level = opt_level
        self.input_names = [vi.name for vi in _real_inputs(model)]
        self.output_names = [o.name for o in model.graph.output]
        self._modules: dict[tuple, object] = {}
        self._static: list[str] = []  # inputs the module is specialised on (learned)


    def _module(self, arrays: list[np.ndarray]):
        signature = tuple((tuple(a.shape), a.dtype.name) for a in arrays)
        values = {n: a for n, a in zip(self.input_names, arrays)}
        key = (signature, tuple(values[n].tobytes() for n in self._static))
        mod = self._modules.get(key)
        if mod is not None:
            return mod
        from tilecc.build import compile_graph, prepare_graph
        from tilecc.frontends.onnx_builder import FrontendError
        from tilecc.targets import get_target

        target = get_target(self.target)
        while True:
            model = self._specialise(values)
            shapes = {n: tuple(values[n].shape) for n in self.input_names
                      if n not in self._static}
            try:
                # The target, as a real compile has it: blocked layout and weight packing too.
                graph, out_names = prepare_graph(model, shapes, self.opt_level, target=target)
                break
            except FrontendError as e:
                m = _NEEDS_CONST.search(str(e))
                needed = [] if m is None else self._feeding_inputs(m.group(1), values)
                if not needed:
                    raise
                self._static.extend(needed)
        cm = compile_graph(graph, target, "tilecc_model", out_names,
                           self.opt_level)
        mod = _load_module(cm)
        key = (signature, tuple(values[n].tobytes() for n in self._static))
        self._modules[key] = mod
        return mod

    def _feeding_inputs(self, value: str, values: dict[str, np.ndarray]) -> list[str]:
        """The not-yet-static inputs a compile-time value is computed from.

        A graph input is returned as is; a computed value (a shape built by Shape/Gather/...
        from an input) is traced back through the producing nodes (and the outer-scope names
        read by If/Loop bodies) to the integer and scalar inputs it depends on: those carry
        shapes, counts, indices and range bounds, while float tensors are data and stay
        runtime inputs.
        """
        if value in values:
            return [] if value in self._static else [value]
        producer = {o: n for n in _all_nodes(self.model.graph) for o in n.output}
        if value not in producer:
            # Computed inside a function body tilecc expanded: any integer input may feed it.
            return [n for n in self.input_names if n not in self._static
                    and values[n].dtype.kind in "iub"]
        seen, stack, found = set(), [value], []
        while stack:
            v = stack.pop()
            if v in seen:
                continue
            seen.add(v)
            if v in values:
                if v not in self._static and (values[v].dtype.kind in "iub"
                                              or values[v].size == 1):
                    found.append(v)
                continue
            node = producer.get(v)
            if node is None:
                continue
            stack.extend(i for i in node.input if i)
            stack.extend(_outer_names(node))
        return sorted(found)

    def _specialise(self, values: dict[str, np.ndarray]) -> onnx.ModelProto:
        """The model with the static inputs turned into initializers holding their values."""
        if not self._static:
            return self.model
        from onnx import numpy_helper

        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        keep = [vi for vi in model.graph.input if vi.name not in self._static]
        del model.graph.input[:]
        model.graph.input.extend(keep)
        model.graph.initializer.extend(numpy_helper.from_array(values[n], n)
                                       for n in self._static)
        return model

    def run(self, inputs, **kwargs) -> tuple[np.ndarray, ...]:
        if isinstance(inputs, dict):
            arrays = [np.asarray(inputs[n]) for n in self.input_names]
        else:
            arrays = [np.asarray(x) for x in (
                inputs if isinstance(inputs, (list, tuple)) else [inputs])]
        if len(arrays) != len(self.input_names):
            from tilecc.errors import InputError
            raise InputError(f"the model takes {len(self.input_names)} input(s) "
                             f"{self.input_names}, got {len(arrays)}")
        mod = self._module(arrays)
        out = mod.run({n: a for n, a in zip(self.input_names, arrays) if n not in self._static})
        dtypes = {s["name"]: s["dtype"] for s in mod.output_info}
        return tuple(_typed(out[n], dtypes[n]) for n in self.output_names)


class TileccBackend(Backend):
    """onnx.backend.base.Backend on tilecc's compiled CPU path (device "CPU" only)."""

    @classmethod
    def is_compatible(cls, model, device: str = "CPU", **kwargs) -> bool:
        return cls.supports_device(device)

    @classmethod
    def prepare(cls, model, device: str = "CPU", **kwargs) -> TileccBackendRep:
        if not isinstance(model, onnx.ModelProto):
            model = onnx.load_model_from_string(bytes(model)) if isinstance(
                model, (bytes, bytearray)) else onnx.load(str(model))
        if not cls.supports_device(device):
            raise ValueError(f"tilecc backend runs on CPU, not {device!r}")
        return TileccBackendRep(model, kwargs.get("target", "host"),
                                kwargs.get("opt_level", 2))

    @classmethod
    def run_model(cls, model, inputs, device: str = "CPU", **kwargs) -> tuple[np.ndarray, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs, device: str = "CPU", outputs_info=None,
                 **kwargs) -> tuple[np.ndarray, ...]:
        """Run one node by wrapping it in a model typed from the given inputs."""
        arrays = [np.asarray(x) for x in inputs]
        ins = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype),
                                             a.shape) for n, a in zip(node.input, arrays)]
        graph = helper.make_graph([node], "run_node", ins,
                                  [onnx.ValueInfoProto(name=o) for o in node.output if o])
        opset = kwargs.pop("opset_version", onnx.defs.onnx_opset_version())
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        return cls.run_model(model, arrays, device, **kwargs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return str(device).upper() == "CPU"


prepare = TileccBackend.prepare
run_model = TileccBackend.run_model
run_node = TileccBackend.run_node
supports_device = TileccBackend.supports_device
is_compatible = TileccBackend.is_compatible

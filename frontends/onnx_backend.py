"""`onnx.backend` adapter: runs ONNX models through the compiled path (never an interpreter).

    import tilecc.frontends.onnx_backend as backend
    rep = backend.prepare(model)          # BackendRep
    outputs = rep.run([x, y])             # tuple of ndarrays, in graph-output order

Every distinct input signature (shapes and dtypes) is compiled once: import with the run's
shapes -> graph passes -> `compile_graph` -> link -> load the shared library in memory. No
artifact tar is written, which keeps the per-model overhead of the conformance suite small.
Models whose inputs have dynamic dims are compiled lazily on the first `run`.
The module-level `prepare`, `run_model`, `run_node`, `supports_device` make the module itself
usable as the backend argument of `onnx.backend.test.BackendTest` (as onnxruntime.backend is).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper
from onnx.backend.base import Backend, BackendRep

__all__ = ["TileccBackend", "TileccBackendRep", "prepare", "run_model", "run_node",
           "supports_device"]


def _real_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    inits = {t.name for t in model.graph.initializer}
    return [vi for vi in model.graph.input if vi.name not in inits]


def _static_shape(vi: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    dims = []
    for d in tt.shape.dim:
        if not d.HasField("dim_value"):
            return None
        dims.append(int(d.dim_value))
    return tuple(dims)


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


class TileccBackendRep(BackendRep):
    """A prepared model: one compiled Module per input signature."""

    def __init__(self, model: onnx.ModelProto, target="host", opt_level: int = 2):
        self.model = model
        self.target = target
        self.opt_level = opt_level
        self.input_names = [vi.name for vi in _real_inputs(model)]
        self.output_names = [o.name for o in model.graph.output]
        self._modules: dict[tuple, object] = {}
        shapes = [_static_shape(vi) for vi in _real_inputs(model)]
        if all(s is not None for s in shapes):
            dtypes = [self._declared_dtype(vi) for vi in _real_inputs(model)]
            if all(d is not None for d in dtypes):
                self._module(tuple(zip(shapes, dtypes)))

    @staticmethod
    def _declared_dtype(vi: onnx.ValueInfoProto) -> str | None:
        try:
            return np.dtype(helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)).name
        except (KeyError, TypeError, ValueError):
            return None

    def _module(self, signature: tuple):
        mod = self._modules.get(signature)
        if mod is None:
            from tilecc.build import compile_graph, prepare_graph
            from tilecc.targets import get_target

            shapes = {n: s for n, (s, _) in zip(self.input_names, signature)}
            graph, out_names = prepare_graph(self.model, shapes, self.opt_level)
            cm = compile_graph(graph, get_target(self.target), "tilecc_model", out_names,
                               self.opt_level)
            mod = self._modules[signature] = _load_module(cm)
        return mod

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
        signature = tuple((tuple(a.shape), a.dtype.name) for a in arrays)
        mod = self._module(signature)
        out = mod.run(dict(zip(self.input_names, arrays)))
        return tuple(out[n] for n in self.output_names)


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

"""The build driver: ONNX -> graph passes -> fused kernels -> loop IR -> LLVM -> artifact."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from tilecc.passes.pipeline import PassContext, check_pass_names, run_pipeline

from . import te
from .driver import CompiledModel
from .graph import Graph, Node, TensorType
from .loopir import PrimFunc
from .schedule import create_schedule, lower
from .topi.generic import schedule_default
from .topi.registry import get_compute, get_schedule


@dataclass
class KernelInfo:
    """How a kernel was scheduled: its tunable workload (if any) and where its config came
    from ("log", "transfer" or "default")."""

    workload: str | None = None
    template: str | None = None
    config: dict | None = None
    source: str = "default"
    space: dict | None = None  # the template's knob space for this workload
    flops: int = 0
    # Every knob's value as the template applied it (defaults resolved), where it reports
    # them: a search candidate equal to the default's resolved config is the default's code.
    resolved: dict | None = None


def kernel_flops(node: Node, graph: Graph, out_tensors: list) -> int:
    """Floating-point work of a fused kernel, for profiles: 2 x output size x reduction
    extents for every reducing TE stage, plus one per output element of each elementwise
    member op. Data movement (pad, transpose, concat, ...) counts as none."""
    import math

    from tilecc.passes.fuse import ELEMWISE

    total = 0
    for t in te.post_order(out_tensors):
        red = getattr(t.op, "reduce", None)
        if red is not None:
            total += 2 * math.prod(t.shape) * math.prod(a.extent for a in red.axes)
    for m in node.attrs["nodes"]:
        if m.op in ELEMWISE and m.op != "BatchNormalization":
            total += sum(graph.types[o].size for o in m.outputs)
    return total


class DefaultConfigs:
    """Config provider with no logs: every template derives its default from the target.
    A tuning-log provider (tilecc.autotune) implements the same `lookup`."""

    def lookup(self, workload: str, template: str, version: int, target, space=None):
        return None, "default"


def workload_key(anchor: Node, graph: Graph, template) -> str:
    """Stable key of a tunable workload: template, op, attrs, input shapes and dtypes, layout.
    Not a hash of code, so logs survive compiler changes that keep the template version."""
    import json

    def plain(v):
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, np.generic):
            return v.item()
        return v

    return json.dumps({"template": template.name, "version": template.version, "op": anchor.op,
                       "attrs": {k: plain(v) for k, v in sorted(anchor.attrs.items())},
                       "inputs": [[list(graph.types[i].shape), graph.types[i].dtype]
                                  for i in anchor.inputs if i],
                       "layout": "NCHWc" if anchor.op.endswith("NCHWc") else "NCHW"},
                      sort_keys=True, separators=(",", ":"))


def _check_config(cfg: dict | None, space: dict, template: str) -> None:
    """A config names only this template's knobs, with values from this workload's space."""
    for k, v in (cfg or {}).items():
        if k not in space:
            raise ValueError(f"{template}: unknown knob {k!r} (knobs: {sorted(space)})")
        if v not in space[k]:
            raise ValueError(f"{template}: knob {k}={v!r} is not valid here "
                             f"(choices: {space[k]})")


def build_schedule(node: Node, graph: Graph, target, configs=None, cfg_override=None):
    """TE for a fused node, scheduled. Returns (schedule, args, KernelInfo, tuning_stage)."""
    from .errors import TileccError
    from .topi.extern import get_extern

    if get_extern(node.attrs["anchor"]) is not None:
        raise TileccError(f"op {node.attrs['anchor']} has a hand-written loop-IR kernel for "
                          "CPU targets only (compiler/topi/extern.py), no TE schedule; compile "
                          "models using it for a CPU target")
    tensors: dict[str, te.Tensor] = {}
    args = []
    for k, i in enumerate(node.inputs):
        t = graph.types[i]
        tensors[i] = te.placeholder(t.shape, t.dtype, f"in{k}")
        args.append(tensors[i])
    anchor = None
    for m in node.attrs["nodes"]:
        ins = [tensors[i] for i in m.inputs if i]
        outs = get_compute(m.op)(ins, m.attrs, [graph.types[o] for o in m.outputs])
        for o, t in zip(m.outputs, outs):
            tensors[o] = t
        if m.op == node.attrs["anchor"] and anchor is None:
            anchor = (m, outs[0])
    out_tensors = [tensors[o] for o in node.outputs]
    sch = create_schedule(out_tensors)
    info = KernelInfo(flops=kernel_flops(node, graph, out_tensors))
    stage = None
    if anchor is not None and anchor[1] in sch.stages:
        t = anchor[1]
        if sch[t].inline:
            roots = sch._root_consumers(t)
            t = next(iter(roots)) if len(roots) == 1 else None
        tpl = get_schedule(anchor[0].op, target.family)
        if t is not None and tpl is not None:
            stage = sch[t]
            stage.anchor_op = anchor[1].op
            cfg = cfg_override
            if tpl.knobs is not None:
                info.workload = workload_key(anchor[0], graph, tpl)
                info.template = tpl.name
                info.space = tpl.space(stage, target)
                if cfg is None and configs is not None:
                    cfg, info.source = configs.lookup(info.workload, tpl.name, tpl.version,
                                                      target, space=info.space)
                elif cfg is not None:
                    info.source = "given"
                _check_config(cfg, info.space, tpl.name)
                info.config = cfg
            tpl.apply(sch, stage, target, cfg)
            taken = getattr(stage, "resolved_config", None)
            if taken and info.space and set(info.space) <= set(taken):
                info.resolved = {k: taken[k] for k in info.space}
    for st in sch.root_stages():
        if not st.relations and not st.annot:
            schedule_default(st, target)
    return sch, args + out_tensors, info, stage


def make_kernel(node: Node, graph: Graph, target, name: str, configs=None
                ) -> tuple[PrimFunc, KernelInfo]:
    from .topi.extern import get_extern

    extern = get_extern(node.attrs["anchor"])
    if extern is not None:  # loop IR written by hand (recurrences): no TE schedule
        return extern(node, graph, target, name), KernelInfo()
    sch, args, info, _ = build_schedule(node, graph, target, configs)
    return lower(sch, args, name), info


def compile_graph(graph: Graph, target, name: str, out_names: list[str], opt_level: int = 2,
                  debug_ir: bool = False, configs=None, profile: bool = False,
                  precision: str = "fp32", print_ir_after=None) -> CompiledModel:
    """A prepared graph -> a CompiledModel for any target (the backend follows from it)."""
    from .driver import compile_model

    return compile_model(graph, target, name, out_names, opt_level, debug_ir, configs, profile,
                         precision, print_ir_after)


def prepare_graph(model, input_shapes=None, opt_level: int = 2, print_ir_after=None,
                  target=None, quant=None, blocked: bool = True) -> tuple[Graph, list[str]]:
    """Import a model and run the graph pass pipeline (passes/pipeline.py) for `opt_level`;
    returns the graph ready for fusion and the model's output names. `quant`
    (passes.quantize.QuantOptions) quantizes it to int8 after the float passes.
    `blocked=False` keeps activations in plain NCHW (no passes.blocked_layout), so every
    value keeps its model name and layout (per-layer comparisons)."""
    ctx = PassContext(opt_level=opt_level, target=target, quant=quant, blocked=blocked,
                      print_ir_after=set(print_ir_after or ()), out=sys.stderr)
    check_pass_names(ctx.print_ir_after)
    if isinstance(model, Graph):
        graph = model
    else:
        from tilecc.frontends.onnx import from_onnx
        graph = from_onnx(model, input_shapes)
    graph = run_pipeline(graph, ctx)
    return graph, ctx.out_names


def build(model, target="host", input_shapes=None, opt_level: int = 2, tuning_logs=None,
          name: str = "tilecc_model", print_ir_after=None, debug_ir: bool = False,
          configs=None, precision: str = "fp32", profile: bool = False, quant=None):
    """Compile an ONNX model (path, bytes or ModelProto) or a Graph into an Artifact.

    `configs` is a config provider (see DefaultConfigs); without one, `tuning_logs` (path or
    paths) are read by the autotuner's provider (only those logs: tilecc.compile adds the
    shipped and user-directory logs). `profile=True` times every kernel call into a table
    the library exports (`tilecc run --profile`, Module.profile). `quant` is a
    passes.quantize.QuantOptions for int8 post-training quantization."""
    from tilecc.targets import get_target

    # fp16 on a CPU with half arithmetic: schedules and layouts see half-width float lanes.
    tgt = get_target(target).for_precision(precision)
    if configs is None and tuning_logs:
        from tilecc.autotune.provider import TuningLogConfigs
        configs = TuningLogConfigs(tuning_logs, use_default_logs=False)
    graph, out_names = prepare_graph(model, input_shapes, opt_level, print_ir_after, tgt, quant)
    cm = compile_graph(graph, tgt, name, out_names, opt_level, debug_ir, configs, profile,
                       precision, print_ir_after)
    return package(cm)


def package(cm: CompiledModel):
    """Link or bundle a CompiledModel into an Artifact, the way its target's backend does."""
    from tilecc.codegen.backend import backend_for

    return backend_for(cm.target, cm.precision).package(cm)


__all__ = ["CompiledModel", "TensorType", "build", "compile_graph"]

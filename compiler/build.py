"""The build driver: ONNX -> graph passes -> fused kernels -> loop IR -> LLVM -> artifact."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from . import progress, te
from .graph import Graph, Node, TensorType, _freeze
from .loopir import PrimFunc, format_func
from .schedule import create_schedule, lower
from .topi.generic import schedule_default
from .topi.registry import get_compute, get_schedule


@dataclass
class CompiledModel:
    """Everything the artifact needs, before packaging."""

    name: str
    target: object
    object_code: bytes
    params: bytes
    inputs: list[dict]
    outputs: list[dict]
    workspace_size: int
    arena: dict
    kernels: list[dict] = field(default_factory=list)
    llvm_ir: str = ""
    loop_ir: list[str] = field(default_factory=list)


def prepare_outputs(graph: Graph) -> Graph:
    """Give every graph output a kernel that writes it: outputs that are inputs, constants,
    Reshape views or repeated get a Copy node."""
    g = graph.copy()
    producers = g.producers()
    seen: set[str] = set()
    for j, o in enumerate(g.outputs):
        p = producers.get(o)
        if o in g.inputs or o in g.consts or o in seen or (p is not None and p.op == "Reshape"):
            new = g.fresh_name(f"{o}_copy")
            g.types[new] = g.types[o]
            g.nodes.append(Node("Copy", (o,), (new,), {}, name=f"copy_{j}"))
            g.outputs[j] = new
        seen.add(g.outputs[j])
    return g


def _kernel_key(node: Node, graph: Graph) -> tuple:
    pos = {v: k for k, v in enumerate(node.inputs)}
    local: dict[str, int] = {}
    parts = []
    for m in node.attrs["nodes"]:
        ins = tuple(("in", pos[i]) if i in pos else ("local", local.get(i, -1)) for i in m.inputs)
        for o in m.outputs:
            local[o] = len(local)
        parts.append((m.op, ins, _freeze(m.attrs), tuple(graph.types[o] for o in m.outputs)))
    outs = tuple(local.get(o, -1) for o in node.outputs)
    return (tuple(parts), tuple(graph.types[i] for i in node.inputs), outs)


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
                  precision: str = "fp32") -> CompiledModel:
    from tilecc.codegen.aot import emit_entry
    from tilecc.codegen.llvm import ModuleCodegen
    from tilecc.passes.fuse import fuse_ops
    from tilecc.passes.memory import concat_views, pack_params, plan_memory, view_root, view_roots

    fused = fuse_ops(graph)
    half = None
    if precision == "fp16":  # float16 storage between kernels, float32 math in them
        from tilecc.passes.precision import HalfStorage, half_storage
        half = HalfStorage(graph, fused)
    # Bare metal: no threads, so parallel loops stay serial (no tilecc_parallel_for calls).
    cg = ModuleCodegen(target, name, allow_parallel=not getattr(target, "bare_metal", False))
    in_pos = {v: k for k, v in enumerate(graph.inputs)}
    out_pos = {v: k for k, v in enumerate(graph.outputs)}

    def nbytes(v):
        size = graph.types[v].nbytes if v in graph.types else fused.types[v].nbytes
        return half.nbytes(v, size) if half else size

    root, reshape_root = view_roots(fused)
    protected = set(graph.inputs) | set(graph.outputs) | set(graph.consts)
    views = concat_views(fused, protected, nbytes)
    in_place = {r for r, _ in views.values()}

    def rootof(v):
        return view_root(v, root, views)[0]

    steps: list[tuple[Node, object, list[str], list]] = []
    cache: dict[tuple, tuple] = {}
    kernels_meta, loop_ir = [], []
    bar = progress.task("compiling kernels", total=len(fused.nodes))
    for node in fused.nodes:
        bar.update(1, node.name)
        if node.op == "Reshape" or node.outputs[0] in in_place:
            continue
        key = _kernel_key(node, fused) + ((half.flags(node),) if half else ())
        if key not in cache:
            kname = f"k{len(cache)}_{node.name}"[:60]
            pf, kinfo = make_kernel(node, fused, target, kname, configs or DefaultConfigs())
            if half:
                pf = half_storage(pf, half.flags(node))
            if debug_ir:
                loop_ir.append(format_func(pf))
            cache[key] = (cg.add_kernel(pf), pf, kinfo)
        fn, pf, kinfo = cache[key]
        scratch = [f"__scratch{len(steps)}_{k}" for k in range(len(pf.attrs["scratch"]))]
        steps.append((node, fn, scratch, pf.attrs["scratch"]))
        kernels_meta.append({"kernel": fn.name, "ops": [m.op for m in node.attrs["nodes"]],
                             "inputs": list(node.inputs), "outputs": list(node.outputs),
                             "shape": list(fused.types[node.outputs[0]].shape),
                             "workload": kinfo.workload, "config": kinfo.config,
                             "config_source": kinfo.source, "flops": kinfo.flops,
                             "types": {v: str(fused.types[v])
                                       for v in (*node.inputs, *node.outputs) if v}})

    bar.close()

    used_consts = []
    for node, *_ in steps:
        for i in node.inputs:
            r = rootof(i)
            if r in graph.consts and r not in used_consts:
                used_consts.append(r)
    params, param_off = pack_params(half.consts(graph.consts) if half else graph.consts,
                                    used_consts)

    # Lifetimes of arena values, in steps.
    sizes: dict[str, int] = {}
    life: dict[str, list[int]] = {}
    for s, (node, fn, scratch, sbufs) in enumerate(steps):
        for o in node.outputs:
            r = rootof(o)  # a concat input lives in the concat's buffer from its first slice
            if r not in out_pos:
                sizes[r] = nbytes(r)
                life.setdefault(r, [s, s])[1] = s
        for i in node.inputs:
            r = rootof(i)
            if r in life:
                life[r][1] = max(life[r][1], s)
        for nm, b in zip(scratch, sbufs):
            sizes[nm] = b.size * np.dtype(b.dtype).itemsize
            life[nm] = [s, s]
    offsets, arena_size = plan_memory(sizes, {k: tuple(v) for k, v in life.items()})

    def storage(v):
        r, off = view_root(v, root, views)
        if r in out_pos:
            return ("out", out_pos[r])
        if r in in_pos:
            return ("in", in_pos[r])
        if r in param_off:
            return ("param", param_off[r])
        return ("arena", offsets[r] + off)

    entry_steps = []
    for node, fn, scratch, _ in steps:
        refs = [storage(i) for i in node.inputs] + [storage(o) for o in node.outputs]
        refs += [("arena", offsets[nm]) for nm in scratch]
        entry_steps.append((fn, refs))
    emit_entry(cg, name, entry_steps, arena_size, len(params), profile=profile,
               num_inputs=len(graph.inputs), num_outputs=len(graph.outputs))
    with progress.task("LLVM codegen", total=1) as bar:
        obj, llvm_ir = cg.compile(opt_level=3 if opt_level >= 1 else 0)
        bar.update(1)

    def info(names, ext_names):
        return [{"name": e, "shape": list(graph.types[v].shape), "dtype": graph.types[v].dtype}
                for v, e in zip(names, ext_names)]

    inter = sum(sz for k, sz in sizes.items())
    arena = {"arena_bytes": arena_size, "naive_bytes": inter,
             "num_kernels": len(steps), "unique_kernels": len(cache),
             "params_bytes": len(params), "profile": profile,
             # The plan per buffer (tilecc inspect --graph draws it); first/last are steps.
             "tensors": [{"name": v, "offset": offsets[v], "nbytes": sizes[v],
                          "first": life[v][0], "last": life[v][1]} for v in sizes],
             "aliases": {v: reshape_root(v) for v in root},
             # Concats written in place: output -> its inputs (each a slice, no kernel).
             "concats": {r: [v for v in views if views[v][0] == r] for r in in_place},
             "output_values": list(graph.outputs),
             "params": [{"name": c, "offset": param_off[c], "type": str(graph.types[c])}
                        for c in used_consts]}
    return CompiledModel(name, target, obj, params, info(graph.inputs, graph.inputs),
                         info(graph.outputs, out_names), arena_size, arena, kernels_meta,
                         llvm_ir if debug_ir else "", loop_ir)


def prepare_graph(model, input_shapes=None, opt_level: int = 2, print_ir_after=None,
                  target=None, quant=None, blocked: bool = True) -> tuple[Graph, list[str]]:
    """Import and optimise a model; returns the graph ready for fusion and its output names.
    `quant` (passes.quantize.QuantOptions) quantizes it to int8 after the float passes.
    `blocked=False` keeps activations in plain NCHW (no passes.blocked_layout), so every
    value keeps its model name and layout (per-layer comparisons)."""
    if isinstance(model, Graph):
        graph = model
    else:
        from tilecc.frontends.onnx import from_onnx
        graph = from_onnx(model, input_shapes)
    from tilecc.passes import quantize as q
    from tilecc.passes.pipeline import run_passes
    graph = q.lower_qdq(graph)  # before folding turns quantized weights into float ones
    graph = run_passes(graph, opt_level=opt_level, print_ir_after=set(print_ir_after or ()),
                       out=sys.stderr)
    if quant is not None:
        graph = q.quantize_ptq(graph, quant, target)
    from tilecc.passes.blocked_layout import to_blocked_layout
    from tilecc.passes.layout import pack_weights
    if opt_level >= 1 and blocked:
        graph = to_blocked_layout(graph, target)
    graph = q.pack_qweights(pack_weights(graph, target), target)
    out_names = list(graph.outputs)
    return prepare_outputs(graph), out_names


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

    tgt = get_target(target)
    if configs is None and tuning_logs:
        from tilecc.autotune.provider import TuningLogConfigs
        configs = TuningLogConfigs(tuning_logs, use_default_logs=False)
    graph, out_names = prepare_graph(model, input_shapes, opt_level, print_ir_after, tgt, quant)
    if tgt.kind == "opencl":
        from tilecc.codegen.opencl import compile_opencl, package_opencl
        return package_opencl(compile_opencl(graph, tgt, name, out_names, precision, configs,
                                             debug_ir))
    if precision not in ("fp32", "fp16"):
        raise ValueError(f"precision {precision!r}: use fp32 or fp16")
    cm = compile_graph(graph, tgt, name, out_names, opt_level, debug_ir, configs, profile,
                       precision)
    return package(cm)


def package(cm: CompiledModel):
    """Link the object with the C runtime into a shared library and wrap it as an Artifact."""
    import tempfile
    from pathlib import Path

    from tilecc.codegen.link import link_shared
    from tilecc.runtime.artifact import Artifact

    if getattr(cm.target, "bare_metal", False):
        return _package_bare_metal(cm)
    with tempfile.TemporaryDirectory(prefix="tilecc_build_") as tmp:
        obj = Path(tmp) / "model.o"
        obj.write_bytes(cm.object_code)
        lib = link_shared([obj], Path(tmp) / "model.so", cm.target).read_bytes()
    return Artifact.create(name=cm.name, target=cm.target, inputs=cm.inputs, outputs=cm.outputs,
                           params=cm.params, workspace_size=cm.workspace_size, library=lib,
                           arena=cm.arena, kernels=cm.kernels,
                           extra_files={"lib/model.o": cm.object_code})


def _package_bare_metal(cm: CompiledModel):
    """lib/model.o (model + freestanding memcpy/memset, no undefined symbols) and the header;
    no shared library. model.json["memory"] is the footprint report."""
    import tempfile
    from pathlib import Path

    from tilecc.codegen.link import link_bare_metal, section_sizes
    from tilecc.runtime.artifact import Artifact

    with tempfile.TemporaryDirectory(prefix="tilecc_build_") as tmp:
        (Path(tmp) / "kernels.o").write_bytes(cm.object_code)
        obj = link_bare_metal([Path(tmp) / "kernels.o"], Path(tmp) / "model.o",
                              cm.target).read_bytes()
    sec = section_sizes(obj)
    memory = {"code_bytes": sec["text"] + sec["rodata"], "text_bytes": sec["text"],
              "rodata_bytes": sec["rodata"], "data_bytes": sec["data"] + sec["bss"],
              "weights_bytes": len(cm.params), "arena_bytes": cm.workspace_size}
    return Artifact.create(name=cm.name, target=cm.target, inputs=cm.inputs, outputs=cm.outputs,
                           params=cm.params, workspace_size=cm.workspace_size, library=None,
                           arena=cm.arena, kernels=cm.kernels, memory=memory,
                           extra_files={"lib/model.o": obj})


__all__ = ["CompiledModel", "TensorType", "build", "compile_graph"]

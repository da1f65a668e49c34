"""The one build driver: a prepared graph -> fused kernels -> one memory plan -> a backend's
module. Every target goes through `compile_model`; what differs per target (kernel code,
argument binding, emission, packaging) is a codegen.backend.Backend."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import progress
from .graph import Graph, Node, _freeze
from .loopir import format_func


@dataclass
class CompiledModel:
    """Everything the artifact needs, before packaging: an object file (CPU) and/or other
    files (OpenCL: kernels.cl and the launch plan)."""

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
    files: dict[str, bytes] = field(default_factory=dict)
    precision: str = "fp32"


def kernel_key(node: Node, graph: Graph) -> tuple:
    """Two fused nodes with equal keys compute the same function of their arguments, so they
    share one kernel: member ops, attrs, types and the wiring between them, not value names."""
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


def compile_model(graph: Graph, target, name: str, out_names: list[str], opt_level: int = 2,
                  debug_ir: bool = False, configs=None, profile: bool = False,
                  precision: str = "fp32", print_ir_after=None) -> CompiledModel:
    from tilecc.build import DefaultConfigs
    from tilecc.codegen.backend import Kernel, KernelCall, backend_for
    from tilecc.passes.memory import Step, concat_views, plan_model, view_roots
    from tilecc.passes.pipeline import FUSE, PassContext, run_pass

    target = target.for_precision(precision)  # as build() does, for direct callers
    backend = backend_for(target, precision, profile, opt_level)
    fused = run_pass(FUSE, graph, PassContext(opt_level=opt_level, target=target,
                                              print_ir_after=set(print_ir_after or ())))
    backend.start(graph, fused, name)

    def nbytes(v: str) -> int:
        return backend.stored_nbytes(v, graph.types[v] if v in graph.types else fused.types[v])

    parent, reshape_root = view_roots(fused)
    protected = set(graph.inputs) | set(graph.outputs) | set(graph.consts)
    views = concat_views(fused, protected, nbytes)
    in_place = {r for r, _ in views.values()}

    cache: dict[tuple, Kernel] = {}
    calls: list[KernelCall] = []
    kernels_meta, loop_ir = [], []
    bar = progress.task("compiling kernels", total=len(fused.nodes))
    for node in fused.nodes:
        bar.update(1, node.name)
        if node.op == "Reshape" or node.outputs[0] in in_place:
            continue
        key = kernel_key(node, fused) + backend.kernel_key(node)
        if key not in cache:
            kernel = backend.make_kernel(node, fused, backend.kernel_name(len(cache), node),
                                         configs or DefaultConfigs())
            if debug_ir:
                loop_ir.append(format_func(kernel.func))
            cache[key] = kernel
        kernel = cache[key]
        scratch = {f"__scratch{len(calls)}_{k}": backend.scratch_nbytes(b)
                   for k, b in enumerate(kernel.func.attrs["scratch"])}
        calls.append(KernelCall(node, kernel, scratch))
        kinfo = kernel.info
        kernels_meta.append({"kernel": kernel.name, "ops": [m.op for m in node.attrs["nodes"]],
                             "inputs": list(node.inputs), "outputs": list(node.outputs),
                             "shape": list(fused.types[node.outputs[0]].shape),
                             "workload": kinfo.workload, "config": kinfo.config,
                             "config_source": kinfo.source, "flops": kinfo.flops,
                             "types": {v: str(fused.types[v])
                                       for v in (*node.inputs, *node.outputs) if v},
                             **backend.kernel_meta(kernel)})
    bar.close()

    stored = backend.stored_consts(graph.consts)
    plan = plan_model(graph.inputs, graph.outputs, stored,
                      [Step(tuple(c.node.inputs), tuple(c.node.outputs), c.scratch)
                       for c in calls], parent, views, nbytes, backend.param_align)
    inputs = [backend.io_spec(v, graph.types[v]) for v in graph.inputs]
    outputs = [backend.io_spec(e, graph.types[v]) for v, e in zip(graph.outputs, out_names)]
    emitted = backend.emit(name, [(c, backend.bind(c, plan)) for c in calls], plan, inputs,
                           outputs)
    arena = {"arena_bytes": plan.arena_size, "naive_bytes": plan.intermediate_bytes,
             "num_kernels": len(calls), "unique_kernels": len(cache),
             "params_bytes": len(plan.params), "profile": profile,
             # The plan per buffer (tilecc inspect --graph draws it); first/last are steps.
             "tensors": [{"name": v, "offset": plan.offsets[v], "nbytes": size,
                          "first": plan.lifetimes[v][0], "last": plan.lifetimes[v][1]}
                         for v, size in plan.sizes.items()],
             "aliases": {v: reshape_root(v) for v in parent},
             # Concats written in place: output -> its inputs (each a slice, no kernel).
             "concats": {r: [v for v in views if views[v][0] == r] for r in in_place},
             "output_values": list(graph.outputs),
             # The type as stored in params.bin: fp16 builds keep float32 weights as half.
             "params": [{"name": c, "offset": plan.param_offsets[c],
                         "type": f"{stored[c].dtype.name}[{','.join(map(str, stored[c].shape))}]"}
                        for c in plan.used_consts],
             "precision": precision,
             **backend.arena_meta()}
    return CompiledModel(name, target, emitted.object_code, plan.params, inputs, outputs,
                         plan.arena_size, arena, kernels_meta,
                         emitted.llvm_ir if debug_ir else "", loop_ir, emitted.files,
                         precision)

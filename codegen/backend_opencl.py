"""The OpenCL backend: kernels.cl (one OpenCL kernel per root stage of a fused kernel) and an
ordered launch plan over one device arena (plan.json, and plan.txt for the C host runner in
runtime/c/tilecc_ocl_runner.c). Every kernel argument is a buffer plus an element offset, so a
producer writes its slice of an in-place concat directly. With fp16 every float tensor,
weights and graph inputs/outputs included, is `half` in memory."""

from __future__ import annotations

import json
import math
import re

import numpy as np

from tilecc.codegen.backend import Backend, Emitted, Kernel, KernelCall
from tilecc.codegen.opencl import OpenCLCodegenError, emit_primfunc, lower_stages, render_module
from tilecc.graph import Graph, Node, TensorType
from tilecc.loopir import Buffer
from tilecc.passes.memory import MemoryPlan

STORAGE_NP = {"bool": "uint8"}
# plan.txt names a buffer kind the way the C runner spells it.
PLAN_BUF = {"in": "input", "out": "output", "param": "params", "arena": "arena"}


def make_gpu_kernel(node: Node, graph: Graph, target, name: str, configs):
    """Schedule a fused node for the GPU: the op's "opencl" template, and the GPU default for
    every other root stage (a CPU template's loops are reset first)."""
    from tilecc.build import build_schedule
    from tilecc.topi.gpu import is_bound, schedule_default

    sch, args, info, _ = build_schedule(node, graph, target, configs)
    for st in sch.root_stages():
        if not is_bound(st):
            schedule_default(st, target)
    pf, bodies = lower_stages(sch, args, name)
    return pf, bodies, info


class OpenCL(Backend):
    precision_error = OpenCLCodegenError

    @property
    def fp16(self) -> bool:
        return self.precision == "fp16"

    def start(self, graph: Graph, fused: Graph, name: str) -> None:
        self.sources: list[str] = []
        self.launches: list[dict] = []

    def kernel_name(self, index: int, node: Node) -> str:
        return re.sub(r"\W", "_", super().kernel_name(index, node))

    def itemsize(self, dtype: str) -> int:
        """Bytes of one stored element: float32 is half in fp16 storage."""
        if self.fp16 and dtype == "float32":
            return 2
        return np.dtype(STORAGE_NP.get(dtype, dtype)).itemsize

    def stored_nbytes(self, value: str, t: TensorType) -> int:
        return t.size * self.itemsize(t.dtype)

    def scratch_nbytes(self, buf: Buffer) -> int:
        return buf.size * self.itemsize(buf.dtype)

    def stored_consts(self, consts: dict) -> dict:
        if not self.fp16:
            return consts
        # Weights stored as half too; integer constants keep their type.
        return {k: (v.astype(np.float16) if v.dtype == np.float32 else v)
                for k, v in consts.items()}

    def io_spec(self, name: str, t: TensorType) -> dict:
        storage = "float16" if self.fp16 and t.dtype == "float32" else t.dtype
        return {**super().io_spec(name, t), "storage": storage}

    def make_kernel(self, node: Node, fused: Graph, name: str, configs) -> Kernel:
        pf, bodies, info = make_gpu_kernel(node, fused, self.target, name, configs)
        emitted = emit_primfunc(pf, bodies, self.fp16)
        self.sources += [src for src, _ in emitted]
        return Kernel(pf.name, pf, info, [launch for _, launch in emitted])

    def kernel_meta(self, kernel: Kernel) -> dict:
        return {"launches": [ln.kernel for ln in kernel.code]}

    def bind(self, call: KernelCall, plan: MemoryPlan) -> list[dict]:
        """plan.json arguments: a buffer and an offset in elements of the parameter's dtype."""
        pf = call.kernel.func
        names = (*call.node.inputs, *call.node.outputs, *call.scratch)
        args = []
        for v, b in zip(names, pf.params):
            kind, k = plan.ref(v) if v not in call.scratch else ("arena", plan.offsets[v])
            if kind in ("in", "out"):
                args.append({"buf": PLAN_BUF[kind], "index": k, "offset": 0})
            else:
                args.append({"buf": PLAN_BUF[kind], "index": 0,
                             "offset": k // self.itemsize(b.dtype)})
        return args

    def emit(self, name: str, bound: list, plan: MemoryPlan, inputs: list[dict],
             outputs: list[dict]) -> Emitted:
        for call, args in bound:
            for ln in call.kernel.code:
                self.launches.append({"kernel": ln.kernel, "args": args,
                                      "global": ln.global_size, "local": ln.local})
        run_plan = {"version": 1, "precision": self.precision, "arena_bytes": plan.arena_size,
                    "params_bytes": len(plan.params), "inputs": inputs, "outputs": outputs,
                    "launches": self.launches}
        source = render_module(self.sources, name, self.target, self.fp16)
        return Emitted(files={"kernels.cl": source.encode(),
                              "plan.json": json.dumps(run_plan, indent=1).encode(),
                              "plan.txt": plan_text(run_plan).encode()})

    def arena_meta(self) -> dict:
        return {"num_launches": len(self.launches)}

    def package(self, cm):
        """kernels.cl + plan.json + plan.txt + params.bin; no native library."""
        return self.artifact(cm, None, cm.files, precision=cm.precision)


def plan_text(plan: dict) -> str:
    """plan.json flattened to whitespace-separated lines for the C host runner."""
    sz = {"float32": 4, "float16": 2, "float64": 8, "int64": 8, "uint64": 8, "int32": 4,
          "uint32": 4, "int16": 2, "uint16": 2, "int8": 1, "uint8": 1, "bool": 1}
    lines = ["tilecc-ocl-plan 1", f"arena {plan['arena_bytes']}",
             f"params {plan['params_bytes']}", f"inputs {len(plan['inputs'])}"]
    for s in plan["inputs"]:
        lines.append(f"input {math.prod(s['shape']) * sz[s['storage']]} {s['storage']}")
    lines.append(f"outputs {len(plan['outputs'])}")
    for s in plan["outputs"]:
        lines.append(f"output {math.prod(s['shape']) * sz[s['storage']]} {s['storage']}")
    lines.append(f"launches {len(plan['launches'])}")
    for ln in plan["launches"]:
        lines.append(f"launch {ln['kernel']} {len(ln['args'])} "
                     + " ".join(map(str, ln["global"])) + " " + " ".join(map(str, ln["local"])))
        for a in ln["args"]:
            lines.append(f"arg {a['buf']} {a['index']} {a['offset']}")
    return "\n".join(lines) + "\n"

"""CPU backends: kernels are LLVM functions, the entry is one native `<name>_run` calling them
on a static arena (codegen/aot.py). With an OS the object is linked with the C runtime into a
shared library; bare metal gets a self-contained object and a memory report instead."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tilecc import progress
from tilecc.codegen.backend import Backend, Emitted, Kernel, KernelCall
from tilecc.graph import Graph, Node, TensorType
from tilecc.passes.memory import MemoryPlan


class LlvmBackend(Backend):
    """Everything the CPU backends share: LLVM kernels, storage refs, the AOT entry."""

    allow_parallel = True
    # The embedded metadata as JSON too (names, shapes, dtypes) for the Python loader;
    # without it only the size table is kept (bare metal: flash is scarce, no loader).
    embed_json = True

    def start(self, graph: Graph, fused: Graph, name: str) -> None:
        from tilecc.codegen.llvm import ModuleCodegen

        self.cg = ModuleCodegen(self.target, name, allow_parallel=self.allow_parallel,
                                reassociate=self.opt_level >= 3)
        self.half = None
        if self.precision == "fp16":  # float16 storage between kernels, float32 math in them
            from tilecc.passes.precision import HalfStorage
            self.half = HalfStorage(graph, fused)

    def kernel_key(self, node: Node) -> tuple:
        return (self.half.flags(node),) if self.half else ()

    def stored_nbytes(self, value: str, t: TensorType) -> int:
        return self.half.nbytes(value, t.nbytes) if self.half else t.nbytes

    def stored_consts(self, consts: dict) -> dict:
        return self.half.consts(consts) if self.half else consts

    def make_kernel(self, node: Node, fused: Graph, name: str, configs) -> Kernel:
        from tilecc.build import make_kernel

        pf, info = make_kernel(node, fused, self.target, name, configs)
        if self.half:
            from tilecc.passes.precision import half_storage
            pf = half_storage(pf, self.half.flags(node))
        fn = self.cg.add_kernel(pf)
        return Kernel(fn.name, pf, info, fn)

    def bind(self, call: KernelCall, plan: MemoryPlan) -> list[tuple[str, int]]:
        """Storage refs for emit_entry: ("in"|"out", index) or ("param"|"arena", byte offset)."""
        refs = [plan.ref(v) for v in (*call.node.inputs, *call.node.outputs)]
        return refs + [("arena", plan.offsets[nm]) for nm in call.scratch]

    def emit(self, name: str, bound: list, plan: MemoryPlan, inputs: list[dict],
             outputs: list[dict]) -> Emitted:
        from tilecc.codegen.aot import emit_abi, emit_entry
        from tilecc.runtime.libmeta import abi_record

        emit_abi(self.cg, name, abi_record(name, inputs, outputs, plan.arena_size,
                                           len(plan.params)), with_json=self.embed_json)
        emit_entry(self.cg, name, [(call.kernel.code, refs) for call, refs in bound],
                   plan.arena_size, len(plan.params), profile=self.profile,
                   num_inputs=len(inputs), num_outputs=len(outputs))
        with progress.task("LLVM codegen", total=1) as bar:
            # -O1 gets LLVM's -O1 pipeline; -O2 and -O3 its -O3 one (passes/pipeline.py).
            obj, llvm_ir = self.cg.compile(opt_level={0: 0, 1: 1}.get(self.opt_level, 3))
            bar.update(1)
        return Emitted(object_code=obj, llvm_ir=llvm_ir)


class CpuShared(LlvmBackend):
    """A CPU with an OS: lib/model.so (object + C runtime) and lib/model.o."""

    def package(self, cm):
        from tilecc.codegen.link import link_shared
        with tempfile.TemporaryDirectory(prefix="tilecc_build_") as tmp:
            obj = Path(tmp) / "model.o"
            obj.write_bytes(cm.object_code)
            lib = link_shared([obj], Path(tmp) / "model.so", cm.target).read_bytes()
        return self.artifact(cm, lib, {"lib/model.o": cm.object_code})


class BareMetal(LlvmBackend):
    """No OS: lib/model.o (model + freestanding memcpy/memset, no undefined symbols) and the
    header, no shared library; model.json["memory"] is the footprint report."""

    # No threads, so parallel loops stay serial (no tilecc_parallel_for calls).
    allow_parallel = False
    embed_json = False

    def package(self, cm):
        from tilecc.codegen.link import link_bare_metal, section_sizes
        with tempfile.TemporaryDirectory(prefix="tilecc_build_") as tmp:
            (Path(tmp) / "kernels.o").write_bytes(cm.object_code)
            obj = link_bare_metal([Path(tmp) / "kernels.o"], Path(tmp) / "model.o",
                                  cm.target).read_bytes()
        sec = section_sizes(obj)
        memory = {"code_bytes": sec["text"] + sec["rodata"], "text_bytes": sec["text"],
                  "rodata_bytes": sec["rodata"], "data_bytes": sec["data"] + sec["bss"],
                  "weights_bytes": len(cm.params), "arena_bytes": cm.workspace_size}
        return self.artifact(cm, None, {"lib/model.o": obj}, memory=memory)

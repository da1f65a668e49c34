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
        # float16 storage between kernels; math in float32, or in half where the target
        # has it (codegen/llvm_half.py)
        if self.precision == "fp16":
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
            if self.target.float_bytes == 2:
                from tilecc.codegen.llvm_half import half_arithmetic
                pf = half_arithmetic(pf)
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
        self.finish_module()
        with progress.task("LLVM codegen", total=1) as bar:
            # -O1 gets LLVM's -O1 pipeline; -O2 and -O3 its -O3 one (passes/pipeline.py).
            obj, llvm_ir = self.cg.compile(opt_level={0: 0, 1: 1}.get(self.opt_level, 3))
            bar.update(1)
        return Emitted(object_code=obj, llvm_ir=llvm_ir)

    def finish_module(self) -> None:
        """Last changes to the LLVM module before it is compiled."""


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
    """No OS: lib/model.o (model + freestanding memcpy/memset and ARM helpers, no undefined
    symbols) and the header, no shared library; model.json["memory"] is the footprint report.

    The object carries the weights as `<name>_weights` in .rodata (flash on a
    microcontroller) and a static arena `<name>_arena` in .bss, so firmware needs no loader
    or allocator: `<name>_init(<name>_weights, TILECC_PARAMS_SIZE)` once, then
    `<name>_run(inputs, outputs, <name>_arena)`. Both sit in sections of their own
    (WEIGHTS_SECTION, ARENA_SECTION) so a linker script can place them and the report can
    tell them from code."""

    # No threads, so parallel loops stay serial (no tilecc_parallel_for calls).
    allow_parallel = False
    embed_json = False
    # Flash is what runs out on a microcontroller, and its cores have no 64-byte lines (16:
    # one Helium/NEON vector): DS-CNN int8's 33 constants lose 1 KiB less to padding.
    param_align = 16
    WEIGHTS_SECTION, ARENA_SECTION = ".rodata.tilecc_weights", ".bss.tilecc_arena"

    def emit(self, name: str, bound: list, plan: MemoryPlan, inputs: list[dict],
             outputs: list[dict]) -> Emitted:
        from llvmlite import ir

        from tilecc.codegen.stack_usage import (
            assembly_with_unwind_info,
            frames_from_assembly,
            model_frames,
        )
        from tilecc.passes.memory import ALIGN

        for suffix, data, section in (("weights", plan.params, self.WEIGHTS_SECTION),
                                      ("arena", None, self.ARENA_SECTION)):
            size = len(data) if data is not None else plan.arena_size
            ty = ir.ArrayType(ir.IntType(8), max(size, 1))
            g = ir.GlobalVariable(self.cg.module, ty, f"{name}_{suffix}")
            g.initializer = ir.Constant(ty, bytearray(data) if data else None)
            g.global_constant = data is not None
            g.section, g.align = section, ALIGN
        emitted = super().emit(name, bound, plan, inputs, outputs)
        frames = frames_from_assembly(assembly_with_unwind_info(emitted.llvm_ir,
                                                                self.cg.target_machine()))
        self._frames = model_frames(frames, f"{name}_run")
        return emitted

    def finish_module(self) -> None:
        # Nothing on bare metal unwinds. Without nounwind, a call to an external function
        # (the profile clock) gets an EHABI table naming __aeabi_unwind_cpp_pr1 on ARM.
        for fn in self.cg.module.functions:
            fn.attributes.add("nounwind")

    def arena_meta(self) -> dict:
        # package() runs on a fresh backend (build.package), so the frames travel in cm.arena.
        return {"stack_frames": self._frames}

    def package(self, cm):
        from tilecc.codegen.link import _elf_sections, link_bare_metal, section_sizes
        from tilecc.codegen.stack_usage import estimate
        from tilecc.runtime.artifact import HEADER_PATH

        runtime_frames: dict[str, int] = {}
        with tempfile.TemporaryDirectory(prefix="tilecc_build_") as tmp:
            (Path(tmp) / "kernels.o").write_bytes(cm.object_code)
            obj = link_bare_metal([Path(tmp) / "kernels.o"], Path(tmp) / "model.o",
                                  cm.target, runtime_frames).read_bytes()
        sec = section_sizes(obj)
        named = {s["name"]: s["size"] for s in _elf_sections(obj)}
        weights, arena = named.get(self.WEIGHTS_SECTION, 0), named.get(self.ARENA_SECTION, 0)
        frames = cm.arena.get("stack_frames", {})
        stack = estimate(frames.get("entry", 0), frames.get("kernels", 0), runtime_frames)
        memory = {"code_bytes": sec["text"] + sec["rodata"] - weights,
                  "text_bytes": sec["text"], "rodata_bytes": sec["rodata"] - weights,
                  "data_bytes": sec["data"] + sec["bss"] - arena,
                  "weights_bytes": len(cm.params), "arena_bytes": cm.workspace_size,
                  "weights_section_bytes": weights, "arena_section_bytes": arena,
                  "stack_bytes": stack,
                  "stack_method": "LLVM frames (unwind directives) of the entry + largest "
                                  "kernel + two deepest runtime routines (gcc -fstack-usage)",
                  # What a device needs: flash holds code, weights and .data's initial values
                  # (and read-only tables such as .ARM.exidx); RAM holds .data, .bss (the
                  # arena) and the stack.
                  "flash_bytes": sec["text"] + sec["rodata"] + sec["data"],
                  "ram_bytes": sec["data"] + sec["bss"] + stack}
        art = self.artifact(cm, None, {"lib/model.o": obj}, memory=memory)
        art.files[HEADER_PATH] = _static_header(art.files[HEADER_PATH].decode(),
                                                cm.name).encode()
        return art


def _static_header(header: str, name: str) -> str:
    """The generated header plus the object's own weights and arena."""
    decl = (f"/* Bare metal: the weights (.rodata) and a static arena (.bss) are in the object:\n"
            f" * {name}_init({name}_weights, TILECC_PARAMS_SIZE), then\n"
            f" * {name}_run(inputs, outputs, {name}_arena). */\n"
            f"extern const uint8_t {name}_weights[];\n"
            f"extern uint8_t {name}_arena[];\n"
            f"#define TILECC_MODEL_WEIGHTS {name}_weights\n"
            f"#define TILECC_MODEL_ARENA {name}_arena\n\n")
    at = header.index("#define TILECC_MODEL_NAME")
    return header[:at] + decl + header[at:]

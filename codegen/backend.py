"""What a code generator supplies to the build driver (tilecc.driver).

The driver does everything that does not depend on the kind of code made: fusion, kernel
dedup, in-place concats, the memory plan, params packing and the artifact metadata. A
Backend only makes a kernel from a fused node, binds a value's storage for one kernel call,
emits the module (the entry or the launch plan) and packages it. Which backend builds a
model follows from the target's data (`kind`, `bare_metal`), see `backend_for`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tilecc.graph import Graph, Node, TensorType
from tilecc.loopir import Buffer, PrimFunc
from tilecc.passes.memory import ALIGN, MemoryPlan

PRECISIONS = ("fp32", "fp16")


@dataclass
class Kernel:
    """One deduplicated kernel: its loop IR, how it was scheduled (build.KernelInfo) and what
    the backend made of it (an LLVM function, a list of OpenCL launches)."""

    name: str
    func: PrimFunc
    info: Any
    code: Any


@dataclass
class KernelCall:
    """A kernel run on one fused node's values; `scratch` are its private buffers (name ->
    bytes) in the arena."""

    node: Node
    kernel: Kernel
    scratch: dict[str, int] = field(default_factory=dict)


@dataclass
class Emitted:
    """A backend's finished module: an object file, other artifact files, or both."""

    object_code: bytes = b""
    files: dict[str, bytes] = field(default_factory=dict)
    llvm_ir: str = ""


class Backend(ABC):
    """One way to turn fused kernels into an artifact. `precision` is the storage of float
    tensors between kernels (fp16: half in memory, fp32 math); `profile` asks for per-kernel
    timing."""

    # The error a bad precision raises: each backend's historical error class.
    precision_error: type[Exception] = ValueError
    # Where each constant starts in params (bytes): a cache line, for aligned vector loads.
    param_align = ALIGN

    def __init__(self, target, precision: str = "fp32", profile: bool = False,
                 opt_level: int = 2):
        if precision not in PRECISIONS:
            raise self.precision_error(f"precision {precision!r}: use fp32 or fp16")
        self.target = target
        self.precision = precision
        self.profile = profile
        self.opt_level = opt_level

    def start(self, graph: Graph, fused: Graph, name: str) -> None:
        """Called once before the first kernel of a model is made."""

    def kernel_name(self, index: int, node: Node) -> str:
        return f"k{index}_{node.name}"[:60]

    def kernel_key(self, node: Node) -> tuple:
        """What besides the fused ops and types makes two kernels different here."""
        return ()

    def stored_nbytes(self, value: str, t: TensorType) -> int:
        """Bytes a value takes between kernels (its storage type may be narrower)."""
        return t.nbytes

    def scratch_nbytes(self, buf: Buffer) -> int:
        return buf.size * np.dtype(buf.dtype).itemsize

    def stored_consts(self, consts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The constants as packed into params.bin."""
        return consts

    def io_spec(self, name: str, t: TensorType) -> dict:
        """An input's or output's entry in model.json."""
        return {"name": name, "shape": list(t.shape), "dtype": t.dtype}

    def kernel_meta(self, kernel: Kernel) -> dict:
        """Backend-specific keys of a kernel's model.json entry."""
        return {}

    def arena_meta(self) -> dict:
        """Backend-specific keys of model.json["arena"], once `emit` ran."""
        return {}

    @abstractmethod
    def make_kernel(self, node: Node, fused: Graph, name: str, configs) -> Kernel:
        """Schedule and lower a fused node (and add it to the module being built)."""

    @abstractmethod
    def bind(self, call: KernelCall, plan: MemoryPlan) -> Any:
        """Where a call's arguments live, in the form `emit` takes."""

    @abstractmethod
    def emit(self, name: str, bound: list[tuple[KernelCall, Any]], plan: MemoryPlan,
             inputs: list[dict], outputs: list[dict]) -> Emitted:
        """The module running every bound call in order."""

    @abstractmethod
    def package(self, cm) -> Any:
        """A CompiledModel (tilecc.driver) -> an Artifact."""

    def artifact(self, cm, library: bytes | None, files: dict[str, bytes], **meta: Any):
        """The Artifact of `cm` with this backend's library and files."""
        from tilecc.runtime.artifact import Artifact

        return Artifact.create(name=cm.name, target=cm.target, inputs=cm.inputs,
                               outputs=cm.outputs, params=cm.params,
                               workspace_size=cm.workspace_size, library=library,
                               arena=cm.arena, kernels=cm.kernels, extra_files=files, **meta)


def backend_for(target, precision: str = "fp32", profile: bool = False,
                opt_level: int = 2) -> Backend:
    """The backend the target's data asks for: OpenCL devices, bare-metal CPUs (no OS, static
    arena) or CPUs with an OS (a shared library)."""
    if target.kind == "opencl":
        from tilecc.codegen.backend_opencl import OpenCL
        return OpenCL(target, precision, profile, opt_level)
    from tilecc.codegen.backend_cpu import BareMetal, CpuShared
    cls = BareMetal if getattr(target, "bare_metal", False) else CpuShared
    return cls(target, precision, profile, opt_level)

"""Target presets. Schedules read machine parameters from here, never from the host."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # "cpu" or "opencl"
    triple: str
    cpu: str
    features: str  # LLVM feature string, e.g. "+avx2,+fma"
    vector_bits: int
    cores: int
    l1_bytes: int = 32 * 1024
    l2_bytes: int = 1024 * 1024
    linker: str = "cc"
    family: str = "generic"  # schedule family: "x86", "arm", "riscv", "generic"

    @property
    def key(self) -> str:
        """Stable key for tuning logs and caches."""
        return f"{self.kind}/{self.triple}/{self.cpu}"

    def lanes(self, dtype_bytes: int = 4) -> int:
        return max(1, self.vector_bits // (8 * dtype_bytes))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict) -> Target:
        return Target(**d)


def _host() -> Target:
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    triple = llvm.get_process_triple()
    cpu = llvm.get_host_cpu_name()
    feats = llvm.get_host_cpu_features()
    flags = ",".join(("+" if on else "-") + k for k, on in sorted(feats.items()))
    if feats.get("avx512f"):
        bits = 512
    elif feats.get("avx2") or feats.get("avx"):
        bits = 256
    else:
        bits = 128
    family = "x86" if triple.startswith(("x86_64", "i686")) else (
        "arm" if triple.startswith(("aarch64", "arm")) else "generic")
    return Target("host", "cpu", triple, cpu, flags, bits, os.cpu_count() or 1, family=family)


PRESETS: dict[str, Target] = {
    "x86-64-avx512": Target("x86-64-avx512", "cpu", "x86_64-unknown-linux-gnu", "skylake-avx512",
                            "+avx512f,+avx512bw,+avx512dq,+avx512vl,+avx2,+fma,+f16c", 512, 2,
                            l2_bytes=1024 * 1024, family="x86"),
    "x86-64-avx2": Target("x86-64-avx2", "cpu", "x86_64-unknown-linux-gnu", "haswell",
                          "+avx2,+fma,+f16c", 256, 4, l2_bytes=256 * 1024, family="x86"),
}


def get_target(name: str | Target) -> Target:
    if isinstance(name, Target):
        return name
    if name in ("host", "native", "llvm"):
        return _host()
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown target {name!r}; `tilecc targets` lists the presets") from None


from .opencl import OPENCL_PRESETS

PRESETS.update(OPENCL_PRESETS)

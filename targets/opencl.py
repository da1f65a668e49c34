"""OpenCL GPU presets (Mali, Adreno, generic). Device limits are data the GPU schedules read:
work-group size, local memory, preferred vector width, fp16 support, compute units."""

from __future__ import annotations

from dataclasses import dataclass

from .target import Target


@dataclass(frozen=True)
class OpenCLTarget(Target):
    max_work_group_size: int = 256
    local_mem_bytes: int = 32 * 1024
    preferred_vector_width: int = 4  # float lanes per vector load/store
    fp16: bool = False  # device has cl_khr_fp16 (half arithmetic)
    compute_units: int = 1
    default_local_size: int = 64  # work-items per group the schedules start from

    def lanes(self, dtype_bytes: int = 4) -> int:
        return self.preferred_vector_width

    @staticmethod
    def from_dict(d: dict) -> OpenCLTarget:
        return OpenCLTarget(**d)


def _gpu(name, vendor_arch, wg, local_kb, vec, fp16, cus, local_size):
    return OpenCLTarget(name, "opencl", "spir-unknown-unknown", vendor_arch, "", vec * 32, cus,
                        linker="", family="opencl", max_work_group_size=wg,
                        local_mem_bytes=local_kb * 1024, preferred_vector_width=vec, fp16=fp16,
                        compute_units=cus, default_local_size=local_size)


# Limits as the vendors' drivers report them (clinfo) for these GPUs.
OPENCL_PRESETS: dict[str, Target] = {
    "opencl": _gpu("opencl", "generic", 256, 16, 4, False, 1, 64),
    "mali-g76": _gpu("mali-g76", "mali-bifrost-g76", 384, 32, 4, True, 12, 64),
    "mali-g610": _gpu("mali-g610", "mali-valhall-g610", 512, 32, 4, True, 6, 128),
    "adreno-640": _gpu("adreno-640", "adreno-640", 1024, 32, 4, True, 2, 128),
    "adreno-740": _gpu("adreno-740", "adreno-740", 1024, 64, 4, True, 4, 128),
}

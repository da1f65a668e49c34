"""OpenCL GPU presets (Mali, Adreno, generic). Device limits are data the GPU schedules read:
work-group size, local memory, preferred vector width, subgroup size, compute units, and the
OpenCL extensions the device declares (which decide the int8 dot products and half math the
emitter may use)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .target import Target

FP16 = "cl_khr_fp16"
KHR_DOT = "cl_khr_integer_dot_product"
ARM_DOT = "cl_arm_integer_dot_product_int8"


@dataclass(frozen=True)
class OpenCLTarget(Target):
    max_work_group_size: int = 256
    local_mem_bytes: int = 32 * 1024
    preferred_vector_width: int = 4  # float lanes per vector load/store
    compute_units: int = 1
    default_local_size: int = 64  # work-items per group the schedules start from
    subgroup_size: int = 16  # work-items a device runs in lockstep (warp / wave)
    extensions: tuple[str, ...] = ()  # as the device reports CL_DEVICE_EXTENSIONS

    @property
    def fp16(self) -> bool:
        """The device has half arithmetic (cl_khr_fp16), not only half storage."""
        return FP16 in self.extensions

    def has(self, extension: str) -> bool:
        return extension in self.extensions

    def lanes(self, dtype_bytes: int = 4) -> int:
        return self.preferred_vector_width

    def to_dict(self) -> dict:
        return {**super().to_dict(), "extensions": list(self.extensions)}

    @staticmethod
    def from_dict(d: dict) -> OpenCLTarget:
        d = dict(d)
        # Artifacts written before `extensions` carried a bare fp16 flag.
        if d.pop("fp16", False) and "extensions" not in d:
            d["extensions"] = [FP16]
        names = {f.name for f in dataclasses.fields(OpenCLTarget)}
        for k in ("qemu", "llvm_options", "extensions"):
            if k in d:
                d[k] = tuple(d[k])
        return OpenCLTarget(**{k: v for k, v in d.items() if k in names})


def _gpu(name, vendor_arch, wg, local_kb, vec, cus, local_size, subgroup, extensions):
    return OpenCLTarget(name, "opencl", "spir-unknown-unknown", vendor_arch, "", vec * 32, cus,
                        linker="", family="opencl", max_work_group_size=wg,
                        local_mem_bytes=local_kb * 1024, preferred_vector_width=vec,
                        compute_units=cus, default_local_size=local_size,
                        subgroup_size=subgroup, extensions=tuple(extensions))


# Limits and extensions as the vendors' drivers report them (clinfo) for these GPUs; a board's
# driver may differ (older Mali DDKs lack cl_khr_integer_dot_product): the generated
# kernels.cl tests the extension macros and falls back to plain arithmetic, so an artifact
# still runs where an extension is missing, only slower.
OPENCL_PRESETS: dict[str, Target] = {
    "opencl": _gpu("opencl", "generic", 256, 16, 4, 1, 64, 16, ()),
    "mali-g76": _gpu("mali-g76", "mali-bifrost-g76", 384, 32, 4, 12, 64, 8,
                     (FP16, ARM_DOT, "cl_arm_integer_dot_product_accumulate_int8")),
    "mali-g610": _gpu("mali-g610", "mali-valhall-g610", 512, 32, 4, 6, 128, 16,
                      (FP16, KHR_DOT, ARM_DOT, "cl_arm_integer_dot_product_accumulate_int8")),
    "adreno-640": _gpu("adreno-640", "adreno-640", 1024, 32, 4, 2, 128, 64, (FP16,)),
    "adreno-740": _gpu("adreno-740", "adreno-740", 1024, 64, 4, 4, 128, 64, (FP16, KHR_DOT)),
}

"""Target presets. Schedules read machine parameters from here, never from the host.

A Target is plain data: the LLVM triple/cpu/features, the machine parameters schedules use
(`vector_bits`, `cores`, caches), the schedule `family`, and the tools that turn an object
into something runnable for it (`linker`, a gcc-style driver also used as the C compiler;
`qemu`, the user-mode emulator command that runs its Linux binaries on another host;
`sysroot`, the directory qemu uses as the target's `/`; `objdump`).

RISC-V vectors: kernels use fixed-length LLVM vectors of `vector_bits` (the same explicit
vector types as every other target), and the `+zvl<N>b` feature tells LLVM the hardware VLEN
is at least N bits, so the RVV backend lowers them to `vle32.v`/`vfmacc.vv` with
`vsetivli` at that length. The code runs on any core whose VLEN >= N (it does not adapt to a
wider VLEN at run time: that is what scalable vectors would buy, at the cost of a second
vectorisation path in the code generator). `qemu` for RVV presets sets the emulated VLEN.

RVV presets also keep every vector in single registers (`llvm_options`:
`-riscv-v-fixed-length-vector-lmul-max=1` splits wider fixed-length vectors, e.g. the four
i64 addresses of a 4-lane gather or pow's f64 lanes, into LMUL=1 halves;
`-riscv-v-register-bit-width-lmul=1` makes LLVM's own loop vectoriser pick LMUL=1 for the
loops it vectorises with scalable vectors). Under qemu-user on an x86
host that is worth ~17x on convolutions: qemu translates a vector op on a register group
wider than 16 bytes (LMUL=2 at VLEN 128) into 256-bit AVX host code and never clears the
upper register halves afterwards, and the SSE-compiled soft-float helpers behind every vector
FMA then run ~15x slower until something on the host happens to execute `vzeroupper`
(measured: 64->64 3x3 conv on 56x56, 215 -> 13 ns per MAC; aarch64 emulation: 12). On real
cores the split costs next to nothing: an LMUL=2 operation takes about two LMUL=1 ones' time.
"""

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
    # Cross-target data (empty for the host): see the module docstring.
    abi: str = ""  # e.g. "lp64d", "aapcs-vfp"
    float_abi: str = ""  # "hard" or "soft" on 32-bit ARM
    sysroot: str = ""  # qemu -L: the target's libc and loader (Debian: /usr/<triple>)
    qemu: tuple[str, ...] = ()  # emulator command, e.g. ("qemu-aarch64",)
    objdump: str = "objdump"
    description: str = ""
    # Bare metal: one object, no libc/libm/threads, single-threaded kernels.
    bare_metal: bool = False
    # LLVM command-line options for this target's code generator (process-wide in LLVM, so
    # only options that concern this target's backend alone), e.g. RVV's LMUL cap above.
    llvm_options: tuple[str, ...] = ()
    # gcc flags selecting this CPU/FPU/ABI for C compiled next to bare-metal models (a bare
    # arm-none-eabi-gcc defaults to ARMv4T ARM code, which a Cortex-M cannot execute).
    cflags: tuple[str, ...] = ()
    # Microcontroller boards: the memory map a firmware image is linked for, as (origin,
    # bytes) of the flash (code, weights) and the RAM (arena, stack); with `qemu` a
    # qemu-system command for that board, which runs it with semihosting (runtime/semihost.py).
    flash: tuple[int, ...] = ()
    ram: tuple[int, ...] = ()
    clock_hz: int = 0  # the board's CPU clock, which drives SysTick (instruction counts)
    # Bytes of the float type kernels compute in: 2 for a precision="fp16" build on a CPU with
    # native half arithmetic (for_precision), where float vectors hold twice the lanes.
    float_bytes: int = 4

    @property
    def key(self) -> str:
        """Stable key for tuning logs and caches."""
        return f"{self.kind}/{self.triple}/{self.cpu}"

    def lanes(self, dtype_bytes: int = 4) -> int:
        return max(1, self.vector_bits // (8 * dtype_bytes))

    def float_lanes(self) -> int:
        """Lanes of a float vector in the arithmetic kernels compute in (blocked-layout block,
        schedules' vector width): 4 in 128 bits, 8 when they compute in half."""
        return self.lanes(self.float_bytes)

    @property
    def native_half(self) -> bool:
        """Half-precision vector arithmetic in the ISA (ARMv8.2-A FEAT_FP16: fmla v.8h)."""
        return (self.kind == "cpu" and self.triple.startswith("aarch64")
                and "+fullfp16" in self.features.split(","))

    def for_precision(self, precision: str) -> Target:
        """The target kernels are scheduled for at `precision`: fp16 on native_half targets
        computes in half (codegen/llvm_half.py), so its float vectors are 2-byte lanes."""
        if precision == "fp16" and self.native_half:
            return dataclasses.replace(self, float_bytes=2)
        return self

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for k in _TUPLES:
            d[k] = list(getattr(self, k))
        return d

    @staticmethod
    def from_dict(d: dict) -> Target:
        names = {f.name for f in dataclasses.fields(Target)}
        d = {k: v for k, v in d.items() if k in names}
        for k in _TUPLES:
            if k in d:
                d[k] = tuple(d[k])
        return Target(**d)

    def emulator(self) -> list[str]:
        """The command prefix that runs this target's Linux binaries here, e.g.
        ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"]; [] if none is known."""
        if not self.qemu:
            return []
        return [*self.qemu, *(["-L", self.sysroot] if self.sysroot else [])]


_TUPLES = ("qemu", "llvm_options", "cflags", "flash", "ram")


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


KIB, MIB = 1024, 1024 * 1024
_A64 = {"kind": "cpu", "triple": "aarch64-unknown-linux-gnu", "vector_bits": 128,
        "family": "arm", "linker": "aarch64-linux-gnu-gcc", "abi": "lp64",
        "sysroot": "/usr/aarch64-linux-gnu", "qemu": ("qemu-aarch64",),
        "objdump": "aarch64-linux-gnu-objdump"}
# Cortex-A76 presets run under qemu's model of that core, so a test run fails on an instruction
# the core lacks and has the FEAT_FP16 half arithmetic fp16 builds use (codegen/llvm_half.py).
_A76 = dict(_A64, qemu=("qemu-aarch64", "-cpu", "cortex-a76"))
_A32 = {"kind": "cpu", "triple": "armv7a-unknown-linux-gnueabihf", "vector_bits": 128,
        "family": "arm", "linker": "arm-linux-gnueabihf-gcc", "abi": "aapcs-vfp",
        "float_abi": "hard", "sysroot": "/usr/arm-linux-gnueabihf", "qemu": ("qemu-arm",),
        "objdump": "arm-linux-gnueabihf-objdump"}
_RV = {"kind": "cpu", "triple": "riscv64-unknown-linux-gnu", "family": "riscv",
       "linker": "riscv64-linux-gnu-gcc", "abi": "lp64d", "sysroot": "/usr/riscv64-linux-gnu",
       "objdump": "riscv64-linux-gnu-objdump"}
_RV64GC = "+64bit,+m,+a,+f,+d,+c"
# Cortex-M: Thumb-2 only, one core, no vector unit (the DSP extension's SIMD works on one
# 32-bit register, so vector_bits 32: float schedules get one lane and never vectorise),
# no OS. The triple needs its vendor field: LLVM does not parse "thumbv7em-none-eabihf"
# as environment eabihf, which drops the VFP argument ABI and names 64-bit division
# __udivdi3 instead of __aeabi_uldivmod. Memory: the MPS2 FPGA boards qemu emulates
# (AN386 = M4, AN500 = M7): 4 MiB ZBT SSRAM1 at 0 as flash, 4 MiB SSRAM2/3 as RAM, 25 MHz
# system clock; no data cache on the M4 (tiles sized for a 16 KiB L1 cost nothing on
# zero-wait SRAM).
_CM = {"kind": "cpu", "triple": "thumbv7em-unknown-none-eabihf", "vector_bits": 32,
       "cores": 1, "family": "arm", "linker": "arm-none-eabi-gcc", "abi": "aapcs-vfp",
       "float_abi": "hard", "objdump": "arm-none-eabi-objdump", "bare_metal": True,
       "l1_bytes": 16 * KIB, "l2_bytes": 0, "flash": (0, 4 * MIB),
       "ram": (0x20000000, 4 * MIB), "clock_hz": 25_000_000}


def _mps2(machine: str, cpu: str) -> tuple[str, ...]:
    return ("qemu-system-arm", "-M", machine, "-cpu", cpu)


def _rvv_qemu(vlen: int) -> tuple[str, ...]:
    return ("qemu-riscv64", "-cpu", f"rv64,v=true,vext_spec=v1.0,vlen={vlen},elen=64")


_RVV_LLVM = ("-riscv-v-fixed-length-vector-lmul-max=1",  # see the module docstring
             "-riscv-v-register-bit-width-lmul=1")


_LIST = [
    Target("x86-64-avx512", "cpu", "x86_64-unknown-linux-gnu", "skylake-avx512",
           "+avx512f,+avx512bw,+avx512dq,+avx512vl,+avx2,+fma,+f16c", 512, 2,
           l2_bytes=1024 * 1024, family="x86"),
    Target("x86-64-avx2", "cpu", "x86_64-unknown-linux-gnu", "haswell",
           "+avx2,+fma,+f16c", 256, 4, l2_bytes=256 * 1024, family="x86"),
    # ---- ARM
    Target("aarch64", cpu="generic", features="+neon,+fp-armv8", cores=4, l1_bytes=32 * KIB,
           l2_bytes=512 * KIB, description="generic ARMv8-A with NEON", **_A64),
    Target("cortex-a53", cpu="cortex-a53", features="+neon,+fp-armv8,+crc", cores=4,
           l1_bytes=32 * KIB, l2_bytes=512 * KIB, description="ARMv8-A in-order (Pi 3)",
           **_A64),
    Target("cortex-a76", cpu="cortex-a76", features="+neon,+fp-armv8,+dotprod,+fullfp16",
           cores=4, l1_bytes=64 * KIB, l2_bytes=512 * KIB,
           description="ARMv8.2-A with dotprod and fp16", **_A76),
    Target("cortex-a710", cpu="cortex-a710",
           features="+neon,+fp-armv8,+dotprod,+fullfp16,+i8mm,+bf16", cores=4,
           l1_bytes=64 * KIB, l2_bytes=512 * KIB,
           description="ARMv9-A with i8mm, bf16 (qemu -cpu max runs them)",
           **dict(_A64, qemu=("qemu-aarch64", "-cpu", "max"))),
    Target("cortex-a7", cpu="cortex-a7", features="+neon,+vfp4,+d32", cores=4,
           cflags=("-mcpu=cortex-a7", "-mfpu=neon-vfpv4", "-mfloat-abi=hard"),
           l1_bytes=32 * KIB, l2_bytes=512 * KIB,
           description="ARMv7-A, NEON + VFPv4, hard-float ABI", **_A32),
    Target("raspberry-pi-4", cpu="cortex-a72", features="+neon,+fp-armv8,+crc", cores=4,
           l1_bytes=32 * KIB, l2_bytes=1 * MIB, description="BCM2711, 4x Cortex-A72",
           **_A64),
    Target("raspberry-pi-5", cpu="cortex-a76", features="+neon,+fp-armv8,+dotprod,+fullfp16",
           cores=4, l1_bytes=64 * KIB, l2_bytes=512 * KIB,
           description="BCM2712, 4x Cortex-A76", **_A76),
    Target("rk3588", cpu="cortex-a76", features="+neon,+fp-armv8,+dotprod,+fullfp16",
           cores=8, l1_bytes=64 * KIB, l2_bytes=512 * KIB,
           description="Rockchip RK3588, 4x A76 + 4x A55 (tuned for the A76 cluster)", **_A76),
    # ---- Cortex-M (bare metal only)
    Target("cortex-m4", cpu="cortex-m4", features="+thumb-mode,+dsp,+vfp4d16sp",
           cflags=("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
           qemu=_mps2("mps2-an386", "cortex-m4"),
           description="ARMv7E-M, DSP + single-precision FPU (MPS2 AN386 memory map)", **_CM),
    Target("cortex-m7", cpu="cortex-m7", features="+thumb-mode,+dsp,+fp-armv8d16",
           cflags=("-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"),
           qemu=_mps2("mps2-an500", "cortex-m7"),
           description="ARMv7E-M, DSP + double-precision FPU (MPS2 AN500 memory map)", **_CM),
    # ---- RISC-V
    Target("riscv64", cpu="generic-rv64", features=_RV64GC, vector_bits=64, cores=4,
           l1_bytes=32 * KIB, l2_bytes=2 * MIB, qemu=("qemu-riscv64",),
           description="RV64GC, no vector unit (scalar FP; 64-bit = one GPR)", **_RV),
    Target("riscv64-rvv", cpu="generic-rv64", features=_RV64GC + ",+v,+zvl128b",
           vector_bits=128, cores=4, l1_bytes=32 * KIB, l2_bytes=2 * MIB,
           qemu=_rvv_qemu(128), llvm_options=_RVV_LLVM, description="RV64GCV, fixed VLEN >= 128",
           **_RV),
    Target("spacemit-k1", cpu="generic-rv64", features=_RV64GC + ",+v,+zvl256b",
           vector_bits=256, cores=8, l1_bytes=32 * KIB, l2_bytes=512 * KIB,
           qemu=_rvv_qemu(256), llvm_options=_RVV_LLVM,
           description="SpacemiT K1 (X60, RVA22+V), VLEN 256", **_RV),
]
PRESETS: dict[str, Target] = {t.name: t for t in _LIST}


def get_target(name: str | Target) -> Target:
    if isinstance(name, Target):
        return name
    if name in ("host", "native", "llvm"):
        return _host()
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown target {name!r}; `tilecc targets` lists the presets") from None


def is_host(target: Target) -> bool:
    """True when binaries for `target` run natively on this machine."""
    import platform

    from tilecc.runtime.cpu import _arch

    return _arch(target.triple.split("-")[0]) == _arch(platform.machine())


from .opencl import OPENCL_PRESETS

PRESETS.update(OPENCL_PRESETS)

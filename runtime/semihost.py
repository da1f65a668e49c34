"""Run a bare-metal artifact for a microcontroller board under qemu-system, as firmware.

The target's data says how (targets/target.py): `flash` and `ram` give the memory map the
image is linked for, `qemu` the qemu-system command for the board (e.g. MPS2 AN386 for a
Cortex-M4), `linker` and `cflags` the gcc that builds it, `clock_hz` the clock SysTick counts.
The firmware (runtime/c/tilecc_firmware.c: vector table, reset handler, no libc) links the
artifact's lib/model.o, reads the inputs and writes the outputs through ARM semihosting in a
scratch directory, and leaves a record of the run (model return code, SysTick ticks around
`<name>_run`, stack bytes touched, per-kernel ticks of --profile builds).

qemu always runs with `-icount shift=0`: every executed instruction advances virtual time by
exactly 1 ns, so the counts are deterministic and `instructions = ticks * 1e9 / clock_hz`
(resolution: one tick, 40 instructions at 25 MHz). What that predicts is executed
instructions, not cycles: qemu models no pipeline, cache or flash wait states (a Cortex-M4
retires about one instruction per cycle from zero-wait memory; loads, multiplies-accumulates
with dependencies, divides and taken branches cost more on hardware).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tilecc.errors import RUN_ERROR_CODES, ArtifactError, LinkError, ModelRunError
from tilecc.floatfmt import storage_dtype
from tilecc.runtime.artifact import HEADER_PATH, as_storage
from tilecc.runtime.base import CountingModule

DEFAULT_TIMEOUT = 300.0  # seconds of host time; DS-CNN int8 on the M4 takes about 2
_FW_ERRORS = {101: "cannot read an input file through semihosting",
              102: "cannot write an output file through semihosting",
              103: "CPU fault (HardFault, MemManage, BusFault or UsageFault)"}
_STACK_BYTES = 64 * 1024  # reserved below the top of RAM; the run measures what it uses


def is_firmware_target(target) -> bool:
    """Whether the target describes a board this module can run images on."""
    return bool(getattr(target, "bare_metal", False) and target.flash and target.ram
                and target.qemu and target.qemu[0].startswith("qemu-system"))


def linker_script(target) -> str:
    """Flash holds the vectors, code, weights (.rodata) and .data's initial values; RAM
    holds .data, .bss (the model's arena) and the stack at its top."""
    (fo, fl), (ro, rl) = target.flash, target.ram
    return f"""/* tilecc firmware for {target.name} (runtime/semihost.py) */
MEMORY {{
  FLASH (rx) : ORIGIN = {fo:#x}, LENGTH = {fl:#x}
  RAM (rwx) : ORIGIN = {ro:#x}, LENGTH = {rl:#x}
}}
ENTRY(reset_handler)
SECTIONS {{
  .text : {{ KEEP(*(.vectors)) *(.text*) *(.rodata*) . = ALIGN(8); }} > FLASH
  .ARM.exidx : {{ *(.ARM.exidx*) }} > FLASH
  /* The GOT too: the model is position-independent code, and reaches its exported globals
     (the profile table) through it; the reset handler copies it with .data. */
  .data : {{ . = ALIGN(8); __data_start = .; *(.got) *(.got.plt) *(.data*) . = ALIGN(8);
      __data_end = .; }} > RAM AT > FLASH
  __data_load = LOADADDR(.data);
  .bss (NOLOAD) : {{ . = ALIGN(8); __bss_start = .; *(.bss*) *(COMMON) . = ALIGN(8);
      __bss_end = .; }} > RAM
  __stack_top = ORIGIN(RAM) + LENGTH(RAM);
  __stack_limit = __stack_top - {_STACK_BYTES:#x};
  ASSERT(__bss_end <= __stack_limit, "tilecc firmware: RAM is too small for arena + stack")
}}
"""


def _spec_nbytes(spec: dict) -> int:
    return int(np.prod(spec["shape"], dtype=np.int64)) * storage_dtype(spec["dtype"]).itemsize


def build_firmware(artifact_dir: str | os.PathLike, metadata: dict, target,
                   out: str | os.PathLike) -> Path:
    """Link artifact_dir/lib/model.o into a firmware ELF for the target's board."""
    from tilecc.codegen.link import _run, runtime_source_dir

    artifact_dir, out = Path(artifact_dir), Path(out)
    if not (artifact_dir / "lib" / "model.o").is_file():
        raise ArtifactError(f"{artifact_dir}: no lib/model.o (not a bare-metal artifact)")
    script = out.with_suffix(".ld")
    script.write_text(linker_script(target))
    io_bytes = sum(-(-_spec_nbytes(s) // 64) * 64
                   for s in (*metadata["inputs"], *metadata["outputs"]))
    name = metadata["name"]
    defines = [f"-DFW_IO_BYTES={max(io_bytes, 64)}"]
    if (metadata.get("arena") or {}).get("profile"):
        defines += [f"-DFW_PROFILE={name}_profile", f"-DFW_PROFILE_COUNT={name}_profile_count"]
    _run([target.linker, *target.cflags, "-O2", "-std=gnu11", "-ffreestanding", "-fno-builtin",
          "-nostdlib", "-nostartfiles", "-static", "-Wl,--gc-sections", "-T", str(script),
          *defines, "-I", str(artifact_dir / Path(HEADER_PATH).parent),
          str(runtime_source_dir() / "tilecc_firmware.c"), str(artifact_dir / "lib" / "model.o"),
          "-o", str(out)], "linking the firmware image")
    return out


def run_firmware(elf: str | os.PathLike, metadata: dict, target, inputs: dict,
                 workdir: str | os.PathLike, count: bool = False,
                 timeout: float = DEFAULT_TIMEOUT):
    """Run the firmware once on `inputs` ({name: array}, already checked) under qemu-system
    and return {output name: array}, or (outputs, counts) with count=True:
    counts = {"instructions", "ticks", "stack_bytes", "kernels": [{kernel, instructions}]}
    (kernels only for --profile builds; see the module docstring for what they predict)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for i, spec in enumerate(metadata["inputs"]):
        arr = as_storage(np.asarray(inputs[spec["name"]]), spec["dtype"])
        np.ascontiguousarray(arr).tofile(workdir / f"in{i}.bin")
    if shutil.which(target.qemu[0]) is None:
        raise LinkError(f"{target.qemu[0]!r} not found; install qemu-system-arm "
                        "(apt-get install qemu-system-arm)")
    cmd = [*target.qemu, "-nographic", "-monitor", "none", "-serial", "none",
           "-semihosting-config", "enable=on,target=native", "-icount", "shift=0",
           "-kernel", str(Path(elf).resolve())]
    try:
        proc = subprocess.run(cmd, check=False, cwd=workdir, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ModelRunError(f"{target.qemu[0]} did not finish within {timeout:g} s running "
                            f"{Path(elf).name} for {target.name} (the firmware hung or the "
                            "model is too slow to emulate); qemu was stopped", -1) from None
    rc = proc.returncode
    if rc:
        why = _FW_ERRORS.get(rc) or RUN_ERROR_CODES.get(rc) or f"exit code {rc}"
        detail = (proc.stderr or proc.stdout).strip()
        raise ModelRunError(f"firmware on {target.name} failed: {why}"
                            + (f"\n{detail}" if detail else ""), rc)
    outputs = {spec["name"]: np.fromfile(workdir / f"out{j}.bin", dtype=storage_dtype(
        spec["dtype"])).reshape(spec["shape"]) for j, spec in enumerate(metadata["outputs"])}
    if not count:
        return outputs
    rec = np.fromfile(workdir / "run.bin", dtype="<i8")
    per_tick = 1e9 / target.clock_hz
    kernels = [{"kernel": k["kernel"], "instructions": round(float(t) * per_tick)}
               for k, t in zip(metadata.get("kernels") or [], rec[4:4 + int(rec[3])])]
    return outputs, {"instructions": round(float(rec[1]) * per_tick), "ticks": int(rec[1]),
                     "stack_bytes": int(rec[2]), "kernels": kernels}


class FirmwareModule(CountingModule):
    """A bare-metal artifact for a board, run as firmware under qemu-system (module
    docstring). `run` has Module.run's contract; `run_counted` also returns the counts."""

    def __init__(self, path: str | os.PathLike, timeout: float = DEFAULT_TIMEOUT):
        from tilecc.runtime.artifact import ArtifactReader, extract_artifact
        from tilecc.targets import Target

        with ArtifactReader(path) as reader:
            super().__init__(dict(reader.metadata))
        self.target = Target.from_dict(self.metadata.get("target") or {})
        if not is_firmware_target(self.target):
            raise ArtifactError(f"{path}: target {self.target.name!r} describes no board "
                                "(flash, ram, qemu-system) to run firmware on")
        self.timeout = timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="tilecc-fw-")
        self.dir = extract_artifact(path, Path(self._tmp.name) / "artifact")
        self.elf = build_firmware(self.dir, self.metadata, self.target,
                                  Path(self._tmp.name) / "fw.elf")
        self._runs = 0

    def run_counted(self, inputs: dict) -> tuple[dict[str, np.ndarray], dict]:
        arrays = self._check(inputs)
        feeds = {spec["name"]: arr for spec, arr in zip(self.metadata["inputs"], arrays)}
        self._runs += 1
        outputs, self.last_counts = run_firmware(
            self.elf, self.metadata, self.target, feeds,
            Path(self._tmp.name) / f"run{self._runs}", count=True, timeout=self.timeout)
        return outputs, self.last_counts

    def run(self, inputs: dict) -> dict[str, np.ndarray]:
        # -icount costs nothing extra here, so every run is counted
        return self.run_counted(inputs)[0]

    def describe_counts(self) -> str:
        """One line on the last run's counts (tilecc run --emulate prints it)."""
        c = self.last_counts
        return (f"{self.target.name} under {self.target.qemu[0]} -icount: "
                f"{c['instructions']:,} instructions (not cycles), "
                f"stack {c['stack_bytes']} B") if c else ""

    def close(self) -> None:
        self._tmp.cleanup()

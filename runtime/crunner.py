"""Build the generic C runner (runtime/c/tilecc_runner.c) against an unpacked artifact.

Used by tests, and for cross targets: build with the cross compiler, run under qemu-user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from tilecc.errors import ArtifactError, LinkError
from tilecc.floatfmt import storage_dtype
from tilecc.runtime.artifact import HEADER_PATH, LIB_PATH, as_storage
from tilecc.runtime.base import CountingModule
from tilecc.runtime.icount import LOG_ITEMS, ExecLogCounter, Symbols, count_run


def runner_source() -> Path:
    from tilecc.codegen.link import runtime_source_dir

    return runtime_source_dir() / "tilecc_runner.c"


def build_c_runner(artifact_dir: str | os.PathLike, out_exe: str | os.PathLike,
                   cc: str = "cc") -> Path:
    """Compile tilecc_runner.c with `cc` against artifact_dir/{include,lib}.

    The executable finds lib/model.so through rpaths: the artifact's lib directory
    (absolute), and $ORIGIN (copy model.so next to the runner to move them together).
    """
    artifact_dir, out_exe = Path(artifact_dir).resolve(), Path(out_exe)
    for needed in (HEADER_PATH, LIB_PATH):
        if not (artifact_dir / needed).is_file():
            raise ArtifactError(f"{artifact_dir}: no {needed} (extract the artifact first: "
                                "tilecc.runtime.artifact.extract_artifact)")
    if shutil.which(cc) is None:
        raise LinkError(f"C compiler {cc!r} not found")
    lib_dir = artifact_dir / "lib"
    cmd = [cc, "-O2", "-std=c11", "-I", str(artifact_dir / "include"), str(runner_source()),
           "-L", str(lib_dir), "-l:model.so", f"-Wl,-rpath,{lib_dir}", "-Wl,-rpath,$ORIGIN",
           "-o", str(out_exe)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise LinkError(f"building the C runner failed ({' '.join(cmd)}):\n"
                        f"{proc.stderr.strip()}")
    return out_exe


def run_c_runner(exe: str | os.PathLike, artifact_dir: str | os.PathLike, metadata: dict,
                 inputs: dict[str, np.ndarray], workdir: str | os.PathLike,
                 prefix: list[str] | None = None, env: dict | None = None,
                 timeout: float = 600, counter: ExecLogCounter | None = None
                 ) -> dict[str, np.ndarray]:
    """Write inputs as raw files, run the runner (optionally under `prefix`, e.g. qemu),
    read the outputs back. Raises RuntimeError with the runner's stderr on failure.
    With `counter` (a runtime.icount.ExecLogCounter; `prefix` must be qemu-user) the run is
    counted into it from qemu's log."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    args = [str(Path(artifact_dir) / "params.bin")]
    for i, spec in enumerate(metadata["inputs"]):
        path = workdir / f"in{i}.bin"
        arr = np.asarray(inputs[spec["name"]])
        arr = as_storage(arr, spec["dtype"])
        if arr is None:  # run() checked the dtype; a plain cast keeps direct callers working
            arr = np.asarray(inputs[spec["name"]], dtype=storage_dtype(spec["dtype"]))
        np.ascontiguousarray(arr).tofile(path)
        args.append(str(path))
    out_paths = [workdir / f"out{i}.bin" for i in range(len(metadata["outputs"]))]
    args += map(str, out_paths)
    full_env = {**os.environ, **(env or {})}
    if counter is not None:
        proc = count_run([*(prefix or []), str(exe), "-b", *args], counter, workdir, full_env,
                         timeout)
    else:
        proc = subprocess.run([*(prefix or []), str(exe), *args], check=False,
                              capture_output=True, text=True, env=full_env, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"C runner exited with {proc.returncode}: {proc.stderr.strip()}")
    return {spec["name"]: np.fromfile(p, dtype=storage_dtype(spec["dtype"])).reshape(spec["shape"])
            for spec, p in zip(metadata["outputs"], out_paths)}


def emulator_prefix(target, where: str = "", unknown=LinkError) -> list[str]:
    """The qemu-user command prefix that runs `target`'s Linux binaries on this machine;
    `unknown` (an error class) when no emulator is known for it, LinkError when it is not
    installed."""
    prefix = target.emulator()
    if not prefix:
        raise unknown(f"{where}no emulator known for target {target.name!r} ({target.triple}); "
                      "--emulate runs Linux artifacts cross-compiled for ARM or RISC-V")
    if shutil.which(prefix[0]) is None:
        raise LinkError(f"{prefix[0]!r} not found; install qemu-user (apt-get install qemu-user)")
    return prefix


class EmulatedModule(CountingModule):
    """Runs a Linux artifact built for another CPU under qemu-user, through the C runner
    cross-compiled with the target's gcc. `run` has the same contract as Module.run (but
    every call starts a process: this is for checking results, not for speed).
    `run_counted` / `instruction_profile` also count the guest instructions executed by one
    inference, per kernel call, from qemu's debug log with one thread (runtime/icount.py).

    A bare-metal artifact whose target describes a board (flash, RAM, a qemu-system machine)
    runs as firmware instead: the constructor returns a runtime.semihost.FirmwareModule."""

    def __new__(cls, path: str | os.PathLike, num_threads: int | None = None):
        from tilecc.runtime.artifact import ArtifactReader
        from tilecc.runtime.semihost import FirmwareModule, is_firmware_target
        from tilecc.targets import Target

        with ArtifactReader(path) as reader:
            target = Target.from_dict(reader.metadata.get("target") or {})
        if is_firmware_target(target):
            return FirmwareModule(path)
        return super().__new__(cls)

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None):
        import tempfile

        from tilecc.runtime.artifact import ArtifactReader, extract_artifact
        from tilecc.targets import Target

        with ArtifactReader(path) as reader:
            super().__init__(dict(reader.metadata))
        tdict = self.metadata.get("target") or {}
        target = Target.from_dict(tdict)
        if getattr(target, "bare_metal", False):
            raise ArtifactError(f"{path}: a bare-metal artifact has no Linux library to "
                                "emulate; link lib/model.o into your firmware")
        self.prefix = emulator_prefix(target, f"{path}: ", ArtifactError)
        self._tmp = tempfile.TemporaryDirectory(prefix="tilecc-emu-")
        self.dir = extract_artifact(path, Path(self._tmp.name) / "artifact")
        self.exe = build_c_runner(self.dir, Path(self._tmp.name) / "tilecc_runner",
                                  cc=target.linker)
        self.num_threads = num_threads
        self.target = target
        self._runs = 0

    def run(self, inputs: dict) -> dict[str, np.ndarray]:
        arrays = self._check(inputs)
        feeds = {spec["name"]: arr for spec, arr in zip(self.metadata["inputs"], arrays)}
        self._runs += 1
        env = {"TILECC_NUM_THREADS": str(self.num_threads)} if self.num_threads else None
        return run_c_runner(self.exe, self.dir, self.metadata, feeds,
                            Path(self._tmp.name) / f"run{self._runs}", prefix=self.prefix,
                            env=env)

    def run_counted(self, inputs: dict, timeout: float = 1800
                    ) -> tuple[dict[str, np.ndarray], dict]:
        """One run, counted (class docstring); counts = {"instructions" (the run function,
        everything it calls included), "kernels": [{kernel, ops, shape, instructions}] per
        call (None for a kernel compiled into the run function itself), "outside_kernels"
        (the run function's own code), "process_instructions" (loader, file I/O, init
        too)}. Always one thread: a count is of work, and threads would interleave it.
        `timeout`: host seconds (the log makes qemu several times slower)."""
        arrays = self._check(inputs)
        feeds = {spec["name"]: arr for spec, arr in zip(self.metadata["inputs"], arrays)}
        self._runs += 1
        calls = [k["kernel"] for k in self.metadata.get("kernels") or []]
        symbols = Symbols((self.dir / LIB_PATH).read_bytes(), Path(self.exe).read_bytes(),
                          f"{self.name}_run", calls)
        counter = ExecLogCounter(symbols, calls)
        outputs = run_c_runner(self.exe, self.dir, self.metadata, feeds,
                               Path(self._tmp.name) / f"run{self._runs}", prefix=self.prefix,
                               env={"TILECC_NUM_THREADS": "1"}, timeout=timeout,
                               counter=counter)
        self.last_counts = counter.result(self.metadata)
        return outputs, self.last_counts

    def describe_counts(self) -> str:
        c = self.last_counts
        return (f"{self.target.name} under {self.prefix[0]} -d {LOG_ITEMS}: "
                f"{c['instructions']:,} instructions per inference (not cycles; 1 thread)"
                ) if c else ""

    def close(self) -> None:
        self._tmp.cleanup()

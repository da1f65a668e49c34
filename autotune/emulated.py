"""EmulatedRunner: checks cross-target candidates under qemu-user, without timing them.

Emulated run times say nothing about the board (qemu translates every instruction; vector
code can be slower than scalar code), so this runner only answers "does this config build,
run without crashing, and reproduce the default config's output?". Its results carry
ErrorKind.UNTIMED and no costs: the tuner and the log never treat them as latencies, and a
later timed session (SSH, or on the board) still times those configs.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

from .kernelrun import build_kernel_runner, finish, runner_args, write_inputs
from .measure import BuildResult, MeasureOptions, MeasureResult, run_each
from .record import ErrorKind


class EmulatedRunner:
    timed = False

    def __init__(self, target, options: MeasureOptions):
        from tilecc.runtime.crunner import emulator_prefix

        self.prefix = emulator_prefix(target)
        self.key, self.options = target.key, options
        self.device = f"{Path(self.prefix[0]).name}@{platform.node()}"
        self.exe = build_kernel_runner(target)
        self._tmp = tempfile.TemporaryDirectory(prefix="tilecc-emurun-")
        self.dir = Path(self._tmp.name)
        self._runs = 0

    def new_task(self):
        pass

    def close(self):
        self._tmp.cleanup()

    def run(self, builds: list[BuildResult], seed: int, ref: str, ref_mode: str = "check"
            ) -> list[MeasureResult]:
        return run_each(builds, lambda b: self._one(b, seed, ref, ref_mode))

    def _one(self, b: BuildResult, seed: int, ref: str, ref_mode: str) -> MeasureResult:
        self._runs += 1
        run_dir = self.dir / f"run{self._runs}"
        run_dir.mkdir()
        files = write_inputs(b.args, seed, self.dir)
        files = [f if f is not None else (run_dir / f"out{k}.bin" if role == "out" else None)
                 for k, (f, (_, _, role)) in enumerate(zip(files, b.args))]
        cmd = [*self.prefix, str(self.exe),
               *runner_args(b.lib, b.symbol, b.args, [str(f) if f else None for f in files],
                            self.options, timed=False)]
        try:
            proc = subprocess.run(cmd, check=False, capture_output=True, text=True,
                                  timeout=self.options.timeout)
        except subprocess.TimeoutExpired:
            return MeasureResult([], ErrorKind.TIMEOUT,
                                 f"no result within {self.options.timeout:g} s under "
                                 f"{self.prefix[0]}")
        try:
            return finish(proc, b.args, files, ref, ref_mode, timed=False,
                          untimed_msg=f"correct under {self.prefix[0]}; not timed")
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)

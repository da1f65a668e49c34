"""Measurement: build candidates in parallel worker processes, time them in an isolated runner.

Builder and runners talk to `tilecc.autotune.worker` subprocesses over JSON lines. A runner is
anything with `run(builds, seed, ref, ref_mode) -> list[MeasureResult]`, `key` (the target key
it measures), `new_task()` and `close()`, optionally `device` and `timed` (False: results
are correctness checks, ErrorKind.UNTIMED, never latencies). LocalRunner times on this
machine; emulated.py checks cross candidates under qemu-user; remote.py has SSH and Dask
runners (SSH and emulated drive the C kernel runner, kernelrun.py).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .record import Costs, ErrorKind


class NoConfigs:
    """A provider that always answers "use the template default"."""

    def lookup(self, workload, template, version, target, space=None):
        return None, "default"


@dataclass
class MeasureOptions:
    number: int = 1
    repeat: int = 3
    min_repeat_ms: float = 20.0
    # Bytes of other memory read before each timed call (0: warm repeated calls). Inside a
    # model a kernel meets its weights and inputs in outer caches; timing it warm favours
    # configs whose advantage vanishes there.
    flush_bytes: int = 8 << 20
    timeout: float = 10.0  # seconds per run request
    build_timeout: float = 120.0
    threads: int = 1  # 1 by default: the thread pool must not disturb the comparison
    parallel: int = max(1, (os.cpu_count() or 1))  # build processes


@dataclass
class MeasureResult(Costs):
    costs: list[float] = field(default_factory=list)
    error: ErrorKind = ErrorKind.NONE
    msg: str = ""


class WorkerProcess:
    """One worker subprocess; restarted after a crash or a timeout."""

    def __init__(self, env: dict | None = None, command: list[str] | None = None):
        self.env = dict(os.environ, **(env or {}))
        self.command = command or [sys.executable, "-m", "tilecc.autotune.worker"]
        self.proc: subprocess.Popen | None = None

    def _start(self):
        self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=self.env, text=True,
                                     bufsize=1)

    def close(self):
        if self.proc is not None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
            self.proc.wait()
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
            self.proc = None

    def call(self, req: dict, timeout: float, timeout_kind: ErrorKind) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self._start()
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.close()
            return {"ok": False, "error": ErrorKind.CRASH.value, "msg": "worker died"}
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout)
        sel.close()
        if not ready:
            self.close()
            return {"ok": False, "error": timeout_kind.value,
                    "msg": f"no result within {timeout:g} s"}
        line = self.proc.stdout.readline()
        if not line:
            rc = self.proc.wait()
            self.close()
            return {"ok": False, "error": ErrorKind.CRASH.value,
                    "msg": f"worker exited with {rc} (signal {-rc})" if rc < 0
                    else f"worker exited with {rc}"}
        return json.loads(line)


def _result(rep: dict) -> MeasureResult:
    if rep.get("ok"):
        return MeasureResult(list(rep["costs"]))
    return MeasureResult([], ErrorKind(rep.get("error", "runtime_error")), rep.get("msg", ""))


@dataclass
class BuildResult:
    lib: str | None = None
    symbol: str = ""
    args: list = field(default_factory=list)
    error: ErrorKind = ErrorKind.NONE
    msg: str = ""


def run_each(builds: list[BuildResult], measure: Callable[[BuildResult], MeasureResult]
             ) -> list[MeasureResult]:
    """`measure` each build in order; a build that failed keeps its build error, unmeasured
    (what every runner does, wherever it measures)."""
    return [measure(b) if b.error == ErrorKind.NONE else MeasureResult([], b.error, b.msg)
            for b in builds]


class Builder:
    """Builds candidates in `parallel` persistent worker processes."""

    def __init__(self, target, options: MeasureOptions):
        self.target = target
        self.options = options
        self.workers = [WorkerProcess() for _ in range(max(1, options.parallel))]

    def build(self, task, configs: list[dict], out_dir: str) -> list[BuildResult]:
        tjson, tdict = task.to_json(), self.target.to_dict()
        stamp = time.time_ns()

        def one(k: int) -> BuildResult:
            w = self.workers[k % len(self.workers)]
            req = {"cmd": "build", "task": tjson, "target": tdict, "config": configs[k],
                   "out": os.path.join(out_dir, f"c{stamp}_{k}.so")}
            rep = w.call(req, self.options.build_timeout, ErrorKind.BUILD_TIMEOUT)
            if rep.get("ok"):
                return BuildResult(rep["lib"], rep["symbol"], rep["args"])
            err = ErrorKind(rep.get("error", "build_error"))
            if err in (ErrorKind.CRASH, ErrorKind.RUNTIME_ERROR):
                err = ErrorKind.BUILD_ERROR
            return BuildResult(error=err, msg=rep.get("msg", ""))

        # Each worker takes every n-th candidate, so one thread per worker keeps them busy.
        n = len(self.workers)
        results: list[BuildResult | None] = [None] * len(configs)
        with ThreadPoolExecutor(n) as ex:
            def lane(w: int):
                for k in range(w, len(configs), n):
                    results[k] = one(k)
            list(ex.map(lane, range(n)))
        return results  # type: ignore[return-value]

    def close(self):
        for w in self.workers:
            w.close()


class LocalRunner:
    """Times candidates on this machine in one isolated worker process (restarted after a
    crash or hang), one candidate at a time so runs do not disturb each other."""

    def __init__(self, target, options: MeasureOptions):
        self.key = target.key
        self.options = options
        self.worker = WorkerProcess(env={"TILECC_NUM_THREADS": str(options.threads)})

    def request(self, b: BuildResult, seed: int, ref: str, ref_mode: str) -> dict:
        o = self.options
        return {"cmd": "run", "lib": b.lib, "symbol": b.symbol, "args": b.args, "seed": seed,
                "number": o.number, "repeat": o.repeat, "min_repeat_ms": o.min_repeat_ms,
                "flush_bytes": o.flush_bytes, "threads": o.threads, "ref": ref,
                "ref_mode": ref_mode}

    def run(self, builds: list[BuildResult], seed: int, ref: str, ref_mode: str = "check"
            ) -> list[MeasureResult]:
        return run_each(builds, lambda b: _result(self.worker.call(
            self.request(b, seed, ref, ref_mode), self.options.timeout, ErrorKind.TIMEOUT)))

    def new_task(self):
        """Fresh process per task: every candidate library loaded stays mapped (and may own
        pool threads), so do not let them pile up across tasks."""
        self.worker.close()

    def close(self):
        self.worker.close()

"""Runners that measure somewhere else: a Dask cluster, or a board over SSH.

Both take the libraries the local Builder made. The Dask runner sends LocalRunner's requests
to a worker with Python (the reference output travels as .npz bytes); the SSH runner drives
the C kernel runner on the board and compares outputs here (kernelrun.py).
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from tilecc.errors import TileccError

from .kernelrun import EXE_NAME, finish, runner_args, write_inputs
from .measure import BuildResult, LocalRunner, MeasureOptions, MeasureResult, run_each
from .record import ErrorKind


def run_batch_here(libs: list[bytes | None], builds: list[dict], seed: int, ref: bytes | None,
                   ref_mode: str, options: dict) -> dict:
    """Measure a batch on this machine (what a Dask worker executes): write the libraries and
    reference to a temp dir and use an isolated LocalRunner. Returns results (and the new
    reference when ref_mode is "save")."""
    from tilecc.targets.target import Target  # noqa: F401 - the worker needs tilecc importable

    opts = MeasureOptions(**options)
    with tempfile.TemporaryDirectory(prefix="tilecc-remote-") as d:
        bs = []
        for k, (lib, b) in enumerate(zip(libs, builds)):
            if lib is None:
                bs.append(BuildResult(error=ErrorKind(b["error"]), msg=b["msg"]))
                continue
            p = Path(d) / f"c{k}.so"
            p.write_bytes(lib)
            bs.append(BuildResult(str(p), b["symbol"], b["args"]))
        refp = str(Path(d) / "ref.npz")
        if ref is not None:
            Path(refp).write_bytes(ref)

        class _T:
            key = ""

        runner = LocalRunner(_T(), opts)
        try:
            res = runner.run(bs, seed, refp, ref_mode)
        finally:
            runner.close()
        out = {"results": [[r.costs, r.error.value, r.msg] for r in res]}
        if ref_mode == "save" and Path(refp).exists():
            out["ref"] = Path(refp).read_bytes()
        return out


class DaskRunner:
    """Sends each batch to a Dask worker that advertises the target key as a resource
    (`dask worker ... --resources "<target key>=1"`); the worker measures in an isolated
    subprocess, as the local runner does."""

    def __init__(self, address_or_client, target, options: MeasureOptions):
        from distributed import Client

        self.client = (address_or_client if isinstance(address_or_client, Client)
                       else Client(address_or_client))
        self.key = target.key
        self.options = options
        self.device = f"dask:{self.key}"
        self._refs: dict[str, bytes] = {}

    def new_task(self):
        pass

    def run(self, builds: list[BuildResult], seed: int, ref: str, ref_mode: str = "check"
            ) -> list[MeasureResult]:
        libs = [Path(b.lib).read_bytes() if b.error == ErrorKind.NONE else None for b in builds]
        meta = [{"symbol": b.symbol, "args": b.args, "error": b.error.value, "msg": b.msg}
                for b in builds]
        ref_bytes = None if ref_mode == "save" else self._refs.get(ref)
        o = self.options
        opts = {"number": o.number, "repeat": o.repeat, "min_repeat_ms": o.min_repeat_ms,
                "flush_bytes": o.flush_bytes, "timeout": o.timeout, "threads": o.threads, "parallel": 1}
        fut = self.client.submit(run_batch_here, libs, meta, seed, ref_bytes, ref_mode, opts,
                                 resources={self.key: 1}, pure=False)
        out = fut.result()
        if ref_mode == "save" and "ref" in out:
            self._refs[ref] = out["ref"]
            Path(ref).write_bytes(out["ref"])
        return [MeasureResult(list(c), ErrorKind(e), m) for c, e, m in out["results"]]

    def close(self):
        pass


class SSHRunner:
    """Times candidates on a board reachable by `ssh`, with no Python there: the C kernel
    runner (runtime/c/tilecc_kernel_runner.c, cross-built for the target) is uploaded once per
    session, then per candidate the library goes up with `scp`, runs under a remote `timeout`,
    and its outputs come back to be compared with the reference here. `ssh`/`scp` are plain
    subprocesses so keys and config come from the user's ~/.ssh/config; the board needs a
    POSIX shell, `timeout` (coreutils or busybox) and a glibc no older than the cross
    toolchain's. `prefix` goes before the runner on the board (e.g. `taskset -c 3` to pin
    it to one core)."""

    timed = True

    def __init__(self, host: str, target, options: MeasureOptions, remote_dir: str = "/tmp",
                 ssh: str = "ssh", scp: str = "scp", prefix: list[str] | None = None):
        from .kernelrun import build_kernel_runner

        self.host, self.key, self.options = host, target.key, options
        self.ssh, self.scp, self.prefix = ssh, scp, list(prefix or [])
        self.device = f"ssh:{host}"
        self.exe = build_kernel_runner(target)
        self.rdir = f"{remote_dir.rstrip('/')}/tilecc-{os.getpid()}-{secrets.token_hex(4)}"
        self._tmp = tempfile.TemporaryDirectory(prefix="tilecc-ssh-")
        self.dir = Path(self._tmp.name)
        self._started = False
        self._uploaded: set[str] = set()
        self._runs = 0

    def new_task(self):
        pass

    def _ssh_run(self, cmd: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run([self.ssh, self.host, cmd], check=False, capture_output=True,
                              text=True, timeout=timeout)

    def _copy(self, src: str, dst: str) -> None:
        try:
            p = subprocess.run([self.scp, "-q", src, dst], check=False, capture_output=True,
                               text=True, timeout=self.options.timeout)
        except subprocess.TimeoutExpired:
            raise RemoteError(f"scp {src} {dst}: no answer within "
                              f"{self.options.timeout:g} s") from None
        if p.returncode != 0:
            raise RemoteError(f"scp {src} {dst} failed ({p.returncode}): "
                            f"{p.stderr.strip()[-200:]}")

    def _put(self, local: str | Path, name: str) -> str:
        remote = f"{self.rdir}/{name}"
        self._copy(str(local), f"{self.host}:{remote}")
        return remote

    def _start(self) -> None:
        """One remote directory per session, holding the runner and the input files."""
        p = self._ssh_run(f"mkdir -p {shlex.quote(self.rdir)}", self.options.timeout)
        if p.returncode != 0:
            raise RemoteError(f"ssh {self.host} failed ({p.returncode}): "
                            f"{p.stderr.strip()[-200:]}")
        self._put(self.exe, EXE_NAME)
        self._started = True

    def close(self):
        if self._started:
            try:
                self._ssh_run(f"rm -rf {shlex.quote(self.rdir)}", self.options.timeout)
            except (subprocess.TimeoutExpired, OSError):
                pass  # the board went away: nothing left to clean up from here
            self._started = False
        self._tmp.cleanup()

    def run(self, builds: list[BuildResult], seed: int, ref: str, ref_mode: str = "check"
            ) -> list[MeasureResult]:
        return run_each(builds, lambda b: self._one(b, seed, ref, ref_mode))

    def _one(self, b: BuildResult, seed: int, ref: str, ref_mode: str) -> MeasureResult:
        if not self._started:
            self._start()
        self._runs += 1
        local = write_inputs(b.args, seed, self.dir)
        names: list[str | None] = []
        for k, (f, (_, _, role)) in enumerate(zip(local, b.args)):
            if f is not None:
                if f.name not in self._uploaded:
                    self._put(f, f.name)
                    self._uploaded.add(f.name)
                names.append(f.name)
            else:
                names.append(f"out{k}.bin" if role == "out" else None)
        self._put(b.lib, "cand.so")
        argv = runner_args("./cand.so", b.symbol, b.args, names, self.options, timed=True)
        outs = [n for n, (_, _, role) in zip(names, b.args) if role == "out"]
        t = self.options.timeout
        # Old outputs go first, so a crashed candidate's files can never pass for its own;
        # the remote `timeout` stops a hung kernel on the board even if ssh is cut.
        cmd = (f"cd {shlex.quote(self.rdir)} && rm -f {' '.join(outs)} && "
               f"timeout {t:g} {' '.join(map(shlex.quote, self.prefix))} ./{EXE_NAME} "
               f"{' '.join(map(shlex.quote, argv))}; rc=$?; rm -f cand.so; exit $rc")
        try:
            proc = self._ssh_run(cmd, t + 30)
        except subprocess.TimeoutExpired:
            return MeasureResult([], ErrorKind.TIMEOUT, f"ssh gave no answer within {t + 30:g} s")
        if proc.returncode == 124:
            return MeasureResult([], ErrorKind.TIMEOUT, f"no result within {t:g} s on the board")
        if proc.returncode == 255:  # ssh's own failure, not the runner's
            raise RemoteError(f"ssh {self.host} failed: {proc.stderr.strip()[-200:]}")
        run_dir = self.dir / f"run{self._runs}"
        run_dir.mkdir()
        files: list[Path | None] = []
        for n, (_, _, role) in zip(names, b.args):
            files.append(run_dir / n if role == "out" else None)
            if role == "out" and proc.returncode == 0:
                self._copy(f"{self.host}:{self.rdir}/{n}", str(run_dir / n))
        try:
            return finish(proc, b.args, files, ref, ref_mode, timed=True, via_shell=True)
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)


class RemoteError(TileccError):
    """ssh or scp itself failed (no connection, disk full): not the candidate's fault, so it
    stops the session instead of being logged against a config; the log resumes later."""

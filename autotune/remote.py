"""Runners that measure somewhere else: a Dask cluster, or a board over SSH.

Both take the libraries the local Builder made and the same run requests LocalRunner sends;
the reference output travels as .npz bytes.
"""

from __future__ import annotations

import base64
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from .measure import BuildResult, LocalRunner, MeasureOptions, MeasureResult, _result
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
    """Times candidates on a board reachable by `ssh`: uploads each candidate library and the
    worker request with `scp`, runs `python3 -m tilecc.autotune.worker` there (the board needs
    Python, numpy and tilecc's autotune package; a C-only timing runner is not done), and reads
    the JSON reply. `ssh`/`scp` are plain subprocesses so keys and config come from the user's
    ~/.ssh/config."""

    def __init__(self, host: str, target, options: MeasureOptions, remote_dir: str = "/tmp",
                 ssh: str = "ssh", scp: str = "scp", python: str = "python3"):
        self.host, self.key, self.options = host, target.key, options
        self.remote_dir, self.ssh, self.scp, self.python = remote_dir, ssh, scp, python
        self.device = f"ssh:{host}"

    def new_task(self):
        pass

    def close(self):
        pass

    def _remote(self, name: str) -> str:
        return f"{self.remote_dir.rstrip('/')}/tilecc-{os.getpid()}-{name}"

    def run(self, builds: list[BuildResult], seed: int, ref: str, ref_mode: str = "check"
            ) -> list[MeasureResult]:
        import json

        out = []
        rref = self._remote("ref.npz")
        if ref_mode == "check" and Path(ref).exists():
            subprocess.run([self.scp, "-q", ref, f"{self.host}:{rref}"], check=True,
                           timeout=self.options.timeout)
        for k, b in enumerate(builds):
            if b.error != ErrorKind.NONE:
                out.append(MeasureResult([], b.error, b.msg))
                continue
            rlib = self._remote(f"c{k}.so")
            req = LocalRunner.request(self, BuildResult(rlib, b.symbol, b.args), seed, rref,
                                      ref_mode)
            try:
                subprocess.run([self.scp, "-q", b.lib, f"{self.host}:{rlib}"], check=True,
                               timeout=self.options.timeout, capture_output=True)
                line = base64.b64encode(json.dumps(req).encode()).decode()
                cmd = (f"echo {line} | base64 -d | {shlex.quote(self.python)} -m "
                       f"tilecc.autotune.worker; rm -f {shlex.quote(rlib)}")
                p = subprocess.run([self.ssh, self.host, cmd], check=False, capture_output=True,
                                   text=True, timeout=self.options.timeout)
            except subprocess.TimeoutExpired:
                out.append(MeasureResult([], ErrorKind.TIMEOUT, "ssh run timed out"))
                continue
            except subprocess.CalledProcessError as e:
                out.append(MeasureResult([], ErrorKind.RUNTIME_ERROR, f"upload failed: {e}"))
                continue
            lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
            if not lines:
                out.append(MeasureResult([], ErrorKind.CRASH,
                                         f"remote worker exited with {p.returncode}"))
                continue
            out.append(_result(json.loads(lines[-1])))
        if ref_mode == "save":
            subprocess.run([self.scp, "-q", f"{self.host}:{rref}", ref], check=False,
                           timeout=self.options.timeout, capture_output=True)
        return out

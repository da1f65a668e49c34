"""Host side of the C kernel runner (runtime/c/tilecc_kernel_runner.c), which runs tuning
candidates where there is no Python: under qemu-user (emulated.py) and on a board over SSH
(remote.py).

The host builds the runner with the target's gcc, writes the candidate's inputs with the same
seeded generator as worker.do_run (so a reference saved by any runner is comparable), forms
the command line, and turns what the runner printed, wrote and returned into a MeasureResult.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
from pathlib import Path

import numpy as np

from tilecc.fileio import atomic_output, cache_dir

from .measure import MeasureOptions, MeasureResult
from .record import ErrorKind
from .worker import WRONG_ANSWER_MSG, random_like, reference_matches

EXE_NAME = "tilecc_kernel_runner"
# Exit codes of the runner (see the C source).
_RC_MSG = {1: "bad runner arguments", 2: "library or entry not loadable", 3: "bad input file",
           4: "out of memory or output not writable", 5: "kernel returned an error"}
_built: dict[tuple[str, str], Path] = {}


def runner_source() -> Path:
    from tilecc.codegen.link import runtime_source_dir

    return runtime_source_dir() / "tilecc_kernel_runner.c"


def build_kernel_runner(target) -> Path:
    """The runner compiled for `target` with its gcc (`target.linker`), cached per compiler
    and source in the temp dir so every session and tuning process shares one build."""
    from tilecc.codegen.link import _compiler_for, _run

    cc = _compiler_for(target)
    src = runner_source()
    digest = hashlib.sha256(src.read_bytes() + cc.encode()).hexdigest()[:16]
    key = (cc, digest)
    exe = _built.get(key)
    if exe is not None and exe.is_file():
        return exe
    d = cache_dir("kernel-runner")
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    exe = d / f"{EXE_NAME}-{Path(cc).name}-{digest}"
    if not exe.is_file():
        # Built under a private name, then renamed: a concurrent tuner never runs half a file.
        with atomic_output(exe) as tmp:
            _run([cc, "-O2", "-std=c11", "-o", str(tmp), str(src), "-ldl"],
                 f"building the kernel runner for {target.name}")
    _built[key] = exe
    return exe


def arg_bytes(shape, dtype) -> int:
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def inputs_key(args: list, seed: int) -> str:
    """Names the input files of one (argument spec, seed): candidates of a task share them."""
    return hashlib.sha256(json.dumps([args, seed]).encode()).hexdigest()[:12]


def write_inputs(args: list, seed: int, directory: str | os.PathLike) -> list[Path | None]:
    """Raw input files for the runner, drawn exactly as worker.do_run draws them (one
    generator, inputs in argument order); None for non-input arguments."""
    rng = np.random.default_rng(seed)
    key = inputs_key(args, seed)
    out: list[Path | None] = []
    for k, (shape, dtype, role) in enumerate(args):
        if role != "in":
            out.append(None)
            continue
        p = Path(directory) / f"in-{key}-{k}.bin"
        a = random_like(shape, dtype, rng)
        if not p.is_file():
            a.tofile(p)
        out.append(p)
    return out


def runner_args(lib: str, symbol: str, args: list, files: list[str | None],
                options: MeasureOptions, timed: bool) -> list[str]:
    """The runner's command line; `files[k]` is where argument k is read (in) or written
    (out), as the runner will see the path."""
    o = options
    cmd = ["-j", str(o.threads)]
    if timed:
        cmd += ["-n", str(o.number), "-r", str(o.repeat), "-m", repr(float(o.min_repeat_ms)),
                "-f", str(o.flush_bytes)]
    else:
        cmd.append("-x")
    cmd += [lib, symbol]
    for (shape, dtype, role), f in zip(args, files):
        n = arg_bytes(shape, dtype)
        cmd.append(f"scratch:{n}" if role == "scratch" else f"{role}:{n}:{f}")
    return cmd


def parse_costs(stdout: str) -> list[float]:
    return [float(ln.split()[1]) for ln in stdout.splitlines()
            if ln.startswith("cost ") and len(ln.split()) == 2]


def read_outputs(args: list, files: list[str | os.PathLike | None]) -> list[np.ndarray]:
    return [np.fromfile(f, dtype=dtype).reshape(shape)
            for (shape, dtype, role), f in zip(args, files) if role == "out"]


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def failure(returncode: int, stderr: str, via_shell: bool = False) -> MeasureResult:
    """The result of a runner that exited with `returncode` != 0. `via_shell`: the code came
    through a remote shell, which reports death by signal N as 128 + N."""
    detail = next((ln.strip() for ln in reversed(stderr.splitlines()) if ln.strip()), "")
    sig = -returncode if returncode < 0 else 0
    if via_shell and 128 < returncode < 128 + 65:
        sig = returncode - 128
    if sig:
        return MeasureResult([], ErrorKind.CRASH, f"runner killed by {_signal_name(sig)}"
                             + (f": {detail}" if detail else ""))
    what = _RC_MSG.get(returncode, f"runner exited with {returncode}")
    return MeasureResult([], ErrorKind.RUNTIME_ERROR, f"{what}: {detail}" if detail else what)


def finish(proc: subprocess.CompletedProcess, args: list, out_files: list, ref: str,
           ref_mode: str, timed: bool, via_shell: bool = False,
           untimed_msg: str = "") -> MeasureResult:
    """Turn a finished runner process (its outputs already at `out_files`) into a result."""
    if proc.returncode != 0:
        return failure(proc.returncode, proc.stderr, via_shell)
    costs = parse_costs(proc.stdout) if timed else []
    if timed and (not costs or not all(c > 0 for c in costs)):
        return MeasureResult([], ErrorKind.RUNTIME_ERROR,
                             f"no timings in the runner's output: {proc.stdout[-200:]!r}")
    try:
        outs = read_outputs(args, out_files)
    except (OSError, ValueError) as e:
        return MeasureResult([], ErrorKind.RUNTIME_ERROR, f"reading outputs: {e}")
    if not reference_matches(outs, ref, ref_mode):
        return MeasureResult([], ErrorKind.WRONG_ANSWER, WRONG_ANSWER_MSG)
    if timed:
        return MeasureResult(costs)
    return MeasureResult([], ErrorKind.UNTIMED, untimed_msg)

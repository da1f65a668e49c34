"""Executed-instruction counts of an emulated Linux run, read from qemu-user's debug log.

Timings under emulation say nothing about the target, so an emulated run reports how many
guest instructions it executed instead. Debian's qemu-user has no TCG plugins; its debug log
does the job: `-d in_asm,exec,nochain` prints each translated block's instructions once
(`in_asm`) and one line per execution of a block (`exec`; `nochain` sends every block exit
back through the logging main loop), so the count is the sum over executions of the
executed block's length. The log is read from a FIFO while qemu runs and folded into a few
counters as it streams, so memory stays bounded whatever the model's size.

Attribution is by guest PC. The C runner, started with `-b`, prints where the model library
and the runner were loaded and waits; the library's function symbols (runtime/elf.py) then
place every block. One run of the model, with one thread, is followed in order:

* the run starts with the first block of `<name>_run` and ends at the next block of the
  runner's `main` (so `<name>_init`, reading the files and the loader are not counted);
* a block in a kernel's function (`k3_gemm`, its parallel bodies `k3_gemm_par`,
  `k3_gemm_par1`...) coming from the run function opens the next call of that kernel in
  `metadata["kernels"]`, unless it is another function of the kernel whose call is running
  (a kernel with two parallel loops returns to the run function between them: its wrapper
  is inlined there); blocks in `<name>_run` itself (argument set-up, kernels inlined into
  it) are the run's own; blocks anywhere else (the thread pool, libc's memcpy, PLT stubs)
  are charged to whichever of the two was running, so kernel counts plus the run's own
  count is the run.

Counts are deterministic: guest code and guest data decide them, not the host (qemu
translates guest instructions whatever the host CPU) or time (nothing in a model branches on
time). Inputs can move them slightly where code branches on data (scalar max/clamp code on
RISC-V without vectors). A block is keyed by its PC, and after a re-translation (qemu flushes
its code cache when it fills) its latest length is used; two live blocks at one PC with
different lengths (another CPU state) would be miscounted, which the one-instruction-per-block
comparison in tests/runtime/test_icount.py would show.
"""

from __future__ import annotations

import bisect
import os
import re
import subprocess
import threading
from pathlib import Path

import numpy as np

from tilecc.errors import ModelRunError
from tilecc.runtime.elf import function_symbols

LOG_ITEMS = "in_asm,exec,nochain"
# An exec line: "Trace 0: 0x7f...(host code) [cs_base/pc/flags/cflags] symbol"
_TRACE = re.compile(rb"^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/", re.MULTILINE)
_OTHER, _OWN, _MAIN = -1, -2, -3  # block classes besides a kernel index


class Symbols:
    """PC -> block class for one loaded library and runner."""

    def __init__(self, library: bytes, runner: bytes, run_symbol: str,
                 kernels: list[str]):
        self.lib = function_symbols(library)
        self.starts = [a for _, a, _ in self.lib]
        self.end = max((a + s for _, a, s in self.lib), default=0)
        main = [(a, s) for n, a, s in function_symbols(runner) if n == "main"]
        if not main:
            raise ModelRunError("the C runner has no `main` symbol to end the count at", -1)
        self.main = main[0]
        names = sorted(set(kernels), key=len, reverse=True)
        self.kinds: list[int] = []
        self.kernel_names = names
        for name, _, _ in self.lib:
            if name == run_symbol:
                self.kinds.append(_OWN)
                continue
            owner = next((i for i, k in enumerate(names)
                          if name == k or name.startswith((k + "_", k + "."))), _OTHER)
            self.kinds.append(owner)
        self.lib_base = self.runner_base = 0

    def classify(self, pc: int) -> tuple[int, int]:
        """(class, function index in the library or -1)."""
        off = pc - self.runner_base
        if self.main[0] <= off < self.main[0] + self.main[1]:
            return _MAIN, -1
        off = pc - self.lib_base
        if not self.starts or off < self.starts[0] or off >= self.end:
            return _OTHER, -1
        fn = bisect.bisect_right(self.starts, off) - 1
        return self.kinds[fn], fn


class ExecLogCounter:
    """Folds a `-d in_asm,exec,nochain` log into counts (module docstring).

    Python cannot afford a step per executed block (hundreds of millions for a ResNet), so
    `feed` takes the log in large pieces: a regular expression pulls the PCs of a stretch of
    `exec` lines, numpy maps them to block lengths and classes, and only the runs of
    consecutive blocks of one function go through the state machine (`_step`), whose
    transitions depend on nothing else."""

    def __init__(self, symbols: Symbols, calls: list[str]):
        self.sym = symbols
        self.calls = calls
        self.process = 0  # every executed instruction of the process
        self.run = 0
        self.own = 0
        self.per_call = [0] * len(calls)
        self.opened = [False] * len(calls)  # a call whose kernel code ran out of line
        self.unmatched: dict[str, int] = {}
        self.runs = 0
        self.ready = False  # bases known
        self._lock = threading.Lock()  # set_bases comes from another thread than feed
        self._ids: dict[bytes, int] = {}  # PC as the exec lines print it -> block id
        self._by_pc: dict[int, int] = {}
        self._pcs: list[int] = []
        self._len = np.zeros(0, np.int64)
        self._kind = np.zeros(0, np.int64)
        self._fn = np.zeros(0, np.int64)
        self._tail = b""
        self._inside = False
        self._ctx = _OWN  # a call index while a kernel runs, else _OWN
        self._ctx_kernel = -1
        self._entry_fn = -1  # the function the running call was entered through
        self._resume = _OWN  # the call to go back to when another of its functions runs
        self._next_call = 0

    def set_bases(self, library: int, runner: int) -> None:
        with self._lock:
            self.sym.lib_base, self.sym.runner_base = library, runner
            self.ready = True
            for i, pc in enumerate(self._pcs):
                self._kind[i], self._fn[i] = self.sym.classify(pc)

    def feed(self, data: bytes) -> None:
        """The next piece of the log, cut anywhere."""
        data, pos = self._tail + data, 0
        with self._lock:
            while True:
                at = data.find(b"IN:", pos)
                if at < 0:
                    end = max(data.rfind(b"\n") + 1, pos)
                    self._traces(data[pos:end])
                    self._tail = data[end:]
                    return
                self._traces(data[pos:at])
                stop = data.find(b"\n\n", at)
                if stop < 0:
                    self._tail = data[at:]
                    return
                self._translation(data[at:stop])
                pos = stop + 2

    def _translation(self, text: bytes) -> None:
        lines = [ln for ln in text.split(b"\n")[1:] if ln.startswith(b"0x")]
        if not lines:
            return
        pc = int(lines[0][2:lines[0].index(b":")], 16)
        i = self._by_pc.get(pc)
        if i is None:
            i = self._by_pc[pc] = len(self._pcs)
            self._pcs.append(pc)
            if i >= len(self._len):
                grow = max(1024, len(self._len))
                self._len, self._kind, self._fn = (np.concatenate([a, np.zeros(grow, np.int64)])
                                                   for a in (self._len, self._kind, self._fn))
        self._len[i] = len(lines)
        self._kind[i], self._fn[i] = self.sym.classify(pc) if self.ready else (_OTHER, -1)

    def _traces(self, text: bytes) -> None:
        pcs = _TRACE.findall(text)
        if not pcs:
            return
        ids = list(map(self._ids.get, pcs))
        if None in ids:
            for p in set(pcs).difference(self._ids):
                i = self._by_pc.get(int(p, 16))
                if i is None:
                    raise ModelRunError(f"qemu's log executes block 0x{p.decode()} before "
                                        "translating it (is `in_asm` missing from -d?)", -1)
                self._ids[p] = i
            ids = list(map(self._ids.get, pcs))
        idx = np.array(ids, np.int64)
        n, kind, fn = self._len[idx], self._kind[idx], self._fn[idx]
        key = kind * (1 << 32) + fn
        starts = np.concatenate([[0], np.flatnonzero(key[1:] != key[:-1]) + 1])
        for k, f, m in zip(kind[starts].tolist(), fn[starts].tolist(),
                           np.add.reduceat(n, starts).tolist()):
            self._step(k, f, m)

    def _step(self, kind: int, fn: int, n: int) -> None:
        """`n` instructions executed in consecutive blocks of one class and function."""
        self.process += n
        if not self._inside:
            if kind == _OWN:
                self._inside, self._ctx, self._next_call = True, _OWN, 0
                self._ctx_kernel = self._entry_fn = -1
                self.runs += 1
            else:
                return
        if kind == _MAIN:
            self._inside = False
            return
        self.run += n
        if kind >= 0:
            if self._ctx_kernel != kind or fn == self._entry_fn and self._ctx == _OWN:
                self._open_call(kind, fn)
            elif self._ctx == _OWN:
                self._ctx = self._resume
        elif kind == _OWN:
            if self._ctx != _OWN:
                self._resume = self._ctx
            self._ctx = _OWN
        if self._ctx == _OWN:
            self.own += n
        elif self._ctx >= 0:
            self.per_call[self._ctx] += n
        else:
            name = self.sym.kernel_names[self._ctx_kernel]
            self.unmatched[name] = self.unmatched.get(name, 0) + n

    def _open_call(self, kind: int, fn: int) -> None:
        name = self.sym.kernel_names[kind]
        self._ctx_kernel, self._entry_fn = kind, fn
        for i in range(self._next_call, len(self.calls)):
            if self.calls[i] == name:
                self._ctx, self._next_call = i, i + 1
                self.opened[i] = True
                return
        self._ctx = -10  # a call the metadata does not list: kept apart, never dropped

    def result(self, metadata: dict) -> dict:
        if self.runs != 1:
            raise ModelRunError(f"expected one run of the model in qemu's log, found "
                                f"{self.runs}", -1)
        # A call never opened ran inline in the run function (LLVM may inline a kernel at
        # some call sites and not others): its work is in "outside_kernels", not zero.
        kernels = [{"kernel": k["kernel"], "ops": list(k.get("ops", [])),
                    "shape": k.get("shape", []), "instructions": n if opened else None}
                   for k, n, opened in zip(metadata.get("kernels") or [], self.per_call,
                                           self.opened)]
        return {"instructions": self.run, "outside_kernels": self.own,
                "kernels": kernels, "unmatched": dict(self.unmatched),
                "process_instructions": self.process}


def count_run(cmd: list[str], counter: ExecLogCounter, workdir: Path, env: dict,
              timeout: float) -> subprocess.CompletedProcess:
    """Run `cmd` (qemu-user + the runner with -b) logging to a FIFO that `counter` reads as
    it streams; answer the runner's -b line with the bases. Returns the finished process."""
    fifo = workdir / "qemu.log"
    if fifo.exists():
        fifo.unlink()
    os.mkfifo(fifo)
    errors: list[BaseException] = []

    def read_log() -> None:
        with open(fifo, "rb") as log:
            while data := log.read(1 << 22):
                if errors:
                    continue  # drain: qemu must never block on a full FIFO
                try:
                    counter.feed(data)
                except (ModelRunError, ValueError, KeyError, IndexError) as exc:
                    errors.append(exc)  # raised by the caller once qemu has finished

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    full = [cmd[0], "-d", LOG_ITEMS, "-D", str(fifo), *cmd[1:]]
    proc = subprocess.Popen(full, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=workdir)
    assert proc.stdin is not None and proc.stderr is not None
    first = proc.stderr.readline()
    if first.startswith("tilecc_runner: bases "):
        fields = dict(f.split("=") for f in first.split()[2:])
        counter.set_bases(int(fields["library"], 16), int(fields["runner"], 16))
        proc.stdin.write("go\n")
        proc.stdin.flush()
        first = ""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise ModelRunError(f"{cmd[0]} did not finish within {timeout:g} s counting "
                            "instructions (the log makes emulation slower); qemu was "
                            "stopped", -1) from None
    finally:
        if reader.is_alive():
            _unblock(fifo)
        reader.join()
    if errors:
        raise errors[0]
    return subprocess.CompletedProcess(full, proc.returncode, out, first + err)


def _unblock(fifo: Path) -> None:
    """Wake a reader still waiting in open() when qemu exited before opening its log."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.close(fd)

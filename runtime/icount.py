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
  is inlined there); blocks in `<name>_run` itself (argument set-up, kernels inlined into it) are the
  run's own; blocks anywhere else (the thread pool, libc's memcpy, PLT stubs) are charged to
  whichever of the two was running, so kernel counts plus the run's own count is the run.

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
import subprocess
import threading
from pathlib import Path

from tilecc.errors import ModelRunError
from tilecc.runtime.elf import function_symbols

LOG_ITEMS = "in_asm,exec,nochain"
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
    """Folds a `-d in_asm,exec,nochain` log into counts (module docstring)."""

    def __init__(self, symbols: Symbols, calls: list[str]):
        self.sym = symbols
        self.calls = calls
        self.sizes: dict[str, int] = {}
        self.blocks: dict[str, tuple[int, int, int]] = {}  # pc text -> (length, class, fn)
        self.process = 0  # every executed instruction of the process
        self.run = 0
        self.own = 0
        self.per_call = [0] * len(calls)
        self.opened = [False] * len(calls)  # a call whose kernel code ran out of line
        self.unmatched: dict[str, int] = {}
        self.runs = 0
        self.ready = False  # bases known
        self._inside = False
        self._ctx = _OWN  # a call index while a kernel runs, else _OWN
        self._ctx_kernel = -1
        self._entry_fn = -1  # the function the running call was entered through
        self._resume = _OWN  # the call to go back to when another of its functions runs
        self._next_call = 0
        self._block_pc: str | None = None
        self._block_len = 0

    def set_bases(self, library: int, runner: int) -> None:
        self.sym.lib_base, self.sym.runner_base = library, runner
        self.blocks.clear()
        self.ready = True

    def feed(self, line: str) -> None:
        if line.startswith("Trace "):
            self._exec(line)
        elif line.startswith("0x"):
            if self._block_pc is None:
                self._block_pc = line[2:line.index(":")].lstrip("0") or "0"
            self._block_len += 1
        elif line.startswith("IN:"):
            self._block_pc, self._block_len = None, 0
        elif not line.strip() and self._block_pc is not None:
            self.sizes[self._block_pc] = self._block_len
            self.blocks.pop(self._block_pc, None)
            self._block_pc = None

    def _exec(self, line: str) -> None:
        # "Trace 0: 0x7f...(host) [cs_base/pc/flags/cflags] symbol"
        field = line[line.index("[") + 1:line.index("]")].split("/")[1]
        pc = field.lstrip("0") or "0"
        block = self.blocks.get(pc)
        if block is None:
            if pc not in self.sizes:
                raise ModelRunError(f"qemu's log executes block 0x{pc} before translating it "
                                    "(is `in_asm` missing from -d?)", -1)
            kind, fn = self.sym.classify(int(pc, 16)) if self.ready else (_OTHER, -1)
            block = (self.sizes[pc], kind, fn)
            if self.ready:
                self.blocks[pc] = block
        n, kind, fn = block
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
        with open(fifo, encoding="utf-8", errors="replace", buffering=1 << 20) as log:
            for line in log:
                if errors:
                    continue  # drain: qemu must never block on a full FIFO
                try:
                    counter.feed(line)
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

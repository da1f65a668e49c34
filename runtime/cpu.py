"""ctypes binding of a CPU artifact's shared library (the C ABI in include/model.h)."""

from __future__ import annotations

import ctypes
import os
import warnings

from tilecc.errors import ArtifactError, InputError
from tilecc.fileio import private_temp_dir
from tilecc.runtime.elf import arch_name, host_arch

_arch = arch_name  # the name targets/target.py imports

THREADS_ENV = "TILECC_NUM_THREADS"
# As TILECC_MAX_THREADS and TILECC_THREADS_PER_CORE in runtime/c/tilecc_runtime.h.
MAX_THREADS, THREADS_PER_CORE = 256, 4


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def thread_cap() -> int:
    """The most threads $TILECC_NUM_THREADS gets: beyond THREADS_PER_CORE per core a spinning
    pool only slows itself down. An explicit count (set_num_threads, --threads) may
    oversubscribe on purpose, up to MAX_THREADS, the most the C runtime keeps."""
    return min(MAX_THREADS, THREADS_PER_CORE * available_cores())


def capped_threads(n: int, what: str, cap: int = MAX_THREADS) -> int:
    """`n` (>= 1, the caller checks) as the runtime will use it: above `cap`, capped with a
    warning."""
    if n > cap:
        why = (f"{THREADS_PER_CORE} per available core, at most {MAX_THREADS}"
               if cap < MAX_THREADS else "the most the runtime keeps")
        warnings.warn(f"{what}={n} is above the cap; using {cap} threads ({why})",
                      stacklevel=3)
        return cap
    return n


def env_num_threads() -> int | None:
    """$TILECC_NUM_THREADS as a thread count (None when unset). Not a positive integer is an
    InputError here; the C runtime, which cannot fail its caller, warns and uses the cores."""
    env = os.environ.get(THREADS_ENV, "").strip()
    if not env:
        return None
    try:
        n = int(env)
    except ValueError:
        n = 0
    if n < 1:
        raise InputError(f"{THREADS_ENV}={env!r} is not a positive integer; set a thread "
                         f"count (1..{thread_cap()} here) or unset it to use every core")
    return capped_threads(n, THREADS_ENV, thread_cap())


def check_host_can_run(target: dict) -> None:
    """Refuse an artifact built for another CPU before dlopen gives a cryptic ELF error."""
    if target.get("kind", "cpu") != "cpu":
        raise ArtifactError(f"artifact targets {target.get('kind')!r}; the CPU loader cannot "
                            "run it")
    triple = target.get("triple", "")
    want, have = arch_name(triple.split("-")[0]), host_arch()
    if triple and want != have:
        raise ArtifactError(f"artifact is built for {triple}, this machine is {have}; run it "
                            "there, or here under qemu-user: `tilecc run MODEL.tar --emulate` "
                            "(Python: tilecc.runtime.crunner.EmulatedModule)")


class CpuLibrary:
    """The loaded model library: init/run/workspace_size plus the runtime's thread control."""

    def __init__(self, library: bytes, name: str):
        # A fresh private directory per load, kept until exit: glibc identifies a loaded
        # library by device/inode, so deleting the file early could let a later load reuse
        # the inode and silently get this (possibly different) model back from dlopen.
        path = private_temp_dir("tilecc-lib-") / "model.so"
        path.write_bytes(library)
        try:
            self.lib = ctypes.CDLL(str(path))
        except OSError as e:
            raise ArtifactError(f"cannot load the model library: {e}") from None
        try:
            self.init = getattr(self.lib, f"{name}_init")
            self.run = getattr(self.lib, f"{name}_run")
            self.workspace_size = getattr(self.lib, f"{name}_workspace_size")
            self.set_num_threads = self.lib.tilecc_set_num_threads
            self.get_num_threads = self.lib.tilecc_get_num_threads
        except AttributeError as e:
            raise ArtifactError(f"model library lacks a symbol: {e}") from None
        self.init.argtypes = [ctypes.c_void_p, ctypes.c_int64]
        self.init.restype = ctypes.c_int32
        self.run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        self.run.restype = ctypes.c_int32
        self.workspace_size.argtypes = []
        self.workspace_size.restype = ctypes.c_int64
        self.set_num_threads.argtypes = [ctypes.c_int32]
        self.set_num_threads.restype = None
        self.get_num_threads.argtypes = []
        self.get_num_threads.restype = ctypes.c_int32

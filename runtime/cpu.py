"""ctypes binding of a CPU artifact's shared library (the C ABI in include/model.h)."""

from __future__ import annotations

import ctypes

from tilecc.errors import ArtifactError
from tilecc.fileio import private_temp_dir
from tilecc.runtime.elf import arch_name, host_arch

_arch = arch_name  # the name targets/target.py imports


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

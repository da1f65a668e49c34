"""Link model objects with the C runtime into a shared library for the target."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tilecc.errors import LinkError
from tilecc.runtime import elf

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime" / "c"
_RUNTIME_CFLAGS = ["-O2", "-fPIC", "-std=gnu11"]
# Compiled runtime objects per (compiler, source): autotuning links many candidate builds,
# and recompiling the same runtime each time would dominate small measurements.
_runtime_objects: dict[tuple[str, str], bytes] = {}


def runtime_source_dir() -> Path:
    """Where tilecc_runtime.{c,h} and tilecc_runner.c live (installed as package data)."""
    for d in (RUNTIME_DIR, _package_runtime_dir()):
        if d is not None and (d / "tilecc_runtime.c").is_file():
            return d
    raise LinkError("the C runtime sources (tilecc_runtime.c) are not installed")


def _package_runtime_dir() -> Path | None:
    try:
        import tilecc.runtime
    except ImportError:
        return None
    return Path(tilecc.runtime.__file__).resolve().parent / "c"


def _compiler_for(target) -> str:
    # Targets may name a separate C compiler; by default the linker is a gcc-style driver.
    return getattr(target, "cc", None) or target.linker


def _run(cmd: list[str], what: str) -> None:
    tool = cmd[0]
    if shutil.which(tool) is None:
        raise LinkError(f"{what}: {tool!r} not found; install it (host: build-essential; "
                        f"cross: the gcc-<triple> package) or pick another target")
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise LinkError(f"{what} failed ({' '.join(cmd)}):\n{detail}")


def compile_runtime(cc: str) -> bytes:
    """tilecc_runtime.c compiled with `cc`, once per process (kept in memory: a cached file
    would be a temp directory left behind by every compile)."""
    src = runtime_source_dir() / "tilecc_runtime.c"
    digest = hashlib.sha256(src.read_bytes() + (src.parent / "tilecc_runtime.h").read_bytes())
    key = (cc, digest.hexdigest())
    if key not in _runtime_objects:
        with tempfile.TemporaryDirectory(prefix="tilecc-rt-") as tmp:
            obj = Path(tmp) / "tilecc_runtime.o"
            _run([cc, *_RUNTIME_CFLAGS, "-c", str(src), "-o", str(obj)],
                 "compiling the C runtime")
            _runtime_objects[key] = obj.read_bytes()
    return _runtime_objects[key]


def link_shared(objects: list[Path], out: Path, target) -> Path:
    """Link model objects + the C runtime into `out` (a .so) with the target's linker."""
    out = Path(out)
    if not objects:
        raise LinkError("nothing to link: no object files")
    missing = [str(o) for o in objects if not Path(o).is_file()]
    if missing:
        raise LinkError(f"object file not found: {missing[0]}")
    runtime = compile_runtime(_compiler_for(target))
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tilecc-link-") as tmp:
        runtime_obj = Path(tmp) / "tilecc_runtime.o"
        runtime_obj.write_bytes(runtime)
        version_script = Path(tmp) / "exports.map"
        version_script.write_text(_EXPORTS)
        _link(objects, out, target, runtime_obj, version_script)
    return out


def _link(objects: list[Path], out: Path, target, runtime_obj: Path,
          version_script: Path) -> None:
    cmd = [
        target.linker, "-shared", "-o", str(out), *map(str, objects), str(runtime_obj),
        # -Bsymbolic: each model library uses its own runtime (thread pool and thread count)
        # even if another model library is loaded globally into the same process.
        "-Wl,-Bsymbolic",
        # LLVM objects carry no .note.GNU-stack; without this the library would ask for an
        # executable stack, which newer glibc refuses to dlopen.
        "-Wl,-z,noexecstack",
        # Unresolved symbols fail here, with a name, not later at dlopen on the device.
        "-Wl,--no-undefined",
        f"-Wl,-soname,{out.name}",
        f"-Wl,--version-script,{version_script}",
        "-lpthread", "-lm",
    ]
    _run(cmd, "linking the model library")


# The runtime's internals stay inside each library: the model's kernels call them there
# (-Bsymbolic), and a program linking two model libraries must not see two definitions.
# The thread controls stay exported: model.h declares them, and the Python runtime and the
# tuners' C runner set threads through them. Exact names win over the `*` wildcard.
_EXPORTS = """{
  global: *;
  local: tilecc_parallel_for; tilecc_now_ns; tilecc_max_threads;
};
"""


_BARE_CFLAGS = ["-O2", "-std=gnu11", "-ffreestanding", "-fno-builtin",
                "-fno-tree-loop-distribute-patterns", "-fno-stack-protector", "-fPIC"]


def link_bare_metal(objects: list[Path], out: Path, target,
                    stack_usage: dict[str, int] | None = None) -> Path:
    """Combine model objects with the freestanding routines (runtime/c/tilecc_baremetal.c)
    into one relocatable object (`ld -r`) with no undefined symbols. `stack_usage`, if given,
    receives gcc's frame size of each runtime routine (-fstack-usage)."""
    from tilecc.codegen.stack_usage import gcc_stack_usage

    out = Path(out)
    cc = _compiler_for(target)
    src = runtime_source_dir() / "tilecc_baremetal.c"
    with tempfile.TemporaryDirectory(prefix="tilecc-bm-") as tmp:
        rt = Path(tmp) / "tilecc_baremetal.o"
        _run([cc, *_BARE_CFLAGS, *getattr(target, "cflags", ()), "-fstack-usage", "-c",
              str(src), "-o", str(rt)], "compiling the bare-metal runtime")
        if stack_usage is not None:
            stack_usage.update(gcc_stack_usage(rt.with_suffix(".su")))
        _run([cc, "-r", "-nostdlib", "-o", str(out), *map(str, objects), str(rt)],
             "combining the bare-metal object")
    undefined = undefined_symbols(out.read_bytes())
    if undefined:
        raise LinkError(f"bare-metal object {out.name} still needs {', '.join(undefined)}; "
                        "a kernel uses a function without a freestanding implementation")
    return out


# ---- ELF reading (section sizes, undefined symbols) without target binutils

T = TypeVar("T")


def _read_elf(read: Callable[[bytes], T], data: bytes) -> T:
    # A malformed object is a failed link to the user, not an ELF-reader bug.
    try:
        return read(data)
    except elf.ElfError as e:
        raise LinkError(f"reading the linked object: {e}") from None


def _elf_sections(data: bytes) -> list[dict]:
    return _read_elf(elf.sections, data)


def section_sizes(data: bytes) -> dict[str, int]:
    """Bytes per kind of allocated section of an ELF object: text, rodata, data, bss."""
    out = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    for s in _elf_sections(data):
        if not s["flags"] & 0x2:  # SHF_ALLOC
            continue
        n = s["name"]
        if n.startswith(".text"):
            out["text"] += s["size"]
        elif n.startswith((".rodata", ".srodata")):
            out["rodata"] += s["size"]
        elif n.startswith((".bss", ".sbss", ".tbss")):
            out["bss"] += s["size"]
        else:
            out["data"] += s["size"]
    return out


def undefined_symbols(data: bytes) -> list[str]:
    """Names of undefined global symbols in an ELF relocatable object."""
    return _read_elf(elf.undefined_symbols, data)

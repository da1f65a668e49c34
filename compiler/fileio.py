"""Files tilecc writes: atomic replacement under unique temp names, private temp directories
that do not outlive the process, and the persistent cache directory.

Every writer of a shared path goes through `atomic_output`: a fixed temp name (`path.tmp`,
`path.tmp<pid>`) is shared by concurrent writers of one path (threads of one process, or two
processes), so one writer's rename could publish another's half-written file.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CACHE_ENV = "TILECC_CACHE_DIR"
_PRIVATE_DIRS: list[str] = []


@contextmanager
def atomic_output(path: str | os.PathLike, fsync: bool = False) -> Iterator[Path]:
    """A unique temp path next to `path` to write; renamed over `path` when the block ends,
    removed if it raises (also on KeyboardInterrupt). Readers see the old file or the new
    one, never part of one."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                dir=path.parent if str(path.parent) else ".")
    tmp = Path(name)
    try:
        # mkstemp makes the file 0600; the result should get the mode a plain open() would.
        os.fchmod(fd, 0o666 & ~_umask())
        os.close(fd)
        yield tmp
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process umask, read without os.umask(), which would change it for other threads."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def atomic_write(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (atomic_output)."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def private_temp_dir(prefix: str) -> Path:
    """A fresh temp directory removed when the process exits (normally, by an exception or
    Ctrl-C; a SIGKILL cannot be cleaned up after). For files that must stay while the
    process runs, e.g. a loaded shared library."""
    d = tempfile.mkdtemp(prefix=prefix)
    if not _PRIVATE_DIRS:
        atexit.register(_remove_private_dirs)
    _PRIVATE_DIRS.append(d)
    return Path(d)


def _remove_private_dirs() -> None:
    while _PRIVATE_DIRS:
        shutil.rmtree(_PRIVATE_DIRS.pop(), ignore_errors=True)


def cache_dir(kind: str) -> Path:
    """$TILECC_CACHE_DIR/<kind> (default ~/.cache/tilecc/<kind>): builds worth keeping
    across processes, outside the temp directory that must be left as found."""
    base = os.environ.get(CACHE_ENV)
    return (Path(base) if base else Path.home() / ".cache" / "tilecc") / kind

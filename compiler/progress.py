"""Progress bars and verbosity for long work (compiling many kernels, tuning, calibration).

    from tilecc import progress
    with progress.task("compiling kernels", total=len(nodes)) as bar:
        for node in nodes:
            ...
            bar.update(1, detail=node.name)

Bars draw on stderr only when it is a terminal and the verbosity is at least NORMAL, so logs,
CI output and pipes stay clean. `set_verbosity` is called by the CLI's -q/-v flags; library
users get NORMAL. Messages for -v go through the standard `logging` logger "tilecc".
"""

from __future__ import annotations

import logging
import sys
import time

QUIET, NORMAL, VERBOSE, DEBUG = 0, 1, 2, 3
_state = {"verbosity": NORMAL}
log = logging.getLogger("tilecc")


def set_verbosity(level: int) -> None:
    """QUIET: errors only; NORMAL: results and bars; VERBOSE/DEBUG: also `tilecc` log lines."""
    _state["verbosity"] = level
    if level >= VERBOSE and not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("tilecc: %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.DEBUG if level >= DEBUG else
                 logging.INFO if level >= VERBOSE else logging.WARNING)


def verbosity() -> int:
    return _state["verbosity"]


class Task:
    """One bar. Redraws at most every 0.1 s; prints nothing when disabled."""

    WIDTH = 24

    def __init__(self, desc: str, total: int | None, stream=None, enabled: bool | None = None):
        self.desc, self.total, self.done = desc, total, 0
        self.stream = stream or sys.stderr
        if enabled is None:
            enabled = verbosity() >= NORMAL and getattr(self.stream, "isatty", lambda: False)()
        self.enabled = enabled
        self._start = time.monotonic()
        self._drawn = 0.0
        self._detail = ""

    def update(self, n: int = 1, detail: str = "") -> None:
        self.done += n
        self._detail = detail
        log.debug("%s: %d/%s %s", self.desc, self.done, self.total or "?", detail)
        now = time.monotonic()
        if self.enabled and (now - self._drawn >= 0.1 or self.done == self.total):
            self._drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = now - self._start
        if self.total:
            filled = int(self.WIDTH * min(self.done / self.total, 1.0))
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            line = f"{self.desc} [{bar}] {self.done}/{self.total} {elapsed:.1f}s"
        else:
            line = f"{self.desc} {self.done} {elapsed:.1f}s"
        if self._detail:
            line += f" {self._detail[:30]}"
        self.stream.write("\r" + line[:100].ljust(100))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()
        log.info("%s: %d done in %.2fs", self.desc, self.done, time.monotonic() - self._start)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def task(desc: str, total: int | None = None) -> Task:
    """A progress bar for `total` steps (None: a counter). Use as a context manager."""
    return Task(desc, total)

"""Progress bars draw only on a terminal and never with -q."""

from __future__ import annotations

import io

from tilecc import progress
from tilecc.cli import main


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_draws_on_a_tty_and_clears():
    out = _Tty()
    with progress.Task("compiling kernels", total=4, stream=out) as bar:
        for _ in range(4):
            bar.update(1, "k")
    text = out.getvalue()
    assert "compiling kernels [" in text and "4/4" in text
    assert text.endswith("\r")  # the line is cleared when done


def test_quiet_when_not_a_tty_or_with_q(capsys):
    pipe = io.StringIO()
    with progress.Task("x", total=2, stream=pipe) as bar:
        bar.update(2)
    assert pipe.getvalue() == ""
    try:
        progress.set_verbosity(progress.QUIET)
        tty = _Tty()
        with progress.Task("x", total=2, stream=tty) as bar:
            bar.update(2)
        assert tty.getvalue() == ""
    finally:
        progress.set_verbosity(progress.NORMAL)


def test_cli_flags_set_verbosity():
    try:
        main(["-q", "targets"])
        assert progress.verbosity() == progress.QUIET
        main(["targets", "-vv"])
        assert progress.verbosity() == progress.DEBUG
    finally:
        progress.set_verbosity(progress.NORMAL)

"""Cross-target tests need cross gcc, binutils and qemu-user. CI installs them (.ci/run), so
a missing tool fails there; locally the test skips, naming the tool."""

from __future__ import annotations

import os
import shutil

import pytest


def need_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if not missing:
        return
    msg = f"missing tools: {', '.join(missing)} (apt-get install qemu-user gcc-<triple>)"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


def need_target_tools(target_name: str) -> None:
    """need_tools for a cross preset: its linker and its qemu-user binary."""
    from tilecc.targets import get_target

    t = get_target(target_name)
    need_tools(t.linker, t.qemu[0])

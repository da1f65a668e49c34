"""SSHRunner argument handling against fake `ssh`/`scp` scripts that log their arguments and
run locally. This checks the commands the runner issues and its reply parsing, not a real
board (no board is available here)."""

from __future__ import annotations

import os
import sys

from tilecc.autotune.measure import Builder, MeasureOptions
from tilecc.autotune.record import ErrorKind
from tilecc.autotune.remote import SSHRunner
from tilecc.autotune.task import extract_tasks

from .conftest import conv_model


def _fake(tmp_path):
    calls = tmp_path / "calls.txt"
    ssh = tmp_path / "ssh"
    ssh.write_text(f"""#!/bin/sh
echo "ssh $*" >> {calls}
host="$1"; shift
export PYTHONPATH={os.pathsep.join(sys.path)}
exec sh -c "$*"
""")
    scp = tmp_path / "scp"
    scp.write_text(f"""#!/bin/sh
echo "scp $*" >> {calls}
[ "$1" = "-q" ] && shift
src="${{1#board:}}"; dst="${{2#board:}}"
exec cp "$src" "$dst"
""")
    ssh.chmod(0o755)
    scp.chmod(0o755)
    return str(ssh), str(scp), calls


def test_ssh_runner_commands(tmp_path, target):
    ssh, scp, calls = _fake(tmp_path)
    (task,) = extract_tasks(conv_model(), target)
    opts = MeasureOptions(parallel=1, repeat=2, min_repeat_ms=1, timeout=60)
    b = Builder(target, opts)
    try:
        builds = b.build(task, [{}, task.space.get(3), {"oc_block": "bad"}], str(tmp_path))
    finally:
        b.close()
    rdir = tmp_path / "remote"
    rdir.mkdir()
    runner = SSHRunner("board", target, opts, remote_dir=str(rdir), ssh=ssh, scp=scp,
                       python=sys.executable)
    ref = str(tmp_path / "ref.npz")
    (r0,) = runner.run(builds[:1], 0, ref, "save")
    assert r0.ok and os.path.exists(ref)
    r1, r2 = runner.run(builds[1:], 0, ref)
    assert r1.ok and r2.error == ErrorKind.BUILD_ERROR
    log = calls.read_text().splitlines()
    assert log[0].startswith("scp -q ") and f"board:{rdir}/tilecc-" in log[0]
    assert log[1].startswith("ssh board ") and "-m tilecc.autotune.worker" in log[1]
    assert any(ln.startswith("scp -q board:") and ln.endswith(ref) for ln in log)
    assert not list(rdir.glob("*.so"))  # candidates removed on the board

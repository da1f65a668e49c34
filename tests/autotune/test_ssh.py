"""SSHRunner end to end against fake `ssh`/`scp` scripts that log their arguments and run
locally: the real C kernel runner is uploaded, run and read back, for the host target and for
aarch64 (the runner cross-built by aarch64-linux-gnu-gcc, run on the "board" under
qemu-aarch64 through SSHRunner's `prefix`). No board is available here, so what this checks
is the plumbing: commands, uploads, parsing, outputs compared on the host, error kinds,
cleanup. Timings under qemu mean nothing beyond being positive."""

from __future__ import annotations

import subprocess

import pytest

from tests.targets.crosstools import need_tools
from tilecc.autotune.measure import Builder, BuildResult, LocalRunner, MeasureOptions
from tilecc.autotune.record import ErrorKind
from tilecc.autotune.remote import RemoteError, SSHRunner
from tilecc.autotune.task import extract_tasks
from tilecc.targets import get_target

from .conftest import conv_model
from .test_measure import _C

ARGS64 = [[[64], "float32", "in"], [[64], "float32", "out"]]


def _fake(tmp_path):
    calls = tmp_path / "calls.txt"
    ssh = tmp_path / "ssh"
    ssh.write_text(f"""#!/bin/sh
echo "ssh $*" >> {calls}
shift
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


def _hand_written(tmp_path, cc: str) -> str:
    """The test_measure candidates (good, wrong, segv, hang, fails) built for the board."""
    (tmp_path / "c.c").write_text(_C)
    lib = tmp_path / "hand.so"
    subprocess.run([cc, "-O1", "-shared", "-fPIC", "-o", str(lib), str(tmp_path / "c.c")],
                   check=True)
    return str(lib)


def _check_runner(tmp_path, target, opts, prefix, save_locally: bool):
    ssh, scp, calls = _fake(tmp_path)
    (task,) = extract_tasks(conv_model(), target)
    b = Builder(target, MeasureOptions(parallel=2))
    try:
        builds = b.build(task, [{}, task.space.get(3), {"oc_block": "bad"}], str(tmp_path))
    finally:
        b.close()
    rdir = tmp_path / "remote"
    rdir.mkdir()
    runner = SSHRunner("board", target, opts, remote_dir=str(rdir), ssh=ssh, scp=scp,
                       prefix=prefix)
    ref = str(tmp_path / "ref.npz")
    try:
        if save_locally:
            # The Python worker saves the reference, the C runner on the board must match it:
            # both draw the inputs from the same seeded generator.
            local = LocalRunner(target, opts)
            try:
                (r0,) = local.run(builds[:1], 0, ref, "save")
            finally:
                local.close()
            assert r0.ok
        else:
            (r0,) = runner.run(builds[:1], 0, ref, "save")
            assert r0.ok and all(c > 0 for c in r0.costs)
        r1, r2 = runner.run(builds[1:], 0, ref)
        assert r1.ok and len(r1.costs) == opts.repeat and all(c > 0 for c in r1.costs)
        assert r2.error == ErrorKind.BUILD_ERROR
        # Inputs drawn with another seed give other outputs: the host comparison catches it.
        (r3,) = runner.run(builds[1:2], 1, ref)
        assert r3.error == ErrorKind.WRONG_ANSWER

        hand = _hand_written(tmp_path, target.linker)
        good, wrong, segv, fails = (BuildResult(hand, s, ARGS64)
                                    for s in ("good", "wrong", "segv", "fails"))
        ref64 = str(tmp_path / "ref64.npz")
        (g,) = runner.run([good], 0, ref64, "save")
        assert g.ok
        w, s, f = runner.run([wrong, segv, fails], 0, ref64)
        assert w.error == ErrorKind.WRONG_ANSWER
        assert s.error == ErrorKind.CRASH and "SIGSEGV" in s.msg
        assert f.error == ErrorKind.RUNTIME_ERROR and "kernel returned 3" in f.msg
        session = list(rdir.iterdir())
        assert len(session) == 1 and not list(session[0].glob("*.so"))  # candidates removed
    finally:
        runner.close()
    assert not list(rdir.iterdir())  # the session directory is gone
    log = calls.read_text().splitlines()
    assert log[0].startswith("ssh board mkdir -p ")
    assert log[1].startswith("scp -q ") and log[1].endswith("/tilecc_kernel_runner")
    runs = [ln for ln in log if "./tilecc_kernel_runner" in ln]
    assert len(runs) == 7 - save_locally and "python" not in calls.read_text()
    # Input files go up once per (argument spec, seed), not once per candidate.
    assert sum(ln.startswith("scp -q ") and "/in-" in ln for ln in log) == 3 + 3 + 1
    return runs


def test_ssh_runner_host(tmp_path, target):
    opts = MeasureOptions(repeat=2, min_repeat_ms=1, timeout=60)
    runs = _check_runner(tmp_path, target, opts, [], save_locally=True)
    assert all(f" -r 2 -m 1.0 -f {opts.flush_bytes} " in r for r in runs[:2])


def test_ssh_runner_aarch64_under_qemu(tmp_path):
    t = get_target("aarch64")
    need_tools(t.linker, t.qemu[0])
    opts = MeasureOptions(repeat=2, min_repeat_ms=0, flush_bytes=1 << 16, timeout=60)
    runs = _check_runner(tmp_path, t, opts, t.emulator(), save_locally=False)
    assert all("qemu-aarch64 -L /usr/aarch64-linux-gnu ./tilecc_kernel_runner" in r
               for r in runs)


def test_ssh_runner_hang_and_unreachable(tmp_path, target):
    ssh, scp, _ = _fake(tmp_path)
    hand = _hand_written(tmp_path, "cc")
    opts = MeasureOptions(repeat=1, min_repeat_ms=0, flush_bytes=0, timeout=2)
    runner = SSHRunner("board", target, opts, remote_dir=str(tmp_path), ssh=ssh, scp=scp)
    try:
        (h,) = runner.run([BuildResult(hand, "hang", ARGS64)], 0, "", "check")
        assert h.error == ErrorKind.TIMEOUT
    finally:
        runner.close()
    # A board that does not answer stops the session: the failure is not the candidate's.
    dead = tmp_path / "dead-ssh"
    dead.write_text("#!/bin/sh\necho 'ssh: connect to host board: No route' >&2\nexit 255\n")
    dead.chmod(0o755)
    runner = SSHRunner("board", target, opts, remote_dir=str(tmp_path), ssh=str(dead),
                       scp=scp)
    with pytest.raises(RemoteError, match="No route"):
        runner.run([BuildResult(hand, "good", ARGS64)], 0, "", "check")
    runner.close()

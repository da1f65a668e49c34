"""Cross-target candidates checked under qemu-user (EmulatedRunner): correct ones pass
without a cost, wrong, crashing, hanging and failing ones get their error kinds; the tuner
and the log never take an untimed result for a latency.

Needs the cross gcc and qemu-user: skipped locally without them, a failure under CI=1
(tests/targets/crosstools.py)."""

from __future__ import annotations

import subprocess
import sys

import onnx
import pytest

from tests.targets.crosstools import need_tools
from tilecc.autotune.emulated import EmulatedRunner
from tilecc.autotune.measure import Builder, BuildResult, LocalRunner, MeasureOptions
from tilecc.autotune.provider import TuningLogConfigs
from tilecc.autotune.record import ErrorKind, Record, append_records, best_records, read_records
from tilecc.autotune.task import extract_tasks
from tilecc.autotune.tune import TuneOptions, make_runner, tune_tasks
from tilecc.errors import InputError
from tilecc.targets import get_target
from tilecc.targets.target import Target

from .conftest import conv_model
from .test_measure import _C

ARGS64 = [[[64], "float32", "in"], [[64], "float32", "out"]]
OPTS = MeasureOptions(parallel=2, timeout=20)


def _cross(name: str) -> Target:
    t = get_target(name)
    need_tools(t.linker, t.qemu[0])
    return t


@pytest.mark.parametrize("name", ["aarch64", "cortex-a7", "riscv64"])
def test_conv_candidates_checked_not_timed(tmp_path, name):
    t = _cross(name)
    (task,) = extract_tasks(conv_model(), t)
    b = Builder(t, OPTS)
    try:
        builds = b.build(task, [{}, task.space.get(3), {"oc_block": "bad"}], str(tmp_path))
    finally:
        b.close()
    runner = EmulatedRunner(t, OPTS)
    ref = tmp_path / "ref.npz"
    try:
        (d,) = runner.run(builds[:1], 0, str(ref), "save")
        assert ref.is_file() and d.error == ErrorKind.UNTIMED and d.passed
        good, bad = runner.run(builds[1:], 0, str(ref))
        assert good.error == ErrorKind.UNTIMED and good.passed
        assert not good.ok and good.costs == [] and good.cost == float("inf")
        assert bad.error == ErrorKind.BUILD_ERROR
        # Other inputs, other outputs: the comparison is real.
        (other,) = runner.run(builds[1:2], 1, str(ref))
        assert other.error == ErrorKind.WRONG_ANSWER
    finally:
        runner.close()


def test_bad_candidates_under_qemu(tmp_path):
    t = _cross("aarch64")
    (tmp_path / "c.c").write_text(_C)
    lib = str(tmp_path / "c.so")
    subprocess.run([t.linker, "-O1", "-shared", "-fPIC", "-o", lib, str(tmp_path / "c.c")],
                   check=True)
    runner = EmulatedRunner(t, MeasureOptions(timeout=3))
    ref = str(tmp_path / "ref.npz")
    try:
        (g,) = runner.run([BuildResult(lib, "good", ARGS64)], 0, ref, "save")
        assert g.passed
        w, s, h, f, m = runner.run([BuildResult(lib, k, ARGS64)
                                    for k in ("wrong", "segv", "hang", "fails", "missing")],
                                   0, ref)
        assert w.error == ErrorKind.WRONG_ANSWER
        assert s.error == ErrorKind.CRASH and "SIGSEGV" in s.msg
        assert h.error == ErrorKind.TIMEOUT
        assert f.error == ErrorKind.RUNTIME_ERROR and "kernel returned 3" in f.msg
        assert m.error == ErrorKind.RUNTIME_ERROR and "no entry missing" in m.msg
        (g2,) = runner.run([BuildResult(lib, "good", ARGS64)], 0, ref)
        assert g2.passed  # the runner survives all of the above
    finally:
        runner.close()


def test_emulated_tuning_resumes_and_never_picks(tmp_path):
    t = _cross("aarch64")
    (task,) = extract_tasks(conv_model(), t)
    log = tmp_path / "t.jsonl"
    opts = TuneOptions(trials=5, tuner="grid", batch=2, early_stopping=1, measure=OPTS)
    msgs: list[str] = []
    (st,) = tune_tasks([task], t, log, opts, runner=EmulatedRunner(t, OPTS),
                       progress=msgs.append)
    recs = list(read_records(log))
    # early_stopping=1 would stop a timed task after one batch: with no costs there is no
    # "improvement", so the emulated session checks until its trials run out.
    assert len(recs) == 5 and st.trials == 5
    assert all(r.error == ErrorKind.UNTIMED and r.costs == () for r in recs)
    assert sum(r.config == {} for r in recs) == 1
    assert not any("speedup" in m or " us " in m for m in msgs)
    tune_tasks([task], t, log, TuneOptions(trials=3, tuner="grid", batch=3, measure=OPTS),
               runner=EmulatedRunner(t, OPTS), progress=lambda m: None)
    recs = list(read_records(log))
    keys = [r.config_key for r in recs]
    assert len(recs) == 8 and len(keys) == len(set(keys))  # nothing re-checked
    assert best_records(recs) == {}  # an untimed record is never a best
    cfg, source = TuningLogConfigs([log], use_default_logs=False).lookup(
        task.workload, task.template, task.template_version, t, task.space.knobs)
    assert (cfg, source) == (None, "default")


def test_timed_session_times_configs_only_checked(tmp_path, target):
    """Configs an emulated session only checked are timed by a later timed session; once
    timed, the timed record is the best, never the untimed one."""
    (task,) = extract_tasks(conv_model(), target)
    log = tmp_path / "t.jsonl"
    checked = [task.space.get(k) for k in range(3)]
    append_records(log, [Record(target.key, task.workload, task.template,
                                task.template_version, c, (), ErrorKind.UNTIMED)
                         for c in [{}] + checked])
    quiet = MeasureOptions(parallel=1, repeat=2, min_repeat_ms=1, flush_bytes=0)
    tune_tasks([task], target, log, TuneOptions(trials=4, tuner="grid", batch=3,
                                                measure=quiet),
               runner=LocalRunner(target, quiet), progress=lambda m: None)
    recs = list(read_records(log))
    timed = [r for r in recs if r.ok]
    assert {r.config_key for r in timed} == {r.config_key for r in recs}  # all four timed
    best = best_records(recs)[(target.key, task.workload)]
    assert best.ok and best.costs


def test_make_runner_choice():
    t = _cross("aarch64")
    said: list[str] = []
    r = make_runner(t, OPTS, progress=said.append)
    try:
        assert isinstance(r, EmulatedRunner) and "correctness only" in said[0]
    finally:
        r.close()
    with pytest.raises(InputError, match="does not run on this machine"):
        make_runner(t, OPTS, "local")
    gone = Target.from_dict({**t.to_dict(), "qemu": ["qemu-aarch64-not-installed"]})
    with pytest.raises(InputError, match="not installed.*--runner ssh --host"):
        make_runner(gone, OPTS)
    with pytest.raises(InputError, match="needs --host"):
        make_runner(t, OPTS, "ssh")
    with pytest.raises(InputError, match="does not take --cluster"):
        make_runner(t, OPTS, "emulated", cluster="tcp://h:8786")


def test_cli_tune_emulated(tmp_path):
    t = _cross("aarch64")
    model = tmp_path / "conv.onnx"
    onnx.save(conv_model(), model)
    log = tmp_path / "tune.jsonl"
    base = [sys.executable, "-m", "tilecc.cli", "tune", str(model), "-t", t.name, "--log",
            str(log), "--trials", "4", "--tuner", "random", "--batch", "2", "--parallel", "2"]
    r = subprocess.run([*base, "--runner", "emulated"], check=False, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "configs checked under emulation" in r.stdout and "over default" not in r.stdout
    assert "speedup" not in r.stderr and "not timed" in r.stderr
    recs = list(read_records(log))
    assert len(recs) == 4 and all(x.error == ErrorKind.UNTIMED for x in recs)
    # Without --runner a cross target falls back to the emulator, and says so.
    r = subprocess.run(base, check=False, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "does not run here" in r.stderr
    assert len(list(read_records(log))) == 8
    show = subprocess.run([sys.executable, "-m", "tilecc.cli", "logs", "show", str(log)],
                          check=True, capture_output=True, text=True)
    assert "0 workloads, 8 checked but not timed" in show.stdout
    bad = subprocess.run([*base, "--runner", "local"], check=False, capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "does not run on this machine" in bad.stderr

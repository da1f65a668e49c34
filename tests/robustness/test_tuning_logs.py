"""Tuning logs: a record that cannot apply (invalid knob value, malformed workload, another
template version) is skipped with a `file:line` warning; compile never fails on one, and
`tilecc logs merge/best` drop invalid records instead of passing them on."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import onnx
import pytest

from tilecc.autotune.record import Record, append_records, read_records
from tilecc.autotune.task import extract_tasks
from tilecc.targets import get_target

sys.path.insert(0, str(Path(__file__).parent))
from cases import conv_model

TILECC = str(Path(sys.executable).with_name("tilecc"))


@pytest.fixture(scope="module")
def task():
    tasks = extract_tasks(conv_model(), get_target("host"))
    assert tasks, "the conv has a tunable kernel"
    return tasks[0]


def _record(task, config, template_version: int | None = None) -> Record:
    version = task.template_version if template_version is None else template_version
    return Record(get_target("host").key, task.workload, task.template, version, config,
                  (1e-6,))


def _compile(tmp_path: Path, log: Path) -> tuple[subprocess.CompletedProcess, dict]:
    model, out = tmp_path / "m.onnx", tmp_path / "m.tar"
    onnx.save(conv_model(), model)
    proc = subprocess.run([TILECC, "compile", str(model), "-o", str(out), "--tuning-log",
                           str(log), "--no-default-logs"], capture_output=True, text=True,
                          timeout=300, check=False)
    if proc.returncode:
        return proc, {}
    with tarfile.open(out) as t:
        return proc, json.loads(t.extractfile("model.json").read())


def _bad_knob(task) -> dict:
    knob = task.space.names[0]
    return {knob: max(v for v in task.space.knobs[knob] if isinstance(v, int)) * 1000 + 7}


def test_invalid_knob_value_skipped(task, tmp_path):
    log = tmp_path / "t.jsonl"
    append_records(log, [_record(task, _bad_knob(task))])
    proc, meta = _compile(tmp_path, log)
    assert proc.returncode == 0, proc.stderr
    assert f"{log}:1: skipping tuning record (knob values" in proc.stderr
    assert "are not in this workload's space" in proc.stderr
    assert meta["kernels"][0]["config_source"] == "default"


def test_other_template_version_skipped(task, tmp_path):
    log = tmp_path / "t.jsonl"
    good = task.space.get(0)
    append_records(log, [_record(task, good, template_version=task.template_version + 1)])
    proc, meta = _compile(tmp_path, log)
    assert proc.returncode == 0, proc.stderr
    assert (f"{log}:1: skipping tuning record (made for {task.template} "
            f"v{task.template_version + 1}, this compiler has {task.template} "
            f"v{task.template_version})") in proc.stderr
    assert meta["kernels"][0]["config_source"] == "default"


def test_valid_record_still_used(task, tmp_path):
    log = tmp_path / "t.jsonl"
    append_records(log, [_record(task, task.space.get(0))])
    proc, meta = _compile(tmp_path, log)
    assert proc.returncode == 0, proc.stderr
    assert meta["kernels"][0]["config_source"] == "log"


def _bad_lines(task) -> list[str]:
    good = json.loads(_record(task, task.space.get(0)).to_json())
    return [json.dumps({**good, "workload": "{not json"}),          # line 2
            json.dumps({**good, "config": {"tile": [1, 2]}}),        # line 3
            json.dumps({**good, "costs": [float("nan")]}),           # line 4
            json.dumps({**good, "template_version": "1"}),           # line 5
            json.dumps({**good, "costs": [-1.0]})]                   # line 6


def test_malformed_records_do_not_fail_compile(task, tmp_path):
    log = tmp_path / "t.jsonl"
    good = _record(task, task.space.get(0))
    log.write_text(good.to_json() + "\n" + "\n".join(_bad_lines(task)[1:]) + "\n"
                   + json.dumps({**json.loads(good.to_json()), "workload": "{not json"})
                   + "\n")
    proc, meta = _compile(tmp_path, log)
    assert proc.returncode == 0, proc.stderr
    for line in (2, 3, 4, 5, 6):
        assert f"{log}:{line}: skipping" in proc.stderr, line
    assert meta["kernels"][0]["config_source"] == "log"


@pytest.mark.parametrize("cmd", ["merge", "best"])
def test_logs_merge_and_best_drop_invalid_records(task, tmp_path, cmd):
    log, out = tmp_path / "t.jsonl", tmp_path / "o.jsonl"
    good = _record(task, task.space.get(0))
    lines = [good.to_json(), *_bad_lines(task)[1:]]
    log.write_text("\n".join(lines) + "\n")
    proc = subprocess.run([TILECC, "logs", cmd, str(log), "-o", str(out)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    for line in (2, 3, 4, 5):
        assert f"{log}:{line}: skipping invalid tuning-log record" in proc.stderr, line
    assert list(read_records(out)) == [good]

"""Temp files: atomic writes under unique names (concurrent savers of one path never publish
each other's half-written file), nothing left behind by a failed save, and no tilecc-*
directory left in the temp dir after compile, run or tune (success or Ctrl-C)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

from tilecc.autotune.record import read_records
from tilecc.errors import ArtifactError
from tilecc.runtime.artifact import Artifact, read_artifact

sys.path.insert(0, str(Path(__file__).parent))
from cases import conv_model

TILECC = str(Path(sys.executable).with_name("tilecc"))


def _artifact(seed: int) -> Artifact:
    params = np.full(1 << 18, seed, np.float32).tobytes()  # 1 MiB: a wide window for races
    return Artifact.create(name="m", target="host", inputs=[], outputs=[], params=params,
                           workspace_size=0)


def test_concurrent_saves_to_one_path(tmp_path):
    path = tmp_path / "m.tar"
    arts = [_artifact(k) for k in range(4)]
    arts[0].save(path)
    errors: list[BaseException] = []
    bad_reads: list[str] = []
    stop = threading.Event()

    def writer(art: Artifact) -> None:
        try:
            for _ in range(15):
                art.save(path)
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    def reader() -> None:
        while not stop.is_set():
            try:
                got = read_artifact(path)
            except ArtifactError as e:
                bad_reads.append(str(e))
                continue
            blob = np.frombuffer(got.files["params.bin"], np.float32)
            if not (blob == blob[0]).all():
                bad_reads.append("params.bin mixes two saves")

    threads = [threading.Thread(target=writer, args=(a,)) for a in arts]
    r = threading.Thread(target=reader)
    r.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    r.join()
    assert not errors, errors[0]
    assert not bad_reads, bad_reads[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tar"]


def test_failed_save_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "m.tar"
    _artifact(1).save(path)
    before = path.read_bytes()

    def broken_addfile(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tarfile.TarFile, "addfile", broken_addfile)
    with pytest.raises(OSError, match="disk full"):
        _artifact(2).save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tar"]
    assert path.read_bytes() == before


@pytest.fixture
def env(tmp_path) -> dict:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return {**os.environ, "TMPDIR": str(tmp), "TILECC_CACHE_DIR": str(tmp_path / "cache")}


def _left(env: dict) -> list[str]:
    return sorted(os.listdir(env["TMPDIR"]))


def test_compile_and_run_leave_no_temp_dirs(tmp_path, env):
    model = tmp_path / "conv.onnx"
    onnx.save(conv_model(), model)
    out = tmp_path / "m.tar"
    for cmd in (["compile", str(model), "-o", str(out)], ["run", str(out)]):
        proc = subprocess.run([TILECC, *cmd], env=env, capture_output=True, text=True,
                              timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr
        assert _left(env) == [], cmd[0]


def _tune(tmp_path: Path, log: Path, trials: int) -> list[str]:
    sys.path.insert(0, str(Path(__file__).parents[2]))
    from tests.autotune.conftest import TARGET
    from tests.autotune.conftest import conv_model as tune_model

    model = tmp_path / "tune.onnx"
    onnx.save(tune_model(), model)
    return [TILECC, "tune", str(model), "-t", TARGET, "--log", str(log), "--trials",
            str(trials), "--tuner", "random", "--batch", "2", "--parallel", "1",
            "--min-repeat-ms", "2", "--repeat", "2"]


def test_tune_leaves_no_temp_dirs(tmp_path, env):
    log = tmp_path / "t.jsonl"
    proc = subprocess.run(_tune(tmp_path, log, 3), env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert _left(env) == []


def test_interrupted_tune_leaves_no_temp_dirs(tmp_path, env):
    log = tmp_path / "t.jsonl"
    p = subprocess.Popen(_tune(tmp_path, log, 200), env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and p.poll() is None:
        if log.exists() and len(list(read_records(log))) >= 3:
            break
        time.sleep(0.2)
    assert p.poll() is None, "the tuning session ended before it could be interrupted"
    os.killpg(p.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
    assert p.wait(timeout=120) == 130
    assert _left(env) == []

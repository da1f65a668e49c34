"""TILECC_NUM_THREADS: not a positive integer is a clear error from the Python runtime and a
warning (then the default) from the C runtime; huge values are capped at THREADS_PER_CORE per
available core in both, instead of starting 256 spinning threads. Explicit counts stay
allowed up to 256 (deliberate oversubscription), with a warning above."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import helper, numpy_helper

import tilecc
from tilecc.errors import InputError
from tilecc.runtime.artifact import extract_artifact
from tilecc.runtime.cpu import THREADS_PER_CORE, available_cores, thread_cap

sys.path.insert(0, str(Path(__file__).parent))
from cases import conv_model, model, vi

TILECC = str(Path(sys.executable).with_name("tilecc"))


@pytest.fixture(scope="module")
def tar(tmp_path_factory) -> Path:
    return tilecc.compile(conv_model()).save(tmp_path_factory.mktemp("threads") / "m.tar")


def test_cap_is_stated():
    assert thread_cap() == min(256, THREADS_PER_CORE * available_cores())


@pytest.mark.parametrize("value", ["abc", "0", "-3", "2.5"])
def test_python_runtime_refuses_invalid_env(tar, monkeypatch, value):
    monkeypatch.setenv("TILECC_NUM_THREADS", value)
    with pytest.raises(InputError, match=f"TILECC_NUM_THREADS='{value}' is not a positive "
                                         "integer"):
        tilecc.load(tar)


def test_cli_exit_code_for_invalid_env(tar):
    proc = subprocess.run([TILECC, "run", str(tar)], capture_output=True, text=True,
                          env={**os.environ, "TILECC_NUM_THREADS": "abc"}, timeout=120,
                          check=False)
    assert proc.returncode == 2, proc.stderr
    assert "TILECC_NUM_THREADS='abc' is not a positive integer" in proc.stderr


def test_python_runtime_caps_huge_counts(tar, monkeypatch):
    monkeypatch.setenv("TILECC_NUM_THREADS", "99999")
    with pytest.warns(UserWarning, match="TILECC_NUM_THREADS=99999 is above the cap"):
        m = tilecc.load(tar)
    assert m.get_num_threads() == thread_cap()
    monkeypatch.delenv("TILECC_NUM_THREADS")
    m = tilecc.load(tar)
    # An explicit count may oversubscribe on purpose, up to what the C runtime keeps.
    with pytest.warns(UserWarning, match="num_threads=99999 is above the cap; using 256"):
        m.set_num_threads(99999)
    assert m.get_num_threads() == 256
    out = m.run({"x": np.ones((1, 1, 4, 4), np.float32)})["y"]
    assert out.shape == (1, 2, 4, 4)


def _parallel_model():
    """A conv big enough to be split across threads (so the runtime reads the variable)."""
    w = numpy_helper.from_array(np.ones((32, 16, 3, 3), np.float32), "w")
    return model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])],
                 [vi("x", [1, 16, 64, 64])], [vi("y", None)], [w])


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    from tilecc.runtime.crunner import build_c_runner

    tmp = tmp_path_factory.mktemp("runner")
    d = extract_artifact(tilecc.compile(_parallel_model()).save(tmp / "m.tar"), tmp / "x")
    return build_c_runner(d, d / "runner"), d


@pytest.mark.parametrize("value,message", [
    ("abc", "TILECC_NUM_THREADS=abc is not a positive integer; using {cores} thread(s)"),
    ("99999", "TILECC_NUM_THREADS=99999 is above the cap; using {cap} threads"),
])
def test_c_runtime_warns_and_caps(runner, tmp_path, value, message):
    exe, d = runner
    (tmp_path / "in.bin").write_bytes(np.ones(16 * 64 * 64, np.float32).tobytes())
    proc = subprocess.run([str(exe), str(d / "params.bin"), str(tmp_path / "in.bin"),
                           str(tmp_path / "out.bin")], capture_output=True, text=True,
                          env={**os.environ, "TILECC_NUM_THREADS": value}, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert message.format(cores=available_cores(), cap=thread_cap()) in proc.stderr

"""The `tilecc` CLI over the toy artifact (no compiler needed): run, inspect, targets, errors."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tilecc.cli import main

_spec = importlib.util.spec_from_file_location(
    "toy_artifact", Path(__file__).parent / "runtime" / "toy_artifact.py")
toy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toy)


@pytest.fixture(scope="module")
def toy_tar(tmp_path_factory):
    if not toy.have_cc():
        pytest.skip("no C compiler `cc` (install build-essential)")
    return toy.build_toy(tmp_path_factory.mktemp("cli"))


def test_run_with_npz(toy_tar, tmp_path, capsys):
    inputs = toy.random_inputs(3, k=2)
    np.savez(tmp_path / "in.npz", **inputs)
    rc = main(["run", str(toy_tar), "-i", str(tmp_path / "in.npz"), "-o",
               str(tmp_path / "out.npz"), "--threads", "2"])
    assert rc == 0
    with np.load(tmp_path / "out.npz") as out:
        np.testing.assert_allclose(out["y"], toy.reference(inputs["x"], 2), rtol=1e-6)
        assert out["info"].tolist() == [2, 1]
    printed = capsys.readouterr().out
    assert "y: shape=[3, 13] dtype=float32 min=" in printed and "mean=" in printed


def test_run_random_inputs(toy_tar, capsys):
    assert main(["run", str(toy_tar), "--threads", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["y", "counts", "info"]


def test_run_bad_npz_input(toy_tar, tmp_path, capsys):
    np.savez(tmp_path / "in.npz", x=np.zeros((3, 13)), k=np.zeros(1, np.int32))
    assert main(["run", str(toy_tar), "-i", str(tmp_path / "in.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "tilecc: error: input 'x': expected dtype float32, got float64"


def test_inspect(toy_tar, capsys):
    assert main(["inspect", str(toy_tar)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{toy_tar}: model toy, precision fp32, ")
    rows = [ln.split() for ln in out.splitlines()]
    assert ["input", "x", "float32", "3x13"] in rows and ["output", "info", "int32", "2"] in rows
    assert "arena: 256 B for 2 intermediate tensor(s) of 312 B (82% after reuse)" in out
    assert "params: 8 B in params.bin" in out
    for name in ("lib/model.so", "include/model.h", "params.bin"):
        assert name in out
    assert "t0" not in out  # per-tensor lines only with -v
    assert main(["inspect", str(toy_tar), "-v"]) == 0
    assert ["t0", "0", "156", "?-?"] in [ln.split() for ln in capsys.readouterr().out.splitlines()]


def test_inspect_json_is_model_json(toy_tar, capsys):
    import json

    from tilecc.runtime.artifact import ArtifactReader

    assert main(["inspect", str(toy_tar), "--json"]) == 0
    with ArtifactReader(toy_tar) as r:
        assert json.loads(capsys.readouterr().out) == r.metadata


def test_targets(capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith("host ")
    assert "x86-64-avx512" in out and "skylake-avx512" in out


@pytest.mark.parametrize("argv, code, message", [
    (["run", "missing.tar"], 3, "tilecc: error: missing.tar: no such file"),
    (["inspect", "missing.tar"], 3, "tilecc: error: missing.tar: no such file"),
    (["compile", "missing.onnx"], 2, "tilecc: error: missing.onnx: no such model file"),
    (["compile", "x.onnx", "-t", "no-such-target"], 2, None),
])
def test_errors_are_one_line(argv, code, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.onnx").write_bytes(b"")
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc != 0 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("tilecc: error: ")
    if message:
        assert rc == code and err.strip() == message


def test_compile_input_shape_syntax(capsys, tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"")
    assert main(["compile", str(tmp_path / "m.onnx"), "--input-shape", "x=1,a"]) == 2
    assert "dimensions must be integers" in capsys.readouterr().err


def test_subprocess_debug_traceback(tmp_path):
    cmd = [sys.executable, "-m", "tilecc.cli"]
    quiet = subprocess.run([*cmd, "run", str(tmp_path / "nope.tar")], check=False,
                           capture_output=True, text=True)
    assert quiet.returncode == 3
    expected = f"tilecc: error: {tmp_path}/nope.tar: no such file"
    assert quiet.stderr.strip().splitlines() == [expected]
    loud = subprocess.run([*cmd, "--debug", "run", str(tmp_path / "nope.tar")], check=False,
                          capture_output=True, text=True)
    assert loud.returncode == 3 and "Traceback" in loud.stderr
    usage = subprocess.run(cmd, check=False, capture_output=True, text=True)
    assert usage.returncode == 2 and "tilecc: error:" in usage.stderr


def test_bench_reports_latency(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    model = Path(__file__).resolve().parents[1] / "compiler" / "data" / "ds_cnn_kws.onnx"
    tar = tmp_path / "m.tar"
    r = subprocess.run([sys.executable, "-m", "tilecc.cli", "compile", str(model), "-o", str(tar)],
                       check=False, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "tilecc.cli", "bench", str(tar), "--runs", "5",
                        "--threads", "1"], check=False, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "5 runs, 1 thread(s): median" in r.stdout and "p90" in r.stdout

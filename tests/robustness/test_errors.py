"""Every bad input gets one line on stderr (what, where, what to do), a documented exit code
and no traceback; the Python API raises the matching TileccError subclass."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import tilecc
from tilecc.cli import main

sys.path.insert(0, str(Path(__file__).parent))
import cases

CASES = cases.compile_cases()


@pytest.mark.parametrize("label,data,code,cls,text", CASES, ids=[c[0] for c in CASES])
def test_compile_bad_model_cli(tmp_path, capsys, label, data, code, cls, text):
    path = tmp_path / "bad.onnx"
    path.write_bytes(data)
    assert main(["compile", str(path), "-o", str(tmp_path / "m.tar")]) == code
    err = capsys.readouterr().err
    assert err.startswith("tilecc: error: ") and "Traceback" not in err
    assert text.split(":")[0] in err
    assert not (tmp_path / "m.tar").exists()


@pytest.mark.parametrize("label,data,code,cls,text", CASES, ids=[c[0] for c in CASES])
def test_compile_bad_model_api(label, data, code, cls, text):
    with pytest.raises(tilecc.TileccError) as ei:
        tilecc.compile(data)
    assert type(ei.value).__name__ == cls and ei.value.exit_code == code
    if not label.startswith(("truncated", "not an")):  # bytes, not a file: other wording
        assert text in str(ei.value)


def test_debug_shows_traceback(tmp_path, capsys):
    path = tmp_path / "bad.onnx"
    path.write_bytes(CASES[2][1])
    assert main(["compile", str(path), "--debug"]) == 6
    assert "Traceback" in capsys.readouterr().err


def test_model_file_missing(tmp_path, capsys):
    assert main(["compile", str(tmp_path / "nope.onnx")]) == 2
    assert "no such model file" in capsys.readouterr().err


@pytest.fixture(scope="module")
def conv_tar(tmp_path_factory):
    path = tmp_path_factory.mktemp("conv") / "conv.tar"
    tilecc.compile(cases.conv_model()).save(path)
    return path


def test_run_wrong_inputs(conv_tar):
    mod = tilecc.load(conv_tar)
    x = np.ones((1, 1, 4, 4), np.float32)
    with pytest.raises(tilecc.InputError, match=r"unknown input 'X'; the model's inputs are"):
        mod.run({"X": x})
    with pytest.raises(tilecc.InputError, match=r"input 'x': expected shape \(1, 1, 4, 4\)"):
        mod.run({"x": x[..., :3]})
    with pytest.raises(tilecc.InputError, match="expected dtype float32, got float64"):
        mod.run({"x": x.astype(np.float64)})
    with pytest.raises(tilecc.InputError, match="missing input 'x'"):
        mod.run({})


def test_non_contiguous_input_is_copied(conv_tar):
    mod = tilecc.load(conv_tar)
    rng = np.random.default_rng(0)
    big = rng.standard_normal((1, 1, 8, 8)).astype(np.float32)
    strided = big[:, :, ::2, ::2]  # a view with strides, not C-contiguous
    fortran = np.asfortranarray(rng.standard_normal((1, 1, 4, 4)).astype(np.float32))
    assert not strided.flags.c_contiguous and not fortran.flags.c_contiguous
    for x in (strided, fortran):
        got = mod.run({"x": x})["y"]
        want = mod.run({"x": np.ascontiguousarray(x)})["y"]
        np.testing.assert_array_equal(got, want)


def test_run_wrong_npz_name_cli(conv_tar, tmp_path, capsys):
    np.savez(tmp_path / "in.npz", X=np.ones((1, 1, 4, 4), np.float32))
    assert main(["run", str(conv_tar), "-i", str(tmp_path / "in.npz")]) == 2
    err = capsys.readouterr().err
    assert "unknown input 'X'" in err and "Traceback" not in err


def test_profile_needs_profiling_build(conv_tar, capsys):
    assert main(["run", str(conv_tar), "--profile"]) == 3
    assert "recompile it with `tilecc compile --profile`" in capsys.readouterr().err


def test_tampered_and_truncated_artifacts(conv_tar, tmp_path, capsys):
    data = bytearray(conv_tar.read_bytes())
    idx = data.find(b"tilecc_model_run")  # in the first file that names it (model.h)
    assert idx > 0
    data[idx] ^= 1
    bad = tmp_path / "tampered.tar"
    bad.write_bytes(bytes(data))
    assert main(["run", str(bad)]) == 3
    assert "does not match its sha256" in capsys.readouterr().err
    cut = tmp_path / "cut.tar"
    cut.write_bytes(conv_tar.read_bytes()[:3000])
    assert main(["run", str(cut)]) == 3
    assert "Traceback" not in capsys.readouterr().err


def test_workspace_over_memory_limit(conv_tar, monkeypatch):
    monkeypatch.setenv("TILECC_MAX_MEMORY_BYTES", "16")
    with pytest.raises(tilecc.errors.ResourceError, match="over the 16 B limit"):
        tilecc.load(conv_tar)


def test_graph_bad_suffix(conv_tar, tmp_path, capsys):
    assert main(["inspect", str(conv_tar), "--graph", str(tmp_path / "g.png")]) == 2
    assert "use a .html, .svg or .dot" in capsys.readouterr().err


def test_exit_codes_documented():
    doc = tilecc.errors.__doc__
    for cls in (tilecc.errors.InputError, tilecc.errors.ArtifactError, tilecc.errors.LinkError,
                tilecc.errors.ModelRunError, tilecc.errors.ModelError,
                tilecc.errors.UnsupportedError, tilecc.errors.ResourceError,
                tilecc.errors.TuningLogError):
        assert f"{cls.exit_code}     {cls.__name__}" in doc



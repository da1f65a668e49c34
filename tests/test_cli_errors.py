"""Plausible commands that used to end in an internal error (exit 70), a misleading message or
a silent wrong result, each with the message and exit code it gets now (issue 25)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.models.harness import import_tilecc

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "tilecc.cli"]


def _matmul_relu() -> onnx.ModelProto:
    """One input x[1, 8] -> Relu(x @ W): small, and quantizable (a MatMul with a constant B)."""
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 4))
                                .astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Relu", ["m"], ["y"])],
        "mm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clierr") / "mm.onnx"
    onnx.save(_matmul_relu(), path)
    return path


@pytest.fixture(scope="module")
def tar(model) -> Path:
    tilecc = import_tilecc()
    out = model.with_suffix(".tar")
    tilecc.compile(str(model)).save(out)
    return out


def _main(argv, capsys) -> tuple[int, str, str]:
    from tilecc.cli import main

    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _x() -> np.ndarray:
    return np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 8)


def _want() -> np.ndarray:
    w = numpy_helper.to_array(_matmul_relu().graph.initializer[0])
    return np.maximum(_x() @ w, 0)


@pytest.mark.parametrize("form", ["npy", "raw"])
def test_run_reads_npy_and_raw_inputs_of_a_one_input_model(tar, tmp_path, capsys, form):
    path = tmp_path / f"x.{'npy' if form == 'npy' else 'bin'}"
    np.save(path, _x()) if form == "npy" else _x().tofile(path)
    rc, _, err = _main(["run", tar, "-i", path, "-o", tmp_path / "y.npz"], capsys)
    assert rc == 0, err
    with np.load(tmp_path / "y.npz") as out:
        np.testing.assert_allclose(out["y"], _want(), rtol=1e-5, atol=1e-6)


def test_raw_input_of_the_wrong_size_says_what_was_expected(tar, tmp_path, capsys):
    path = tmp_path / "x.bin"
    np.zeros(7, np.float32).tofile(path)
    rc, _, err = _main(["run", tar, "-i", path], capsys)
    assert rc == 2
    assert err.strip() == (f"tilecc: error: -i {path}: not a .npz or .npy, so read as raw "
                           "float32[1, 8] for input 'x', which is 32 bytes, but the file has "
                           "28; give a .npz keyed by input name (np.savez(path, NAME=array)), "
                           "a .npy for a one-input model, or a raw tensor file "
                           "(array.tofile(path)) for a one-input model")


def test_npy_for_a_model_with_several_inputs_names_them(tmp_path, capsys):
    from tilecc.cli_io import read_run_inputs
    from tilecc.errors import InputError

    np.save(tmp_path / "x.npy", _x())
    specs = [{"name": "a", "shape": [1], "dtype": "float32"},
             {"name": "b", "shape": [1], "dtype": "float32"}]
    with pytest.raises(InputError, match=r"has 2 inputs \['a', 'b'\]; save them in one "
                                         r"\.npz: np\.savez\(path, a=\.\.\., b=\.\.\.\)"):
        read_run_inputs(str(tmp_path / "x.npy"), specs)


def test_pickled_input_is_refused_without_numpy_allow_pickle_advice(tar, tmp_path, capsys):
    path = tmp_path / "obj.npy"
    with open(path, "wb") as f:  # an object-array header: numpy would unpickle what follows
        np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False,
                                                 "shape": (1,)})
        f.write(b"\x80\x04N.")
    rc, _, err = _main(["run", tar, "-i", path], capsys)
    assert rc == 2 and "it holds Python objects" in err and "allow_pickle" not in err


def test_calibration_npy_of_a_one_input_model(model, tmp_path, capsys):
    calib = tmp_path / "calib.npy"
    np.save(calib, np.random.default_rng(1).standard_normal((4, 1, 8)).astype(np.float32))
    rc, _, err = _main(["compile", model, "--quantize", "int8", "--calibration", calib, "-o",
                        tmp_path / "q.tar"], capsys)
    assert rc == 0, err
    tilecc = import_tilecc()
    ops = {op for k in tilecc.load(tmp_path / "q.tar").metadata["kernels"] for op in k["ops"]}
    assert any(op.startswith("Q") for op in ops), ops


def test_quantize_with_profile_builds_timers(model, tmp_path, capsys):
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.random.default_rng(1).standard_normal((4, 1, 8)).astype(np.float32))
    rc, _, err = _main(["compile", model, "--quantize", "int8", "--calibration", calib,
                        "--profile", "-o", tmp_path / "qp.tar"], capsys)
    assert rc == 0, err
    rc, out, err = _main(["run", tmp_path / "qp.tar", "--profile", "--runs", "2"], capsys)
    assert rc == 0 and out.startswith("profile of tilecc_model:"), err


@pytest.mark.parametrize("argv, message", [
    (["--calibration", "c.npz"], "--calibration is only used with --quantize int8"),
    (["--quantize", "int8"], "--quantize int8 needs --calibration DATA"),
    (["--quantize", "int8", "--calibration", "raw.bin"], ("--calibration raw.bin: not a .npz "
     "or .npy file")),
    (["--input-shape", "x=1,2,8"], ("input 'x': --input-shape gives 3 dimension(s) [1, 2, 8] "
     "but the model declares rank 2 [1, 8]; give 2 dimensions")),
    (["-t", "no-such-target"], "argument -t/--target: unknown target 'no-such-target'"),
])
def test_bad_compile_arguments_exit_2(model, tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "raw.bin").write_bytes(b"\0" * 32)
    rc, _, err = _main(["compile", model, *argv], capsys)
    assert rc == 2 and err.startswith("tilecc: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1 and not list(tmp_path.glob("*.tar"))


@pytest.mark.parametrize("cmd", [["bench", "--runs", "0"], ["run", "--runs", "0", "--profile"],
                                 ["run", "--threads", "0"]])
def test_counts_below_one_are_usage_errors(tar, capsys, cmd):
    rc, _, err = _main([cmd[0], tar, *cmd[1:]], capsys)
    assert rc == 2, err
    assert err.strip().splitlines() == [
        f"tilecc: error: argument {cmd[1]}: 0 is not >= 1 (see `tilecc {cmd[0]} --help`)"]


def test_closed_stdout_is_not_an_error():
    read, write = os.pipe()
    os.close(read)  # no reader from the start: the first write fails with EPIPE
    try:
        proc = subprocess.run([*CLI, "ops"], stdout=write, stderr=subprocess.PIPE, text=True,
                              check=False)
    finally:
        os.close(write)
    assert proc.returncode == 141 and proc.stderr == ""


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_honour_the_umask(tar, tmp_path, capsys, umask, mode):
    old = os.umask(umask)
    try:
        outs = [tmp_path / "y.npz", tmp_path / "g.html", tmp_path / "g.onnx"]
        assert _main(["run", tar, "-o", outs[0]], capsys)[0] == 0
        assert _main(["inspect", tar, "--graph", outs[1], "--export-onnx", outs[2]],
                     capsys)[0] == 0
    finally:
        os.umask(old)
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in outs} == \
        {p.name: mode for p in outs}


def test_output_into_a_missing_directory_fails_before_running(tar, tmp_path, capsys):
    rc, out, err = _main(["run", tar, "-o", tmp_path / "no" / "y.npz"], capsys)
    assert rc == 2 and out == ""
    assert err.strip() == (f"tilecc: error: {tmp_path}/no/y.npz: directory {tmp_path}/no does "
                           "not exist; create it or choose another output path")


def test_logs_export_that_matches_nothing_says_so(tmp_path, capsys):
    log = ROOT / "compiler" / "data" / "tuned" / "host-znver4.jsonl"
    out = tmp_path / "x.jsonl"
    rc, _, err = _main(["logs", "export", log, "--target", "x86-64-avx512", "-o", out], capsys)
    assert rc == 2 and not out.exists()
    assert "no record is for --target x86-64-avx512 (target key " \
           "cpu/x86_64-unknown-linux-gnu/skylake-avx512;" in err
    assert "the log has: cpu/x86_64-unknown-linux-gnu/znver4 (" in err
    rc, out_text, _ = _main(["logs", "export", log, "--target",
                             "cpu/x86_64-unknown-linux-gnu/znver4", "-o", out], capsys)
    assert rc == 0 and out.is_file() and "records)" in out_text


def test_logs_of_a_missing_file(capsys, tmp_path):
    rc, _, err = _main(["logs", "show", tmp_path / "nope.jsonl"], capsys)
    assert (rc, err.strip()) == (2, f"tilecc: error: {tmp_path}/nope.jsonl: no such tuning log")


def test_bench_on_opencl_names_the_device_not_none_threads(model, tmp_path, capsys):
    from tests.codegen.test_opencl import require_opencl

    tilecc = import_tilecc()
    require_opencl()
    path = tmp_path / "ocl.tar"
    tilecc.compile(str(model), target="opencl").save(path)
    rc, out, err = _main(["bench", path, "--runs", "2", "--warmup", "0"], capsys)
    assert rc == 0, err
    assert "2 runs, OpenCL device (host threads do not apply): median" in out


COMMANDS = ["compile", "run", "inspect", "bench", "tune", "logs", "compare", "ops", "targets"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_help_has_examples(cmd, capsys):
    rc, out, _ = _main([cmd, "--help"], capsys)
    assert rc == 0
    examples = out.split("\nexamples:\n", 1)[1].splitlines()
    assert examples and all(ln.strip().startswith(("tilecc ", "-")) or ln.startswith("    ")
                            for ln in examples if ln.strip()), examples
    assert any(ln.strip().startswith(f"tilecc {cmd}") for ln in examples)


def test_inspect_labels_fp16_params_as_stored(model, tmp_path, capsys):
    tilecc = import_tilecc()
    path = tmp_path / "h.tar"
    tilecc.compile(str(model), precision="fp16").save(path)
    rc, out, _ = _main(["inspect", path], capsys)
    assert rc == 0 and ", precision fp16, " in out.splitlines()[0]
    (params,) = [ln for ln in out.splitlines() if ln.startswith("params: ")]
    assert "float16 64 B in 1 tensor(s)" in params and "float32" not in params, params


def test_every_option_has_a_help_line():
    import argparse

    from tilecc.cli import build_parser

    missing = []

    def walk(parser, path):
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a.choices.items():
                    walk(sub, [*path, name])
            elif not a.help:
                missing.append(" ".join([*path, *(a.option_strings or [a.dest])]))

    walk(build_parser(), ["tilecc"])
    assert not missing, missing

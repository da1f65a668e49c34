"""codegen.link.link_shared errors, and the generic C runner against the toy artifact."""

import dataclasses
import subprocess

import numpy as np
import pytest
from toy_artifact import FIXTURES, compile_object, have_cc, random_inputs, reference

from tilecc.codegen.link import link_shared
from tilecc.errors import LinkError
from tilecc.runtime.artifact import extract_artifact, read_artifact
from tilecc.runtime.crunner import build_c_runner, run_c_runner
from tilecc.targets import get_target

pytestmark = pytest.mark.skipif(not have_cc(), reason="no C compiler `cc`")


def test_missing_linker(tmp_path):
    obj = compile_object(FIXTURES / "toy_model.c", tmp_path / "toy.o")
    target = dataclasses.replace(get_target("host"), linker="no-such-linker-tilecc")
    with pytest.raises(LinkError, match="'no-such-linker-tilecc' not found"):
        link_shared([obj], tmp_path / "model.so", target)


def test_undefined_symbol_reported(tmp_path):
    src = tmp_path / "bad.c"
    src.write_text("int tilecc_missing_kernel(int);\n"
                   "int f(int x) { return tilecc_missing_kernel(x); }\n")
    obj = compile_object(src, tmp_path / "bad.o")
    with pytest.raises(LinkError, match="tilecc_missing_kernel"):
        link_shared([obj], tmp_path / "model.so", get_target("host"))


def test_missing_object(tmp_path):
    with pytest.raises(LinkError, match="not found"):
        link_shared([tmp_path / "nope.o"], tmp_path / "model.so", get_target("host"))


@pytest.fixture(scope="module")
def runner(toy_tar, tmp_path_factory):
    d = extract_artifact(toy_tar, tmp_path_factory.mktemp("unpacked"))
    return build_c_runner(d, d / "tilecc_runner"), d, read_artifact(toy_tar).metadata


@pytest.mark.parametrize("threads", ["1", "2"])
def test_c_runner_matches_numpy(runner, tmp_path, threads):
    exe, d, meta = runner
    inputs = random_inputs(7, k=5)
    out = run_c_runner(exe, d, meta, inputs, tmp_path, env={"TILECC_NUM_THREADS": threads})
    np.testing.assert_allclose(out["y"], reference(inputs["x"], 5), rtol=1e-6)
    n = int(threads)
    assert out["info"].tolist() == [n, 1]
    np.testing.assert_array_equal(out["counts"][:n], 1)


def test_c_runner_repeat_prints_timing(runner, tmp_path):
    exe, d, meta = runner
    run_c_runner(exe, d, meta, random_inputs(), tmp_path)  # writes in*.bin
    args = [str(d / "params.bin"), str(tmp_path / "in0.bin"), str(tmp_path / "in1.bin"),
            *(str(tmp_path / f"o{i}.bin") for i in range(3))]
    proc = subprocess.run([str(exe), "-r", "5", *args], check=False, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert "run ms: min=" in proc.stderr and "runs=5" in proc.stderr


def test_c_runner_wrong_input_size(runner, tmp_path):
    exe, d, _ = runner
    (tmp_path / "short.bin").write_bytes(b"\0" * 12)
    (tmp_path / "k.bin").write_bytes(b"\0" * 4)
    proc = subprocess.run([str(exe), str(d / "params.bin"), str(tmp_path / "short.bin"),
                           str(tmp_path / "k.bin"), "a", "b", "c"], check=False,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "input 0 (x)" in proc.stderr and "has 12 bytes, the model expects 156" in proc.stderr


def test_c_runner_usage_and_model_error(runner, tmp_path):
    exe, d, meta = runner
    proc = subprocess.run([str(exe)], check=False, capture_output=True, text=True)
    assert proc.returncode == 1 and "usage:" in proc.stderr and "x.bin k.bin" in proc.stderr
    with pytest.raises(RuntimeError, match="exited with 3: .*toy_run failed with code 42"):
        run_c_runner(exe, d, meta, random_inputs(k=-1), tmp_path,
                     env={"TILECC_NUM_THREADS": "2"})

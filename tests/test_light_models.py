"""The nine "light" models shipped with onnx (backend/test/data/light), through the tilecc CLI.

Each model is compiled once per session with `tilecc compile MODEL.onnx -t host -o model.tar`
and run with `tilecc run model.tar -i in.npz -o out.npz` in a subprocess (the same call the
`tilecc` console script makes). The input of every non-initializer graph input is
`np.arange(n).reshape(shape) / n` as float32, which is how onnx generated the
`light_*_output_0.pb` references (onnxruntime reproduces them exactly from this input).

Tolerance, against both the `.pb` reference and onnxruntime:
`max|out - ref| <= 1e-3 * max(1, max|ref|)` and `np.allclose(out, ref, rtol=1e-3, atol=1e-5)`.

squeezenet and shufflenet run by default; the big ones are marked `slow`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from tests.models.harness import import_tilecc, light_inputs, ort_run

LIGHT_DIR = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data" / "light"
FAST = ["squeezenet", "shufflenet"]
SLOW = ["bvlc_alexnet", "resnet50", "densenet121", "inception_v1", "inception_v2", "vgg19",
        "zfnet512"]
MODELS = [pytest.param(n, id=n) for n in FAST] + [
    pytest.param(n, id=n, marks=pytest.mark.slow) for n in SLOW]
CLI_TIMEOUT_S = 1800
# Runs tilecc.cli.main exactly as the console-script entry point does.
CLI = [sys.executable, "-c", "import sys; from tilecc.cli import main; sys.exit(main())"]


def model_path(name: str) -> Path:
    path = LIGHT_DIR / f"light_{name}.onnx"
    if not path.exists():
        pytest.skip(f"{path} is not shipped with this onnx version")
    return path


def reference_output(name: str) -> np.ndarray:
    tensor = onnx.TensorProto()
    tensor.ParseFromString((LIGHT_DIR / f"light_{name}_output_0.pb").read_bytes())
    return numpy_helper.to_array(tensor)


class CliError(Exception):
    pass


def run_cli(*args: str) -> None:
    proc = subprocess.run([*CLI, *args], check=False, capture_output=True, text=True,
                          timeout=CLI_TIMEOUT_S)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-20:])
        raise CliError(f"tilecc {args[0]} exited with {proc.returncode}:\n{tail}")


@pytest.fixture(scope="session")
def light_run(tmp_path_factory):
    """name -> (inputs, tilecc outputs); each model is compiled and run once per session."""
    cache: dict[str, tuple[dict, dict] | str] = {}  # a str is the cached failure

    def get(name: str) -> tuple[dict, dict]:
        src = model_path(name)
        import_tilecc()
        if name not in cache:
            feeds = light_inputs(onnx.load(str(src)))
            work = tmp_path_factory.mktemp(f"light_{name}")
            np.savez(work / "in.npz", **feeds)
            try:
                run_cli("compile", str(src), "-t", "host", "-o", str(work / "model.tar"))
                run_cli("run", str(work / "model.tar"), "-i", str(work / "in.npz"),
                        "-o", str(work / "out.npz"))
            except (CliError, subprocess.TimeoutExpired) as exc:
                cache[name] = str(exc)
            else:
                with np.load(work / "out.npz") as out:
                    cache[name] = (feeds, {k: out[k] for k in out.files})
        if isinstance(cache[name], str):
            pytest.fail(cache[name], pytrace=False)
        return cache[name]

    return get


def assert_light_close(out: np.ndarray, ref: np.ndarray) -> None:
    assert out.shape == ref.shape, f"shape {out.shape} != {ref.shape}"
    err = float(np.abs(out.astype(np.float64) - ref).max())
    assert err <= 1e-3 * max(1.0, float(np.abs(ref).max())), f"max abs error {err:.3g}"
    assert np.allclose(out, ref, rtol=1e-3, atol=1e-5), "np.allclose(rtol=1e-3, atol=1e-5)"


@pytest.mark.parametrize("name", MODELS)
def test_light_model_matches_reference_pb(name: str, light_run) -> None:
    _, outs = light_run(name)
    model = onnx.load(str(model_path(name)), load_external_data=False)
    first_output = model.graph.output[0].name
    assert first_output in outs, f"outputs {sorted(outs)} lack {first_output}"
    assert_light_close(outs[first_output], reference_output(name))


@pytest.mark.parametrize("name", MODELS)
def test_light_model_matches_ort(name: str, light_run) -> None:
    feeds, outs = light_run(name)
    ref = ort_run(model_path(name), feeds)
    assert set(outs) == set(ref)
    for key, want in ref.items():
        assert_light_close(outs[key], want)


@pytest.mark.parametrize("name", FAST + SLOW)
def test_light_inputs_reproduce_reference_in_ort(name: str) -> None:
    """No tilecc: the arange input rule is right (onnxruntime reproduces the .pb output)."""
    src = model_path(name)
    ref = reference_output(name)
    (out, *_) = ort_run(src, light_inputs(onnx.load(str(src)))).values()
    assert_light_close(out, ref)

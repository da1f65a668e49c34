"""precision="fp16" on CPU: weights and inter-kernel activations stored as float16, math in
float32. Against onnxruntime fp32 the error is float16 storage rounding (relative 2^-11 per
stored value) compounded over the layers, so the tolerance is fp16's, not fp32's:
cosine >= 0.999 and max abs error <= 1e-2 x max |reference|."""

from __future__ import annotations

import subprocess
import tarfile

import numpy as np
import pytest

import tilecc
from tests.models.builders import mobilenet_v2
from tests.models.harness import ort_run
from tilecc.runtime.artifact import LIB_PATH
from tilecc.targets.target import get_target


def _cos(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_mobilenet_fp16_vs_onnxruntime_fp32(tmp_path):
    model = mobilenet_v2()
    inp = model.graph.input[0]
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    x = {inp.name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    ref = next(iter(ort_run(model, x).values()))
    art = tilecc.compile(model, precision="fp16")
    art32 = tilecc.compile(model)
    # fp16 storage halves the weights and the activation arena.
    assert art.metadata["arena"]["params_bytes"] < 0.6 * art32.metadata["arena"]["params_bytes"]
    assert art.metadata["outputs"][0]["dtype"] == "float32"
    art.save(tmp_path / "h.tar")
    out = next(iter(tilecc.load(tmp_path / "h.tar").run(x).values()))
    assert out.dtype == np.float32
    cos, err = _cos(out, ref), float(np.abs(out - ref).max() / np.abs(ref).max())
    print(f"\nmobilenet_v2 fp16 vs onnxruntime fp32: cosine {cos:.6f}, "
          f"max abs err / max |ref| {err:.3g}")
    assert cos >= 0.999 and err <= 1e-2
    with tarfile.open(tmp_path / "h.tar") as tf:
        (tmp_path / "h.so").write_bytes(tf.extractfile(LIB_PATH).read())
    asm = subprocess.run(["objdump", "-d", str(tmp_path / "h.so")], capture_output=True,
                         text=True, check=True).stdout
    if "+f16c" in get_target("host").features.split(","):
        assert "vcvtph2ps" in asm and "vcvtps2ph" in asm


def test_fp16_rejects_unknown_precision():
    with pytest.raises(ValueError, match="fp32 or fp16"):
        tilecc.compile(mobilenet_v2(), precision="bf16")

"""A C program built with `cc` against a compiled artifact gives onnxruntime's outputs."""

from __future__ import annotations

import json

import numpy as np

import tilecc
from tests.models.builders import mobilenet_block_model
from tests.models.harness import ort_run
from tilecc.runtime.artifact import extract_artifact
from tilecc.runtime.crunner import build_c_runner, run_c_runner


def test_c_runner_on_compiled_cnn(tmp_path):
    model = mobilenet_block_model()
    art = tilecc.compile(model, target="host")
    tar = art.save(tmp_path / "model.tar")
    adir = extract_artifact(tar, tmp_path / "art")
    meta = json.loads((adir / "model.json").read_text())
    exe = build_c_runner(adir, tmp_path / "runner")
    rng = np.random.default_rng(0)
    feeds = {s["name"]: rng.standard_normal(s["shape"]).astype(s["dtype"])
             for s in meta["inputs"]}
    ref = ort_run(model, feeds)
    for threads in ("1", "2"):
        got = run_c_runner(exe, adir, meta, feeds, tmp_path / f"io{threads}",
                           env={"TILECC_NUM_THREADS": threads})
        for name, want in ref.items():
            scale = max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(got[name], want, rtol=1e-4, atol=1e-5 * scale)

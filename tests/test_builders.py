"""Builder models (tests/models/builders.py) compiled with tilecc vs onnxruntime.

Tolerance: `np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * max|ref|)`, i.e. the
absolute part is relative to the output's magnitude, so logits near zero do not fail on float32
reassociation. For scale: onnxruntime with and without its graph optimisations (BN folding,
fusions) differs by at most 5e-7 * max|ref| on every builder model.

The small models run by default; the full-size ones (224x224, real channel counts) are `slow`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.models import builders
from tests.models.harness import compile_and_run, ort_run

SMALL = ["resnet_block", "mobilenet_block", "grouped_conv", "ds_cnn_kws", "mobilenet_tiny"]
FULL = list(builders.FULL_BUILDERS)
ALL = [pytest.param(n, id=n) for n in SMALL] + [
    pytest.param(n, id=n, marks=pytest.mark.slow) for n in FULL]

# torchvision / MLPerf Tiny reference multiply-accumulates of the conv and linear layers.
PUBLISHED_GMACS = {
    "resnet18": 1.81, "resnet50": 4.09, "mobilenet_v2": 0.30, "mobilenet_v3_small": 0.057,
    "squeezenet1_1": 0.35, "shufflenet_v2": 0.146, "efficientnet_b0": 0.39,
}
BUNDLED = {"ds_cnn_kws.onnx": builders.ds_cnn_kws, "mobilenet_tiny.onnx": builders.mobilenet_tiny}
DATA_DIR = Path(__file__).resolve().parents[1] / "compiler" / "data"


def assert_close_to_ref(out: np.ndarray, ref: np.ndarray) -> None:
    assert out.shape == ref.shape and out.dtype == ref.dtype
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * float(np.abs(ref).max()))


@pytest.mark.parametrize("name", ALL)
def test_builder_model_matches_ort(name: str, tmp_path) -> None:
    model = builders.BUILDERS[name]()
    feeds = builders.random_inputs(model, seed=1)
    ref = ort_run(model, feeds)
    got = compile_and_run(model, feeds, tmp_path)
    assert set(got) == set(ref)
    for key in ref:
        assert_close_to_ref(np.asarray(got[key]), ref[key])


@pytest.mark.parametrize("name", ALL)
def test_builder_model_valid_in_ort(name: str) -> None:
    """No tilecc: the model passes the full checker and gives finite, non-constant outputs."""
    model = builders.BUILDERS[name]()
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == builders.OPSET
    (out,) = ort_run(model, builders.random_inputs(model)).values()
    assert out.shape[0] == 1 and np.isfinite(out).all() and out.std() > 0


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) for n in FULL])
def test_full_size_macs_match_published(name: str) -> None:
    gmacs = builders.count_macs(builders.BUILDERS[name]()) / 1e9
    assert gmacs == pytest.approx(PUBLISHED_GMACS[name], rel=0.03)


@pytest.mark.parametrize("name", SMALL)
def test_builders_are_deterministic(name: str) -> None:
    fn = builders.BUILDERS[name]
    assert fn().SerializeToString() == fn().SerializeToString()
    assert fn(seed=1).SerializeToString() != fn().SerializeToString()


@pytest.mark.parametrize("filename", sorted(BUNDLED))
def test_bundled_model_is_reproducible(filename: str) -> None:
    """compiler/data/*.onnx are written by benchmarks/make_bundled_models.py from the builders."""
    path = DATA_DIR / filename
    assert path.stat().st_size < 1_000_000
    assert path.read_bytes() == BUNDLED[filename]().SerializeToString()

"""int8 on OpenCL: QConv/QGemm with int32 accumulators and 4-way byte dot products
(codegen/opencl_dot.py), calibrated on the host like every other target.

Run on PoCL (a CPU driver without cl_khr_integer_dot_product or cl_arm_integer_dot_product:
it executes the plain int4 branch); the extension branches the Mali/Adreno presets select are
compiled by clang's OpenCL C front end with exactly the preset's extensions. Every branch is
exact int32 arithmetic and the requantization is the host's float32 formula, so the OpenCL int8
artifact equals the host int8 artifact up to float32 rounding of the last dequantize.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.codegen.test_opencl import require_opencl
from tests.models import builders
from tests.models.harness import clang_opencl, import_tilecc, ort_run

BUILTIN = {"mali-g76": "arm_dot(", "mali-g610": "dot_4x8packed_us_int(",
           "adreno-640": "convert_int4(a) * convert_int4(b)"}


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TILECC_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "oclcache"))


def cosine(a, b) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _calibration(model, n=4):
    x = builders.random_inputs(model)
    rng = np.random.default_rng(0)
    return [{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in x.items()}
            for _ in range(n)], x


def _run(art, x, tmp_path, tag):
    tilecc = import_tilecc()
    return next(iter(tilecc.load(art.save(Path(tmp_path) / f"{tag}.tar")).run(x).values()))


def _int8_vs_host_and_fp32(builder, target, tmp_path):
    tilecc = import_tilecc()
    require_opencl()
    model = getattr(builders, builder)()
    calib, x = _calibration(model)
    ref = next(iter(ort_run(model, x).values()))
    # Depthwise convs are int8 on GPUs but stay fp32 on CPUs by default: the host reference
    # quantizes them too, so both compute the same integers.
    host = _run(tilecc.compile(model, quantize="int8", calibration=calib,
                               quantize_depthwise=True), x, tmp_path, "h")
    art = tilecc.compile(model, target=target, quantize="int8", calibration=calib)
    out = _run(art, x, tmp_path, "o")
    print(f"{builder} {target}: int8 cosine vs fp32 {cosine(out, ref):.6f} (host int8 "
          f"{cosine(host, ref):.6f}), max |opencl - host int8| {np.abs(out - host).max():.3g}")
    assert cosine(out, ref) >= 0.98
    np.testing.assert_allclose(out, host, rtol=1e-5, atol=1e-6 * float(np.abs(host).max()))
    return art


@pytest.mark.parametrize("target", ["mali-g76", "mali-g610", "adreno-640"])
def test_ds_cnn_int8_on_opencl(target, tmp_path):
    art = _int8_vs_host_and_fp32("ds_cnn_kws", target, tmp_path)
    src = art.files["kernels.cl"].decode()
    assert "+= tl_dot4_us(" in src  # the pointwise convs and the classifier
    from tilecc.targets import get_target
    t = get_target(target)
    clang_opencl(src, t.extensions)
    # The branch this preset's extensions select (PoCL runs the #else branch).
    chosen = clang_opencl(src, t.extensions, "-E", "-P")
    body = chosen[chosen.index("tl_dot4_us(uchar4"):].split("}", 1)[0]
    assert BUILTIN[target] in body, body


@pytest.mark.slow
@pytest.mark.parametrize("target", ["mali-g76", "mali-g610", "adreno-640"])
@pytest.mark.parametrize("builder", ["mobilenet_v3_small", "resnet18"])
def test_int8_models_on_opencl(builder, target, tmp_path):
    _int8_vs_host_and_fp32(builder, target, tmp_path)


def test_qconv_dot_loop_shape():
    """The schedule puts the four bytes of a dot innermost as a vectorize loop over the
    input channels; depthwise convs (one input channel per output) keep multiply-adds."""
    tilecc = import_tilecc()
    model = builders.ds_cnn_kws()
    calib, _ = _calibration(model, 2)
    art = tilecc.compile(model, target="mali-g610", quantize="int8", calibration=calib)
    src = art.files["kernels.cl"].decode()
    kernels = src.split("__kernel ")[1:]
    qconvs = [k for k in kernels if re.search(r"void \w*qconv\w*\(", k)]
    with_dot = [k for k in qconvs if "tl_dot4_" in k]
    assert with_dot and len(with_dot) < len(qconvs)
    for k in with_dot:
        assert "int acc" in k and "float acc" not in k

"""fp16 arithmetic on OpenCL (codegen/opencl_half.py): half math under cl_khr_fp16, float32
accumulators for reductions longer than HALF_ACC_MAX terms, fp32 math where the device lacks
the extension, half-sized arenas.

PoCL (the CPU driver CI runs) has no cl_khr_fp16, so on it these kernels run their fallback
branch (`hf` = float, half storage through vload_half/vstore_half): that is what the cosine
tests measure. The half-math branch the Mali/Adreno presets select is compiled by clang's
OpenCL C front end (OpenCL C 3.0, only cl_khr_fp16 enabled) and is not run here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.codegen.test_opencl import require_opencl
from tests.codegen.test_opencl_int8 import cosine
from tests.models import builders
from tests.models.harness import clang_opencl, import_tilecc, ort_run

BUNDLED = Path(__file__).resolve().parents[2] / "compiler" / "data" / "mobilenet_tiny.onnx"


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TILECC_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "oclcache"))


def _model(name):
    import onnx
    return onnx.load(str(BUNDLED)) if name == "bundled" else getattr(builders, name)()


@pytest.mark.parametrize("name", ["ds_cnn_kws", "bundled",
                                  pytest.param("mobilenet_v3_small", marks=pytest.mark.slow)])
def test_fp16_on_pocl_matches_onnxruntime(name, tmp_path):
    tilecc = import_tilecc()
    require_opencl()
    model = _model(name)
    x = builders.random_inputs(model)
    arts = {p: tilecc.compile(model, target="mali-g610", precision=p, default_logs=False)
            for p in ("fp32", "fp16")}
    arena = {p: a.metadata["arena"]["arena_bytes"] for p, a in arts.items()}
    mod = tilecc.load(arts["fp16"].save(tmp_path / "m.tar"))
    half_math = "cl_khr_fp16" in mod.device.extensions
    out = mod.run(x)
    for k, ref in ort_run(model, x).items():
        c = cosine(out[k], ref)
        print(f"{name}: fp16 cosine vs onnxruntime fp32 {c:.7f} ({'half' if half_math else 'fp32'}"
              f" math on {mod.device.name}); arena fp16 {arena['fp16']} B, fp32 {arena['fp32']} B")
        assert out[k].dtype == np.float32 and c >= 0.999
    assert arena["fp16"] <= 0.55 * arena["fp32"]


def _sources(target):
    tilecc = import_tilecc()
    return tilecc.compile(builders.ds_cnn_kws(), target=target, precision="fp16",
                          default_logs=False).files["kernels.cl"].decode()


def test_half_math_kernels_compile_with_cl_khr_fp16():
    """The branch a cl_khr_fp16 device takes: half and half4 arithmetic, short reductions
    (3x3 depthwise, 9 terms) accumulating in half, long ones (64-channel pointwise) in float."""
    src = _sources("mali-g610")
    clang_opencl(src, ["cl_khr_fp16"])
    pre = clang_opencl(src, ["cl_khr_fp16"], "-E", "-P")
    assert "typedef half4 hf4;" in pre and "typedef float4 hf4;" not in pre
    assert "vload_half" not in pre  # half loads are plain half loads under the extension
    assert "TL_LDV(4," in src and "(hf4)" in src  # half4 loads and half4 operands
    assert " hf acc" in src and " float acc" in src


def test_no_half_math_without_the_extension():
    """A preset without cl_khr_fp16 (the generic one) emits only the float branch: fp32 math
    on half storage."""
    src = _sources("opencl")
    assert "EXTENSION cl_khr_fp16" not in src and "typedef float4 hf4;" in src
    assert "typedef half" not in src and "vload_half" in src


def test_accumulator_policy():
    import_tilecc()
    from tilecc import te
    from tilecc.codegen.half_policy import HALF_ACC_MAX, updates_per_element
    from tilecc.codegen.opencl import lower_stages
    from tilecc.loopir import Allocate
    from tilecc.schedule import create_schedule

    def acc_terms(k):
        x = te.placeholder((8, k), "float32", "x")
        r = te.reduce_axis(k, "r")
        y = te.compute((8,), lambda i: te.sum(x[i, r] * x[i, r], axis=r), name="y")
        _, bodies = lower_stages(create_schedule(y), [x, y], "k")
        stack = [bodies[0]]
        while stack:
            s = stack.pop()
            if isinstance(s, Allocate):
                return updates_per_element(s.body, s.buffer)
            stack.extend(getattr(s, "stmts", []) or [b for b in (getattr(s, "body", None),)
                                                    if b is not None])
        raise AssertionError("no accumulator")

    assert acc_terms(9) == 9 <= HALF_ACC_MAX
    assert acc_terms(256) == 256 > HALF_ACC_MAX

"""OpenCL backend: thread binding, emitted OpenCL C, and whole models run on PoCL through the
Python executor, compared with onnxruntime.

Models are compiled for a Mali and an Adreno preset; the kernels run on whatever OpenCL device
is present (PoCL on the CPU in CI). Tolerances:
- fp32: as the host light-model tests, max|out - ref| <= 1e-3 * max(1, max|ref|) and
  allclose(rtol=1e-3, atol=1e-5) (the kernels sum in a different order than onnxruntime);
- fp16 storage (weights and activations rounded to half, fp32 math): half has an 11-bit
  mantissa (relative step 2^-11 ~ 4.9e-4 per rounding), compounded over a dozen layers, so
  max|out - ref| <= 3e-2 * max(1, max|ref|).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.models import builders
from tests.models.harness import import_tilecc, light_inputs, ort_run

LIGHT_DIR = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data" / "light"
FAST_LIGHT = ["squeezenet", "shufflenet"]
SLOW_LIGHT = ["bvlc_alexnet", "resnet50", "densenet121", "inception_v1", "inception_v2",
              "vgg19", "zfnet512"]
PRESETS = ["mali-g76", "adreno-640"]


def require_opencl():
    """Skip when no OpenCL driver is present; under CI (which installs PoCL) fail instead."""
    try:
        import pyopencl as cl
        if not [d for p in cl.get_platforms() for d in p.get_devices()]:
            raise RuntimeError("no OpenCL device")
    except Exception as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"OpenCL (pyopencl + PoCL) unavailable: {exc}")


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TILECC_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "oclcache"))


def run_opencl(model, inputs, target, tmp_path, precision="fp32"):
    tilecc = import_tilecc()
    require_opencl()
    art = tilecc.compile(model, target=target, precision=precision)
    path = art.save(Path(tmp_path) / "model.tar")
    mod = tilecc.load(path)
    assert type(mod).__name__ == "OpenCLModule"
    return mod.run(dict(inputs)), art


def assert_close(out, ref, rel=1e-3, allclose=True):
    assert out.shape == ref.shape, f"shape {out.shape} != {ref.shape}"
    err = float(np.abs(out.astype(np.float64) - ref).max())
    scale = max(1.0, float(np.abs(ref).max()))
    print(f"max abs error {err:.3g} (max |ref| {float(np.abs(ref).max()):.3g})")
    assert err <= rel * scale, f"max abs error {err:.3g} > {rel} * {scale:.3g}"
    if allclose:
        assert np.allclose(out, ref, rtol=1e-3, atol=1e-5)


# ------------------------------------------------------------------ schedules and codegen
def _elementwise_kernel(shape=(2, 8, 16)):
    from tilecc import te
    from tilecc.codegen.opencl import emit_kernel, lower_stages
    from tilecc.expr import call
    from tilecc.schedule import create_schedule

    x = te.placeholder(shape, "float32", "x")
    y = te.compute(shape, lambda *i: call("exp", x[i]) * 2.0, name="y")
    sch = create_schedule(y)
    return sch, x, y, emit_kernel, lower_stages


def test_bind_rejects_bad_tags_and_reduce_loops():
    import_tilecc()
    from tilecc import te
    from tilecc.schedule import ScheduleError, create_schedule

    x = te.placeholder((4, 8), "float32", "x")
    r = te.reduce_axis(8, "r")
    y = te.compute((4,), lambda i: te.sum(x[i, r], axis=r), name="y")
    st = create_schedule(y)[y]
    with pytest.raises(ScheduleError, match="unknown thread tag"):
        st.bind(st.axes[0], "warp.x")
    with pytest.raises(ScheduleError, match="not a spatial leaf"):
        st.bind(st.reduce_axes[0], "threadIdx.x")
    st.bind(st.axes[0], "blockIdx.x")
    i = st.axes[0]
    assert st.annot[i] == "blockIdx.x"


def test_bound_and_vectorized_loops_emit_ids_and_vector_loads():
    import_tilecc()
    sch, x, y, emit_kernel, lower_stages = _elementwise_kernel()
    st = sch[y]
    n, c, w = st.axes
    wo, wi = st.split(w, 4)
    st.vectorize(wi)
    f = st.fuse(st.fuse(n, c), wo)
    bo, ti = st.split(f, 16)
    st.bind(bo, "blockIdx.x")
    st.bind(ti, "threadIdx.x")
    pf, bodies = lower_stages(sch, [x, y], "k")
    src, launch = emit_kernel("k", pf.params, bodies[0])
    assert "get_group_id(0)" in src and "get_local_id(0)" in src
    assert "vload4(0, arg0 +" in src and "vstore4(" in src
    assert "reqd_work_group_size(16, 1, 1)" in src
    assert launch.global_size == [64, 1, 1] and launch.local == [16, 1, 1]
    src16, _ = emit_kernel("k", pf.params, bodies[0], fp16_storage=True)
    # Half loads/stores through the fp16 macros (codegen/opencl_half.py preamble).
    assert "TL_LDV(4, 0, arg0 +" in src16 and "TL_STV(4, " in src16


def test_strided_vector_loop_falls_back_to_scalar():
    import_tilecc()
    from tilecc import te
    from tilecc.codegen.opencl import emit_kernel, lower_stages
    from tilecc.schedule import create_schedule

    x = te.placeholder((8, 8), "float32", "x")
    y = te.compute((8, 8), lambda i, j: x[j, i] + 1.0, name="y")  # transpose: stride 8 in j
    sch = create_schedule(y)
    st = sch[y]
    _, j = st.axes
    _, ji = st.split(j, 4)
    st.vectorize(ji)
    pf, bodies = lower_stages(sch, [x, y], "t")
    src, _ = emit_kernel("t", pf.params, bodies[0])
    assert "vload" not in src and "#pragma unroll" in src


def test_bound_loop_must_be_outermost():
    import_tilecc()
    from tilecc.codegen.opencl import OpenCLCodegenError
    sch, x, y, emit_kernel, lower_stages = _elementwise_kernel()
    st = sch[y]
    w = st.axes[-1]
    st.bind(w, "threadIdx.x")  # under the serial n, c loops: meaningless on a GPU
    pf, bodies = lower_stages(sch, [x, y], "k")
    with pytest.raises(OpenCLCodegenError, match="not outermost"):
        emit_kernel("k", pf.params, bodies[0])


def test_presets_carry_device_limits():
    import_tilecc()
    from tilecc.targets import get_target
    for name in ("opencl", "mali-g76", "mali-g610", "adreno-640", "adreno-740"):
        t = get_target(name)
        assert t.kind == "opencl" and t.family == "opencl"
        assert t.max_work_group_size >= 256 and t.local_mem_bytes >= 16 * 1024
        assert t.preferred_vector_width in (1, 2, 4, 8, 16) and t.compute_units >= 1
    assert get_target("mali-g76").fp16 and not get_target("opencl").fp16


def test_artifact_layout_and_plan(tmp_path):
    tilecc = import_tilecc()
    from tilecc.runtime.artifact import read_artifact
    art = tilecc.compile(builders.ds_cnn_kws(), target="adreno-640")
    art = read_artifact(art.save(tmp_path / "m.tar"))
    assert {"kernels.cl", "plan.json", "plan.txt", "params.bin"} <= set(art.files)
    assert "lib/model.so" not in art.files
    import json
    plan = json.loads(art.files["plan.json"])
    src = art.files["kernels.cl"].decode()
    limit = tilecc.targets.get_target("adreno-640").max_work_group_size
    for ln in plan["launches"]:
        assert f"void {ln['kernel']}(" in src
        assert int(np.prod(ln["local"])) <= limit
        assert all(g % n == 0 for g, n in zip(ln["global"], ln["local"]))
        for a in ln["args"]:
            assert a["buf"] in ("arena", "params", "input", "output") and a["offset"] >= 0
    # Every intermediate lives in the one planned arena, which reuses memory.
    assert 0 < plan["arena_bytes"] <= art.metadata["arena"]["naive_bytes"]


# ------------------------------------------------------------------ whole models on PoCL
def _light(name):
    path = LIGHT_DIR / f"light_{name}.onnx"
    if not path.exists():
        pytest.skip(f"{path} is not shipped with this onnx version")
    return path, light_inputs(onnx.load(str(path)))


@pytest.mark.parametrize("target", PRESETS)
@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in FAST_LIGHT] + [
    pytest.param(n, id=n, marks=pytest.mark.slow) for n in SLOW_LIGHT])
def test_light_model_on_opencl(name, target, tmp_path):
    path, feeds = _light(name)
    outs, _ = run_opencl(str(path), feeds, target, tmp_path)
    ref = ort_run(str(path), feeds)
    for k, r in ref.items():
        assert_close(outs[k], r)


@pytest.mark.parametrize("target", PRESETS)
@pytest.mark.parametrize("builder", [pytest.param("ds_cnn_kws", id="ds_cnn"),
                                     pytest.param("mobilenet_v2", id="mobilenet_v2",
                                                  marks=pytest.mark.slow)])
def test_builder_model_on_opencl(builder, target, tmp_path):
    model = getattr(builders, builder)()
    x = builders.random_inputs(model)
    outs, _ = run_opencl(model, x, target, tmp_path)
    for k, r in ort_run(model, x).items():
        assert_close(outs[k], r)


@pytest.mark.parametrize("target", ["mali-g610", "adreno-740"])
def test_fp16_storage_on_opencl(target, tmp_path):
    model = builders.ds_cnn_kws()
    x = builders.random_inputs(model)
    outs, art = run_opencl(model, x, target, tmp_path, precision="fp16")
    assert "vload_half" in art.files["kernels.cl"].decode()
    import json
    plan = json.loads(art.files["plan.json"])
    assert plan["precision"] == "fp16" and plan["inputs"][0]["storage"] == "float16"
    for k, r in ort_run(model, x).items():
        assert outs[k].dtype == np.float32
        assert_close(outs[k], r, rel=3e-2, allclose=False)


@pytest.mark.parametrize("target", PRESETS)
@pytest.mark.parametrize("size", [pytest.param((1, 16, 64, 2), id="small"),
                                  pytest.param((2, 128, 256, 4), id="full",
                                               marks=pytest.mark.slow)])
def test_bert_encoder_on_opencl(size, target, tmp_path):
    """The BERT-style encoder (int64 token ids and mask, Gelu, LayerNorm, attention)."""
    layers, seq, hidden, heads = size
    model = builders.bert_encoder(layers=layers, seq=seq, hidden=hidden, heads=heads)
    rng = np.random.default_rng(1)
    mask = np.ones((1, seq), np.int64)
    mask[0, seq * 3 // 4:] = 0
    feeds = {"input_ids": rng.integers(0, 1000, (1, seq)).astype(np.int64),
             "attention_mask": mask}
    outs, _ = run_opencl(model, feeds, target, tmp_path)
    for k, r in ort_run(model, feeds).items():
        assert_close(outs[k], r)

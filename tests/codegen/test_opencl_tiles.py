"""Local-memory tiling (compiler/topi/gpu_tile.py): which layers get `__local` tiles and
barriers on which preset, and that the tiled kernels compute what onnxruntime does on PoCL
(fp32: rtol 1e-4, atol 1e-5), ragged edges included."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.codegen.test_opencl import require_opencl
from tests.models import builders
from tests.models.harness import clang_opencl, import_tilecc, ort_run

PRESETS = ["mali-g76", "mali-g610", "adreno-640"]


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TILECC_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "oclcache"))


def _kernels(src: str) -> dict[str, str]:
    parts = src.split("__kernel ")[1:]
    return {re.search(r"void (\w+)\(", k).group(1): k for k in parts}


def _gemm_and_pointwise(m=70, k=50, n=100, c=24, hw=(9, 11), seed=0):
    """Gemm (ragged M, N, K against every tile size) and a 1x1 conv + Relu, unfused."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "w")
    cw = numpy_helper.from_array(rng.standard_normal((40, c, 1, 1)).astype(np.float32), "cw")
    cb = numpy_helper.from_array(rng.standard_normal(40).astype(np.float32), "cb")
    nodes = [helper.make_node("Gemm", ["a", "w"], ["y"]),
             helper.make_node("Conv", ["x", "cw", "cb"], ["z0"], kernel_shape=[1, 1]),
             helper.make_node("Relu", ["z0"], ["z"])]
    g = helper.make_graph(nodes, "t", [
        helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k]),
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, *hw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 40, *hw])], [w, cw, cb])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    feeds = {"a": rng.standard_normal((m, k)).astype(np.float32),
             "x": rng.standard_normal((1, c, *hw)).astype(np.float32)}
    return model, feeds


@pytest.mark.parametrize("target", PRESETS)
def test_tiled_kernels_match_onnxruntime(target, tmp_path):
    tilecc = import_tilecc()
    require_opencl()
    model, feeds = _gemm_and_pointwise()
    art = tilecc.compile(model, target=target, default_logs=False)
    ks = _kernels(art.files["kernels.cl"].decode())
    tiled = [n for n, k in ks.items() if "__local float a_tile" in k]
    assert any("gemm" in n for n in tiled) and any("conv" in n for n in tiled), list(ks)
    for n in tiled:
        assert ks[n].count("barrier(CLK_LOCAL_MEM_FENCE);") == 2
    out = tilecc.load(art.save(tmp_path / "m.tar")).run(feeds)
    for k, ref in ort_run(model, feeds).items():
        np.testing.assert_allclose(out[k], ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("target", PRESETS)
def test_tiles_follow_device_limits(target):
    """DS-CNN: its pointwise convs (64 x 64 channels over 125 pixels) are tiled, the stem and
    depthwise convs (windowed reductions) are not; a work-group fits the device and is a
    multiple of its subgroup, the tiles fit half the local memory. A device with too little
    local memory gets no tiles: the choice reads the preset's data."""
    tilecc = import_tilecc()
    from tilecc.targets import get_target
    t = get_target(target)
    art = tilecc.compile(builders.ds_cnn_kws(), target=t, default_logs=False)
    src = art.files["kernels.cl"].decode()
    clang_opencl(src, t.extensions)
    ks = _kernels(src)
    import json
    local = {ln["kernel"]: ln["local"][0] for ln in json.loads(art.files["plan.json"])["launches"]}
    tiled = {n for n, k in ks.items() if "__local" in k}
    pointwise = {k["kernel"] for k in art.metadata["kernels"]
                 if k["ops"][0] == "Conv" and list(k["types"].values())[1].endswith(",1,1]")}
    assert pointwise and tiled == pointwise
    for n in tiled:
        sizes = [int(s) for s in re.findall(r"__local float \w+\[(\d+)\]", ks[n])]
        assert sum(sizes) * 4 <= t.local_mem_bytes // 2
        assert local[n] <= t.max_work_group_size and local[n] % t.subgroup_size == 0
    small = dataclasses.replace(t, local_mem_bytes=2048)
    src = tilecc.compile(builders.ds_cnn_kws(), target=small,
                         default_logs=False).files["kernels.cl"].decode()
    assert "__local" not in src and "barrier(" not in src

"""Profiling builds, the C entry's argument checks, the memory plan in model.json and the
graph pictures / ONNX export."""

from __future__ import annotations

import ctypes
import xml.etree.ElementTree as ET

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tilecc
from tilecc.build import build
from tilecc.cli import main
from tilecc.runtime.artifact import read_artifact

M, K, N = 4, 32, 16


def _model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((K, N)).astype(np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
             helper.make_node("Relu", ["m"], ["r"], name="relu"),
             helper.make_node("Reshape", ["r", "shape"], ["t"], name="reshape"),
             helper.make_node("Softmax", ["t"], ["y"], name="softmax", axis=-1)]
    shape = numpy_helper.from_array(np.array([M * 2, N // 2], np.int64), "shape")
    g = helper.make_graph(nodes, "prof", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                        [M, K])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [w, shape])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


@pytest.fixture(scope="module")
def prof_tar(tmp_path_factory):
    path = tmp_path_factory.mktemp("prof") / "p.tar"
    build(_model(), profile=True).save(path)
    return path


def test_profile_table(prof_tar):
    mod = tilecc.load(prof_tar, num_threads=1)
    x = {"x": np.ones((M, K), np.float32)}
    rows = mod.profile(x, runs=3)
    kernels = mod.metadata["kernels"]
    assert [r["kernel"] for r in rows] == [k["kernel"] for k in kernels]
    assert rows[0]["ops"] == ["MatMul", "Relu"]
    assert all(r["time_ms"] > 0 for r in rows)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0, abs=1e-9)
    # FLOPs from the TE: 2*M*N*K for the MatMul plus one per Relu output element.
    assert kernels[0]["flops"] == 2 * M * N * K + M * N
    # A profiling build computes the same numbers as a plain one.
    plain = tilecc.compile(_model())
    np.testing.assert_array_equal(mod.run(x)["y"], _run_artifact(plain, x)["y"])


def _run_artifact(art, x, tmp=[]):  # noqa: B006 - one temp dir for the module is enough
    import tempfile
    from pathlib import Path

    if not tmp:
        tmp.append(tempfile.mkdtemp())
    path = art.save(Path(tmp[0]) / "plain.tar")
    return tilecc.load(path).run(x)


def test_cli_profile(prof_tar, capsys):
    assert main(["run", str(prof_tar), "--profile", "--runs", "2"]) == 0
    out = capsys.readouterr().out
    assert "kernel" in out and "GFLOP/s" in out and "MatMul+Relu" in out
    assert "total" in out


def test_c_entry_rejects_null_pointers(prof_tar):
    mod = tilecc.load(prof_tar)
    lib = mod._lib
    ins, outs, ws = mod._in_ptrs, mod._out_ptrs, mod._ws_ptr
    null1 = (ctypes.c_void_p * 1)(None)
    assert lib.run(None, outs, ws) == 3
    assert lib.run(null1, outs, ws) == 3
    assert lib.run(ins, None, ws) == 4
    assert lib.run(ins, null1, ws) == 4
    if mod.metadata["workspace_size"]:
        assert lib.run(ins, outs, None) == 5
    assert lib.init(None, mod.metadata["params_size"]) == 6
    assert lib.init(mod._params.ctypes.data, mod.metadata["params_size"] + 1) == 1
    lib.init(mod._params.ctypes.data, mod.metadata["params_size"])
    assert lib.run(ins, outs, ws) == 0


def test_memory_plan_recorded_and_sound(prof_tar):
    meta = read_artifact(prof_tar).metadata
    tensors = meta["arena"]["tensors"]
    assert tensors and all(t["offset"] + t["nbytes"] <= meta["workspace_size"] for t in tensors)
    # Buffers alive at the same step never share bytes.
    for i, a in enumerate(tensors):
        for b in tensors[i + 1:]:
            if a["first"] <= b["last"] and b["first"] <= a["last"]:
                assert a["offset"] + a["nbytes"] <= b["offset"] or \
                    b["offset"] + b["nbytes"] <= a["offset"], (a, b)


def test_graph_outputs(prof_tar, tmp_path):
    for suffix in ("html", "svg", "dot"):
        out = tmp_path / f"g.{suffix}"
        assert main(["inspect", str(prof_tar), "--graph", str(out)]) == 0
        text = out.read_text()
        assert "MatMul" in text and "Softmax" in text and "float32[8,8]" in text
        if suffix == "svg":
            ET.fromstring(text)
        if suffix == "html":
            assert "<svg" in text and "http://" not in text.replace(
                'xmlns="http://www.w3.org/2000/svg"', "")  # self-contained: no network
        if suffix == "dot":
            assert "subgraph cluster_0" in text


def test_export_onnx(prof_tar, tmp_path):
    out = tmp_path / "opt.onnx"
    assert main(["inspect", str(prof_tar), "--export-onnx", str(out)]) == 0
    m = onnx.load(str(out))
    onnx.checker.check_model(m)
    fused = [n for n in m.graph.node if n.domain == "tilecc" and n.op_type != "Alias"]
    assert fused[0].op_type == "MatMul_Relu"
    ops = next(a for a in fused[0].attribute if a.name == "ops")
    assert [s.decode() for s in ops.strings] == ["MatMul", "Relu"]
    assert [o.name for o in m.graph.output] == ["y"]
    w = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    assert any(a.shape == (K, N) or a.size == K * N for a in w.values())

"""int8 kernels on AVX-512 VNNI: QConv/QGemm use `vpdpbusd` (u8 x s8 -> i32 dot products of
four reduction elements) when the target has it, and give exactly the integer kernels'
results: the int32 accumulation is exact in both, and the requantization epilogue is the same
code, so outputs are compared for bit equality (not a tolerance)."""

from __future__ import annotations

import dataclasses
import subprocess
import tarfile

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import tilecc
from tests.models.builders import resnet_block_model
from tilecc.codegen.dot_intrinsics import target_has_vnni
from tilecc.runtime.artifact import LIB_PATH
from tilecc.targets.target import get_target

HOST = get_target("host")
pytestmark = pytest.mark.skipif(not target_has_vnni(HOST), reason="host has no AVX-512 VNNI")


def _no_vnni(t):
    feats = ",".join(f for f in t.features.split(",") if "vnni" not in f)
    return dataclasses.replace(t, features=feats + ",-avx512vnni,-avxvnni")


def _vpdpbusd_count(path) -> int:
    with tarfile.open(path) as tf:
        lib = tf.extractfile(LIB_PATH).read()
    so = path.parent / (path.stem + ".so")
    so.write_bytes(lib)
    asm = subprocess.run(["objdump", "-d", str(so)], capture_output=True, text=True,
                         check=True).stdout
    return asm.count("vpdpbusd")


def _run(art, path, feeds):
    art.save(path)
    return next(iter(tilecc.load(path).run(feeds).values())), _vpdpbusd_count(path)


def test_ptq_resnet_block_vnni_matches_integer_kernels(tmp_path):
    model = resnet_block_model()  # 3x3 (stride 1 and 2), 1x1 projection, Gemm
    name = model.graph.input[0].name
    rng = np.random.default_rng(0)
    cal = [{name: rng.standard_normal((1, 3, 32, 32)).astype(np.float32)} for _ in range(4)]
    x = {name: rng.standard_normal((1, 3, 32, 32)).astype(np.float32)}
    art = tilecc.compile(model, quantize="int8", calibration=cal)
    kernels = art.metadata["kernels"]
    assert any("QConv" in k["ops"] for k in kernels) and any("QGemm" in k["ops"] for k in kernels)
    out, n_vnni = _run(art, tmp_path / "vnni.tar", x)
    ref_art = tilecc.compile(model, target=_no_vnni(HOST), quantize="int8", calibration=cal)
    ref, n_ref = _run(ref_art, tmp_path / "ref.tar", x)
    print(f"\nvpdpbusd instructions: VNNI build {n_vnni}, without VNNI {n_ref}")
    assert n_vnni > 0 and n_ref == 0
    np.testing.assert_array_equal(out, ref)


def _qlinearconv_model(ic, oc, k, stride, pad, hw, seed):
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, (oc, ic, k, k)).astype(np.int8)
    inits = [numpy_helper.from_array(np.array(0.02, np.float32), "xs"),
             numpy_helper.from_array(np.array(131, np.uint8), "xz"),
             numpy_helper.from_array(w, "w"),
             numpy_helper.from_array(rng.uniform(0.001, 0.01, oc).astype(np.float32), "ws"),
             numpy_helper.from_array(np.zeros(oc, np.int8), "wz"),
             numpy_helper.from_array(np.array(0.25 * np.sqrt(ic * k * k), np.float32), "ys"),
             numpy_helper.from_array(np.array(120, np.uint8), "yz"),
             numpy_helper.from_array(rng.integers(-5000, 5000, oc).astype(np.int32), "b")]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                            ["y"], kernel_shape=[k, k], strides=[stride, stride],
                            pads=[pad] * 4)
    g = helper.make_graph([node], "qconv",
                          [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, ic, hw, hw])],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


# Channel counts that are not multiples of 4 (input) or 16 (output) exercise the zero padding.
@pytest.mark.parametrize("ic,oc,k,stride,pad,hw", [
    (3, 16, 3, 1, 1, 9), (13, 20, 3, 2, 1, 11), (64, 64, 1, 1, 0, 7), (6, 35, 1, 2, 0, 8),
    (32, 48, 5, 1, 2, 6)])
def test_qlinearconv_vnni_vs_onnxruntime(tmp_path, ic, oc, k, stride, pad, hw):
    ort = pytest.importorskip("onnxruntime")
    model = _qlinearconv_model(ic, oc, k, stride, pad, hw, seed=ic * oc)
    x = np.random.default_rng(1).integers(0, 256, (1, ic, hw, hw)).astype(np.uint8)
    ref = ort.InferenceSession(model.SerializeToString(),
                               providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    out, n = _run(tilecc.compile(model), tmp_path / "c.tar", {"x": x})
    assert n > 0
    # onnxruntime requantizes in float32 (scale multiply, round half to even) like tilecc and
    # both accumulate exactly in int32, so the outputs are identical.
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("m,k,n", [(1, 512, 1000), (5, 30, 17), (8, 64, 64)])
def test_qlinearmatmul_vnni_exact(tmp_path, m, k, n):
    rng = np.random.default_rng(m * k * n)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "as"),
             numpy_helper.from_array(np.array(100, np.uint8), "az"),
             numpy_helper.from_array(b, "b"),
             numpy_helper.from_array(np.array(0.01, np.float32), "bs"),
             numpy_helper.from_array(np.array(0, np.int8), "bz"),
             numpy_helper.from_array(np.array(0.05 * 0.01 * 40 * np.sqrt(k), np.float32), "ys"),
             numpy_helper.from_array(np.array(128, np.uint8), "yz")]
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"],
                            ["y"])
    g = helper.make_graph([node], "qmm",
                          [helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k])],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    a = rng.integers(0, 256, (m, k)).astype(np.uint8)
    out, n_vnni = _run(tilecc.compile(model), tmp_path / "m.tar", {"a": a})
    ref, n_ref = _run(tilecc.compile(model, target=_no_vnni(HOST)), tmp_path / "r.tar", {"a": a})
    assert n_vnni > 0 and n_ref == 0
    np.testing.assert_array_equal(out, ref)
    # numpy: exact int32 accumulation, float32 requantization, round half to even.
    acc = (a.astype(np.int64) - 100) @ b.astype(np.int64)
    scale = np.float32(0.05) * np.float32(0.01) / np.float32(0.05 * 0.01 * 40 * np.sqrt(k))
    want = np.clip(np.rint(acc.astype(np.float32) * scale) + 128, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(out, want)


def test_qdq_model_on_aarch64_under_qemu(tmp_path):
    """Targets without VNNI keep the widening kernels (and still build and run)."""
    import shutil

    from tilecc.runtime.crunner import EmulatedModule
    if shutil.which("qemu-aarch64") is None:
        pytest.skip("qemu-aarch64 not installed")
    model = _qlinearconv_model(13, 20, 3, 2, 1, 11, seed=5)
    x = np.random.default_rng(2).integers(0, 256, (1, 13, 11, 11)).astype(np.uint8)
    host, _ = _run(tilecc.compile(model), tmp_path / "h.tar", {"x": x})
    art = tilecc.compile(model, target="aarch64")
    assert not any(k.get("attrs", {}).get("vnni") for k in art.metadata["kernels"])
    art.save(tmp_path / "a.tar")
    out = next(iter(EmulatedModule(tmp_path / "a.tar").run({"x": x}).values()))
    np.testing.assert_array_equal(out, host)


def test_vnni_weight_packing_roundtrip():
    from tilecc.passes.quant_pack import (
        vnni_pack_conv,
        vnni_pack_gemm,
        vnni_unpack_conv,
        vnni_unpack_gemm,
    )
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, (20, 7, 3, 3)).astype(np.int8)
    p = vnni_pack_conv(w, 16)
    assert p.shape == (2, 2, 3, 3, 16) and p.dtype == np.int32
    np.testing.assert_array_equal(vnni_unpack_conv(p, 20, 7), w)
    # byte k of word (o, c4, y, x, lane) is channel 4*c4+k of output channel 16*o+lane
    assert p[1, 1, 2, 0, 3].tobytes()[2] == np.uint8(w[19, 6, 2, 0].view(np.uint8))
    b = rng.integers(-128, 128, (30, 17)).astype(np.int8)
    np.testing.assert_array_equal(vnni_unpack_gemm(vnni_pack_gemm(b, 16), 30, 17), b)

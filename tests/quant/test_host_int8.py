"""Host int8 kernels and the int8 graph: the 7-bit-weight `pmaddubsw` dot product (exact, so
compared for equality with onnxruntime's QLinear ops), depthwise QDWConv, uint8 values passed
straight between integer kernels (no dequantize -> quantize between them), Relu6 folded into
the requantization clamp, and PTQ accuracy per model against onnxruntime fp32."""

from __future__ import annotations

import subprocess
import tarfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tilecc
from tests.models import builders
from tests.models.harness import ort_run
from tilecc.codegen.dot_intrinsics import target_has_dot4_s7, target_has_vnni
from tilecc.passes.quant_dot import S7, weight_limit
from tilecc.runtime.artifact import LIB_PATH
from tilecc.targets.target import get_target

HOST = get_target("host")
NARROW = target_has_dot4_s7(HOST) and not target_has_vnni(HOST)
# The pmaddubsw kernels (x86 without VNNI), built for the host or, on a VNNI host that can run
# AVX2 code, for the x86-64-avx2 preset: they run here either way.
PMADD = "host" if NARROW else ("x86-64-avx2" if "+avx2" in HOST.features.split(",") else None)
DATA = tilecc.__file__.rsplit("/", 1)[0] + "/data"


def _asm(path) -> str:
    with tarfile.open(path) as tf:
        lib = tf.extractfile(LIB_PATH).read()
    so = path.parent / (path.stem + ".so")
    so.write_bytes(lib)
    return subprocess.run(["objdump", "-d", str(so)], capture_output=True, text=True,
                          check=True).stdout


def _load(art, path):
    art.save(path)
    return tilecc.load(path)


def _cos(a, b) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _qlinearconv(ic, oc, k, stride, pad, hw, group, w):
    rng = np.random.default_rng(ic + oc)
    inits = [numpy_helper.from_array(np.array(0.02, np.float32), "xs"),
             numpy_helper.from_array(np.array(131, np.uint8), "xz"),
             numpy_helper.from_array(w, "w"),
             numpy_helper.from_array(rng.uniform(0.001, 0.01, oc).astype(np.float32), "ws"),
             numpy_helper.from_array(np.zeros(oc, np.int8), "wz"),
             numpy_helper.from_array(np.array(0.1 * np.sqrt(w[0].size), np.float32), "ys"),
             numpy_helper.from_array(np.array(120, np.uint8), "yz"),
             numpy_helper.from_array(rng.integers(-5000, 5000, oc).astype(np.int32), "b")]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                            ["y"], kernel_shape=[k, k], strides=[stride, stride],
                            pads=[pad] * 4, group=group)
    g = helper.make_graph([node], "qconv",
                          [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, ic, hw, hw])],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _vs_onnxruntime(model, x, tmp_path, target="host"):
    ort = pytest.importorskip("onnxruntime")
    ref = ort.InferenceSession(model.SerializeToString(),
                               providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    art = tilecc.compile(model, target=target)
    out = next(iter(_load(art, tmp_path / "m.tar").run({"x": x}).values()))
    np.testing.assert_array_equal(out, ref)
    return art


@pytest.mark.skipif(PMADD is None, reason="host has no AVX2: no pmaddubsw dot product")
@pytest.mark.parametrize("ic,oc,k,stride,pad,hw,extreme", [
    (13, 20, 3, 2, 1, 11, False), (64, 40, 1, 1, 0, 7, False), (8, 16, 3, 1, 1, 6, True),
    (16, 24, 1, 1, 0, 8, False), (8, 16, 1, 1, 0, 8, True)])  # 1x1 on 64 pixels: pixel lanes
def test_s7_dot_product_exact_vs_onnxruntime(tmp_path, ic, oc, k, stride, pad, hw, extreme):
    """Weights within [-64, 64] take pmaddubsw; `extreme` puts every pair at the int16 limit
    (x = 255, w = +-64 -> 2 * 255 * 64 = 32640) where any wider weight would saturate."""
    rng = np.random.default_rng(ic * oc)
    if extreme:
        w = np.where(rng.random((oc, ic, k, k)) < 0.5, -S7, S7).astype(np.int8)
        w[: oc // 2] = S7
        x = np.full((1, ic, hw, hw), 255, np.uint8)
    else:
        w = rng.integers(-S7, S7 + 1, (oc, ic, k, k)).astype(np.int8)
        x = rng.integers(0, 256, (1, ic, hw, hw)).astype(np.uint8)
    art = _vs_onnxruntime(_qlinearconv(ic, oc, k, stride, pad, hw, 1, w), x, tmp_path, PMADD)
    assert any(k.get("attrs", {}).get("dot") == "dot4_u8s7" for k in art.metadata["kernels"]) \
        or "vpmaddubsw" in _asm(tmp_path / "m.tar")
    assert "vpmaddubsw" in _asm(tmp_path / "m.tar")


def _qlinearconv_numpy(model, x):
    """QLinearConv in numpy: exact int64 accumulation, float32 requantization, half to even."""
    from tilecc.ops.nn import conv2d

    p = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    a = {at.name: helper.get_attribute_value(at) for at in model.graph.node[0].attribute}
    pad = a["pads"][0]
    xp = np.pad(x.astype(np.float64) - p["xz"], ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    acc = conv2d(xp, p["w"].astype(np.float64), None, a["strides"], (0, 0, 0, 0), (1, 1),
                 a.get("group", 1))
    acc = np.rint(acc).astype(np.int64) + p["b"].reshape(1, -1, 1, 1)
    scale = (np.float32(p["xs"]) * p["ws"] / np.float32(p["ys"])).astype(np.float32)
    y = np.rint(acc.astype(np.float32) * scale.reshape(1, -1, 1, 1)) + np.float32(p["yz"])
    return np.clip(y, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("extreme", [False, True])
def test_full_range_weights_exact(tmp_path, extreme):
    """A QDQ model's 8-bit weights (|w| up to 128) would saturate one pmaddubsw: without VNNI
    they take the split-activation pair of pmaddubsw (still vpmaddubsw in the code) and equal
    numpy's exact QLinearConv, also with every pair at its limit (x = 255, w = -128 or 127).
    (Not onnxruntime: on AVX2 without VNNI its u8 x s8 kernel is one pmaddubsw and saturates
    on such weights; seen on Zen 3.)"""
    rng = np.random.default_rng(3)
    if extreme:
        w = np.where(rng.random((16, 8, 3, 3)) < 0.5, -128, 127).astype(np.int8)
        x = np.full((1, 8, 9, 9), 255, np.uint8)
    else:
        w = rng.integers(-128, 128, (16, 8, 3, 3)).astype(np.int8)
        x = rng.integers(0, 256, (1, 8, 9, 9)).astype(np.uint8)
    model = _qlinearconv(8, 16, 3, 1, 1, 9, 1, w)
    for target in dict.fromkeys(["host", PMADD or "host"]):
        art = tilecc.compile(model, target=target)
        out = next(iter(_load(art, tmp_path / "m.tar").run({"x": x}).values()))
        np.testing.assert_array_equal(out, _qlinearconv_numpy(model, x), err_msg=target)
        if target == PMADD:
            assert "vpmaddubsw" in _asm(tmp_path / "m.tar")


@pytest.mark.parametrize("c,k,stride,pad,hw", [(16, 3, 1, 1, 9), (24, 3, 2, 1, 10),
                                                (8, 5, 1, 2, 7), (12, 3, 1, 0, 6)])
def test_depthwise_qdwconv_vs_onnxruntime(tmp_path, c, k, stride, pad, hw):
    rng = np.random.default_rng(c * k)
    w = rng.integers(-128, 128, (c, 1, k, k)).astype(np.int8)
    x = rng.integers(0, 256, (1, c, hw, hw)).astype(np.uint8)
    art = _vs_onnxruntime(_qlinearconv(c, c, k, stride, pad, hw, c, w), x, tmp_path)
    assert art.metadata["kernels"][0]["ops"] == ["QDWConv"]


def test_ptq_weight_range_is_the_users_not_the_targets():
    assert weight_limit() == 127 and weight_limit(reduce_range=True) == S7


def _calib(model, n=8, seed=100):
    return [builders.random_inputs(model, seed=seed + k) for k in range(n)]


INT8_KERNELS = ("QConv", "QDWConv", "QGemm")
QDQ_OPS = {"Div", "Round", "Add", "Clip", "Cast", "Sub", "Mul"}


def _int8_edges(art):
    """(producer kernel, consumer kernel, dtype) for values passed between integer kernels,
    and the kernels made only of quantize/dequantize arithmetic sitting between two of them."""
    ks = art.metadata["kernels"]
    made = {o: k for k in ks for o in k["outputs"]}
    edges, between = [], []
    for k in ks:
        if k["ops"][0] not in INT8_KERNELS:
            continue
        src = made.get(k["inputs"][0])
        if src is None:
            continue
        if src["ops"][0] in INT8_KERNELS:
            edges.append((src["kernel"], k["kernel"], src["types"][k["inputs"][0]]))
        elif set(src["ops"]) <= QDQ_OPS:
            up = made.get(src["inputs"][0])
            if up is not None and up["ops"][0] in INT8_KERNELS:
                between.append((up["kernel"], src["ops"], k["kernel"]))
    return edges, between


@pytest.mark.parametrize("depthwise", [True, None])
@pytest.mark.parametrize("name", ["ds_cnn_kws", "mobilenet_tiny"])
def test_bundled_int8_graph_passes_uint8_between_kernels(name, depthwise):
    """depthwise=True: every conv int8 (QDWConv too); None (the CPU default): depthwise convs
    stay blocked fp32 and the quantize of their output fuses into their kernel."""
    from tilecc.build import build
    from tilecc.passes.quantize import QuantOptions

    model = onnx.load(f"{DATA}/{name}.onnx")
    art = build(model, quant=QuantOptions(calibration=_calib(model, 2), depthwise=depthwise))
    edges, between = _int8_edges(art)
    ops = [k["ops"] for k in art.metadata["kernels"]]
    print(f"\n{name} depthwise={depthwise}: {len(edges)} int8 -> int8 kernel edges, "
          f"{len(between)} via float")
    assert all("uint8" in t for *_, t in edges), edges
    if depthwise:
        assert edges and any(o[0] == "QDWConv" for o in ops)
    else:
        assert not any(o[0] == "QDWConv" for o in ops)
        assert any(o[0] == "ConvNCHWc" and o[-1] == "Cast" for o in ops), ops
    # A value read only by integer kernels never goes float and back.
    ks = {k["kernel"]: k for k in art.metadata["kernels"]}
    for up, ops, down in between:
        out = next(o for o in ks[up]["outputs"])
        readers = [k for k in art.metadata["kernels"] if out in k["inputs"]]
        assert any(r["ops"][0] not in INT8_KERNELS for r in readers), (up, ops, down)


def test_relu6_folds_into_the_requant_clamp(tmp_path):
    """Conv -> Clip(0, 6) -> Conv: the Clip disappears into the first QConv's uint8 epilogue."""
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((16, 8, 3, 3)).astype(np.float32) * 0.3
    w2 = rng.standard_normal((8, 16, 1, 1)).astype(np.float32) * 0.3
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["a", "lo", "hi"], ["r"]),
             helper.make_node("Conv", ["r", "w2"], ["y"])]
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"),
             numpy_helper.from_array(np.array(0, np.float32), "lo"),
             numpy_helper.from_array(np.array(6, np.float32), "hi")]
    g = helper.make_graph(nodes, "relu6",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 10, 10])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    calib = [{"x": rng.standard_normal((1, 8, 10, 10)).astype(np.float32) * 2} for _ in range(8)]
    art = tilecc.compile(model, quantize="int8", calibration=calib)
    ops = [k["ops"] for k in art.metadata["kernels"]]
    assert not any("Clip" in o and o[0] in INT8_KERNELS for o in ops), ops
    edges, _ = _int8_edges(art)
    assert edges and all(t.startswith("uint8") for *_, t in edges), edges
    x = calib[0]
    got = _load(art, tmp_path / "m.tar").run(x)["y"]
    assert _cos(got, ort_run(model, x)["y"]) >= 0.999


CNNS = {"ds_cnn_kws": lambda: onnx.load(f"{DATA}/ds_cnn_kws.onnx"),
        "mobilenet_tiny": lambda: onnx.load(f"{DATA}/mobilenet_tiny.onnx"),
        "resnet_block": builders.resnet_block_model,
        "mobilenet_block": builders.mobilenet_block_model}


@pytest.mark.parametrize("name", sorted(CNNS))
def test_cnn_int8_cosine_vs_onnxruntime_fp32(tmp_path, name):
    """On calibration-like data (the same random distribution, other seeds): cosine >= 0.99."""
    model = CNNS[name]()
    art = tilecc.compile(model, quantize="int8", calibration=_calib(model))
    mod = _load(art, tmp_path / "m.tar")
    cos = []
    for s in range(3):
        x = builders.random_inputs(model, seed=s)
        ref = next(iter(ort_run(model, x).values()))
        cos.append(_cos(next(iter(mod.run(x).values())), ref))
    print(f"\n{name}: int8 vs onnxruntime fp32 cosine {min(cos):.6f}")
    assert min(cos) >= 0.99


def _encoder_with_outliers(layers=2, seq=32, hidden=128, heads=4):
    """bert_encoder with outlier channels in every LayerNorm but the last (gamma x 60 on a few
    channels, as in trained BERTs), so per-tensor activation scales are stretched."""
    model = builders.bert_encoder(layers=layers, seq=seq, hidden=hidden, heads=heads)
    lns = [k for k, t in enumerate(model.graph.initializer) if t.name.startswith("ln_gamma")]
    for k in lns[:-1]:
        t = model.graph.initializer[k]
        a = numpy_helper.to_array(t).copy()
        a[[3, 77 % hidden]] *= 60.0
        a[[5, 9]] *= -60.0
        t.CopyFrom(numpy_helper.from_array(a, t.name))
    return model


def _ids(seq, seed):
    r = np.random.default_rng(seed)
    mask = np.ones((1, seq), np.int64)
    mask[0, int(r.integers(seq // 2, seq)):] = 0
    return {"input_ids": r.integers(0, 1000, (1, seq)).astype(np.int64), "attention_mask": mask}


@pytest.mark.parametrize("outliers", [False, True])
def test_encoder_int8_cosine(tmp_path, outliers):
    """MiniLM-class encoder: Gemms int8 (per-channel weights), QK^T / attention x V and
    Softmax/LayerNorm/Gelu float: cosine >= 0.995 vs onnxruntime fp32."""
    model = _encoder_with_outliers() if outliers else builders.bert_encoder(
        layers=2, seq=32, hidden=128, heads=4)
    art = tilecc.compile(model, quantize="int8", calibration=[_ids(32, s) for s in range(8)])
    kinds = {op for k in art.metadata["kernels"] for op in k["ops"]}
    assert "QGemm" in kinds
    mod = _load(art, tmp_path / "m.tar")
    cos = [_cos(mod.run(f)["last_hidden_state"], ort_run(model, f)["last_hidden_state"])
           for f in (_ids(32, 100 + s) for s in range(3))]
    print(f"\nencoder (outliers={outliers}): int8 cosine {min(cos):.6f}")
    assert min(cos) >= 0.995

"""int8 kernels on ARM and RISC-V: each preset's QConv/QGemm kernels use its integer dot
product or widening multiply-accumulate instructions (codegen/dot_intrinsics.py), and the
cross artifact, run under qemu-user, gives the host int8 artifact's results for the same
calibration. Every quantized layer is compared for bit equality (the int32 accumulation is
exact on every path and the requantization epilogue is the same float32 code); the model
output, a float Softmax, within cosine 0.999 (ARMv7 NEON's float arithmetic is not IEEE for
denormals, so it may differ in the last bits there)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.codegen.test_cross import kernels_disassembly, wide_vector_ops
from tests.models.builders import ds_cnn_kws, mobilenet_v2, random_inputs, resnet18
from tests.models.harness import import_tilecc
from tests.quant.test_vnni import _qlinearconv_model
from tests.targets.crosstools import need_tools

SDOT, USDOT = r"\bsdot\s+v\d+\.4s", r"\busdot\s+v\d+\.4s"
SMLAL, VMLAL = r"\bsmlal2?\s+v\d+\.4s", r"\bvmlal\.s16\s+q"
VWMACC = r"\bvwmacc(su|u|us)?\.v[vx]|\bvwmul(su|u)?\.v[vx]"


def _expected(t) -> tuple[str, bool]:
    """The instruction a preset's dense int8 kernels (group-1 QConv, QGemm) must use, and
    whether their weights are packed in dot4 words (attrs vnni): by features, as the
    compiler decides."""
    f = t.features.split(",")
    if t.triple.startswith("aarch64"):
        if "+i8mm" in f:
            return USDOT, True  # u8 x s8 as they are
        return (SDOT, True) if "+dotprod" in f else (SMLAL, False)  # sdot: x XOR 0x80
    return (VMLAL, False) if t.triple.startswith("arm") else (VWMACC, False)


def _vector_presets() -> list[str]:
    from tilecc.targets.target import PRESETS

    return sorted(n for n, t in PRESETS.items() if t.kind == "cpu" and not t.bare_metal and (
        (t.family == "arm" and "+neon" in t.features.split(",")) or
        (t.family == "riscv" and "+v" in t.features.split(","))))


# Under qemu: one preset per kind of int8 kernel.
EMULATED = ["aarch64", "cortex-a7", "cortex-a710", "cortex-a76", "riscv64-rvv"]


def _calibration(model, n=2):
    return [random_inputs(model, seed=100 + i) for i in range(n)]


def _int8_kernels(art):
    """kernel name -> attrs of its QConv/QGemm (from the workload key)."""
    out = {}
    for k in art.metadata["kernels"]:
        if {"QConv", "QGemm"} & set(k["ops"]):
            out[k["kernel"]] = json.loads(k["workload"])["attrs"]
    return out


@pytest.mark.parametrize("target", _vector_presets())
def test_int8_kernels_use_dot_or_widening_mac(target, tmp_path):
    tilecc = import_tilecc()
    from tilecc.targets import get_target

    t = get_target(target)
    need_tools(t.objdump, t.linker)
    model = ds_cnn_kws()
    art = tilecc.compile(model, target=t, quantize="int8", calibration=_calibration(model))
    obj = tmp_path / "model.o"
    obj.write_bytes(art.files["lib/model.o"])
    funcs = kernels_disassembly(t.objdump, obj)
    kernels = _int8_kernels(art)
    pattern, packed = _expected(t)
    dense = {k: a for k, a in kernels.items() if a.get("group", 1) == 1}
    assert any("qgemm" in k for k in dense) and any("qconv" in k for k in dense)
    for name, attrs in sorted(kernels.items()):
        body = "".join(code for f, code in funcs.items() if f == name or f.startswith(name + "_"))
        assert body, f"no code for {name} among {sorted(funcs)}"
        hits = len(re.findall(pattern, body))
        print(f"{target} {name} (group {attrs.get('group', 1)}): {pattern!r} x{hits}")
        if name in dense:
            assert bool(attrs.get("vnni")) == packed, attrs
            assert hits > 0, f"{target} {name} lacks {pattern!r}"
    if t.family == "riscv":  # LMUL=1 on RVV presets (targets/target.py explains)
        bad = wide_vector_ops(funcs, t.vector_bits)
        assert not bad, "vector ops wider than one register:\n" + "\n".join(bad[:10])


def _cosine(a, b) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


_HOST: dict = {}


def _host_outputs(name, model, cal, feeds, tmp_path):
    """The host int8 artifact's outputs (every quantized layer exposed), once per model."""
    if name not in _HOST:
        tilecc = import_tilecc()
        art = tilecc.compile(model, quantize="int8", calibration=cal, expose_intermediates=True)
        art.save(tmp_path / "host.tar")
        _HOST[name] = tilecc.load(tmp_path / "host.tar").run(feeds)
    return _HOST[name]


def _check_vs_host(target, name, model, tmp_path):
    tilecc = import_tilecc()
    from tilecc.runtime.crunner import EmulatedModule
    from tilecc.targets import get_target

    t = get_target(target)
    need_tools(t.linker, *t.qemu[:1])
    cal, feeds = _calibration(model), random_inputs(model, seed=7)
    ref = _host_outputs(name, model, cal, feeds, tmp_path)
    art = tilecc.compile(model, target=t, quantize="int8", calibration=cal,
                         expose_intermediates=True)
    art.save(tmp_path / "cross.tar")
    out = EmulatedModule(tmp_path / "cross.tar").run(feeds)
    final = model.graph.output[0].name
    cos = _cosine(out[final], ref[final])
    err = float(np.abs(out[final] - ref[final]).max())
    layers = [k for k in ref if k != final]
    differ = [k for k in layers if not np.array_equal(out[k], ref[k])]
    print(f"{target} {name}: cosine {cos:.9f}, max abs error {err:.3g}; "
          f"{len(layers) - len(differ)}/{len(layers)} quantized layers bit-exact")
    assert cos >= 0.999
    assert not differ, f"layers differing from the host int8 build: {differ}"


@pytest.mark.parametrize("target", EMULATED)
def test_ds_cnn_int8_under_qemu_matches_host(target, tmp_path):
    _check_vs_host(target, "ds_cnn_kws", ds_cnn_kws(), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("target", EMULATED)
@pytest.mark.parametrize("name,build", [("mobilenet_v2", mobilenet_v2), ("resnet18", resnet18)])
def test_large_int8_under_qemu_matches_host(target, name, build, tmp_path):
    _check_vs_host(target, name, build(), tmp_path)


def _qlinearconv_numpy(model, x, k, stride, pad):
    """QLinearConv in numpy: exact int64 accumulation, float32 requantization (one combined
    scale), round half to even. (onnxruntime is not the reference here: on hosts without
    VNNI its u8 x s8 kernels saturate pairs of products in int16 and differ by a few units.)"""
    from onnx import numpy_helper

    p = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    w = p["w"].astype(np.int64)
    xp = np.pad(x.astype(np.int64) - int(p["xz"]), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (x.shape[2] + 2 * pad - k) // stride + 1
    acc = np.zeros((1, w.shape[0], oh, oh), np.int64)
    for ky in range(k):
        for kx in range(k):
            win = xp[:, :, ky:ky + stride * oh:stride, kx:kx + stride * oh:stride]
            acc += np.einsum("nchw,oc->nohw", win, w[:, :, ky, kx])
    acc += p["b"].reshape(1, -1, 1, 1)
    scale = (np.float32(p["xs"]) * p["ws"].astype(np.float32) / np.float32(p["ys"]))
    y = np.rint(acc.astype(np.float32) * scale.reshape(1, -1, 1, 1)) + np.float32(p["yz"])
    return np.clip(y, 0, 255).astype(np.uint8)


# Input channels not a multiple of 4 and output channels not a multiple of 4 or 16 exercise
# the zero padding of the packed words; x_zp 131 makes the XOR-0x80 bias fold matter.
@pytest.mark.parametrize("target", EMULATED)
@pytest.mark.parametrize("ic,oc,k,stride,pad,hw", [(13, 20, 3, 2, 1, 11), (6, 35, 1, 2, 0, 8)])
def test_qlinearconv_under_qemu_exact(target, tmp_path, ic, oc, k, stride, pad, hw):
    tilecc = import_tilecc()
    from tilecc.runtime.crunner import EmulatedModule
    from tilecc.targets import get_target

    t = get_target(target)
    need_tools(t.linker, *t.qemu[:1])
    model = _qlinearconv_model(ic, oc, k, stride, pad, hw, seed=ic * oc)
    x = np.random.default_rng(1).integers(0, 256, (1, ic, hw, hw)).astype(np.uint8)
    art = tilecc.compile(model, target=t)
    assert any(a.get("vnni") for a in _int8_kernels(art).values()) == _expected(t)[1]
    art.save(tmp_path / "c.tar")
    out = next(iter(EmulatedModule(tmp_path / "c.tar").run({"x": x}).values()))
    np.testing.assert_array_equal(out, _qlinearconv_numpy(model, x, k, stride, pad))


@pytest.mark.parametrize("ic,oc,k,stride,pad,hw", [(13, 20, 3, 2, 1, 11), (6, 35, 1, 2, 0, 8)])
def test_qlinearconv_on_host_exact(tmp_path, ic, oc, k, stride, pad, hw):
    """The same cases natively (OC 35 used to fail packing: a full vector block, unpadded)."""
    tilecc = import_tilecc()
    model = _qlinearconv_model(ic, oc, k, stride, pad, hw, seed=ic * oc)
    x = np.random.default_rng(1).integers(0, 256, (1, ic, hw, hw)).astype(np.uint8)
    tilecc.compile(model).save(tmp_path / "h.tar")
    out = next(iter(tilecc.load(tmp_path / "h.tar").run({"x": x}).values()))
    np.testing.assert_array_equal(out, _qlinearconv_numpy(model, x, k, stride, pad))


def test_sdot_packing_keeps_the_op_semantics():
    """The x_flip form (activations XOR 0x80, bias + 128 * sum(w)) folds to the same values as
    the unpacked QConv and QGemm (compiler/ops/quant.py reads x_flip)."""
    from tilecc.graph import Graph, Node
    from tilecc.ops.quant import qconv_ref, qgemm_ref
    from tilecc.passes.quant_pack import _pack_dot4

    rng = np.random.default_rng(3)
    conv = {"strides": [1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1], "group": 1,
            "x_zp": 131, "out_dtype": "int32"}
    cases = [("QConv", rng.integers(0, 256, (1, 7, 5, 6)), rng.integers(-128, 128, (9, 7, 3, 3)),
              conv, qconv_ref),
             ("QGemm", rng.integers(0, 256, (3, 30)), rng.integers(-128, 128, (30, 17)),
              {"x_zp": 0, "out_dtype": "int32"}, qgemm_ref)]
    for op, x, w, attrs, ref in cases:
        x, w = x.astype(np.uint8), w.astype(np.int8)
        oc = w.shape[0] if op == "QConv" else w.shape[1]
        g = Graph([], ["x"], ["y"], {})
        bias = rng.integers(-5000, 5000, oc).astype(np.int32)
        names = [g.add_const("w", w), g.add_const("b", bias),
                 g.add_const("s", np.ones(oc, np.float32))]
        n = _pack_dot4(g, Node(op, ("x", *names), ("y",), attrs, op.lower()), 4, flip=True)
        assert n.attrs["x_flip"] and n.attrs["vnni"]
        want = ref(x, w, bias, np.ones(oc, np.float32), attrs)
        got = ref(x, g.consts[n.inputs[1]], g.consts[n.inputs[2]], np.ones(oc, np.float32),
                  n.attrs)
        np.testing.assert_array_equal(got, want)
        assert not np.array_equal(g.consts[n.inputs[2]], bias)

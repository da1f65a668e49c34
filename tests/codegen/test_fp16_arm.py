"""precision="fp16" on ARMv8.2-A +fullfp16 presets computes in half (codegen/llvm_half.py):
8-lane half vectors (`fmla v.8h`) in the kernels, float32 accumulators for reductions longer
than HALF_ACC_MAX terms; plain ARMv8 keeps fp16 storage with float32 math. Cross artifacts
run under qemu-user on a CPU model with FEAT_FP16 (the preset's qemu command), compared with
onnxruntime fp32 at fp16's tolerance (tests/quant/test_fp16.py): cosine >= 0.999 and max abs
error <= 1e-2 x max |reference|."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.codegen.test_cross import kernels_disassembly
from tests.models.builders import bert_encoder, mobilenet_tiny, random_inputs, resnet18
from tests.models.harness import import_tilecc, ort_run
from tests.targets.crosstools import need_tools

DS_CNN = Path(__file__).resolve().parents[2] / "compiler" / "data" / "ds_cnn_kws.onnx"
HALF_FMLA = re.compile(r"\bfmla\s+v\d+\.[48]h")
FMLA_8H = re.compile(r"\bfmla\s+v\d+\.8h")
# Any 8-lane half arithmetic: a model of long reductions only (ResNet's convs) forms its
# products in half (fmul) and adds them in float32, so it may have no half fmla.
HALF_MATH_8H = re.compile(r"\bf(mla|mul|add|sub|max|min|div)\s+v\d+\.8h")


def _kernels_code(art, tmp_path, target) -> str:
    obj = tmp_path / "model.o"
    obj.write_bytes(art.files["lib/model.o"])
    funcs = kernels_disassembly(target.objdump, obj)
    return "".join(c for name, c in funcs.items() if not name.endswith("_run"))


def _kernel_fmla(art, tmp_path, target) -> tuple[int, int]:
    """(fmla on .8h, fmla on any half vector) over the artifact's kernel functions."""
    code = _kernels_code(art, tmp_path, target)
    return len(FMLA_8H.findall(code)), len(HALF_FMLA.findall(code))


def test_fullfp16_conv_kernels_use_8h_fmla_and_plain_armv8_none(tmp_path):
    tilecc = import_tilecc()
    from tilecc.targets import get_target

    counts = {}
    for name in ("cortex-a76", "aarch64"):
        t = get_target(name)
        need_tools(t.objdump)
        art = tilecc.compile(str(DS_CNN), target=name, precision="fp16")
        counts[name] = _kernel_fmla(art, tmp_path, t)
        print(f"\n{name} fp16 DS-CNN: fmla .8h {counts[name][0]}, any half fmla "
              f"{counts[name][1]}")
    assert counts["cortex-a76"][0] > 0
    assert counts["aarch64"] == (0, 0)
    # fp32 builds on the fp16-capable preset do not change: no half arithmetic at all.
    art32 = tilecc.compile(str(DS_CNN), target="cortex-a76")
    assert _kernel_fmla(art32, tmp_path, get_target("cortex-a76")) == (0, 0)


def test_schedules_pick_8_half_lanes_only_for_fp16_on_fullfp16():
    import_tilecc()
    from tilecc.targets import get_target

    a76, a64 = get_target("cortex-a76"), get_target("aarch64")
    assert a76.for_precision("fp16").float_lanes() == 8
    assert a76.for_precision("fp32").float_lanes() == 4 == a76.float_lanes()
    assert a64.for_precision("fp16").float_lanes() == 4
    assert get_target("cortex-a7").for_precision("fp16").float_lanes() == 4
    assert a76.for_precision("fp16").lanes(4) == 4  # int32 (int8 kernels) lanes unchanged
    # qemu-user must model a core with FEAT_FP16 for the half kernels to run.
    for name in ("cortex-a76", "raspberry-pi-5", "rk3588"):
        assert get_target(name).emulator()[1:3] == ["-cpu", "cortex-a76"]


def test_accumulators_short_in_half_long_in_float():
    """A 3x3 depthwise conv (9 terms) and a 64-channel pointwise conv sum in half, a
    256-channel one in float."""
    import_tilecc()
    from tilecc import te
    from tilecc.codegen.half_policy import HALF_ACC_MAX
    from tilecc.codegen.llvm_half import half_arithmetic
    from tilecc.loopir import Allocate
    from tilecc.passes.precision import half_storage
    from tilecc.schedule import create_schedule, lower

    def acc_dtypes(k):
        x = te.placeholder((8, k), "float32", "x")
        r = te.reduce_axis(k, "r")
        y = te.compute((8,), lambda i: te.sum(x[i, r] * x[i, r], axis=r), name="y")
        pf = half_arithmetic(half_storage(lower(create_schedule(y), [x, y], "k"),
                                          (True, True)))
        found, stack = [], [pf.body]
        while stack:
            s = stack.pop()
            if isinstance(s, Allocate):
                found.append(s.buffer.dtype)
            stack.extend(getattr(s, "stmts", None) or [b for b in (
                getattr(s, "body", None), getattr(s, "then", None), getattr(s, "other", None))
                if b is not None])
        return found

    assert 9 <= HALF_ACC_MAX < 256
    assert acc_dtypes(9) == ["float16"]
    assert acc_dtypes(HALF_ACC_MAX) == ["float16"]
    assert acc_dtypes(256) == ["float32"]


def _ds_cnn():
    import onnx
    return onnx.load(str(DS_CNN))


def _bert():
    return bert_encoder(layers=1, seq=16, hidden=64, heads=2)


def _bert_feeds(model):
    rng = np.random.default_rng(1)
    mask = np.ones((1, 16), np.int64)
    mask[0, 12:] = 0
    return {"input_ids": rng.integers(0, 1000, (1, 16)).astype(np.int64),
            "attention_mask": mask}


MODELS = {
    "ds_cnn_kws": (_ds_cnn, random_inputs),
    "mobilenet_tiny": (mobilenet_tiny, random_inputs),
    "resnet18": (resnet18, random_inputs),
    "bert_encoder": (_bert, _bert_feeds),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "resnet18"
                                  else n for n in sorted(MODELS)])
def test_cortex_a76_fp16_matches_onnxruntime_fp32(name, tmp_path):
    tilecc = import_tilecc()
    from tilecc.runtime.crunner import EmulatedModule
    from tilecc.targets import get_target

    t = get_target("cortex-a76")
    need_tools(t.linker, *t.emulator()[:1])
    make, feeds_for = MODELS[name]
    model = make()
    feeds = feeds_for(model)
    ref = next(iter(ort_run(model, feeds).values())).astype(np.float64)
    art = tilecc.compile(model, target="cortex-a76", precision="fp16")
    code = _kernels_code(art, tmp_path, t)
    n_half, n_fmla = len(HALF_MATH_8H.findall(code)), len(FMLA_8H.findall(code))
    assert n_half > 0  # the half path is the one measured
    art.save(tmp_path / "m.tar")
    out = next(iter(EmulatedModule(tmp_path / "m.tar").run(feeds).values()))
    assert out.dtype == np.float32
    a, b = out.ravel().astype(np.float64), ref.ravel()
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    err = float(np.abs(a - b).max())
    print(f"\n{name} cortex-a76 fp16 vs onnxruntime fp32: cosine {cos:.7f}, max abs err "
          f"{err:.3g} (max |ref| {np.abs(b).max():.3g}); kernels: {n_half} 8h half ops, "
          f"{n_fmla} fmla .8h")
    assert cos >= 0.999 and err <= 1e-2 * np.abs(b).max()

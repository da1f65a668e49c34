"""Cross-compiled artifacts run under qemu-user and match onnxruntime.

Targets: `aarch64` (NEON), `cortex-a7` (ARMv7 NEON/VFPv4, hard float) and `riscv64-rvv`
(RVV at VLEN 128). Each model is compiled for the target (shared library linked by the cross
gcc), and run through the C runner cross-compiled against it, under
`qemu-<arch> -L /usr/<triple>` (tilecc.runtime.crunner.EmulatedModule, the same path as
`tilecc run --emulate`).

Tolerances are the host tests': the light models as tests/test_light_models.py
(max|out - ref| <= 1e-3 * max(1, max|ref|) and allclose(rtol=1e-3, atol=1e-5)), the builder
models as tests/test_builders.py (rtol=1e-4, atol=1e-4 * max|ref|).

qemu is slow (RVV most of all: every vector instruction is a helper call), so the big light
models, the full MobileNetV2 and every light model on riscv64-rvv are marked `slow`. Two
things once kept RVV cases out of this matrix, both fixed in the code generator rather than
skipped: qemu 7.2 aborted on AlexNet's static-rounding conversions (codegen/mathfns.py), and
VGG-19 ran for over ten minutes because LMUL=2 vector code made qemu's host FPU helpers ~15x
slower (targets/target.py).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import onnx
import pytest

from tests.codegen.test_cross import float_to_int_inputs, float_to_int_model
from tests.models import builders
from tests.models.harness import import_tilecc, ort_run
from tests.targets.crosstools import need_target_tools
from tests.test_light_models import FAST, SLOW, assert_light_close, light_inputs, model_path

TARGETS = ["aarch64", "cortex-a7", "riscv64-rvv"]
_slow = pytest.mark.slow


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """(model key, target) -> EmulatedModule, compiled once per module."""
    tilecc = import_tilecc()
    from tilecc.runtime.crunner import EmulatedModule

    cache = {}

    def get(key: str, model, target: str):
        if (key, target) not in cache:
            need_target_tools(target)
            t0 = time.perf_counter()
            path = tmp_path_factory.mktemp(f"{key}_{target}") / "model.tar"
            tilecc.compile(model, target=target).save(path)
            cache[key, target] = EmulatedModule(path)
            print(f"[{key} @ {target}: compiled in {time.perf_counter() - t0:.1f}s]",
                  file=sys.stderr)
        return cache[key, target]

    yield get
    for m in cache.values():
        m.close()


def _timed_run(mod, feeds, label):
    t0 = time.perf_counter()
    out = mod.run(feeds)
    print(f"[{label}: ran under qemu in {time.perf_counter() - t0:.1f}s]", file=sys.stderr)
    return out


def _light_params():
    for target in TARGETS:
        for name in FAST + SLOW:
            slow = name in SLOW or target == "riscv64-rvv"
            yield pytest.param(name, target, id=f"{name}-{target}",
                               marks=[_slow] if slow else [])


@pytest.mark.parametrize("name,target", list(_light_params()))
def test_light_model_under_qemu(name, target, emulated):
    src = model_path(name)
    feeds = light_inputs(onnx.load(str(src)))
    out = _timed_run(emulated(name, str(src), target), feeds, f"{name} @ {target}")
    ref = ort_run(src, feeds)
    assert set(out) == set(ref)
    for key, want in ref.items():
        assert_light_close(out[key], want)


BUILDERS = {"ds_cnn_kws": builders.ds_cnn_kws, "mobilenet_v2": builders.mobilenet_v2}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", [pytest.param("ds_cnn_kws"),
                                  pytest.param("mobilenet_v2", marks=_slow)])
def test_builder_model_under_qemu(name, target, emulated):
    model = BUILDERS[name]()
    feeds = builders.random_inputs(model)
    out = _timed_run(emulated(name, model, target), feeds, f"{name} @ {target}")
    ref = ort_run(model, feeds)
    assert set(out) == set(ref)
    for key, want in ref.items():
        np.testing.assert_allclose(out[key], want, rtol=1e-4,
                                   atol=1e-4 * float(np.abs(want).max()))


def test_cli_run_emulate_and_load_refusal(tmp_path):
    """`tilecc run --emulate` writes the same outputs as onnxruntime; tilecc.load of the
    foreign artifact refuses with a message that names --emulate."""
    tilecc = import_tilecc()
    need_target_tools("aarch64")
    from tilecc.cli import main

    model = builders.ds_cnn_kws()
    src = tmp_path / "kws.onnx"
    src.write_bytes(model.SerializeToString())
    feeds = builders.random_inputs(model)
    np.savez(tmp_path / "in.npz", **feeds)
    tar = tmp_path / "kws.tar"
    assert main(["compile", str(src), "-t", "aarch64", "-o", str(tar)]) == 0
    assert main(["run", str(tar), "--emulate", "-i", str(tmp_path / "in.npz"),
                 "-o", str(tmp_path / "out.npz")]) == 0
    ref = ort_run(model, feeds)
    with np.load(tmp_path / "out.npz") as out:
        for key, want in ref.items():
            np.testing.assert_allclose(out[key], want, rtol=1e-4,
                                       atol=1e-4 * float(np.abs(want).max()))
    import platform
    if platform.machine() not in ("aarch64", "arm64"):
        with pytest.raises(tilecc.ArtifactError, match="--emulate"):
            tilecc.load(tar)


@pytest.mark.parametrize("target", TARGETS)
def test_float_to_int_under_qemu(target, emulated):
    """Cast to every integer type truncates toward zero exactly as onnxruntime does, and the
    exp/pow behind Softmax and LRN are right, on the emulated CPU (RVV converts through
    lrint plus a correction there, codegen/mathfns.py)."""
    model = float_to_int_model()
    feeds = float_to_int_inputs()
    out = _timed_run(emulated("float_to_int", model, target), feeds, f"float_to_int @ {target}")
    ref = ort_run(model, feeds)
    assert set(out) == set(ref)
    for key, want in ref.items():
        if want.dtype.kind in "iu":
            np.testing.assert_array_equal(out[key], want, err_msg=key)
        else:
            np.testing.assert_allclose(out[key], want, rtol=1e-5, atol=1e-6, err_msg=key)

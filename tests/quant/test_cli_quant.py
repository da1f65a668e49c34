"""`tilecc compile --quantize int8` and `tilecc compare` end to end on a small CNN."""

from __future__ import annotations

import numpy as np
import onnx

from tests.models.builders import resnet_block_model
from tilecc.cli import main


def _model_and_calibration(tmp_path, samples: int):
    """m.onnx (a small ResNet block), a calibration directory of `samples` .npz files, and
    the generator that made them (for more inputs from the same stream)."""
    model = resnet_block_model()
    onnx.save(model, tmp_path / "m.onnx")
    name = model.graph.input[0].name
    rng = np.random.default_rng(0)
    data = tmp_path / "calib"
    data.mkdir()
    for k in range(samples):
        np.savez(data / f"{k}.npz", **{name: rng.standard_normal((1, 3, 32, 32), np.float32)})
    return name, data, rng


def test_compile_quantized_and_compare(tmp_path, capsys):
    name, data, rng = _model_and_calibration(tmp_path, 8)
    np.savez(tmp_path / "eval.npz", **{name: rng.standard_normal((4, 1, 3, 32, 32), np.float32)})
    art = tmp_path / "q.tar"
    assert main(["-q", "compile", str(tmp_path / "m.onnx"), "-o", str(art), "--quantize", "int8",
                 "--calibration", str(data), "--calibration-method", "percentile",
                 "--expose-intermediates"]) == 0
    assert main(["compare", str(tmp_path / "m.onnx"), str(art), "--inputs",
                 str(tmp_path / "eval.npz"), "--threshold", "0.99"]) == 0
    out = capsys.readouterr().out
    print(out)
    rows = [ln.split() for ln in out.splitlines()[1:] if ln and not ln.startswith("all")]
    assert len(rows) >= 5  # stem, four block convs (+ downsample, classifier)
    cos = [float(r[1]) for r in rows]
    assert min(cos) > 0.98, out
    # The quantized artifact without exposed layers gives a clear error, not a crash.
    plain = tmp_path / "p.tar"
    assert main(["-q", "compile", str(tmp_path / "m.onnx"), "-o", str(plain), "--quantize",
                 "int8", "--calibration", str(data)]) == 0
    assert main(["compare", str(tmp_path / "m.onnx"), str(plain), "--inputs",
                 str(tmp_path / "eval.npz")]) != 0
    assert "--expose-intermediates" in capsys.readouterr().err


def test_cross_int8_calibrates_on_the_host(tmp_path):
    """A cross int8 compile calibrates on a host build (the aarch64 library cannot load
    here; this exited 3 before) with the host build's quantization parameters, so the aarch64
    artifact, run under qemu, computes what the host int8 artifact computes (cosine >= 0.999;
    equal where both use 8-bit weights, while an x86 host without VNNI quantizes weights to
    7 bits for pmaddubsw, passes/quant_dot.py)."""
    from tests.targets.crosstools import need_tools
    from tilecc.runtime.crunner import EmulatedModule
    from tilecc.runtime.module import load
    from tilecc.targets import get_target

    t = get_target("aarch64")
    need_tools(t.linker, t.emulator()[0])
    name, data, rng = _model_and_calibration(tmp_path, 4)
    for target in ("host", "aarch64"):
        assert main(["-q", "compile", str(tmp_path / "m.onnx"), "-o",
                     str(tmp_path / f"{target}.tar"), "-t", target, "--quantize", "int8",
                     "--calibration", str(data)]) == 0
    x = {name: rng.standard_normal((1, 3, 32, 32), np.float32)}
    host = next(iter(load(tmp_path / "host.tar").run(x).values()))
    cross = next(iter(EmulatedModule(tmp_path / "aarch64.tar").run(x).values()))
    a, b = cross.ravel().astype(np.float64), host.ravel().astype(np.float64)
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    print(f"aarch64 int8 vs host int8: cosine {cos:.6f}, max abs diff "
          f"{np.abs(cross - host).max():.3g}")
    assert cos >= 0.999

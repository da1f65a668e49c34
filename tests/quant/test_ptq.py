"""Post-training int8 quantization: accuracy on digits per calibration method, layer output
agreement on a small CNN, and the compare tooling."""

from __future__ import annotations

import pytest

import tilecc

from .digits import digits_split, mlp_onnx, train_mlp


def _run(art, tmp_path, inputs, name="m.tar"):
    p = tmp_path / name
    art.save(p)
    return tilecc.load(p).run(inputs)


@pytest.fixture(scope="module")
def digits():
    xtr, ytr, xte, yte = digits_split()
    ws, bs = train_mlp(xtr, ytr)
    return xtr, ytr, xte, yte, ws, bs


@pytest.mark.parametrize("method", ["minmax", "percentile", "entropy"])
def test_digits_mlp_int8_accuracy(digits, tmp_path, method):
    xtr, _ytr, xte, yte, ws, bs = digits
    model = mlp_onnx(ws, bs, len(xte))
    fp32 = _run(tilecc.compile(model), tmp_path, {"x": xte}, "f.tar")["logits"]
    calib = [{"x": xtr[k:k + len(xte)]} for k in range(0, len(xtr) - len(xte) + 1, len(xte))]
    art = tilecc.compile(model, quantize="int8", calibration=calib, calibration_method=method)
    kinds = {op for k in art.metadata["kernels"] for op in k["ops"]}
    assert "QGemm" in kinds and "Gemm" not in kinds
    q = _run(art, tmp_path, {"x": xte})["logits"]
    acc32 = float((fp32.argmax(1) == yte).mean() * 100)
    acc8 = float((q.argmax(1) == yte).mean() * 100)
    print(f"\ndigits MLP top-1 ({method}): fp32 {acc32:.2f}%  int8 {acc8:.2f}%  "
          f"delta {acc8 - acc32:+.2f} points")
    assert acc32 > 90
    assert abs(acc8 - acc32) <= 1.0

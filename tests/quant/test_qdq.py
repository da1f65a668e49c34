"""Models quantized by onnxruntime.quantization (QDQ and QOperator formats) compile to integer
kernels and agree with onnxruntime's int8 outputs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import tilecc
from tests.models.builders import resnet_block_model

ort = pytest.importorskip("onnxruntime")
quant = pytest.importorskip("onnxruntime.quantization")


class _Reader(quant.CalibrationDataReader):
    def __init__(self, name, samples):
        self.it = iter([{name: s} for s in samples])

    def get_next(self):
        return next(self.it, None)


def _cos(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
def test_ort_quantized_cnn(tmp_path, fmt):
    model = resnet_block_model()
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(model, src)
    name = model.graph.input[0].name
    rng = np.random.default_rng(0)
    samples = [rng.standard_normal((1, 3, 32, 32)).astype(np.float32) for _ in range(8)]
    quant.quantize_static(str(src), str(dst), _Reader(name, samples),
                          quant_format=getattr(quant.QuantFormat, fmt), per_channel=True,
                          activation_type=quant.QuantType.QUInt8,
                          weight_type=quant.QuantType.QInt8,
                          # QOperator Gemm/Add/pool become com.microsoft ops tilecc lacks.
                          op_types_to_quantize=None if fmt == "QDQ" else ["Conv"])
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    sess = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {name: x})[0]
    art = tilecc.compile(str(dst))
    ops = {op for k in art.metadata["kernels"] for op in k["ops"]}
    assert "QConv" in ops and "Conv" not in ops, ops
    art.save(tmp_path / "q.tar")
    out = next(iter(tilecc.load(tmp_path / "q.tar").run({name: x}).values()))
    cos = _cos(out, ref)
    print(f"\n{fmt} resnet_block vs onnxruntime int8: cosine {cos:.6f}, "
          f"max abs err {np.abs(out - ref).max():.4g}")
    assert cos >= 0.999

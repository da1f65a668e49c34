"""QAveragePool: an average pool over uint8 data that returns the mean dequantized, float32
(x_scale * (mean(q) - x_zp)). PTQ puts it where a quantized layer feeds an average pool
(passes/quantize.py), so the layer's output stays uint8: DS-CNN's last conv otherwise writes a
float tensor four times its uint8 size, the largest buffer of its arena. No padding: the
windows lie inside the input (a global pool is one window of the whole plane)."""

from __future__ import annotations

import numpy as np

from ..graph import TensorType
from ._util import expect_inputs, expect_rank
from .nn import _window_out
from .registry import register_op


def _infer(types, attrs):
    expect_inputs("QAveragePool", types, 1)
    x = types[0]
    expect_rank("QAveragePool", x, 4, "X")
    (kh, kw), (sh, sw) = attrs["kernel"], attrs["strides"]
    n, c, h, w = x.shape
    oh = _window_out("QAveragePool", h, kh, sh, 1, 0, 0, 0)
    ow = _window_out("QAveragePool", w, kw, sw, 1, 0, 0, 0)
    return [TensorType((n, c, oh, ow), "float32")]


def qavgpool_ref(q: np.ndarray, attrs) -> np.ndarray:
    (kh, kw), (sh, sw) = attrs["kernel"], attrs["strides"]
    n, c, h, w = q.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    sums = np.zeros((n, c, oh, ow), np.int64)
    for y in range(kh):
        for x in range(kw):
            sums += q[:, :, y:y + sh * (oh - 1) + 1:sh, x:x + sw * (ow - 1) + 1:sw]
    mean = sums.astype(np.float32) * np.float32(1.0 / (kh * kw))
    return ((mean - np.float32(attrs["x_zp"])) * np.float32(attrs["x_scale"])).astype(np.float32)


register_op("QAveragePool", _infer, lambda a, at: [qavgpool_ref(a[0], at)])

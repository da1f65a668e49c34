"""Pool companions: MaxPoolIndices, the Indices output of ONNX MaxPool.

MaxPoolIndices(X, Y) with MaxPool's attrs (2-D canonical form) and storage_order (0/1):
X (N, C, H, W), Y = MaxPool(X) (N, C, OH, OW); the int64 output holds, per window, the flat
index into X of the first window element equal to the maximum, counting (n, c, h, w) in
row-major order (storage_order 0) or with w before h (storage_order 1) as ONNX defines.
"""

from __future__ import annotations

from ..graph import TensorType
from ._util import expect_inputs
from .registry import register_op


def _indices_infer(types, attrs):
    expect_inputs("MaxPoolIndices", types, 2)
    x, y = types
    if len(x.shape) != 4 or len(y.shape) != 4 or x.shape[:2] != y.shape[:2]:
        raise ValueError(f"MaxPoolIndices: X {list(x.shape)} and Y {list(y.shape)} must be "
                         "(N, C, H, W) and its pooled (N, C, OH, OW)")
    return [TensorType(y.shape, "int64")]


register_op("MaxPoolIndices", _indices_infer)

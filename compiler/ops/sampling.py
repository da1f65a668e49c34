"""Data-dependent sampling ops: GridSample.

GridSample(X, grid) attrs: mode ("nearest" | "linear" | "cubic"), padding_mode ("zeros" |
"border" | "reflection"), align_corners (0/1). X is (N, C, *S) with 1 to 3 spatial dims, grid
(N, *O, r) holds normalised coordinates in [-1, 1] with the last spatial dim first (x, y[, z]),
the output is (N, C, *O). Semantics as ONNX opset 20 (opset 16's bilinear/bicubic are
renamed by the frontend).
"""

from __future__ import annotations

from ..graph import TensorType
from ._util import expect_inputs
from .registry import register_op

GRID_MODES = ("nearest", "linear", "cubic")
GRID_PADDING = ("zeros", "border", "reflection")


def _grid_sample_infer(types, attrs):
    expect_inputs("GridSample", types, 2)
    x, grid = types
    r = len(x.shape) - 2
    if r < 1 or len(grid.shape) != r + 2 or grid.shape[0] != x.shape[0] or grid.shape[-1] != r:
        raise ValueError(f"GridSample: X {list(x.shape)} needs a grid of shape (N, *out, {r}), "
                         f"got {list(grid.shape)}")
    if attrs["mode"] not in GRID_MODES or attrs["padding_mode"] not in GRID_PADDING:
        raise ValueError(f"GridSample: mode {attrs['mode']!r} / padding_mode "
                         f"{attrs['padding_mode']!r} is not one of {GRID_MODES} / {GRID_PADDING}")
    if not grid.dtype.startswith("float"):
        raise ValueError(f"GridSample: grid must be floating point, got {grid.dtype}")
    return [TensorType(x.shape[:2] + grid.shape[1:-1], x.dtype)]


register_op("GridSample", _grid_sample_infer)

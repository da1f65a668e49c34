"""ONNX converters for sampling and image ops added for conformance: GridSample."""

from __future__ import annotations

from .onnx_builder import converter

_GRID_MODES = {"bilinear": "linear", "bicubic": "cubic", "nearest": "nearest",
               "linear": "linear", "cubic": "cubic"}


@converter("GridSample", 16)
def GridSample(b, ins, n_out, *, align_corners=0, mode="linear", padding_mode="zeros"):
    if mode not in _GRID_MODES:
        raise b.error(f"mode {mode!r} is not nearest, linear (bilinear) or cubic (bicubic)")
    r = len(b.shape(ins[0])) - 2
    if mode in ("cubic", "bicubic") and r != 2:
        raise b.error(f"cubic GridSample is defined for 2-D inputs only, got {r} spatial dims")
    return b.emit("GridSample", [ins[0], ins[1]],
                  {"mode": _GRID_MODES[mode], "padding_mode": padding_mode,
                   "align_corners": int(align_corners)})

"""ONNX converters for sampling and image ops added for conformance: GridSample, Col2Im."""

from __future__ import annotations

import numpy as np

from .onnx_builder import converter
from .onnx_converters import _ints, _reshape

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


@converter("Col2Im", 18)
def Col2Im(b, ins, n_out, *, dilations=None, pads=None, strides=None):
    """Col2Im as one MatMul with a constant 0/1 scatter matrix (block position x column ->
    image pixel), which sums overlapping blocks exactly as the spec adds them."""
    x = ins[0]
    image = _ints(b.static(ins[1], "image_shape"))
    block = _ints(b.static(ins[2], "block_shape"))
    r = len(image)
    dil = tuple(dilations or (1,) * r)
    st = tuple(strides or (1,) * r)
    pad = tuple(pads or (0,) * (2 * r))
    n, ck, cols = b.shape(x)
    kprod, pprod = int(np.prod(block)), int(np.prod(image))
    counts = [(image[d] + pad[d] + pad[d + r] - (dil[d] * (block[d] - 1) + 1)) // st[d] + 1
              for d in range(r)]
    if len(block) != r or ck % kprod or int(np.prod(counts)) != cols or min(counts) < 1:
        raise b.error(f"input {list(b.shape(x))} does not match image_shape {list(image)}, "
                      f"block_shape {list(block)} and the strides/pads/dilations")
    if kprod * cols * pprod > 1 << 24:
        raise b.error(f"Col2Im of a {list(image)} image with {cols} columns needs a "
                      f"{kprod * cols} x {pprod} scatter matrix; too large")
    c = ck // kprod
    m = np.zeros((kprod, cols, pprod), np.float32)
    for k in np.ndindex(*block):
        kf = int(np.ravel_multi_index(k, block))
        for lpos in np.ndindex(*counts):
            p = [lpos[d] * st[d] - pad[d] + k[d] * dil[d] for d in range(r)]
            if all(0 <= p[d] < image[d] for d in range(r)):
                m[kf, int(np.ravel_multi_index(lpos, counts)),
                  int(np.ravel_multi_index(p, image))] = 1
    dtype = b.type(x).dtype
    x2 = _reshape(b, x, (n * c, kprod * cols))
    y = b.emit("MatMul", [x2, b.add_const(m.reshape(kprod * cols, pprod).astype(dtype),
                                          "col2im_scatter")])[0]
    return [_reshape(b, y, (n, c) + tuple(image))]

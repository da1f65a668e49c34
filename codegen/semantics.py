"""Meanings every emitter shares, so one artifact computes the same on every backend.

Float min/max: `max(x, y)` is y where y is strictly beyond x (an ordered comparison: false
when either side is NaN), else x. A NaN in x, the value being clamped or reduced (Relu, Clip,
MaxPool, ReduceMax accumulate into x), is kept, as onnxruntime keeps it; the bound y of a
Relu or Clip is never NaN. On x86 this exact form is one maxps/minps, which return their
second operand on a tie or a NaN.

Float max/min reductions (MaxPool, ReduceMax/Min, GlobalMaxPool, Softmax's row max) also
take a NaN that arrives later (compiler/schedule.py `_combine`: `b != b ? b : max(a, b)`), so a
NaN anywhere in the window or axis gives NaN, as numpy and PyTorch give.
"""

from __future__ import annotations

# op -> the comparison "y is strictly beyond x" uses, as `y <cmp> x`.
FLOAT_MINMAX_BEYOND = {"max": ">", "min": "<"}

"""QDWConv: a depthwise QConv (one input channel per group) with QConv's inputs, attrs and
semantics (compiler/ops/quant.py); a separate op so its compute can widen the input once
(compiler/topi/quant_dw.py) instead of vectorising over bytes."""

from __future__ import annotations

from .quant import _qconv_infer, qconv_ref
from .registry import register_op

register_op("QDWConv", _qconv_infer, lambda a, at: [qconv_ref(a[0], a[1], a[2], a[3], at)])

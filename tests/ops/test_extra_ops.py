"""Conformance-driven ops (compiler/*/extra.py and their converters) vs onnxruntime.

Same table format and helpers as tests/ops/test_ops_table.py. Each row compiles a one-node
model with `tilecc.compile`, runs it and compares every output with onnxruntime: exact for
data movement and integer outputs, otherwise rtol 1e-4 / atol 1e-5 unless a row says why.
Rows whose op onnxruntime does not implement at that opset are compared with onnx's reference
evaluator instead (`REF_ONLY`, each with the reason).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.models.harness import compile_and_run
from tests.ops.test_ops_table import C, Case, In, V, X, case_rows, check_case

CASES: list[Case] = []
row, _ = case_rows(CASES)
EXACT = {"exact": True}


def B(*shape: int, seed: int = 0, p: float = 0.7) -> In:
    rng = np.random.default_rng(seed + 5 * len(shape))
    return In(tuple(shape), "bool", value=rng.random(shape) < p)


# -- Attention (opset 23): 4-D / 3-D, GQA, masks, causal, past, softcap, qk output modes ------
row("Attention", "4d", [X(2, 3, 4, 8), X(2, 3, 6, 8), X(2, 3, 6, 8)], opset=23)
row("Attention", "4d-gqa-causal", [X(2, 6, 4, 8), X(2, 2, 6, 8), X(2, 2, 6, 8)],
    {"is_causal": 1}, opset=23)
row("Attention", "4d-float-mask-scaled", [X(2, 3, 4, 8), X(2, 3, 6, 8), X(2, 3, 6, 10),
                                           X(4, 6)], {"scale": 0.3}, opset=23)
row("Attention", "4d-bool-mask-causal", [X(1, 2, 4, 8), X(1, 2, 4, 8), X(1, 2, 4, 8),
                                          B(1, 2, 4, 4)], {"is_causal": 1}, opset=23)
row("Attention", "3d-heads-softcap", [X(2, 4, 24), X(2, 6, 24), X(2, 6, 24)],
    {"q_num_heads": 3, "kv_num_heads": 3, "softcap": 2.0}, opset=23)
row("Attention", "4d-past-present-qk-bias", [X(2, 3, 4, 8), X(2, 3, 6, 8), X(2, 3, 6, 8),
                                              X(4, 18), X(2, 3, 12, 8), X(2, 3, 12, 8)],
    {"qk_matmul_output_mode": 2}, opset=23, n_out=4)
row("Attention", "4d-fp16", [X(2, 3, 4, 8, dtype="float16"), X(2, 3, 6, 8, dtype="float16"),
                             X(2, 3, 6, 8, dtype="float16")], opset=23, rtol=1e-3, atol=1e-3,
    reason="float16 output: one half-precision ulp")

# -- normalisations and activations --------------------------------------------------------
row("RMSNormalization", "axis-1", [X(2, 3, 8), X(8)], opset=23)
row("RMSNormalization", "axis1", [X(2, 3, 4), X(3, 4)], {"axis": 1, "epsilon": 1e-3},
    opset=23)
row("MeanVarianceNormalization", "nchw", [X(2, 3, 4, 5)], {"axes": [0, 2, 3]}, opset=13, atol=1e-4,
    reason="a normalised value divides by a std over 40 elements")
row("LpNormalization", "p2-axis1", [X(3, 4, 5)], {"axis": 1, "p": 2})
row("LpNormalization", "p1-last", [X(3, 4)], {"axis": -1, "p": 1})
row("LayerNormalization", "mean-invstd", [X(2, 3, 5), X(5), X(5)], n_out=3)
row("Swish", "alpha", [X(3, 7)], {"alpha": 0.7}, opset=24)

# -- pooling ---------------------------------------------------------------------------------
row("LpPool", "2d-p3-pads-strides", [X(1, 2, 7, 7)], {"kernel_shape": [3, 3], "p": 3,
                                                       "pads": [1, 1, 1, 1],
                                                       "strides": [2, 2]}, opset=18)
row("LpPool", "1d-p2", [X(1, 3, 9)], {"kernel_shape": [2], "p": 2}, opset=18)
row("GlobalLpPool", "p2", [X(2, 3, 4, 5)], {"p": 2})

# -- scans and data movement -----------------------------------------------------------------
row("CumProd", "axis1", [X(3, 5), C(1)], opset=26, reason="onnxruntime lacks CumProd")
row("CumProd", "exclusive-reverse", [X(2, 6), C(1)], {"exclusive": 1, "reverse": 1},
    opset=26, reason="onnxruntime lacks CumProd")
row("CumProd", "int64", [In((4, 3), "int64", value=np.arange(1, 13).reshape(4, 3) % 5 + 1),
                         C(0)], opset=26, reason="onnxruntime lacks CumProd", **EXACT)
row("CenterCropPad", "crop-and-pad", [X(5, 4, 3), C([3, 7])], {"axes": [0, 1]}, opset=18,
    **EXACT)
row("ReverseSequence", "batch1", [X(4, 3, 2), C([4, 2, 1])], {"batch_axis": 1,
                                                              "time_axis": 0}, **EXACT)
row("Compress", "axis0", [X(4, 3), C([True, False, True, True], "bool")], {"axis": 0},
    **EXACT)
row("Compress", "flat", [X(2, 3), C([0, 1, 1, 0, 1], "bool")], **EXACT)
row("EyeLike", "k1", [X(3, 4)], {"k": 1}, **EXACT)
row("HannWindow", "periodic", [C(10)], **EXACT)
row("BlackmanWindow", "symmetric", [C(8)], {"periodic": 0}, atol=1e-6,
    reason="cosine sums in float64 vs float32")
row("SpaceToDepth", "crd", [X(1, 2, 4, 4)], {"blocksize": 2, "mode": "CRD"}, opset=28,
    reason="onnxruntime lacks SpaceToDepth mode", **EXACT)
row("Pow", "int32", [In((5,), "int32", value=[1, 2, 3, -2, 0]),
                     In((5,), "int32", value=[4, 5, 6, 3, 2])], **EXACT)
row("Unique", "sorted-axis0", [C([[1, 1, 2], [3, 4, 5], [1, 1, 2]], "float32")],
    {"axis": 0, "sorted": 1}, n_out=4, **EXACT)
row("Unique", "unsorted-flat", [C([2, 1, 1, 3, 4, 3], "int64")], {"sorted": 0}, n_out=4,
    **EXACT)

# Ops onnxruntime does not implement at these opsets: compared with onnx's reference evaluator.
REF_ONLY = {c.id for c in CASES if c.reason.startswith("onnxruntime lacks")}


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_extra_op(case: Case, tmp_path) -> None:
    check_case(case, tmp_path, case.id in REF_ONLY)


def test_attention_fully_masked_row_is_zero(tmp_path) -> None:
    """A query whose mask disallows every key gives 0 (the spec), not NaN from Softmax."""
    mask = np.ones((2, 4), bool)
    mask[1] = False
    case = Case("Attention-dead-row", "Attention", (X(1, 1, 2, 8), X(1, 1, 4, 8),
                                                    X(1, 1, 4, 8), V(mask, "bool")),
                opset=23)
    feeds, model = case.feeds_and_model()
    got = compile_and_run(model, feeds, tmp_path)["out0"]
    assert np.all(got[0, 0, 1] == 0) and np.all(np.isfinite(got))
    assert np.any(got[0, 0, 0] != 0)

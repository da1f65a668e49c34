"""General (non-NN) ONNX ops vs onnxruntime: one row per case, one generic test.

Same table format and helpers as tests/ops/test_ops_table.py (`X` runtime input, `C`
initializer with a value, `V` runtime input with a value, ...). Each row compiles a one-node
model with `tilecc.compile`, runs it, and compares every output with onnxruntime: exact for
integer/bool outputs and data movement, otherwise rtol 1e-4 / atol 1e-5 unless a row says why.
`test_general_fold_matches_ort` checks the numpy folds: the same rows with every input made
an initializer fold to constants at import, and those must match onnxruntime too (exactly
where the compiled row is exact).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.models.harness import ort_run
from tests.ops.test_ops_table import (
    C,
    Case,
    In,
    V,
    X,
    assert_outputs_match,
    case_rows,
    check_case,
)

CASES: list[Case] = []
row, _ = case_rows(CASES)
EXACT = {"exact": True}


def B(*shape: int, seed: int = 0) -> In:
    """A runtime bool input with a fixed random pattern."""
    rng = np.random.default_rng(seed + 7 * len(shape))
    return In(tuple(shape), "bool", value=rng.random(shape) < 0.5)


def I(*shape: int, dtype: str = "int64", lo: int = -10, hi: int = 10, seed: int = 0) -> In:
    rng = np.random.default_rng(seed + 11 * len(shape))
    return In(tuple(shape), dtype, value=rng.integers(lo, hi, shape))


def IDX(value, dtype="int64") -> In:
    return V(value, dtype)


# -- comparisons, logic, Where ---------------------------------------------------------------
for _op in ("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"):
    row(_op, "f32-bcast", [X(3, 4), X(4)], **EXACT)
    row(_op, "i64", [I(2, 5), I(2, 5, seed=1)], **EXACT)
    row(_op, "i32-bcast-scalar", [I(4, 3, dtype="int32"), I(dtype="int32", seed=2)], **EXACT)
row("Equal", "bool", [B(6), B(6, seed=3)], **EXACT)
row("Less", "f16", [X(5, dtype="float16"), X(5, dtype="float16")], **EXACT)
for _op in ("And", "Or", "Xor"):
    row(_op, "bcast", [B(3, 4), B(4, seed=5)], **EXACT)
    row(_op, "same", [B(2, 3, 4), B(2, 3, 4, seed=6)], **EXACT)
row("Not", "3d", [B(2, 3, 4)], **EXACT)
row("Where", "f32-bcast3", [B(3, 1), X(1, 4), X(3, 4)], **EXACT)
row("Where", "i64", [B(2, 5), I(2, 5), I(5, seed=4)], **EXACT)
row("Where", "u8", [B(6), I(6, dtype="uint8", lo=0, hi=200), I(6, dtype="uint8", lo=0, hi=9)],
    **EXACT)
row("Where", "i32-values", [B(4), I(4, dtype="int32"), I(1, dtype="int32", seed=9)], **EXACT)
row("Where", "f16", [B(2, 3), X(2, 3, dtype="float16"), X(3, dtype="float16")], **EXACT)

# -- unary math ------------------------------------------------------------------------------
_UNIT = In((3, 7), dist="normal", scale=0.45)  # inside (-1, 1) for asin/acos/atanh
for _op in ("Sin", "Cos", "Tan", "Atan", "Sinh", "Cosh", "Asinh"):
    row(_op, "2d", [X(3, 7)])
for _op in ("Asin", "Acos", "Atanh"):
    row(_op, "unit", [_UNIT])
row("Acosh", "gt1", [In((4, 5), dist="pos", scale=3.0)])
row("Sin", "f16", [X(8, dtype="float16")], rtol=1e-3, atol=1e-3,
    reason="float16 output: half a unit in the last place is ~5e-4")
row("Sign", "f32", [X(2, 6)], **EXACT)
row("Sign", "i32", [I(9, dtype="int32")], **EXACT)
row("IsNaN", "f32", [V([1.0, np.nan, -np.inf, 0.0], "float32")], **EXACT)
row("IsInf", "both", [V([1.0, np.nan, -np.inf, np.inf], "float32")], **EXACT)
row("IsInf", "neg-only", [V([1.0, np.inf, -np.inf, 2.0], "float32")],
    {"detect_positive": 0}, **EXACT)
row("IsInf", "pos-only", [V([1.0, np.inf, -np.inf, 2.0], "float32")],
    {"detect_negative": 0}, **EXACT)

# -- Mod and bitwise ---------------------------------------------------------------------------
row("Mod", "i64-fmod0", [I(12), V([3, -3, 4, -4, 5, 7, -7, 2, 3, -2, 9, 1])], **EXACT)
row("Mod", "i32-fmod1", [I(12, dtype="int32"), V([3, -3, 4, -4, 5, 7, -7, 2, 3, -2, 9, 1],
                                                 "int32")], {"fmod": 1}, **EXACT)
row("Mod", "i8-bcast", [I(3, 4, dtype="int8"), V([3, -5, 7, 2], "int8")], **EXACT)
row("Mod", "f32-fmod1", [X(3, 5), In((5,), dist="pos")], {"fmod": 1})
row("BitShift", "u8-left", [I(6, dtype="uint8", lo=0, hi=30), V([0, 1, 2, 3, 1, 4], "uint8")],
    {"direction": "LEFT"}, opset=11, **EXACT)
row("BitShift", "u32-right", [I(5, dtype="uint32", lo=0, hi=1000), V([1, 2, 3, 4, 9], "uint32")],
    {"direction": "RIGHT"}, opset=11, **EXACT)
for _op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor"):
    row(_op, "i32", [I(4, 3, dtype="int32", lo=-100, hi=100), I(3, dtype="int32", lo=-9, hi=99)],
        opset=18, **EXACT)
    row(_op, "u8", [I(7, dtype="uint8", lo=0, hi=255), I(7, dtype="uint8", lo=0, hi=255, seed=1)],
        opset=18, **EXACT)
row("BitwiseNot", "i16", [I(6, dtype="int16", lo=-300, hi=300)], opset=18, **EXACT)
row("BitwiseNot", "u8", [I(6, dtype="uint8", lo=0, hi=255)], opset=18, **EXACT)

# -- Cast across dtypes ------------------------------------------------------------------------
_DT = {"float32": 1, "float16": 10, "float64": 11, "int64": 7, "int32": 6, "int8": 3,
       "uint8": 2, "bool": 9}
_SRC = {"float32": V([-3.7, -1.0, -0.2, 0.0, 0.6, 1.5, 2.5, 100.9], "float32"),
        "float16": V([-3.5, -1.0, -0.25, 0.0, 0.5, 1.5, 2.5, 100.5], "float16"),
        "int64": V([-100, -3, -1, 0, 1, 2, 7, 120]),
        "int32": V([-100, -3, -1, 0, 1, 2, 7, 120], "int32"),
        "int8": V([-100, -3, -1, 0, 1, 2, 7, 120], "int8"),
        "uint8": V([0, 1, 2, 3, 7, 100, 200, 255], "uint8"),
        "bool": V([True, False, True, True, False, False, True, False], "bool")}
for _s, _src in _SRC.items():
    for _d, _code in _DT.items():
        if _s == _d:
            continue
        if _s.startswith("float") and _d in ("int8", "uint8", "int32", "int64") and \
                _s != "float16":
            # float -> narrow int is undefined out of range; keep values representable.
            _src = V([-3.7, -1.0, -0.2, 0.0, 0.6, 1.5, 2.5, 100.9] if _d != "uint8" else
                     [0.0, 0.2, 1.0, 1.5, 2.5, 3.9, 100.9, 200.1], _s)
        elif _s == "float16" and _d == "uint8":
            _src = V([0.0, 0.25, 1.0, 1.5, 2.5, 3.5, 100.5, 200.0], "float16")
        elif _s in ("int64", "int32", "int8") and _d == "uint8":
            _src = V([0, 1, 2, 3, 7, 100, 120, 5], _s)
        row("Cast", f"{_s}-to-{_d}", [_src], {"to": _code}, **EXACT)
        _src = _SRC[_s]
row("CastLike", "f32-like-i32", [X(2, 3, scale=5.0), C(np.zeros(1, np.int32), "int32")],
    opset=15, **EXACT)

# -- Expand / Tile -------------------------------------------------------------------------------
row("Expand", "bcast", [X(3, 1), C([2, 3, 4])], **EXACT)
row("Expand", "smaller-shape", [X(2, 3), C([3])], **EXACT)
row("Expand", "i64", [I(1, 4), C([3, 1])], **EXACT)
row("Tile", "2d", [X(2, 3), C([2, 3])], **EXACT)
row("Tile", "bool-3d", [B(2, 1, 3), C([1, 4, 2])], **EXACT)

# -- gathers / scatters ----------------------------------------------------------------------
row("GatherElements", "axis0", [X(3, 4), IDX([[0, 2, 1, -1], [2, 0, 0, 1]])], **EXACT)
row("GatherElements", "axis1-i32", [X(3, 4), IDX([[3, 0], [1, -4], [2, 2]], "int32")],
    {"axis": 1}, **EXACT)
row("GatherND", "full-index", [X(3, 4), IDX([[0, 1], [2, 3], [-1, 0]])], **EXACT)
row("GatherND", "slice", [X(3, 4, 2), IDX([[1], [0]])], **EXACT)
row("GatherND", "batch1", [X(2, 3, 4), IDX([[[1, 2]], [[0, -1]]])], {"batch_dims": 1}, **EXACT)
row("ScatterND", "rows", [X(4, 3), IDX([[1], [3]]), X(2, 3)], **EXACT)
row("ScatterND", "elements-add", [X(3, 3), IDX([[0, 1], [2, 2], [0, 1]]), X(3)],
    {"reduction": "add"}, opset=16)
row("ScatterND", "mul", [X(5), IDX([[1], [4]]), X(2)], {"reduction": "mul"}, opset=16)
row("ScatterND", "max", [X(2, 4), IDX([[0, 3], [1, 0]]), X(2)], {"reduction": "max"},
    opset=18, **EXACT)
row("ScatterElements", "axis0", [X(3, 3), IDX([[1, 0, 2], [0, 2, 1]]), X(2, 3)], **EXACT)
row("ScatterElements", "axis1-neg", [X(2, 5), IDX([[-1, 0], [2, 3]]), X(2, 2)], {"axis": 1},
    **EXACT)
row("ScatterElements", "add", [X(2, 4), IDX([[1, 1, 0]]), X(1, 3)],
    {"axis": 1, "reduction": "add"}, opset=16)
row("ScatterElements", "min-i64", [I(3, 2), IDX([[0, 0], [0, 1]]), I(2, 2, seed=2)],
    {"axis": 1, "reduction": "min"}, opset=18, **EXACT)

# -- reductions, arg, TopK ---------------------------------------------------------------------
for _op in ("ReduceL1", "ReduceL2", "ReduceLogSumExp", "ReduceSumSquare"):
    row(_op, "axis1-keep", [X(3, 4, 5), C([1])], opset=18)
    row(_op, "all-nokeep", [X(3, 4)], {"keepdims": 0}, opset=18)
    row(_op, "opset13-attr", [X(2, 3, 4)], {"axes": [0, 2]}, opset=13)
row("ReduceLogSum", "axis-last", [In((3, 6), dist="pos"), C([-1])], opset=18)
row("ReduceLogSumExp", "large", [X(2, 8, scale=60.0), C([1])], opset=18,
    reason="values near 100 must not overflow exp")
for _op in ("ArgMax", "ArgMin"):
    row(_op, "axis0", [X(4, 5)], **EXACT)
    row(_op, "axis-neg-nokeep", [X(2, 3, 4)], {"axis": -1, "keepdims": 0}, **EXACT)
    row(_op, "ties-last", [V([[1, 3, 3, 0], [2, 2, 1, 2]])], {"axis": 1,
                                                             "select_last_index": 1}, **EXACT)
    row(_op, "ties-first-f32", [V([[1, 3, 3, 0], [2, 2, 1, 2]], "float32")], {"axis": 1},
        **EXACT)
row("TopK", "largest", [X(3, 6), C([3])], n_out=2, **EXACT)
row("TopK", "smallest-axis0", [X(5, 4), C([2])], {"axis": 0, "largest": 0}, n_out=2, **EXACT)
row("TopK", "ties-i64", [V([[4, 1, 4, 2, 4], [0, 0, 0, 1, 1]]), C([4])], n_out=2, **EXACT)
row("TopK", "k-all", [X(2, 5), C([5])], n_out=2, **EXACT)

# -- CumSum / Trilu / OneHot / Hardmax / Softmax family ---------------------------------------
for _ex in (0, 1):
    for _rev in (0, 1):
        row("CumSum", f"axis1-ex{_ex}-rev{_rev}", [X(3, 5), C(1)],
            {"exclusive": _ex, "reverse": _rev})
row("CumSum", "i32-axis0", [I(4, 3, dtype="int32"), C(0, "int32")], **EXACT)
row("Trilu", "upper", [X(4, 5)], **EXACT)
row("Trilu", "lower-k-1", [X(2, 4, 4), C(-1)], {"upper": 0}, **EXACT)
row("Trilu", "upper-k2-i64", [I(3, 5), C(2)], **EXACT)
row("OneHot", "axis-last", [IDX([0, 2, -1, 1]), C(3), C([0.0, 1.0], "float32")], **EXACT)
row("OneHot", "axis0-i64-vals", [IDX([[1, 0], [3, 2]]), C(4), C([-1, 5])],
    {"axis": 0}, **EXACT)
# Integral values only: onnxruntime does not truncate fractional indices as the spec says.
row("OneHot", "float-indices", [V([0.0, 2.0, -1.0], "float32"), C(3.0, "float32"),
                                C([0.0, 1.0], "float32")], **EXACT)
row("Hardmax", "axis-last", [X(3, 5)], **EXACT)
row("Hardmax", "axis0-ties", [V([[1.0, 2.0], [1.0, 0.5]], "float32")], {"axis": 0}, **EXACT)
row("Softmax", "axis0", [X(4, 3, 2)], {"axis": 0})
row("LogSoftmax", "axis1", [X(2, 5, 3)], {"axis": 1})

# -- variadic Min/Max/Mean, Range/NonZero folds, Size/Shape/Identity ----------------------------
row("Max", "3-bcast", [X(3, 1), X(4), X(1, 4)], **EXACT)
row("Min", "i32", [I(5, dtype="int32"), I(5, dtype="int32", seed=3)], **EXACT)
row("Mean", "3-bcast", [X(2, 3), X(3), X(2, 1)])
row("Range", "int-const", [C(2), C(17), C(3)], **EXACT)
row("Range", "float-neg-delta", [C(3.0, "float32"), C(-1.0, "float32"),
                                 C(-0.75, "float32")], **EXACT)
row("NonZero", "const", [C([[1, 0, 3], [0, 0, 2]])], **EXACT)
row("Size", "3d", [X(2, 3, 4)], **EXACT)
row("Shape", "start-end", [X(2, 3, 4, 5)], {"start": 1, "end": -1}, opset=15, **EXACT)
row("Identity", "bool", [B(3, 2)], **EXACT)
row("Identity", "i8", [I(4, dtype="int8")], **EXACT)
row("Identity", "f16", [X(4, dtype="float16")], **EXACT)

# -- simple activations ---------------------------------------------------------------------
row("Softsign", "2d", [X(3, 4)])
row("Selu", "attrs", [X(3, 4)], {"alpha": 2.0, "gamma": 3.0})
row("Celu", "alpha", [X(3, 4)], {"alpha": 2.0})
row("ThresholdedRelu", "alpha", [X(3, 4)], {"alpha": 0.4})
row("Shrink", "bias", [X(3, 4)], {"bias": 0.5, "lambd": 0.6}, opset=9)
row("Mish", "2d", [X(3, 4)], opset=18)

assert len({c.id for c in CASES}) == len(CASES), "duplicate case ids"
_PARAMS = [pytest.param(c, id=c.id) for c in CASES]


@pytest.mark.parametrize("case", _PARAMS)
def test_general_op(case: Case, tmp_path) -> None:
    check_case(case, tmp_path)


def _all_const(case: Case) -> Case:
    ins = tuple(i if i is None or i.const else In(i.shape, i.dtype, True, i.value, i.dist,
                                                  i.scale) for i in case.inputs)
    return Case(case.id + "-fold", case.op, ins, case.attrs, case.opset, case.n_out, case.rtol,
                case.atol, case.exact, case.reason)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES
                                  if any(i is not None and not i.const for i in c.inputs)])
def test_general_fold_matches_ort(case: Case) -> None:
    """Every input an initializer: the frontend folds the node with its numpy rule."""
    from tilecc.frontends.onnx import from_onnx

    folded = _all_const(case)
    feeds, model = folded.feeds_and_model()
    assert not feeds
    ref = ort_run(model, feeds)
    graph = from_onnx(model)
    assert not graph.nodes, f"{case.id}: did not fold: {[n.op for n in graph.nodes]}"
    got = {o: graph.consts[o] for o in graph.outputs}
    assert_outputs_match(got, ref, folded)

"""passes/patterns.py: decomposed LayerNorm / Gelu spellings become one op; near misses stay."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.models.harness import compile_and_run, ort_run

SHAPE = [2, 5, 8]


def _model(nodes, consts: dict, outputs=("y",)):
    inits = [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in consts.items()]
    g = helper.make_graph(nodes, "p", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     SHAPE)],
                          [helper.make_tensor_value_info(o, TensorProto.FLOAT, SHAPE)
                           for o in outputs], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = helper.find_min_ir_version_for(list(m.opset_import))
    onnx.checker.check_model(m)
    return m


def _ln_nodes(square="pow", affine=True, eps_first=False):
    n = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[-1]),
         helper.make_node("Sub", ["x", "m"], ["d"])]
    n.append(helper.make_node("Pow", ["d", "two"], ["sq"]) if square == "pow"
             else helper.make_node("Mul", ["d", "d"], ["sq"]))
    n += [helper.make_node("ReduceMean", ["sq"], ["v"], axes=[-1]),
          helper.make_node("Add", ["eps", "v"] if eps_first else ["v", "eps"], ["ve"]),
          helper.make_node("Sqrt", ["ve"], ["s"]),
          helper.make_node("Div", ["d", "s"], ["nrm" if affine else "y"])]
    if affine:
        n += [helper.make_node("Mul", ["g", "nrm"], ["sc"]),
              helper.make_node("Add", ["sc", "b"], ["y"])]
    return n


LN_CONSTS = {"two": 2.0, "eps": 1e-5, "g": np.linspace(0.5, 1.5, 8), "b": np.linspace(-1, 1, 8)}


def _gelu_nodes(form):
    if form == "div-x-first":  # PyTorch: x * (1 + erf(x / sqrt2)) * 0.5
        return [helper.make_node("Div", ["x", "sqrt2"], ["a"]),
                helper.make_node("Erf", ["a"], ["e"]),
                helper.make_node("Add", ["e", "one"], ["p"]),
                helper.make_node("Mul", ["x", "p"], ["q"]),
                helper.make_node("Mul", ["q", "half"], ["y"])]
    if form == "mul-half-first":  # (x * 0.5) * (1 + erf(x * 1/sqrt2))
        return [helper.make_node("Mul", ["x", "rsqrt2"], ["a"]),
                helper.make_node("Erf", ["a"], ["e"]),
                helper.make_node("Add", ["one", "e"], ["p"]),
                helper.make_node("Mul", ["x", "half"], ["h"]),
                helper.make_node("Mul", ["h", "p"], ["y"])]
    return [helper.make_node("Div", ["x", "sqrt2"], ["a"]),  # ((1 + erf) * 0.5) * x
            helper.make_node("Erf", ["a"], ["e"]),
            helper.make_node("Add", ["e", "one"], ["p"]),
            helper.make_node("Mul", ["p", "half"], ["q"]),
            helper.make_node("Mul", ["q", "x"], ["y"])]


GELU_CONSTS = {"sqrt2": math.sqrt(2), "rsqrt2": 1 / math.sqrt(2), "one": 1.0, "half": 0.5}


def _ops_after(model):
    from tilecc.build import prepare_graph
    g, _ = prepare_graph(model)
    return [n.op for n in g.nodes]


def _check_numerics(model, tmp_path):
    feeds = {"x": np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32) * 2}
    ref = ort_run(model, feeds)
    got = compile_and_run(model, feeds, tmp_path)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-4, atol=1e-5, err_msg=k)


@pytest.mark.parametrize("square,affine,eps_first", [("pow", True, False), ("mul", True, True),
                                                     ("pow", False, False)])
def test_layernorm_spellings_become_one_op(square, affine, eps_first, tmp_path):
    model = _model(_ln_nodes(square, affine, eps_first), LN_CONSTS)
    ops = _ops_after(model)
    assert ops.count("LayerNormalization") == 1 and "ReduceMean" not in ops, ops
    _check_numerics(model, tmp_path)


@pytest.mark.parametrize("form", ["div-x-first", "mul-half-first", "half-then-x"])
def test_gelu_spellings_become_one_op(form, tmp_path):
    model = _model(_gelu_nodes(form), GELU_CONSTS)
    ops = _ops_after(model)
    assert ops == ["Gelu"], ops
    _check_numerics(model, tmp_path)


def test_near_misses_are_left_alone(tmp_path):
    # The centred value is also a graph output: fusing would lose it.
    model = _model(_ln_nodes(), LN_CONSTS, outputs=("y", "d"))
    assert "LayerNormalization" not in _ops_after(model)
    _check_numerics(model, tmp_path)
    # Reduction over a middle axis is not a LayerNorm over trailing axes.
    nodes = _ln_nodes(affine=False)
    nodes[0] = helper.make_node("ReduceMean", ["x"], ["m"], axes=[1])
    nodes[3] = helper.make_node("ReduceMean", ["sq"], ["v"], axes=[1])
    assert "LayerNormalization" not in _ops_after(_model(nodes, LN_CONSTS))
    # Wrong constant: x * 0.5 * (1 + erf(x / 2)) is not Gelu.
    consts = dict(GELU_CONSTS, sqrt2=2.0)
    model = _model(_gelu_nodes("div-x-first"), consts)
    assert "Gelu" not in _ops_after(model)
    _check_numerics(model, tmp_path)

"""compiler/topi/nchwc.py: pixel tiles with a partial last tile (small images on a 16-register
file) compute what onnxruntime computes (fp32: rtol 1e-4, atol 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.models.harness import import_tilecc, ort_run
from tilecc.targets import get_target
from tilecc.topi.nchwc import _pixel_tiles


def test_pixel_tiles_are_divisors_or_waste_at_most_an_eighth():
    assert _pixel_tiles(49, 12) == [1, 2, 3, 4, 5, 6, 7, 9, 10, 11]
    for pix in (7, 13, 49, 169, 784, 12544):
        for t in _pixel_tiles(pix, 28):
            assert (-pix % t) * 8 <= pix
        assert [t for t in range(1, 29) if pix % t == 0] == \
            [t for t in _pixel_tiles(pix, 28) if pix % t == 0]


def _conv_model(c: int, hw: int, k: int, seed: int):
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array((rng.standard_normal((c, c, k, k)) * 0.1).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(c).astype(np.float32), "b")
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[k, k],
                            pads=[k // 2] * 4)
    relu = helper.make_node("Relu", ["y"], ["z"])
    g = helper.make_graph([node, relu], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, hw, hw])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)], [w, b])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("hw,k", [(7, 1), (7, 3), (13, 1), (28, 1)])
def test_partial_tiles_match_onnxruntime_on_avx2(tmp_path, hw, k):
    """The AVX2 preset plans 12 accumulators: 49, 169 and 784 pixels have no divisor that
    fills them with two or three output-channel blocks, so the defaults take partial tiles,
    whose loads may run past the end of the input (the last reduction block)."""
    tilecc = import_tilecc()
    host = get_target("host")
    if not host.triple.startswith("x86_64") or host.vector_bits < 256:
        pytest.skip("host cannot run AVX2 code")
    model = _conv_model(64, hw, k, seed=hw + k)
    x = np.random.default_rng(hw).standard_normal((1, 64, hw, hw)).astype(np.float32)
    art = tilecc.compile(model, target="x86-64-avx2", default_logs=False)
    art.save(str(tmp_path / "m.tar"))
    got = tilecc.load(str(tmp_path / "m.tar")).run({"x": x})["z"]
    np.testing.assert_allclose(got, ort_run(model, {"x": x})["z"], rtol=1e-4, atol=1e-5)

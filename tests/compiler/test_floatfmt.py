"""tilecc.floatfmt (the numpy conversions the Cast fold uses) bit for bit against onnx's
reference Cast (onnx.reference.ops.op_cast.cast_to, ml_dtypes underneath): every code of each
format to float32, and float32 values across the whole range, with ties, subnormals, NaN,
inf and overflow, for saturate on/off and every float8_e8m0fnu round_mode."""

from __future__ import annotations

import warnings

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto
from onnx.reference.ops.op_cast import cast_to

from tilecc import floatfmt

ONNX_TYPE = {"bfloat16": TensorProto.BFLOAT16, "float8_e4m3fn": TensorProto.FLOAT8E4M3FN,
             "float8_e4m3fnuz": TensorProto.FLOAT8E4M3FNUZ,
             "float8_e5m2": TensorProto.FLOAT8E5M2,
             "float8_e5m2fnuz": TensorProto.FLOAT8E5M2FNUZ,
             "float8_e8m0fnu": TensorProto.FLOAT8E8M0}
FORMATS = list(floatfmt.FORMATS)


def modes(name: str) -> list[tuple[bool, str]]:
    rms = floatfmt.ROUND_MODES if floatfmt.FORMATS[name].kind == "e8m0" else ("up",)
    return [(sat, rm) for sat in (True, False) for rm in rms]


def f32_sweep() -> np.ndarray:
    """float32 bit patterns: every 16-bit prefix with the low half at 0, just below, at and
    just above the bfloat16 tie (so every float8 tie, subnormal and overflow edge is hit
    too), every code's float32 value, +-0, +-inf, NaNs, f32 subnormals, and random bits."""
    hi = np.arange(1 << 16, dtype=np.uint32) << np.uint32(16)
    low = np.array([0, 0x7FFF, 0x8000, 0x8001, 0xFFFF, 1], np.uint32)
    grid = (hi[:, None] | low[None, :]).ravel()
    special = np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000,
                        0x7F800001, 0x7FBFFFFF, 0x00000001, 0x007FFFFF, 0x80400000], np.uint32)
    rng = np.random.default_rng(0)
    rand = rng.integers(0, 1 << 32, 50_000, dtype=np.uint64).astype(np.uint32)
    codes = [floatfmt.to_f32_bits(np.arange(1 << f.bits), n) for n, f in floatfmt.FORMATS.items()]
    # Midpoints between neighbouring float8 values (exact ties) and one ulp either side.
    f8 = [c.view(np.float32) for n, c in zip(floatfmt.FORMATS, codes) if n.startswith("float8")]
    mids = []
    for v in f8:
        v = np.unique(v[np.isfinite(v)])
        m = ((v[:-1].astype(np.float64) + v[1:]) / 2).astype(np.float32)
        mids += [m, np.nextafter(m, np.float32(np.inf)), np.nextafter(m, np.float32(-np.inf))]
    mids = np.concatenate(mids)
    mids = np.concatenate([mids, -mids]).view(np.uint32)
    return np.concatenate([grid, special, rand, *codes, mids])


SWEEP = f32_sweep()


def reference(x: np.ndarray, name: str, saturate: bool, round_mode: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = cast_to(x, ONNX_TYPE[name], saturate, round_mode)
    return np.asarray(out).view(floatfmt.FORMATS[name].storage)


@pytest.mark.parametrize("name", FORMATS)
def test_every_code_to_float32_matches_onnx(name):
    f = floatfmt.FORMATS[name]
    codes = np.arange(1 << f.bits).astype(f.storage)
    want = np.asarray(cast_to(codes.view(floatfmt.np_dtype(name)), TensorProto.FLOAT, True)
                      ).view(np.uint32)
    got = floatfmt.to_f32_bits(codes, name)
    assert got.dtype == np.uint32
    np.testing.assert_array_equal(got, want)  # bit for bit, NaN patterns included


@pytest.mark.parametrize("name", FORMATS)
def test_float32_sweep_matches_onnx(name):
    x = SWEEP.view(np.float32)
    for saturate, round_mode in modes(name):
        want = reference(x, name, saturate, round_mode)
        got = floatfmt.from_f32_bits(SWEEP, name, saturate, round_mode)
        bad = np.nonzero(got != want)[0]
        assert bad.size == 0, (saturate, round_mode, [
            (hex(SWEEP[i]), hex(int(want[i])), hex(int(got[i]))) for i in bad[:5]])


def test_sweep_covers_the_edges():
    """The sweep really reaches what the formats treat specially."""
    x = SWEEP.view(np.float32)
    assert np.isnan(x).any() and np.isinf(x).any()
    tiny = np.abs(x[np.isfinite(x)])
    assert ((tiny > 0) & (tiny < np.finfo(np.float32).tiny)).any()  # f32 subnormals
    e4 = floatfmt.from_f32_bits(SWEEP, "float8_e4m3fn", saturate=False)
    assert (e4 == 0x7F).sum() > 100 and (e4 == 0x01).any()  # overflow -> NaN; subnormal
    e5 = floatfmt.from_f32_bits(SWEEP, "float8_e5m2", saturate=True)
    assert (e5 == 0x7B).sum() > 100  # saturated to max


@pytest.mark.parametrize("values, name, saturate, bits", [
    ([448.0, 464.0, 465.0, 1e9, np.inf, -np.inf], "float8_e4m3fn", True,
     [0x7E, 0x7E, 0x7E, 0x7E, 0x7E, 0xFE]),
    ([448.0, 464.0, 465.0, 1e9, np.inf, -np.inf], "float8_e4m3fn", False,
     [0x7E, 0x7E, 0x7F, 0x7F, 0x7F, 0xFF]),
    ([57344.0, 61440.0, np.inf, -0.0, -1e-30], "float8_e5m2", False,
     [0x7B, 0x7C, 0x7C, 0x80, 0x80]),
    ([240.0, 248.0, -0.0, -1e-30, np.nan], "float8_e4m3fnuz", False,
     [0x7F, 0x80, 0x00, 0x00, 0x80]),
    ([1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8, np.float32(3.4e38), np.nan], "bfloat16", True,
     [0x3F80, 0x3F82, 0x7F80, 0x7FC0]),
])
def test_documented_edge_values(values, name, saturate, bits):
    """Ties to even, the saturation / NaN / inf rules and fnuz's missing -0, spelled out."""
    x = np.array(values, np.float32).view(np.uint32)
    got = floatfmt.from_f32_bits(x, name, saturate)
    assert [int(v) for v in got] == bits


@pytest.mark.parametrize("src", ["float16", "float64", "int32"])
@pytest.mark.parametrize("name", ["bfloat16", "float8_e4m3fn", "float8_e5m2fnuz"])
def test_cast_array_from_other_types_matches_onnx(src, name):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(4000) * 300).astype(src)
    got = floatfmt.cast_array(x, name)
    assert got.dtype == np.dtype(getattr(ml_dtypes, name))
    np.testing.assert_array_equal(got.view(floatfmt.FORMATS[name].storage),
                                  reference(x, name, True, "up"))
    back = floatfmt.cast_array(got, "float16")
    want = np.asarray(cast_to(got, TensorProto.FLOAT16, True))
    np.testing.assert_array_equal(back.view(np.uint16), want.view(np.uint16))


def test_cast_array_keeps_0d_shape():
    out = floatfmt.cast_array(np.array(2.5, np.float32), "bfloat16")
    assert out.shape == () and float(out.astype(np.float32)) == 2.5


def test_storage_dtypes():
    assert floatfmt.storage_dtype("bfloat16") == np.uint16
    assert floatfmt.storage_dtype("float8_e5m2") == np.uint8
    assert floatfmt.storage_dtype("float16") == np.float16
    assert not floatfmt.is_exotic("float16") and floatfmt.is_exotic("float8_e8m0fnu")

"""float16 <-> float32 conversions on RISC-V without Zfhmin are integer code emitted inline
(codegen/floatfmt.py: Debian's RISC-V libgcc has no __extendhfsf2/__truncsfhf2). They must be
IEEE conversions, bit for bit: every one of the 65,536 half bit patterns widens exactly (NaNs
stay NaN), and float32 values narrow with round-to-nearest-even, through the subnormal range,
overflow to infinity and NaN, as numpy does. Run under qemu-riscv64 on a rv64gc artifact."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from tests.models.harness import import_tilecc
from tests.targets.crosstools import need_tools


def _cast_model(src: int, dst: int, n: int) -> onnx.ModelProto:
    g = helper.make_graph([helper.make_node("Cast", ["x"], ["y"], to=dst)], "cast",
                          [helper.make_tensor_value_info("x", src, [n])],
                          [helper.make_tensor_value_info("y", dst, [n])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _run(model, x, tmp_path):
    tilecc = import_tilecc()
    from tilecc.runtime.crunner import EmulatedModule
    from tilecc.targets import get_target

    t = get_target("riscv64")
    need_tools(t.linker, t.emulator()[0])
    path = tmp_path / "cast.tar"
    tilecc.compile(model, target=t).save(path)
    return next(iter(EmulatedModule(path).run({"x": x}).values()))


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Equal bits, or both NaN (a NaN's payload is not specified by the conversions)."""
    return (a.view(np.uint32 if a.itemsize == 4 else np.uint16)
            == b.view(np.uint32 if b.itemsize == 4 else np.uint16)) | (np.isnan(a) & np.isnan(b))


def test_every_half_widens_exactly(tmp_path):
    x = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    y = _run(_cast_model(TensorProto.FLOAT16, TensorProto.FLOAT, x.size), x, tmp_path)
    ok = _same(y, x.astype(np.float32))
    assert ok.all(), f"{(~ok).sum()} half values widen wrongly, e.g. {x[~ok][:4].view(np.uint16)}"


def test_float_narrows_like_numpy(tmp_path):
    rng = np.random.default_rng(0)
    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    exact = halves[np.isfinite(halves)].astype(np.float32)
    # Midpoints between neighbouring halves (ties round to even) and a step either side.
    up = np.nextafter(exact, np.float32(np.inf))
    mid = ((exact.astype(np.float64)[:-1] + exact.astype(np.float64)[1:]) / 2).astype(np.float32)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 65504.0, 65519.996, 65520.0, 1e-8,
                        2.0 ** -25, 2.0 ** -24, 3e38, -3e38, 5.96e-8, 6.1e-5], np.float32)
    rand = rng.standard_normal(20000).astype(np.float32) * np.float32(10.0) ** rng.integers(
        -9, 6, 20000).astype(np.float32)
    x = np.concatenate([exact, up, mid, np.nextafter(mid, np.float32(0)), special, rand])
    x = x.astype(np.float32)
    y = _run(_cast_model(TensorProto.FLOAT, TensorProto.FLOAT16, x.size), x, tmp_path)
    with np.errstate(over="ignore"):  # overflow to inf is what is being checked
        ok = _same(y, x.astype(np.float16))
    assert ok.all(), f"{(~ok).sum()} of {x.size} values narrow wrongly, e.g. {x[~ok][:4]!r}"

"""One build driver for every backend: the OpenCL backend gets what the CPU path has (in-place
Concat, per-kernel profiles, fp16 storage sizes), and all three backends report the same plan.

Numerics against onnxruntime: fp32 rtol 1e-4, atol 1e-5 (as the CPU concat tests)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.codegen.test_opencl import require_opencl
from tests.models.harness import import_tilecc, ort_run
from tests.passes.test_fuse_memory import CONCATS, _concat_model

OPENCL = "mali-g76"
# Blocked layouts are CPU-only, so the OpenCL build of each case sees its plain graph.
OPENCL_CONCATS = {"fire": 1, "nested": 2, "batch2": 0, "repeated_input": 0,
                  "plain_slice_is_an_output": 0}


def _input(model) -> np.ndarray:
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    return np.random.default_rng(2).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("case", sorted(OPENCL_CONCATS))
def test_opencl_concat_inputs_written_in_place(tmp_path, case):
    """The producers of a batch-1 channel concat write their slices of its buffer on the device
    too (offsets into one arena buffer), so no concat kernel is launched."""
    require_opencl()
    tilecc = import_tilecc()
    model = _concat_model(**CONCATS[case][0])
    art = tilecc.compile(model, target=OPENCL, default_logs=False)
    in_place = OPENCL_CONCATS[case]
    assert len(art.metadata["arena"]["concats"]) == in_place
    ops = [op for k in art.metadata["kernels"] for op in k["ops"]]
    assert ("Concat" in ops) == (in_place < 1 + CONCATS[case][0].get("nested", False))
    x = _input(model)
    got = tilecc.load(art.save(tmp_path / "m.tar")).run({"x": x})
    want = ort_run(model, {"x": x})
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5)


def test_opencl_fp16_arena_is_half_of_fp32():
    """fp16 storage keeps every float tensor as half on the device: the arena (all float
    intermediates here) is sized at 2 bytes per element, half the fp32 one."""
    tilecc = import_tilecc()
    model = _concat_model(width=13)
    sizes = {p: tilecc.compile(model, target=OPENCL, precision=p,
                               default_logs=False).metadata["arena"]["arena_bytes"]
             for p in ("fp32", "fp16")}
    assert sizes["fp16"] * 2 == pytest.approx(sizes["fp32"], rel=0.02), sizes


def test_opencl_profile_has_one_row_per_kernel_call(tmp_path):
    """Module.profile times each launch with OpenCL profiling events and sums them per kernel
    call, the same table the CPU module returns."""
    require_opencl()
    tilecc = import_tilecc()
    model = _concat_model()
    from tilecc.build import build

    art = build(model, target=OPENCL, profile=True)
    mod = tilecc.load(art.save(tmp_path / "m.tar"))
    rows = mod.profile({"x": _input(model)}, runs=2)
    assert [r["kernel"] for r in rows] == [k["kernel"] for k in art.metadata["kernels"]]
    assert all(r["time_ms"] > 0 for r in rows)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)


@pytest.mark.parametrize("target", ["host", "riscv64-bare", OPENCL])
def test_every_backend_reports_one_plan(target):
    """CPU, bare-metal and OpenCL builds come out of the same driver: the same kernels, the
    same memory-plan fields, and a plan whose buffers never overlap while both are live."""
    import dataclasses

    from tilecc.targets import get_target

    tilecc = import_tilecc()
    tgt = (dataclasses.replace(get_target("riscv64"), bare_metal=True)
           if target == "riscv64-bare" else target)
    art = tilecc.compile(_concat_model(width=13), target=tgt, default_logs=False)
    arena = art.metadata["arena"]
    for key in ("arena_bytes", "naive_bytes", "num_kernels", "unique_kernels", "tensors",
                "aliases", "concats", "params", "output_values"):
        assert key in arena, (target, key)
    assert arena["num_kernels"] == len(art.metadata["kernels"])
    ts = arena["tensors"]
    for i, a in enumerate(ts):
        assert a["offset"] + a["nbytes"] <= arena["arena_bytes"]
        for b in ts[i + 1:]:
            live = a["first"] <= b["last"] and b["first"] <= a["last"]
            apart = (a["offset"] + a["nbytes"] <= b["offset"]
                     or b["offset"] + b["nbytes"] <= a["offset"])
            assert not live or apart, (a, b)

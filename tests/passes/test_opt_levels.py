"""-O0..-O3 select the pass sets passes/pipeline.py documents, and each builds a different,
correct artifact of a CNN: -O0 one kernel per op and no LLVM optimisation, -O1 fused kernels
on plain NCHW, -O2 the blocked layout, -O3 reassociated float additions. Every level matches
onnxruntime (fp32 rtol 1e-4/atol 1e-5; -O3's reassociated sums are within it too).
`--print-ir-after` takes any pass, the late ones (blocked layout, fusion) included."""

from __future__ import annotations

import io
import sys
import tarfile

import numpy as np
import pytest

from tests.models.builders import random_inputs, resnet_block_model
from tests.models.harness import import_tilecc, ort_run


def test_levels_differ_and_match_onnxruntime(tmp_path):
    tilecc = import_tilecc()
    from tilecc.runtime.artifact import LIB_PATH

    model = resnet_block_model()
    x = random_inputs(model)
    ref = next(iter(ort_run(model, x).values()))
    libs, kernels, ops = {}, {}, {}  # per level: library bytes, kernel calls, ops run
    for level in range(4):
        art = tilecc.compile(model, opt_level=level)
        path = tmp_path / f"O{level}.tar"
        art.save(path)
        with tarfile.open(path) as tf:
            libs[level] = tf.extractfile(LIB_PATH).read()
        kernels[level] = len(art.metadata["kernels"])
        ops[level] = {op for k in art.metadata["kernels"] for op in k["ops"]}
        out = next(iter(tilecc.load(path).run(x).values()))
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5, err_msg=f"-O{level}")
    print({lvl: (kernels[lvl], len(libs[lvl])) for lvl in libs})
    assert kernels[0] > kernels[1]  # fusion starts at -O1
    assert len(set(libs.values())) == 4  # four different builds
    assert "ConvNCHWc" in ops[2] and "ConvNCHWc" not in ops[1]  # the blocked layout at -O2
    assert "BatchNormalization" in ops[0] and "BatchNormalization" not in ops[1]


@pytest.mark.parametrize("name", ["lower_qdq", "to_blocked_layout", "pack_weights",
                                  "prepare_outputs", "fuse_ops"])
def test_print_ir_after_any_pass(name, monkeypatch):
    tilecc = import_tilecc()
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)
    tilecc.compile(resnet_block_model(), print_ir_after=[name])
    assert f"// IR after {name}" in buf.getvalue()


def test_print_ir_after_unknown_pass_lists_them():
    tilecc = import_tilecc()
    with pytest.raises(ValueError, match=r"unknown pass.*fuse_ops"):
        tilecc.compile(resnet_block_model(), print_ir_after=["nope"])

"""BERT encoder and GPT block (tests/models/builders.py) vs onnxruntime at fp32, and the
pattern rewrites that make each decomposed LayerNorm/Gelu one kernel (read back from the
artifact's `kernels` metadata)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.models import builders
from tests.models.harness import import_tilecc, ort_run


def _check(model, feeds, tmp_path, rtol=1e-4, atol_rel=1e-5):
    tilecc = import_tilecc()
    art = tilecc.compile(model, target="host")
    path = tmp_path / "model.tar"
    art.save(str(path))
    got = tilecc.load(str(path)).run(dict(feeds))
    ref = ort_run(model, feeds)
    for name, want in ref.items():
        scale = float(np.abs(want).max())
        err = float(np.abs(got[name] - want).max())
        print(f"{name}: max |ref| {scale:.3g}, max abs err {err:.3g}")
        np.testing.assert_allclose(got[name], want, rtol=rtol, atol=atol_rel * scale,
                                   err_msg=name)
    return art.metadata["kernels"]


def _ops_per_kernel(kernels):
    return [tuple(k["ops"]) for k in kernels]


@pytest.mark.parametrize("layers,seq,hidden,heads", [(2, 128, 256, 4), (1, 16, 64, 2)])
def test_bert_encoder_matches_ort(layers, seq, hidden, heads, tmp_path):
    model = builders.bert_encoder(layers=layers, seq=seq, hidden=hidden, heads=heads)
    rng = np.random.default_rng(1)
    mask = np.ones((1, seq), np.int64)
    mask[0, seq * 3 // 4:] = 0  # padded tail
    feeds = {"input_ids": rng.integers(0, 1000, (1, seq)).astype(np.int64),
             "attention_mask": mask}
    # LayerNorm outputs are O(1); 1e-5 of the largest output absorbs float32 reduction-order
    # differences through 2 layers of attention and 256/1024-long dot products.
    kernels = _check(model, feeds, tmp_path, atol_rel=1e-5)
    ops = _ops_per_kernel(kernels)
    n_ln = 1 + 2 * layers
    assert sum(o[0] == "LayerNormalization" for o in ops) == n_ln, ops
    assert sum("Gelu" in o for o in ops) == layers, ops
    for o in ops:
        assert "ReduceMean" not in o and "Erf" not in o and "Sqrt" not in o, o


def test_gpt_block_matches_ort(tmp_path):
    model = builders.gpt_block(seq=64, hidden=256, heads=4)
    x = np.random.default_rng(2).standard_normal((1, 64, 256)).astype(np.float32)
    kernels = _check(model, {"hidden_states": x}, tmp_path, atol_rel=1e-5)
    ops = _ops_per_kernel(kernels)
    assert sum(o[0] == "LayerNormalization" for o in ops) == 2, ops
    assert sum("Gelu" in o for o in ops) == 1, ops

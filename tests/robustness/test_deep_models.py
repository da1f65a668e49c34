"""Deep models compile or are refused with one message, never a RecursionError (exit 70) or
a compile that does not end: nested Loops against the unroll budget, long fused chains
(split into kernels of at most MAX_GROUP ops), wide Concats (a tree of Concats), long node
chains. Each runs in a subprocess (deep_models.py) under a timeout that only catches hangs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
DRIVER = Path(__file__).with_name("deep_models.py")


def _compile(kind: str, n: int, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DRIVER), kind, str(n), str(tmp_path)],
                          capture_output=True, text=True, timeout=900, check=False)


def test_nested_loops_refused_by_the_unroll_budget(tmp_path):
    proc = _compile("nested_loops", 30, tmp_path)
    assert proc.returncode == 6, proc.stderr
    assert "node 'loop0' (Loop): unrolling would convert about" in proc.stderr
    assert "over the budget of 100000 (nested Loops multiply their trip counts)" in proc.stderr


def test_nested_loops_within_the_budget_unroll(tmp_path):
    proc = _compile("nested_loops", 6, tmp_path)  # 2^6 additions, equal to onnxruntime
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("kind,n", [("add_mul", 330), ("loop", 400), ("concat", 2000),
                                    ("chain", 10000)])
def test_deep_model_compiles_and_matches_onnxruntime(tmp_path, kind, n):
    proc = _compile(kind, n, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]

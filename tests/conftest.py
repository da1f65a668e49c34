"""Shared fixtures and helpers for the test suite.

Helpers (importable as `tests.models.harness` from any test module; this file puts the repo
root on `sys.path` and re-exports them):
- `compile_and_run(model, inputs, tmp_path)`: tilecc.compile -> save -> load -> run;
- `ort_run(model, inputs)`: onnxruntime reference outputs by name;
- `import_tilecc()`: tilecc, or a skip with the import error (a failure under CI).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # lets tests import `tests.models.*`
    sys.path.insert(0, str(REPO_ROOT))

from tests.models.harness import compile_and_run, import_tilecc, ort_run

__all__ = ["compile_and_run", "import_tilecc", "ort_run"]


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh seeded generator per test."""
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tilecc():
    """The tilecc module (skips when it is not importable, fails under CI)."""
    return import_tilecc()

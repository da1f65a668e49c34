"""Small models and helpers for the autotuner tests (tiny budgets: a few trials each)."""

from __future__ import annotations

import numpy as np
import pytest


def _runnable_preset() -> str:
    """The widest x86-64 preset this machine runs: the tests build and run its code here."""
    from tilecc.targets import get_target
    return "x86-64-avx512" if get_target("host").vector_bits >= 512 else "x86-64-avx2"


TARGET = _runnable_preset()


def conv_model(cin: int = 8, cout: int = 64, hw: int = 12, seed: int = 0):
    """One 3x3 conv + ReLU: a single tunable task with a small knob space."""
    from tests.models.builders import GraphBuilder

    g = GraphBuilder("conv", seed)
    x = g.conv_bn(g.input((1, cin, hw, hw)), cout, 3, 1, pads=(1, 1, 1, 1))
    return g.build(x)


@pytest.fixture
def target():
    from tilecc.targets import get_target
    return get_target(TARGET)


def make_record(workload="w", config=None, costs=(1e-3,), error="none", target_key="t/k/c",
                template="conv.generic"):
    from tilecc.autotune.record import ErrorKind, Record
    return Record(target_key, workload, template, 1, dict(config or {}), tuple(costs),
                  ErrorKind(error))


@pytest.fixture
def rng():
    return np.random.default_rng(0)

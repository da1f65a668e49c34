"""Cost models of the model-guided tuner: interface, ranking skill on a synthetic cost, the
ridge fallback without scikit-learn, and the option through TuneOptions and the CLI."""

from __future__ import annotations

import math
import sys

import numpy as np
import onnx
import pytest

from tilecc.autotune.features import GBDTModel, RidgeModel, make_cost_model
from tilecc.autotune.measure import MeasureOptions
from tilecc.autotune.record import read_records
from tilecc.autotune.task import ConfigSpace, extract_tasks
from tilecc.autotune.tune import TuneOptions, tune_tasks
from tilecc.autotune.tuner import ModelTuner
from tilecc.errors import InputError

from .conftest import TARGET, conv_model

pytest.importorskip("sklearn")  # the test extra has it; scipy comes with it
spearmanr = pytest.importorskip("scipy.stats").spearmanr


def _synthetic(rng, n=48, d=5):
    """Features and a log-cost that is monotone in the first two features, with an
    interaction and noise, as knob effects on a kernel's run time are."""
    X = rng.uniform(0, 4, (n, d))
    y = 0.8 * X[:, 0] + 0.3 * X[:, 1] ** 2 - 0.2 * X[:, 0] * X[:, 1] \
        + rng.normal(0, 0.1, n)
    return X, y


@pytest.mark.parametrize("name", ["ridge", "gbdt"])
def test_fit_predict_shapes(name, rng):
    X, y = _synthetic(rng)
    m = make_cost_model(name)
    assert m.predict(X[:3]).shape == (3,)  # unfitted: a neutral ranking, not an error
    p = m.fit(X[:20], y[:20]).predict(X[20:])
    assert p.shape == (len(X) - 20,)
    assert np.all(np.isfinite(p))


@pytest.mark.parametrize("name", ["ridge", "gbdt"])
def test_ranks_a_monotone_cost_better_than_chance(name, rng):
    X, y = _synthetic(rng)
    p = make_cost_model(name).fit(X[:24], y[:24]).predict(X[24:])
    assert spearmanr(p, y[24:])[0] > 0.6
    assert y[24:][np.argmin(p)] < np.median(y[24:])


def test_gbdt_falls_back_to_ridge_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # `import sklearn...` now raises
    monkeypatch.setitem(sys.modules, "sklearn.ensemble", None)
    with pytest.raises(ImportError):
        GBDTModel()
    with pytest.warns(UserWarning, match="using ridge"):
        assert isinstance(make_cost_model("gbdt"), RidgeModel)
    with pytest.warns(UserWarning):
        tuner = ModelTuner(_FakeTask(), 0, cost_model="gbdt")
    assert isinstance(tuner.model, RidgeModel)


def test_unknown_cost_model_is_an_input_error():
    with pytest.raises(InputError, match="unknown cost model"):
        make_cost_model("forest")


class _FakeTask:
    """A knob space whose features are the knob values (ModelTuner never lowers)."""

    def __init__(self):
        self.space = ConfigSpace({"a": list(range(1, 9)), "b": list(range(1, 9))})


def _cost(c):
    return 1e-3 * (1 + (c["a"] - 6) ** 2 + 0.5 * (c["b"] - 3) ** 2 + 0.2 * c["a"] * c["b"])


@pytest.mark.parametrize("name", ["ridge", "gbdt"])
def test_model_tuner_finds_the_optimum_of_a_smooth_space(name):
    best = min(_cost(c) for c in _FakeTask().space)
    found = []
    for seed in range(4):
        tuner = ModelTuner(_FakeTask(), seed, cost_model=name)
        tuner.feat = lambda c: [float(c["a"]), float(c["b"])]
        for _ in range(3):  # 24 of 64 configs: random search has the optimum 3 times in 8
            cfgs = tuner.next_batch(8)
            tuner.update(cfgs, [_cost(c) for c in cfgs])
        found.append(min(tuner.ys) == best)
    assert sum(found) >= 3


def test_tune_with_gbdt_cost_model_end_to_end(tmp_path, target):
    task = extract_tasks(conv_model(), target)[0]
    log = tmp_path / "t.jsonl"
    quiet = MeasureOptions(parallel=1, repeat=2, min_repeat_ms=2, timeout=20)
    # default + two random batches of 4, then one batch the model ranks
    opts = TuneOptions(trials=13, tuner="model", cost_model="gbdt", batch=4, measure=quiet)
    (st,) = tune_tasks([task], target, log, opts)
    assert isinstance(st.tuner.model, GBDTModel) and st.tuner.model.fitted
    recs = [r for r in read_records(log) if r.purpose == "search"]  # not the confirmations
    assert len(recs) == 13 and math.isfinite(st.best_cost)


@pytest.mark.parametrize("flag", [[], ["--cost-model", "ridge"], ["--cost-model", "gbdt"]])
def test_cli_cost_model_option(flag, tmp_path, monkeypatch):
    import tilecc.autotune.tune as tune_mod
    from tilecc.autotune.features import DEFAULT_COST_MODEL
    from tilecc.cli import main

    seen = []
    monkeypatch.setattr(tune_mod, "tune", lambda model, tgt, log, opts, *a, **k: seen.append(opts)
                        or [])
    model = tmp_path / "m.onnx"
    onnx.save(conv_model(), str(model))
    assert main(["tune", str(model), "-t", TARGET, "--log", str(tmp_path / "l.jsonl"),
                 *flag]) == 0
    assert seen[0].cost_model == (flag[1] if flag else DEFAULT_COST_MODEL)


def test_cli_rejects_unknown_cost_model(tmp_path):
    from tilecc.cli import main

    # A usage error: exit code 2 from main() in-process, not a SystemExit escaping it.
    assert main(["tune", "m.onnx", "--log", str(tmp_path / "l.jsonl"),
                 "--cost-model", "forest"]) == 2

"""Cost models for the autotuner, compared offline on full tuning logs; prints Markdown tables.

    python benchmarks/bench_cost_model.py --logs L1.jsonl L2.jsonl ... \\
        --models mobilenet_v2,resnet18,... [--seeds 10] [--ks 8,16,32] [--min-records 12]

The study in BENCHMARKS.md used `--logs benchmarks/data/cost_model_logs.jsonl.gz` (.gz is read
directly). The logs should hold (nearly) every config of each task, e.g. from
`tilecc tune M.onnx --log L.jsonl --tuner random --trials 2000 --early-stopping 100000`.
Tasks are rebuilt from `--models` (names as in bench_vs_ort.py) and matched to the logs by
workload key; features come from the tuner's own Featurizer.

Two studies, each averaged over tasks (equal weight) and seeds:

1. Ranking: train on k random measured configs, rank the rest. Spearman and Kendall rank
   correlation between predicted and measured cost, top-1 / top-5 recall (the best of the rest
   is the model's first pick / among its first five), regret of the first pick (its cost over
   the best of the rest), and fit + predict time.
2. Replay: the recorded costs are an oracle (failed or unrecorded configs cost inf) and
   ModelTuner's batch loop runs over it as in `tilecc tune` (batch 8, random until 6 results,
   eps = 0.2 random share) with each cost model, and RandomTuner as the baseline. Reported:
   trials until the best found equals the task's best and is within 2% / 5% of it, and best
   found / task best after 8, 16 and 24 trials.

Several logs of the same model (e.g. a second random run) are combined: each config costs the
geometric mean of its measurements, and the spread between the runs is reported as the noise
ceiling (no model can rank better than a second measurement does).
"""

from __future__ import annotations

import argparse
import gzip
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from tilecc.autotune.features import Featurizer, GBDTModel, RidgeModel
from tilecc.autotune.record import Record, config_key, read_records
from tilecc.autotune.task import extract_tasks
from tilecc.autotune.tuner import ModelTuner, RandomTuner
from tilecc.targets import get_target


class RankTarget:
    """A model fit on the rank of the cost instead of log(cost): only the order matters to
    the tuner, and ranks bound the pull of outliers."""

    def __init__(self, inner):
        self.inner = inner

    def fit(self, X, y):
        r = np.argsort(np.argsort(y)) / max(1, len(y) - 1)
        self.inner.fit(X, r)
        return self

    def predict(self, X):
        return self.inner.predict(X)


class Ensemble:
    """Mean of the members' rank-normalised predictions."""

    def __init__(self, *members):
        self.members = members

    def fit(self, X, y):
        for m in self.members:
            m.fit(X, y)
        return self

    def predict(self, X):
        ranks = [np.argsort(np.argsort(m.predict(X))) for m in self.members]
        return np.mean(ranks, axis=0)


MODELS = {
    "ridge": lambda seed: RidgeModel(),
    "gbdt": lambda seed: GBDTModel(seed=seed),
    "gbdt-rank": lambda seed: RankTarget(GBDTModel(seed=seed)),
    "ridge+gbdt": lambda seed: Ensemble(RidgeModel(), GBDTModel(seed=seed)),
}
# Settings tried for the GBDT (`--sweep`); the winner became GBDTModel's defaults.
SWEEP = {
    "gbdt it30 lr.2 leaf4": {"max_iter": 30, "learning_rate": 0.2, "max_leaf_nodes": 4},
    "gbdt it60 lr.15 leaf8": {"max_iter": 60, "learning_rate": 0.15, "max_leaf_nodes": 8},
    "gbdt it100 lr.1 leaf8": {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 8},
    "gbdt it200 lr.05 leaf16": {"max_iter": 200, "learning_rate": 0.05, "max_leaf_nodes": 16},
    "gbdt it60 lr.15 leaf8 msl1": {"max_iter": 60, "learning_rate": 0.15, "min_samples_leaf": 1},
    "gbdt it60 lr.15 leaf8 msl4": {"max_iter": 60, "learning_rate": 0.15, "min_samples_leaf": 4},
}


def _records(path: str):
    if not path.endswith(".gz"):
        yield from read_records(path)
        return
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield Record.from_json(line)


def load_tasks(model_names: list[str], log_paths: list[str], target):
    """[(task, featurizer, {config_key: cost}, {config_key: [costs]})] for tasks in the logs.
    A config measured in several logs costs the geometric mean of its successful
    measurements (inf when none succeeded): run-to-run noise here is ~15%, and the mean of
    two runs is a steadier oracle than either."""
    from bench_vs_ort import load_model

    tasks = {}
    for name in model_names:
        model, _ = load_model(name)
        for t in extract_tasks(model, target):
            tasks.setdefault(t.workload, (name, t))
    runs: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for p in log_paths:
        for r in _records(p):
            if r.target == target.key and r.config and r.workload in tasks:
                runs[r.workload][r.config_key].append(r.cost)
    out = []
    for wl, (name, t) in tasks.items():
        if wl in runs:
            t.name = f"{name}/{t.name}#{len(out)}"
            costs = {}
            for k, cs in runs[wl].items():
                ok = [c for c in cs if math.isfinite(c)]
                costs[k] = math.exp(np.mean(np.log(ok))) if ok else math.inf
            out.append((t, Featurizer(t, target), costs, runs[wl]))
    return out


def noise_study(tasks):
    """Rank agreement of two measurements of the same configs: the ceiling for any model."""
    rhos, taus, dev, same = [], [], [], []
    for _, _, _, runs in tasks:
        pairs = [cs[:2] for cs in runs.values() if len(cs) >= 2 and all(map(math.isfinite, cs))]
        if len(pairs) < 6:
            continue
        a, b = np.array(pairs).T
        rho, tau = _rank_corr(a, b)
        rhos.append(rho)
        taus.append(tau)
        dev.extend(np.abs(np.log(b / a)))
        same.append(a[np.argmin(b)] <= 1.02 * a.min())
    return {"tasks": len(rhos), "spearman": np.mean(rhos), "kendall": np.mean(taus),
            "median |log(run2/run1)|": np.median(dev),
            "run 2's best within 2% of run 1's best (run 1 costs)": np.mean(same)}


def _rank_corr(p, y):
    from scipy.stats import kendalltau, spearmanr

    if np.ptp(p) == 0:
        return 0.0, 0.0  # a constant prediction orders nothing
    return float(spearmanr(p, y)[0]), float(kendalltau(p, y)[0])


def ranking_study(tasks, models, ks, seeds, min_records):
    acc = defaultdict(lambda: defaultdict(list))  # (model, k) -> metric -> values
    for task, feat, costs, _ in tasks:
        ok = [(k, c) for k, c in costs.items() if math.isfinite(c)]
        if len(ok) < min_records:
            continue
        cfgs = {config_key(c): c for c in task.space}
        X = np.array([feat(cfgs[k]) for k, _ in ok])
        y = np.log([c for _, c in ok])
        for k in ks:
            if len(ok) - k < 4:
                continue
            for seed in range(seeds):
                idx = np.random.default_rng(seed).permutation(len(ok))
                tr, te = idx[:k], idx[k:]
                for name, make in models.items():
                    t0 = time.perf_counter()
                    p = make(seed).fit(X[tr], y[tr]).predict(X[te])
                    dt = time.perf_counter() - t0
                    rho, tau = _rank_corr(p, y[te])
                    order = np.argsort(p, kind="stable")
                    best = int(np.argmin(y[te]))
                    m = acc[(name, k)]
                    m["spearman"].append(rho)
                    m["kendall"].append(tau)
                    m["top1"].append(order[0] == best)
                    m["top5"].append(best in order[:5])
                    m["regret"].append(math.exp(y[te][order[0]] - y[te][best]))
                    m["ms"].append(dt * 1e3)
                    m["tasks"].append(task.name)
    return acc


def replay(tuner, costs, batch=8):
    """Best-found cost after each trial when `tuner` tunes against the oracle `costs`."""
    curve, best = [], math.inf
    while tuner.has_next():
        cfgs = tuner.next_batch(batch)
        if not cfgs:
            break
        ys = [costs.get(config_key(c), math.inf) for c in cfgs]
        tuner.update(cfgs, ys)
        for y in ys:
            best = min(best, y)
            curve.append(best)
    return curve


def replay_study(tasks, models, seeds, min_space, target):
    acc = defaultdict(lambda: defaultdict(list))
    for task, feat, costs, _ in tasks:
        finite = [c for c in costs.values() if math.isfinite(c)]
        if task.space.size < min_space or not finite:
            continue
        best = min(finite)
        for seed in range(seeds):
            for name in ["random", *models]:
                if name == "random":
                    tuner = RandomTuner(task, seed)
                else:
                    tuner = ModelTuner(task, seed, target)
                    tuner.feat, tuner.model = feat, models[name](seed)
                curve = replay(tuner, costs)
                m = acc[name]
                for tol, key in ((1.0, "to best"), (1.02, "to 2%"), (1.05, "to 5%")):
                    hit = next((i + 1 for i, c in enumerate(curve) if c <= best * tol),
                               len(curve) + 1)
                    m[key].append(hit)
                    m[key + " share"].append(hit / task.space.size)
                for n in (8, 16, 24):
                    m[f"@{n}"].append(curve[min(n, len(curve)) - 1] / best)
                m["tasks"].append(task.name)
    return acc


def _fmt(v):
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def print_ranking(acc, ks, models):
    cols = ["spearman", "kendall", "top1", "top5", "regret", "ms"]
    print("| model | k | tasks | " + " | ".join(cols) + " |")
    print("|---|---:|---:|" + "---:|" * len(cols))
    for k in ks:
        for name in models:
            m = acc.get((name, k))
            if not m:
                continue
            vals = [float(np.mean(np.asarray(m[c], float))) for c in cols]
            print(f"| {name} | {k} | {len(set(m['tasks']))} | "
                  + " | ".join(_fmt(v) for v in vals) + " |")


def print_replay(acc, base="ridge"):
    cols = ["to best", "to 2%", "to 5%", "to 2% share", "@8", "@16", "@24"]
    print(f"| tuner | tasks | trials to best | vs {base} (mean ± s.e.) | to within 2% | "
          "to within 5% | share of space to 2% | best/opt @8 | @16 | @24 |")
    print("|---|---:|" + "---:|" * (len(cols) + 1))
    for name, m in acc.items():
        vals = [float(np.mean(m[c])) for c in cols]
        # paired over (task, seed): both tuners saw the same task with the same seed
        d = np.asarray(m["to best"], float) - np.asarray(acc[base]["to best"], float)
        diff = f"{d.mean():+.2f} ± {d.std(ddof=1) / math.sqrt(len(d)):.2f}" \
            if name != base and len(d) > 1 else ""
        print(f"| {name} | {len(set(m['tasks']))} | {_fmt(vals[0])} | {diff} | "
              + " | ".join(_fmt(v) for v in vals[1:]) + " |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--logs", nargs="+", required=True)
    ap.add_argument("--models", required=True, help="comma-separated model names")
    ap.add_argument("--target", default="host")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--ks", default="8,16,32")
    ap.add_argument("--min-records", type=int, default=12,
                    help="ranking study: tasks with at least this many successful configs")
    ap.add_argument("--min-space", type=int, default=12,
                    help="replay study: tasks whose space has at least this many configs")
    ap.add_argument("--sweep", action="store_true", help="compare GBDT settings instead")
    ap.add_argument("--skip", default="", help="comma-separated studies to skip: rank,replay")
    args = ap.parse_args(argv)
    target = get_target(args.target)
    ks = [int(k) for k in args.ks.split(",")]
    skip = set(args.skip.split(","))
    models = dict(MODELS)
    if args.sweep:
        models = {"ridge": MODELS["ridge"]}
        models.update({n: (lambda s, kw=kw: GBDTModel(seed=s, **kw)) for n, kw in SWEEP.items()})
    tasks = load_tasks(args.models.split(","), args.logs, target)
    sizes = sorted(len(c) for _, _, c, _ in tasks)
    print(f"{len(tasks)} tasks with records; configs recorded per task: min {sizes[0]}, "
          f"median {sizes[len(sizes) // 2]}, max {sizes[-1]}\n")
    noise = noise_study(tasks)
    if noise["tasks"]:
        print("### Measurement noise (configs measured in two logs)\n")
        for k, v in noise.items():
            print(f"- {k}: {_fmt(float(v)) if k != 'tasks' else v}")
        print()
    if "rank" not in skip:
        print("### Ranking the unmeasured configs after k measured ones\n")
        print_ranking(ranking_study(tasks, models, ks, args.seeds, args.min_records), ks, models)
        print()
    if "replay" not in skip:
        print("### Simulated tuning replay (batch 8)\n")
        print_replay(replay_study(tasks, models, args.seeds, args.min_space, target))


if __name__ == "__main__":
    main()

"""Cost models for the autotuner, compared offline on full tuning logs; prints Markdown tables.

    python benchmarks/bench_cost_model.py --logs L1.jsonl L2.jsonl ... \\
        --models mobilenet_v2,resnet18,... [--seeds 10] [--ks 8,16,32] [--min-records 12]

The logs should hold (nearly) every config of each task, e.g. from
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
   trials until the best found is within 2% of the task's best and equal to it, and best
   found / task best after 8, 16 and 24 trials.
"""

from __future__ import annotations

import argparse
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
from tilecc.autotune.record import config_key, read_records
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


MODELS = {
    "ridge": lambda seed: RidgeModel(),
    "gbdt": lambda seed: GBDTModel(seed=seed),
    "gbdt-rank": lambda seed: RankTarget(GBDTModel(seed=seed)),
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


def load_tasks(model_names: list[str], log_paths: list[str], target):
    """[(task, featurizer, {config_key: cost})] for tasks present in the logs."""
    from bench_vs_ort import load_model

    tasks = {}
    for name in model_names:
        model, _ = load_model(name)
        for t in extract_tasks(model, target):
            tasks.setdefault(t.workload, (name, t))
    costs: dict[str, dict[str, float]] = defaultdict(dict)
    for p in log_paths:
        for r in read_records(p):
            if r.target == target.key and r.config and r.workload in tasks:
                c = costs[r.workload]
                c[r.config_key] = min(c.get(r.config_key, math.inf), r.cost)
    out = []
    for wl, (name, t) in tasks.items():
        if wl in costs:
            t.name = f"{name}/{t.name}#{len(out)}"
            out.append((t, Featurizer(t, target), costs[wl]))
    return out


def _rank_corr(p, y):
    from scipy.stats import kendalltau, spearmanr

    if np.ptp(p) == 0:
        return 0.0, 0.0  # a constant prediction orders nothing
    return float(spearmanr(p, y)[0]), float(kendalltau(p, y)[0])


def ranking_study(tasks, models, ks, seeds, min_records):
    acc = defaultdict(lambda: defaultdict(list))  # (model, k) -> metric -> values
    for task, feat, costs in tasks:
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
    for task, feat, costs in tasks:
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
                for tol, key in ((1.02, "to2%"), (1.0, "to best")):
                    hit = next((i + 1 for i, c in enumerate(curve) if c <= best * tol),
                               len(curve) + 1)
                    m[key].append(hit)
                    m[key + " frac"].append(hit / task.space.size)
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


def print_replay(acc):
    cols = ["to2%", "to2% frac", "to best", "to best frac", "@8", "@16", "@24"]
    print("| tuner | tasks | trials to 2% | (share of space) | trials to best | (share) | "
          "best/opt @8 | @16 | @24 |")
    print("|---|---:|" + "---:|" * len(cols))
    for name, m in acc.items():
        vals = [float(np.mean(m[c])) for c in cols]
        print(f"| {name} | {len(set(m['tasks']))} | " + " | ".join(_fmt(v) for v in vals) + " |")


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
    sizes = sorted(len(c) for _, _, c in tasks)
    print(f"{len(tasks)} tasks with records; configs recorded per task: min {sizes[0]}, "
          f"median {sizes[len(sizes) // 2]}, max {sizes[-1]}\n")
    if "rank" not in skip:
        print("### Ranking the unmeasured configs after k measured ones\n")
        print_ranking(ranking_study(tasks, models, ks, args.seeds, args.min_records), ks, models)
        print()
    if "replay" not in skip:
        print("### Simulated tuning replay (batch 8)\n")
        print_replay(replay_study(tasks, models, args.seeds, args.min_space, target))


if __name__ == "__main__":
    main()

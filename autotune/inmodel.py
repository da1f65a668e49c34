"""In-model check: time each task's leading configs inside the compiled model.

A kernel timed alone meets caches that differ from the ones it meets between its neighbours
in a model run (its input was just written by the previous kernel; the rest of the model's
weights share the outer caches). Configs within a few percent of each other alone can swap
order inside the model. So after the isolated search, `tilecc tune` builds the model a few
times with profiling timers, variant j giving every task its j-th ranked config (variant 0:
all defaults), runs the variants in turns on the same inputs, and logs each kernel's in-model
time as records with purpose "model". Those outrank isolated measurements when configs are
chosen (record.best_records). Host targets only: it runs the model here.
"""

from __future__ import annotations

import json
import platform

import numpy as np

from .record import Record, append_records, best_records, config_key, config_medians
from .worker import random_like


class _FixedConfigs:
    """A config provider that hands out one given config per workload (default elsewhere)."""

    def __init__(self, configs: dict[str, dict]):
        self.configs = configs

    def lookup(self, workload, template, version, target, space=None):
        cfg = self.configs.get(workload)
        return (dict(cfg), "log") if cfg else (None, "default")


def _random_inputs(mod, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    # bfloat16 inputs take float32 arrays (Module.run converts them)
    return {s["name"]: random_like(s["shape"], "float32" if s["dtype"] == "bfloat16"
                                   else s["dtype"], rng) for s in mod.input_info}


def _loaded(model, target, configs, path, input_shapes, threads: int, copies: int = 1,
            profile: bool = False) -> list:
    """`model` built with `configs`, saved to `path` and loaded `copies` times."""
    import tilecc
    from tilecc.build import build

    build(model, target=target, input_shapes=input_shapes, profile=profile,
          configs=configs).save(path)
    return [tilecc.load(path, num_threads=threads) for _ in range(copies)]


def ranked_configs(records, workload: str, target_key: str) -> list[dict]:
    """A task's successful configs, fastest first by the median of their isolated costs."""
    med = config_medians(r for r in records if r.workload == workload
                         and r.target == target_key and r.purpose != "model")
    return [json.loads(k) for k in sorted(med, key=med.get)]


def check_in_model(model, target, log, states, variants: int = 3, rounds: int = 21,
                   runs: int = 5, input_shapes=None, threads: int = 1,
                   device: str | None = None, progress=print, copies: int = 3) -> dict:
    """Time the default and up to `variants` leading configs of every task inside `model`
    (see the module doc); append the in-model records to `log`. Returns {workload: (best
    config, in-model seconds per call, default's seconds per call)}. Each variant is loaded
    `copies` times and a round runs every copy: one loaded instance can run a kernel a few
    percent slower than another copy of the same build, steadily (where its buffers landed),
    which a single copy would credit to its configs (Zen 2: a config identical to the default
    measured 3% faster than it, in all 21 rounds)."""
    import tempfile
    from pathlib import Path

    ranked = {}
    for st in states:
        same = config_key(st.task.default_config or {})  # the default's code, under its knobs
        cands = [{}] + [c for c in ranked_configs(st.history, st.task.workload, target.key)
                        if c and config_key(c) != same][:variants]
        done = {r.config_key for r in st.history if r.purpose == "model"}
        # Re-run only when the leading configs changed since the last check (a resumed
        # session that found nothing new measures nothing again).
        if len(cands) > 1 and any(config_key(c) not in done for c in cands):
            ranked[st.task.workload] = (st, cands)
    if not ranked:
        progress("in-model check: nothing new to check")
        return {}
    n_var = max(len(c) for _, c in ranked.values())
    choice = {w: [cs[j] if j < len(cs) else {} for j in range(n_var)]
              for w, (_, cs) in ranked.items()}
    mods = []
    with tempfile.TemporaryDirectory(prefix="tilecc-inmodel-") as d:
        for j in range(n_var):
            cfgs = {w: c[j] for w, c in choice.items() if c[j]}
            mods.append(_loaded(model, target, _FixedConfigs(cfgs), Path(d) / f"v{j}.tar",
                                input_shapes, threads, copies=copies, profile=True))
        progress(f"in-model check: {len(ranked)} tasks, {n_var} model variants x {copies} "
                 f"copies, {rounds} rounds of {runs} runs each")
        feeds = _random_inputs(mods[0][0])
        kernels = mods[0][0].metadata.get("kernels") or []
        # per variant, per workload: in-model seconds per call, one value per round (the
        # mean over the variant's copies)
        times = [{w: [] for w in ranked} for _ in mods]
        for r in range(rounds):
            order = list(range(len(mods)))
            if r % 2:
                order.reverse()
            for j in order:
                per: dict[str, list[float]] = {}
                for mod in mods[j]:
                    rows = mod.profile(feeds, runs=runs)
                    for k, row in zip(kernels, rows):
                        if k.get("workload") in ranked:
                            per.setdefault(k["workload"], []).append(row["time_ms"] * 1e-3)
                for w, ts in per.items():
                    times[j][w].append(sum(ts) / len(ts))
    out = {}
    recs = []
    for w, (st, _) in ranked.items():
        per_cfg: dict[str, list[float]] = {}
        for j in range(n_var):
            per_cfg.setdefault(config_key(choice[w][j]), []).extend(times[j][w])
        new = [Record(target.key, w, st.task.template, st.task.template_version, json.loads(k),
                      tuple(costs), device=device or platform.node(), purpose="model")
               for k, costs in per_cfg.items()]
        recs += new
        chosen = best_records(new)[(target.key, w)]  # the default unless beaten beyond noise
        out[w] = (dict(chosen.config), chosen.cost, config_medians(new)[config_key({})])
    append_records(log, recs)
    return out


def whole_model_speedup(model, target, log, input_shapes=None, threads: int = 1,
                        rounds: int = 10, runs: int = 5, copies: int = 3) -> tuple[float, float]:
    """The end-to-end figure the per-kernel ones add up to: `model` built with the template
    defaults and with the best configs of `log`, run in turns (`rounds` blocks of `runs`
    back-to-back runs per loaded copy, the first of a block untimed). Each build is loaded
    `copies` times: on a shared VM one loaded instance can run steadily slower than another
    copy of the same file (where its buffers landed), so each side pools several.
    Returns the median seconds per run (default, tuned)."""
    import statistics
    import tempfile
    import time
    from pathlib import Path

    from .provider import TuningLogConfigs

    mods = []  # (side, module)
    with tempfile.TemporaryDirectory(prefix="tilecc-e2e-") as d:
        for j, logs in enumerate(([], [str(log)])):
            mods += [(j, m) for m in _loaded(
                model, target, TuningLogConfigs(logs, use_default_logs=False),
                Path(d) / f"m{j}.tar", input_shapes, threads, copies=copies)]
        feeds = _random_inputs(mods[0][1])
        times: list[list[float]] = [[], []]
        for r in range(rounds):
            for j, mod in (mods if r % 2 == 0 else mods[::-1]):
                mod.run(feeds)
                for _ in range(runs):
                    t0 = time.perf_counter()
                    mod.run(feeds)
                    times[j].append(time.perf_counter() - t0)
    return statistics.median(times[0]), statistics.median(times[1])

"""The tuning loop: tasks -> tuner batches -> build -> run -> log, with a task scheduler that
spends trials where the expected gain in end-to-end latency is largest."""

from __future__ import annotations

import math
import platform
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from .features import DEFAULT_COST_MODEL
from .measure import Builder, LocalRunner, MeasureOptions, MeasureResult
from .record import ErrorKind, Record, append_records, read_records
from .task import Task, extract_tasks
from .tuner import make_tuner


@dataclass
class TaskState:
    task: Task
    tuner: object
    default_cost: float = math.inf
    best_cost: float = math.inf
    best_config: dict | None = None
    trials: int = 0  # measurements of this task, including earlier sessions
    since_improve: int = 0
    last_gain: float = 0.0  # relative improvement of the last batch
    started: bool = False
    done: bool = False
    ref: str = ""
    history: list[Record] = field(default_factory=list)

    @property
    def latency(self) -> float:
        """This task's share of the model latency (weight x best cost)."""
        c = self.best_cost if math.isfinite(self.best_cost) else self.default_cost
        return self.task.weight * c if math.isfinite(c) else 0.0


@dataclass
class TuneOptions:
    trials: int = 200  # new measurements across all tasks
    tuner: str = "model"
    cost_model: str = DEFAULT_COST_MODEL  # ranks candidates for tuner="model"
    batch: int = 8
    early_stopping: int = 24  # trials without improvement before a task stops
    seed: int = 0
    time_budget: float | None = None  # seconds
    measure: MeasureOptions = field(default_factory=MeasureOptions)


def _session(spent: int, options: TuneOptions, t0: float) -> str:
    if options.time_budget is not None:
        return (f"session {spent} trials, {(time.monotonic() - t0) / 60:.1f}/"
                f"{options.time_budget / 60:g} min")
    return f"session {spent}/{options.trials}"


def _progress(msg: str, out=sys.stderr):
    print(msg, file=out, flush=True)


def tune_tasks(tasks: list[Task], target, log: str | Path, options: TuneOptions,
               runner=None, progress=_progress) -> list[TaskState]:
    """Tune `tasks`, appending every measurement to `log`. Configs already in the log (same
    target, workload) are not measured again, so a killed run resumes where it stopped."""
    log = Path(log)
    prior: dict[str, list[Record]] = {}
    if log.exists():
        for r in read_records(log):
            if r.target == target.key:
                prior.setdefault(r.workload, []).append(r)
    builder = Builder(target, options.measure)
    runner = runner or LocalRunner(target, options.measure)
    device = getattr(runner, "device", None) or platform.node()
    work = Path(tempfile.mkdtemp(prefix="tilecc-tune-"))
    states = []
    for k, t in enumerate(tasks):
        seed = zlib.crc32(f"{options.seed}:{t.workload}".encode())
        st = TaskState(t, make_tuner(options.tuner, t, seed, target, options.cost_model))
        recs = prior.get(t.workload, [])
        st.history = recs
        st.trials = len(recs)
        for r in recs:
            if r.config == {}:
                st.default_cost = min(st.default_cost, r.cost)
        ok = [r for r in recs if r.config]
        st.tuner.update([r.config for r in ok], [r.cost for r in ok])
        for r in ok:
            if r.cost < st.best_cost:
                st.best_cost, st.best_config = r.cost, r.config
        if st.default_cost < st.best_cost:
            st.best_cost, st.best_config = st.default_cost, {}
        states.append(st)

    t0 = time.monotonic()
    spent = 0

    def out_of_budget() -> bool:
        if spent >= options.trials:
            return True
        return options.time_budget is not None and time.monotonic() - t0 > options.time_budget

    def record(st: TaskState, cfgs: list[dict], results: list[MeasureResult]):
        recs = [Record(target.key, st.task.workload, st.task.template, st.task.template_version,
                       c, tuple(r.costs), r.error, device=device, error_msg=r.msg[:300])
                for c, r in zip(cfgs, results)]
        append_records(log, recs)

    def start(st: TaskState) -> bool:
        """Measure the default config: it is the baseline and the reference output every
        candidate must reproduce. Re-run each session (the reference lives in memory), logged
        only when the log has no default record yet."""
        nonlocal spent
        runner.new_task()
        st.ref = str(work / f"ref{states.index(st)}.npz")
        b = builder.build(st.task, [{}], str(work))
        res = runner.run(b, seed=options.seed, ref=st.ref, ref_mode="save")[0]
        st.started = True
        if not res.ok:
            st.done = True
            progress(f"[{st.task.name}] default config failed ({res.error.value}: {res.msg}); "
                     f"skipping task")
            return False
        if not math.isfinite(st.default_cost):
            record(st, [{}], [res])
            spent += 1
            st.trials += 1
            st.default_cost = res.cost
            if res.cost < st.best_cost:
                st.best_cost, st.best_config = res.cost, {}
        return True

    def step(st: TaskState) -> None:
        nonlocal spent
        n = min(options.batch, options.trials - spent)
        cfgs = st.tuner.next_batch(n) if st.tuner.has_next() else []
        if not cfgs:
            st.done = True
            return
        builds = builder.build(st.task, cfgs, str(work))
        results = runner.run(builds, seed=options.seed, ref=st.ref)
        record(st, cfgs, results)
        spent += len(cfgs)
        st.trials += len(cfgs)
        st.tuner.update(cfgs, [r.cost for r in results])
        before = st.best_cost
        for c, r in zip(cfgs, results):
            if r.ok and r.cost < st.best_cost:
                st.best_cost, st.best_config = r.cost, c
        if st.best_cost < before:
            st.since_improve = 0
            st.last_gain = 1 - st.best_cost / before if math.isfinite(before) else 1.0
        else:
            st.since_improve += len(cfgs)
            st.last_gain = 0.0
        if st.since_improve >= options.early_stopping:
            st.done = True
        fails = sum(not r.ok for r in results)
        total = sum(s.latency for s in states)
        progress(f"[{states.index(st) + 1}/{len(states)} {st.task.name}] trials {st.trials} "
                 f"({_session(spent, options, t0)})  best {st.best_cost * 1e6:.1f} us  "
                 f"default {st.default_cost * 1e6:.1f} us  "
                 f"speedup {st.default_cost / st.best_cost:.2f}x"
                 + (f"  failed {fails}" if fails else "")
                 + f"  | tuned kernels total {total * 1e3:.3f} ms")

    def expected_gain(st: TaskState) -> float:
        # weight x current best latency x estimated improvement; the estimate is the last
        # batch's gain, floored so stalled tasks still get an occasional try.
        if st.done or not st.tuner.has_next():
            return -1.0
        if not st.started:
            return math.inf
        est = max(st.last_gain, 0.02 * 0.5 ** (st.since_improve / max(1, options.batch)))
        return st.latency * est

    # First pass, biggest tasks (occurrences x FLOPs) first, so a time budget that runs out
    # early has still covered what matters.
    try:
        for st in sorted(states, key=lambda s: -s.task.weight * s.task.flops):
            if out_of_budget():
                break
            if start(st) and not out_of_budget():
                step(st)
        while not out_of_budget():
            st = max(states, key=expected_gain)
            if expected_gain(st) < 0:
                break
            if not st.started and not start(st):
                continue
            step(st)
    finally:
        builder.close()
        runner.close()
    return states


def tune(model, target, log: str | Path, options: TuneOptions | None = None,
         input_shapes=None, runner=None, progress=_progress) -> list[TaskState]:
    """Extract the tunable tasks of `model` and tune them for `target` into `log`."""
    from tilecc.targets import get_target

    target = get_target(target)
    options = options or TuneOptions()
    tasks = extract_tasks(model, target, input_shapes)
    progress(f"{len(tasks)} tunable tasks on {target.key}: "
             + ", ".join(f"{t.name}x{t.weight}" for t in tasks))
    return tune_tasks(tasks, target, log, options, runner, progress)


__all__ = ["ErrorKind", "TaskState", "TuneOptions", "tune", "tune_tasks"]

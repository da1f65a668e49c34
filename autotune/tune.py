"""The tuning loop: tasks -> tuner batches -> build -> run -> log, with a task scheduler that
spends trials where the expected gain in end-to-end latency is largest."""

from __future__ import annotations

import json
import math
import platform
import shutil
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from .features import DEFAULT_COST_MODEL
from .measure import Builder, LocalRunner, MeasureOptions, MeasureResult
from .record import ErrorKind, Record, append_records, config_key, config_medians, read_records
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
    default_logged: bool = False  # the log already holds a usable default record
    failed: int = 0  # candidates of this session that failed
    baseline_ok: bool = False  # this session measured the default (the reference) fine

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


CONFIRM_TOP = 3  # leading configs re-measured next to the default at the end of a session
CONFIRM_ROUNDS = 3


def tune_tasks(tasks: list[Task], target, log: str | Path, options: TuneOptions,
               runner=None, progress=_progress) -> list[TaskState]:
    """Tune `tasks`, appending every measurement to `log`. Configs already in the log (same
    target, workload) are not measured again, so a killed run resumes where it stopped."""
    log = Path(log)
    runner = runner or make_runner(target, options.measure, progress=progress)
    # An untimed runner (qemu) only checks correctness: any earlier record settles a config
    # for it. A timing runner must still time configs that were only checked.
    timed = getattr(runner, "timed", True)
    prior: dict[str, list[Record]] = {}
    if log.exists():
        for r in read_records(log):
            if r.target == target.key and (not timed or r.error != ErrorKind.UNTIMED):
                prior.setdefault(r.workload, []).append(r)
    builder = Builder(target, options.measure)
    device = getattr(runner, "device", None) or platform.node()
    states = []
    for k, t in enumerate(tasks):
        seed = zlib.crc32(f"{options.seed}:{t.workload}".encode())
        st = TaskState(t, make_tuner(options.tuner, t, seed, target, options.cost_model))
        if t.default_config:
            # The default's own code under its knob values: measured as {} already, and a
            # second measurement of it would only ever "win" by noise.
            st.tuner.visited.add(config_key(t.default_config))
        recs = prior.get(t.workload, [])
        st.history = recs
        st.trials = len(recs)
        for r in recs:
            if r.config == {}:
                st.default_cost = min(st.default_cost, r.cost)
                st.default_logged |= r.passed
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

    def record(st: TaskState, cfgs: list[dict], results: list[MeasureResult],
               purpose: str = "search"):
        recs = [Record(target.key, st.task.workload, st.task.template, st.task.template_version,
                       c, tuple(r.costs), r.error, device=device, error_msg=r.msg[:300],
                       purpose=purpose)
                for c, r in zip(cfgs, results)]
        append_records(log, recs)
        st.history = [*st.history, *recs]

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
        if not (res.ok if timed else res.passed):
            st.done = True
            progress(f"[{st.task.name}] default config failed ({res.error.value}: {res.msg}); "
                     f"skipping task")
            return False
        st.baseline_ok = True
        if not st.default_logged:
            record(st, [{}], [res])
            st.default_logged = True
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
        fails = sum(not r.passed for r in results)
        st.failed += fails
        if not timed:
            # Nothing improves without costs: check until the trials or the space run out.
            progress(f"[{states.index(st) + 1}/{len(states)} {st.task.name}] checked "
                     f"{st.trials} ({_session(spent, options, t0)})  failed {st.failed} "
                     f"this session  (emulated: correctness only, not timed)")
            return
        if st.since_improve >= options.early_stopping:
            st.done = True
        total = sum(s.latency for s in states)
        progress(f"[{states.index(st) + 1}/{len(states)} {st.task.name}] trials {st.trials} "
                 f"({_session(spent, options, t0)})  best {st.best_cost * 1e6:.1f} us  "
                 f"default {st.default_cost * 1e6:.1f} us  "
                 f"speedup {st.default_cost / st.best_cost:.2f}x"
                 + (f"  failed {fails}" if fails else "")
                 + f"  | tuned kernels total {total * 1e3:.3f} ms")

    def confirm(st: TaskState) -> None:
        """Re-measure the leading configs side by side with the default (CONFIRM_ROUNDS
        rounds, each config once per round) and pick the best by the median of all of a
        config's measurements. The best of many single noisy measurements is biased towards
        luck: without this, configs within noise of the default (and slower inside the model)
        get picked. Configs confirmed in an earlier session are not re-measured."""
        confirmed = {r.config_key for r in st.history if r.purpose == "confirm"}
        per_config = config_medians(st.history)
        leaders = sorted((k for k in per_config if k != "{}"), key=per_config.get)[:CONFIRM_TOP]
        todo = [k for k in leaders if k not in confirmed]
        if not todo:
            return
        cfgs = [{}] + [json.loads(c) for c in todo]
        runner.new_task()
        builds = builder.build(st.task, cfgs, str(work))
        for _ in range(CONFIRM_ROUNDS):
            record(st, cfgs, runner.run(builds, seed=options.seed, ref=st.ref), "confirm")
        per_config = config_medians(st.history)
        st.default_cost = per_config.get("{}", st.default_cost)
        key, st.best_cost = min(per_config.items(), key=lambda kv: kv[1])
        st.best_config = json.loads(key)
        progress(f"[{states.index(st) + 1}/{len(states)} {st.task.name}] confirmed: best "
                 f"{st.best_cost * 1e6:.1f} us, default {st.default_cost * 1e6:.1f} us "
                 f"(medians over all measurements), speedup "
                 f"{st.default_cost / st.best_cost:.2f}x")

    def expected_gain(st: TaskState) -> float:
        # weight x current best latency x estimated improvement; the estimate is the last
        # batch's gain, floored so stalled tasks still get an occasional try.
        if st.done or not st.tuner.has_next():
            return -1.0
        if not st.started:
            return math.inf
        if not timed:
            return 1.0 / (1 + st.trials)  # no latencies: spread the checks evenly
        est = max(st.last_gain, 0.02 * 0.5 ** (st.since_improve / max(1, options.batch)))
        return st.latency * est

    # Candidate builds and reference outputs: removed however the session ends (a failure,
    # Ctrl-C), since every candidate leaves a library here.
    work = Path(tempfile.mkdtemp(prefix="tilecc-tune-"))
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
        if timed:
            for st in states:
                if st.baseline_ok:
                    confirm(st)
    finally:
        try:
            builder.close()
            runner.close()
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return states


def make_runner(target, options: MeasureOptions, kind: str | None = None,
                host: str | None = None, cluster: str | None = None, progress=_progress):
    """A runner for `target`: `kind` "local", "emulated", "ssh" (needs `host`) or "dask"
    (needs `cluster`); None picks local when the target runs on this machine, else the
    emulated runner (correctness only) when its emulator is installed."""
    import shutil

    from tilecc.errors import InputError
    from tilecc.targets.target import is_host

    if kind is not None and (cluster and kind != "dask" or host and kind != "ssh"):
        raise InputError(f"--runner {kind} does not take "
                         + ("--cluster" if cluster and kind != "dask" else "--host")
                         + "; --cluster goes with --runner dask, --host with --runner ssh")
    if kind is None:
        if cluster:
            kind = "dask"
        elif host:
            kind = "ssh"
        elif is_host(target):
            kind = "local"
        else:
            emu = target.emulator()
            if not emu or shutil.which(emu[0]) is None:
                what = (f"{emu[0]} is not installed (apt-get install qemu-user)" if emu
                        else "no emulator is known for it")
                raise InputError(f"target {target.name} does not run on this machine and "
                                 f"{what}; measure on a board with --runner ssh --host HOST "
                                 f"or on a Dask cluster with --cluster")
            kind = "emulated"
            progress(f"target {target.name} does not run here: checking candidates under "
                     f"{emu[0]} for correctness only (no timing; time them on a board with "
                     f"--runner ssh --host HOST)")
    if kind == "local":
        if not is_host(target):
            raise InputError(f"target {target.name} ({target.triple}) does not run on this "
                             f"machine; use --runner emulated, or --runner ssh --host HOST")
        return LocalRunner(target, options)
    if kind == "emulated":
        from .emulated import EmulatedRunner
        return EmulatedRunner(target, options)
    if kind == "ssh":
        if not host:
            raise InputError("--runner ssh needs --host HOST (an ssh destination)")
        from .remote import SSHRunner
        return SSHRunner(host, target, options)
    if kind == "dask":
        if not cluster:
            raise InputError("--runner dask needs --cluster tcp://HOST:8786")
        from .remote import DaskRunner
        return DaskRunner(cluster, target, options)
    raise InputError(f"unknown runner {kind!r}; choose local, emulated, ssh or dask")


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


__all__ = ["ErrorKind", "TaskState", "TuneOptions", "make_runner", "tune", "tune_tasks"]

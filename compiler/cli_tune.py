"""`tilecc tune` and `tilecc logs`: the tuning commands and their arguments."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tilecc.cli_io import parse_shape
from tilecc.errors import InputError


def cmd_tune(args: argparse.Namespace) -> int:
    from tilecc.autotune.measure import MeasureOptions
    from tilecc.autotune.tune import TuneOptions, tune

    model = Path(args.model)
    if not model.is_file():
        raise InputError(f"{model}: no such model file")
    shapes = dict(parse_shape(s) for s in args.input_shape or [])
    mopt = MeasureOptions(timeout=args.timeout, threads=args.threads,
                          parallel=args.parallel or MeasureOptions().parallel,
                          repeat=args.repeat, min_repeat_ms=args.min_repeat_ms,
                          flush_bytes=0 if args.no_cache_flush else MeasureOptions().flush_bytes)
    budget = args.time_budget * 60 if args.time_budget else None
    trials = args.trials if args.trials is not None else (10 ** 9 if budget else 200)
    opts = TuneOptions(trials=trials, tuner=args.tuner, seed=args.seed, time_budget=budget,
                       early_stopping=args.early_stopping, batch=args.batch, measure=mopt)
    if args.cost_model:
        opts.cost_model = args.cost_model
    from tilecc.autotune.tune import make_runner
    from tilecc.targets import get_target

    target = get_target(args.target)
    runner = make_runner(target, mopt, args.runner, host=args.host, cluster=args.cluster)
    timed = getattr(runner, "timed", True)
    states = tune(str(model), target, args.log, opts, shapes or None, runner=runner)
    in_model = {}
    from tilecc.autotune.measure import LocalRunner
    if isinstance(runner, LocalRunner) and not args.no_model_check:
        from tilecc.autotune.inmodel import check_in_model
        in_model = check_in_model(str(model), target, args.log, states,
                                  input_shapes=shapes or None, threads=args.threads,
                                  progress=lambda m: print(m, file=sys.stderr, flush=True))
    whole = None
    if in_model:
        # The per-kernel figures below do not add up to the model's time (a kernel's neighbours
        # and the machine's state move them): time the whole model once, both ways.
        from tilecc.autotune.inmodel import whole_model_speedup
        whole = whole_model_speedup(str(model), target, args.log,
                                    input_shapes=shapes or None, threads=args.threads)
    for st in states:
        if not timed:
            print(f"{st.task.name}: {st.trials} configs checked under emulation, "
                  f"{st.failed} failed this session (not timed)")
        elif st.task.workload in in_model:
            cfg, cost, dflt = in_model[st.task.workload]
            print(f"{st.task.name}: in the model {cost * 1e6:.1f} us per call "
                  f"({dflt / cost:.2f}x over default) {cfg or 'default'}")
        elif st.best_config is not None:
            print(f"{st.task.name}: best {st.best_cost * 1e6:.1f} us "
                  f"({st.default_cost / st.best_cost:.2f}x over default) {st.best_config}")
    if whole:
        dflt, tuned = whole
        print(f"whole model, {args.threads} thread(s), medians of runs in turns: default "
              f"configs {dflt * 1e3:.3f} ms, tuned {tuned * 1e3:.3f} ms "
              f"({tuned / dflt:.3f} of the default)")
    print(f"log: {args.log}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from tilecc.autotune import record as R

    for log in getattr(args, "logs", None) or [args.log]:
        if not Path(log).is_file():
            raise InputError(f"{log}: no such tuning log")
    if args.logs_cmd == "show":
        recs = list(R.read_records(args.log))
        best = R.best_records(recs)
        fails: dict[str, int] = {}
        for r in recs:
            if not r.passed:
                fails[r.error.value] = fails.get(r.error.value, 0) + 1
        untimed = sum(r.error == R.ErrorKind.UNTIMED for r in recs)
        print(f"{args.log}: {len(recs)} records, {len(best)} workloads"
              + (f", {untimed} checked but not timed (emulated)" if untimed else "")
              + (f", failures {fails}" if fails else ""))
        for (tk, wl), r in sorted(best.items()):
            n = sum(1 for x in recs if x.workload == wl and x.target == tk)
            where = " in the model" if r.purpose == "model" else ""
            print(f"  {tk}  {r.template}  {r.cost * 1e6:.1f} us{where}  {r.config}  "
                  f"({n} records)")
            print(f"    {wl}")
        return 0
    if args.logs_cmd == "merge":
        n = R.write_records(args.output, R.merge(R.load_logs(args.logs)))
    elif args.logs_cmd == "best":
        n = R.write_records(args.output, R.best_records(R.read_records(args.log)).values())
    else:
        recs = list(R.read_records(args.log))
        keys = _target_keys(args.target)
        chosen = [r for r in recs if r.target in keys]
        if not chosen:
            # An empty export looks like success; say which targets the log does have.
            have: dict[str, int] = {}
            for r in recs:
                have[r.target] = have.get(r.target, 0) + 1
            listed = ", ".join(f"{k} ({n} records)" for k, n in sorted(have.items()))
            raise InputError(f"{args.log}: no record is for --target {args.target} (target key "
                             f"{' or '.join(sorted(keys))}; records are keyed by the exact "
                             f"CPU); the log has: {listed or 'no records'}; pass one of these "
                             "keys as --target; nothing written")
        n = R.write_records(args.output, chosen)
    print(f"wrote {args.output} ({n} records)")
    return 0


def _target_keys(name: str) -> set[str]:
    """A preset/host name or a raw target key."""
    if name.count("/") >= 2:
        return {name}
    from tilecc.targets import get_target
    return {get_target(name).key}


TUNE_EXAMPLES = """examples:
  tilecc tune model.onnx --log tune.jsonl --time-budget 10     # this machine, 10 minutes
  tilecc tune model.onnx -t aarch64 --log a64.jsonl --trials 50  # under qemu: checks only
  tilecc tune model.onnx -t raspberry-pi-4 --log pi4.jsonl --runner ssh --host pi@pi4
  tilecc compile model.onnx --tuning-log tune.jsonl -v         # use it; -v: config per kernel
"""

LOGS_EXAMPLES = """examples:
  tilecc logs show tune.jsonl
  tilecc logs merge a.jsonl b.jsonl -o all.jsonl    # union, identical records once
  tilecc logs best all.jsonl -o best.jsonl          # one best record per (target, workload)
  tilecc logs export all.jsonl --target host -o mine.jsonl
"""


def add_parsers(sub, parents: list, int_at_least, formatter) -> None:
    """The `tune` and `logs` sub-commands of the tilecc parser; `int_at_least(lo)` is the
    parser's bounded-integer type."""
    positive_int = int_at_least(1)
    tu = sub.add_parser("tune", parents=parents, help="autotune a model's kernels into a log",
                        epilog=TUNE_EXAMPLES, formatter_class=formatter)
    tu.add_argument("model", help="ONNX model file")
    tu.add_argument("-t", "--target", default="host", help="target preset")
    tu.add_argument("--log", required=True, help="tuning log to append to (resumes from it)")
    tu.add_argument("--trials", type=int_at_least(0), help="measurements in this session "
                    "(default 200, unlimited with --time-budget; 0 only re-confirms and "
                    "checks what the log holds)")
    tu.add_argument("--time-budget", type=float, metavar="MIN",
                    help="stop the search after MIN minutes; confirming each task's leading "
                         "configs and the in-model check come after it (about a minute for "
                         "MobileNetV2)")
    tu.add_argument("--tuner", choices=("random", "grid", "model"), default="model",
                    help="how candidates are chosen (default model: a cost model ranks them)")
    tu.add_argument("--cost-model", choices=("ridge", "gbdt"),
                    help="what ranks candidates for --tuner model (default ridge; gbdt needs "
                         "scikit-learn, else ridge is used)")
    tu.add_argument("--timeout", type=float, default=10.0, help="seconds per candidate run")
    tu.add_argument("--parallel", type=positive_int, help="build processes (default: cores)")
    tu.add_argument("--threads", type=positive_int, default=1,
                    help="threads while timing (default 1)")
    tu.add_argument("--repeat", type=positive_int, default=3,
                    help="timed repeats per candidate (default 3)")
    tu.add_argument("--min-repeat-ms", type=float, default=20.0,
                    help="each repeat runs the kernel for at least this long (default 20)")
    tu.add_argument("--no-cache-flush", action="store_true",
                    help="time candidates warm (repeated calls) instead of after reading 8 MiB "
                         "of other memory, as they run inside a model")
    tu.add_argument("--no-model-check", action="store_true",
                    help="skip timing the leading configs inside the compiled model at the end "
                         "(host targets)")
    tu.add_argument("--batch", type=positive_int, default=8, help="candidates per tuner round")
    tu.add_argument("--early-stopping", type=positive_int, default=24,
                    help="stop a task after this many trials without improvement")
    tu.add_argument("--seed", type=int, default=0, help="seed of the search (default 0)")
    tu.add_argument("--runner", choices=("local", "emulated", "ssh", "dask"),
                    help="where candidates run: local (default when the target runs here), "
                    "emulated (qemu-user: correctness only, no timing; default for other "
                    "targets), ssh (a board, with --host), dask (with --cluster)")
    tu.add_argument("--host", metavar="[USER@]HOST",
                    help="ssh destination of the board (--runner ssh)")
    tu.add_argument("--cluster", metavar="tcp://HOST:8786",
                    help="measure on a Dask cluster (workers advertise the target key)")
    tu.add_argument("--input-shape", action="append", metavar="NAME=D0,D1,...",
                    help="static shape for an input (repeatable)")
    tu.set_defaults(fn=cmd_tune)

    lg = sub.add_parser("logs", parents=parents, help="show, merge, distill or export logs",
                        epilog=LOGS_EXAMPLES, formatter_class=formatter)
    lsub = lg.add_subparsers(dest="logs_cmd", metavar="ACTION", required=True)
    log_help, out_help = "tuning log (JSON lines)", "log to write (replaced atomically)"
    a = lsub.add_parser("show", parents=parents, help="summarise a log")
    a.add_argument("log", help=log_help)
    a = lsub.add_parser("merge", parents=parents, help="union of logs without loss")
    a.add_argument("logs", nargs="+", help="tuning logs to merge")
    a.add_argument("-o", "--output", required=True, help=out_help)
    a = lsub.add_parser("best", parents=parents, help="one best record per target, workload")
    a.add_argument("log", help=log_help)
    a.add_argument("-o", "--output", required=True, help=out_help)
    a = lsub.add_parser("export", parents=parents, help="records of one target")
    a.add_argument("log", help=log_help)
    a.add_argument("--target", required=True,
                   help="preset name or target key (kind/triple/cpu, as `logs show` prints)")
    a.add_argument("-o", "--output", required=True, help=out_help)
    lg.set_defaults(fn=cmd_logs)

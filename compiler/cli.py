"""The `tilecc` command: a thin layer over the Python API.

Errors a user can fix are TileccError/OSError: one line on stderr and a non-zero exit code
(from the exception's `exit_code`); anything else is a bug and gets a traceback with --debug.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

import tilecc
from tilecc.errors import InputError, TileccError


def _parse_shape(text: str) -> tuple[str, list[int]]:
    name, sep, dims = text.rpartition("=")
    if not sep or not name:
        raise InputError(f"--input-shape wants NAME=D0,D1,...; got {text!r}")
    try:
        shape = [int(d) for d in dims.split(",")] if dims.strip() else []
    except ValueError:
        raise InputError(f"--input-shape {text!r}: dimensions must be integers") from None
    if any(d < 0 for d in shape):
        raise InputError(f"--input-shape {text!r}: dimensions must be >= 0")
    return name, shape


def cmd_compile(args: argparse.Namespace) -> int:
    model = Path(args.model)
    if not model.is_file():
        raise InputError(f"{model}: no such model file")
    shapes = dict(_parse_shape(s) for s in args.input_shape or [])
    out = Path(args.output) if args.output else Path(model.stem + ".tar")
    target = args.target
    if args.bare_metal:
        import dataclasses

        from tilecc.targets import get_target

        target = dataclasses.replace(get_target(target), bare_metal=True)
    artifact = tilecc.compile(str(model), target=target, input_shapes=shapes or None,
                              opt_level=args.opt_level, tuning_logs=args.tuning_log or None,
                              name=args.name, print_ir_after=args.print_ir_after or None,
                              default_logs=not args.no_default_logs,
                              precision=args.precision)
    if args.verbose:
        shown = set()
        for k in artifact.metadata.get("kernels", []):
            if k.get("workload") and k["kernel"] not in shown:
                shown.add(k["kernel"])
                print(f"{k['kernel']}: config {k['config_source']} {k['config'] or '{}'}")
    artifact.save(out)
    print(f"wrote {out} ({out.stat().st_size / 1024:.1f} KiB, target {args.target}"
          f"{', bare metal' if args.bare_metal else ''})")
    if artifact.metadata.get("memory"):
        print(_memory_report(artifact.metadata["memory"]))
    return 0


def _memory_report(mem: dict) -> str:
    """One line: what a bare-metal model needs in flash and RAM."""
    return (f"memory: code {_size(mem['code_bytes'])} (.text {_size(mem['text_bytes'])} + "
            f".rodata {_size(mem['rodata_bytes'])}), weights {_size(mem['weights_bytes'])}, "
            f"arena {_size(mem['arena_bytes'])}, static data {_size(mem['data_bytes'])}")


def _random_input(spec: dict, rng) -> object:
    import numpy as np

    dtype, shape = np.dtype(spec["dtype"]), spec["shape"]
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(dtype)
    if dtype.kind in "iu":
        return rng.integers(0, 10, shape).astype(dtype)
    raise InputError(f"input {spec['name']!r}: cannot make random {dtype.name} data; pass -i")


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    if args.emulate:
        from tilecc.runtime.crunner import EmulatedModule

        module = EmulatedModule(args.artifact, num_threads=args.threads)
    else:
        module = tilecc.load(args.artifact, num_threads=args.threads)
    if args.verbose and hasattr(module, "describe"):
        for line in module.describe():
            print(line, file=sys.stderr)
    if args.inputs:
        try:
            with np.load(args.inputs, allow_pickle=False) as npz:
                inputs = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as e:
            raise InputError(f"{args.inputs}: cannot read inputs ({e})") from None
    else:
        rng = np.random.default_rng(args.seed)
        inputs = {s["name"]: _random_input(s, rng) for s in module.input_info}
    outputs = module.run(inputs)
    for name, arr in outputs.items():
        if arr.size and arr.dtype.kind in "fiub":
            stats = (f"min={arr.min():.6g} max={arr.max():.6g} "
                     f"mean={arr.astype(np.float64).mean():.6g}")
        else:
            stats = "(empty)" if not arr.size else ""
        print(f"{name}: shape={list(arr.shape)} dtype={arr.dtype.name} {stats}".rstrip())
    if args.output:
        np.savez(args.output, **outputs)
        print(f"wrote {args.output}")
    return 0


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _arena_unplanned_bytes(arena: dict) -> int | None:
    """Bytes all intermediate tensors would need without memory planning."""
    if isinstance(arena.get("naive_bytes"), int):
        return arena["naive_bytes"]
    tensors = arena.get("tensors")
    if isinstance(tensors, list) and tensors:
        sizes = [t.get("nbytes", t.get("size")) for t in tensors if isinstance(t, dict)]
        if sizes and all(isinstance(s, int) for s in sizes):
            return sum(sizes)
    return None


def cmd_inspect(args: argparse.Namespace) -> int:
    from tilecc.runtime.artifact import ArtifactReader

    with ArtifactReader(args.artifact) as reader:
        meta = reader.metadata
        sizes = {name: reader.size(name) for name in reader.names()}
    target = meta.get("target") or {}
    print(f"artifact: {args.artifact}")
    print(f"model: {meta['name']} (format {meta['format_version']}, "
          f"tilecc {meta.get('tilecc_version', '?')})")
    print(f"target: {target.get('name', '?')} triple={target.get('triple', '?')} "
          f"cpu={target.get('cpu', '?')} vector_bits={target.get('vector_bits', '?')}")
    for kind in ("inputs", "outputs"):
        print(f"{kind}:")
        for s in meta[kind]:
            print(f"  {s['name']}: {s['dtype']}{s['shape']}")
    arena = meta.get("arena") or {}
    line = f"workspace (arena): {_size(meta['workspace_size'])}"
    unplanned = _arena_unplanned_bytes(arena)
    if unplanned is not None:
        line += f"; all intermediate tensors: {_size(unplanned)}"
        if unplanned:
            line += f" ({100 * meta['workspace_size'] / unplanned:.0f}%)"
    print(line)
    print(f"params: {_size(meta['params_size'])}")
    if meta.get("memory"):
        print(_memory_report(meta["memory"]))
    print("files:")
    for name in sorted(sizes):
        print(f"  {name}  {_size(sizes[name])}  sha256:{meta['files'][name][:16]}")
    for key in ("arena", "kernels", "groups"):
        value = meta.get(key)
        if not value:
            continue
        print(f"{key}:")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for k, v in items:
            if key == "arena" and k == "tensors" and isinstance(v, list):
                print(f"  tensors: {len(v)}")
                if args.verbose:
                    for t in v:
                        print(f"    {t}")
            else:
                print(f"  {k}: {v}")
    return 0


def cmd_targets(args: argparse.Namespace) -> int:
    from tilecc.targets import PRESETS, get_target

    rows = [("host", get_target("host"))] + sorted(PRESETS.items())
    print(f"{'name':<18} {'triple':<32} {'cpu':<14} {'vector bits':>11} {'cores':>5}  "
          f"{'linker':<24} description")
    for name, t in rows:
        print(f"{name:<18} {t.triple:<32} {t.cpu:<14} {t.vector_bits:>11} {t.cores:>5}  "
              f"{t.linker:<24} {t.description}".rstrip())
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from tilecc.autotune.measure import MeasureOptions
    from tilecc.autotune.tune import TuneOptions, tune

    model = Path(args.model)
    if not model.is_file():
        raise InputError(f"{model}: no such model file")
    shapes = dict(_parse_shape(s) for s in args.input_shape or [])
    mopt = MeasureOptions(timeout=args.timeout, threads=args.threads,
                          parallel=args.parallel or MeasureOptions().parallel,
                          repeat=args.repeat, min_repeat_ms=args.min_repeat_ms)
    budget = args.time_budget * 60 if args.time_budget else None
    trials = args.trials if args.trials is not None else (10 ** 9 if budget else 200)
    opts = TuneOptions(trials=trials, tuner=args.tuner, seed=args.seed, time_budget=budget,
                       early_stopping=args.early_stopping, batch=args.batch, measure=mopt)
    runner = None
    if args.cluster:
        from tilecc.autotune.remote import DaskRunner
        from tilecc.targets import get_target
        runner = DaskRunner(args.cluster, get_target(args.target), mopt)
    states = tune(str(model), args.target, args.log, opts, shapes or None, runner=runner)
    for st in states:
        if st.best_config is not None:
            print(f"{st.task.name}: best {st.best_cost * 1e6:.1f} us "
                  f"({st.default_cost / st.best_cost:.2f}x over default) {st.best_config}")
    print(f"log: {args.log}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from tilecc.autotune import record as R

    if args.logs_cmd == "show":
        recs = list(R.read_records(args.log))
        best = R.best_records(recs)
        fails: dict[str, int] = {}
        for r in recs:
            if not r.ok:
                fails[r.error.value] = fails.get(r.error.value, 0) + 1
        print(f"{args.log}: {len(recs)} records, {len(best)} workloads"
              + (f", failures {fails}" if fails else ""))
        for (tk, wl), r in sorted(best.items()):
            n = sum(1 for x in recs if x.workload == wl and x.target == tk)
            print(f"  {tk}  {r.template}  {r.cost * 1e6:.1f} us  {r.config}  ({n} records)")
            print(f"    {wl}")
        return 0
    if args.logs_cmd == "merge":
        n = R.write_records(args.output, R.merge(R.load_logs(args.logs)))
    elif args.logs_cmd == "best":
        n = R.write_records(args.output, R.best_records(R.read_records(args.log)).values())
    else:
        n = R.write_records(args.output, (r for r in R.read_records(args.log)
                                          if r.target in _target_keys(args.target)))
    print(f"wrote {args.output} ({n} records)")
    return 0


def _target_keys(name: str) -> set[str]:
    """A preset/host name or a raw target key."""
    if name.count("/") >= 2:
        return {name}
    from tilecc.targets import get_target
    return {get_target(name).key}


def build_parser() -> argparse.ArgumentParser:
    # --debug works before or after the subcommand; SUPPRESS keeps the sub-parser's default
    # from overwriting a value given before it.
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks")
    p = argparse.ArgumentParser(prog="tilecc", parents=[debug],
                                description="Ahead-of-time deep-learning compiler.")
    p.add_argument("--version", action="version", version=f"tilecc {tilecc.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    c = sub.add_parser("compile", parents=[debug], help="compile an ONNX model to model.tar")
    c.add_argument("model", help="ONNX model file")
    c.add_argument("-t", "--target", default="host", help="target preset (see `tilecc targets`)")
    c.add_argument("-o", "--output", help="artifact path (default: MODEL.tar)")
    c.add_argument("--input-shape", action="append", metavar="NAME=D0,D1,...",
                   help="static shape for an input (repeatable)")
    c.add_argument("-O", dest="opt_level", type=int, choices=range(4), default=2,
                   help="optimisation level (default 2)")
    c.add_argument("--tuning-log", action="append", metavar="LOG",
                   help="tuning log to use (repeatable)")
    c.add_argument("--no-default-logs", action="store_true",
                   help="ignore TILECC_TUNING_LOGS and the tuning logs shipped with tilecc")
    c.add_argument("-v", "--verbose", action="store_true",
                   help="say per kernel whether its config came from a log, transfer or default")
    c.add_argument("--print-ir-after", action="append", metavar="PASS",
                   help="print the graph after this pass (repeatable)")
    c.add_argument("--name", default="tilecc_model", help="C symbol prefix (default tilecc_model)")
    c.add_argument("--precision", choices=("fp32", "fp16"), default="fp32",
                   help="fp16: half storage of weights and activations (OpenCL targets)")
    c.add_argument("--bare-metal", action="store_true",
                   help="emit lib/model.o with no libc/libm/thread dependency (single-threaded) "
                   "and print its memory report")
    c.set_defaults(fn=cmd_compile)

    r = sub.add_parser("run", parents=[debug], help="run an artifact on this machine")
    r.add_argument("artifact")
    r.add_argument("-i", "--inputs", help=".npz with one array per input name "
                   "(default: random data)")
    r.add_argument("-o", "--output", help="write outputs to this .npz")
    r.add_argument("--threads", type=int, help="threads (default: TILECC_NUM_THREADS or cores)")
    r.add_argument("--seed", type=int, default=0, help="seed for random inputs")
    r.add_argument("-v", "--verbose", action="store_true",
                   help="describe the executor (OpenCL: device, program binary cache)")
    r.add_argument("--emulate", action="store_true",
                   help="run a cross-compiled artifact under qemu-user (C runner built with "
                   "the target's gcc)")
    r.set_defaults(fn=cmd_run)

    i = sub.add_parser("inspect", parents=[debug], help="show an artifact's metadata")
    i.add_argument("artifact")
    i.add_argument("-v", "--verbose", action="store_true", help="list every arena tensor")
    i.set_defaults(fn=cmd_inspect)

    tu = sub.add_parser("tune", parents=[debug], help="autotune a model's kernels into a log")
    tu.add_argument("model", help="ONNX model file")
    tu.add_argument("-t", "--target", default="host", help="target preset")
    tu.add_argument("--log", required=True, help="tuning log to append to (resumes from it)")
    tu.add_argument("--trials", type=int, help="measurements in this session (default 200, "
                    "unlimited with --time-budget)")
    tu.add_argument("--time-budget", type=float, metavar="MIN", help="stop after MIN minutes")
    tu.add_argument("--tuner", choices=("random", "grid", "model"), default="model")
    tu.add_argument("--timeout", type=float, default=10.0, help="seconds per candidate run")
    tu.add_argument("--parallel", type=int, help="build processes (default: cores)")
    tu.add_argument("--threads", type=int, default=1, help="threads while timing (default 1)")
    tu.add_argument("--repeat", type=int, default=3)
    tu.add_argument("--min-repeat-ms", type=float, default=20.0)
    tu.add_argument("--batch", type=int, default=8, help="candidates per tuner round")
    tu.add_argument("--early-stopping", type=int, default=24,
                    help="stop a task after this many trials without improvement")
    tu.add_argument("--seed", type=int, default=0)
    tu.add_argument("--cluster", metavar="tcp://HOST:8786",
                    help="measure on a Dask cluster (workers advertise the target key)")
    tu.add_argument("--input-shape", action="append", metavar="NAME=D0,D1,...")
    tu.set_defaults(fn=cmd_tune)

    lg = sub.add_parser("logs", parents=[debug], help="show, merge, distill or export logs")
    lsub = lg.add_subparsers(dest="logs_cmd", metavar="ACTION", required=True)
    a = lsub.add_parser("show", parents=[debug], help="summarise a log")
    a.add_argument("log")
    a = lsub.add_parser("merge", parents=[debug], help="union of logs without loss")
    a.add_argument("logs", nargs="+")
    a.add_argument("-o", "--output", required=True)
    a = lsub.add_parser("best", parents=[debug], help="one best record per target, workload")
    a.add_argument("log")
    a.add_argument("-o", "--output", required=True)
    a = lsub.add_parser("export", parents=[debug], help="records of one target")
    a.add_argument("log")
    a.add_argument("--target", required=True, help="preset name or target key")
    a.add_argument("-o", "--output", required=True)
    lg.set_defaults(fn=cmd_logs)

    t = sub.add_parser("targets", parents=[debug], help="list target presets")
    t.set_defaults(fn=cmd_targets)
    return p


def _one_line(e: BaseException, internal: bool) -> str:
    """The message's first line, plus the first line that names an error in tool output
    (e.g. the linker's "undefined reference" under "linking failed:")."""
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    text = lines[0] if lines else type(e).__name__
    detail = next((ln for ln in lines[1:] if "error" in ln.lower()), None)
    if detail:
        text += f" ... {detail}"
    if internal:
        text = f"internal error: {type(e).__name__}: {text} (rerun with --debug for details)"
    return text


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        print("tilecc: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one place that turns exceptions into exit codes
        if debug:
            traceback.print_exc()
        if isinstance(e, TileccError):
            code = e.exit_code
        elif isinstance(e, (OSError, ValueError)):
            code = 1
        else:
            code = 70  # an internal error (EX_SOFTWARE): worth a bug report
        print(f"tilecc: error: {_one_line(e, internal=code == 70)}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())

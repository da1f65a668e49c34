"""The `tilecc` command: a thin layer over the Python API.

Errors a user can fix are TileccError/OSError: one line on stderr and a non-zero exit code
(from the exception's `exit_code`, table in tilecc.errors); anything else is a bug (exit 70)
and gets a traceback with --debug. Files the CLI writes are written atomically.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import traceback
from pathlib import Path

import tilecc
from tilecc import progress
from tilecc.errors import InputError, ModelError, ResourceError, TileccError


def atomic_write(path: str | os.PathLike, data: bytes) -> Path:
    """Write via a temp file in the same directory and rename: readers never see half a file,
    and a failed write leaves any old file intact."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _say(text: str) -> None:
    """Informational lines (what was written): silenced by -q."""
    if progress.verbosity() >= progress.NORMAL:
        print(text)


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
    kwargs = {"target": target, "input_shapes": shapes or None,
              "opt_level": args.opt_level, "tuning_logs": args.tuning_log or None,
              "name": args.name, "print_ir_after": args.print_ir_after or None,
              "default_logs": not args.no_default_logs, "precision": args.precision}
    if args.quantize:
        kwargs.update(quantize=args.quantize, calibration=args.calibration,
                      calibration_method=args.calibration_method,
                      expose_intermediates=args.expose_intermediates)
        if args.keep_fp32 is not None:
            kwargs["keep_fp32"] = tuple(o for o in args.keep_fp32.split(",") if o)
    if args.profile:
        from tilecc.build import build

        kwargs.pop("default_logs")
        artifact = build(str(model), profile=True, **kwargs)
    else:
        artifact = tilecc.compile(str(model), **kwargs)
    if args.verbose:
        shown = set()
        for k in artifact.metadata.get("kernels", []):
            if k.get("workload") and k["kernel"] not in shown:
                shown.add(k["kernel"])
                print(f"{k['kernel']}: config {k['config_source']} {k['config'] or '{}'}")
    artifact.save(out)
    _say(f"wrote {out} ({out.stat().st_size / 1024:.1f} KiB, target {args.target}"
         f"{', bare metal' if args.bare_metal else ''}"
         f"{', with profiling timers' if args.profile else ''})")
    if artifact.metadata.get("memory"):
        print(_memory_report(artifact.metadata["memory"]))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from tilecc.passes.calibrate import compare

    rows, first = compare(args.model, args.artifact, args.inputs, args.threshold)
    width = max(len(r["layer"]) for r in rows)
    print(f"{'layer':<{width}}  {'cosine':>9}  {'max abs err':>11}")
    for r in rows:
        flag = "  <-- first below threshold" if r["layer"] == first else ""
        print(f"{r['layer']:<{width}}  {r['cosine']:9.6f}  {r['max_abs_err']:11.4g}{flag}")
    if first is None:
        print(f"all {len(rows)} layers have cosine >= {args.threshold}")
    return 0


def _memory_report(mem: dict) -> str:
    """One line: what a bare-metal model needs in flash and RAM."""
    return (f"memory: code {_size(mem['code_bytes'])} (.text {_size(mem['text_bytes'])} + "
            f".rodata {_size(mem['rodata_bytes'])}), weights {_size(mem['weights_bytes'])}, "
            f"arena {_size(mem['arena_bytes'])}, static data {_size(mem['data_bytes'])}"
            + (f", stack ~{_size(mem['stack_bytes'])}; flash {_size(mem['flash_bytes'])}, "
               f"RAM {_size(mem['ram_bytes'])}" if "stack_bytes" in mem else ""))


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


def cmd_bench(args: argparse.Namespace) -> int:
    """Latency of one artifact on random inputs: one native call per run, timed from Python
    (a ctypes call costs ~1 us, negligible next to a model)."""
    import time

    import numpy as np

    module = tilecc.load(args.artifact, num_threads=args.threads)
    rng = np.random.default_rng(args.seed)
    feeds = {spec["name"]: _random_input(spec, rng) for spec in module.input_info}
    for _ in range(args.warmup):
        module.run(feeds)
    times = []
    deadline = time.perf_counter() + args.min_seconds
    while len(times) < args.runs or time.perf_counter() < deadline:
        t0 = time.perf_counter_ns()
        module.run(feeds)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    t = np.array(times)
    threads = module.get_num_threads() if hasattr(module, "get_num_threads") else args.threads
    print(f"{args.artifact}: {len(t)} runs, {threads} thread(s): median {np.median(t):.3f} ms, "
          f"p90 {np.percentile(t, 90):.3f} ms, min {t.min():.3f} ms, max {t.max():.3f} ms")
    return 0


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
    if args.profile:
        return _print_profile(module, inputs, args.runs)
    outputs = module.run(inputs)
    for name, arr in outputs.items():
        if arr.size and arr.dtype.kind in "fiub":
            stats = (f"min={arr.min():.6g} max={arr.max():.6g} "
                     f"mean={arr.astype(np.float64).mean():.6g}")
        else:
            stats = "(empty)" if not arr.size else ""
        print(f"{name}: shape={list(arr.shape)} dtype={arr.dtype.name} {stats}".rstrip())
    if hasattr(module, "describe_counts"):  # firmware on an emulated board
        print(module.describe_counts())
    if args.output:
        buf = io.BytesIO()
        np.savez(buf, **outputs)
        atomic_write(args.output, buf.getvalue())
        _say(f"wrote {args.output}")
    return 0


def _print_profile(module, inputs: dict, runs: int) -> int:
    rows = module.profile(inputs, runs=runs)
    total = sum(r["time_ms"] for r in rows)
    print(f"profile of {module.name}: {len(rows)} kernel calls, mean of {runs} runs "
          "(timers around each call; one warm-up run first)")
    print(f"{'#':>3} {'kernel':<28} {'fused ops':<30} {'output shape':<18} {'time ms':>9} "
          f"{'share':>6} {'GFLOP/s':>8}")
    for k, r in enumerate(rows):
        ops = "+".join(r["ops"])
        shape = "x".join(map(str, r["shape"]))
        gf = f"{r['gflops']:.2f}" if r["gflops"] is not None else "-"
        print(f"{k:>3} {r['kernel'][:28]:<28} {ops[:30]:<30} {shape[:18]:<18} "
              f"{r['time_ms']:>9.4f} {100 * r['share']:>5.1f}% {gf:>8}")
    flops = sum((k.get("flops") or 0) for k in module.metadata.get("kernels") or [])
    rate = f", {flops / (total * 1e6):.2f} GFLOP/s overall" if total and flops else ""
    print(f"total {total:.4f} ms in kernels{rate}")
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


def _draw(args: argparse.Namespace, meta: dict, params: bytes | None) -> int:
    from tilecc import viz

    if not meta.get("kernels"):
        raise InputError(f"{args.artifact}: no kernel list in model.json, nothing to draw")
    if args.graph:
        suffix = Path(args.graph).suffix.lower()
        render = {".html": viz.to_html, ".htm": viz.to_html, ".svg": viz.to_svg,
                  ".dot": viz.to_dot, ".gv": viz.to_dot}.get(suffix)
        if render is None:
            raise InputError(f"--graph {args.graph}: use a .html, .svg or .dot file name")
        atomic_write(args.graph, render(meta).encode())
        _say(f"wrote {args.graph}")
    if args.export_onnx:
        import onnx

        try:
            model = viz.to_onnx(meta, params)
        except onnx.checker.ValidationError as e:
            raise TileccError(f"the exported graph fails onnx.checker: {e}") from None
        atomic_write(args.export_onnx, model.SerializeToString())
        _say(f"wrote {args.export_onnx} ({len(model.graph.node)} nodes, domain tilecc)")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from tilecc.runtime.artifact import PARAMS_PATH, ArtifactReader

    with ArtifactReader(args.artifact) as reader:
        meta = reader.metadata
        sizes = {name: reader.size(name) for name in reader.names()}
        if args.graph or args.export_onnx:
            params = reader.read(PARAMS_PATH) if args.export_onnx and \
                reader.has(PARAMS_PATH) else None
            return _draw(args, meta, params)
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


def cmd_ops(args: argparse.Namespace) -> int:
    from tilecc.frontends.onnx import supported_ops_markdown

    print(supported_ops_markdown())
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
    debug.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                       help="more detail: compile: config source per kernel; run: the executor "
                       "(OpenCL device, binary cache); inspect: every tensor")
    debug.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="errors and results only: no progress bars or 'wrote' lines")
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
    c.add_argument("--print-ir-after", action="append", metavar="PASS",
                   help="print the graph after this pass (repeatable)")
    c.add_argument("--name", default="tilecc_model", help="C symbol prefix (default tilecc_model)")
    c.add_argument("--precision", choices=("fp32", "fp16"), default="fp32",
                   help="fp16: half storage of weights and activations, fp32 math (CPU, OpenCL)")
    c.add_argument("--bare-metal", action="store_true",
                   help="emit lib/model.o with no libc/libm/thread dependency (single-threaded) "
                   "and print its memory report")
    c.add_argument("--profile", action="store_true",
                   help="add per-kernel timers (for `tilecc run --profile`; not for deployment)")
    c.add_argument("--quantize", choices=("int8",),
                   help="post-training int8 quantization of Conv/Gemm/MatMul (needs "
                   "--calibration)")
    c.add_argument("--calibration", metavar="DATA",
                   help="calibration samples: a directory of .npz files (one sample each, keyed "
                   "by input name) or one .npz with a leading sample axis")
    c.add_argument("--calibration-method", choices=("minmax", "percentile", "entropy"),
                   default="minmax", help="activation range from calibration (default minmax)")
    c.add_argument("--keep-fp32", metavar="OP,...",
                   help="op types or node names left in fp32 (default: Softmax, "
                   "LayerNormalization, ...)")
    c.add_argument("--expose-intermediates", action="store_true",
                   help="also output every quantized layer's result (for `tilecc compare`)")
    c.set_defaults(fn=cmd_compile)

    cp = sub.add_parser("compare", parents=[debug],
                        help="per-layer accuracy of a quantized artifact vs the fp32 model")
    cp.add_argument("model", help="the fp32 ONNX model")
    cp.add_argument("artifact", help="quantized model.tar built with --expose-intermediates")
    cp.add_argument("--inputs", required=True, metavar="DATA",
                    help="input samples (same forms as --calibration)")
    cp.add_argument("--threshold", type=float, default=0.99,
                    help="flag the first layer whose cosine similarity is below this")
    cp.set_defaults(fn=cmd_compare)

    r = sub.add_parser("run", parents=[debug], help="run an artifact on this machine")
    r.add_argument("artifact")
    r.add_argument("-i", "--inputs", help=".npz with one array per input name "
                   "(default: random data)")
    r.add_argument("-o", "--output", help="write outputs to this .npz")
    r.add_argument("--threads", type=int, help="threads (default: TILECC_NUM_THREADS or cores)")
    r.add_argument("--seed", type=int, default=0, help="seed for random inputs")
    r.add_argument("--emulate", action="store_true",
                   help="run a cross-compiled artifact under qemu-user (C runner built with "
                   "the target's gcc)")
    r.add_argument("--profile", action="store_true",
                   help="print time per kernel (artifact compiled with --profile)")
    r.add_argument("--runs", type=int, default=10, help="runs averaged by --profile")
    r.set_defaults(fn=cmd_run)

    i = sub.add_parser("inspect", parents=[debug], help="show an artifact's metadata")
    i.add_argument("artifact")
    i.add_argument("--graph", metavar="OUT", help="draw the optimized graph and memory plan "
                   "(.html self-contained, .svg or .dot)")
    i.add_argument("--export-onnx", metavar="OUT", help="write the optimized graph as ONNX "
                   "(fused kernels as tilecc-domain nodes; open it in Netron)")
    i.set_defaults(fn=cmd_inspect)

    tu = sub.add_parser("tune", parents=[debug], help="autotune a model's kernels into a log")
    tu.add_argument("model", help="ONNX model file")
    tu.add_argument("-t", "--target", default="host", help="target preset")
    tu.add_argument("--log", required=True, help="tuning log to append to (resumes from it)")
    tu.add_argument("--trials", type=int, help="measurements in this session (default 200, "
                    "unlimited with --time-budget)")
    tu.add_argument("--time-budget", type=float, metavar="MIN",
                    help="stop the search after MIN minutes; confirming each task's leading "
                         "configs and the in-model check come after it (about a minute for "
                         "MobileNetV2)")
    tu.add_argument("--tuner", choices=("random", "grid", "model"), default="model")
    tu.add_argument("--cost-model", choices=("ridge", "gbdt"),
                    help="what ranks candidates for --tuner model (default ridge; gbdt needs "
                         "scikit-learn, else ridge is used)")
    tu.add_argument("--timeout", type=float, default=10.0, help="seconds per candidate run")
    tu.add_argument("--parallel", type=int, help="build processes (default: cores)")
    tu.add_argument("--threads", type=int, default=1, help="threads while timing (default 1)")
    tu.add_argument("--repeat", type=int, default=3)
    tu.add_argument("--min-repeat-ms", type=float, default=20.0)
    tu.add_argument("--no-cache-flush", action="store_true",
                    help="time candidates warm (repeated calls) instead of after reading 8 MiB "
                         "of other memory, as they run inside a model")
    tu.add_argument("--no-model-check", action="store_true",
                    help="skip timing the leading configs inside the compiled model at the end "
                         "(host targets)")
    tu.add_argument("--batch", type=int, default=8, help="candidates per tuner round")
    tu.add_argument("--early-stopping", type=int, default=24,
                    help="stop a task after this many trials without improvement")
    tu.add_argument("--seed", type=int, default=0)
    tu.add_argument("--runner", choices=("local", "emulated", "ssh", "dask"),
                    help="where candidates run: local (default when the target runs here), "
                    "emulated (qemu-user: correctness only, no timing; default for other "
                    "targets), ssh (a board, with --host), dask (with --cluster)")
    tu.add_argument("--host", metavar="[USER@]HOST",
                    help="ssh destination of the board (--runner ssh)")
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

    b = sub.add_parser("bench", parents=[debug], help="latency of an artifact (median, p90)")
    b.add_argument("artifact")
    b.add_argument("--runs", type=int, default=50, help="timed runs (at least)")
    b.add_argument("--warmup", type=int, default=5, help="untimed runs first")
    b.add_argument("--min-seconds", type=float, default=0.0, help="keep running this long")
    b.add_argument("--threads", type=int, help="threads (default: TILECC_NUM_THREADS or cores)")
    b.add_argument("--seed", type=int, default=0, help="seed for random inputs")
    b.set_defaults(fn=cmd_bench)

    o = sub.add_parser("ops", parents=[debug], help="list the ONNX ops tilecc imports")
    o.set_defaults(fn=cmd_ops)

    t = sub.add_parser("targets", parents=[debug], help="list target presets")
    t.set_defaults(fn=cmd_targets)
    return p


def _one_line(e: BaseException, internal: bool) -> str:
    """The message's first line, plus the first line that names an error in tool output
    (e.g. the linker's "undefined reference" under "linking failed:")."""
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    text = lines[0] if lines else type(e).__name__
    detail = next((ln for ln in lines[1:] if "error" in ln.lower()), None)
    if isinstance(e, ModelError):
        # Model problems are listed one per line, all of them needed: keep them, on one line.
        text = lines[0]
        for ln in lines[1:]:
            text += (" " if text.endswith(":") else "; ") + ln
    elif detail:
        text += f" ... {detail}"
    if internal:
        text = f"internal error: {type(e).__name__}: {text} (rerun with --debug for details)"
    return text


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    args.verbose = getattr(args, "verbose", 0)
    progress.set_verbosity(progress.QUIET if getattr(args, "quiet", False)
                           else progress.NORMAL + min(args.verbose, 2))
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        print("tilecc: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one place that turns exceptions into exit codes
        if debug:
            traceback.print_exc()
        if isinstance(e, MemoryError) and not isinstance(e, TileccError):
            e = ResourceError(f"out of memory ({e or 'allocation failed'}); use a smaller "
                              "model or input shape, or a machine with more memory")
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

"""The `tilecc` command: a thin layer over the Python API.

Errors a user can fix are TileccError/OSError: one line on stderr and a non-zero exit code
(from the exception's `exit_code`, table in tilecc.errors; bad arguments exit 2 like
argparse's own usage errors); anything else is a bug (exit 70) and gets a traceback with
--debug. Files the CLI writes are written atomically (tilecc.cli_io). A reader that closes
stdout early (`tilecc ops | head`) ends the command quietly with 141, as SIGPIPE would.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import traceback
from pathlib import Path
from typing import NoReturn

import tilecc
from tilecc import progress
from tilecc.cli_inspect import cmd_inspect, memory_report
from tilecc.cli_io import (
    atomic_write,
    calibration_data,
    check_output_dir,
    parse_shape,
    read_run_inputs,
)
from tilecc.errors import InputError, ModelError, ResourceError, TileccError

__all__ = ["atomic_write", "build_parser", "main"]

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool killed by it


def _say(text: str) -> None:
    """Informational lines (what was written): silenced by -q."""
    if progress.verbosity() >= progress.NORMAL:
        print(text)


def cmd_compile(args: argparse.Namespace) -> int:
    model = Path(args.model)
    if not model.is_file():
        raise InputError(f"{model}: no such model file")
    if args.quantize and not args.calibration:
        raise InputError("--quantize int8 needs --calibration DATA (a directory of .npz "
                         "samples, one .npz with a leading sample axis, or a .npy)")
    for flag, used in (("--calibration", args.calibration), ("--reduce-range", args.reduce_range)):
        if used and not args.quantize:
            raise InputError(f"{flag} is only used with --quantize int8; add it or drop {flag}")
    shapes = dict(parse_shape(s) for s in args.input_shape or [])
    out = Path(args.output) if args.output else Path(model.stem + ".tar")
    target = args.target
    if args.bare_metal:
        import dataclasses

        from tilecc.targets import get_target

        target = dataclasses.replace(get_target(target), bare_metal=True)
    kwargs = {"target": target, "input_shapes": shapes or None,
              "opt_level": args.opt_level, "tuning_logs": args.tuning_log or None,
              "name": args.name, "print_ir_after": args.print_ir_after or None,
              "default_logs": not args.no_default_logs, "precision": args.precision,
              "profile": args.profile}
    if args.quantize:
        kwargs.update(quantize=args.quantize,
                      calibration=calibration_data(args.calibration, str(model)),
                      calibration_method=args.calibration_method,
                      expose_intermediates=args.expose_intermediates,
                      reduce_range=args.reduce_range)
        if args.keep_fp32 is not None:
            kwargs["keep_fp32"] = tuple(o for o in args.keep_fp32.split(",") if o)
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
        print(memory_report(artifact.metadata["memory"]))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from tilecc.passes.calibrate import compare

    data = calibration_data(args.inputs, args.model, "--inputs")
    if not isinstance(data, str):
        raise InputError(f"--inputs {args.inputs}: compare reads .npz samples; save the .npy "
                         "as np.savez('eval.npz', INPUT_NAME=array) (leading sample axis)")
    rows, first = compare(args.model, args.artifact, data, args.threshold)
    width = max(len(r["layer"]) for r in rows)
    print(f"{'layer':<{width}}  {'cosine':>9}  {'max abs err':>11}")
    for r in rows:
        flag = "  <-- first below threshold" if r["layer"] == first else ""
        print(f"{r['layer']:<{width}}  {r['cosine']:9.6f}  {r['max_abs_err']:11.4g}{flag}")
    if first is None:
        print(f"all {len(rows)} layers have cosine >= {args.threshold}")
    return 0


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
    where = (f"{module.get_num_threads()} thread(s)" if hasattr(module, "get_num_threads")
             else "OpenCL device (host threads do not apply)")
    print(f"{args.artifact}: {len(t)} runs, {where}: median {np.median(t):.3f} ms, "
          f"p90 {np.percentile(t, 90):.3f} ms, min {t.min():.3f} ms, max {t.max():.3f} ms")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    if args.output:
        check_output_dir(args.output)
    if args.emulate:
        from tilecc.runtime.crunner import EmulatedModule

        module = EmulatedModule(args.artifact, num_threads=args.threads)
    else:
        module = tilecc.load(args.artifact, num_threads=args.threads)
    if args.verbose and hasattr(module, "describe"):
        for line in module.describe():
            print(line, file=sys.stderr)
    if args.inputs:
        inputs = read_run_inputs(args.inputs, module.input_info)
    else:
        rng = np.random.default_rng(args.seed)
        inputs = {s["name"]: _random_input(s, rng) for s in module.input_info}
    if args.profile:
        from tilecc.runtime.base import CountingModule

        if isinstance(module, CountingModule):
            return _print_counts(module, inputs)
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


def _print_counts(module, inputs: dict) -> int:
    """--profile of an emulated run: executed instructions, since emulated time means
    nothing for the target."""
    rows = module.instruction_profile(inputs)
    c = module.last_counts
    print(f"instruction profile of {module.name}: {len(rows)} kernel calls, one inference")
    print(f"{'#':>3} {'kernel':<28} {'fused ops':<30} {'output shape':<18} "
          f"{'instructions':>14} {'share':>6}")
    for k, r in enumerate(rows):
        n = r["instructions"]
        count, share = (f"{n:,}", f"{100 * r['share']:5.1f}%") if n is not None else ("-", "-")
        print(f"{k:>3} {r['kernel'][:28]:<28} {'+'.join(r['ops'])[:30]:<30} "
              f"{'x'.join(map(str, r['shape']))[:18]:<18} {count:>14} {share:>6}")
    if "outside_kernels" in c:
        print(f"    {'(the run function itself)':<78} {c['outside_kernels']:>14,}")
    if any(r["instructions"] is None for r in rows):
        print("- : " + ("compiled into the run function (counted on its line)"
                        if "outside_kernels" in c else
                        "no per-kernel counters (compile with --profile)"))
    print(f"total {c['instructions']:,} instructions per inference")
    print(module.describe_counts())
    return 0


def cmd_ops(args: argparse.Namespace) -> int:
    from tilecc.frontends.onnx import supported_ops_markdown

    print(supported_ops_markdown())
    return 0


TARGET_COLUMNS = ("name", "kind", "triple", "cpu", "vector bits", "cores", "linker",
                  "description")


def target_rows(host: bool = True) -> list[tuple]:
    """One row per preset (and this machine's `host`) in TARGET_COLUMNS order; docs/targets.md
    has the presets as a table made from these rows (tests/test_docs.py checks it)."""
    from tilecc.targets import PRESETS, get_target

    rows = ([("host", get_target("host"))] if host else []) + sorted(PRESETS.items())
    return [(name, t.kind, t.triple, t.cpu, t.vector_bits, t.cores, t.linker or "-",
             t.description or "-") for name, t in rows]


def targets_markdown() -> str:
    """The presets as the markdown table in docs/targets.md."""
    lines = ["| " + " | ".join(TARGET_COLUMNS) + " |", "|" + "---|" * len(TARGET_COLUMNS)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in target_rows(host=False)]
    return "\n".join(lines)


def cmd_targets(args: argparse.Namespace) -> int:
    rows = [TARGET_COLUMNS, *target_rows()]
    widths = [max(len(str(r[k])) for r in rows) for k in range(len(TARGET_COLUMNS))]
    for r in rows:
        print("  ".join(f"{c!s:>{w}}" if isinstance(c, int) else f"{c!s:<{w}}"
                        for c, w in zip(r, widths)).rstrip())
    return 0


def _int_at_least(lo: int):
    """An argparse type: an integer >= lo (a usage error, exit 2, otherwise)."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if n < lo:
            raise argparse.ArgumentTypeError(f"{text} is not >= {lo}")
        return n
    return parse


_positive_int, _count = _int_at_least(1), _int_at_least(0)


def _target_name(name: str) -> str:
    """-t checked while parsing, so an unknown preset is a usage error (exit 2)."""
    from tilecc.targets import get_target

    try:
        get_target(name)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return name


EXAMPLES = {
    "compile": """examples:
  tilecc compile compiler/data/mobilenet_tiny.onnx -o mobilenet_tiny.tar
  tilecc compile model.onnx --input-shape input=1,3,224,224 -O 3
  tilecc compile model.onnx -t aarch64 -o model_a64.tar       # cross: see `tilecc targets`
  tilecc compile model.onnx --precision fp16
  tilecc compile model.onnx --quantize int8 --calibration calib/ -o model_int8.tar
  tilecc compile model.onnx -t riscv64 --bare-metal           # lib/model.o, memory report
  tilecc compile model.onnx --profile -o prof.tar && tilecc run prof.tar --profile
""",
    "compare": """examples:
  tilecc compile model.onnx --quantize int8 --calibration calib/ --expose-intermediates \\
      -o q.tar
  tilecc compare model.onnx q.tar --inputs eval.npz --threshold 0.99
""",
    "run": """examples:
  tilecc run model.tar                       # random inputs; prints shape/min/max/mean
  tilecc run model.tar -i in.npz -o out.npz  # .npz keyed by the model's input names
  tilecc run model.tar -i x.npy              # one-input model: a .npy or raw x.tofile() file
  tilecc run model.tar --threads 1 --profile --runs 20
  tilecc run model_a64.tar --emulate         # cross-compiled: under qemu-user
""",
    "inspect": """examples:
  tilecc inspect model.tar                   # summary: target, tensors, memory, kernels
  tilecc inspect model.tar -v                # plus every arena tensor and parameter
  tilecc inspect model.tar --json | python3 -m json.tool --sort-keys
  tilecc inspect model.tar --graph graph.html
  tilecc inspect model.tar --export-onnx optimized.onnx   # open in Netron
""",
    "bench": """examples:
  tilecc bench model.tar                     # 50 runs after 5 warm-up runs
  tilecc bench model.tar --threads 1 --runs 200
  tilecc bench model.tar --min-seconds 10    # at least 10 s of runs
""",
    "ops": """examples:
  tilecc ops
  tilecc ops | grep -i conv
""",
    "targets": """examples:
  tilecc targets
  tilecc compile model.onnx -t cortex-a53 -o model.tar
""",
}


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line like every other error, pointing at the command's --help
    (which has examples), with argparse's exit code 2 (bad arguments)."""

    def error(self, message: str) -> NoReturn:
        cmd = self.prog.removeprefix("tilecc").strip()
        print(f"tilecc: error: {message} (see `tilecc{' ' + cmd if cmd else ''} --help`)",
              file=sys.stderr)
        raise SystemExit(2)


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
    fmt = argparse.RawDescriptionHelpFormatter
    p = _Parser(
        prog="tilecc", parents=[debug], formatter_class=fmt,
        description="Ahead-of-time deep-learning compiler: ONNX in, a native artifact out.",
        epilog="examples:\n  tilecc compile compiler/data/mobilenet_tiny.onnx -o m.tar && "
               "tilecc run m.tar\n  tilecc COMMAND --help    # options and examples of one "
               "command\n\nexit codes: 0 ok, 1 other error, 2 bad arguments or inputs, 3 bad "
               "artifact,\n  4 link failed, 5 model returned an error, 6 invalid model, "
               "7 unsupported model,\n  8 over the memory limit, 9 bad tuning log, 70 internal "
               "error, 130 interrupted")
    p.add_argument("--version", action="version", version=f"tilecc {tilecc.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str):
        return sub.add_parser(name, parents=[debug], help=help, epilog=EXAMPLES[name],
                              formatter_class=fmt)

    c = command("compile", "compile an ONNX model to model.tar")
    c.add_argument("model", help="ONNX model file")
    c.add_argument("-t", "--target", default="host", type=_target_name,
                   help="target preset (see `tilecc targets`; default host)")
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
                   help="fp16: half storage of weights and activations; half math where the "
                   "target has it (ARMv8.2-A +fullfp16, cl_khr_fp16), else fp32")
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
    c.add_argument("--reduce-range", action="store_true",
                   help="7-bit int8 weights: faster on x86 without VNNI, slightly less "
                   "accurate (default: 8-bit, the same weights for every target)")
    c.add_argument("--expose-intermediates", action="store_true",
                   help="also output every quantized layer's result (for `tilecc compare`)")
    c.set_defaults(fn=cmd_compile)

    cp = command("compare", "per-layer accuracy of a quantized artifact vs the fp32 model")
    cp.add_argument("model", help="the fp32 ONNX model")
    cp.add_argument("artifact", help="quantized model.tar built with --expose-intermediates")
    cp.add_argument("--inputs", required=True, metavar="DATA",
                    help="input samples (same forms as --calibration)")
    cp.add_argument("--threshold", type=float, default=0.99,
                    help="flag the first layer whose cosine similarity is below this")
    cp.set_defaults(fn=cmd_compare)

    r = command("run", "run an artifact on this machine")
    r.add_argument("artifact", help="model.tar from `tilecc compile`")
    r.add_argument("-i", "--inputs", metavar="FILE",
                   help=".npz with one array per input name; for a one-input model also a .npy "
                   "or a raw tensor file (the input's dtype and shape; default: random data)")
    r.add_argument("-o", "--output", metavar="OUT.npz", help="write outputs to this .npz")
    r.add_argument("--threads", type=_positive_int,
                   help="threads (default: TILECC_NUM_THREADS or cores)")
    r.add_argument("--seed", type=int, default=0, help="seed for random inputs")
    r.add_argument("--emulate", action="store_true",
                   help="run a cross-compiled artifact under qemu-user (C runner built with "
                   "the target's gcc)")
    r.add_argument("--profile", action="store_true",
                   help="print time per kernel (CPU: artifact compiled with --profile); with "
                   "--emulate executed instructions per kernel instead (one thread)")
    r.add_argument("--runs", type=_positive_int, default=10,
                   help="runs averaged by --profile (default 10)")
    r.set_defaults(fn=cmd_run)

    i = command("inspect", "summarise an artifact: target, tensors, memory, kernels")
    i.add_argument("artifact", help="model.tar")
    i.add_argument("--json", action="store_true", help="print model.json (all metadata)")
    i.add_argument("--graph", metavar="OUT", help="draw the optimized graph and memory plan "
                   "(.html self-contained, .svg or .dot)")
    i.add_argument("--export-onnx", metavar="OUT", help="write the optimized graph as ONNX "
                   "(fused kernels as tilecc-domain nodes; open it in Netron)")
    i.set_defaults(fn=lambda a: cmd_inspect(a, _say))

    from tilecc.cli_tune import add_parsers
    add_parsers(sub, [debug], _int_at_least, fmt)

    b = command("bench", "latency of an artifact (median, p90)")
    b.add_argument("artifact", help="model.tar")
    b.add_argument("--runs", type=_positive_int, default=50, help="timed runs (at least)")
    b.add_argument("--warmup", type=_count, default=5, help="untimed runs first")
    b.add_argument("--min-seconds", type=float, default=0.0, help="keep running this long")
    b.add_argument("--threads", type=_positive_int,
                   help="threads (default: TILECC_NUM_THREADS or cores)")
    b.add_argument("--seed", type=int, default=0, help="seed for random inputs")
    b.set_defaults(fn=cmd_bench)

    command("ops", "list the ONNX ops tilecc imports").set_defaults(fn=cmd_ops)
    command("targets", "list target presets").set_defaults(fn=cmd_targets)
    return p


def _quiet_stdout() -> None:
    """After EPIPE: point stdout at /dev/null so the interpreter's last flush cannot fail
    again and print its own error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # not a real file descriptor (tests capturing stdout): nothing to flush later


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
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # usage errors, --help, --version: a code, also when called in-process
        return e.code if isinstance(e.code, int) else 2
    debug = getattr(args, "debug", False)
    args.verbose = getattr(args, "verbose", 0)
    progress.set_verbosity(progress.QUIET if getattr(args, "quiet", False)
                           else progress.NORMAL + min(args.verbose, 2))
    try:
        code = args.fn(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
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

"""Latency of tilecc vs onnxruntime, batch 1, on this machine; writes BENCHMARKS.md.

    python benchmarks/bench_vs_ort.py [--models resnet18,light_squeezenet] [--threads 1,2]
                                      [--repeat 50] [--warmup 5] [--block 10]
                                      [--out BENCHMARKS.md]

For each model: compile once with tilecc (host target), then for each thread count load it with
`tilecc.load(path, num_threads=n)` and open an onnxruntime session with
`intra_op_num_threads=n`, `inter_op_num_threads=1`, sequential execution. After `--warmup` runs
of each, the two engines take turns in blocks of `--block` back-to-back runs (`--repeat` timed
runs each; which one goes first flips every block; the first run of each block is untimed)
and each run is timed with `time.perf_counter_ns`. Blocks give the steady state of a serving
loop (a model's weights and buffers stay in the caches between its runs) while still
spreading slow drift of the machine over both engines; `--block 1` alternates single runs, so
every run starts with caches full of the other engine's data. The table reports median
and p90 latency in ms, the ratio of medians tilecc/ORT (< 1 means tilecc is faster) and the
largest absolute difference between the two engines' outputs. No thresholds: this measures.

Models: the nine onnx "light" models (`light_<name>`, input arange(n)/n) and the full-size
builder models of tests/models/builders.py (seeded random input). A model that fails to
compile or run gets a row with the error and the run goes on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.models import builders
from tests.models.harness import light_inputs

LIGHT_DIR = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data" / "light"
LIGHT = ["squeezenet", "shufflenet", "bvlc_alexnet", "resnet50", "densenet121", "inception_v1",
         "inception_v2", "vgg19", "zfnet512"]
BUILT = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "squeezenet1_1",
         "shufflenet_v2", "efficientnet_b0", "ds_cnn_kws", "bert_encoder"]
DEFAULT_MODELS = [f"light_{n}" for n in LIGHT] + BUILT


@dataclass
class Row:
    model: str
    threads: int
    tilecc_ms: tuple[float, float] | None = None  # (median, p90)
    ort_ms: tuple[float, float] | None = None
    max_abs_diff: float | None = None
    error: str = ""

    @property
    def ratio(self) -> float | None:
        if self.tilecc_ms and self.ort_ms:
            return self.tilecc_ms[0] / self.ort_ms[0]
        return None


def load_model(name: str) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    if name.startswith("light_"):
        model = onnx.load(str(LIGHT_DIR / f"{name}.onnx"))
        return model, light_inputs(model)
    if name == "bert_encoder":  # seq 128, hidden 256, 4 heads, 2 layers; int64 ids and mask
        model = builders.bert_encoder()
        rng = np.random.default_rng(0)
        return model, {"input_ids": rng.integers(0, 1000, (1, 128)).astype(np.int64),
                       "attention_mask": np.ones((1, 128), np.int64)}
    model = builders.BUILDERS[name]()
    return model, builders.random_inputs(model, seed=0)


def ort_session(model: onnx.ModelProto, threads: int, spin: bool):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning ORT workers keep burning the cores after a run and slow down the tilecc run
    # that follows (measured: 2-thread SqueezeNet 16 ms alone, 46 ms alternating with
    # spinning, 15.5 ms alternating without); off by default, `--ort-spin` turns it on.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def _stats(ns: list[int]) -> tuple[float, float]:
    ms = np.asarray(ns, dtype=np.float64) / 1e6
    return float(np.median(ms)), float(np.percentile(ms, 90))


def measure(run_a, run_b, warmup: int, repeat: int, block: int = 10
            ) -> tuple[tuple, tuple, object, object]:
    """Alternate blocks of `block` runs of run_a / run_b; return (stats_a, stats_b, last output
    a, last output b)."""
    out_a = out_b = None
    for _ in range(warmup):
        out_a, out_b = run_a(), run_b()
    block = max(1, block)
    times_a, times_b = [], []
    order = ((run_a, times_a), (run_b, times_b))
    for i in range((repeat + block - 1) // block):
        for fn, times in order if i % 2 == 0 else order[::-1]:
            if block > 1:
                fn()  # the first run of a block meets the other engine's cache state
            for _ in range(min(block, repeat - i * block)):
                t0 = time.perf_counter_ns()
                fn()
                times.append(time.perf_counter_ns() - t0)
    return _stats(times_a), _stats(times_b), out_a, out_b


def max_abs_diff(got: dict, ref: dict) -> float:
    missing = set(ref) - set(got)
    if missing:
        raise RuntimeError(f"tilecc outputs lack {sorted(missing)}")
    return max(float(np.max(np.abs(np.asarray(got[k], np.float64) - v))) for k, v in ref.items())


def bench_model(tilecc, name: str, threads: list[int], args, workdir: Path) -> list[Row]:
    try:
        model, feeds = load_model(name)
        t0 = time.perf_counter()
        path = workdir / f"{name}.tar"
        tilecc.compile(model, target="host", opt_level=args.opt_level,
                       default_logs=args.default_logs).save(str(path))
        print(f"  {name}: compiled in {time.perf_counter() - t0:.1f} s", flush=True)
    except Exception as exc:  # noqa: BLE001 - a failing model must not stop the benchmark
        if args.debug:
            traceback.print_exc()
        return [Row(name, n, error=f"compile: {type(exc).__name__}: {exc}") for n in threads]
    rows = []
    for n in threads:
        try:
            mod = tilecc.load(str(path), num_threads=n)
            sess = ort_session(model, n, args.ort_spin)
            names = [o.name for o in sess.get_outputs()]
            t_stats, o_stats, got, ref = measure(
                lambda mod=mod: mod.run(feeds),
                lambda sess=sess, names=names: dict(zip(names, sess.run(names, feeds))),
                args.warmup, args.repeat, args.block)
            rows.append(Row(name, n, t_stats, o_stats, max_abs_diff(got, ref)))
        except Exception as exc:  # noqa: BLE001 - report it in the table, go on
            if args.debug:
                traceback.print_exc()
            rows.append(Row(name, n, error=f"run: {type(exc).__name__}: {exc}"))
        print("  " + format_row(rows[-1]), flush=True)
    return rows


def _ms(v: tuple[float, float] | None) -> tuple[str, str]:
    return (f"{v[0]:.3f}", f"{v[1]:.3f}") if v else ("-", "-")


HEADER = ("| model | threads | tilecc median ms | tilecc p90 ms | ORT median ms | ORT p90 ms "
          "| tilecc/ORT | max abs diff |")


def format_row(r: Row) -> str:
    t, o = _ms(r.tilecc_ms), _ms(r.ort_ms)
    ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
    diff = f"{r.max_abs_diff:.2e}" if r.max_abs_diff is not None else "-"
    line = f"| {r.model} | {r.threads} | {t[0]} | {t[1]} | {o[0]} | {o[1]} | {ratio} | {diff} |"
    if r.error:
        line += f" {r.error.splitlines()[0][:120]}"
    return line


def machine_info(tilecc) -> dict[str, str]:
    import onnxruntime as ort

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    version = getattr(tilecc, "__version__", None)
    if version is None:
        try:
            from importlib.metadata import version as dist_version

            version = dist_version("tilecc")
        except ImportError:
            version = "unknown"
    return {
        "CPU": cpu,
        "cores (os.cpu_count)": str(os.cpu_count()),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "onnxruntime": ort.__version__,
        "tilecc": str(version),
        "python / numpy": f"{platform.python_version()} / {np.__version__}",
    }


def write_markdown(path: Path, rows: list[Row], info: dict[str, str], args) -> None:
    spin = "on" if args.ort_spin else "off"
    intro = ("Batch 1, fp32, CPU. Written by `benchmarks/bench_vs_ort.py` "
             f"(`--repeat {args.repeat} --warmup {args.warmup} --block {args.block} "
             f"--opt-level {args.opt_level}`): the engines take turns in blocks of "
             f"{args.block} back-to-back runs (steady state: each engine's weights stay in the "
             "caches between its runs; `--block 1` alternates single runs); median and p90 of "
             "per-run wall time "
             "(`time.perf_counter_ns`, including the Python call). tilecc/ORT is the ratio of "
             "medians (< 1: tilecc faster). ORT: `intra_op_num_threads=threads`, "
             "`inter_op_num_threads=1`, sequential execution, all graph optimisations, "
             f"intra-op thread spinning {spin}.")
    lines = ["# Benchmarks: tilecc vs onnxruntime", "", intro, ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += ["", HEADER, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [format_row(r) for r in rows]
    errors = [r for r in rows if r.error]
    if errors:
        lines += ["", "Errors:", ""]
        lines += [f"- {r.model} ({r.threads} threads): {r.error.splitlines()[0]}" for r in errors]
    # The sections after this table (light models, GEMM, tuning, ...) come from other scripts
    # and by hand: keep them.
    kept: list[str] = []
    if path.exists():
        old = path.read_text().splitlines()
        first = next((k for k, ln in enumerate(old) if ln.startswith("## ")), len(old))
        kept = ["", *old[first:]]
    path.write_text("\n".join(lines + kept) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS),
                    help="comma-separated; light_<name> or a builder name")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--repeat", type=int, default=50, help="timed runs per engine")
    ap.add_argument("--warmup", type=int, default=5, help="untimed runs per engine first")
    ap.add_argument("--block", type=int, default=10,
                    help="back-to-back runs per turn (1: alternate single runs)")
    ap.add_argument("--opt-level", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    ap.add_argument("--ort-spin", action="store_true",
                    help="let ORT intra-op threads spin between runs (default: off)")
    ap.add_argument("--debug", action="store_true", help="print tracebacks of failures")
    ap.add_argument("--default-logs", action="store_true",
                    help="apply TILECC_TUNING_LOGS and the tuning logs shipped with tilecc "
                         "(default: template default configs only)")
    args = ap.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in DEFAULT_MODELS and m not in builders.BUILDERS
               and not (m.startswith("light_") and (LIGHT_DIR / f"{m}.onnx").exists())]
    if unknown:
        ap.error(f"unknown models {unknown}; known: {', '.join(DEFAULT_MODELS)}")
    threads = [int(t) for t in args.threads.split(",")]

    import tilecc

    info = machine_info(tilecc)
    print("\n".join(f"{k}: {v}" for k, v in info.items()))
    print(HEADER)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tilecc-bench-") as tmp:
        for name in models:
            rows += bench_model(tilecc, name, threads, args, Path(tmp))
    write_markdown(args.out, rows, info, args)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

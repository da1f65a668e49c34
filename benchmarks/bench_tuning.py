"""Default configs vs a tuning log vs onnxruntime, one model, batch 1, on this machine.

    python benchmarks/bench_tuning.py MODEL.onnx --log tune.jsonl [--threads 1] [--rounds 20]
                                      [--block 10] [--copies 3] [--clock wall|cpu]

Compiles MODEL twice for the host (template defaults only: `--no-default-logs`; and with
`--tuning-log LOG` only), then runs the two artifacts and an onnxruntime session in turns:
`--rounds` rounds, each engine a block of `--block` back-to-back timed runs per round (the
first run of a block untimed), the order rotating every round. Prints medians, p90 and the
ratios tuned/default and tuned/ORT as a markdown table. `--clock cpu` times on the calling
thread's CPU clock (1 thread only: both engines then run on the calling thread), which keeps
other processes' time slices out of the figures on a busy machine.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--log", required=True, type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--block", type=int, default=10)
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = ap.parse_args(argv)
    if args.clock == "cpu" and args.threads != 1:
        ap.error("--clock cpu needs --threads 1")

    import onnxruntime as ort

    import tilecc

    clock = time.perf_counter_ns if args.clock == "wall" else time.thread_time_ns
    with tempfile.TemporaryDirectory() as d:
        paths, mods = {}, {}
        for name, logs in (("default", None), ("tuned", [str(args.log)])):
            t0 = time.perf_counter()
            art = tilecc.compile(str(args.model), tuning_logs=logs, default_logs=False)
            paths[name] = Path(d) / f"{name}.tar"
            art.save(paths[name])
            srcs = [k.get("config_source") for k in art.metadata.get("kernels", [])
                    if k.get("workload")]
            print(f"{name}: compiled in {time.perf_counter() - t0:.1f} s; kernel configs: "
                  + ", ".join(f"{s} {srcs.count(s)}" for s in sorted(set(srcs))),
                  file=sys.stderr)
        for _ in range(args.copies):
            for name, path in paths.items():
                mods.setdefault(name, []).append(tilecc.load(path, num_threads=args.threads))
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sess = ort.InferenceSession(str(args.model), so, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        feeds = {i["name"]: rng.standard_normal(i["shape"]).astype(i["dtype"])
                 for i in mods["default"][0].input_info}
        ref = sess.run(None, feeds)
        runs = {"default": [m.run for m in mods["default"]],
                "tuned": [m.run for m in mods["tuned"]],
                "onnxruntime": [lambda f: sess.run(None, f)]}
        for name in ("default", "tuned"):
            got = list(runs[name][0](feeds).values())
            err = max(float(np.max(np.abs(g - r))) for g, r in zip(got, ref))
            print(f"{name}: max |out - onnxruntime| = {err:.2e}", file=sys.stderr)
        times = {k: [] for k in runs}
        names = list(runs)
        for r in range(args.rounds):
            for k in names[r % 3:] + names[:r % 3]:
                for run in runs[k]:
                    run(feeds)
                    for _ in range(args.block):
                        t0 = clock()
                        run(feeds)
                        times[k].append(clock() - t0)
    med = {k: float(np.median(v)) / 1e6 for k, v in times.items()}
    p90 = {k: float(np.percentile(v, 90)) / 1e6 for k, v in times.items()}
    print(f"\n{args.model.name}, {args.threads} thread(s), {platform.processor() or 'cpu'}, "
          f"{args.rounds} rounds x {args.block} runs x {args.copies} copies, {args.clock} clock\n")
    print("| engine | median ms | p90 ms |")
    print("|---|---:|---:|")
    for k in names:
        print(f"| {k} | {med[k]:.3f} | {p90[k]:.3f} |")
    print(f"\ntuned/default {med['tuned'] / med['default']:.3f}, "
          f"tuned/onnxruntime {med['tuned'] / med['onnxruntime']:.3f}, "
          f"default/onnxruntime {med['default'] / med['onnxruntime']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

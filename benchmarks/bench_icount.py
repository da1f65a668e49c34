"""Executed instructions per inference on emulated cross targets, fp32 vs fp16 vs int8:
a deterministic cost figure where emulated time means nothing (tilecc.runtime.icount).

    python benchmarks/bench_icount.py [--models ds_cnn_kws,mobilenet_v2,resnet18]
                                      [--targets aarch64,cortex-a76,cortex-a7,riscv64-rvv]

Each model is compiled for each target three times (fp32; `precision="fp16"`; PTQ int8 with
4 seeded calibration samples, the builders' inputs being random too) and one inference on a
seeded input is counted under qemu-user with one thread. The counts repeat exactly, so one
run is the figure; the seconds column is host time of the three counted runs (qemu with its
debug log), printed to show what a model costs to count, not as a measurement of anything.
`cos` compares each build's output with the fp32 build's. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.models import builders

MODELS = ["ds_cnn_kws", "mobilenet_v2", "resnet18"]
TARGETS = ["aarch64", "cortex-a76", "cortex-a7", "riscv64-rvv"]
BUILDS = {"fp32": {}, "fp16": {"precision": "fp16"}, "int8": {"quantize": "int8"}}


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def qemu_version(qemu: str) -> str:
    out = subprocess.run([qemu, "--version"], check=False, capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.stdout else f"{qemu}: not found"


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def count(name: str, target: str, tmp: Path) -> dict:
    import tilecc
    from tilecc.runtime.crunner import EmulatedModule

    model = builders.BUILDERS[name]()
    feeds = builders.random_inputs(model, seed=3)
    calib = [builders.random_inputs(model, seed=100 + k) for k in range(4)]
    row: dict = {"model": name, "target": target, "seconds": 0.0}
    outputs = {}
    for label, kw in BUILDS.items():
        kw = {**kw, "calibration": calib} if "quantize" in kw else kw
        path = tmp / f"{name}_{target}_{label}.tar"
        tilecc.compile(model, target=target, **kw).save(path)
        mod = EmulatedModule(path)
        t0 = time.perf_counter()
        out, counts = mod.run_counted(feeds)
        row["seconds"] += time.perf_counter() - t0
        mod.close()
        row[label] = counts["instructions"]
        outputs[label] = next(iter(out.values()))
    row["cos"] = {k: _cos(v, outputs["fp32"]) for k, v in outputs.items() if k != "fp32"}
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--targets", default=",".join(TARGETS))
    args = ap.parse_args()
    print(f"- host: {cpu_name()}, {qemu_version('qemu-aarch64')}")
    print(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| model | target | fp32 | fp16 | int8 | fp16/fp32 | int8/fp32 | cos fp16 | "
          "cos int8 | count s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.models.split(","):
        for target in args.targets.split(","):
            with tempfile.TemporaryDirectory() as d:
                try:
                    r = count(name, target, Path(d))
                except Exception as exc:  # noqa: BLE001 - a failing case gets its row
                    print(f"| {name} | {target} | error: {type(exc).__name__}: "
                          f"{str(exc)[:100]} |", flush=True)
                    continue
            print(f"| {name} | {target} | {r['fp32']:,} | {r['fp16']:,} | {r['int8']:,} | "
                  f"{r['fp16'] / r['fp32']:.2f} | {r['int8'] / r['fp32']:.2f} | "
                  f"{r['cos']['fp16']:.5f} | {r['cos']['int8']:.5f} | {r['seconds']:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()

"""Indicative latency of ResNet-18 (tests/models/builders.py) at 1 thread: onnxruntime fp32 vs
tilecc fp32, tilecc fp16 (half storage, fp32 math) and tilecc int8 (PTQ, minmax calibration on
random inputs; VNNI kernels where the CPU has them). The machine is shared: treat the figures
as rough.

    python benchmarks/bench_quant.py [--runs 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _median_ms(fn, runs):
    fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1e3 * float(np.median(ts))


def main() -> None:
    import onnxruntime as ort

    import tilecc
    from tests.models.builders import resnet18

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    model = resnet18()
    name = model.graph.input[0].name
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    rows = [("onnxruntime fp32", _median_ms(lambda: sess.run(None, {name: x}), args.runs))]
    calib = [{name: rng.standard_normal((1, 3, 224, 224)).astype(np.float32)} for _ in range(4)]
    with tempfile.TemporaryDirectory() as tmp:
        for label, kw in (("tilecc fp32", {}), ("tilecc fp16", {"precision": "fp16"}),
                          ("tilecc int8", {"quantize": "int8", "calibration": calib})):
            path = Path(tmp) / "m.tar"
            tilecc.compile(model, **kw).save(path)
            mod = tilecc.load(path, num_threads=1)
            rows.append((label, _median_ms(lambda m=mod: m.run({name: x}), args.runs)))
    base = rows[0][1]
    for label, ms in rows:
        print(f"{label:18s} {ms:8.2f} ms  ({ms / base:.2f}x onnxruntime fp32)")


if __name__ == "__main__":
    main()

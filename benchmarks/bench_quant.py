"""Host int8 vs fp32, batch 1, 1 thread: tilecc int8 (PTQ) against tilecc fp32, onnxruntime's
own int8 (quantize_static, QDQ, per-channel weights, the same calibration samples) and
onnxruntime fp32, with the cosine of each int8 output against onnxruntime fp32.

    python benchmarks/bench_quant.py [--models ds_cnn_kws,resnet18] [--rounds 15] [--block 10]

Engines take turns in blocks of `--block` runs for `--rounds` rounds (order rotated every
round) so machine drift spreads over all of them; each figure is the median over rounds of a
block's per-run time. Ratios are of medians measured in this one process. Calibration: 8
seeded random samples (the builders' inputs are random too); the test sample is another seed.
The machine may be shared: read the ratios, not the absolute times. No thresholds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.models import builders

BUNDLED = Path(REPO_ROOT) / "compiler" / "data"
MODELS = ["ds_cnn_kws", "mobilenet_v2", "resnet18", "bundled:ds_cnn_kws",
          "bundled:mobilenet_tiny", "bert_encoder"]


def cpu_name() -> str:
    out = subprocess.run(["lscpu"], check=False, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("Model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _feeds(model: onnx.ModelProto, seed: int) -> dict[str, np.ndarray]:
    if model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64:
        rng = np.random.default_rng(seed)
        seq = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value
        mask = np.ones((1, seq), np.int64)
        mask[0, int(rng.integers(seq // 2, seq)):] = 0
        return {"input_ids": rng.integers(0, 1000, (1, seq)).astype(np.int64),
                "attention_mask": mask}
    return builders.random_inputs(model, seed=seed)


def load_model(name: str) -> onnx.ModelProto:
    if name.startswith("bundled:"):
        return onnx.load(str(BUNDLED / f"{name.split(':', 1)[1]}.onnx"))
    if name == "bert_encoder":
        return builders.bert_encoder()
    return builders.BUILDERS[name]()


def ort_int8(model: onnx.ModelProto, calib: list[dict], tmp: Path) -> bytes | None:
    """onnxruntime's static QDQ quantization (per-channel, uint8 activations, int8 weights)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calib)

        def get_next(self):
            return next(self.it, None)

    src, dst = tmp / "fp32.onnx", tmp / "int8.onnx"
    onnx.save(model, str(src))
    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)
    return dst.read_bytes()


def _ort_session(src: bytes):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def time_engines(fns: dict, rounds: int, block: int) -> dict[str, float]:
    for f in fns.values():
        f()
    per: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for r in range(rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            fns[k]()
            t = time.perf_counter()
            for _ in range(block):
                fns[k]()
            per[k].append((time.perf_counter() - t) / block)
    return {k: 1e3 * float(np.median(v)) for k, v in per.items()}


def bench(name: str, rounds: int, block: int) -> dict:
    import tilecc

    model = load_model(name)
    calib = [_feeds(model, 100 + k) for k in range(8)]
    feeds = _feeds(model, 0)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        mods = {}
        for label, kw in (("tilecc fp32", {}),
                          ("tilecc int8", {"quantize": "int8", "calibration": calib})):
            path = tmp / f"{label.split()[1]}.tar"
            tilecc.compile(model, **kw).save(path)
            mods[label] = tilecc.load(path, num_threads=1)
        sess = {"ort fp32": _ort_session(model.SerializeToString())}
        q = ort_int8(model, calib, tmp)
        if q is not None:
            sess["ort int8"] = _ort_session(q)
    ref = next(iter(sess["ort fp32"].run(None, feeds)))
    out8 = next(iter(mods["tilecc int8"].run(feeds).values()))
    row = {"model": name, "cos_tilecc_int8": _cos(out8, ref)}
    if "ort int8" in sess:
        row["cos_ort_int8"] = _cos(next(iter(sess["ort int8"].run(None, feeds))), ref)
    fns = {k: (lambda m=m: m.run(feeds)) for k, m in mods.items()}
    fns.update({k: (lambda s=s: s.run(None, feeds)) for k, s in sess.items()})
    row["ms"] = time_engines(fns, rounds, block)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--block", type=int, default=10)
    args = ap.parse_args()
    print(f"CPU: {cpu_name()}; batch 1, 1 thread, median of {args.rounds} rounds x "
          f"{args.block} runs")
    print(f"{'model':24s} {'i8/f32':>7s} {'i8/ORTi8':>8s} {'i8/ORTf32':>9s} "
          f"{'cos i8':>9s} {'cos ORTi8':>9s}  ms: tilecc f32 | i8 | ORT f32 | i8")
    for name in args.models.split(","):
        try:
            r = bench(name, args.rounds, args.block)
        except Exception as exc:  # noqa: BLE001 - a failing model gets its row, others run
            print(f"{name:24s} error: {type(exc).__name__}: {str(exc)[:120]}")
            continue
        ms = r["ms"]
        i8 = ms["tilecc int8"]
        o8 = ms.get("ort int8")
        print(f"{name:24s} {i8 / ms['tilecc fp32']:7.2f} "
              f"{(i8 / o8) if o8 else float('nan'):8.2f} {i8 / ms['ort fp32']:9.2f} "
              f"{r['cos_tilecc_int8']:9.6f} {r.get('cos_ort_int8', float('nan')):9.6f}  "
              f"{ms['tilecc fp32']:.3f} | {i8:.3f} | {ms['ort fp32']:.3f} | "
              f"{o8 if o8 else float('nan'):.3f}", flush=True)


if __name__ == "__main__":
    main()

"""Write the small models bundled with tilecc (compiler/data/), reproducibly (seed 0).

    python benchmarks/make_bundled_models.py [--out-dir compiler/data]

- ds_cnn_kws.onnx: MLPerf Tiny keyword-spotting DS-CNN, input 1x1x49x10, 12 classes (~100 KB).
- mobilenet_tiny.onnx: MobileNetV2 at width 0.25, input 1x3x96x96, 10 classes (< 1 MB).

tests/test_builders.py checks that the committed files equal what this script writes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.models import builders

MODELS = {"ds_cnn_kws.onnx": builders.ds_cnn_kws, "mobilenet_tiny.onnx": builders.mobilenet_tiny}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "compiler" / "data")
    args = ap.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for filename, build in MODELS.items():
        data = build(seed=0).SerializeToString()
        (args.out_dir / filename).write_bytes(data)
        print(f"wrote {args.out_dir / filename} ({len(data) / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

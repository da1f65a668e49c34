"""GEMM micro-benchmark: a 1024x1024x1024 fp32 MatMul model compiled by tilecc vs numpy's BLAS,
both on one thread, in the same process (best of N runs each). Prints a Markdown table.

    python benchmarks/bench_gemm.py [--n 1024] [--repeat 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def best_of(fn, repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    from threadpoolctl import threadpool_info, threadpool_limits

    import tilecc

    n = args.n
    rng = np.random.default_rng(0)
    b = rng.standard_normal((n, n)).astype(np.float32)
    a = rng.standard_normal((n, n)).astype(np.float32)
    model = helper.make_model(
        helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "gemm",
                          [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])],
                          [numpy_helper.from_array(b, "b")]),
        opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    with tempfile.TemporaryDirectory() as d:
        path = tilecc.compile(model).save(os.path.join(d, "gemm.tar"))
        mod = tilecc.load(path, num_threads=1)
        y = mod.run({"a": a})["y"]
        err = float(np.abs(y - a @ b).max())
        t_tilecc = best_of(lambda: mod.run({"a": a}), args.repeat)
    with threadpool_limits(1):
        t_numpy = best_of(lambda: a @ b, args.repeat)
    blas = ", ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
                     for i in threadpool_info() if i.get("user_api") == "blas")
    flop = 2 * n ** 3
    print(f"| MatMul {n}x{n}x{n} fp32, 1 thread | GFLOP/s | ms |")
    print("|---|---|---|")
    print(f"| tilecc | {flop / t_tilecc / 1e9:.1f} | {t_tilecc * 1e3:.2f} |")
    print(f"| numpy ({blas}) | {flop / t_numpy / 1e9:.1f} | {t_numpy * 1e3:.2f} |")
    print(f"| tilecc / numpy throughput | {t_numpy / t_tilecc:.2f} | |")
    print(f"\nmax abs difference vs numpy: {err:.2e}")


if __name__ == "__main__":
    main()

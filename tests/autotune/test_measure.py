"""Isolated measurement: crashing, hanging, failing and wrong candidates get error kinds and
the runner survives them; the tuner never picks them."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from tilecc.autotune.measure import Builder, BuildResult, LocalRunner, MeasureOptions
from tilecc.autotune.record import ErrorKind
from tilecc.autotune.task import extract_tasks

from .conftest import conv_model

# Hand-written candidates with the kernel ABI (int32 entry(void **args)): out = 2 * in, and
# deliberately broken variants. The runner only sees a library, a symbol and argument specs.
_C = r"""
#include <stdint.h>
#include <stddef.h>
int32_t good(void **a) { float *x = a[0], *y = a[1];
    for (int i = 0; i < 64; i++) y[i] = 2.0f * x[i]; return 0; }
int32_t wrong(void **a) { float *x = a[0], *y = a[1];
    for (int i = 0; i < 64; i++) y[i] = 2.0f * x[i] + (i == 7); return 0; }
int32_t segv(void **a) { volatile float *p = (float *)(size_t)16; *p = 1.0f; return 0; }
int32_t oob(void **a) { float *y = a[1];
    for (long i = 0; ; i += 1 << 20) y[i] = 1.0f; return 0; }
int32_t hang(void **a) { volatile int s = 1; while (s) {} return 0; }
int32_t fails(void **a) { return 3; }
"""


@pytest.fixture(scope="module")
def cand_lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("cand")
    (d / "c.c").write_text(_C)
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(d / "c.so"), str(d / "c.c")],
                   check=True)
    return str(d / "c.so")


def test_runner_contains_bad_candidates(cand_lib, tmp_path, target):
    args = [[[64], "float32", "in"], [[64], "float32", "out"]]
    opts = MeasureOptions(timeout=3.0, repeat=2, min_repeat_ms=1)
    runner = LocalRunner(target, opts)
    ref = str(tmp_path / "ref.npz")
    try:
        (r0,) = runner.run([BuildResult(cand_lib, "good", args)], 0, ref, "save")
        assert r0.ok and len(r0.costs) == 2
        names = ["wrong", "segv", "oob", "hang", "fails", "good"]
        res = runner.run([BuildResult(cand_lib, n, args) for n in names]
                         + [BuildResult(error=ErrorKind.BUILD_ERROR, msg="x")], 0, ref)
    finally:
        runner.close()
    kinds = [r.error for r in res]
    assert kinds == [ErrorKind.WRONG_ANSWER, ErrorKind.CRASH, ErrorKind.CRASH,
                     ErrorKind.TIMEOUT, ErrorKind.RUNTIME_ERROR, ErrorKind.NONE,
                     ErrorKind.BUILD_ERROR]
    assert "signal 11" in res[1].msg
    assert all(r.cost == float("inf") for r in res[:5])
    with np.load(ref) as z:  # the reference is the good kernel's output on the seeded input
        x = np.random.default_rng(0).standard_normal(64).astype(np.float32)
        np.testing.assert_array_equal(z["arr_0"], 2 * x)


def test_builder_reports_build_errors(target, tmp_path):
    (task,) = extract_tasks(conv_model(), target)
    b = Builder(target, MeasureOptions(parallel=2))
    try:
        good = task.space.get(0)
        res = b.build(task, [good, {"oc_block": "x"}, {}], str(tmp_path))
    finally:
        b.close()
    assert [r.error for r in res] == [ErrorKind.NONE, ErrorKind.BUILD_ERROR, ErrorKind.NONE]
    assert "TypeError" in res[1].msg or "Error" in res[1].msg
    assert [a[2] for a in res[0].args][:3] == ["in", "in", "in"]


@pytest.mark.parametrize("flush_bytes", [0, 1 << 20])
def test_warm_and_cold_timing_both_check_and_time(cand_lib, tmp_path, target, flush_bytes):
    """Cold timing (the default: other memory dirtied before each timed call, as inside a model
    run) and warm timing (repeated calls) both verify the output and report `repeat` costs."""
    args = [[[64], "float32", "in"], [[64], "float32", "out"]]
    opts = MeasureOptions(timeout=10.0, repeat=3, min_repeat_ms=1, flush_bytes=flush_bytes)
    runner = LocalRunner(target, opts)
    ref = str(tmp_path / "ref.npz")
    try:
        (r0,) = runner.run([BuildResult(cand_lib, "good", args)], 0, ref, "save")
        r1, r2 = runner.run([BuildResult(cand_lib, n, args) for n in ("good", "wrong")], 0, ref)
    finally:
        runner.close()
    assert r0.ok and r1.ok and len(r1.costs) == 3 and all(c > 0 for c in r1.costs)
    assert r2.error == ErrorKind.WRONG_ANSWER

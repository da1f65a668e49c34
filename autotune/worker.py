"""Measurement worker: a subprocess that builds or times candidates, one JSON request per line
on stdin, one JSON reply per line on stdout.

Isolation is the point: a candidate that segfaults or hangs takes down this process, not the
tuner, which records the error and starts a fresh worker. Run as `python -m
tilecc.autotune.worker`.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np

# The runtime's aligned allocation is light (numpy only): the timing worker stays small.
from tilecc.runtime.artifact import aligned_empty as aligned_bytes

_TIMER_C = r"""
#include <stdint.h>
#include <time.h>
typedef int32_t (*entry_t)(void **);
/* The clock: this thread's CPU time when the kernel runs on the calling thread alone (time
 * the OS gave other processes is not billed to the candidate, so a busy machine does not
 * reorder configs; memory stalls still count), else wall time. */
static double now(int32_t cpu) {
    struct timespec t;
    clock_gettime(cpu ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
/* Seconds per call over `number` calls, or -rc when the kernel fails. Timing in C keeps the
 * ~1 us ctypes call cost out of small kernels' figures. */
double tilecc_time_calls(entry_t fn, void **args, int32_t number, int32_t cpu) {
    double a = now(cpu);
    for (int32_t i = 0; i < number; i++) {
        int32_t rc = fn(args);
        if (rc != 0) return -(double)rc;
    }
    return (now(cpu) - a) / number;
}
/* The same with every call timed alone after reading `flush_bytes` of other memory, so the
 * kernel's weights and inputs come from outer caches, as they do inside a model run (where
 * the previous kernels have just streamed their own data through), not from a warm L1/L2.
 * Reads, not writes: evicting clean lines costs the timed call nothing extra, while a dirty
 * sweep would bill it for write-backs that have nothing to do with its config. */
double tilecc_time_calls_cold(entry_t fn, void **args, int32_t number, volatile char *flush,
                              int64_t flush_bytes, int32_t cpu) {
    double total = 0.0;
    volatile char sink = 0;
    for (int32_t i = 0; i < number; i++) {
        char acc = 0;
        for (int64_t j = 0; j < flush_bytes; j += 64) acc ^= flush[j];
        sink = acc;
        double a = now(cpu);
        int32_t rc = fn(args);
        double b = now(cpu);
        if (rc != 0) return -(double)rc;
        total += b - a;
    }
    (void)sink;
    return total / number;
}
"""

_timer = None


def _timer_lib():
    global _timer
    if _timer is None:
        # Removed once loaded: workers are killed (timeouts, session end), so nothing at exit
        # would clean it up, and the mapping keeps the inode alive while it is in use.
        with tempfile.TemporaryDirectory(prefix="tilecc-timer-") as tmp:
            d = Path(tmp)
            (d / "timer.c").write_text(_TIMER_C)
            cc = os.environ.get("CC", "cc")
            subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(d / "timer.so"),
                            str(d / "timer.c")], check=True, capture_output=True)
            _timer = ctypes.CDLL(str(d / "timer.so"))
        _timer.tilecc_time_calls.restype = ctypes.c_double
        _timer.tilecc_time_calls.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32,
                                             ctypes.c_int32]
        _timer.tilecc_time_calls_cold.restype = ctypes.c_double
        _timer.tilecc_time_calls_cold.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                                  ctypes.c_int32, ctypes.c_void_p,
                                                  ctypes.c_int64, ctypes.c_int32]
    return _timer


def aligned_empty(shape, dtype, align: int = 64) -> np.ndarray:
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    return aligned_bytes(nbytes, align).view(dtype).reshape(shape)


def random_like(shape, dtype, rng) -> np.ndarray:
    a = aligned_empty(shape, dtype)
    if np.dtype(dtype).kind == "f":
        a[...] = rng.standard_normal(shape)
    else:
        a[...] = rng.integers(0, 2, shape)
    return a


def do_build(req: dict) -> dict:
    from tilecc.build import build_schedule
    from tilecc.codegen.function import build_shared
    from tilecc.targets.target import Target

    from .task import Task

    task = Task.from_json(req["task"])
    target = Target.from_dict(req["target"])
    node, graph = task.graph_node()
    cfg = req.get("config")
    sch, args, _, _ = build_schedule(node, graph, target, None, cfg_override=cfg or None)
    out = Path(req["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    # Built without loading: a cross target's library cannot be loaded here, and a library
    # that loads is the runner's business (a constructor that crashes is the runner's crash).
    with tempfile.TemporaryDirectory(prefix="tilecc-cand-") as tmp:
        lib, func = build_shared(sch, args, target, tmp, name="cand")
        shutil.copyfile(lib, out)
    n_in = len(node.inputs)
    n_args = len(func.params) - len(func.attrs.get("scratch", []))
    spec = []
    for k, b in enumerate(func.params):
        role = "in" if k < n_in else ("out" if k < n_args else "scratch")
        spec.append([list(b.shape), b.dtype, role])
    return {"ok": True, "lib": str(out), "symbol": "cand_entry", "args": spec}


def close_enough(got: np.ndarray, ref: np.ndarray) -> bool:
    """fp32 rtol 1e-4 / atol 1e-5 scaled by the output's magnitude: candidates only reorder
    the same sums, so larger outputs carry proportionally larger rounding."""
    if got.shape != ref.shape:
        return False
    if got.dtype.kind != "f":
        return bool(np.array_equal(got, ref))
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
    return bool(np.all(np.abs(got - ref) <= 1e-5 * scale + 1e-4 * np.abs(ref)))


WRONG_ANSWER_MSG = "output differs from the default config's output"


def reference_matches(outs: list[np.ndarray], ref: str | None, ref_mode: str) -> bool:
    """ref_mode "save": write `outs` as the reference (.npz); else compare them with it.
    No reference path: nothing to check."""
    if not ref:
        return True
    if ref_mode == "save":
        np.savez(ref, *outs)
        return True
    with np.load(ref, allow_pickle=False) as z:
        refs = [z[f"arr_{k}"] for k in range(len(z.files))]
    return len(refs) == len(outs) and all(close_enough(o, r) for o, r in zip(outs, refs))


def do_run(req: dict) -> dict:
    lib = ctypes.CDLL(req["lib"])
    threads = int(req.get("threads", 1))
    if hasattr(lib, "tilecc_set_num_threads"):
        lib.tilecc_set_num_threads(threads)
    entry = getattr(lib, req["symbol"])
    rng = np.random.default_rng(req.get("seed", 0))
    arrays = []
    for shape, dtype, role in req["args"]:
        arrays.append(random_like(shape, dtype, rng) if role == "in"
                      else aligned_empty(shape, dtype))
    for a, (_, _, role) in zip(arrays, req["args"]):
        if role != "in" and a.dtype.kind == "f":
            a.fill(np.nan)  # an output the kernel forgets to write cannot match by luck
    ptrs = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])
    timer = _timer_lib()
    fn_ptr = ctypes.cast(entry, ctypes.c_void_p)
    cpu = int(threads == 1)
    first = timer.tilecc_time_calls(fn_ptr, ptrs, 1, cpu)
    if first < 0:
        return {"ok": False, "error": "runtime_error", "msg": f"kernel returned {-first:.0f}"}
    outs = [a for a, (_, _, role) in zip(arrays, req["args"]) if role == "out"]
    if not reference_matches(outs, req.get("ref"), req.get("ref_mode", "check")):
        return {"ok": False, "error": "wrong_answer", "msg": WRONG_ANSWER_MSG}
    number = max(1, int(req.get("number", 1)))
    min_s = float(req.get("min_repeat_ms", 0)) / 1000.0
    # Grow `number` until one repeat lasts min_repeat_ms, so short kernels are not measured
    # at the clock's resolution.
    if min_s > 0 and first > 0:
        number = max(number, int(min_s / first) + 1)
    flush_bytes = int(req.get("flush_bytes", 0))
    # Written, not np.zeros: untouched zero pages all map one shared physical page, and a
    # sweep over them evicts nothing.
    flush = np.ones(max(flush_bytes, 1), np.uint8)
    if flush_bytes:
        # Each cold call is timed alone (clock resolution is not the limit) and costs a flush
        # of many microseconds: a few calls per repeat, not min_repeat_ms worth.
        number = max(1, min(number, 5))

    def timed():
        if flush_bytes:
            return timer.tilecc_time_calls_cold(fn_ptr, ptrs, number, flush.ctypes.data,
                                                flush_bytes, cpu)
        return timer.tilecc_time_calls(fn_ptr, ptrs, number, cpu)

    costs = []
    for _ in range(max(1, int(req.get("repeat", 3)))):
        c = timed()
        if c < 0:
            return {"ok": False, "error": "runtime_error", "msg": f"kernel returned {-c:.0f}"}
        costs.append(c)
    return {"ok": True, "costs": costs}


def serve(stdin=sys.stdin, stdout=sys.stdout) -> None:
    for line in stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            if req["cmd"] == "build":
                rep = do_build(req)
            elif req["cmd"] == "run":
                rep = do_run(req)
            elif req["cmd"] == "ping":
                rep = {"ok": True}
            else:
                rep = {"ok": False, "error": "runtime_error", "msg": f"bad cmd {req['cmd']}"}
        except Exception as e:  # noqa: BLE001 - every failure becomes a recorded error kind
            kind = "build_error" if req.get("cmd") == "build" else "runtime_error"
            rep = {"ok": False, "error": kind,
                   "msg": f"{type(e).__name__}: {e}",
                   "trace": traceback.format_exc(limit=4)}
        stdout.write(json.dumps(rep) + "\n")
        stdout.flush()


if __name__ == "__main__":
    # Replies go on a private copy of stdout: anything a kernel or library prints lands on
    # stderr instead of corrupting the protocol.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    serve(sys.stdin, out)

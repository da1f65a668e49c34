"""Fuzzing: mutated ONNX models must compile and run, or be refused with a TileccError.

Mutants come from fuzz_worker.py (bit flips, truncation, attribute type/value edits, shape
edits, dropped nodes/initializers, renamed edges, changed ops/dtypes/opsets, shuffled nodes).
Workers run in subprocesses, a batch of cases each, so a segfault or hang is caught, pinned to
its case, reported as a failure, and the run goes on with the next case.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = int(os.environ.get("TILECC_FUZZ_CASES", "1050"))
BATCH = 150
# A batch of 150 small models takes well under a minute; this only catches hangs.
BATCH_TIMEOUT = 600


def _run_batch(start: int, end: int, status: Path, **extra_env: str) -> str | None:
    """Run cases [start, end); returns "crash"/"hang" if the worker died, else None."""
    env = dict(os.environ, TILECC_MAX_MEMORY_BYTES=str(16 << 20), TILECC_NUM_THREADS="1",
               PYTHONWARNINGS="ignore", **extra_env)
    try:
        proc = subprocess.run([sys.executable, str(HERE / "fuzz_worker.py"), str(start),
                               str(end), str(status)], env=env, timeout=BATCH_TIMEOUT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              check=False)
    except subprocess.TimeoutExpired:
        return "hang"
    if proc.returncode != 0:
        return f"crash (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"
    return None


def _parse(status: Path) -> tuple[dict[int, tuple[str, str]], int | None]:
    done: dict[int, tuple[str, str]] = {}
    last_start = None
    for line in status.read_text().splitlines():
        kind, case, *rest = line.split(" ", 2)
        if kind == "start":
            last_start = int(case)
        else:
            outcome, detail = rest[0].split(" ", 1)
            done[int(case)] = (outcome, detail)
    if last_start is not None and last_start in done:
        last_start = None
    return done, last_start


def test_fuzz_mutated_models(tmp_path, summary_lines):
    results: dict[int, tuple[str, str]] = {}
    case = 0
    while case < CASES:
        end = min(case + BATCH, CASES)
        status = tmp_path / f"status_{case}.txt"
        died = _run_batch(case, end, status)
        done, unfinished = _parse(status) if status.exists() else ({}, case)
        results.update(done)
        if died is None:
            case = end
            continue
        # The worker died on `unfinished`: that case is the crash or hang; go on after it.
        bad = unfinished if unfinished is not None else case
        results[bad] = ("crash" if died.startswith("crash") else "hang", died)
        case = bad + 1

    counts = Counter(outcome for outcome, _ in results.values())
    ran, noref = counts["ran"], counts["norefer"]
    summary_lines.append(f"cases: {len(results)}; compiled+ran: {ran + noref} ({ran} matched "
                   f"onnxruntime, {noref} with no onnxruntime reference); rejected cleanly "
                   f"(TileccError): {counts['rejected']}; wrong results: {counts['wrong']}; "
                   f"other exceptions: {counts['bad']}; crashes: {counts['crash']}; "
                   f"hangs: {counts['hang']}")
    kinds = Counter(d.split("|")[2].strip().split(":")[0]
                    for o, d in results.values() if o == "rejected")
    summary_lines.append("rejections by class: " + ", ".join(f"{k} {v}" for k, v in kinds.most_common()))
    failures = [f"case {c}: {o}: {d}" for c, (o, d) in sorted(results.items())
                if o in ("bad", "wrong", "crash", "hang")]
    summary_lines.extend(failures[:20])
    assert len(results) == CASES
    assert not failures, "\n".join(failures[:20])


def test_harness_pins_a_segfault_to_its_case(tmp_path):
    status = tmp_path / "status.txt"
    died = _run_batch(0, 4, status, TILECC_FUZZ_CRASH_AT="2")
    assert died is not None and died.startswith("crash (exit -11)")
    done, unfinished = _parse(status)
    assert sorted(done) == [0, 1] and unfinished == 2

"""Tuning-log records: round trip, merge/best/export, corrupt lines, concurrent writers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tilecc.autotune.record import (
    ErrorKind,
    Record,
    append_records,
    best_records,
    merge,
    read_records,
)
from tilecc.cli import main

from .conftest import make_record


def test_round_trip(tmp_path):
    recs = [make_record("a", {"oc_block": 4}, (2e-3, 1e-3, 3e-3)),
            make_record("a", {"oc_block": 8}, (), "crash")]
    log = tmp_path / "l.jsonl"
    append_records(log, recs)
    back = list(read_records(log))
    assert back == recs
    assert back[0].cost == 2e-3 and back[1].error == ErrorKind.CRASH and not back[1].ok
    d = json.loads(log.read_text().splitlines()[0])
    for k in ("version", "target", "workload", "device", "template", "template_version",
              "config", "costs", "error", "timestamp", "tool_version"):
        assert k in d


def test_corrupt_lines_skipped_with_warning(tmp_path):
    log = tmp_path / "l.jsonl"
    good = make_record("a", {"x": 1})
    log.write_text(good.to_json() + "\n{not json\n" + '{"version": 99}\n' + good.to_json()[:30])
    with pytest.warns(UserWarning, match=r"l\.jsonl:2:") as w:
        recs = list(read_records(log))
    assert recs == [good]
    assert any(":3:" in str(x.message) for x in w) and any(":4:" in str(x.message) for x in w)
    # Appending after a torn last line starts a fresh line: the new record survives.
    append_records(log, [make_record("b", {"x": 2})])
    with pytest.warns(UserWarning):
        assert [r.workload for r in read_records(log)] == ["a", "b"]


def test_merge_best_export_cli(tmp_path, capsys):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    shared = make_record("w1", {"k": 1}, (3e-3,))
    append_records(a, [shared, make_record("w1", {"k": 2}, (1e-3,)),
                       make_record("w2", {"k": 1}, (5e-3,), target_key="other/x/y")])
    append_records(b, [shared, make_record("w1", {"k": 3}, (0.5e-3,), "wrong_answer"),
                       make_record("w2", {"k": 2}, (4e-3,))])
    out = tmp_path / "m.jsonl"
    assert main(["logs", "merge", str(a), str(b), "-o", str(out)]) == 0
    merged = list(read_records(out))
    assert len(merged) == 5  # the identical record once, nothing else lost
    assert {r.to_json() for r in merged} == {
        r.to_json() for r in list(read_records(a)) + list(read_records(b))}
    best = tmp_path / "best.jsonl"
    assert main(["logs", "best", str(out), "-o", str(best)]) == 0
    got = {(r.target, r.workload): r.config for r in read_records(best)}
    # The wrong-answer record is faster but never chosen.
    assert got == {("t/k/c", "w1"): {"k": 2}, ("other/x/y", "w2"): {"k": 1},
                   ("t/k/c", "w2"): {"k": 2}}
    exp = tmp_path / "e.jsonl"
    assert main(["logs", "export", str(out), "--target", "other/x/y", "-o", str(exp)]) == 0
    assert [r.workload for r in read_records(exp)] == ["w2"]
    assert main(["logs", "show", str(out)]) == 0
    assert "5 records" in capsys.readouterr().out


def test_best_records_ignores_failures():
    recs = [make_record("w", {"a": 1}, (), "timeout"), make_record("w", {"a": 2}, (2.0,))]
    assert best_records(recs)[("t/k/c", "w")].config == {"a": 2}
    assert merge(recs + recs) == recs


def test_best_records_pool_repeated_measurements():
    """A config's measurements pool: one lucky run of {a: 1} (0.9) does not beat {a: 2}
    whose three runs all measured 1.0, once {a: 1} was re-measured at 1.2 twice."""
    recs = [make_record("w", {"a": 1}, (0.9,)), make_record("w", {"a": 2}, (1.0,))]
    assert best_records(recs)[("t/k/c", "w")].config == {"a": 1}
    recs += [make_record("w", {"a": 1}, (1.2, 1.2)), make_record("w", {"a": 2}, (1.0, 1.0))]
    best = best_records(recs)[("t/k/c", "w")]
    assert best.config == {"a": 2} and sorted(best.costs) == [1.0, 1.0, 1.0]


def test_in_model_default_stays_unless_beaten_beyond_noise():
    """In-model records (21 rounds each): a config whose median is lower by noise alone does
    not replace the default; one faster in nearly every round does."""
    from dataclasses import replace

    rng = np.random.default_rng(1)

    def model(cfg, centre):
        costs = tuple(float(c) for c in centre * (1 + 0.03 * rng.standard_normal(21)))
        return replace(make_record("w", cfg, costs), purpose="model")

    default, lucky = model({}, 1.0), model({"a": 1}, 0.995)
    assert lucky.cost < default.cost  # the seed draws the lucky case
    assert best_records([default, lucky])[("t/k/c", "w")].config == {}
    fast = model({"a": 2}, 0.93)
    assert best_records([default, lucky, fast])[("t/k/c", "w")].config == {"a": 2}
    # Without the default measured in the model, the lowest median decides as before.
    assert best_records([lucky, fast])[("t/k/c", "w")].config == {"a": 2}


def test_concurrent_writers(tmp_path):
    log = tmp_path / "shared.jsonl"
    script = textwrap.dedent(f"""
        import sys
        from tilecc.autotune.record import Record, append_records
        tag = sys.argv[1]
        for i in range(150):
            append_records({str(log)!r}, [Record("t/k/c", "w" + tag, "tpl", 1,
                           {{"i": i, "pad": "x" * 3000}}, (1e-3,))])
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, t]) for t in ("a", "b")]
    assert all(p.wait(120) == 0 for p in procs)
    recs = list(read_records(log))  # any interleaved line would warn and go missing
    assert len(recs) == 300
    for t in ("a", "b"):
        assert sorted(r.config["i"] for r in recs if r.workload == "w" + t) == list(range(150))


def test_record_rejects_bad_schema():
    with pytest.raises(ValueError):
        Record.from_json('{"version": 1, "target": "x"}')


def test_untimed_records_are_never_best(tmp_path):
    """An emulated check (error "untimed", no costs) reads back, counts as passed, and never
    wins over a timed record, however slow the timed one is; the schema version is unchanged,
    so logs written before the kind existed read as before."""
    timed = make_record("a", {"oc_block": 4}, (5.0,))
    untimed = make_record("a", {"oc_block": 8}, (), "untimed")
    log = tmp_path / "l.jsonl"
    append_records(log, [untimed, timed])
    back = list(read_records(log))
    assert back == [untimed, timed]
    assert back[0].passed and not back[0].ok and back[0].cost == float("inf")
    assert json.loads(log.read_text().splitlines()[0])["version"] == 1
    assert best_records(back) == {("t/k/c", "a"): timed}
    assert best_records([untimed]) == {}
    assert main(["logs", "best", str(log), "-o", str(tmp_path / "b.jsonl")]) == 0
    assert list(read_records(tmp_path / "b.jsonl")) == [timed]

"""Config provider backed by tuning logs (what `tilecc.compile(tuning_logs=...)` uses).

Lookup order for a kernel: the best record for its exact (target, workload), if it is for this
template and version and its knob values are legal in this workload's space -> "log"; else the
best config of the most similar workload of the same template and version on the same target,
if its knob values are legal in this workload's space -> "transfer"; else the template
default. Sources are searched in priority order: logs given by the user, then the directory
in TILECC_TUNING_LOGS, then the logs shipped with tilecc (compiler/data/tuned/*.jsonl).

A record that cannot apply (malformed workload, another template version, a knob value this
space does not have) is skipped with a warning naming its file and line, never an error: one
stale or hand-edited line must not stop a compile.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

from .record import Record, best_records, read_records, workload_fields

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "compiler" / "data" / "tuned"


def shipped_logs() -> list[Path]:
    d = SHIPPED_DIR
    if not d.is_dir():
        try:
            import tilecc
            d = Path(tilecc.__file__).resolve().parent / "data" / "tuned"
        except ImportError:
            return []
    return sorted(d.glob("*.jsonl")) if d.is_dir() else []


def user_logs() -> list[Path]:
    d = os.environ.get("TILECC_TUNING_LOGS")
    if not d:
        return []
    p = Path(d)
    return sorted(p.glob("*.jsonl")) if p.is_dir() else ([p] if p.is_file() else [])


def _shape_distance(a: dict, b: dict) -> float:
    """How far two workload keys are apart: inf unless op, attrs and ranks agree (strides,
    groups and the like change the loop structure a config was tuned for); otherwise the sum
    of |log2 ratio| over every input dimension."""
    if a["op"] != b["op"] or a["attrs"] != b["attrs"] or len(a["inputs"]) != len(b["inputs"]):
        return math.inf
    d = 0.0
    for (sa, ta), (sb, tb) in zip(a["inputs"], b["inputs"]):
        if ta != tb or len(sa) != len(sb):
            return math.inf
        d += sum(abs(math.log2(max(x, 1) / max(y, 1))) for x, y in zip(sa, sb))
    return d


def _skip(r: Record, why: str) -> None:
    warnings.warn(f"{r.origin or 'tuning log'}: skipping tuning record ({why})", stacklevel=3)


def _usable(r: Record) -> bool:
    if workload_fields(r.workload) is None:
        _skip(r, "malformed workload")
        return False
    return True


def _applies(r: Record, template: str, version: int, space) -> bool:
    """Whether an exact hit may be used: the workload key names the template, but a record's
    own fields may disagree (edited, or written by another tilecc)."""
    if r.template != template or r.template_version != version:
        _skip(r, f"made for {r.template} v{r.template_version}, this compiler has {template} "
                 f"v{version}")
        return False
    if space is not None:
        from .task import ConfigSpace

        if not ConfigSpace(space).contains(r.config):
            bad = {k: v for k, v in r.config.items() if k not in space or v not in space[k]}
            _skip(r, f"knob values {bad} are not in this workload's space")
            return False
    return True


class TuningLogConfigs:
    """Best configs from tuning logs, with transfer to similar workloads."""

    def __init__(self, logs=(), use_default_logs: bool = True):
        if isinstance(logs, (str, os.PathLike)):
            logs = [logs]
        groups = [[Path(p) for p in logs]]
        if use_default_logs:
            groups += [user_logs(), shipped_logs()]
        # One best table per priority level: a user's own measurements win over shipped ones
        # even when the shipped cost (from another machine) looks lower.
        self.levels: list[dict[tuple[str, str], Record]] = []
        for g in groups:
            recs: list[Record] = []
            for p in g:
                if not p.is_file():
                    from tilecc.errors import InputError
                    raise InputError(f"{p}: tuning log not found")
                recs.extend(r for r in read_records(p) if _usable(r))
            if recs:
                self.levels.append(best_records(recs))

    def lookup(self, workload: str, template: str, version: int, target, space=None):
        key = (target.key, workload)
        for best in self.levels:
            if key in best and _applies(best[key], template, version, space):
                return dict(best[key].config), "log"
        cfg = self._transfer(workload, template, version, target, space)
        if cfg is not None:
            return cfg, "transfer"
        return None, "default"

    def _transfer(self, workload, template, version, target, space):
        if space is None:
            return None
        from .task import ConfigSpace

        sp = ConfigSpace(space)
        mine = json.loads(workload)
        for best in self.levels:
            cands = []
            for (tk, wl), r in best.items():
                if tk != target.key or r.template != template or r.template_version != version:
                    continue
                d = _shape_distance(mine, json.loads(wl))  # checked by _usable
                if math.isfinite(d) and r.config and sp.contains(r.config):
                    cands.append((d, r.cost, wl, r))
            if cands:
                return dict(min(cands, key=lambda c: c[:3])[3].config)
        return None

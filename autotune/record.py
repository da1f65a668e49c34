"""Tuning-log records: JSON lines, one measurement per line.

A record names its target (Target.key), the workload key from the build driver, the device it
was measured on, the template name and version, the config (an empty config means "the
template's default"), the measured costs in seconds and an error kind (`untimed`: checked for correctness under an
emulator, no cost). Files are append-only;
each append is one locked, fsynced write so several tuners can share one file.
"""

from __future__ import annotations

import enum
import fcntl
import json
import math
import os
import platform
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tilecc.fileio import atomic_output

SCHEMA_VERSION = 1


class ErrorKind(str, enum.Enum):
    """Why a candidate has no usable cost. Only NONE records are ever chosen."""

    NONE = "none"
    BUILD_ERROR = "build_error"  # schedule/lowering/codegen/link failed
    BUILD_TIMEOUT = "build_timeout"
    RUNTIME_ERROR = "runtime_error"  # kernel returned an error code or the runner raised
    CRASH = "crash"  # the isolated runner died (e.g. SIGSEGV)
    TIMEOUT = "timeout"  # the run exceeded its time limit
    WRONG_ANSWER = "wrong_answer"  # output differs from the default config's output
    # Ran and matched the reference, but was not timed (emulated runner): a correct config
    # with no latency, so it can never be "best"; old readers skip such lines with a warning.
    UNTIMED = "untimed"


def _tool_version() -> str:
    from tilecc import __version__
    return __version__


class Costs:
    """What a measurement's `costs` and `error` say; shared by a fresh MeasureResult and a
    logged Record so the two can never disagree on what counts as a usable cost."""

    costs: Sequence[float]
    error: ErrorKind

    @property
    def ok(self) -> bool:
        return self.error == ErrorKind.NONE and bool(self.costs)

    @property
    def passed(self) -> bool:
        """Ran and matched the reference, timed or not (see ErrorKind.UNTIMED)."""
        return self.ok or self.error == ErrorKind.UNTIMED

    @property
    def cost(self) -> float:
        """Median of the measured costs (inf when the candidate failed)."""
        if not self.ok:
            return float("inf")
        c = sorted(self.costs)
        return c[len(c) // 2]


@dataclass(frozen=True)
class Record(Costs):
    target: str
    workload: str
    template: str
    template_version: int
    config: dict
    costs: tuple[float, ...] = ()
    error: ErrorKind = ErrorKind.NONE
    device: str = field(default_factory=platform.node)
    timestamp: float = field(default_factory=time.time)
    tool_version: str = field(default_factory=_tool_version)
    error_msg: str = ""
    version: int = SCHEMA_VERSION
    # "search": a tuner's proposal; "confirm": a deliberate re-measurement of a leading config
    # next to the default (see tune.py), which pools with the config's earlier costs.
    purpose: str = "search"
    # Where the record was read ("log.jsonl:12"), for warnings; not part of the record.
    origin: str = field(default="", compare=False, repr=False)

    @property
    def config_key(self) -> str:
        return config_key(self.config)

    def to_json(self) -> str:
        d = asdict(self)
        del d["origin"]
        d["costs"] = list(self.costs)
        d["error"] = self.error.value
        return json.dumps(d, sort_keys=True, separators=(",", ":"))

    @staticmethod
    def from_json(line: str, origin: str = "") -> Record:
        d = json.loads(line)
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")  # noqa: TRY004 - a bad line, not a bad call
        if d.get("version") != SCHEMA_VERSION:
            raise ValueError(f"unsupported schema version {d.get('version')!r}")
        missing = [k for k in ("target", "workload", "template", "template_version", "config")
                   if k not in d]
        if missing:
            raise ValueError(f"missing fields {missing}")
        if not isinstance(d["config"], dict):
            raise ValueError("config must be an object")  # noqa: TRY004
        _check_fields(d)
        d["costs"] = tuple(float(c) for c in d.get("costs", ()))
        d["error"] = ErrorKind(d.get("error", "none"))
        known = set(Record.__dataclass_fields__) - {"origin"}
        return Record(**{k: v for k, v in d.items() if k in known}, origin=origin)


_KNOB_TYPES = (int, float, str, bool)


def _check_fields(d: dict) -> None:
    """Values a record must have to be used at all: a wrong type here used to surface later as
    an internal error in whatever read the record (the compiler, `logs best`)."""
    for k in ("target", "workload", "template"):
        if not isinstance(d[k], str) or not d[k]:
            raise ValueError(f"{k} must be a non-empty string")
    tv = d["template_version"]
    if isinstance(tv, bool) or not isinstance(tv, int) or tv < 0:
        raise ValueError(f"template_version {tv!r} is not a version number")
    for knob, v in d["config"].items():
        if not isinstance(v, _KNOB_TYPES) or (isinstance(v, float) and not math.isfinite(v)):
            raise ValueError(f"knob {knob}={v!r} is not a number, string or boolean")
    costs = d.get("costs", ())
    if not isinstance(costs, list) or not all(
            isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c)
            and c >= 0 for c in costs):
        raise ValueError(f"costs {costs!r} are not finite non-negative seconds")
    if not isinstance(d.get("purpose", "search"), str):
        raise ValueError("purpose must be a string")  # noqa: TRY004 - a bad line


def workload_fields(workload: str) -> dict | None:
    """The parsed workload key (tilecc.build.workload_key), or None if it is malformed."""
    try:
        w = json.loads(workload)
    except ValueError:
        return None
    ok = (isinstance(w, dict) and isinstance(w.get("op"), str)
          and isinstance(w.get("attrs"), dict) and isinstance(w.get("inputs"), list)
          and all(isinstance(i, list) and len(i) == 2 and isinstance(i[0], list)
                  and all(isinstance(d, int) and not isinstance(d, bool) for d in i[0])
                  and isinstance(i[1], str) for i in w["inputs"]))
    return w if ok else None


def config_key(cfg: dict) -> str:
    return json.dumps(cfg, sort_keys=True, separators=(",", ":"))


def read_records(path: str | os.PathLike, warn: bool = True) -> Iterator[Record]:
    """Records of a log; a line that does not parse is skipped with a warning naming the file
    and line number (one bad line from a crashed writer must not cost the other records)."""
    path = Path(path)
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield Record.from_json(line, origin=f"{path}:{lineno}")
            except (ValueError, TypeError, KeyError) as e:
                if warn:
                    warnings.warn(f"{path}:{lineno}: skipping invalid tuning-log record ({e})",
                                  stacklevel=2)


def load_logs(paths: Iterable[str | os.PathLike]) -> list[Record]:
    out: list[Record] = []
    for p in paths:
        out.extend(read_records(p))
    return out


def append_records(path: str | os.PathLike, records: Iterable[Record]) -> None:
    """Append records under an exclusive lock, one write() per line, then fsync: concurrent
    tuners never interleave lines, and a record that returned is on disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            # A previous writer killed mid-line leaves no newline: start on a fresh line so
            # only that partial line is lost, not ours too.
            size = os.fstat(fd).st_size
            if size:
                with open(path, "rb") as f:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":
                        os.write(fd, b"\n")
            for r in records:
                data = (r.to_json() + "\n").encode()
                n = os.write(fd, data)
                if n != len(data):
                    raise OSError(f"{path}: short write ({n} of {len(data)} bytes)")
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _identity(r: Record) -> str:
    return r.to_json()


def merge(records: Iterable[Record]) -> list[Record]:
    """Union of records, dropping exact duplicates (same JSON), order kept."""
    seen: set[str] = set()
    out = []
    for r in records:
        k = _identity(r)
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out


def config_medians(records: Iterable[Record]) -> dict[str, float]:
    """config key -> median (as Record.cost) of all successful costs measured for it."""
    costs: dict[str, list[float]] = {}
    for r in records:
        if r.ok:
            costs.setdefault(r.config_key, []).extend(r.costs)
    return {k: sorted(v)[len(v) // 2] for k, v in costs.items()}


def best_records(records: Iterable[Record]) -> dict[(tuple[str, str]), Record]:
    """Per (target, workload), the config with the lowest median over all its successful
    measurements (in-model ones where there are any; there the default stays unless a config
    is significantly faster), as one record carrying the pooled costs. Pooling repeated
    measurements of a
    config (confirmation rounds, logs merged from several machines of one target) keeps a
    single lucky run from deciding: the minimum of many noisy single measurements favours
    whichever config drew the luckiest one."""
    groups: dict[tuple[str, str, str], tuple[Record, list[float]]] = {}
    records = [r for r in records if r.ok]
    # Times measured inside the model (purpose "model", autotune/inmodel.py) decide where they
    # exist: they are what the config is for, and they are not comparable with isolated times.
    in_model = {(r.target, r.workload) for r in records if r.purpose == "model"}
    for r in records:
        if ((r.target, r.workload) in in_model) != (r.purpose == "model"):
            continue
        k = (r.target, r.workload, r.config_key)
        if k in groups:
            first, costs = groups[k]
            costs.extend(r.costs)
        else:
            groups[k] = (r, list(r.costs))
    pooled: dict[tuple[str, str], list[Record]] = {}
    for (tk, wk, _), (first, costs) in groups.items():
        rec = first if len(costs) == len(first.costs) else replace(first, costs=tuple(costs))
        pooled.setdefault((tk, wk), []).append(rec)
    best: dict[tuple[str, str], Record] = {}
    for key, recs in pooled.items():
        # In the model the default was measured next to the leading configs: one of those
        # replaces it only when it is faster beyond the noise. The lowest of four noisy
        # medians is biased low (on Zen 2 it picked configs worth nothing, or a loss).
        d = next((r for r in recs if r.purpose == "model" and r.config_key == "{}"), None)
        if d is not None:
            recs = [d] + [r for r in recs if r is not d and significantly_faster(r.costs, d.costs)]
        best[key] = min(recs, key=lambda r: r.cost)
    return best


def significantly_faster(costs, base, z: float = 2.33) -> bool:
    """Whether `costs` run lower than `base` beyond chance: one-sided Mann-Whitney U test,
    normal approximation, 1% level (about one false win per tuning session of MobileNetV2's
    30 tasks x 3 candidates). Too few samples never pass."""
    n, m = len(costs), len(base)
    if n < 5 or m < 5:
        return False
    u = sum((a > b) + 0.5 * (a == b) for a in costs for b in base)
    mean, sd = n * m / 2, math.sqrt(n * m * (n + m + 1) / 12)
    return (u - mean) / sd <= -z


def write_records(path: str | os.PathLike, records: Iterable[Record]) -> int:
    """Write a new log (replacing `path` atomically); returns the number of records."""
    n = 0
    with atomic_output(path, fsync=True) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(r.to_json() + "\n")
            n += 1
    return n

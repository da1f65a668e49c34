"""TE computes and schedule templates, registered per op and per target family.

`register_compute(op)`: fn(inputs: list[te.Tensor], attrs: dict, out_types) -> list[te.Tensor].
`register_schedule(op, family)`: fn(sch, stage, target, cfg) -> None, applied to the root stage
that holds the op (after epilogue fusion). A family-specific entry ("x86", "arm", ...)
overrides the "generic" one. Each schedule template declares its knobs and derives a default
config from the target, so no tuning log is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

COMPUTES: dict[str, Callable] = {}


@dataclass(frozen=True)
class Template:
    """A schedule template: `apply(sch, stage, target, cfg)`; `knobs(stage, target)` gives the
    tunable space {knob: [values]}; cfg None (or missing keys) means the template's default
    derived from the target. `name` and `version` go into tuning-log records: bump the version
    when a knob's meaning changes so old records stop applying."""

    name: str
    version: int
    apply: Callable
    knobs: Callable | None = None

    def space(self, stage, target) -> dict[str, list]:
        return dict(self.knobs(stage, target)) if self.knobs else {}


SCHEDULES: dict[tuple[str, str], Template] = {}


def register_per_op(table: dict[str, Callable], what: str, ops: tuple[str, ...]):
    """A decorator filing its function in `table` under each op name: one entry per op, as
    computes and extern kernels both want, so a second registration is a mistake."""
    def deco(fn):
        for op in ops:
            if op in table:
                raise ValueError(f"{what} for {op} registered twice")
            table[op] = fn
        return fn
    return deco


def register_compute(*ops: str):
    return register_per_op(COMPUTES, "compute", ops)


def register_schedule(op: str, family: str = "generic", name: str | None = None,
                      version: int = 1, knobs: Callable | None = None):
    def deco(fn):
        SCHEDULES[(op, family)] = Template(name or f"{op.lower()}.{family}", version, fn, knobs)
        return fn
    return deco


def get_compute(op: str) -> Callable:
    _load()
    try:
        return COMPUTES[op]
    except KeyError:
        raise KeyError(f"no tensor expression for op {op!r}") from None


def get_schedule(op: str, family: str) -> Template | None:
    _load()
    return SCHEDULES.get((op, family)) or SCHEDULES.get((op, "generic"))


def _load():
    from . import _families  # noqa: F401

"""TE computes and schedule templates, registered per op and per target family.

`register_compute(op)`: fn(inputs: list[te.Tensor], attrs: dict, out_types) -> list[te.Tensor].
`register_schedule(op, family)`: fn(sch, stage, target, cfg) -> None, applied to the root stage
that holds the op (after epilogue fusion). A family-specific entry ("x86", "arm", ...)
overrides the "generic" one. Each schedule template declares its knobs and derives a default
config from the target, so no tuning log is needed.
"""

from __future__ import annotations

from collections.abc import Callable

COMPUTES: dict[str, Callable] = {}
SCHEDULES: dict[tuple[str, str], Callable] = {}


def register_compute(*ops: str):
    def deco(fn):
        for op in ops:
            if op in COMPUTES:
                raise ValueError(f"compute for {op} registered twice")
            COMPUTES[op] = fn
        return fn
    return deco


def register_schedule(op: str, family: str = "generic"):
    def deco(fn):
        SCHEDULES[(op, family)] = fn
        return fn
    return deco


def get_compute(op: str) -> Callable:
    _load()
    try:
        return COMPUTES[op]
    except KeyError:
        raise KeyError(f"no tensor expression for op {op!r}") from None


def get_schedule(op: str, family: str) -> Callable | None:
    _load()
    return SCHEDULES.get((op, family)) or SCHEDULES.get((op, "generic"))


def _load():
    from . import _families  # noqa: F401

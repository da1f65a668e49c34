"""Extern kernels: ops whose loop IR is written directly instead of derived from a TE schedule.

TE has no recurrences, so an op like LSTM (a time loop whose step t reads step t-1's state)
registers a loop-IR builder here. `compiler/build.py` `make_kernel` hands a fused node whose
anchor op has a builder to it instead of scheduling TE:

    builder(node, graph, target, name) -> PrimFunc

The PrimFunc's params are the fused node's inputs, then its outputs, then any scratch buffers
(listed in attrs["scratch"], as `schedule.lower` does), so the build driver plans memory and
calls it like any other kernel. The node holds only the anchor op (extern ops are not fusion
hosts).
"""

from __future__ import annotations

from collections.abc import Callable

from .registry import register_per_op

EXTERNS: dict[str, Callable] = {}


def register_extern(*ops: str):
    return register_per_op(EXTERNS, "extern kernel", ops)


def get_extern(op: str) -> Callable | None:
    from . import _families  # noqa: F401  (registrations)
    return EXTERNS.get(op)

"""Static memory planning: every intermediate tensor gets an offset in one arena.

Buffers whose lifetimes do not overlap share memory (greedy, largest first, lowest offset
that fits). Reshape outputs alias their input. Weights get 64-byte aligned offsets in the
params blob.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ALIGN = 64


def align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


@dataclass
class MemoryPlan:
    # value name -> ("in", i) | ("out", j) | ("param", offset) | ("arena", offset)
    storage: dict[str, tuple[str, int]] = field(default_factory=dict)
    arena_size: int = 0
    params: bytes = b""
    intermediate_bytes: int = 0  # sum of all intermediate tensors, without sharing


def view_roots(fused) -> tuple[dict[str, str], object]:
    """Reshape outputs are views sharing their input's storage: (value -> parent, rootof)."""
    parent = {n.outputs[0]: n.inputs[0] for n in fused.nodes if n.op == "Reshape"}

    def rootof(v: str) -> str:
        while v in parent:
            v = parent[v]
        return v

    return parent, rootof


def pack_params(consts: dict[str, np.ndarray], used: list[str]) -> tuple[bytes, dict[str, int]]:
    chunks, offsets, off = [], {}, 0
    for name in used:
        arr = np.ascontiguousarray(consts[name])
        if arr.dtype == np.bool_:
            arr = arr.astype(np.uint8)
        offsets[name] = off
        data = arr.tobytes()
        pad = align(len(data)) - len(data)
        chunks.append(data + b"\0" * pad)
        off += len(data) + pad
    return b"".join(chunks), offsets


def plan_memory(values: dict[str, int], lifetimes: dict[str, tuple[int, int]]
                ) -> tuple[dict[str, int], int]:
    """Offsets for buffers of `values` (name -> bytes) live over [first, last] steps."""
    order = sorted(values, key=lambda v: (-values[v], lifetimes[v][0]))
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last)
    offsets: dict[str, int] = {}
    total = 0
    for v in order:
        size = align(max(values[v], 1))
        first, last = lifetimes[v]
        busy = sorted((o, s) for o, s, f, la in placed if not (la < first or f > last))
        off = 0
        for o, s in busy:
            if off + size <= o:
                break
            off = max(off, o + s)
        offsets[v] = off
        placed.append((off, size, first, last))
        total = max(total, off + size)
    return offsets, total

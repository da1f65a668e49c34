"""Static memory planning: every intermediate tensor gets an offset in one arena.

Buffers whose lifetimes do not overlap share memory (greedy, largest first, lowest offset
that fits). Reshape outputs alias their input; the inputs of a concat along an axis with only
unit dims before it are slices of its output (their producers write in place, no concat
kernel). Weights get 64-byte aligned offsets in the params blob.
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


def concat_views(fused, protected: set[str], nbytes) -> dict[str, tuple[str, int]]:
    """Concat inputs written in place: value -> (concat output, byte offset in it).

    With every dim before the axis 1 (batch 1, channel concat, also in NCHWc blocks), each
    input is one contiguous slice of the output, so the kernel that makes it can write there
    and the copy disappears. Only plain kernel outputs qualify: not graph inputs, outputs or
    constants (`protected`), not an input listed twice, not a value another concat took, and
    only when the storage sizes add up (half-storage values with float32 neighbours do not).
    Follow a value's chain (views of views) with `view_root`.
    """
    producers = {o: n for n in fused.nodes for o in n.outputs}
    views: dict[str, tuple[str, int]] = {}
    for n in fused.nodes:
        members = n.attrs.get("nodes", ()) if n.op == "Fused" else ()
        if len(members) != 1 or members[0].op != "Concat":
            continue
        out, ins = n.outputs[0], list(members[0].inputs)
        shape = fused.types[out].shape
        axis = members[0].attrs.get("axis", 0) % len(shape)
        if out in protected or out in views or any(d != 1 for d in shape[:axis]):
            continue
        if len(set(ins)) != len(ins) or not all(_kernel_made(i, producers, protected, views)
                                                for i in ins):
            continue
        total, size = nbytes(out), fused.types[out].size
        offs, off = {}, 0
        for i in ins:
            nb = nbytes(i)
            if nb * size != total * fused.types[i].size:
                break
            offs[i] = (out, off)
            off += nb
        else:
            if off == total:
                views.update(offs)
    return views


def _kernel_made(v: str, producers: dict, protected: set[str], views: dict) -> bool:
    p = producers.get(v)
    # A concat written in place itself qualifies: its inputs then chain to the outer output.
    return p is not None and p.op == "Fused" and v not in protected and v not in views


def view_root(v: str, parent: dict[str, str], views: dict[str, tuple[str, int]]
              ) -> tuple[str, int]:
    """The value whose storage `v` lives in, and v's byte offset there (Reshape views at 0,
    concat inputs at their slice)."""
    off = 0
    while True:
        if v in parent:
            v = parent[v]
        elif v in views:
            v, o = views[v]
            off += o
        else:
            return v, off


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

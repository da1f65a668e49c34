"""Static memory planning: every intermediate tensor gets an offset in one arena.

Buffers whose lifetimes do not overlap share memory (greedy, largest first, lowest offset
that fits). Reshape outputs alias their input; the inputs of a concat along an axis with only
unit dims before it are slices of its output (their producers write in place, no concat
kernel). Weights get 64-byte aligned offsets in the params blob.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

ALIGN = 64


def align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


@dataclass
class Step:
    """What the planner needs of one kernel call: the values it reads and writes, and its
    private scratch buffers (name -> bytes), live during that call only."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    scratch: dict[str, int] = field(default_factory=dict)


@dataclass
class MemoryPlan:
    """Where every value of a compiled graph lives. `ref(v)` is ("in", i), ("out", j),
    ("param", byte offset) or ("arena", byte offset); offsets are bytes, whatever a backend
    later converts them to."""

    inputs: dict[str, int]  # graph input -> position
    outputs: dict[str, int]  # graph output -> position
    param_offsets: dict[str, int]  # packed constant -> byte offset in `params`
    params: bytes
    offsets: dict[str, int]  # arena buffer (value root or scratch) -> byte offset
    sizes: dict[str, int]  # arena buffer -> bytes
    lifetimes: dict[str, tuple[int, int]]  # arena buffer -> (first, last) step
    arena_size: int
    parent: dict[str, str]  # Reshape views: value -> value it aliases
    views: dict[str, tuple[str, int]]  # concat inputs written in place (concat_views)
    used_consts: list[str] = field(default_factory=list)

    @property
    def intermediate_bytes(self) -> int:
        """All arena buffers without any sharing: what planning saves is measured against it."""
        return sum(self.sizes.values())

    def root(self, v: str) -> tuple[str, int]:
        return view_root(v, self.parent, self.views)

    def ref(self, v: str) -> tuple[str, int]:
        r, off = self.root(v)
        if r in self.outputs:
            return ("out", self.outputs[r])
        if r in self.inputs:
            return ("in", self.inputs[r])
        if r in self.param_offsets:
            return ("param", self.param_offsets[r])
        return ("arena", self.offsets[r] + off)


def plan_model(graph_inputs: list[str], graph_outputs: list[str], consts: dict,
               steps: list[Step], parent: dict[str, str], views: dict[str, tuple[str, int]],
               nbytes, param_align: int = ALIGN) -> MemoryPlan:
    """One plan for a kernel sequence: the constants it reads packed into params, every other
    non-input, non-output value (by storage root) and every scratch buffer placed in one arena
    by lifetime. `consts` are the graph's constants as stored (e.g. already cast to half);
    `nbytes(v)` is a value's storage size; each constant starts at a multiple of
    `param_align` bytes."""
    inputs = {v: k for k, v in enumerate(graph_inputs)}
    outputs = {v: k for k, v in enumerate(graph_outputs)}

    def rootof(v: str) -> str:
        return view_root(v, parent, views)[0]

    used: list[str] = []
    for st in steps:
        for i in st.inputs:
            r = rootof(i)
            if r in consts and r not in used:
                used.append(r)
    params, param_off = pack_params(consts, used, param_align)
    sizes: dict[str, int] = {}
    life: dict[str, list[int]] = {}
    for s, st in enumerate(steps):
        for o in st.outputs:
            r = rootof(o)  # a concat input lives in the concat's buffer from its first slice
            if r not in outputs:
                sizes[r] = nbytes(r)
                life.setdefault(r, [s, s])[1] = s
        for i in st.inputs:
            r = rootof(i)
            if r in life:
                life[r][1] = max(life[r][1], s)
        for nm, size in st.scratch.items():
            sizes[nm] = size
            life[nm] = [s, s]
    lifetimes = {k: (v[0], v[1]) for k, v in life.items()}
    offsets, arena_size = plan_memory(sizes, lifetimes)
    return MemoryPlan(inputs, outputs, param_off, params, offsets, sizes, lifetimes, arena_size,
                      parent, views, used)


def view_roots(fused) -> tuple[dict[str, str], Callable[[str], str]]:
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


def pack_params(consts: dict[str, np.ndarray], used: list[str],
                param_align: int = ALIGN) -> tuple[bytes, dict[str, int]]:
    chunks, offsets, off = [], {}, 0
    for name in used:
        arr = np.ascontiguousarray(consts[name])
        if arr.dtype == np.bool_:
            arr = arr.astype(np.uint8)
        offsets[name] = off
        data = arr.tobytes()
        pad = align(len(data), param_align) - len(data)
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

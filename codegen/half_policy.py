"""The fp16 arithmetic policy both emitters follow (OpenCL C: codegen/opencl_half.py; LLVM on
CPUs with native half arithmetic, ARMv8.2-A +fullfp16: codegen/llvm_half.py): which float
values compute in half.

Policy (precision "fp16"): every float tensor is half in memory. A value loaded from half
storage, and every value computed only from such values and constants, is half (a scalar or
a vector of halves): products, sums, activations. These stay float32:
- a reduction's accumulator when one accumulator takes more than HALF_ACC_MAX terms (the
  running sum is float). Half rounds each add with relative error at most 2^-11, so an
  n-term half sum is within n * 2^-11 of sum |terms|, typically sqrt(n) * 2^-11: 64 terms
  (DS-CNN's pointwise convs) bound it by 3.1%, typically 0.4% (3x3 depthwise convs and pools,
  9 terms: 0.44% at most), while a 576-term conv in half could be off by 28% and is summed
  in float. 64, not 16: on cortex-a76 DS-CNN fp16 then executes 0.67x fp32's instructions,
  with 16 1.71x (its 64-channel pointwise convs widening every 8-lane half vector);
- anything computed from an integer (the int8 kernels' requantization) and whatever mixes a
  float32 value in: the half side is widened, never the other way.
Every result is rounded to half when it is stored.
"""

from __future__ import annotations

import math

from tilecc.expr import Cast, Const, Expr, Load, Select, children, free_vars
from tilecc.loopir import Allocate, Buffer, For, IfThenElse, Seq, Stmt, Store

HALF_ACC_MAX = 64
HALF = "h"
FLOAT = "f"


def updates_per_element(body: Stmt, buf: Buffer) -> int:
    """How many terms one element of accumulator `buf` sums: the extents of the loops around
    its update (a store that reads it) that do not pick the element."""
    def walk(s: Stmt, loops: list[For]) -> int:
        if isinstance(s, For):
            return walk(s.body, loops + [s])
        if isinstance(s, Seq):
            return max([walk(x, loops) for x in s.stmts], default=0)
        if isinstance(s, IfThenElse):
            return max(walk(s.then, loops), walk(s.other, loops) if s.other else 0)
        if isinstance(s, Allocate):
            return walk(s.body, loops)
        if isinstance(s, Store) and s.buffer is buf and _reads(s.value, buf):
            used = free_vars(s.index)
            return math.prod(f.extent for f in loops if f.var not in used)
        return 0
    return walk(body, [])


def _reads(e: Expr, buf: Buffer) -> bool:
    stack = [e]
    while stack:
        x = stack.pop()
        if isinstance(x, Load) and x.buffer is buf:
            return True
        stack.extend(children(x))
    return False


class FloatKinds:
    """The arithmetic of each float expression: HALF, FLOAT, or None for constants and
    non-float values (which take their context's type)."""

    def __init__(self, half_buffer):
        self.half_buffer = half_buffer  # Buffer -> bool: is it half storage / a half acc
        self.memo: dict[int, str | None] = {}

    def __call__(self, e: Expr) -> str | None:
        key = id(e)
        if key not in self.memo:
            self.memo[key] = self._kind(e)
        return self.memo[key]

    def _kind(self, e: Expr) -> str | None:
        if not e.dtype.startswith("float") or isinstance(e, Const):
            return None
        if isinstance(e, Load):
            return HALF if self.half_buffer(e.buffer) else FLOAT
        if isinstance(e, Cast) and not e.x.dtype.startswith("float"):
            return FLOAT
        kids = children(e)[1:] if isinstance(e, Select) else children(e)
        kinds = {self(k) for k in kids}
        return FLOAT if FLOAT in kinds else (HALF if HALF in kinds else None)


def half_accumulator(body: Stmt, buf: Buffer) -> bool:
    """Whether the local float accumulator `buf`, allocated around `body`, may sum in half."""
    return updates_per_element(body, buf) <= HALF_ACC_MAX


def half_locals(body: Stmt, half_storage) -> set[Buffer]:
    """The kernel-private float32 buffers of `body` that hold half values: each sums at most
    HALF_ACC_MAX terms per element and every value stored into it is half by FloatKinds (a
    buffer fed from an integer or a float32 value stays float32, and so, in turn, does a
    buffer fed from that one). `half_storage(buf)`: is a kernel argument half in memory."""
    allocs: list[Allocate] = []

    def walk(s: Stmt) -> None:
        if isinstance(s, For):
            walk(s.body)
        elif isinstance(s, Seq):
            for x in s.stmts:
                walk(x)
        elif isinstance(s, IfThenElse):
            walk(s.then)
            if s.other is not None:
                walk(s.other)
        elif isinstance(s, Allocate):
            allocs.append(s)
            walk(s.body)

    walk(body)
    half = {a.buffer for a in allocs if a.buffer.dtype == "float32" and a.buffer.scope == "local"
            and half_accumulator(a.body, a.buffer)}
    while True:  # drop buffers fed a float32 value until none is left to drop
        kinds = FloatKinds(lambda b, cur=frozenset(half): half_storage(b) or b in cur)
        fed_float = {st.buffer for st in _stores(body)
                     if st.buffer in half and kinds(st.value) == FLOAT}
        if not fed_float:
            return half
        half -= fed_float


def _stores(s: Stmt):
    if isinstance(s, Store):
        yield s
    elif isinstance(s, (For, Allocate)):
        yield from _stores(s.body)
    elif isinstance(s, Seq):
        for x in s.stmts:
            yield from _stores(x)
    elif isinstance(s, IfThenElse):
        yield from _stores(s.then)
        if s.other is not None:
            yield from _stores(s.other)

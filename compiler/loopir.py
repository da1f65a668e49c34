"""Loop IR: the loop nests both codegens consume (LLVM for CPUs, OpenCL C for GPUs).

Statements: For, Seq, Store, IfThenElse, Allocate. Expressions are those of compiler/expr.py
with `Load(buffer, flat_index)`. Buffers are dense row-major.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .expr import Expr, Var


@dataclass(eq=False, frozen=True)
class Buffer:
    name: str
    shape: tuple[int, ...]
    dtype: str
    scope: str = "global"  # "global" (kernel argument) or "local" (kernel-private)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __repr__(self):
        return self.name

    __hash__ = object.__hash__


class Stmt:
    pass


@dataclass(eq=False)
class For(Stmt):
    var: Var
    extent: int
    kind: str  # serial | parallel | vectorize | unroll | blockIdx.{x,y,z} | threadIdx.{x,y,z}
    body: Stmt


@dataclass(eq=False)
class Seq(Stmt):
    stmts: list[Stmt]


@dataclass(eq=False)
class Store(Stmt):
    buffer: Buffer
    index: Expr
    value: Expr


@dataclass(eq=False)
class IfThenElse(Stmt):
    cond: Expr
    then: Stmt
    other: Stmt | None = None


@dataclass(eq=False)
class Allocate(Stmt):
    buffer: Buffer  # scope "local"
    body: Stmt


@dataclass(eq=False)
class PrimFunc:
    """A kernel: buffers in argument order and a body."""

    name: str
    params: list[Buffer]
    body: Stmt
    attrs: dict = field(default_factory=dict)


def seq(*stmts) -> Stmt:
    flat: list[Stmt] = []
    for s in stmts:
        if s is None:
            continue
        if isinstance(s, Seq):
            flat.extend(s.stmts)
        else:
            flat.append(s)
    return flat[0] if len(flat) == 1 else Seq(flat)


def flat_index(shape, indices) -> Expr:
    idx: Expr | int = 0
    for dim, i in zip(shape, indices):
        idx = idx * dim + i if not (isinstance(idx, int) and idx == 0) else i
    from .expr import wrap
    return wrap(idx)


def format_stmt(s: Stmt, indent: int = 0) -> str:
    pad = "  " * indent
    if isinstance(s, For):
        head = f"{pad}for {s.var.name} in 0..{s.extent}" + (
            f" [{s.kind}]" if s.kind != "serial" else "")
        return head + ":\n" + format_stmt(s.body, indent + 1)
    if isinstance(s, Seq):
        return "\n".join(format_stmt(x, indent) for x in s.stmts)
    if isinstance(s, Store):
        return f"{pad}{s.buffer.name}[{s.index!r}] = {s.value!r}"
    if isinstance(s, IfThenElse):
        out = f"{pad}if {s.cond!r}:\n" + format_stmt(s.then, indent + 1)
        if s.other is not None:
            out += f"\n{pad}else:\n" + format_stmt(s.other, indent + 1)
        return out
    if isinstance(s, Allocate):
        b = s.buffer
        return f"{pad}local {b.name}: {b.dtype}[{b.size}]\n" + format_stmt(s.body, indent)
    return f"{pad}{s!r}"


def format_func(f: PrimFunc) -> str:
    params = ", ".join(f"{b.name}: {b.dtype}{list(b.shape)}" for b in f.params)
    return f"kernel {f.name}({params}):\n" + format_stmt(f.body, 1)

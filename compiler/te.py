"""Tensor expressions: an op's semantics as `compute(shape, lambda *idx: expr)`.

One TE definition serves every target; schedules (compiler/schedule.py) decide the loops.
A compute body may hold at most one `Reduce`, possibly wrapped by an elementwise epilogue
(e.g. `relu(sum(...) + bias[c])`): that is how reductions and their epilogues fuse.
"""

from __future__ import annotations

from dataclasses import dataclass

from .expr import (  # noqa: F401  (re-exported: TE code builds from these)
    INDEX,
    Expr,
    Var,
    cast,
    children,
    const,
    fresh,
    rebuild,
    select,
    substitute,
    walk,
    wrap,
)


@dataclass(eq=False, frozen=True)
class IterVar:
    var: Var
    extent: int
    kind: str = "spatial"  # "spatial" | "reduce"

    def __repr__(self):
        return f"{self.var.name}<{self.extent}{', r' if self.kind == 'reduce' else ''}>"

    # Arithmetic on an IterVar means arithmetic on its variable.
    def _e(self):
        return self.var

    def __add__(self, o):
        return self.var + o

    def __radd__(self, o):
        return o + self.var

    def __sub__(self, o):
        return self.var - o

    def __rsub__(self, o):
        return o - self.var

    def __mul__(self, o):
        return self.var * o

    def __rmul__(self, o):
        return o * self.var

    def __floordiv__(self, o):
        return self.var // o

    def __mod__(self, o):
        return self.var % o

    __hash__ = object.__hash__


def _as_index(i) -> Expr:
    if isinstance(i, IterVar):
        return i.var
    return wrap(i)


class Tensor:
    """The output of a placeholder or compute op; `t[i, j]` reads an element."""

    def __init__(self, op, shape: tuple[int, ...], dtype: str, name: str):
        self.op = op
        self.shape = tuple(int(s) for s in shape)
        self.dtype = dtype
        self.name = name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, idx) -> Expr:
        if not isinstance(idx, tuple):
            idx = (idx,)
        if len(idx) != len(self.shape):
            raise IndexError(f"{self.name}: {len(idx)} indices for rank {len(self.shape)}")
        return TensorLoad(self, tuple(_as_index(i) for i in idx))

    def __call__(self, *idx) -> Expr:
        return self[tuple(idx)]

    def __repr__(self):
        return f"Tensor({self.name}, {self.shape}, {self.dtype})"


@dataclass(eq=False, frozen=True)
class TensorLoad(Expr):
    tensor: Tensor
    indices: tuple[Expr, ...]

    @property
    def dtype(self):
        return self.tensor.dtype

    def expr_children(self):
        return self.indices

    def expr_rebuild(self, kids):
        return TensorLoad(self.tensor, tuple(kids))

    def __repr__(self):
        return f"{self.tensor.name}[{', '.join(map(repr, self.indices))}]"


@dataclass(eq=False, frozen=True)
class Reduce(Expr):
    combiner: str  # sum max min prod
    source: Expr
    axes: tuple[IterVar, ...]

    @property
    def dtype(self):
        return self.source.dtype

    def expr_children(self):
        return (self.source,)

    def expr_rebuild(self, kids):
        return Reduce(self.combiner, kids[0], self.axes)

    def __repr__(self):
        return f"{self.combiner}({self.source!r}, axes={list(self.axes)})"


class PlaceholderOp:
    def __init__(self, name):
        self.name = name
        self.inputs: list[Tensor] = []


class ComputeOp:
    def __init__(self, name: str, axes: list[IterVar], body: Expr, tag: str = "",
                 attrs: dict | None = None):
        self.name = name
        self.axes = axes
        self.body = body
        self.tag = tag
        self.attrs = dict(attrs or {})  # facts schedules need (e.g. a packed weight layout)
        self.inputs = input_tensors(body)

    @property
    def reduce(self) -> Reduce | None:
        return find_reduce(self.body)


def placeholder(shape, dtype: str = "float32", name: str = "data") -> Tensor:
    op = PlaceholderOp(name)
    return Tensor(op, shape, dtype, name)


def compute(shape, fcompute, name: str = "compute", tag: str = "", dtype: str | None = None,
            attrs: dict | None = None) -> Tensor:
    shape = tuple(int(s) for s in shape)
    axes = [IterVar(Var(fresh(f"{_short(name)}_i{k}_")), s) for k, s in enumerate(shape)]
    body = wrap(fcompute(*axes))
    if dtype is not None:
        body = cast(dtype, body)
    op = ComputeOp(name, axes, body, tag, attrs)
    return Tensor(op, shape, body.dtype, name)


def _short(name: str) -> str:
    return "".join(c for c in name if c.isalnum())[:8] or "t"


def reduce_axis(extent: int, name: str = "r") -> IterVar:
    return IterVar(Var(fresh(name)), int(extent), "reduce")


def _reduce(combiner):
    def f(expr, axis) -> Reduce:
        axes = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
        return Reduce(combiner, wrap(expr), axes)
    f.__name__ = combiner
    return f


sum = _reduce("sum")
max = _reduce("max")
min = _reduce("min")
prod = _reduce("prod")


def reduce_init(combiner: str, dtype: str) -> Expr:
    import numpy as np

    if combiner == "sum":
        return const(0, dtype)
    if combiner == "prod":
        return const(1, dtype)
    if dtype.startswith("float"):
        return const(float("-inf") if combiner == "max" else float("inf"), dtype)
    info = np.iinfo(dtype) if dtype != "bool" else None
    if info is None:
        return const(combiner == "min", dtype)
    return const(info.min if combiner == "max" else info.max, dtype)


def input_tensors(e: Expr) -> list[Tensor]:
    out: list[Tensor] = []
    for x in walk(e):
        if isinstance(x, TensorLoad) and x.tensor not in out:
            out.append(x.tensor)
    return out


def find_reduce(e: Expr) -> Reduce | None:
    found = [x for x in walk(e) if isinstance(x, Reduce)]
    if len(found) > 1:
        raise ValueError("a compute body may hold only one reduction")
    return found[0] if found else None


def post_order(outputs: list[Tensor]) -> list[Tensor]:
    """All tensors the outputs depend on, producers first."""
    order: list[Tensor] = []
    seen: set[int] = set()

    def visit(t: Tensor):
        if id(t) in seen:
            return
        seen.add(id(t))
        for i in getattr(t.op, "inputs", []):
            visit(i)
        order.append(t)

    for t in outputs:
        visit(t)
    return order

"""Scalar expressions shared by tensor expressions (TE) and loop IR.

Nodes are small immutable objects compared by identity (`eq=False`) so Python operators can
build expressions; `simplify` folds constants so index arithmetic stays readable and cheap.
Index arithmetic is int64; `//` and `%` are floor division and modulo (Python semantics).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from tilecc.floatfmt import is_exotic

INDEX = "int64"
_counter = itertools.count()


def _is_float(dtype: str) -> bool:
    return dtype.startswith("float")


def _operator(op: str, reflected: bool = False):
    """A Python operator method building `binop(op, ...)`; `reflected` for `2 + e` (the
    Expr is the right operand)."""
    if reflected:
        def method(self, o):
            return binop(op, o, self)
    else:
        def method(self, o):
            return binop(op, self, o)
    return method


class Expr:
    dtype: str

    __add__ = _operator("add")
    __radd__ = _operator("add", reflected=True)
    __sub__ = _operator("sub")
    __rsub__ = _operator("sub", reflected=True)
    __mul__ = _operator("mul")
    __rmul__ = _operator("mul", reflected=True)
    __truediv__ = _operator("div")
    __rtruediv__ = _operator("div", reflected=True)
    __floordiv__ = _operator("floordiv")
    __mod__ = _operator("mod")

    def __neg__(self):
        return binop("sub", const(0, self.dtype), self)

    __hash__ = object.__hash__


@dataclass(eq=False, frozen=True)
class Var(Expr):
    name: str
    dtype: str = INDEX

    def __repr__(self):
        return self.name


@dataclass(eq=False, frozen=True)
class Const(Expr):
    value: float | int | bool
    dtype: str

    def __repr__(self):
        return repr(self.value)


@dataclass(eq=False, frozen=True)
class Bin(Expr):
    """Arithmetic: add sub mul div floordiv mod min max; logic: and or (bool)."""

    op: str
    a: Expr
    b: Expr

    @property
    def dtype(self):
        return self.a.dtype

    def __repr__(self):
        return f"{self.op}({self.a!r}, {self.b!r})"


@dataclass(eq=False, frozen=True)
class Cmp(Expr):
    op: str  # lt le gt ge eq ne
    a: Expr
    b: Expr
    dtype: str = "bool"

    def __repr__(self):
        return f"({self.a!r} {self.op} {self.b!r})"


@dataclass(eq=False, frozen=True)
class Not(Expr):
    a: Expr
    dtype: str = "bool"


@dataclass(eq=False, frozen=True)
class Select(Expr):
    """cond ? a : b. Both arms are evaluated, so loads inside them must be in bounds, with one
    exception: a Load that is itself the true arm is read only where cond holds (padding)."""

    cond: Expr
    a: Expr
    b: Expr

    @property
    def dtype(self):
        return self.a.dtype

    def __repr__(self):
        return f"select({self.cond!r}, {self.a!r}, {self.b!r})"


@dataclass(eq=False, frozen=True)
class Cast(Expr):
    """Type conversion. `saturate` / `round_mode` only matter for the storage-only float
    formats (tilecc/floatfmt.py): ONNX Cast's overflow rule for float8 and rounding of
    float8_e8m0fnu."""

    dtype: str
    x: Expr
    saturate: bool = True
    round_mode: str = "up"

    def __repr__(self):
        extra = ("" if self.saturate else ", nosat") + (
            "" if self.round_mode == "up" else f", {self.round_mode}")
        return f"{self.dtype}({self.x!r}{extra})"


@dataclass(eq=False, frozen=True)
class Call(Expr):
    """A math function: exp log sqrt tanh erf fabs floor ceil round pow sigmoid."""

    fn: str
    args: tuple[Expr, ...]
    dtype: str

    def __repr__(self):
        return f"{self.fn}({', '.join(map(repr, self.args))})"


@dataclass(eq=False, frozen=True)
class Load(Expr):
    """Loop-IR load: buffer element at a flat index."""

    buffer: object  # loopir.Buffer
    index: Expr

    @property
    def dtype(self):
        return self.buffer.dtype

    def __repr__(self):
        return f"{self.buffer.name}[{self.index!r}]"


def const(v, dtype: str | None = None) -> Const:
    if dtype is None:
        dtype = "bool" if isinstance(v, bool) else INDEX if isinstance(v, int) else "float32"
    if _is_float(dtype):
        v = float(v)
    elif dtype == "bool":
        v = bool(v)
    else:
        v = int(v)
    return Const(v, dtype)


def wrap(v, dtype: str | None = None) -> Expr:
    if isinstance(v, Expr):
        return v
    if hasattr(v, "_e"):  # a TE IterVar stands for its variable
        return v._e()
    return const(v, dtype)


def _coerce(v):
    return v._e() if hasattr(v, "_e") else v


def fresh(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


def _fold(op: str, a, b):
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "div":
        return a / b if isinstance(a, float) or isinstance(b, float) else None
    if op == "floordiv":
        return a // b if b != 0 else None
    if op == "mod":
        return a % b if b != 0 else None
    if op == "min":
        return min(a, b)
    if op == "max":
        return max(a, b)
    if op == "and":
        return a and b
    if op == "or":
        return a or b
    return None


def _is(e: Expr, v) -> bool:
    return isinstance(e, Const) and e.value == v


def binop(op: str, a, b) -> Expr:
    a, b = _coerce(a), _coerce(b)
    if not isinstance(a, Expr) and isinstance(b, Expr):
        a = const(a, b.dtype)
    if not isinstance(b, Expr) and isinstance(a, Expr):
        b = const(b, a.dtype)
    a, b = wrap(a), wrap(b)
    if isinstance(a, Const) and isinstance(b, Const):
        v = _fold(op, a.value, b.value)
        if v is not None:
            return const(v, a.dtype)
    if a.dtype == INDEX:
        # Identities that keep index arithmetic small; only exact for integers.
        if op == "add" and _is(a, 0):
            return b
        if op in ("add", "sub") and _is(b, 0):
            return a
        if op == "mul" and (_is(a, 0) or _is(b, 0)):
            return const(0)
        if op == "mul" and _is(a, 1):
            return b
        if op in ("mul", "floordiv") and _is(b, 1):
            return a
        if op == "mod" and _is(b, 1):
            return const(0)
        if op == "add" and isinstance(b, Const) and isinstance(a, Bin) and a.op == "add" \
                and isinstance(a.b, Const):
            return binop("add", a.a, a.b.value + b.value)
    return Bin(op, a, b)


def minimum(a, b) -> Expr:
    return binop("min", a, b)


def maximum(a, b) -> Expr:
    return binop("max", a, b)


def cmp(op: str, a, b) -> Expr:
    a, b = _coerce(a), _coerce(b)
    if not isinstance(a, Expr):
        a = const(a, b.dtype)
    if not isinstance(b, Expr):
        b = const(b, a.dtype)
    if isinstance(a, Const) and isinstance(b, Const):
        v = {"lt": a.value < b.value, "le": a.value <= b.value, "gt": a.value > b.value,
             "ge": a.value >= b.value, "eq": a.value == b.value, "ne": a.value != b.value}[op]
        return const(bool(v), "bool")
    return Cmp(op, a, b)


def all_of(*conds) -> Expr:
    out: Expr = const(True, "bool")
    for c in conds:
        if isinstance(c, Const):
            if not c.value:
                return c
            continue
        out = c if _is(out, True) else Bin("and", out, c)
    return out


def select(cond, a, b) -> Expr:
    a = wrap(a)
    b = wrap(b, a.dtype)
    if isinstance(cond, Const):
        return a if cond.value else b
    return Select(cond, a, b)


def cast(dtype: str, x, saturate: bool = True, round_mode: str = "up") -> Expr:
    x = wrap(x)
    if x.dtype == dtype:
        return x
    if isinstance(x, Const) and not is_exotic(dtype):
        return const(x.value, dtype)
    # A constant converted to a storage-only float format stays a Cast: its bits come from
    # the conversion codegen emits (LLVM folds it), not from a Python value.
    return Cast(dtype, x, saturate, round_mode)


def call(fn: str, *args, dtype: str | None = None) -> Expr:
    args = tuple(wrap(a) for a in args)
    return Call(fn, args, dtype or args[0].dtype)


def children(e: Expr) -> tuple:
    if isinstance(e, (Bin, Cmp)):
        return (e.a, e.b)
    if isinstance(e, Select):
        return (e.cond, e.a, e.b)
    if isinstance(e, (Cast,)):
        return (e.x,)
    if isinstance(e, Not):
        return (e.a,)
    if isinstance(e, Call):
        return e.args
    if isinstance(e, Load):
        return (e.index,)
    return getattr(e, "expr_children", lambda: ())()


def rebuild(e: Expr, kids: tuple) -> Expr:
    """Same node with new children (re-simplified)."""
    if isinstance(e, Bin):
        if e.op in ("and", "or"):
            return Bin(e.op, *kids)
        return binop(e.op, *kids)
    if isinstance(e, Cmp):
        return cmp(e.op, *kids)
    if isinstance(e, Select):
        return select(*kids)
    if isinstance(e, Cast):
        return cast(e.dtype, kids[0], e.saturate, e.round_mode)
    if isinstance(e, Not):
        return Not(kids[0])
    if isinstance(e, Call):
        return Call(e.fn, tuple(kids), e.dtype)
    if isinstance(e, Load):
        return Load(e.buffer, kids[0])
    return e.expr_rebuild(kids)


def rewrite(e: Expr, post=None, pre=None) -> Expr:
    """Bottom-up rebuild of `e`, shared nodes once: `pre(x)` may return a replacement that is
    taken as is (its children are not visited); otherwise children are rewritten and
    `post(node)` may replace the rebuilt node. Unchanged subtrees keep their identity."""
    memo: dict[int, Expr] = {}

    def go(x: Expr) -> Expr:
        r = memo.get(id(x))
        if r is not None:
            return r
        r = pre(x) if pre is not None else None
        if r is None:
            kids = children(x)
            new = tuple(go(k) for k in kids)
            r = x if all(a is b for a, b in zip(kids, new)) else rebuild(x, new)
            if post is not None:
                r = post(r)
        memo[id(x)] = r  # x stays alive inside e for the whole walk, so its id is not reused
        return r

    return go(e)


def substitute(e: Expr, mapping: dict) -> Expr:
    """Replace Vars (keys are Var objects) by expressions."""
    return rewrite(e, pre=lambda x: mapping.get(x, x) if isinstance(x, Var) else None)


def walk(e: Expr) -> Iterator[Expr]:
    """Every node of `e` once (shared subtrees are not revisited), parents before children."""
    stack = [e]
    seen = set()
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        yield x
        stack.extend(children(x))


def free_vars(e: Expr, out: set | None = None) -> set:
    out = set() if out is None else out
    out.update(x for x in walk(e) if isinstance(x, Var))
    return out


def linear_coeff(e: Expr, v: Var) -> int | None:
    """Coefficient of `v` if `e` is affine in `v` with a constant coefficient, else None."""
    if isinstance(e, Var):
        return 1 if e is v else 0
    if isinstance(e, Const):
        return 0
    if v not in free_vars(e):
        return 0
    if isinstance(e, Bin):
        if e.op in ("add", "sub"):
            ca, cb = linear_coeff(e.a, v), linear_coeff(e.b, v)
            if ca is None or cb is None:
                return None
            return ca + cb if e.op == "add" else ca - cb
        if e.op == "mul":
            if isinstance(e.b, Const):
                c = linear_coeff(e.a, v)
                return None if c is None else c * int(e.b.value)
            if isinstance(e.a, Const):
                c = linear_coeff(e.b, v)
                return None if c is None else c * int(e.a.value)
    return None

"""Guard unswitching: padded reads become plain loads away from the borders.

A padded input is read as `select(in_bounds, x[i], 0)`, which the CPU codegen emits as a
masked vector load per tap (AVX2 `vmaskmovps`: half the throughput of a plain load, plus the
mask's own instructions), in every tile, although only tiles at the image's border can read
outside it. For a loop whose body reads through such guards, the conditions that hold for
every iteration of the body's own loops exactly when a test on the enclosing loop variables
holds are hoisted: `if test: body with those conditions true, else: body as it was`. Rows are
tested once per row, tiles of columns once per tile; the border keeps the guarded code.

Only conditions affine in the body's loop variables are hoisted (the padding guards are);
only the fast branch of a hoisted test is searched again, at most `MAX_HOISTS` deep, so a
kernel's code grows at most MAX_HOISTS + 1 times.
"""

from __future__ import annotations

from .arith import _lin, _range
from .expr import (
    INDEX,
    Bin,
    Cmp,
    Const,
    Expr,
    Load,
    Select,
    Var,
    binop,
    cmp,
    const,
    free_vars,
    rewrite,
)
from .loopir import Allocate, For, IfThenElse, Seq, Stmt, Store
from .te import walk

MAX_HOISTS = 2
_HOIST_AT = ("serial", "parallel")


def unswitch_guards(body: Stmt) -> Stmt:
    return _visit(body, {}, frozenset(), MAX_HOISTS)


def _visit(s: Stmt, ranges: dict, done: frozenset, budget: int) -> Stmt:
    if isinstance(s, For):
        inner = {**ranges, s.var: (0, s.extent - 1)}
        if s.kind in _HOIST_AT and budget > 0:
            hoisted = _hoist(s.body, inner, done)
            if hoisted is not None:
                body, keys = hoisted
                return For(s.var, s.extent, s.kind,
                           _visit_fast(body, inner, done | keys, budget - 1))
        return For(s.var, s.extent, s.kind, _visit(s.body, inner, done, budget))
    if isinstance(s, Seq):
        return Seq([_visit(x, ranges, done, budget) for x in s.stmts])
    if isinstance(s, Allocate):
        return Allocate(s.buffer, _visit(s.body, ranges, done, budget))
    if isinstance(s, IfThenElse):
        return IfThenElse(s.cond, _visit(s.then, ranges, done, budget),
                          None if s.other is None else _visit(s.other, ranges, done, budget))
    return s


def _visit_fast(s: Stmt, ranges: dict, done: frozenset, budget: int) -> Stmt:
    """A hoisted body: only its fast branch is searched further. The border branch stays as
    it was: splitting it again would add a copy of the body for a few rows of tiles (with 3
    copies at most MobileNetV2 compiles in 7.7 s, 6.3 s without unswitching)."""
    if isinstance(s, Allocate):
        return Allocate(s.buffer, _visit_fast(s.body, ranges, done, budget))
    if isinstance(s, IfThenElse) and s.other is not None:
        return IfThenElse(s.cond, _visit(s.then, ranges, done, budget), s.other)
    return _visit(s, ranges, done, budget)


def _hoist(body: Stmt, outer: dict, done: frozenset):
    """(`if test: fast else body`, the conditions decided) or None when nothing is hoistable.
    The test goes inside the body's local allocations (it reads only enclosing loop vars)."""
    if isinstance(body, Allocate):
        r = _hoist(body.body, outer, done)
        return None if r is None else (Allocate(body.buffer, r[0]), r[1])
    atoms = {k: a for k, a in _guard_atoms(body).items() if k not in done}
    if not atoms:
        return None
    inner = _loop_ranges(body)
    tests, decided, always = [], set(), set()
    for key, atom in atoms.items():
        bound = _lower_bound(atom, inner, outer)
        if bound is None:
            continue
        lo_expr, k = bound
        r = _range(lo_expr, outer)
        if r is not None and r[0] >= k:
            always.add(key)
        elif r is None or r[1] >= k:
            tests.append(cmp("ge", lo_expr, k))
            decided.add(key)
    if not tests and not always:
        return None
    fast = _assume_true(body, decided | always)
    if not tests:
        return fast, frozenset(always)
    cond = tests[0]
    for t in tests[1:]:
        cond = Bin("and", cond, t)
    return IfThenElse(cond, fast, _assume_true(body, always)), frozenset(decided | always)


def _guard_atoms(s: Stmt) -> dict[tuple, Cmp]:
    """The comparisons that guard loads (`select(c1 and c2 ..., load, other)`) and statements
    (`if c1 and c2 ...:`, the tail of a split that does not divide), by text."""
    out: dict[str, Cmp] = {}
    conds = [x.cond for x in _stmts(s) if isinstance(x, IfThenElse)]
    for e in _exprs(s):
        conds.extend(x.cond for x in walk(e) if isinstance(x, Select) and isinstance(x.a, Load))
    for cond in conds:
        for c in _conjuncts(cond):
            if isinstance(c, Cmp):
                out.setdefault(_key(c), c)
    return out


def _key(c: Cmp) -> tuple:
    """Same text over the same variables (two loops' variables may share a name)."""
    return repr(c), frozenset(map(id, free_vars(c)))


def _conjuncts(c: Expr):
    if isinstance(c, Bin) and c.op == "and":
        yield from _conjuncts(c.a)
        yield from _conjuncts(c.b)
    else:
        yield c


def _lower_bound(atom: Cmp, inner: dict, outer: dict):
    """(e, k) such that `atom` holds for every value of the inner loop variables iff e >= k,
    where e reads outer variables only; None when the atom is not affine in the inner ones."""
    if atom.op in ("ge", "gt"):
        d, k = binop("sub", atom.a, atom.b), 1 if atom.op == "gt" else 0
    elif atom.op in ("le", "lt"):
        d, k = binop("sub", atom.b, atom.a), 1 if atom.op == "lt" else 0
    else:
        return None
    if atom.a.dtype != INDEX or atom.b.dtype != INDEX:
        return None
    lin = _lin(d)
    if lin is None:
        return None
    terms, c = lin
    lo: Expr = const(c)
    for t, coeff in terms.items():
        if isinstance(t, Var) and t in inner:
            a, b = inner[t]
            lo = binop("add", lo, min(coeff * a, coeff * b))
            continue
        fv = free_vars(t)
        if fv & inner.keys() or not fv <= outer.keys():
            return None
        lo = binop("add", lo, t if coeff == 1 else binop("mul", t, coeff))
    return lo, k


def _stmts(s: Stmt):
    stack = [s]
    while stack:
        x = stack.pop()
        yield x
        if isinstance(x, For | Allocate):
            stack.append(x.body)
        elif isinstance(x, Seq):
            stack.extend(x.stmts)
        elif isinstance(x, IfThenElse):
            stack.extend([x.then] + ([x.other] if x.other is not None else []))


def _loop_ranges(s: Stmt) -> dict:
    return {x.var: (0, x.extent - 1) for x in _stmts(s) if isinstance(x, For)}


def _exprs(s: Stmt):
    for x in _stmts(s):
        if isinstance(x, Store):
            yield x.index
            yield x.value
        elif isinstance(x, IfThenElse):
            yield x.cond


def _assume_true(s: Stmt, keys: set) -> Stmt:
    """`s` with the guard comparisons named by `keys` replaced by true (and folded away)."""
    if not keys:
        return s

    def post(r: Expr) -> Expr:
        if isinstance(r, Cmp) and _key(r) in keys:
            return const(True, "bool")
        if isinstance(r, Bin) and r.op == "and":
            if isinstance(r.a, Const):
                return r.b if r.a.value else r.a
            if isinstance(r.b, Const):
                return r.a if r.b.value else r.b
        return r

    def ex(e: Expr) -> Expr:
        return rewrite(e, post)

    def go(x: Stmt) -> Stmt:
        if isinstance(x, Store):
            return Store(x.buffer, ex(x.index), ex(x.value))
        if isinstance(x, For):
            return For(x.var, x.extent, x.kind, go(x.body))
        if isinstance(x, Seq):
            return Seq([go(y) for y in x.stmts])
        if isinstance(x, Allocate):
            return Allocate(x.buffer, go(x.body))
        if isinstance(x, IfThenElse):
            cond = ex(x.cond)
            if isinstance(cond, Const):
                return go(x.then) if cond.value else (Seq([]) if x.other is None else go(x.other))
            return IfThenElse(cond, go(x.then), None if x.other is None else go(x.other))
        return x

    return go(s)

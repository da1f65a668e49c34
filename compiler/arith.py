"""Index simplification with loop-variable ranges.

Splits and fusions leave `(a*16 + v) // 16` and `(a*16 + v) % 16` in indices. Knowing that
`0 <= v < 16` they are just `a` and `v`; after this rewrite the vector codegen sees indices
that are affine in the vector lane (contiguous loads instead of gathers), and scalar code loses
its divisions.
"""

from __future__ import annotations

from .expr import INDEX, Bin, Const, Expr, Var, binop, const, rewrite

Range = tuple[int, int]  # inclusive bounds


def _lin(e: Expr) -> tuple[dict, int] | None:
    """Linear form {atom: coeff}, const of an index expression (atoms are non-linear parts)."""
    if isinstance(e, Const):
        return {}, int(e.value)
    if isinstance(e, Bin) and e.op in ("add", "sub"):
        a, b = _lin(e.a), _lin(e.b)
        if a is None or b is None:
            return None
        sign = 1 if e.op == "add" else -1
        terms = dict(a[0])
        for t, c in b[0].items():
            terms[t] = terms.get(t, 0) + sign * c
        return _recombine({t: c for t, c in terms.items() if c}), a[1] + sign * b[1]
    if isinstance(e, Bin) and e.op == "mul":
        for x, y in ((e.a, e.b), (e.b, e.a)):
            if isinstance(y, Const):
                inner = _lin(x)
                if inner is None:
                    return None
                k = int(y.value)
                return {t: c * k for t, c in inner[0].items() if c * k}, inner[1] * k
    return {e: 1}, 0


def _recombine(terms: dict) -> dict:
    """(x // c) * c*k + (x % c) * k  ->  x * k  (a fused loop split back into its parts)."""
    # Structural match (repr): the two halves were built by separate substitutions.
    divs = {(repr(t.a), int(t.b.value)): t for t in terms
            if isinstance(t, Bin) and t.op == "floordiv" and isinstance(t.b, Const)}
    for m in [t for t in terms if isinstance(t, Bin) and t.op == "mod"
              and isinstance(t.b, Const)]:
        c = int(m.b.value)
        d = divs.get((repr(m.a), c))
        k = terms.get(m, 0)
        if d is None or k == 0 or terms.get(d, 0) != k * c:
            continue
        del terms[m], terms[d]
        terms[m.a] = terms.get(m.a, 0) + k
    return {t: c for t, c in terms.items() if c}


def _build(terms: dict, c: int) -> Expr:
    out: Expr = const(0)
    for t, k in terms.items():
        out = binop("add", out, t if k == 1 else binop("mul", t, k))
    return binop("add", out, c) if c else out


def _range(e: Expr, ranges: dict) -> Range | None:
    if isinstance(e, Const):
        return int(e.value), int(e.value)
    if isinstance(e, Var):
        return ranges.get(e)
    if isinstance(e, Bin):
        a, b = _range(e.a, ranges), _range(e.b, ranges)
        if a is None or b is None:
            return None
        if e.op == "add":
            return a[0] + b[0], a[1] + b[1]
        if e.op == "sub":
            return a[0] - b[1], a[1] - b[0]
        if e.op == "mul":
            p = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]]
            return min(p), max(p)
        if e.op == "floordiv" and b[0] == b[1] and b[0] > 0:
            return a[0] // b[0], a[1] // b[0]
        if e.op == "mod" and b[0] == b[1] and b[0] > 0:
            return (a[0], a[1]) if 0 <= a[0] and a[1] < b[0] else (0, b[0] - 1)
        if e.op == "min":
            return min(a[0], b[0]), min(a[1], b[1])
        if e.op == "max":
            return max(a[0], b[0]), max(a[1], b[1])
    return None


def _divmod(op: str, x: Expr, c: int, ranges: dict) -> Expr:
    lin = _lin(x)
    if lin is None:
        return binop(op, x, c)
    terms, k = lin
    pulled = {t: v // c for t, v in terms.items() if v % c == 0}
    rest = {t: v for t, v in terms.items() if v % c != 0}
    q, r = divmod(k, c)
    rest_e = _build(rest, r)
    rr = _range(rest_e, ranges)
    inside = rr is not None and 0 <= rr[0] and rr[1] < c
    if op == "floordiv":
        base = _build(pulled, q)
        return base if inside else binop("add", base, binop("floordiv", rest_e, c))
    return rest_e if inside else binop("mod", rest_e, c)


def _has_divmod(e: Expr) -> bool:
    return any(isinstance(x, Bin) and x.op in ("floordiv", "mod") for x in (e.a, e.b)) or \
        any(isinstance(x, Bin) and x.op in ("add", "mul") and _has_divmod(x) for x in (e.a, e.b))


def simplify_index(e: Expr, ranges: dict[Var, Range]) -> Expr:
    """Rewrite integer floordiv/mod by positive constants using the ranges of loop variables."""

    def post(r: Expr) -> Expr:
        if isinstance(r, Bin) and r.dtype == INDEX and r.op in ("floordiv", "mod") \
                and isinstance(r.b, Const) and r.b.value > 0:
            return _divmod(r.op, r.a, int(r.b.value), ranges)
        if isinstance(r, Bin) and r.dtype == INDEX and r.op == "add" and _has_divmod(r):
            lin = _lin(r)
            if lin is not None:
                return _build(*lin)
        return r

    return rewrite(e, post)

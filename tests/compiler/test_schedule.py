"""Schedule primitives, lowering and LLVM codegen checked against numpy on small kernels."""

from __future__ import annotations

import numpy as np
import pytest

from tilecc import te
from tilecc.codegen.function import aligned_empty, build_function
from tilecc.expr import call, maximum, select
from tilecc.schedule import ScheduleError, create_schedule
from tilecc.targets import get_target
from tilecc.topi.common import clamp, in_range

TARGET = get_target("host")


def arr(rng, shape, dtype="float32"):
    out = aligned_empty(shape, dtype)
    out[...] = rng.standard_normal(shape).astype(dtype)
    return out


def run(sch, args, inputs, rng=None):
    fn = build_function(sch, args, TARGET, "k")
    outs = [aligned_empty(t.shape, t.dtype) for t in args[len(inputs):]]
    fn(*inputs, *outs)
    return outs


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_elementwise_split_vectorize_parallel_non_divisible(rng):
    a = te.placeholder((3, 37), name="a")
    b = te.compute((3, 37), lambda i, j: maximum(a[i, j] * 2.0 + 1.0, 0.0), name="b")
    sch = create_schedule(b)
    st = sch[b]
    i, j = st.axes
    jo, ji = st.split(j, 16)
    st.vectorize(ji)
    st.parallel(st.fuse(i, jo))
    x = arr(rng, (3, 37))
    (y,) = run(sch, [a, b], [x])
    np.testing.assert_allclose(y, np.maximum(x * 2 + 1, 0), rtol=1e-6)


def test_reduction_register_tile_matches_matmul(rng):
    M, N, K = 13, 40, 29
    a = te.placeholder((M, K), name="a")
    b = te.placeholder((K, N), name="b")
    k = te.reduce_axis(K, "k")
    c = te.compute((M, N), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="c")
    sch = create_schedule(c)
    st = sch[c]
    i, j = st.axes
    io, ii = st.split(i, 4)
    jo, ji = st.split(j, 16)
    st.reorder(io, jo, k, ii, ji)
    st.unroll(ii)
    st.vectorize(ji)
    st.parallel(io)
    x, w = arr(rng, (M, K)), arr(rng, (K, N))
    (y,) = run(sch, [a, b, c], [x, w])
    np.testing.assert_allclose(y, x @ w, rtol=1e-4, atol=1e-5)


def test_epilogue_fusion_inlines_reduction_into_consumer(rng):
    a = te.placeholder((8, 16), name="a")
    bias = te.placeholder((8,), name="bias")
    k = te.reduce_axis(16, "k")
    s = te.compute((8,), lambda i: te.sum(a[i, k], axis=k), name="s")
    out = te.compute((8,), lambda i: maximum(s[i] + bias[i], 0.0), name="relu")
    sch = create_schedule(out)
    assert sch[s].inline and sch[out].reduce is not None
    x, bb = arr(rng, (8, 16)), arr(rng, (8,))
    (y,) = run(sch, [a, bias, out], [x, bb])
    np.testing.assert_allclose(y, np.maximum(x.sum(1) + bb, 0), rtol=1e-5, atol=1e-6)


def test_broadcast_read_of_reduction_stays_materialised(rng):
    a = te.placeholder((4, 10), name="a")
    r = te.reduce_axis(10, "r")
    mx = te.compute((4,), lambda i: te.max(a[i, r], axis=r), name="mx")
    out = te.compute((4, 10), lambda i, j: call("exp", a[i, j] - mx[i]), name="e")
    sch = create_schedule(out)
    assert not sch[mx].inline
    x = arr(rng, (4, 10))
    (y,) = run(sch, [a, out], [x])
    np.testing.assert_allclose(y, np.exp(x - x.max(1, keepdims=True)), rtol=1e-5)


def test_gather_and_strided_vector_loads(rng):
    a = te.placeholder((64,), name="a")
    b = te.compute((16,), lambda i: a[i * 2] + a[i * 3] + a[(i * 5) % 64], name="b")
    sch = create_schedule(b)
    (i,) = sch[b].axes
    sch[b].vectorize(i)
    x = arr(rng, (64,))
    (y,) = run(sch, [a, b], [x])
    idx = np.arange(16)
    np.testing.assert_allclose(y, x[idx * 2] + x[idx * 3] + x[(idx * 5) % 64], rtol=1e-6)


def test_select_with_clamped_load_and_unroll(rng):
    a = te.placeholder((10,), name="a")
    b = te.compute((14,), lambda i: select(in_range(i - 2, 0, 10), a[clamp(i - 2, 0, 9)], 0.0),
                   name="b")
    sch = create_schedule(b)
    (i,) = sch[b].axes
    sch[b].unroll(i)
    x = arr(rng, (10,))
    (y,) = run(sch, [a, b], [x])
    np.testing.assert_array_equal(y, np.concatenate([[0, 0], x, [0, 0]]).astype(np.float32))


def test_integer_floor_division_semantics(rng):
    a = te.placeholder((12,), "int64", name="a")
    b = te.compute((12,), lambda i: a[i] // 3 + a[i] % 4 + a[i] // 4, name="b")
    sch = create_schedule(b)
    x = aligned_empty((12,), "int64")
    x[...] = np.arange(-6, 6)
    (y,) = run(sch, [a, b], [x])
    np.testing.assert_array_equal(y, x // 3 + x % 4 + x // 4)


def test_schedule_errors_are_clear():
    a = te.placeholder((4, 4), name="a")
    b = te.compute((4, 4), lambda i, j: a[i, j], name="b")
    sch = create_schedule(b)
    i, j = sch[b].axes
    _, ji = sch[b].split(j, 2)
    with pytest.raises(ScheduleError, match="adjacent"):
        sch[b].fuse(i, ji)
    with pytest.raises(ScheduleError, match="not a leaf"):
        sch[b].split(j, 2)


def test_index_simplifier_removes_split_and_fuse_arithmetic():
    from tilecc.arith import simplify_index
    from tilecc.expr import Var

    a, v, f = Var("a"), Var("v"), Var("f")
    ranges = {a: (0, 9), v: (0, 15), f: (0, 99)}
    e = simplify_index((a * 16 + v) // 16 * 7 + (a * 16 + v) % 16, ranges)
    assert repr(e) == repr(a * 7 + v)
    g = simplify_index((f // 10) * 10 + f % 10 + 3, ranges)
    assert repr(g) == repr(f + 3)
    # Not provably in range: the division stays.
    h = simplify_index((a * 16 + v + 1) // 16, ranges)
    assert "floordiv" in repr(h)


def test_injective_broadcast_keeps_row_loop_serial(rng):
    """x * s[c] over NCHWc rows: the threads split (n, c, h) and each walks its row of w in a
    serial loop, so addressing s is a base per row, not a division per vector."""
    import dataclasses

    from tilecc.expr import Bin, free_vars
    from tilecc.loopir import For, Store
    from tilecc.schedule import lower
    from tilecc.te import walk
    from tilecc.topi.generic import schedule_injective
    from tilecc.unswitch import _stmts

    target = dataclasses.replace(get_target("x86-64-avx2"), cores=4)
    x = te.placeholder((1, 6, 20, 20, 8), name="x")
    s = te.placeholder((1, 6, 1, 1, 8), name="s")
    out = te.compute(x.shape, lambda n, c, h, w, ci: x[n, c, h, w, ci] * s[n, c, 0, 0, ci],
                     name="y")
    sch = create_schedule(out)
    schedule_injective(sch[out], target)
    body = lower(sch, [x, s, out], "k").body
    loops = [st for st in _stmts(body) if isinstance(st, For)]
    par = [lp for lp in loops if lp.kind == "parallel"]
    assert [lp.extent for lp in par] == [6 * 20]
    inner = [lp for lp in _stmts(par[0].body)
             if isinstance(lp, For) and lp.kind == "serial" and lp.extent > 1]
    assert [lp.extent for lp in inner] == [20]
    stores = [st for st in _stmts(inner[0].body) if isinstance(st, Store)]
    assert stores
    # Divisions left are of the parallel index only (once per row, hoisted by LLVM).
    divs = [e for st in stores for root in (st.index, st.value) for e in walk(root)
            if isinstance(e, Bin) and e.op in ("div", "floordiv", "mod")]
    assert all(inner[0].var not in free_vars(e) for e in divs)
    xv, sv = arr(rng, x.shape), arr(rng, s.shape)
    (y,) = run(sch, [x, s, out], [xv, sv])
    np.testing.assert_allclose(y, xv * sv, rtol=1e-6)

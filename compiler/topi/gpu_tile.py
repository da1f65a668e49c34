"""Local-memory tiling for GEMM-shaped GPU stages (Gemm, MatMul, pointwise Conv).

A stage qualifies when its reduction sums `a * b` over one axis k, `a` reads the output axes
M and k, `b` the output axes N and k, and every other axis has extent 1. Each work-group then
computes a TM x TN output tile: per step of TK along k its work-items copy an A tile
(TM x TK) and a B tile (TK x TN) from global into `__local` memory together (consecutive
work-items read consecutive addresses), meet at a barrier, and each accumulates an RM x RN
register tile from local memory; a second barrier guards the tiles' reuse. A global element is
read once per work-group instead of once per work-item.

The sizes follow the preset's device data (targets/opencl.py), per layer (`tile_plan`): the
largest tile whose work-group fits max_work_group_size, is a multiple of the subgroup size and
whose two tiles take at most half of local_mem_bytes (two groups per compute unit), and only
when M, N and K fill at least one tile (smaller layers keep the private-register schedule,
where a barrier would cost more than the reuse saves).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import te
from ..expr import Bin, Expr, Load, Var, all_of, binop, cmp, const, free_vars
from ..loopir import Allocate, Buffer, For, IfThenElse, Stmt, Store, flat_index, seq
from ..schedule import Stage, _replace_reduce, tensor_loads

RM = RN = 4  # register tile per work-item
TILES = ((64, 64), (32, 64), (64, 32), (32, 32), (16, 32))  # (TM, TN), preferred first
TKS = (16, 8)


@dataclass(eq=False)
class Barrier(Stmt):
    """barrier(CLK_LOCAL_MEM_FENCE): every work-item of the group reaches it."""


@dataclass(frozen=True, eq=False)
class TilePlan:
    a: Expr
    b: Expr
    m_axes: tuple
    n_axes: tuple
    k: te.IterVar
    tm: int
    tn: int
    tk: int

    @property
    def local(self) -> int:
        return (self.tm // RM) * (self.tn // RN)


def _operands(stage: Stage):
    red = stage.reduce
    if red is None or red.combiner != "sum" or stage.tensor.dtype != "float32":
        return None
    src = red.source
    big = [r for r in red.axes if r.extent > 1]
    if not (isinstance(src, Bin) and src.op == "mul") or len(big) != 1:
        return None
    k = big[0]
    va, vb = free_vars(src.a), free_vars(src.b)
    m = tuple(ax for ax in stage.axes if ax.var in va)
    n = tuple(ax for ax in stage.axes if ax.var in vb)
    if set(m) & set(n) or k.var not in va or k.var not in vb or not m or not n:
        return None
    if any(ax.extent != 1 for ax in stage.axes if ax not in m and ax not in n):
        return None
    return src.a, src.b, m, n, k


def tile_plan(stage: Stage, target) -> TilePlan | None:
    """The tiling of this layer on this device, or None to keep the register schedule."""
    ops = _operands(stage)
    if ops is None:
        return None
    a, b, m, n, k = ops
    M, N = math.prod(ax.extent for ax in m), math.prod(ax.extent for ax in n)
    budget = getattr(target, "local_mem_bytes", 0) // 2
    sub = getattr(target, "subgroup_size", 1)
    for tm, tn in TILES:
        local = (tm // RM) * (tn // RN)
        if tm > M or tn > N or local > getattr(target, "max_work_group_size", 0) \
                or local % min(sub, local):
            continue
        for tk in TKS:
            if tk <= k.extent and (tm + tn) * tk * 4 <= budget:
                return TilePlan(a, b, m, n, k, tm, tn, tk)
    return None


def _unflatten(flat: Expr, axes) -> dict:
    """Axis values from a flat index over `axes` (row-major)."""
    out, rest = {}, flat
    for ax in reversed(axes):
        out[ax.var] = binop("mod", rest, ax.extent) if ax is not axes[0] else rest
        rest = binop("floordiv", rest, ax.extent)
    return out


def lower_tiled(stage: Stage, buffers: dict, p: TilePlan) -> Stmt:
    """The stage's loop nest with local-memory tiles (see the module docstring)."""
    red, expr = stage.reduce, stage.body
    assert red is not None and expr is not None, "tile_plan takes reductions only"
    M, N = math.prod(ax.extent for ax in p.m_axes), math.prod(ax.extent for ax in p.n_axes)
    K, L = p.k.extent, p.local
    ngn = math.ceil(N / p.tn)
    g, t, k0, kk = Var("grp"), Var("lid"), Var("k0"), Var("kk")
    ri, rj, ld = Var("ri"), Var("rj"), Var("ld")
    gm, gn = binop("floordiv", g, ngn), binop("mod", g, ngn)
    tm_, tn_ = binop("floordiv", t, p.tn // RN), binop("mod", t, p.tn // RN)
    zeros = {ax.var: const(0) for ax in (*stage.axes, *red.axes)}
    As = Buffer("a_tile", (p.tm * p.tk,), "float32", "shared")
    Bs = Buffer("b_tile", (p.tk * p.tn,), "float32", "shared")
    acc = Buffer("acc_tile", (RM * RN,), "float32", "local")

    def fill(tile: Buffer, operand: Expr, rows: int, cols: int, row_is_k: bool) -> Stmt:
        """Work-items copy a rows x cols tile in turns of L consecutive elements."""
        idx = binop("add", binop("mul", ld, L), t)
        r, c = binop("floordiv", idx, cols), binop("mod", idx, cols)
        kg = binop("add", binop("mul", k0, p.tk), r if row_is_k else c)
        if row_is_k:
            xg, axes, ext, tile0 = binop("add", binop("mul", gn, p.tn), c), p.n_axes, N, p.tn
        else:
            xg, axes, ext, tile0 = binop("add", binop("mul", gm, p.tm), r), p.m_axes, M, p.tm
        vals = {**zeros, **_unflatten(xg, axes), p.k.var: kg}
        store: Stmt = Store(tile, idx, tensor_loads(operand, vals, buffers))
        conds = ([cmp("lt", xg, ext)] if ext % tile0 else []) + \
            ([cmp("lt", kg, K)] if K % p.tk else []) + \
            ([cmp("lt", idx, rows * cols)] if (rows * cols) % L else [])
        if conds:
            store = IfThenElse(all_of(*conds), store, Store(tile, idx, const(0.0)))
        return For(ld, math.ceil(rows * cols / L), "serial", store)

    a_idx = binop("add", binop("mul", binop("add", binop("mul", tm_, RM), ri), p.tk), kk)
    b_idx = binop("add", binop("add", binop("mul", kk, p.tn), binop("mul", tn_, RN)), rj)
    t_idx = binop("add", binop("mul", ri, RN), rj)
    update = Store(acc, t_idx, binop("add", Load(acc, t_idx),
                                     binop("mul", Load(As, a_idx), Load(Bs, b_idx))))
    compute = For(kk, p.tk, "serial", For(ri, RM, "unroll", For(rj, RN, "vectorize", update)))
    kloop = For(k0, math.ceil(K / p.tk), "serial",
                seq(fill(As, p.a, p.tm, p.tk, False), fill(Bs, p.b, p.tk, p.tn, True),
                    Barrier(), compute, Barrier()))
    init = For(ri, RM, "unroll", For(rj, RN, "vectorize", Store(acc, t_idx, const(0.0))))
    i = binop("add", binop("add", binop("mul", gm, p.tm), binop("mul", tm_, RM)), ri)
    j = binop("add", binop("add", binop("mul", gn, p.tn), binop("mul", tn_, RN)), rj)
    vals = {**zeros, **_unflatten(i, p.m_axes), **_unflatten(j, p.n_axes)}
    out = buffers[stage.tensor]
    value = tensor_loads(_replace_reduce(expr, red, acc, t_idx), vals, buffers)
    store: Stmt = Store(out, flat_index(out.shape, [vals[ax.var] for ax in stage.axes]), value)
    conds = ([cmp("lt", i, M)] if M % p.tm else []) + ([cmp("lt", j, N)] if N % p.tn else [])
    if conds:
        store = IfThenElse(all_of(*conds), store)
    epilogue = For(ri, RM, "unroll", For(rj, RN, "vectorize", store))
    body = Allocate(As, Allocate(Bs, Allocate(acc, seq(init, kloop, epilogue))))
    groups = math.ceil(M / p.tm) * ngn
    return For(g, groups, "blockIdx.x", For(t, L, "threadIdx.x", body))

"""Schedules over tensor expressions, and lowering to loop IR.

A `Schedule` has one `Stage` per compute. Injective stages that are not outputs are inlined
into their consumers; a reduction read by its single consumer at that consumer's own indices is
inlined too, which turns the consumer into `epilogue(reduce(...))`: the fused form of
conv + bias + activation. Schedule primitives rewrite a root stage's loop nest: split, fuse,
reorder, vectorize, unroll, parallel, compute_inline, compute_root.

Lowering a reduction keeps a local accumulator tile for the spatial loops placed inside the
first reduction loop; with those loops unrolled/vectorized, the tile lives in registers
(register blocking).
"""

from __future__ import annotations

import math

from . import te
from .arith import simplify_index
from .expr import (
    Const,
    Expr,
    Load,
    Var,
    all_of,
    binop,
    children,
    cmp,
    const,
    free_vars,
    fresh,
    maximum,
    minimum,
    rebuild,
    rewrite,
    select,
    substitute,
)
from .loopir import Allocate, Buffer, For, IfThenElse, PrimFunc, Seq, Store, flat_index, seq


class ScheduleError(Exception):
    pass


THREAD_TAGS = tuple(f"{k}.{d}" for k in ("blockIdx", "threadIdx") for d in "xyz")


class Stage:
    def __init__(self, tensor: te.Tensor):
        self.tensor = tensor
        self.op = tensor.op
        self.inline = False
        self.leaf: list[te.IterVar] = []
        self.relations: list[tuple] = []
        self.annot: dict[te.IterVar, str] = {}
        self.body: Expr | None = None  # resolved body (inlines substituted), set by Schedule
        self.reduce: te.Reduce | None = None
        self.anchor_op = tensor.op  # the op whose template schedules this stage (after fusion)
        # Loop order and annotations of the epilogue nest of a register tile (default: the
        # tile's own), e.g. to store along a contiguous output axis.
        self.epilogue_order: list[te.IterVar] | None = None
        self.epilogue_annot: dict[te.IterVar, str] = {}

    @property
    def axes(self) -> list[te.IterVar]:
        return list(self.op.axes)

    @property
    def reduce_axes(self) -> list[te.IterVar]:
        return list(self.reduce.axes) if self.reduce is not None else []

    def _replace(self, old: list[te.IterVar], new: list[te.IterVar]):
        pos = self.leaf.index(old[0])
        for o in old:
            self.leaf.remove(o)
        self.leaf[pos:pos] = new

    def split(self, iv: te.IterVar, factor: int | None = None, nparts: int | None = None):
        if iv not in self.leaf:
            raise ScheduleError(f"{iv} is not a leaf loop of {self.op.name}")
        if factor is None:
            factor = math.ceil(iv.extent / nparts)
        factor = max(1, min(int(factor), iv.extent))
        outer = te.IterVar(Var(iv.var.name + ".o"), math.ceil(iv.extent / factor), iv.kind)
        inner = te.IterVar(Var(iv.var.name + ".i"), factor, iv.kind)
        self.relations.append(("split", iv, outer, inner, factor))
        self._replace([iv], [outer, inner])
        return outer, inner

    def fuse(self, a: te.IterVar, b: te.IterVar) -> te.IterVar:
        ia, ib = self.leaf.index(a), self.leaf.index(b)
        if ib != ia + 1 or a.kind != b.kind:
            raise ScheduleError("fuse needs two adjacent loops of the same kind")
        fused = te.IterVar(Var(f"{a.var.name}.{b.var.name}.f"), a.extent * b.extent, a.kind)
        self.relations.append(("fuse", a, b, fused))
        self._replace([a, b], [fused])
        return fused

    def reorder(self, *ivs: te.IterVar):
        pos = sorted(self.leaf.index(iv) for iv in ivs)
        for p, iv in zip(pos, ivs):
            self.leaf[p] = iv

    def vectorize(self, iv):
        self.annot[iv] = "vectorize"

    def unroll(self, iv):
        self.annot[iv] = "unroll"

    def parallel(self, iv):
        self.annot[iv] = "parallel"

    def bind(self, iv, tag: str):
        """Map a loop onto the GPU launch grid: tag "blockIdx.{x,y,z}" (work-group id) or
        "threadIdx.{x,y,z}" (id within the work-group). Only the OpenCL codegen gives these
        loops meaning; it requires them outermost and each tag once per stage. The CPU codegen
        runs a bound loop as a plain serial loop (same result, no GPU semantics)."""
        if tag not in THREAD_TAGS:
            raise ScheduleError(f"bind: unknown thread tag {tag!r}; use one of {THREAD_TAGS}")
        if iv not in self.leaf or iv.kind != "spatial":
            raise ScheduleError(f"bind: {iv} is not a spatial leaf loop of {self.op.name}")
        if tag in self.annot.values():
            raise ScheduleError(f"bind: {tag} is already bound in {self.op.name}")
        self.annot[iv] = tag

    def epilogue(self, *order: te.IterVar, **kinds: str):
        """Order the accumulator tile's store loops (a permutation of the tile's loops) and
        re-annotate them, e.g. `epilogue(oct, ocv, owi)` + vectorize owi to store contiguous
        output rows although the reduction vectorises another axis."""
        self.epilogue_order = list(order)

    def epilogue_kind(self, iv: te.IterVar, kind: str):
        self.epilogue_annot[iv] = kind

    def compute_inline(self):
        if self.op.reduce is not None:
            raise ScheduleError(f"{self.op.name}: a reduction inlines only into an epilogue")
        self.inline = True

    def compute_root(self):
        self.inline = False


class Schedule:
    def __init__(self, outputs: list[te.Tensor]):
        self.outputs = list(outputs)
        self.tensors = [t for t in te.post_order(outputs) if isinstance(t.op, te.ComputeOp)]
        self.stages = {t: Stage(t) for t in self.tensors}
        self.consumers: dict[te.Tensor, list[te.Tensor]] = {t: [] for t in self.tensors}
        for t in self.tensors:
            for i in t.op.inputs:
                if i in self.consumers:
                    self.consumers[i].append(t)
        for t in self.tensors:
            if t not in self.outputs and t.op.reduce is None:
                self.stages[t].inline = True
        for t in self.tensors:
            if t not in self.outputs and t.op.reduce is not None:
                self.stages[t].inline = self._epilogue_fusable(t)
        self.refresh()

    def __getitem__(self, t: te.Tensor) -> Stage:
        return self.stages[t]

    def _root_consumers(self, t: te.Tensor) -> set:
        out = set()
        for c in self.consumers[t]:
            out |= self._root_consumers(c) if self.stages[c].inline else {c}
        return out

    def _epilogue_fusable(self, t: te.Tensor) -> bool:
        roots = self._root_consumers(t)
        if len(roots) != 1:
            return False
        (c,) = roots
        if c.shape != t.shape or c.op.reduce is not None:
            return False
        self.stages[t].inline = False
        body = self.resolve(c.op.body)
        axes = [a.var for a in c.op.axes]
        for x in te.walk(body):
            if isinstance(x, te.Reduce):
                return False  # the consumer already holds a reduction
            if isinstance(x, te.TensorLoad) and x.tensor is t and (
                    len(x.indices) != len(axes)
                    or any(i is not a for i, a in zip(x.indices, axes))):
                return False
        return True

    def resolve(self, body: Expr) -> Expr:
        """Substitute the bodies of inlined stages into `body`."""
        # Memo keys are object ids; every keyed object is kept alive in `keep`, or a freed
        # temporary's id could be reused by a new node and return a stale result.
        memo: dict = {}
        keep: list = []

        def go(e: Expr) -> Expr:
            r = memo.get(id(e))
            if r is not None:
                return r
            kids = children(e)
            new = tuple(go(k) for k in kids)
            r = e if all(a is b for a, b in zip(kids, new)) else rebuild(e, new)
            if isinstance(r, te.TensorLoad) and r.tensor in self.stages \
                    and self.stages[r.tensor].inline:
                key = (id(r.tensor),) + tuple(id(i) for i in r.indices)
                if key in memo:
                    r = memo[key]
                else:
                    keep.append(r)
                    op = r.tensor.op
                    sub = substitute(op.body, {a.var: i for a, i in zip(op.axes, r.indices)})
                    memo[key] = r = go(sub)
            keep.append(e)
            memo[id(e)] = r
            return r

        return go(body)

    def refresh(self):
        """Recompute resolved bodies and reset loop nests (after changing inline choices)."""
        for t in self.tensors:
            st = self.stages[t]
            if st.inline:
                continue
            st.body = self.resolve(t.op.body)
            st.reduce = te.find_reduce(st.body)
            st.leaf = st.axes + st.reduce_axes
            st.relations = []
            st.annot = {}

    def root_stages(self) -> list[Stage]:
        return [self.stages[t] for t in self.tensors if not self.stages[t].inline]


def create_schedule(outputs) -> Schedule:
    return Schedule(outputs if isinstance(outputs, list) else [outputs])


# ---------------------------------------------------------------------------------------------
# Lowering


def _root_values(stage: Stage, leaf_vals: dict) -> tuple[dict, list[Expr]]:
    """Values of every IterVar from the leaf loop variables, plus split guards."""
    vals = dict(leaf_vals)
    preds: list[Expr] = []
    for rel in reversed(stage.relations):
        if rel[0] == "split":
            _, parent, outer, inner, factor = rel
            v = binop("add", binop("mul", vals[outer], factor), vals[inner])
            vals[parent] = v
            if outer.extent * factor != parent.extent:
                preds.append(cmp("lt", v, parent.extent))
        else:
            _, a, b, fused = rel
            vals[a] = binop("floordiv", vals[fused], b.extent)
            vals[b] = binop("mod", vals[fused], b.extent)
    return vals, preds


def _nest(ivs: list[te.IterVar], stage: Stage, body, vars_: dict):
    for iv in reversed(ivs):
        body = For(vars_[iv], iv.extent, stage.annot.get(iv, "serial"), body)
    return body


def _guard(preds: list[Expr], body):
    cond = all_of(*preds)
    if isinstance(cond, Const):
        return body if cond.value else None
    return IfThenElse(cond, body)


def _uses(pred: Expr, allowed: set) -> bool:
    return free_vars(pred) <= allowed


def _combine(combiner: str, a: Expr, b: Expr) -> Expr:
    if combiner == "sum":
        return a + b
    if combiner == "prod":
        return a * b
    r = maximum(a, b) if combiner == "max" else minimum(a, b)
    if a.dtype.startswith(("float", "bfloat")):
        # The accumulator `a` keeps a NaN (codegen/semantics.py); one arriving later in `b`
        # must win too, as in onnxruntime's MaxPool/ReduceMax: b != b only for NaN.
        r = select(cmp("ne", b, b), b, r)
    return r


def tensor_loads(e: Expr, axis_map: dict, buffers: dict) -> Expr:
    """A TE expression as loop IR: axis variables replaced by `axis_map`, tensor reads by
    loads of their buffers."""
    def post(r):
        if isinstance(r, te.TensorLoad):
            buf = buffers[r.tensor]
            return Load(buf, flat_index(buf.shape, r.indices))
        return r
    return rewrite(substitute(e, axis_map), post)


def lower_stage(stage: Stage, buffers: dict) -> object:
    """Loop IR for one root stage; `buffers` maps tensors to their Buffers."""
    lvars = {iv: Var(iv.var.name) for iv in stage.leaf}
    vals, preds = _root_values(stage, dict(lvars))
    axis_map = {iv.var: vals[iv] for iv in stage.axes + stage.reduce_axes}
    out = buffers[stage.tensor]
    out_index = flat_index(out.shape, [vals[a] for a in stage.axes])

    def to_loads(e: Expr) -> Expr:
        return tensor_loads(e, axis_map, buffers)

    if stage.reduce is None:
        value = to_loads(stage.body)
        return _nest(stage.leaf, stage, _guard(preds, Store(out, out_index, value)), lvars)

    red = stage.reduce
    first_r = next(k for k, iv in enumerate(stage.leaf) if iv.kind == "reduce")
    outer, rest = stage.leaf[:first_r], stage.leaf[first_r:]
    tile = [iv for iv in rest if iv.kind == "spatial"]
    acc = Buffer(fresh("acc"), (max(1, math.prod(iv.extent for iv in tile)),), red.dtype, "local")
    t_index = flat_index([iv.extent for iv in tile], [lvars[iv] for iv in tile]) if tile \
        else const(0)
    spatial_vars = {lvars[iv] for iv in outer + tile}
    sp_preds = [p for p in preds if _uses(p, spatial_vars)]

    init = _nest(tile, stage, Store(acc, t_index, te.reduce_init(red.combiner, red.dtype)), lvars)
    src = to_loads(red.source)
    upd = Store(acc, t_index, _combine(red.combiner, Load(acc, t_index), src))
    # The accumulator tile covers the padded region, so the update needs a guard only when
    # some load could leave its buffer there; a guard per vector FMA is costly.
    ranges = {lvars[iv]: (0, iv.extent - 1) for iv in stage.leaf}
    upd_preds = preds if not _loads_in_bounds(src, ranges) else \
        [p for p in preds if not _uses(p, spatial_vars)]
    update = _nest(rest, stage, _guard(upd_preds, upd), lvars)
    epi_body = to_loads(_replace_reduce(stage.body, red, acc, t_index))
    epi_tile = stage.epilogue_order or tile
    if sorted(map(id, epi_tile)) != sorted(map(id, tile)):
        raise ScheduleError(f"{stage.op.name}: epilogue order must permute {tile}")
    saved = stage.annot
    stage.annot = {**stage.annot, **stage.epilogue_annot}
    epilogue = _nest(epi_tile, stage, _guard(sp_preds, Store(out, out_index, epi_body)), lvars)
    stage.annot = saved
    inner = Allocate(acc, seq(init, update, epilogue))
    return _nest(outer, stage, inner, lvars)


def _loads_in_bounds(e: Expr, ranges: dict) -> bool:
    from .arith import _range

    for x in te.walk(e):
        if isinstance(x, Load):
            r = _range(simplify_index(x.index, ranges), ranges)
            if r is None or r[0] < 0 or r[1] >= x.buffer.size:
                return False
    return True


def _replace_reduce(body: Expr, red: te.Reduce, acc: Buffer, t_index: Expr) -> Expr:
    return rewrite(body, pre=lambda x: Load(acc, t_index) if x is red else None)


def simplify_stmt(s, ranges: dict | None = None):
    """Simplify every index and condition under the ranges of the enclosing loops."""
    ranges = dict(ranges or {})
    if isinstance(s, For):
        inner = dict(ranges)
        inner[s.var] = (0, s.extent - 1)
        return For(s.var, s.extent, s.kind, simplify_stmt(s.body, inner))
    if isinstance(s, Seq):
        return Seq([simplify_stmt(x, ranges) for x in s.stmts])
    if isinstance(s, Allocate):
        return Allocate(s.buffer, simplify_stmt(s.body, ranges))
    if isinstance(s, IfThenElse):
        return IfThenElse(simplify_index(s.cond, ranges), simplify_stmt(s.then, ranges),
                          None if s.other is None else simplify_stmt(s.other, ranges))
    if isinstance(s, Store):
        return Store(s.buffer, simplify_index(s.index, ranges), simplify_index(s.value, ranges))
    return s


def kernel_buffers(sch: Schedule, args: list[te.Tensor]
                   ) -> tuple[dict, list[Buffer], list[Buffer]]:
    """(tensor -> Buffer, the kernel's parameters, its scratch buffers): `args` (inputs then
    outputs) become arg0.., other materialised root stages extra tmp0.. parameters."""
    buffers: dict = {}
    params: list[Buffer] = []
    for k, t in enumerate(args):
        b = Buffer(f"arg{k}", t.shape, t.dtype)
        buffers[t] = b
        params.append(b)
    scratch = []
    for st in sch.root_stages():
        if st.tensor not in buffers:
            b = Buffer(f"tmp{len(scratch)}", st.tensor.shape, st.tensor.dtype)
            buffers[st.tensor] = b
            params.append(b)
            scratch.append(b)
    return buffers, params, scratch


def lower(sch: Schedule, args: list[te.Tensor], name: str) -> PrimFunc:
    """Lower a schedule to one kernel. `args` are the kernel's tensors (inputs then outputs);
    other materialised intermediates become extra scratch parameters (attrs['scratch'])."""
    buffers, params, scratch = kernel_buffers(sch, args)
    for t in te.post_order(sch.outputs):
        if isinstance(t.op, te.PlaceholderOp) and t not in buffers:
            raise ScheduleError(f"kernel {name}: input {t.name} is not among its arguments")
    body = simplify_stmt(seq(*[lower_stage(st, buffers) for st in sch.root_stages()]))
    return PrimFunc(name, params, body, {"scratch": scratch})

"""Branches and loops of the LLVM kernel emitter: a `vectorize` loop becomes straight-line
vector code, `unroll` copies, a serial loop a phi loop, and a `parallel` loop a task
function handed to `tilecc_parallel_for` (runtime/c/tilecc_runtime.c)."""

from __future__ import annotations

from llvmlite import ir

from tilecc.expr import Var
from tilecc.loopir import For, IfThenElse, Seq, Store

from .llvm_base import I1, I32, I64, PTR, EmitterBase


class ControlFlow(EmitterBase):
    def emit_IfThenElse(self, s: IfThenElse):
        c = self.ev(s.cond)
        if c.vec:
            # All lanes true: run the vector body; otherwise run the lanes one by one.
            allv = self._intrinsic("llvm.vector.reduce.and", [c.v], ret=I1)
            with self.b.if_else(allv) as (then, other):
                with then:
                    self.emit(s.then)
                with other:
                    if s.other is None and self.mask is None and self.cg.masked_ok:
                        # A partial vector (loop tail): the same vector code with masked
                        # memory accesses.
                        self.mask = c.v
                        self.emit(s.then)
                        self.mask = None
                    else:
                        self._scalar_lanes(s)
            return
        if s.other is None:
            with self.b.if_then(c.v):
                self.emit(s.then)
        else:
            with self.b.if_else(c.v) as (then, other):
                with then:
                    self.emit(s.then)
                with other:
                    self.emit(s.other)

    def _scalar_lanes(self, s):
        var, lanes = self.vvar, self.lanes
        self.vvar, self.lanes = None, 1
        self._serial_loop(var, lanes, s)
        self.vvar, self.lanes = var, lanes

    def _serial_loop(self, var: Var, extent, body, start=None):
        """for var in [start, extent): body  (extent/start are ir values or ints)."""
        bl = self.b
        start = I64(0) if start is None else start
        end = I64(extent) if isinstance(extent, int) else extent
        pre = bl.block
        head = self.fn.append_basic_block(f"{var.name}.head")
        loop = self.fn.append_basic_block(f"{var.name}.body")
        done = self.fn.append_basic_block(f"{var.name}.done")
        bl.branch(head)
        bl.position_at_end(head)
        phi = bl.phi(I64, name=var.name)
        phi.add_incoming(start, pre)
        bl.cbranch(bl.icmp_signed("<", phi, end), loop, done)
        bl.position_at_end(loop)
        saved = self.env.get(var)
        self.env[var] = phi
        self.emit(body)
        nxt = bl.add(phi, I64(1))
        phi.add_incoming(nxt, bl.block)
        bl.branch(head)
        bl.position_at_end(done)
        self._restore(var, saved)

    def _restore(self, var, saved):
        if saved is None:
            self.env.pop(var, None)
        else:
            self.env[var] = saved

    def emit_For(self, s: For):
        if s.extent <= 0:
            return
        if s.kind == "parallel" and self.cg.allow_parallel and s.extent > 1:
            self._parallel(s)
        elif s.kind == "vectorize" and self.vvar is None and _vectorizable(s.body) \
                and 1 < s.extent <= 64:
            self.vvar, self.lanes = s.var, s.extent
            self.emit(s.body)
            self.vvar, self.lanes = None, 1
        elif s.kind in ("unroll", "vectorize") and s.extent <= 64:
            saved = self.env.get(s.var)
            for k in range(s.extent):
                self.env[s.var] = I64(k)
                self.emit(s.body)
            self._restore(s.var, saved)
        else:
            self._serial_loop(s.var, s.extent, s.body)

    def _parallel(self, s: For):
        cg = self.cg
        vars_ = list(self.env.items())
        bufs = list(self.bufs.items())
        # The closure: captured loop variables, buffers, then the shared next-chunk counter.
        struct = ir.LiteralStructType([I64] * len(vars_) + [PTR] * len(bufs) + [I64])
        task_fn = ir.Function(cg.module, ir.FunctionType(I32, [I32, I32, PTR]),
                              cg.unique(self.fn.name + "_par"))
        task_fn.linkage = "internal"
        sub = type(self)(cg, task_fn)
        _tid, ntasks, cdata = task_fn.args
        for k, (var, _) in enumerate(vars_):
            p = sub.b.gep(cdata, [I32(0), I32(k)], inbounds=True, source_etype=struct)
            sub.env[var] = sub.b.load(p, typ=struct.elements[k])
        for k, (buf, _) in enumerate(bufs, len(vars_)):
            p = sub.b.gep(cdata, [I32(0), I32(k)], inbounds=True, source_etype=struct)
            sub.bufs[buf] = sub.b.load(p, typ=struct.elements[k])
        # Dynamic chunks: tasks take the next CHUNKS_PER_TASK-th share of the range from a
        # shared counter until it runs out, so a thread the OS delays (a busy neighbour core)
        # holds up at most one small chunk instead of a whole static 1/T of the loop.
        n = I64(s.extent)
        nt64 = sub.b.sext(ntasks, I64)
        parts = sub.b.mul(nt64, I64(CHUNKS_PER_TASK))
        grain = sub.b.sdiv(sub.b.add(n, sub.b.sub(parts, I64(1))), parts)
        counter = sub.b.gep(cdata, [I32(0), I32(len(vars_) + len(bufs))], inbounds=True,
                            source_etype=struct)
        head = task_fn.append_basic_block("chunk.head")
        work = task_fn.append_basic_block("chunk.work")
        done = task_fn.append_basic_block("chunk.done")
        sub.b.branch(head)
        sub.b.position_at_end(head)
        begin = sub.b.atomic_rmw("add", counter, grain, "monotonic")
        sub.b.cbranch(sub.b.icmp_signed("<", begin, n), work, done)
        sub.b.position_at_end(work)
        end = sub.b.add(begin, grain)
        end = sub.b.select(sub.b.icmp_signed("<", end, n), end, n)
        sub._serial_loop(s.var, end, s.body, start=begin)
        sub.b.branch(head)
        sub.b.position_at_end(done)
        sub.finish(I32(0))
        # Caller side: pack the closure and launch.
        cl = self.alloca(struct, align=8)
        for k, v in enumerate([v for _, v in vars_] + [v for _, v in bufs]):
            self.b.store(v, self.b.gep(cl, [I32(0), I32(k)], inbounds=True, source_etype=struct))
        self.b.store(I64(0), self.b.gep(cl, [I32(0), I32(len(vars_) + len(bufs))],
                                        inbounds=True, source_etype=struct))
        rc = self.b.call(cg.parallel_for, [task_fn, cl])
        with self.b.if_then(self.b.icmp_signed("!=", rc, I32(0))):
            self.b.ret(rc)



CHUNKS_PER_TASK = 4


def _vectorizable(s) -> bool:
    if isinstance(s, (Store,)):
        return True
    if isinstance(s, Seq):
        return all(_vectorizable(x) for x in s.stmts)
    if isinstance(s, IfThenElse):
        return _vectorizable(s.then) and (s.other is None or _vectorizable(s.other))
    return False

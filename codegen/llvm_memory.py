"""Loads and stores of the LLVM kernel emitter: under a vector loop an index with stride 1
in the loop variable is one vector access, stride 0 a scalar one, stride 2-4 a masked
contiguous load and a shuffle, anything else a gather/scatter; a guarded (padding) load
never touches memory for lanes that are off."""

from __future__ import annotations

from typing import cast

import numpy as np
from llvmlite import ir

from tilecc.expr import Expr, Load, Select, Var, const, linear_coeff, substitute
from tilecc.loopir import Buffer, Store

from .llvm_base import I1, I8, I32, MEM_TYPES, PTR, EmitterBase, Val


def _buf(e: Load) -> Buffer:
    return cast(Buffer, e.buffer)  # expr.Load cannot name loopir.Buffer (import order)


class MemoryAccess(EmitterBase):
    def _vv(self) -> Var:
        assert self.vvar is not None, "vector access outside a vector loop"
        return self.vvar

    def _stride(self, index: Expr) -> int:
        """The lane stride of a 'strided' index (_lane_mode said it has one)."""
        c = linear_coeff(index, self._vv())
        assert c is not None
        return c

    def _addr(self, buf: Buffer, idx: ir.Value):
        return self.b.gep(self.bufs[buf], [idx], inbounds=True, source_etype=MEM_TYPES[buf.dtype])

    def _from_mem(self, v, dtype):
        if dtype == "bool":
            z = self._const_like(v.type, 0)
            return self.b.icmp_unsigned("!=", v, z)
        return v

    def _to_mem(self, v, dtype, vec):
        if dtype == "bool":
            return self.b.zext(v, ir.VectorType(I8, self.lanes) if vec else I8)
        return v

    def _lane_mode(self, index: Expr):
        """'scalar', 'contig' or 'gather' for an index under the current vector variable."""
        if self.vvar is None:
            return "scalar"
        c = linear_coeff(index, self.vvar)
        if c in (2, 3, 4) and self.cg.masked_ok:
            return "strided"
        if c is None:  # not affine in the lane
            return "gather"
        return {0: "scalar", 1: "contig"}.get(c, "gather")

    def ev_Load(self, e: Load) -> Val:
        buf = _buf(e)
        dt = buf.dtype
        mode = self._lane_mode(e.index)
        esize = np.dtype(dt).itemsize
        if mode == "scalar":
            v = self.b.load(self._addr(buf, self.ev(e.index).v), typ=MEM_TYPES[dt], align=esize)
            return Val(self._from_mem(v, dt))
        if mode == "contig":
            base = self.ev(substitute(e.index, {self._vv(): const(0)})).v
            vt = ir.VectorType(MEM_TYPES[dt], self.lanes)
            if self.mask is not None:
                v = self._masked_load(self._addr(buf, base), vt, esize, self.mask,
                                      ir.Constant(vt, ir.Undefined))
            else:
                v = self.b.load(self._addr(buf, base), typ=vt, align=esize)
            return Val(self._from_mem(v, dt), True)
        if mode == "strided" and self.mask is None:
            return Val(self._from_mem(self._strided_load(e, esize), dt), True)
        idx = self.bcast(self.ev(e.index), "int64")
        if self.mask is not None:  # dead lanes read element 0, which every buffer has
            idx = self.b.select(self.mask, idx, ir.Constant(idx.type, [0] * self.lanes))
        out = ir.Constant(ir.VectorType(MEM_TYPES[dt], self.lanes), ir.Undefined)
        for lane in range(self.lanes):
            li = self.b.extract_element(idx, I32(lane))
            x = self.b.load(self._addr(buf, li), typ=MEM_TYPES[dt], align=esize)
            out = self.b.insert_element(out, x, I32(lane))
        return Val(self._from_mem(out, dt), True)

    def _guarded_load(self, e: Select) -> Val:
        """`cond ? buf[idx] : other` where idx may be out of bounds when cond is false (padding):
        lanes that are off never touch memory (masked vector load), scalar and gathered lanes
        read element 0 instead, which every buffer has."""
        load = cast(Load, e.a)  # ev_Select sends only selects over a load here
        dt = load.dtype
        c, other = self.ev(e.cond), self.ev(e.b)
        esize = np.dtype(dt).itemsize
        # A uniform (scalar) condition over a contiguous vector is a splatted mask: still one
        # masked vector load, not a per-lane gather through a select on the index.
        if self._lane_mode(load.index) == "contig" and self.cg.masked_ok:
            base = self.ev(substitute(load.index, {self._vv(): const(0)})).v
            vt = ir.VectorType(MEM_TYPES[dt], self.lanes)
            mask = self.bcast(c, "bool")
            if self.mask is not None:
                mask = self.b.and_(mask, self.mask)
            passthru = self.bcast(other, dt)
            if dt == "bool":
                passthru = self._to_mem(passthru, dt, True)
            v = self._masked_load(self._addr(_buf(load), base), vt, esize, mask, passthru)
            return Val(self._from_mem(v, dt), True)
        if self._lane_mode(load.index) == "strided" and (c.vec or other.vec):
            # Widen the lane mask to the stride-s window: element j of the wide load is lane
            # j/s when s divides j, else never needed.
            st = self._stride(load.index)
            n = st * self.lanes
            cv = self.bcast(c, "bool")
            if self.mask is not None:
                cv = self.b.and_(cv, self.mask)
            zeros = ir.Constant(cv.type, [0] * self.lanes)
            sel = [j // st if j % st == 0 else self.lanes for j in range(n)]
            wmask = self.b.shuffle_vector(cv, zeros, ir.Constant(ir.VectorType(I32, n), sel))
            et = MEM_TYPES[dt]
            wide = ir.VectorType(et, n)
            base = self.ev(substitute(load.index, {self._vv(): const(0)})).v
            v = self._masked_load(self._addr(_buf(load), base), wide, esize, wmask,
                                  ir.Constant(wide, ir.Undefined))
            pick = ir.Constant(ir.VectorType(I32, self.lanes), [st * j for j in range(self.lanes)])
            x = self._from_mem(self.b.shuffle_vector(v, ir.Constant(wide, ir.Undefined), pick), dt)
            return Val(self.b.select(cv, x, self.bcast(other, dt)), True)
        from tilecc.expr import select as mk_select
        safe = Load(_buf(load), mk_select(e.cond, load.index, const(0)))
        x = self.ev(safe)
        if c.vec or x.vec or other.vec:
            cv = self.bcast(c, "bool")
            return Val(self.b.select(cv, self.bcast(x, dt), self.bcast(other, dt)), True)
        return Val(self.b.select(c.v, x.v, other.v))

    def _masked_load(self, ptr, vt, esize, mask, passthru):
        fname = f"llvm.masked.load.v{vt.count}{vt.element.intrinsic_name}.p0"
        fn = self.cg.module.globals.get(fname)
        if fn is None:
            fn = ir.Function(self.cg.module, ir.FunctionType(vt, [PTR, I32, mask.type, vt]), fname)
        return self.b.call(fn, [ptr, I32(esize), mask, passthru])

    def _strided_load(self, e: Load, esize: int):
        """Stride-s lanes: one masked contiguous load of s*L elements (the mask stops at the
        last element needed, so nothing past it is touched), then a shuffle picks every s-th."""
        s = self._stride(e.index)
        n = s * self.lanes
        et = MEM_TYPES[_buf(e).dtype]
        base = self.ev(substitute(e.index, {self._vv(): const(0)})).v
        ptr = self._addr(_buf(e), base)
        wide = ir.VectorType(et, n)
        mask = ir.Constant(ir.VectorType(I1, n), [int(j <= s * (self.lanes - 1)) for j in range(n)])
        fname = f"llvm.masked.load.v{n}{et.intrinsic_name}.p0"
        fn = self.cg.module.globals.get(fname)
        if fn is None:
            fn = ir.Function(self.cg.module, ir.FunctionType(wide, [PTR, I32, mask.type, wide]),
                             fname)
        v = self.b.call(fn, [ptr, I32(esize), mask, ir.Constant(wide, ir.Undefined)])
        sel = ir.Constant(ir.VectorType(I32, self.lanes), [s * j for j in range(self.lanes)])
        return self.b.shuffle_vector(v, ir.Constant(wide, ir.Undefined), sel)

    def emit_Store(self, s: Store):
        buf, dt = s.buffer, s.buffer.dtype
        val = self.ev(s.value)
        mode = self._lane_mode(s.index)
        esize = np.dtype(dt).itemsize
        if mode == "strided" or (mode == "scalar" and val.vec):
            mode = "gather"  # every lane writes one place: keep the last lane, like a loop
        if mode == "scalar":
            self.b.store(self._to_mem(val.v, dt, False), self._addr(buf, self.ev(s.index).v),
                         align=esize)
            return
        v = self._to_mem(self.bcast(val, dt), dt, True)
        if mode == "contig":
            base = self.ev(substitute(s.index, {self._vv(): const(0)})).v
            if self.mask is None:
                self.b.store(v, self._addr(buf, base), align=esize)
            else:
                fname = f"llvm.masked.store.v{self.lanes}{v.type.element.intrinsic_name}.p0"
                fn = self.cg.module.globals.get(fname)
                if fn is None:
                    fn = ir.Function(self.cg.module, ir.FunctionType(
                        ir.VoidType(), [v.type, PTR, I32, self.mask.type]), fname)
                self.b.call(fn, [v, self._addr(buf, base), I32(esize), self.mask])
            return
        idx = self.bcast(self.ev(s.index), "int64")
        sink = None
        if self.mask is not None:
            sink = self.alloca(MEM_TYPES[dt], align=esize)  # where dead lanes write
        for lane in range(self.lanes):
            li = self.b.extract_element(idx, I32(lane))
            addr = self._addr(buf, li)
            if sink is not None:
                addr = self.b.select(self.b.extract_element(self.mask, I32(lane)), addr, sink)
            self.b.store(self.b.extract_element(v, I32(lane)), addr, align=esize)

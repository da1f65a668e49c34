"""Loop IR -> OpenCL C, and the OpenCL build of a whole model (kernels.cl + launch plan).

A kernel skeleton comes from a jinja2 template (codegen/templates); statements and
expressions are rendered here through a small dialect table (types, builtins, vector loads).
Loops bound with `Stage.bind` become work-group / work-item ids; `vectorize` loops whose
accesses are contiguous become floatN arithmetic with vloadN/vstoreN; private accumulator tiles
(`Allocate`, scope local) become private arrays. With fp16 every float buffer is `half` in
memory and arithmetic is half where the device has cl_khr_fp16 (codegen/opencl_half.py has
the policy: long reductions accumulate in float); 8-bit dot products are codegen/opencl_dot.py.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from tilecc.codegen.half_policy import FLOAT, HALF, FloatKinds, half_locals
from tilecc.codegen.opencl_dot import dot_loop, helper_name, lanes, preamble
from tilecc.codegen.opencl_half import preamble as half_preamble
from tilecc.codegen.semantics import FLOAT_MINMAX_BEYOND
from tilecc.errors import TileccError
from tilecc.expr import (
    Bin,
    Call,
    Cast,
    Cmp,
    Const,
    Expr,
    Load,
    Not,
    Select,
    Var,
    children,
    const,
    free_vars,
    linear_coeff,
    substitute,
)
from tilecc.loopir import Allocate, Buffer, For, IfThenElse, PrimFunc, Seq, Stmt, Store
from tilecc.topi.gpu_tile import Barrier

# ------------------------------------------------------------------------------ dialect table
STORAGE = {"float32": "float", "float64": "double", "float16": "half", "int8": "char",
           "uint8": "uchar", "int16": "short", "uint16": "ushort", "int32": "int",
           "uint32": "uint", "int64": "long", "uint64": "ulong", "bool": "uchar"}
# Arithmetic types: half is storage only (fp32 math on every device), bool computes as int.
ARITH = dict(STORAGE, float16="float", bool="int")
# Math functions OpenCL C has no builtin for, as expressions of their argument.
EXPANDED = {"sigmoid": "({one} / ({one} + exp(-({0}))))"}
CALLS = {"exp": "exp", "log": "log", "sqrt": "sqrt", "tanh": "tanh", "erf": "erf",
         "fabs": "fabs", "floor": "floor", "ceil": "ceil", "round": "rint", "pow": "pow"}
INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "and": "&&", "or": "||"}
# Ordered float comparisons (false on NaN) whose result `select` takes for scalars and vectors.
ORDERED_CMP = {">": "isgreater", "<": "isless"}
# float type -> (reinterpret as unsigned, magnitude mask, +inf's bits): NaN is |bits| > inf.
NAN_BITS = {"float32": ("as_uint", "0x7fffffffu", "0x7f800000u"),
            "float16": ("as_ushort", "(ushort)0x7fff", "(ushort)0x7c00"),
            "float64": ("as_ulong", "0x7fffffffffffffffUL", "0x7ff0000000000000UL")}
CMPS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
ID_BUILTINS = {"blockIdx": "get_group_id", "threadIdx": "get_local_id"}
VECTOR_WIDTHS = (2, 3, 4, 8, 16)
FLOATS = ("float32", "float16")


class OpenCLCodegenError(TileccError):
    exit_code = 70


def _is_float(dtype: str) -> bool:
    return dtype.startswith("float")


@cache
def _templates():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("tilecc.codegen", "templates"),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.get_template("kernel.cl.j2"), env.get_template("module.cl.j2")


def _const(c: Const) -> str:
    v, dt = c.value, c.dtype
    if dt == "bool":
        return "1" if v else "0"
    if _is_float(dt):
        if math.isnan(v):
            return "NAN"
        if math.isinf(v):
            return "INFINITY" if v > 0 else "(-INFINITY)"
        if dt == "float64":
            return f"{v!r}"
        s = f"{float(np.float32(v))!r}"
        return f"{s}f" if ("." in s or "e" in s) else f"{s}.0f"
    v = int(v)
    if dt == "int64":
        return "(-9223372036854775807L-1)" if v == -(1 << 63) else f"{v}L"
    if dt == "uint64":
        return f"{v}UL"
    return f"(({ARITH[dt]}){v}L)"


@dataclass
class Launch:
    kernel: str
    groups: list[int] = field(default_factory=lambda: [1, 1, 1])
    local: list[int] = field(default_factory=lambda: [1, 1, 1])

    @property
    def global_size(self) -> list[int]:
        return [g * n for g, n in zip(self.groups, self.local)]


class KernelEmitter:
    """Renders one root stage's loop nest (one OpenCL kernel)."""

    def __init__(self, name: str, params: list[Buffer], fp16_storage: bool):
        self.name = name
        self.params = params
        self.fp16 = fp16_storage
        self.names: dict[int, str] = {}
        self.used: set[str] = set()
        self.lines: list[str] = []
        self.launch = Launch(name)
        self.depth = 1
        self.nested = False  # inside a loop/branch: a bound loop here has no meaning
        self.vvar: Var | None = None
        self.lanes = 1
        self.tmp = 0
        # fp16 arithmetic (codegen/opencl_half.py): which accumulators are half.
        self.half_acc: set[int] = set()
        self.kinds = FloatKinds(self.half_kind) if fp16_storage else None

    # ---------------------------------------------------------------- names and types
    def ident(self, obj, hint: str) -> str:
        key = id(obj)
        if key not in self.names:
            base = re.sub(r"\W", "_", hint) or "v"
            name, k = base, 0
            while name in self.used:
                k += 1
                name = f"{base}_{k}"
            self.used.add(name)
            self.names[key] = name
        return self.names[key]

    def half(self, buf: Buffer) -> bool:
        return buf.scope == "global" and (buf.dtype == "float16"
                                          or (self.fp16 and buf.dtype == "float32"))

    def half_kind(self, buf: Buffer) -> bool:
        return self.half(buf) or id(buf) in self.half_acc

    def fk(self, e: Expr) -> str | None:
        return self.kinds(e) if self.kinds is not None else None

    def ty(self, dtype: str, kind: str | None) -> str:
        """The C type of a value: `hf` for half arithmetic (opencl_half.py)."""
        return "hf" if kind == HALF and _is_float(dtype) else ARITH[dtype]

    def ctype(self, buf: Buffer) -> str:
        return "half" if self.half(buf) else STORAGE[buf.dtype]

    def line(self, text: str):
        self.lines.append("  " * self.depth + text)

    # ---------------------------------------------------------------- expressions
    def value(self, e: Expr) -> tuple[str, bool]:
        """Render `e` (hoisting shared subexpressions into temporaries); (code, is_vector)."""
        counts: dict[int, int] = {}
        stack = [e]
        while stack:
            x = stack.pop()
            counts[id(x)] = counts.get(id(x), 0) + 1
            if counts[id(x)] == 1:
                stack.extend(children(x))
        memo: dict[int, tuple[str, bool]] = {}

        def go(x: Expr) -> tuple[str, bool]:
            r = memo.get(id(x))
            if r is not None:
                return r
            r = self.expr(x, go)
            if counts.get(id(x), 1) > 1 and not isinstance(x, (Const, Var)):
                t = f"t{self.tmp}"
                self.tmp += 1
                ty = self.ty(x.dtype, self.fk(x)) + (str(self.lanes) if r[1] else "")
                self.line(f"const {ty} {t} = {r[0]};")
                r = (t, r[1])
            memo[id(x)] = r
            return r

        return go(e)

    def arg(self, e: Expr, r: tuple[str, bool], kind: str | None, vec: bool) -> str:
        """Operand `e` (rendered as `r`) of an operation of arithmetic `kind`: a half value
        widened into float arithmetic, a constant made half in half arithmetic, a scalar
        splat into a vector operation."""
        code, isv = r
        ck = self.fk(e) if _is_float(e.dtype) else None
        if ck == HALF and kind == FLOAT:
            code = f"convert_float{self.lanes}({code})" if isv else f"((float)({code}))"
        elif kind == HALF and ck != HALF and _is_float(e.dtype):
            code = f"TL_HF({self.lanes}, {code})" if isv else f"((hf)({code}))"
        if vec and not isv:
            code = f"(({self.ty(e.dtype, kind)}{self.lanes})({code}))"
        return code

    def expr(self, x: Expr, go) -> tuple[str, bool]:
        if isinstance(x, Const):
            return _const(x), False
        if isinstance(x, Var):
            if x is self.vvar:
                raise OpenCLCodegenError(f"{self.name}: vector lane index used as a value")
            if id(x) not in self.names:
                raise OpenCLCodegenError(f"{self.name}: unbound variable {x.name}")
            return self.names[id(x)], False
        if isinstance(x, Load):
            return self.load(x, go)
        if isinstance(x, Bin):
            a, b = go(x.a), go(x.b)
            vec = a[1] or b[1]
            k = self.fk(x)
            sa, sb = self.arg(x.a, a, k, vec), self.arg(x.b, b, k, vec)
            dt = x.a.dtype
            if x.op in INFIX and not (x.op == "div" and not _is_float(dt)):
                return f"({sa} {INFIX[x.op]} {sb})", vec
            if x.op == "div":  # integer division truncates, like C
                return f"({sa} / {sb})", vec
            if x.op in ("min", "max") and _is_float(dt):
                # codegen/semantics.py, not fmax/fmin (those drop a NaN: Relu(NaN) would be 0).
                beyond = ORDERED_CMP[FLOAT_MINMAX_BEYOND[x.op]]
                if k == HALF and not vec:  # scalar select on half wants a short mask
                    return f"({beyond}({sb}, {sa}) ? {sb} : {sa})", vec
                return f"select({sa}, {sb}, {beyond}({sb}, {sa}))", vec
            if x.op in ("min", "max"):
                return f"{x.op}({sa}, {sb})", vec
            if _is_float(dt):
                q = f"floor({sa} / {sb})"
                return (q, vec) if x.op == "floordiv" else (f"({sa} - {q} * {sb})", vec)
            fn = "tl_floordiv" if x.op == "floordiv" else "tl_mod"
            return f"(({ARITH[dt]}){fn}((long)({sa}), (long)({sb})))", vec
        if isinstance(x, Cmp):
            a, b = go(x.a), go(x.b)
            if x.op == "ne" and a[0] == b[0] and x.a.dtype in NAN_BITS:
                # x != x is the NaN test; -cl-fast-relaxed-math lets the OpenCL compiler fold
                # it (and isnan) to false, so the bits are tested.
                if self.fk(x.a) == HALF:  # hf: half or float, known only to the device
                    return f"TL_HF_ISNAN({a[0]})", False
                cast, mag, inf = NAN_BITS[x.a.dtype]
                return f"(({cast}({a[0]}) & {mag}) > {inf})", False
            return f"({a[0]} {CMPS[x.op]} {b[0]})", False
        if isinstance(x, Not):
            return f"(!{go(x.a)[0]})", False
        if isinstance(x, Select):
            c, a, b = go(x.cond), go(x.a), go(x.b)
            k = self.fk(x)
            return f"({c[0]} ? {self.arg(x.a, a, k, False)} : {self.arg(x.b, b, k, False)})", \
                False
        if isinstance(x, Cast):
            a = go(x.x)
            if x.dtype == "bool":
                return f"({a[0]} != 0)", False
            if a[1]:
                return a  # vector casts are float -> float only (see _vectorizable)
            return f"(({self.ty(x.dtype, self.fk(x))})({a[0]}))", False
        if isinstance(x, Call):
            args = [go(a) for a in x.args]
            vec = any(a[1] for a in args)
            k = self.fk(x)
            codes = [self.arg(e, a, k, vec) for e, a in zip(x.args, args)]
            if x.fn in EXPANDED:
                one = "((hf)1.0f)" if k == HALF else "1.0f"
                return EXPANDED[x.fn].format(*codes, one=one), vec
            fn = CALLS.get(x.fn)
            if fn is None:
                raise OpenCLCodegenError(f"{self.name}: no OpenCL builtin for {x.fn}")
            return f"{fn}({', '.join(codes)})", vec
        raise OpenCLCodegenError(f"{self.name}: no OpenCL rule for {type(x).__name__}")

    def load(self, x: Load, go) -> tuple[str, bool]:
        buf = x.buffer
        name = self.names[id(buf)]
        if self.vvar is not None and self.vvar in free_vars(x.index):
            base = go(substitute(x.index, {self.vvar: const(0)}))[0]
            n = self.lanes
            if self.half(buf) and self.kinds is not None:
                return f"TL_LDV({n}, 0, {name} + {base})", True
            if self.half(buf):
                return f"vload_half{n}(0, {name} + {base})", True
            return f"vload{n}(0, {name} + {base})", True
        idx = go(x.index)[0]
        if self.half(buf) and self.kinds is not None:
            return f"TL_LD({idx}, {name})", False
        if self.half(buf):
            return f"vload_half({idx}, {name})", False
        return f"{name}[{idx}]", False

    # ---------------------------------------------------------------- statements
    def stmt(self, s: Stmt):
        if isinstance(s, Seq):
            for x in s.stmts:
                self.stmt(x)
        elif isinstance(s, For):
            self.loop(s)
        elif isinstance(s, Store):
            self.store(s)
        elif isinstance(s, IfThenElse):
            cond = self.value(s.cond)[0]
            self.block(f"if ({cond}) {{", s.then)
            if s.other is not None:
                self.block("else {", s.other)
        elif isinstance(s, Allocate):
            b = s.buffer
            ty = self.ty(b.dtype, HALF if id(b) in self.half_acc else None)
            # "shared": one copy per work-group (compiler/topi/gpu_tile.py's tiles).
            space = "__local " if b.scope == "shared" else ""
            self.line(f"{space}{ty} {self.ident(b, b.name)}[{b.size}];")
            self.stmt(s.body)
        elif isinstance(s, Barrier):
            self.line("barrier(CLK_LOCAL_MEM_FENCE);")
        else:
            raise OpenCLCodegenError(f"{self.name}: no OpenCL rule for {type(s).__name__}")

    def block(self, head: str, body: Stmt):
        self.line(head)
        saved = self.nested
        self.nested, self.depth = True, self.depth + 1
        self.stmt(body)
        self.nested, self.depth = saved, self.depth - 1
        self.line("}")

    def loop(self, s: For):
        if s.extent <= 0:
            return
        var = self.ident(s.var, s.var.name)
        kind, _, dim = s.kind.partition(".")
        if kind in ID_BUILTINS:
            if self.nested:
                raise OpenCLCodegenError(f"{self.name}: loop {s.var.name} bound to {s.kind} "
                                         "is not outermost; bind only the outer loops")
            d = "xyz".index(dim)
            (self.launch.groups if kind == "blockIdx" else self.launch.local)[d] = s.extent
            self.line(f"const long {var} = (long){ID_BUILTINS[kind]}({d});")
            self.stmt(s.body)
            return
        dot = dot_loop(s) if self.vvar is None else None
        if dot is not None:
            self.dot4(s, *dot)
            return
        if s.kind == "vectorize" and self.vvar is None and _vectorizable(s):
            self.vvar, self.lanes = s.var, s.extent
            self.stmt(s.body)
            self.vvar, self.lanes = None, 1
            return
        if s.kind in ("unroll", "vectorize"):
            self.line("#pragma unroll")
        self.block(f"for (long {var} = 0; {var} < {s.extent}; ++{var}) {{", s.body)

    def dot4(self, s: For, guard: Expr | None, st: Store, a: Expr, b: Expr):
        """acc += one 4-way byte dot product (codegen/opencl_dot.py)."""
        if guard is not None:
            self.line(f"if ({self.value(guard)[0]}) {{")
            self.depth += 1
        ops = []
        for x in (a, b):
            ty = STORAGE[x.dtype]
            parts = [f"({ty})({self.value(e)[0]})" for e in lanes(x, s.var)]
            ops.append(f"(({ty}4)({', '.join(parts)}))")
        acc = f"{self.names[id(st.buffer)]}[{self.value(st.index)[0]}]"
        self.line(f"{acc} += {helper_name(a.dtype, b.dtype)}({ops[0]}, {ops[1]});")
        if guard is not None:
            self.depth -= 1
            self.line("}")

    def store(self, s: Store):
        buf = s.buffer
        name = self.names[id(buf)]
        r = self.value(s.value)
        # What the stored value must be: a half accumulator takes hf, a float one float;
        # half storage converts whatever it gets (TL_ST / TL_STV).
        kind = None
        if self.kinds is not None and _is_float(buf.dtype) and not self.half(buf):
            kind = HALF if id(buf) in self.half_acc else FLOAT
        macros = self.half(buf) and self.kinds is not None
        if self.vvar is not None:
            base = self.value(substitute(s.index, {self.vvar: const(0)}))[0]
            val = self.arg(s.value, r, kind, True)
            if macros:
                self.line(f"TL_STV({self.lanes}, {val}, 0, {name} + {base});")
                return
            fn = f"vstore_half{self.lanes}" if self.half(buf) else f"vstore{self.lanes}"
            self.line(f"{fn}({val}, 0, {name} + {base});")
            return
        idx = self.value(s.index)[0]
        val = self.arg(s.value, r, kind, False)
        if macros:
            self.line(f"TL_ST({val}, {idx}, {name});")
        elif self.half(buf):
            self.line(f"vstore_half({val}, {idx}, {name});")
        else:
            ty = "hf" if id(buf) in self.half_acc else STORAGE[buf.dtype]
            self.line(f"{name}[{idx}] = ({ty})({val});")

    def render(self, body: Stmt) -> str:
        for b in self.params:
            self.ident(b, b.name)
        self.stmt(body)
        params = [{"name": self.names[id(b)], "ctype": self.ctype(b)} for b in self.params]
        return _templates()[0].render(name=self.name, params=params, local=self.launch.local,
                                      body="\n".join(self.lines))


def _vectorizable(s: For) -> bool:
    """A vectorize loop becomes floatN code when every access is contiguous in the lane
    variable or independent of it, and the body is plain float arithmetic."""
    v = s.var
    if s.extent not in VECTOR_WIDTHS:
        return False
    stores = s.body.stmts if isinstance(s.body, Seq) else [s.body]
    for st in stores:
        if not isinstance(st, Store) or st.buffer.dtype not in FLOATS \
                or linear_coeff(st.index, v) != 1:
            return False
        stack = [st.value]
        while stack:
            x = stack.pop()
            if isinstance(x, Load):
                if x.buffer.dtype not in FLOATS:
                    return False
                c = linear_coeff(x.index, v)
                if c not in (0, 1) or (c == 0 and v in free_vars(x.index)):
                    return False
                continue
            if isinstance(x, Var) and x is v:
                return False
            if isinstance(x, Bin) and (x.op not in ("add", "sub", "mul", "div", "min", "max")
                                       or x.dtype not in FLOATS):
                return False
            if isinstance(x, Cast) and not (_is_float(x.dtype) and _is_float(x.x.dtype)):
                return False
            if isinstance(x, (Cmp, Not, Select)):
                return False
            if isinstance(x, Call) and x.fn not in CALLS and x.fn not in EXPANDED:
                return False
            stack.extend(children(x))
    return True


def emit_kernel(name: str, params: list[Buffer], body: Stmt, fp16_storage: bool = False
                ) -> tuple[str, Launch]:
    em = KernelEmitter(name, params, fp16_storage)
    if fp16_storage:
        em.half_acc = {id(b) for b in half_locals(body, em.half)}
    return em.render(body), em.launch


def emit_primfunc(pf: PrimFunc, stage_bodies: list[Stmt], fp16_storage: bool = False
                  ) -> list[tuple[str, Launch]]:
    """One OpenCL kernel per root stage of a fused kernel: stages depend on each other through
    global memory, and a kernel launch boundary is the only device-wide barrier."""
    out = []
    for j, body in enumerate(stage_bodies):
        name = pf.name if len(stage_bodies) == 1 else f"{pf.name}_s{j}"
        out.append(emit_kernel(name, pf.params, body, fp16_storage))
    return out


def render_module(kernels: list[str], name: str, target, fp16_storage: bool) -> str:
    from tilecc import __version__

    src = "\n".join(kernels)
    extensions = getattr(target, "extensions", ())
    dots = preamble(extensions) if "tl_dot4_" in src else ""
    halfs = half_preamble(extensions) if fp16_storage else ""
    return _templates()[1].render(version=__version__, name=name, target=target.name,
                                  fp16_storage=fp16_storage, fp64="double" in src,
                                  dots=dots, halfs=halfs, kernels=kernels)


# ------------------------------------------------------------------------------ model build
def lower_stages(sch, args, name: str) -> tuple[PrimFunc, list[Stmt]]:
    """Like schedule.lower, but keeps each root stage's loop nest apart."""
    from tilecc.schedule import kernel_buffers, lower_stage
    from tilecc.topi.gpu_tile import lower_tiled

    buffers, params, scratch = kernel_buffers(sch, args)
    bodies = [lower_tiled(st, buffers, st.local_tile) if getattr(st, "local_tile", None)
              else lower_stage(st, buffers) for st in sch.root_stages()]
    return PrimFunc(name, params, Seq(bodies), {"scratch": scratch}), bodies

"""The AOT entry: one native function that runs every kernel in order on a static arena.

Exports (C ABI, see runtime/artifact.py's header):
  int32_t <name>_init(const void *params, int64_t params_size);
  int32_t <name>_run(const void *const *inputs, void *const *outputs, void *workspace);
  int64_t <name>_workspace_size(void);
"""

from __future__ import annotations

from llvmlite import ir

from .llvm import I8, I32, I64, PTR, ModuleCodegen


def emit_entry(cg: ModuleCodegen, name: str, steps: list[tuple[ir.Function, list[tuple]]],
               workspace_size: int, params_size: int) -> None:
    """`steps`: (kernel, storage refs) in run order; a ref is ("in", i), ("out", j),
    ("param", byte offset) or ("arena", byte offset)."""
    m = cg.module
    params = ir.GlobalVariable(m, PTR, f"{name}_params")
    params.initializer = ir.Constant(PTR, None)
    params.linkage = "internal"

    init = ir.Function(m, ir.FunctionType(I32, [PTR, I64]), f"{name}_init")
    b = ir.IRBuilder(init.append_basic_block("entry"))
    ok = b.icmp_signed("==", init.args[1], I64(params_size))
    with b.if_then(b.not_(ok)):
        b.ret(I32(1))
    b.store(init.args[0], params)
    b.ret(I32(0))

    ws = ir.Function(m, ir.FunctionType(I64, []), f"{name}_workspace_size")
    ir.IRBuilder(ws.append_basic_block("entry")).ret(I64(workspace_size))

    run = ir.Function(m, ir.FunctionType(I32, [PTR, PTR, PTR]), f"{name}_run")
    inputs, outputs, work = run.args
    b = ir.IRBuilder(run.append_basic_block("entry"))
    # Not initialised: refuse to run rather than read through a null weights pointer.
    pbase = b.load(params, typ=PTR)
    if params_size:
        with b.if_then(b.icmp_unsigned("==", pbase, ir.Constant(PTR, None))):
            b.ret(I32(2))
    cache: dict[tuple, ir.Value] = {}

    def ptr(ref):
        if ref in cache:
            return cache[ref]
        kind, k = ref
        if kind in ("in", "out"):
            arr = inputs if kind == "in" else outputs
            v = b.load(b.gep(arr, [I64(k)], inbounds=True, source_etype=PTR), typ=PTR)
        else:
            base = pbase if kind == "param" else work
            v = b.gep(base, [I64(k)], inbounds=True, source_etype=I8)
        cache[ref] = v
        return v

    for fn, refs in steps:
        rc = b.call(fn, [ptr(r) for r in refs])
        with b.if_then(b.icmp_signed("!=", rc, I32(0))):
            b.ret(rc)
    b.ret(I32(0))

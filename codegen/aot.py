"""The AOT entry: one native function that runs every kernel in order on a static arena.

Exports (C ABI, see runtime/artifact.py's header):
  int32_t <name>_init(const void *params, int64_t params_size);
  int32_t <name>_run(const void *const *inputs, void *const *outputs, void *workspace);
  int64_t <name>_workspace_size(void);
Profiling builds (profile=True) also export
  int64_t <name>_profile[<name>_profile_count()];   nanoseconds per step, accumulated
  int64_t <name>_profile_count(void);
and time every kernel call with tilecc_now_ns() (runtime/c/tilecc_runtime.c). The table has
global state, so profiling builds are for measuring, not for deployment.

Every build also exports what it was built for (tilecc.runtime.libmeta: names, shapes,
dtypes, byte sizes, workspace/params sizes, ABI version), which loaders compare with model.json
before calling anything:
  const char    <name>_abi[];        JSON (hosted builds; bare metal keeps only the table)
  const int64_t <name>_abi_sizes[];  {abi, n_in, n_out, workspace, params, in..., out...}

Return codes (tilecc.errors.RUN_ERROR_CODES): 1 wrong params_size, 2 not initialised,
3 NULL inputs, 4 NULL outputs, 5 NULL workspace (when the model needs one), 6 NULL params;
any other non-zero code comes from a kernel and is passed through.
"""

from __future__ import annotations

from llvmlite import ir

from tilecc.runtime.libmeta import abi_json, abi_sizes, abi_sizes_symbol, abi_symbol

from .llvm import I8, I32, I64, PTR, ModuleCodegen

ERR_PARAMS_SIZE, ERR_NOT_INITIALIZED, ERR_NULL_INPUT, ERR_NULL_OUTPUT = 1, 2, 3, 4
ERR_NULL_WORKSPACE, ERR_NULL_PARAMS = 5, 6


def emit_abi(cg: ModuleCodegen, name: str, record: dict, with_json: bool = True) -> None:
    """Export `record` (libmeta.abi_record) as constant data: no function has to run to
    read it, so a loader can check it from the file before loading the library."""
    def constant(symbol: str, ty: ir.Type, value) -> None:
        g = ir.GlobalVariable(cg.module, ty, symbol)
        g.initializer = ir.Constant(ty, value)
        g.global_constant = True

    sizes = abi_sizes(record)
    constant(abi_sizes_symbol(name), ir.ArrayType(I64, len(sizes)), [I64(v) for v in sizes])
    if with_json:
        text = bytearray(abi_json(record))
        constant(abi_symbol(name), ir.ArrayType(I8, len(text) + 1), text + b"\0")


def emit_entry(cg: ModuleCodegen, name: str, steps: list[tuple[ir.Function, list[tuple]]],
               workspace_size: int, params_size: int, profile: bool = False,
               num_inputs: int | None = None, num_outputs: int | None = None) -> None:
    """`steps`: (kernel, storage refs) in run order; a ref is ("in", i), ("out", j),
    ("param", byte offset) or ("arena", byte offset). `num_inputs`/`num_outputs` (default: as
    many as the refs use) are the pointers `_run` checks for NULL before running anything."""
    m = cg.module
    if num_inputs is None:
        num_inputs = 1 + max((k for _, refs in steps for kind, k in refs if kind == "in"),
                             default=-1)
    if num_outputs is None:
        num_outputs = 1 + max((k for _, refs in steps for kind, k in refs if kind == "out"),
                              default=-1)
    params = ir.GlobalVariable(m, PTR, f"{name}_params")
    params.initializer = ir.Constant(PTR, None)
    params.linkage = "internal"

    init = ir.Function(m, ir.FunctionType(I32, [PTR, I64]), f"{name}_init")
    b = ir.IRBuilder(init.append_basic_block("entry"))
    ok = b.icmp_signed("==", init.args[1], I64(params_size))
    with b.if_then(b.not_(ok)):
        b.ret(I32(ERR_PARAMS_SIZE))
    if params_size:
        with b.if_then(b.icmp_unsigned("==", init.args[0], ir.Constant(PTR, None))):
            b.ret(I32(ERR_NULL_PARAMS))
    b.store(init.args[0], params)
    b.ret(I32(0))

    ws = ir.Function(m, ir.FunctionType(I64, []), f"{name}_workspace_size")
    ir.IRBuilder(ws.append_basic_block("entry")).ret(I64(workspace_size))

    run = ir.Function(m, ir.FunctionType(I32, [PTR, PTR, PTR]), f"{name}_run")
    inputs, outputs, work = run.args
    b = ir.IRBuilder(run.append_basic_block("entry"))
    # Not initialised: refuse to run rather than read through a null weights pointer.
    pbase = b.load(params, typ=PTR)
    null = ir.Constant(PTR, None)
    if params_size:
        with b.if_then(b.icmp_unsigned("==", pbase, null)):
            b.ret(I32(ERR_NOT_INITIALIZED))
    # Validate every pointer before the first kernel runs, so a bad call has no effect.
    for arr, count, code in ((inputs, num_inputs, ERR_NULL_INPUT),
                             (outputs, num_outputs, ERR_NULL_OUTPUT)):
        if not count:
            continue
        with b.if_then(b.icmp_unsigned("==", arr, null)):
            b.ret(I32(code))
        for k in range(count):
            p = b.load(b.gep(arr, [I64(k)], inbounds=True, source_etype=PTR), typ=PTR)
            with b.if_then(b.icmp_unsigned("==", p, null)):
                b.ret(I32(code))
    if workspace_size:
        with b.if_then(b.icmp_unsigned("==", work, null)):
            b.ret(I32(ERR_NULL_WORKSPACE))
    timer = table = None
    if profile:
        table_ty = ir.ArrayType(I64, max(len(steps), 1))
        table = ir.GlobalVariable(m, table_ty, f"{name}_profile")
        table.initializer = ir.Constant(table_ty, None)
        timer = ir.Function(m, ir.FunctionType(I64, []), "tilecc_now_ns")
        cnt = ir.Function(m, ir.FunctionType(I64, []), f"{name}_profile_count")
        ir.IRBuilder(cnt.append_basic_block("entry")).ret(I64(len(steps)))
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

    for k, (fn, refs) in enumerate(steps):
        args = [ptr(r) for r in refs]
        t0 = b.call(timer, []) if profile else None
        rc = b.call(fn, args)
        if profile:
            slot = b.gep(b.bitcast(table, ir.PointerType(I64)), [I64(k)], inbounds=True,
                         source_etype=I64)
            spent = b.sub(b.call(timer, []), t0)
            b.store(b.add(b.load(slot, typ=I64), spent), slot)
        with b.if_then(b.icmp_signed("!=", rc, I32(0))):
            b.ret(rc)
    b.ret(I32(0))

"""`tilecc inspect`: a summary a person can read (target, tensors, memory, one line per
kernel), every tensor with -v, model.json itself with --json, and the graph drawings."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tilecc.cli_io import atomic_write
from tilecc.errors import InputError, TileccError, format_bytes

# Bytes per element of the dtypes tilecc stores; numpy does not know the float8 names.
_ITEMSIZE = {"float64": 8, "int64": 8, "uint64": 8, "float32": 4, "int32": 4, "uint32": 4,
             "float16": 2, "bfloat16": 2, "int16": 2, "uint16": 2, "bool": 1}


def memory_report(mem: dict) -> str:
    """One line: what a bare-metal model needs in flash and RAM."""
    s = format_bytes
    return (f"memory: code {s(mem['code_bytes'])} (.text {s(mem['text_bytes'])} + "
            f".rodata {s(mem['rodata_bytes'])}), weights {s(mem['weights_bytes'])}, "
            f"arena {s(mem['arena_bytes'])}, static data {s(mem['data_bytes'])}"
            + (f", stack ~{s(mem['stack_bytes'])}; flash {s(mem['flash_bytes'])}, "
               f"RAM {s(mem['ram_bytes'])}" if "stack_bytes" in mem else ""))


def memory_table(mem: dict) -> str:
    """The memory report as a markdown table (docs/deploy-c.md; tests/test_docs.py)."""
    return ("| code (.text + .rodata) | weights | arena | static data |\n|---|---|---|---|\n"
            f"| {mem['code_bytes']:,} B ({mem['text_bytes']:,} + {mem['rodata_bytes']:,}) | "
            f"{mem['weights_bytes']:,} B | {mem['arena_bytes']:,} B | {mem['data_bytes']:,} B |")


def _parse_type(text: str) -> tuple[str, list[int]]:
    """'float16[8,3,3,8]' -> ('float16', [8, 3, 3, 8])."""
    dtype, _, dims = text.partition("[")
    dims = dims.rstrip("]")
    return dtype, [int(d) for d in dims.split(",") if d]


def _nbytes(dtype: str, shape: list[int]) -> int:
    n = _ITEMSIZE.get(dtype, 1)
    for d in shape:
        n *= d
    return n


def _dims(shape: list[int]) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


def _unplanned_bytes(arena: dict) -> int | None:
    """Bytes all intermediate tensors would need without memory planning."""
    if isinstance(arena.get("naive_bytes"), int):
        return arena["naive_bytes"]
    sizes = [t.get("nbytes") for t in arena.get("tensors") or [] if isinstance(t, dict)]
    ints = [n for n in sizes if isinstance(n, int)]
    return sum(ints) if ints and len(ints) == len(sizes) else None


def _table(rows: list[tuple], indent: str = "  ") -> list[str]:
    widths = [max(len(str(r[k])) for r in rows) for k in range(len(rows[0]))]
    return [(indent + "  ".join(f"{c!s:<{w}}" for c, w in zip(r, widths))).rstrip()
            for r in rows]


def _precision(meta: dict) -> str:
    return meta.get("precision") or (meta.get("arena") or {}).get("precision") or "fp32"


def _schedule(k: dict) -> str:
    """Template, where its config came from (default / log / transfer) and the knobs."""
    if not k.get("workload"):
        return "-"
    try:
        template = json.loads(k["workload"]).get("template", "?")
    except (TypeError, ValueError):
        template = "?"
    knobs = ",".join(f"{a}={b}" for a, b in sorted((k.get("config") or {}).items()))
    return f"{template} {k.get('config_source', '?')}" + (f" {knobs}" if knobs else "")


def summary(path: str, meta: dict, sizes: dict[str, int], verbose: int) -> list[str]:
    target = meta.get("target") or {}
    arena = meta.get("arena") or {}
    vec = f", {target['vector_bits']}-bit vectors" if target.get("vector_bits") else ""
    lines = [(f"{path}: model {meta['name']}, precision {_precision(meta)}, tilecc "
             f"{meta.get('tilecc_version', '?')} (format {meta['format_version']})"),
             (f"target: {target.get('name', '?')} ({target.get('triple', '?')}, cpu "
             f"{target.get('cpu', '?')}{vec}"
             f"{', bare metal' if target.get('bare_metal') else ''})"), ""]
    rows: list[tuple] = [("", "name", "dtype", "shape")]
    for kind in ("inputs", "outputs"):
        rows += [(kind[:-1], s["name"], s["dtype"], _dims(s["shape"])) for s in meta[kind]]
    lines += _table(rows, "") + [""]

    by_dtype: dict[str, list[int]] = {}
    for p in arena.get("params") or []:
        dtype, shape = _parse_type(p["type"])
        entry = by_dtype.setdefault(dtype, [0, 0])
        entry[0] += _nbytes(dtype, shape)
        entry[1] += 1
    parts = ", ".join(f"{d} {format_bytes(b)} in {n} tensor(s)"
                      for d, (b, n) in sorted(by_dtype.items()))
    lines.append(f"params: {format_bytes(meta['params_size'])} in params.bin (64-byte "
                 f"aligned){': ' + parts if parts else ''}")
    line = f"arena: {format_bytes(meta['workspace_size'])}"
    unplanned = _unplanned_bytes(arena)
    if unplanned:
        line += (f" for {len(arena.get('tensors') or [])} intermediate tensor(s) of "
                 f"{format_bytes(unplanned)} ({100 * meta['workspace_size'] / unplanned:.0f}%"
                 " after reuse)")
    lines.append(line)
    if meta.get("memory"):
        lines.append(memory_report(meta["memory"]))
    lines.append("files: " + ", ".join(f"{n} {format_bytes(sizes[n])}" for n in sorted(sizes)))

    kernels = meta.get("kernels") or []
    if kernels:
        unique = len({k["kernel"] for k in kernels})
        lines += ["", f"kernels: {len(kernels)} call(s) of {unique} compiled kernel(s)"]
        rows = [("#", "kernel", "fused ops", "output", "MFLOP", "schedule")]
        rows += [(i, k["kernel"], "+".join(k.get("ops") or []), _dims(k.get("shape") or []),
                  f"{(k.get('flops') or 0) / 1e6:.3f}", _schedule(k))
                 for i, k in enumerate(kernels)]
        lines += _table(rows)
    if verbose:
        lines += _details(arena)
    else:
        lines += ["", "(-v: every tensor and parameter; --json: all of model.json)"]
    return lines


def _details(arena: dict) -> list[str]:
    lines = []
    tensors = arena.get("tensors") or []
    if tensors:
        lines += ["", "arena tensors (offset, bytes, live from kernel step to step):"]
        lines += _table([("name", "offset", "bytes", "steps")] + [
            (t.get("name", "?"), t.get("offset", "?"), t.get("nbytes", t.get("size", "?")),
             f"{t.get('first', '?')}-{t.get('last', '?')}")
            for t in tensors])
    params = arena.get("params") or []
    if params:
        lines += ["", "params (offset in params.bin):"]
        lines += _table([("name", "offset", "type")] +
                        [(p["name"], p["offset"], p["type"]) for p in params])
    aliases = arena.get("aliases") or {}
    if aliases:
        lines += ["", "aliases (views sharing storage): " +
                  ", ".join(f"{a} -> {b}" for a, b in aliases.items())]
    return lines


def draw(args: argparse.Namespace, meta: dict, params: bytes | None, say) -> int:
    from tilecc import viz

    if not meta.get("kernels"):
        raise InputError(f"{args.artifact}: no kernel list in model.json, nothing to draw")
    if args.graph:
        suffix = Path(args.graph).suffix.lower()
        render = {".html": viz.to_html, ".htm": viz.to_html, ".svg": viz.to_svg,
                  ".dot": viz.to_dot, ".gv": viz.to_dot}.get(suffix)
        if render is None:
            raise InputError(f"--graph {args.graph}: use a .html, .svg or .dot file name")
        atomic_write(args.graph, render(meta).encode())
        say(f"wrote {args.graph}")
    if args.export_onnx:
        import onnx

        try:
            model = viz.to_onnx(meta, params)
        except onnx.checker.ValidationError as e:
            raise TileccError(f"the exported graph fails onnx.checker: {e}") from None
        atomic_write(args.export_onnx, model.SerializeToString())
        say(f"wrote {args.export_onnx} ({len(model.graph.node)} nodes, domain tilecc)")
    return 0


def cmd_inspect(args: argparse.Namespace, say) -> int:
    from tilecc.runtime.artifact import PARAMS_PATH, ArtifactReader

    with ArtifactReader(args.artifact) as reader:
        meta = reader.metadata
        sizes = {name: reader.size(name) for name in reader.names()}
        if args.graph or args.export_onnx:
            params = reader.read(PARAMS_PATH) if args.export_onnx and \
                reader.has(PARAMS_PATH) else None
            return draw(args, meta, params, say)
    if args.json:
        print(json.dumps(meta, indent=2))
        return 0
    print("\n".join(summary(args.artifact, meta, sizes, args.verbose)))
    return 0

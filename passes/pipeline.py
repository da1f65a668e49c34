"""The build's graph pass pipeline: every graph transformation from import to kernels, as
named passes in one ordered list, each with the lowest `-O` level it runs at.

  -O0  what correctness needs: QDQ lowering, constant folding, dead-code elimination,
       quantization when asked, weight packing, output copies; no fusion (one kernel per op);
       LLVM does no optimisation. For debugging a miscompile.
  -O1  + graph simplification (patterns, BatchNorm and scale/shift folding, Reshape chains)
       and elementwise fusion; activations stay in plain NCHW; LLVM's -O1 pipeline.
  -O2  + the blocked NCHW{b}c activation layout; LLVM's -O3 pipeline. The default.
  -O3  + float reductions may be reassociated (LLVM `reassoc`/`nsz` on reduction updates):
       scalar sums such as Softmax's or LayerNorm's vectorise; results may differ from -O2
       in the last bits (as onnxruntime's own vectorised reductions do); NaN and infinity
       still propagate.

Passes take (graph, ctx) and return a new graph; `PassContext` carries what they may read
(the target, the quantization options, the -O level) and the pipeline's own switches
(print the IR after named passes, verify after each). `--print-ir-after` accepts any name
in `pass_names()`, `fuse_ops` included (the driver runs it, through `run_pass`, on the
prepared graph).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from tilecc.graph import Graph, verify

from .blocked_layout import to_blocked_layout
from .fold import eliminate_dead_code, fold_constants
from .fuse import fuse_ops
from .layout import pack_weights
from .outputs import prepare_outputs
from .patterns import rewrite_patterns
from .quant_dot import pack_qweights_s7
from .quant_pack import pack_qweights
from .quantize import lower_qdq, quantize_ptq
from .simplify import fold_batchnorm, fold_scale_shift, simplify_reshapes


@dataclass
class PassContext:
    """What one build's passes share. `out_names` is filled by `prepare_outputs` (the model's
    output names before output copies renamed them)."""

    opt_level: int = 2
    target: Any = None
    quant: Any = None  # passes.quantize.QuantOptions, for int8 post-training quantization
    blocked: bool = True  # False keeps plain NCHW at every level (per-layer comparisons)
    print_ir_after: set[str] = field(default_factory=set)
    verify_each: bool = False
    out: TextIO | None = None
    out_names: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GraphPass:
    name: str
    run: Callable[[Graph, PassContext], Graph]
    opt_level: int  # the lowest -O level it runs at
    enabled: Callable[[PassContext], bool] = lambda ctx: True


def _prepare_outputs(g: Graph, ctx: PassContext) -> Graph:
    ctx.out_names = list(g.outputs)
    return prepare_outputs(g)


PASSES: list[GraphPass] = [
    # Before folding, which would turn QDQ-quantized weights into float ones.
    GraphPass("lower_qdq", lambda g, c: lower_qdq(g), 0),
    GraphPass("fold_constants", lambda g, c: fold_constants(g), 0),
    GraphPass("rewrite_patterns", lambda g, c: rewrite_patterns(g), 1),
    GraphPass("fold_batchnorm", lambda g, c: fold_batchnorm(g), 1),
    GraphPass("fold_scale_shift", lambda g, c: fold_scale_shift(g), 1),
    GraphPass("simplify_reshapes", lambda g, c: simplify_reshapes(g), 1),
    GraphPass("fold_constants", lambda g, c: fold_constants(g), 0),
    GraphPass("eliminate_dead_code", lambda g, c: eliminate_dead_code(g), 0),
    GraphPass("quantize_ptq", lambda g, c: quantize_ptq(g, c.quant, c.target), 0,
              lambda c: c.quant is not None),
    GraphPass("to_blocked_layout", lambda g, c: to_blocked_layout(g, c.target), 2,
              lambda c: c.blocked),
    GraphPass("pack_weights", lambda g, c: pack_weights(g, c.target), 0),
    GraphPass("pack_qweights_s7", lambda g, c: pack_qweights_s7(g, c.target), 0),
    GraphPass("pack_qweights", lambda g, c: pack_qweights(g, c.target), 0),
    GraphPass("prepare_outputs", _prepare_outputs, 0),
]

# Run by the driver on the prepared graph: its result is the graph of fused kernels.
FUSE = GraphPass("fuse_ops", lambda g, c: fuse_ops(g, elementwise=c.opt_level >= 1), 0)


def pass_names() -> list[str]:
    return list(dict.fromkeys([p.name for p in PASSES] + [FUSE.name]))


def run_pass(p: GraphPass, graph: Graph, ctx: PassContext) -> Graph:
    """One pass, with the context's verification and IR printing."""
    graph = p.run(graph, ctx)
    if ctx.verify_each:
        verify(graph)
    if p.name in ctx.print_ir_after:
        out = sys.stderr if ctx.out is None else ctx.out
        print(f"// IR after {p.name}", file=out)
        print(graph, file=out)
    return graph


def check_pass_names(names) -> None:
    unknown = set(names or ()) - set(pass_names())
    if unknown:
        raise ValueError(f"--print-ir-after: unknown pass(es) {sorted(unknown)}; passes are "
                         f"{pass_names()}")


def run_pipeline(graph: Graph, ctx: PassContext) -> Graph:
    """Every pass of PASSES that runs at ctx.opt_level, in order."""
    check_pass_names(ctx.print_ir_after)
    for p in PASSES:
        if ctx.opt_level >= p.opt_level and p.enabled(ctx):
            graph = run_pass(p, graph, ctx)
    return graph


def run_passes(graph: Graph, opt_level: int = 2, print_ir_after: set[str] | None = None,
               verify_each: bool = False, out: TextIO | None = None, target=None,
               quant=None) -> Graph:
    """The pipeline for `opt_level` with a fresh context (see the module docstring)."""
    ctx = PassContext(opt_level=opt_level, target=target, quant=quant,
                      print_ir_after=set(print_ir_after or ()), verify_each=verify_each,
                      out=out)
    return run_pipeline(graph, ctx)

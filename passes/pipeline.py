"""The ordered graph pass pipeline: named `Graph -> Graph` functions run in a straight line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from tilecc.graph import Graph, verify

from .fold import eliminate_dead_code, fold_constants
from .patterns import rewrite_patterns
from .simplify import fold_batchnorm, fold_scale_shift, simplify_reshapes

Pass = Callable[[Graph], Graph]

PASSES: list[tuple[str, Pass]] = [
    ("fold_constants", fold_constants),
    ("rewrite_patterns", rewrite_patterns),
    ("fold_batchnorm", fold_batchnorm),
    ("fold_scale_shift", fold_scale_shift),
    ("simplify_reshapes", simplify_reshapes),
    ("fold_constants", fold_constants),
    ("eliminate_dead_code", eliminate_dead_code),
]

# Passes that only remove work the model states explicitly; safe at every opt level.
BASIC = {"fold_constants", "eliminate_dead_code"}


def run_passes(graph: Graph, opt_level: int = 2, print_ir_after: set[str] | None = None,
               verify_each: bool = False, out: TextIO | None = None) -> Graph:
    """Run the pipeline for `opt_level` (0: folding and DCE only) and return the new graph."""
    out = sys.stderr if out is None else out
    print_ir_after = print_ir_after or set()
    unknown = print_ir_after - {name for name, _ in PASSES}
    if unknown:
        raise ValueError(f"--print-ir-after: unknown pass(es) {sorted(unknown)}; passes are "
                         f"{[name for name, _ in PASSES]}")
    for name, fn in PASSES:
        if opt_level == 0 and name not in BASIC:
            continue
        graph = fn(graph)
        if verify_each:
            verify(graph)
        if name in print_ir_after:
            print(f"// IR after {name}", file=out)
            print(graph, file=out)
    return graph

"""Graph-level op definitions: a shape rule and numpy semantics for constant folding.

Each op family file registers its canonical ops (docs/ops.md) with `register_op`. The numpy
`fold` is used only to fold constant subgraphs at compile time; it never runs a model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np

from ..graph import TensorType

InferFn = Callable[[list[TensorType], dict], list[TensorType]]
FoldFn = Callable[[list[np.ndarray], dict], list[np.ndarray]]


class Pattern(Enum):
    """How an op takes part in fusion: an ELEMWISE op (one output element from the same
    element of each broadcast input) joins its producer's kernel as an epilogue; every other
    op starts a kernel of its own (OPAQUE)."""

    ELEMWISE = "elemwise"
    OPAQUE = "opaque"


@dataclass(frozen=True)
class OpDef:
    name: str
    infer: InferFn
    fold: FoldFn | None = None
    pattern: Pattern = Pattern.OPAQUE


OPS: dict[str, OpDef] = {}


def register_op(name: str, infer: InferFn, fold: FoldFn | None = None,
                pattern: Pattern = Pattern.OPAQUE) -> OpDef:
    if name in OPS:
        raise ValueError(f"op {name} registered twice")
    OPS[name] = OpDef(name, infer, fold, pattern)
    return OPS[name]


def ops_with(pattern: Pattern) -> frozenset[str]:
    """The names of every registered op of a fusion pattern: what passes read instead of
    keeping their own lists of op names."""
    _load_all()
    return frozenset(name for name, d in OPS.items() if d.pattern is pattern)


def get_op(name: str) -> OpDef:
    _load_all()
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"no op definition for {name!r}") from None


def _load_all() -> None:
    # Import the family modules once so their registrations run.
    from . import _families  # noqa: F401

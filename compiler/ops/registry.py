"""Graph-level op definitions: a shape rule and numpy semantics for constant folding.

Each op family file registers its canonical ops (docs/ops.md) with `register_op`. The numpy
`fold` is used only to fold constant subgraphs at compile time; it never runs a model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..graph import TensorType

InferFn = Callable[[list[TensorType], dict], list[TensorType]]
FoldFn = Callable[[list[np.ndarray], dict], list[np.ndarray]]


@dataclass(frozen=True)
class OpDef:
    name: str
    infer: InferFn
    fold: FoldFn | None = None


OPS: dict[str, OpDef] = {}


def register_op(name: str, infer: InferFn, fold: FoldFn | None = None) -> OpDef:
    if name in OPS:
        raise ValueError(f"op {name} registered twice")
    OPS[name] = OpDef(name, infer, fold)
    return OPS[name]


def get_op(name: str) -> OpDef:
    _load_all()
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"no op definition for {name!r}") from None


def _load_all() -> None:
    # Import the family modules once so their registrations run.
    from . import _families  # noqa: F401

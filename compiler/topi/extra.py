"""TE computes for the ops of compiler/ops/extra.py: CumProd."""

from __future__ import annotations

from .. import te
from .index import cumulative

cumulative("CumProd", te.prod, 1)

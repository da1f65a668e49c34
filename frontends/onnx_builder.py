"""Shared pieces of the ONNX frontend: errors, the converter table and the graph builder.

Converters (frontends/onnx_converters.py) emit canonical nodes (docs/ops.md) through a
`Builder`, which infers every output type with the op's shape rule and folds nodes whose
inputs are all constant right away, so shape subgraphs collapse while converting and later
converters can read static shapes, axes and bounds as plain numpy values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tilecc.errors import ModelError, UnsupportedError
from tilecc.graph import Graph, Node, TensorType
from tilecc.ops.registry import get_op

from .validate import check_tensor_types


class FrontendError(ModelError):
    """The model cannot be imported; the message says what, where and what to do."""


class UnsupportedOpsError(FrontendError, UnsupportedError):
    """The model uses ops (or op versions) with no converter; lists all of them at once."""

    def __init__(self, unsupported: dict[str, list[str]], opset: int):
        self.unsupported = unsupported
        lines = [f"  {op}: used by {', '.join(names)}" for op, names in sorted(unsupported.items())]
        super().__init__(
            f"the model (opset {opset}) uses {len(unsupported)} op type(s) tilecc cannot "
            "import:\n" + "\n".join(lines) +
            "\nexport the model with supported ops (docs/ops.md lists them) or add converters "
            "in frontends/onnx_converters.py")


Converter = Callable[..., list[str]]
# ONNX op type -> {first opset version the converter handles: converter}
CONVERTERS: dict[str, dict[int, Converter]] = {}


def converter(op_type: str, *versions: int):
    """Register `fn` as the converter of `op_type` from each given opset version on."""
    def deco(fn: Converter) -> Converter:
        table = CONVERTERS.setdefault(op_type, {})
        for v in versions or (1,):
            table[v] = fn
        return fn
    return deco


def pick_converter(op_type: str, opset: int) -> Converter | None:
    table = CONVERTERS.get(op_type, {})
    usable = [v for v in table if v <= opset]
    return table[max(usable)] if usable else None


# Inputs of one Concat node: its kernel selects among its inputs with one nested select per
# input, and a 10k-input Concat's expression overflowed the recursion of every walker. Wider
# concats become a tree of Concats (log_64 levels, copies of small parts).
MAX_CONCAT_INPUTS = 64
# Nodes If/Loop bodies may be converted into, in total: nested Loops multiply their trip
# counts (30 nested loops of 2 trips are 2^30 bodies), so unrolling needs one budget.
MAX_UNROLLED_NODES = 100_000


class Builder:
    """Accumulates canonical nodes and constants while the converters run."""

    def __init__(self, graph: Graph, opset: int, reserved: set[str]):
        self.graph = graph
        self.opset = opset
        self._used = set(reserved) | set(graph.types)
        self.where = ""  # "node 'name' (OpType)" of the ONNX node being converted
        self.node_name = ""
        # ONNX value name -> graph value name, set by from_onnx; If/Loop bodies resolve
        # outer-scope names through it.
        self.env: dict[str, str] = {}
        self.unrolled_nodes = 0  # subgraph nodes converted so far (MAX_UNROLLED_NODES)
        self._next: dict[str, int] = {}  # next suffix per base name

    # -- names and values -----------------------------------------------------------------
    def fresh(self, base: str) -> str:
        # Counting on from the last suffix: restarting at 0 made 10k values of one base
        # (an unrolled loop's "iter" constants) quadratic.
        name, i = base, self._next.get(base, 0)
        if i:
            name = f"{base}_{i}"
        while name in self._used:
            i += 1
            name = f"{base}_{i}"
        self._next[base] = i + 1
        self._used.add(name)
        return name

    def type(self, value: str) -> TensorType:
        return self.graph.types[value]

    def shape(self, value: str) -> tuple[int, ...]:
        return self.graph.types[value].shape

    def const(self, value: str) -> np.ndarray | None:
        return self.graph.consts.get(value) if value else None

    def static(self, value: str, what: str) -> np.ndarray:
        """The constant value of a node input that tilecc needs at compile time."""
        arr = self.const(value)
        if arr is None:
            raise FrontendError(
                f"{self.where}: input {what} ({value!r}) must be a compile-time constant but is "
                "computed at run time; make it an initializer or pass --input-shape so shape "
                "computations fold")
        return arr

    def add_const(self, value: np.ndarray, base: str = "const") -> str:
        name = self.fresh(base)
        arr = np.asarray(value, order="C")
        self.graph.consts[name] = arr
        self.graph.types[name] = TensorType(tuple(int(d) for d in arr.shape), arr.dtype.name)
        return name

    def resolve_inputs(self, names, missing: str) -> list[str]:
        """Graph value names for a node's ONNX input names through `env` ("" stays "");
        an undefined one is an error saying `missing`."""
        ins = []
        for x in names:
            if x and x not in self.env:
                raise self.error(f"input {x!r} {missing}")
            ins.append(self.env[x] if x else "")
        return ins

    def error(self, msg: str) -> FrontendError:
        return FrontendError(f"{self.where}: {msg}")

    # -- nodes ----------------------------------------------------------------------------
    def emit(self, op: str, inputs: list[str], attrs: dict | None = None,
             n_out: int = 1) -> list[str]:
        attrs = dict(attrs or {})
        if op == "Concat" and len(inputs) > MAX_CONCAT_INPUTS:
            parts = [self.emit(op, list(inputs[k:k + MAX_CONCAT_INPUTS]), attrs)[0]
                     for k in range(0, len(inputs), MAX_CONCAT_INPUTS)]
            return self.emit(op, parts, attrs)
        opdef = get_op(op)
        types = [self.graph.types[i] for i in inputs]
        try:
            out_types = opdef.infer(types, attrs)
        except ValueError as e:
            raise self.error(f"{e} (while emitting {op})") from None
        # Before folding allocates: an absurd shape becomes a clear error, not a MemoryError.
        check_tensor_types(out_types, f"{self.where} ({op})" if self.where else op)
        base = self.node_name or op
        if opdef.fold is not None and all(i in self.graph.consts for i in inputs):
            arrays = opdef.fold([self.graph.consts[i] for i in inputs], attrs)
            outs = []
            for arr, t in zip(arrays, out_types):
                arr = np.asarray(arr)
                if tuple(arr.shape) != t.shape or arr.dtype.name != t.dtype:
                    raise self.error(f"internal: {op} fold gave {arr.dtype.name}"
                                     f"{list(arr.shape)}, shape rule says {t}")
                outs.append(self.add_const(arr, base))
            return outs
        outs = [self.fresh(base) for _ in range(n_out)]
        for o, t in zip(outs, out_types):
            self.graph.types[o] = t
        self.graph.nodes.append(Node(op, tuple(inputs), tuple(outs), attrs, self.node_name))
        return outs

    def rename(self, old: str, new: str, since: int) -> None:
        """Give value `old` (created by nodes[since:] or as a fresh constant) the name `new`."""
        g = self.graph
        g.types[new] = g.types.pop(old)
        if old in g.consts:
            g.consts[new] = g.consts.pop(old)
        for k in range(since, len(g.nodes)):
            n = g.nodes[k]
            if old in n.inputs or old in n.outputs:
                g.nodes[k] = n.replace(
                    inputs=tuple(new if i == old else i for i in n.inputs),
                    outputs=tuple(new if o == old else o for o in n.outputs))
        self._used.add(new)

"""Fuzz worker: mutates small valid ONNX models and pushes each mutant through tilecc.

Run as `python fuzz_worker.py START END STATUS_FILE`. For every case it appends lines to
STATUS_FILE (flushed, so the parent still sees them if this process dies):
    start <case>
    done <case> <outcome> <mutation> <detail>
outcome: ran (compiled and ran; outputs match onnxruntime where it runs the mutant), norefer
(compiled and ran; onnxruntime refused the mutant, so only crash-freedom is checked), rejected
(a TileccError subclass), bad (any other exception: a tilecc bug), wrong (outputs differ from
onnxruntime's). A `start` with no `done` means the process crashed or hung on that case.

Every case is deterministic in its number: the mutation kind is `case % len(MUTATIONS)`, the
base model `(case // len(MUTATIONS)) % len(bases)`, and the mutation draws from
np.random.default_rng(case).
"""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
# The parent sets TILECC_MAX_MEMORY_BYTES low (16 MiB): a mutant with a huge shape must then be
# refused by tilecc's own memory check, and plausible-but-big ones stay quick to run.


def _model(nodes, inputs, outputs, inits=(), opset=OPSET) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "fuzz", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _vi(name, shape, et=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, et, shape)


def _w(name, shape, seed=0):
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def _i64(name, values):
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def _single(op, in_shape, out_shape=None, inits=(), extra_inputs=(), **attrs):
    ins = ["x", *extra_inputs]
    node = helper.make_node(op, ins, ["y"], name=op.lower(), **attrs)
    return _model([node], [_vi("x", in_shape)], [_vi("y", out_shape)], inits)


def _bases() -> list[tuple[str, onnx.ModelProto]]:
    from tests.models import builders

    b = [
        ("conv_relu", _model(
            [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1],
                              strides=[1, 1], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c"], ["y"], name="relu")],
            [_vi("x", [1, 3, 8, 8])], [_vi("y", None)],
            [_w("w", [4, 3, 3, 3]), _w("b", [4], 1)])),
        ("gemm", _single("Gemm", [2, 8], inits=[_w("w", [8, 5]), _w("b", [5], 1)],
                         extra_inputs=["w", "b"], alpha=0.5, beta=1.0, transB=0)),
        ("matmul_add", _model(
            [helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
             helper.make_node("Add", ["m", "b"], ["y"], name="add")],
            [_vi("x", [3, 4, 6])], [_vi("y", None)], [_w("w", [6, 7]), _w("b", [7], 2)])),
        ("softmax", _single("Softmax", [2, 3, 5], axis=-1)),
        ("maxpool", _single("MaxPool", [1, 2, 7, 7], kernel_shape=[3, 3], strides=[2, 2],
                            pads=[1, 1, 1, 1])),
        ("avgpool", _single("AveragePool", [1, 2, 6, 6], kernel_shape=[2, 2], strides=[2, 2],
                            count_include_pad=0)),
        ("reshape_transpose", _model(
            [helper.make_node("Reshape", ["x", "s"], ["r"], name="reshape"),
             helper.make_node("Transpose", ["r"], ["y"], name="transpose", perm=[2, 0, 1])],
            [_vi("x", [2, 12])], [_vi("y", None)], [_i64("s", [2, 3, 4])])),
        ("concat_slice", _model(
            [helper.make_node("Concat", ["x", "c"], ["k"], name="concat", axis=1),
             helper.make_node("Slice", ["k", "st", "en", "ax"], ["y"], name="slice")],
            [_vi("x", [2, 3, 4])], [_vi("y", None)],
            [_w("c", [2, 2, 4]), _i64("st", [1]), _i64("en", [4]), _i64("ax", [1])])),
        ("gather_reduce", _model(
            [helper.make_node("Gather", ["x", "idx"], ["g"], name="gather", axis=1),
             helper.make_node("ReduceMean", ["g"], ["y"], name="rmean", axes=[2], keepdims=1)],
            [_vi("x", [2, 5, 4])], [_vi("y", None)], [_i64("idx", [0, 4, 2])])),
        ("batchnorm_clip", _model(
            [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["n"],
                              name="bn", epsilon=1e-5),
             helper.make_node("Clip", ["n", "lo", "hi"], ["y"], name="clip")],
            [_vi("x", [1, 3, 4, 4])], [_vi("y", None)],
            [_w("s", [3]), _w("b", [3], 1), _w("m", [3], 2),
             numpy_helper.from_array(np.abs(np.random.default_rng(3).standard_normal(3))
                                     .astype(np.float32) + 0.5, "v"),
             numpy_helper.from_array(np.float32(-0.5), "lo"),
             numpy_helper.from_array(np.float32(0.5), "hi")])),
        ("pad_split", _model(
            [helper.make_node("Pad", ["x", "p"], ["q"], name="pad", mode="constant"),
             helper.make_node("Split", ["q", "sp"], ["y", "z"], name="split", axis=1)],
            [_vi("x", [1, 4, 3])], [_vi("y", None), _vi("z", None)],
            [_i64("p", [0, 0, 1, 0, 0, 1]), _i64("sp", [2, 2])])),
        ("elementwise", _model(
            [helper.make_node("Sigmoid", ["x"], ["s"], name="sig"),
             helper.make_node("Mul", ["x", "s"], ["m"], name="mul"),
             helper.make_node("LeakyRelu", ["m"], ["l"], name="lrelu", alpha=0.1),
             helper.make_node("Unsqueeze", ["l", "ua"], ["y"], name="unsq")],
            [_vi("x", [3, 5])], [_vi("y", None)], [_i64("ua", [0])])),
        # Real (small) networks from the test builders: many nodes, shared weights, BN folds.
        ("ds_cnn_kws", builders.ds_cnn_kws(seed=1)),
        ("resnet_block", builders.resnet_block_model(seed=1)),
    ]
    return b


_ATTR_TYPES = [onnx.AttributeProto.INT, onnx.AttributeProto.FLOAT, onnx.AttributeProto.INTS,
               onnx.AttributeProto.STRING, onnx.AttributeProto.FLOATS]


def _random_attr(name: str, rng) -> onnx.AttributeProto:
    kind = _ATTR_TYPES[rng.integers(len(_ATTR_TYPES))]
    if kind == onnx.AttributeProto.INT:
        return helper.make_attribute(name, int(rng.choice([-3, -1, 0, 1, 2, 3, 7, 1 << 40])))
    if kind == onnx.AttributeProto.FLOAT:
        return helper.make_attribute(name, float(rng.choice([-1.0, 0.0, 0.5, 1e30, np.nan])))
    if kind == onnx.AttributeProto.INTS:
        n = int(rng.integers(0, 6))
        return helper.make_attribute(name, [int(v) for v in rng.integers(-2, 5, n)],
                                     attr_type=onnx.AttributeProto.INTS)
    if kind == onnx.AttributeProto.FLOATS:
        return helper.make_attribute(name, [float(v) for v in rng.standard_normal(2)])
    return helper.make_attribute(name, str(rng.choice(["", "NOTSET", "SAME_UPPER", "edge",
                                                       "\u00e9"])))


def _edit_attr(m: onnx.ModelProto, rng) -> str:
    nodes = list(m.graph.node)
    n = nodes[rng.integers(len(nodes))]
    if n.attribute and rng.random() < 0.8:
        k = int(rng.integers(len(n.attribute)))
        old = n.attribute[k]
        if rng.random() < 0.5:
            new = _random_attr(old.name, rng)  # type and value
        else:
            new = onnx.AttributeProto()
            new.CopyFrom(old)  # value only, same type
            if new.type == onnx.AttributeProto.INT:
                new.i = int(rng.choice([-2, -1, 0, 1, 2, 5, 100]))
            elif new.type == onnx.AttributeProto.INTS:
                del new.ints[:]
                new.ints.extend(int(v) for v in rng.integers(-3, 6, int(rng.integers(0, 7))))
            elif new.type == onnx.AttributeProto.FLOAT:
                new.f = float(rng.choice([-1.0, 0.0, 1e-12, 1e38, np.inf]))
            else:
                new = _random_attr(old.name, rng)
        n.attribute[k].CopyFrom(new)
        return f"attr {n.name}.{old.name}"
    name = str(rng.choice(["axis", "pads", "perm", "keepdims", "bogus", "group", "alpha"]))
    n.attribute.append(_random_attr(name, rng))
    return f"attr+ {n.name}.{name}"


def _edit_shape(m: onnx.ModelProto, rng) -> str:
    choices = [(d, "input") for vi in m.graph.input
               for d in vi.type.tensor_type.shape.dim]
    if rng.random() < 0.5 and m.graph.initializer:
        t = m.graph.initializer[int(rng.integers(len(m.graph.initializer)))]
        arr = numpy_helper.to_array(t)
        if rng.random() < 0.5 and arr.ndim:
            # Consistent data of another shape (tests shape rules, not the size check).
            shape = list(arr.shape)
            k = int(rng.integers(len(shape)))
            shape[k] = int(rng.choice([0, 1, 2, shape[k] + 1, 3]))
            new = rng.standard_normal(shape).astype(arr.dtype) if arr.dtype.kind == "f" \
                else rng.integers(-2, 6, shape).astype(arr.dtype)
            t.CopyFrom(numpy_helper.from_array(new, t.name))
            return f"init-data {t.name} {shape}"
        dims = list(t.dims)
        if dims:
            dims[int(rng.integers(len(dims)))] = int(rng.choice([-1, 0, 2, 1 << 20, 1 << 40]))
        else:
            dims = [int(rng.choice([0, 3]))]
        del t.dims[:]
        t.dims.extend(dims)
        return f"init-dims {t.name} {dims}"
    if not choices:
        return "noop"
    d, _ = choices[int(rng.integers(len(choices)))]
    v = int(rng.choice([-1, 0, 1, 2, 5, 1 << 31, 1 << 50]))
    d.dim_value = v
    return f"input-dim {v}"


def _drop(m: onnx.ModelProto, rng) -> str:
    g = m.graph
    if rng.random() < 0.5 and g.initializer:
        k = int(rng.integers(len(g.initializer)))
        name = g.initializer[k].name
        del g.initializer[k]
        return f"drop-init {name}"
    k = int(rng.integers(len(g.node)))
    name = g.node[k].name
    del g.node[k]
    return f"drop-node {name}"


def _rename(m: onnx.ModelProto, rng) -> str:
    g = m.graph
    n = g.node[int(rng.integers(len(g.node)))]
    names = [o for x in g.node for o in x.output] + [i.name for i in g.input] + ["ghost"]
    new = str(rng.choice(names))
    if rng.random() < 0.5 and n.input:
        k = int(rng.integers(len(n.input)))
        old, n.input[k] = n.input[k], new
    else:
        k = int(rng.integers(len(n.output)))
        old, n.output[k] = n.output[k], new
    return f"rename {n.name} {old}->{new}"


def _other(m: onnx.ModelProto, rng) -> str:
    g = m.graph
    r = rng.random()
    if r < 0.3:
        n = g.node[int(rng.integers(len(g.node)))]
        new = str(rng.choice(["Relu", "Add", "Conv", "Softmax", "Transpose", "NonZero", "Loop",
                              "Identity", "Sqrt", "MatMul", "Reshape", "Concat"]))
        old, n.op_type = n.op_type, new
        return f"op {n.name} {old}->{new}"
    if r < 0.55:
        vi = g.input[int(rng.integers(len(g.input)))]
        et = int(rng.choice([TensorProto.DOUBLE, TensorProto.INT64, TensorProto.INT32,
                             TensorProto.BOOL, TensorProto.STRING, TensorProto.FLOAT16, 0, 99]))
        vi.type.tensor_type.elem_type = et
        return f"input-dtype {et}"
    if r < 0.75:
        nodes = list(g.node)
        rng.shuffle(nodes)
        del g.node[:]
        g.node.extend(nodes)
        return "shuffle-nodes"
    if r < 0.9:
        m.opset_import[0].version = int(rng.choice([1, 6, 11, 13, 21, 99]))
        return f"opset {m.opset_import[0].version}"
    t = g.initializer[int(rng.integers(len(g.initializer)))] if g.initializer else None
    if t is None:
        return "noop"
    t.data_type = int(rng.choice([TensorProto.DOUBLE, TensorProto.INT8, 0, 77]))
    return f"init-dtype {t.name} {t.data_type}"


MUTATIONS = ["bitflip", "truncate", "attr", "shape", "drop", "rename", "other"]


def mutate(base: onnx.ModelProto, case: int) -> tuple[bytes, str]:
    rng = np.random.default_rng(case)
    kind = MUTATIONS[case % len(MUTATIONS)]
    if kind in ("bitflip", "truncate"):
        data = bytearray(base.SerializeToString())
        if kind == "truncate":
            cut = int(rng.integers(0, len(data)))
            return bytes(data[:cut]), f"truncate {cut}/{len(data)}"
        flips = int(rng.integers(1, 9))
        for _ in range(flips):
            pos = int(rng.integers(len(data)))
            data[pos] ^= 1 << int(rng.integers(8))
        return bytes(data), f"bitflip x{flips}"
    m = onnx.ModelProto()
    m.CopyFrom(base)
    what = {"attr": _edit_attr, "shape": _edit_shape, "drop": _drop, "rename": _rename,
            "other": _other}[kind](m, rng)
    return m.SerializeToString(), what


def _inputs(module, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for s in module.input_info:
        dt = np.dtype(s["dtype"])
        if dt.kind == "f":
            out[s["name"]] = rng.standard_normal(s["shape"]).astype(dt)
        elif dt.kind == "b":
            out[s["name"]] = rng.integers(0, 2, s["shape"]).astype(dt)
        else:
            out[s["name"]] = rng.integers(0, 3, s["shape"]).astype(dt)
    return out


def _compare(data: bytes, inputs: dict, got: dict) -> str | None:
    """None if onnxruntime cannot run the mutant; "" if it agrees; else what differs."""
    import onnxruntime as ort

    try:
        opts = ort.SessionOptions()
        opts.log_severity_level = 4
        sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        ref = sess.run(None, inputs)
    except Exception:  # noqa: BLE001 - any refusal by the reference means "no reference"
        return None
    names = [o.name for o in sess.get_outputs()]
    for name, want in zip(names, ref):
        have = got.get(name)
        if have is None or have.shape != want.shape:
            return f"{name}: shape {None if have is None else have.shape} vs {want.shape}"
        # Tolerances: fp32, with reductions over at most a few hundred terms, summed in
        # another order than onnxruntime's.
        if not np.allclose(have, want, rtol=1e-4, atol=1e-4, equal_nan=True):
            err = np.nanmax(np.abs(have.astype(np.float64) - want))
            return f"{name}: max abs diff {err:.3g}"
    return ""


def run_case(case: int, base: onnx.ModelProto, tmp: Path) -> tuple[str, str, str]:
    import tilecc

    data, what = mutate(base, case)
    try:
        art = tilecc.compile(data)
        path = art.save(tmp / "m.tar")
        mod = tilecc.load(path, num_threads=1)
        inputs = _inputs(mod, case)
        got = mod.run(inputs)
    except tilecc.TileccError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return "rejected", what, f"{type(e).__name__}: {first[:150]}"
    except Exception:  # noqa: BLE001 - reporting these is the worker's job
        tb = traceback.format_exc().strip().splitlines()
        return "bad", what, " | ".join(tb[-3:])[:400]
    diff = _compare(data, inputs, got)
    if diff is None:
        return "norefer", what, ""
    return ("wrong", what, diff) if diff else ("ran", what, "")


def main(argv: list[str]) -> int:
    start, end, status = int(argv[0]), int(argv[1]), Path(argv[2])
    root = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(root))
    bases = _bases()
    with open(status, "a", buffering=1) as out, tempfile.TemporaryDirectory() as d:
        for case in range(start, end):
            # The mutation kind is case % len(MUTATIONS): step bases on the quotient so every
            # base meets every kind.
            name, base = bases[(case // len(MUTATIONS)) % len(bases)]
            out.write(f"start {case}\n")
            out.flush()
            if os.environ.get("TILECC_FUZZ_CRASH_AT") == str(case):
                ctypes.string_at(0)  # the harness's own self-test: a real segfault
            outcome, what, detail = run_case(case, base, Path(d))
            clean = detail.replace("\n", " ")
            out.write(f"done {case} {outcome} {name} | {what} | {clean}\n")
            out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

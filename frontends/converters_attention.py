"""ONNX Attention (opsets 23-25), lowered to Reshape/Transpose/MatMul/Softmax with an additive
bias built from the mask, causal and sliding-window rules (folded to a constant when nothing
depends on a runtime input). Same conventions as onnx_converters.py: one function per ONNX op,
attributes as keywords, canonical nodes (docs/ops.md) emitted through the Builder.
"""

from __future__ import annotations

import numpy as np
from onnx import helper

from .onnx_builder import Builder, converter
from .onnx_converters import _full, _reshape


def _split_heads(b: Builder, x: str, heads: int) -> str:
    """(B, S, H*D) -> (B, H, S, D)."""
    n, s, hidden = b.shape(x)
    if hidden % heads:
        raise b.error(f"hidden size {hidden} is not divisible by the {heads} heads")
    t = _reshape(b, x, (n, s, heads, hidden // heads))
    return b.emit("Transpose", [t], {"perm": (0, 2, 1, 3)})[0]


def _additive(b: Builder, mask: str, dtype: str) -> str:
    """A boolean mask (True = attend) as 0 / -inf; a float mask cast to the compute type."""
    if b.type(mask).dtype == "bool":
        zero = _full(b, (), 0, dtype, "zero")
        ninf = _full(b, (), -np.inf, dtype, "ninf")
        return b.emit("Where", [mask, zero, ninf])[0]
    if b.type(mask).dtype != dtype:
        return b.emit("Cast", [mask], {"to": dtype})[0]
    return mask


def _allowed_bias(b: Builder, allowed: str, dtype: str) -> str:
    zero = _full(b, (), 0, dtype, "zero")
    ninf = _full(b, (), -np.inf, dtype, "ninf")
    return b.emit("Where", [allowed, zero, ninf])[0]


def _band(b: Builder, q: int, kv: int, offset, lo: int | None, hi: int | None) -> str:
    """Bool mask of keys j a query i attends: lo <= (i + offset) - j <= hi (None = open).

    `offset` is an int (the same frontier for every batch) or the name of a runtime (batch,)
    int64 tensor, giving a (batch, 1, q, kv) mask.
    """
    diff = (np.arange(q).reshape(q, 1) - np.arange(kv).reshape(1, kv)).astype(np.int64)
    if isinstance(offset, int):
        ok = np.ones((q, kv), bool)
        if lo is not None:
            ok &= diff + offset >= lo
        if hi is not None:
            ok &= diff + offset <= hi
        return b.add_const(ok, "band")
    d = b.add_const(diff.reshape(1, 1, q, kv), "diff")
    total = b.emit("Add", [d, offset])[0]
    parts = []
    if lo is not None:
        parts.append(b.emit("GreaterOrEqual", [total, b.add_const(np.int64(lo), "lo")])[0])
    if hi is not None:
        parts.append(b.emit("LessOrEqual", [total, b.add_const(np.int64(hi), "hi")])[0])
    if not parts:
        return b.add_const(np.ones((q, kv), bool), "band")
    return parts[0] if len(parts) == 1 else b.emit("And", parts)[0]


@converter("Attention", 23)
def Attention(b, ins, n_out, *, is_causal=0, kv_num_heads=None, q_num_heads=None,
              qk_matmul_output_mode=0, scale=None, softcap=0.0, softmax_precision=None,
              left_window_size=-1, right_window_size=-1):
    ins = list(ins) + [""] * (7 - len(ins))
    q, k, v, mask, past_k, past_v, nonpad = ins
    dtype = b.type(q).dtype
    rank = len(b.shape(q))
    if rank == 3:
        if q_num_heads is None or kv_num_heads is None:
            raise b.error("3-D inputs need the q_num_heads and kv_num_heads attributes")
        q = _split_heads(b, q, int(q_num_heads))
        k = _split_heads(b, k, int(kv_num_heads))
        v = _split_heads(b, v, int(kv_num_heads))
    elif rank != 4:
        raise b.error(f"Q must be 3-D or 4-D, got shape {list(b.shape(ins[0]))}")
    if bool(past_k) != bool(past_v):
        raise b.error("past_key and past_value must be given together")
    if nonpad and past_k:
        raise b.error("nonpad_kv_seqlen cannot be combined with past_key/past_value")
    batch, hq, sq, dq = b.shape(q)

    # Q and K are each scaled by sqrt(scale) in the input type, as the spec's function body
    # does (this keeps fp16 products in range).
    if past_k:
        k = b.emit("Concat", [past_k, k], {"axis": 2})[0]
        v = b.emit("Concat", [past_v, v], {"axis": 2})[0]
    present_k, present_v = k, v
    out_dtype = dtype
    if dtype == "float16":
        # float16 is storage-only in tilecc: the whole attention runs in float32 and rounds
        # once (per-op half rounding inside fused kernels drifts from the references).
        dtype = "float32"
        q, k, v = (b.emit("Cast", [t], {"to": dtype})[0] for t in (q, k, v))
    s = 1.0 / np.sqrt(dq) if scale is None else float(scale)
    root = _full(b, (), np.sqrt(s), dtype, "scale")
    q = b.emit("Mul", [q, root])[0]
    kv = b.shape(k)[2]
    past_len = b.shape(past_k)[2] if past_k else 0

    # The additive bias: mask (padded to kv with -inf), causal and window bands, padding.
    bias = None
    if mask:
        bias = _additive(b, mask, dtype)
        width = b.shape(bias)[-1]
        if width < kv:
            pad_shape = b.shape(bias)[:-1] + (kv - width,)
            bias = b.emit("Concat", [bias, _full(b, pad_shape, -np.inf, dtype, "ninf")],
                          {"axis": len(pad_shape) - 1})[0]
    offset = past_len
    if nonpad:
        lens = nonpad
        if b.type(lens).dtype != "int64":
            lens = b.emit("Cast", [lens], {"to": "int64"})[0]
        lens = _reshape(b, lens, (batch, 1, 1, 1))
        offset = b.emit("Sub", [lens, b.add_const(np.int64(sq), "sq")])[0]

    def add(bias, term):
        if bias is None:
            return term
        return b.emit("Add", [bias, term])[0]

    if is_causal:
        bias = add(bias, _allowed_bias(b, _band(b, sq, kv, offset, 0, None), dtype))
    lw, rw = int(left_window_size), int(right_window_size)
    if lw >= 0 or rw >= 0:
        band = _band(b, sq, kv, offset, -rw if rw >= 0 else None, lw if lw >= 0 else None)
        bias = add(bias, _allowed_bias(b, band, dtype))
    if nonpad:
        j = b.add_const(np.arange(kv, dtype=np.int64).reshape(1, 1, 1, kv), "j")
        bias = add(bias, _allowed_bias(b, b.emit("Less", [j, lens])[0], dtype))

    # Grouped-query attention: each KV head serves q_heads / kv_heads consecutive Q heads.
    hk = b.shape(k)[1]
    if hq != hk:
        if hq % hk:
            raise b.error(f"{hq} query heads are not a multiple of {hk} key/value heads")
        reps = hq // hk

        def repeat(t):
            n, h, s_, d = b.shape(t)
            t = _reshape(b, t, (n, h, 1, s_, d))
            t = b.emit("Expand", [t], {"shape": (n, h, reps, s_, d)})[0]
            return _reshape(b, t, (n, h * reps, s_, d))
        k, v = repeat(k), repeat(v)

    k = b.emit("Mul", [k, root])[0]
    kt = b.emit("Transpose", [k], {"perm": (0, 1, 3, 2)})[0]
    qk = b.emit("MatMul", [q, kt])[0]
    if softcap and float(softcap) > 0:
        cap = _full(b, (), float(softcap), dtype, "softcap")
        qk = b.emit("Mul", [b.emit("Tanh", [b.emit("Div", [qk, cap])[0]])[0], cap])[0]
    qk_out = qk
    logits = qk if bias is None else b.emit("Add", [qk, bias])[0]
    mode = int(qk_matmul_output_mode)
    if mode == 2:
        qk_out = logits
    if softmax_precision is not None:
        sdt = np.dtype(helper.tensor_dtype_to_np_dtype(int(softmax_precision))).name
        if sdt != dtype:
            logits = b.emit("Cast", [logits], {"to": sdt})[0]
    probs = b.emit("Softmax", [logits], {"axis": 3})[0]
    if bias is not None:
        # A row whose bias is all -inf attends to nothing: the spec makes it 0 (Softmax gives
        # NaN there). Decided on the bias, not the logits, as the spec's function body does.
        row_max = b.emit("ReduceMax", [bias], {"axes": (len(b.shape(bias)) - 1,),
                                              "keepdims": 1})[0]
        dead = b.emit("IsInf", [row_max], {"detect_positive": 0, "detect_negative": 1})[0]
        const_dead = b.const(dead)
        if const_dead is None or const_dead.any():
            zero = _full(b, (), 0, b.type(probs).dtype, "zero")
            probs = b.emit("Where", [dead, zero, probs])[0]
    if mode == 3:
        qk_out = probs
    if b.type(probs).dtype != dtype:
        probs = b.emit("Cast", [probs], {"to": dtype})[0]
    if b.type(qk_out).dtype != out_dtype:
        qk_out = b.emit("Cast", [qk_out], {"to": out_dtype})[0]
    y = b.emit("MatMul", [probs, v])[0]
    if out_dtype != dtype:
        y = b.emit("Cast", [y], {"to": out_dtype})[0]
    if rank == 3:
        n, h, s_, d = b.shape(y)
        y = _reshape(b, b.emit("Transpose", [y], {"perm": (0, 2, 1, 3)})[0], (n, s_, h * d))
    return [y, present_k, present_v, qk_out][:n_out]

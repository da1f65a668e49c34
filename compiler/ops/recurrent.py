"""Recurrent ops LSTM, GRU, RNN in one canonical form (layout 0: time-major).

Inputs are always all present (the frontend fills absent biases, initial states and peepholes
with zeros): LSTM X, W, R, B, initial_h, initial_c, P; GRU and RNN X, W, R, B, initial_h.
W and R are ONNX's weights transposed, (D, I, G*H) and (D, H, G*H), so the kernel's gate loop
reads them contiguously (the frontend's Transpose folds for constant weights).
Attrs: hidden_size, direction ("forward" | "reverse" | "bidirectional"), activations (names,
per direction), activation_alpha/activation_beta (one per activation), clip (float, inf when
absent); GRU linear_before_reset; LSTM input_forget. Outputs: Y (T, D, B, H), Y_h (D, B, H)
and, for LSTM, Y_c (D, B, H). The numpy fold below is the reference semantics (float64); the
compiled kernel is compiler/topi/recurrent.py.
"""

from __future__ import annotations

import numpy as np

from ..graph import TensorType
from ._util import expect_inputs, expect_rank
from .registry import register_op

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
N_INPUTS = {"LSTM": 7, "GRU": 5, "RNN": 5}


def _infer(op):
    def infer(types, attrs):
        expect_inputs(op, types, N_INPUTS[op])
        x, w, r, b, h0 = types[:5]
        expect_rank(op, x, 3, "X")
        t, batch, inp = x.shape
        hid = attrs["hidden_size"]
        d = 2 if attrs["direction"] == "bidirectional" else 1
        g = GATES[op]
        want = {"W": (w, (d, inp, g * hid)), "R": (r, (d, hid, g * hid)),
                "B": (b, (d, 2 * g * hid)), "initial_h": (h0, (d, batch, hid))}
        if op == "LSTM":
            want["initial_c"] = (types[5], (d, batch, hid))
            want["P"] = (types[6], (d, 3 * hid))
        for name, (tt, shape) in want.items():
            if tt.shape != shape:
                raise ValueError(f"{op}: {name} shape {list(tt.shape)} must be {list(shape)}")
            if tt.dtype != x.dtype:
                raise ValueError(f"{op}: {name} dtype {tt.dtype} differs from X {x.dtype}")
        state = TensorType((d, batch, hid), x.dtype)
        outs = [TensorType((t, d, batch, hid), x.dtype), state]
        return outs + [state] if op == "LSTM" else outs
    return infer


def _np_act(name: str, a: float | None, b: float | None):
    defaults = {"HardSigmoid": (0.2, 0.5), "LeakyRelu": (0.01, 0.0), "Affine": (1.0, 0.0),
                "ScaledTanh": (1.0, 1.0), "Elu": (1.0, 0.0)}
    da, db = defaults.get(name, (0.0, 0.0))
    a, b = (da if a is None else a), (db if b is None else b)
    return {
        "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
        "Tanh": np.tanh,
        "Relu": lambda x: np.maximum(x, 0),
        "HardSigmoid": lambda x: np.clip(a * x + b, 0, 1),
        "LeakyRelu": lambda x: np.where(x < 0, a * x, x),
        "Affine": lambda x: a * x + b,
        "ScaledTanh": lambda x: a * np.tanh(b * x),
        "Softsign": lambda x: x / (1 + np.abs(x)),
        "Elu": lambda x: np.where(x < 0, a * (np.exp(np.minimum(x, 0)) - 1), x),
    }[name]


def _fold(op):
    def fold(arrays, attrs):
        x, w, r, bias, h0 = (a.astype(np.float64) for a in arrays[:5])
        t_len, hid, g = x.shape[0], attrs["hidden_size"], GATES[op]
        ndir = h0.shape[0]
        n = {"LSTM": 3, "GRU": 2, "RNN": 1}[op]
        al, be = list(attrs["activation_alpha"]), list(attrs["activation_beta"])
        clip = attrs["clip"]

        def cl(v):
            return np.clip(v, -clip, clip)
        y = np.zeros((t_len, ndir) + h0.shape[1:])
        hs, cs = h0.copy(), arrays[5].astype(np.float64).copy() if op == "LSTM" else None
        for d in range(ndir):
            f = [_np_act(attrs["activations"][d * n + k],
                         al[d * n + k] if d * n + k < len(al) else None,
                         be[d * n + k] if d * n + k < len(be) else None) for k in range(n)]
            wb, rb = bias[d, :g * hid], bias[d, g * hid:]
            h = hs[d]
            c = cs[d] if cs is not None else None
            steps = range(t_len - 1, -1, -1) if attrs["direction"] == "reverse" or d == 1 \
                else range(t_len)
            for t in steps:
                gx, gh = x[t] @ w[d] + wb, h @ r[d] + rb
                if op == "RNN":
                    h = f[0](cl(gx + gh))
                elif op == "GRU":
                    z = f[0](cl(gx[:, :hid] + gh[:, :hid]))
                    rr = f[0](cl(gx[:, hid:2 * hid] + gh[:, hid:2 * hid]))
                    if attrs["linear_before_reset"]:
                        hh = f[1](cl(gx[:, 2 * hid:] + rr * gh[:, 2 * hid:]))
                    else:
                        hh = f[1](cl(gx[:, 2 * hid:] + (rr * h) @ r[d, :, 2 * hid:]
                                     + rb[2 * hid:]))
                    h = (1 - z) * hh + z * h
                else:
                    p = arrays[6][d].astype(np.float64)
                    gs = gx + gh
                    i = f[0](cl(gs[:, :hid] + p[:hid] * c))
                    fg = 1 - i if attrs["input_forget"] else f[0](
                        cl(gs[:, 2 * hid:3 * hid] + p[2 * hid:] * c))
                    c = fg * c + i * f[1](cl(gs[:, 3 * hid:]))
                    o = f[0](cl(gs[:, hid:2 * hid] + p[hid:2 * hid] * c))
                    h = o * f[2](c)
                y[t, d] = h
            hs[d] = h
            if cs is not None:
                cs[d] = c
        dt = arrays[0].dtype
        outs = [y.astype(dt), hs.astype(dt)]
        return outs + [cs.astype(dt)] if op == "LSTM" else outs
    return fold


for _op in GATES:
    register_op(_op, _infer(_op), _fold(_op))

"""Recurrent ops LSTM, GRU, RNN in one canonical form (layout 0: time-major).

Inputs are always all present (the frontend fills absent biases, initial states and peepholes
with zeros): LSTM X, W, R, B, initial_h, initial_c, P; GRU and RNN X, W, R, B, initial_h.
Attrs: hidden_size, direction ("forward" | "reverse" | "bidirectional"), activations (names,
per direction), activation_alpha/activation_beta (one per activation), clip (float, inf when
absent); GRU linear_before_reset; LSTM input_forget. Outputs: Y (T, D, B, H), Y_h (D, B, H)
and, for LSTM, Y_c (D, B, H). There is no numpy fold: the time loop runs only in the compiled
kernel (compiler/topi/recurrent.py); tests compare it with onnxruntime.
"""

from __future__ import annotations

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
        want = {"W": (w, (d, g * hid, inp)), "R": (r, (d, g * hid, hid)),
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


for _op in GATES:
    register_op(_op, _infer(_op))

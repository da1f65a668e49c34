"""A small MLP trained on scikit-learn's digits with numpy SGD and written to ONNX by hand."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def digits_split(seed: int = 0):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    idx = np.random.default_rng(seed).permutation(len(x))
    cut = int(0.75 * len(x))
    return x[idx[:cut]], y[idx[:cut]], x[idx[cut:]], y[idx[cut:]]


def train_mlp(x, y, sizes=(64, 64, 32, 10), epochs: int = 30, lr: float = 0.1, seed: int = 0):
    """Plain minibatch SGD on softmax cross-entropy; ReLU hidden layers."""
    rng = np.random.default_rng(seed)
    ws = [rng.normal(0, np.sqrt(2 / a), (a, b)).astype(np.float32)
          for a, b in itertools.pairwise(sizes)]
    bs = [np.zeros(b, np.float32) for b in sizes[1:]]
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for k in range(0, len(x), 32):
            xb, yb = x[order[k:k + 32]], y[order[k:k + 32]]
            acts = [xb]
            for i, (w, b) in enumerate(zip(ws, bs)):
                z = acts[-1] @ w + b
                acts.append(np.maximum(z, 0) if i < len(ws) - 1 else z)
            p = np.exp(acts[-1] - acts[-1].max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            p[np.arange(len(yb)), yb] -= 1
            g = p / len(yb)
            for i in range(len(ws) - 1, -1, -1):
                gw, gb = acts[i].T @ g, g.sum(0)
                if i:
                    g = (g @ ws[i].T) * (acts[i] > 0)
                ws[i] -= lr * gw
                bs[i] -= lr * gb
    return ws, bs


def mlp_onnx(ws, bs, batch: int) -> onnx.ModelProto:
    nodes, inits, x = [], [], "x"
    for i, (w, b) in enumerate(zip(ws, bs)):
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = f"h{i}" if i < len(ws) - 1 else "logits"
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [out + ("_z" if i < len(ws) - 1 else "")]))
        if i < len(ws) - 1:
            nodes.append(helper.make_node("Relu", [out + "_z"], [out]))
        x = out
    g = helper.make_graph(
        nodes, "digits_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, ws[0].shape[0]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, ws[-1].shape[1]])],
        inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])

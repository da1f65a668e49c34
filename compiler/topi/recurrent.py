"""LSTM, GRU and RNN as hand-written loop IR (an extern kernel, see extern.py).

One kernel runs the whole sequence: for each direction, the state starts from initial_h/c and
every time step does its matrix-vector products (X_t W^T and H R^T, per batch row and gate)
into scratch gate buffers, then the gate update writes the new state and Y[t]. The state lives
in the Y_h / Y_c buffers themselves, which hold the final state when the loop ends. Outputs the
model does not use become scratch buffers.
"""

from __future__ import annotations

from ..expr import Load, Var, call, cmp, const, fresh, maximum, minimum, select
from ..loopir import Allocate, Buffer, For, PrimFunc, Store, seq
from .extern import register_extern

# name -> (fn(x, alpha, beta), default alpha, default beta)
ACTIVATIONS = {
    "Sigmoid": (lambda x, a, b: _c(x, 1) / (_c(x, 1) + call("exp", -x)), 0.0, 0.0),
    "Tanh": (lambda x, a, b: call("tanh", x), 0.0, 0.0),
    "Relu": (lambda x, a, b: maximum(x, _c(x, 0)), 0.0, 0.0),
    "HardSigmoid": (lambda x, a, b: maximum(_c(x, 0), minimum(_c(x, 1), x * _c(x, a)
                                                              + _c(x, b))), 0.2, 0.5),
    "LeakyRelu": (lambda x, a, b: select(cmp("lt", x, _c(x, 0)), x * _c(x, a), x), 0.01, 0.0),
    "Affine": (lambda x, a, b: x * _c(x, a) + _c(x, b), 1.0, 0.0),
    "ScaledTanh": (lambda x, a, b: _c(x, a) * call("tanh", x * _c(x, b)), 1.0, 1.0),
    "Softsign": (lambda x, a, b: x / (_c(x, 1) + call("fabs", x)), 0.0, 0.0),
    "Elu": (lambda x, a, b: select(cmp("lt", x, _c(x, 0)),
                                   _c(x, a) * (call("exp", minimum(x, _c(x, 0))) - _c(x, 1)), x),
            1.0, 0.0),
}
DEFAULT_ACTS = {"LSTM": ("Sigmoid", "Tanh", "Tanh"), "GRU": ("Sigmoid", "Tanh"),
                "RNN": ("Tanh",)}


def _c(x, v):
    return const(v, x.dtype)


def _loop(name: str, extent: int, body_fn):
    v = Var(fresh(name))
    return For(v, extent, "serial", body_fn(v))


def _activations(op: str, attrs: dict, ndir: int):
    """Per direction, the list of activation callables (x -> expr)."""
    names = attrs["activations"]
    n = len(DEFAULT_ACTS[op])
    alphas, betas = list(attrs["activation_alpha"]), list(attrs["activation_beta"])
    out = []
    for d in range(ndir):
        fns = []
        for k in range(n):
            idx = d * n + k
            fn, a0, b0 = ACTIVATIONS[names[idx]]
            a = alphas[idx] if idx < len(alphas) else a0
            b = betas[idx] if idx < len(betas) else b0
            fns.append(lambda x, fn=fn, a=a, b=b: fn(x, a, b))
        out.append(fns)
    return out


@register_extern("LSTM", "GRU", "RNN")
def rnn_kernel(node, graph, target, name: str) -> PrimFunc:
    (m,) = node.attrs["nodes"]
    op, attrs = m.op, m.attrs
    params, buf = [], {}
    for k, v in enumerate(node.inputs):
        t = graph.types[v]
        b = Buffer(f"arg{k}", t.shape, t.dtype)
        params.append(b)
        buf[v] = b
    for k, v in enumerate(node.outputs):
        t = graph.types[v]
        b = Buffer(f"arg{len(node.inputs) + k}", t.shape, t.dtype)
        params.append(b)
        buf[v] = b
    scratch = []

    def tmp(shape, dtype):
        b = Buffer(f"tmp{len(scratch)}", tuple(shape), dtype)
        scratch.append(b)
        return b

    ins = [buf[v] for v in m.inputs]
    outs = [buf[v] if v in buf else tmp(graph.types[v].shape, graph.types[v].dtype)
            for v in m.outputs]
    x, w, r, bias, h0 = ins[:5]
    T, B, I = x.shape
    D, H = h0.shape[0], attrs["hidden_size"]
    G = w.shape[1] // H
    dt = x.dtype
    y, yh = outs[0], outs[1]
    gx, gh = tmp((B, G * H), dt), tmp((B, G * H), dt)
    rh = tmp((B, H), dt) if op == "GRU" and not attrs["linear_before_reset"] else None
    acc = Buffer(fresh("acc"), (1,), dt, "local")
    cell = Buffer(fresh("cell"), (1,), dt, "local")
    clip = attrs["clip"]
    acts = _activations(op, attrs, D)

    def ld(b, *idx):
        flat = const(0)
        for dim, i in zip(b.shape, idx):
            flat = flat * dim + i
        return Load(b, flat)

    def st(b, idx, value):
        flat = const(0)
        for dim, i in zip(b.shape, idx):
            flat = flat * dim + i
        return Store(b, flat, value)

    def dot(out_store, init, n, term):
        """acc = init + sum_k term(k); out_store(acc)"""
        a0 = const(0)
        return seq(Store(acc, a0, init),
                   _loop("k", n, lambda k: Store(acc, a0, Load(acc, a0) + term(k))),
                   out_store(Load(acc, a0)))

    def clipped(v):
        if clip == float("inf"):
            return v
        return maximum(minimum(v, const(clip, dt)), const(-clip, dt))

    def gate(b, h, k):
        return ld(gx, b, h + k * H) + ld(gh, b, h + k * H)

    def _update(b, h, tt, d, f):
        hprev = ld(yh, d, b, h)
        if op == "RNN":
            hn = f[0](clipped(gate(b, h, 0)))
            return seq(st(y, (tt, d, b, h), hn), st(yh, (d, b, h), hn))
        if op == "GRU":
            z = f[0](clipped(gate(b, h, 0)))
            if rh is None:  # linear_before_reset: r * (R_h h + Rb_h)
                rr = f[0](clipped(gate(b, h, 1)))
                cand = f[1](clipped(ld(gx, b, h + 2 * H) + rr * ld(gh, b, h + 2 * H)))
            else:
                cand = f[1](clipped(gate(b, h, 2)))
            hn = (const(1.0, dt) - z) * cand + z * hprev
            return seq(st(y, (tt, d, b, h), hn), st(yh, (d, b, h), hn))
        yc, p = outs[2], ins[6]
        cprev = ld(yc, d, b, h)
        i = f[0](clipped(gate(b, h, 0) + ld(p, d, h) * cprev))
        if attrs["input_forget"]:
            fg = const(1.0, dt) - i
        else:
            fg = f[0](clipped(gate(b, h, 2) + ld(p, d, h + 2 * H) * cprev))
        c = f[1](clipped(gate(b, h, 3)))
        # The new cell value goes through a local first: stores below overwrite the state
        # buffers the expressions read.
        cn = Load(cell, const(0))
        o = f[0](clipped(gate(b, h, 1) + ld(p, d, h + H) * cn))
        hn = o * f[2](cn)
        return seq(Store(cell, const(0), fg * cprev + i * c), st(yc, (d, b, h), cn),
                   st(y, (tt, d, b, h), hn), st(yh, (d, b, h), hn))

    body = []
    for d in range(D):
        reverse = attrs["direction"] == "reverse" or (d == 1)
        f = acts[d]
        state = [(yh, h0)] + ([(outs[2], ins[5])] if op == "LSTM" else [])
        for sb, ib in state:
            body.append(_loop("b", B, lambda b, sb=sb, ib=ib, d=d: _loop(
                "h", H, lambda h: st(sb, (d, b, h), ld(ib, d, b, h)))))

        def step(t, d=d, reverse=reverse, f=f):
            tt = (const(T - 1) - t) if reverse else t
            parts = [
                # gx = W x_t + Wb ; gh = R h + Rb   (per batch row, per gate unit)
                _loop("b", B, lambda b: _loop("g", G * H, lambda g: seq(
                    dot(lambda a: st(gx, (b, g), a), ld(bias, d, g), I,
                        lambda k: ld(x, tt, b, k) * ld(w, d, g, k)),
                    dot(lambda a: st(gh, (b, g), a), ld(bias, d, g + G * H), H,
                        lambda k: ld(yh, d, b, k) * ld(r, d, g, k)))))]
            if rh is not None:
                # GRU, linear_before_reset=0: the candidate uses R_h (r * h), so r first.
                def r_gate(b, j):
                    return f[0](clipped(ld(gx, b, j + H) + ld(gh, b, j + H)))
                parts.append(_loop("b", B, lambda b: _loop("h", H, lambda j: st(
                    rh, (b, j), r_gate(b, j) * ld(yh, d, b, j)))))
                parts.append(_loop("b", B, lambda b: _loop("h", H, lambda h: dot(
                    lambda a: st(gh, (b, h + 2 * H), a), ld(bias, d, h + 5 * H), H,
                    lambda k: ld(rh, b, k) * ld(r, d, h + 2 * H, k)))))
            parts.append(_loop("b", B, lambda b: _loop("h", H, lambda h: _update(
                b, h, tt, d, f))))
            return seq(*parts)

        body.append(_loop("t", T, step))

    return PrimFunc(name, params + scratch, Allocate(acc, Allocate(cell, seq(*body))), {"scratch": scratch})

"""LSTM, GRU and RNN as hand-written loop IR (an extern kernel, see extern.py).

One kernel runs the whole sequence. Per direction: the input projection of every time step
(X_t W + Wb, all t at once) goes into a scratch buffer before the time loop; then each step
computes the recurrent projection H R + Rb into a gate buffer and applies the gate update,
which writes Y[t] and the new state. The state lives in the Y_h / Y_c buffers themselves, so
they hold the final state when the loop ends; outputs the model does not use become scratch.

Matrix-vector products run gate-columns-innermost: W and R arrive transposed (I, G*H) and
(H, G*H), so a vector of `lanes` gate accumulators is updated from contiguous weight rows
while the input element is broadcast. The gate update is vectorised over hidden units the
same way.
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
MAX_LANES = 16


def _c(x, v):
    return const(v, x.dtype)


def _lanes(n: int) -> int:
    for v in (MAX_LANES, 8, 4):
        if n % v == 0:
            return v
    return 1


def _loop(name: str, extent: int, body_fn, kind: str = "serial"):
    v = Var(fresh(name))
    return For(v, extent, kind, body_fn(v))


def _cols(name: str, n: int, body_fn):
    """for j in 0..n, as (outer serial) x (inner vectorised) loops; body_fn(j, lane, lanes)."""
    vl = _lanes(n)
    if vl == 1:
        return _loop(name, n, lambda j: body_fn(j, const(0), 1))
    return _loop(name + "o", n // vl, lambda jo: _loop(
        name + "i", vl, lambda ji: body_fn(jo * vl + ji, ji, vl), "vectorize"))


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


def _flat(b, idx):
    flat = const(0)
    for dim, i in zip(b.shape, idx):
        flat = flat * dim + i
    return flat


def ld(b, *idx):
    return Load(b, _flat(b, idx))


def st(b, idx, value):
    return Store(b, _flat(b, idx), value)


@register_extern("LSTM", "GRU", "RNN")
def rnn_kernel(node, graph, target, name: str) -> PrimFunc:
    (m,) = node.attrs["nodes"]
    op, attrs = m.op, m.attrs
    params, buf = [], {}
    for k, v in enumerate(list(node.inputs) + list(node.outputs)):
        t = graph.types[v]
        buf[v] = Buffer(f"arg{k}", t.shape, t.dtype)
        params.append(buf[v])
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
    GH = w.shape[2]
    dt = x.dtype
    y, yh = outs[0], outs[1]
    gx, gh = tmp((T, B, GH), dt), tmp((B, GH), dt)
    rh = tmp((B, H), dt) if op == "GRU" and not attrs["linear_before_reset"] else None
    acc = Buffer(fresh("acc"), (MAX_LANES,), dt, "local")
    cell = Buffer(fresh("cell"), (MAX_LANES,), dt, "local")
    clip = attrs["clip"]
    acts = _activations(op, attrs, D)

    def gemv(out, out_idx, col0, ncols, init, n, vec, mat, d):
        """out[out_idx(j)] = init(col0 + j) + sum_k vec(k) * mat[d, k, col0 + j], j < ncols."""
        # One tile of `vl` accumulators stays live across the k loop; each statement of the
        # tile is its own vectorised lane loop (codegen vectorises loops over stores only).
        vl = _lanes(ncols)

        def tile(jo):
            def lanes(fn):
                return _loop("gi", vl, lambda ji: fn(jo * vl + ji, ji), "vectorize")
            return seq(lanes(lambda j, ji: Store(acc, ji, init(col0 + j))),
                       _loop("k", n, lambda k: lanes(lambda j, ji: Store(
                           acc, ji, Load(acc, ji) + vec(k) * ld(mat, d, k, col0 + j)))),
                       lanes(lambda j, ji: st(out, out_idx(j), Load(acc, ji))))
        return _loop("go", ncols // vl, tile)

    def clipped(v):
        if clip == float("inf"):
            return v
        return maximum(minimum(v, const(clip, dt)), const(-clip, dt))

    def gate(t, b, h, k):
        return ld(gx, t, b, h + k * H) + ld(gh, b, h + k * H)

    def update(b, h, lane, tt, d, f):
        hprev = ld(yh, d, b, h)
        if op == "RNN":
            hn = f[0](clipped(gate(tt, b, h, 0)))
            return seq(st(y, (tt, d, b, h), hn), st(yh, (d, b, h), hn))
        if op == "GRU":
            z = f[0](clipped(gate(tt, b, h, 0)))
            if rh is None:  # linear_before_reset: r * (R_h h + Rb_h)
                rr = f[0](clipped(gate(tt, b, h, 1)))
                cand = f[1](clipped(ld(gx, tt, b, h + 2 * H) + rr * ld(gh, b, h + 2 * H)))
            else:
                cand = f[1](clipped(gate(tt, b, h, 2)))
            hn = (const(1.0, dt) - z) * cand + z * hprev
            return seq(st(y, (tt, d, b, h), hn), st(yh, (d, b, h), hn))
        yc, p = outs[2], ins[6]
        cprev = ld(yc, d, b, h)
        i = f[0](clipped(gate(tt, b, h, 0) + ld(p, d, h) * cprev))
        if attrs["input_forget"]:
            fg = const(1.0, dt) - i
        else:
            fg = f[0](clipped(gate(tt, b, h, 2) + ld(p, d, h + 2 * H) * cprev))
        c = f[1](clipped(gate(tt, b, h, 3)))
        # The new cell value goes through a local first: the stores below overwrite the state
        # buffers the expressions read.
        cn = Load(cell, lane)
        o = f[0](clipped(gate(tt, b, h, 1) + ld(p, d, h + H) * cn))
        hn = o * f[2](cn)
        return seq(Store(cell, lane, fg * cprev + i * c), st(yc, (d, b, h), cn),
                   st(y, (tt, d, b, h), hn), st(yh, (d, b, h), hn))

    body = []
    for d in range(D):
        reverse = attrs["direction"] == "reverse" or d == 1
        f = acts[d]
        state = [(yh, h0)] + ([(outs[2], ins[5])] if op == "LSTM" else [])
        for sb, ib in state:
            body.append(_loop("b", B, lambda b, sb=sb, ib=ib, d=d: _cols(
                "h", H, lambda h, lane, vl: st(sb, (d, b, h), ld(ib, d, b, h)))))
        # Input projection of all time steps at once: gx[t, b] = x[t, b] W + Wb.
        body.append(_loop("t", T, lambda t, d=d: _loop("b", B, lambda b: gemv(
            gx, lambda j: (t, b, j), 0, GH, lambda g: ld(bias, d, g), I,
            lambda k: ld(x, t, b, k), w, d))))

        def step(t, d=d, reverse=reverse, f=f):
            tt = (const(T - 1) - t) if reverse else t
            parts = [_loop("b", B, lambda b: gemv(
                gh, lambda j: (b, j), 0, GH, lambda g: ld(bias, d, g + GH), H,
                lambda k: ld(yh, d, b, k), r, d))]
            if rh is not None:
                # GRU, linear_before_reset=0: the candidate uses R_h (r * h), so r first.
                def r_times_h(b, j):
                    return f[0](clipped(gate(tt, b, j, 1))) * ld(yh, d, b, j)
                parts.append(_loop("b", B, lambda b: _cols(
                    "h", H, lambda j, lane, vl: st(rh, (b, j), r_times_h(b, j)))))
                parts.append(_loop("b", B, lambda b: gemv(
                    gh, lambda j: (b, 2 * H + j), 2 * H, H, lambda g: ld(bias, d, g + GH), H,
                    lambda k: ld(rh, b, k), r, d)))
            parts.append(_loop("b", B, lambda b: _cols(
                "h", H, lambda h, lane, vl: update(b, h, lane, tt, d, f))))
            return seq(*parts)

        body.append(_loop("t", T, step))

    return PrimFunc(name, params + scratch, Allocate(acc, Allocate(cell, seq(*body))),
                    {"scratch": scratch})

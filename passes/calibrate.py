"""Calibration for post-training quantization: run the fp32 model, compiled by tilecc with the
tensors to quantize exposed as extra outputs, over sample inputs and derive each tensor's
clipping range.

Methods (per tensor):
  minmax      the observed [min, max];
  percentile  the 0.01% / 99.99% quantiles of a 2048-bin histogram over [min, max];
  entropy     TensorRT's KL-divergence search: a 2048-bin histogram of |x|; for each candidate
              threshold T (bin i >= levels), compare the clipped reference distribution P
              (outliers folded into the last bin) with Q = P requantized to `levels` bins;
              keep the T with the smallest KL(P || Q). Range = observed range clipped to +-T.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tilecc.errors import TileccError
from tilecc.graph import Graph

METHODS = ("minmax", "percentile", "entropy")
BINS = 2048


def load_samples(path, graph: Graph) -> list[dict[str, np.ndarray]]:
    """Samples from a directory of .npz files (one sample each, keyed by input name) or from
    one .npz whose arrays carry a leading sample axis."""
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.npz"))
        if not files:
            raise TileccError(f"calibration data {p}: no .npz files in the directory")
        samples = []
        for f in files:
            with np.load(f, allow_pickle=False) as z:
                samples.append({k: z[k] for k in z.files})
    elif p.is_file():
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        counts = {len(a) for a in arrays.values()}
        if len(counts) != 1:
            raise TileccError(f"calibration data {p}: arrays have different sample counts "
                              f"{sorted(counts)}; the leading axis must be the sample axis")
        samples = [{k: a[i] for k, a in arrays.items()} for i in range(counts.pop())]
    else:
        raise TileccError(f"calibration data {p} does not exist (give a directory of .npz "
                          "files or one .npz with a leading sample axis)")
    for k, s in enumerate(samples):
        for name in graph.inputs:
            if name not in s:
                raise TileccError(f"calibration sample {k} has no array {name!r} "
                                  f"(keys: {sorted(s)}); keys must be the model's input names")
            t = graph.types[name]
            s[name] = np.ascontiguousarray(s[name], dtype=t.dtype).reshape(t.shape)
    return samples


def exposed_module(graph: Graph, tensors: list[str], target=None):
    """Compile `graph` in fp32 for this machine with `tensors` appended to its outputs; returns
    a Module whose extra outputs are named like the tensors.

    Calibration always runs on a host build, whatever the artifact's target: a cross, bare-metal
    or OpenCL artifact cannot run here, and one set of statistics per graph means every target
    gets the same quantization parameters (so a cross int8 artifact computes what the host int8
    artifact computes). `target` is accepted for callers that name one; it is not used."""
    from tilecc.build import compile_graph, package
    from tilecc.passes.layout import pack_weights
    from tilecc.passes.outputs import prepare_outputs
    from tilecc.runtime.module import load
    from tilecc.targets import get_target

    target = get_target("host")

    g = graph.copy()
    g.outputs = list(g.outputs) + [t for t in tensors if t not in g.outputs]
    names = list(g.outputs)
    g = prepare_outputs(pack_weights(g, target))
    art = package(compile_graph(g, target, "tilecc_calib", names))
    with tempfile.TemporaryDirectory(prefix="tilecc_calib_") as tmp:
        path = Path(tmp) / "calib.tar"
        art.save(path)
        return load(path, num_threads=None)


@dataclass
class TensorStats:
    lo: float = np.inf
    hi: float = -np.inf
    channel_sum: np.ndarray | None = None
    count: int = 0
    hist: np.ndarray = field(default_factory=lambda: np.zeros(BINS, np.int64))
    abs_hist: np.ndarray = field(default_factory=lambda: np.zeros(BINS, np.int64))


def collect(graph: Graph, tensors: list[str], samples, target, method: str = "minmax",
            channel_axis: dict[str, int] | None = None) -> dict[str, TensorStats]:
    """Per-tensor statistics over the samples: range, per-channel means (on `channel_axis`,
    for bias correction) and, for percentile/entropy, histograms (a second pass)."""
    if method not in METHODS:
        raise TileccError(f"calibration method {method!r} is not one of {', '.join(METHODS)}")
    from tilecc import progress

    mod = exposed_module(graph, tensors, target)
    stats = {t: TensorStats() for t in tensors}
    channel_axis = channel_axis or {}
    with progress.task("calibrating", total=len(samples)) as bar:
        outs = []
        for s in samples:
            out = mod.run({k: s[k] for k in graph.inputs})
            for t in tensors:
                v = out[t]
                st = stats[t]
                st.lo, st.hi = min(st.lo, float(v.min())), max(st.hi, float(v.max()))
                ax = channel_axis.get(t)
                if ax is not None:
                    red = tuple(d for d in range(v.ndim) if d != ax % v.ndim)
                    cs = v.astype(np.float64).sum(axis=red)
                    st.channel_sum = cs if st.channel_sum is None else st.channel_sum + cs
                    st.count += v.size // v.shape[ax]
            if method != "minmax":
                outs.append({t: out[t] for t in tensors} if len(samples) <= 64 else None)
            bar.update(1)
    if method == "minmax":
        return stats
    for k, s in enumerate(samples):
        out = outs[k] if outs[k] is not None else mod.run({n: s[n] for n in graph.inputs})
        for t in tensors:
            st, v = stats[t], out[t].ravel()
            if st.hi > st.lo:
                st.hist += np.histogram(v, BINS, (st.lo, st.hi))[0]
            amax = max(abs(st.lo), abs(st.hi))
            if amax > 0:
                st.abs_hist += np.histogram(np.abs(v), BINS, (0.0, amax))[0]
    return stats


def _kl_threshold(hist: np.ndarray, amax: float, levels: int) -> float:
    """TensorRT-style entropy calibration on a histogram of |x| over [0, amax]."""
    hist = hist.astype(np.float64)
    if hist.sum() == 0:
        return amax
    best, best_i = np.inf, len(hist)
    for i in range(levels, len(hist) + 1):
        p = hist[:i].copy()
        p[i - 1] += hist[i:].sum()
        # Q: the first i bins merged into `levels` groups, each group's mass spread evenly
        # over its bins that were non-empty in the reference.
        ref = hist[:i]
        nz = ref > 0
        edges = np.linspace(0, i, levels + 1).astype(int)
        sums = np.add.reduceat(ref, edges[:-1])
        cnt = np.add.reduceat(nz.astype(np.float64), edges[:-1])
        q = np.repeat(sums / np.maximum(cnt, 1), np.diff(edges)) * nz
        ps, qs = p / p.sum(), q / max(q.sum(), 1e-300)
        m = ps > 0
        if (qs[m] == 0).any():
            continue
        kl = float(np.sum(ps[m] * np.log(ps[m] / qs[m])))
        if kl < best:
            best, best_i = kl, i
    return amax * best_i / len(hist)


def tensor_range(st: TensorStats, method: str, percentile: float = 99.99) -> tuple[float, float]:
    lo, hi = st.lo, st.hi
    if method == "minmax" or hi <= lo:
        return lo, hi
    if method == "percentile":
        cdf = np.cumsum(st.hist) / max(st.hist.sum(), 1)
        width = (hi - lo) / BINS
        q_lo = lo + width * int(np.searchsorted(cdf, (100 - percentile) / 100))
        q_hi = lo + width * (int(np.searchsorted(cdf, percentile / 100)) + 1)
        return max(lo, q_lo), min(hi, q_hi)
    amax = max(abs(lo), abs(hi))
    levels = 256 if lo >= 0 else 128  # uint8 levels after ReLU, else one sign's half
    t = _kl_threshold(st.abs_hist, amax, levels)
    return max(lo, -t), min(hi, t)


def compare(model, artifact_path, data, threshold: float = 0.99, target="host",
            input_shapes=None) -> tuple[list[dict], str | None]:
    """Per quantized layer: cosine similarity and max abs error between the fp32 model (a tilecc
    fp32 build exposing the layer outputs) and a quantized artifact built with
    expose_intermediates=True, over the samples in `data`. Returns (rows, first layer below
    `threshold` or None)."""
    from tilecc.build import prepare_graph
    from tilecc.passes.quantize import layer_tensors
    from tilecc.runtime.module import load
    from tilecc.targets import get_target

    tgt = get_target(target)
    graph, _ = prepare_graph(model, input_shapes, target=tgt, blocked=False)
    qmod = load(artifact_path)
    qnames = {o["name"] for o in qmod.output_info}
    layers = [t for t in layer_tensors(graph) if t in qnames]
    if not layers:
        raise TileccError(f"{artifact_path} exposes no quantized layer outputs; build it with "
                          "`tilecc compile --quantize int8 --expose-intermediates`")
    ref = exposed_module(graph, layers, tgt)
    samples = load_samples(data, graph)
    dots = {t: np.zeros(3) for t in layers}
    err = dict.fromkeys(layers, 0.0)
    for s in samples:
        feed = {k: s[k] for k in graph.inputs}
        r, q = ref.run(feed), qmod.run(feed)
        for t in layers:
            a, b = r[t].astype(np.float64).ravel(), q[t].astype(np.float64).ravel()
            dots[t] += (a @ b, a @ a, b @ b)
            err[t] = max(err[t], float(np.abs(a - b).max()))
    rows, first = [], None
    for t in layers:
        ab, aa, bb = dots[t]
        cos = float(ab / np.sqrt(aa * bb)) if aa > 0 and bb > 0 else float(aa == bb)
        rows.append({"layer": t, "cosine": cos, "max_abs_err": err[t]})
        if first is None and cos < threshold:
            first = t
    return rows, first

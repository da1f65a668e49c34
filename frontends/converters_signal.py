"""ONNX signal-processing converters: DFT, STFT, MelWeightMatrix, Hann/Hamming/BlackmanWindow.

A DFT of static length is a linear map, so it becomes one MatMul with a constant matrix built
at compile time (the direct O(n^2) sum; float64 so sums of hundreds of terms keep float32
accuracy). Complex tensors are ONNX's real representation: a trailing dim of 2 (re, im), or 1
for a real signal. STFT gathers the frames with a constant-index Gather, applies the window and
runs the same matrix; MelWeightMatrix and the windows take only scalars and fold to
constants.
"""

from __future__ import annotations

import numpy as np

from .onnx_builder import Builder, converter
from .onnx_converters import _axis, _ints, _reshape


def dft_matrix(m: int, c_in: int, length: int, inverse: bool, onesided: bool) -> np.ndarray:
    """(m * c_in, k_out * c_out) float64 matrix of one DFT along a signal of m samples.

    Rows: input sample j, component (re[, im]); samples past `length` are truncated, a shorter
    signal is zero-padded. Columns: output bin k (0..length-1, or length // 2 + 1 one-sided),
    component (re, im); the one-sided inverse (irfft) takes bins 0..length // 2 and gives a
    real signal (c_out 1) via Hermitian symmetry.
    """
    j = np.arange(m)[:, None]
    if inverse and onesided:
        n = np.arange(length)[None, :]
        theta = 2 * np.pi * j * n / length
        # Each bin k of the half spectrum stands for k and length - k, except 0 and Nyquist.
        mult = np.where((j == 0) | (2 * j == length), 1.0, 2.0) * (j <= length // 2)
        re = mult * np.cos(theta) / length
        im = -mult * np.sin(theta) / length
        im = np.where((j == 0) | (2 * j == length), 0.0, im)  # their imaginary parts drop out
        rows = [re, im] if c_in == 2 else [re]
        w = np.stack(rows, axis=1).reshape(m * c_in, length)
        return w
    k_out = length // 2 + 1 if onesided else length
    k = np.arange(k_out)[None, :]
    theta = 2 * np.pi * j * k / length
    sign = 1.0 if inverse else -1.0
    scale = 1.0 / length if inverse else 1.0
    cos, sin = np.cos(theta) * scale, sign * np.sin(theta) * scale
    keep = (j < length).astype(np.float64)
    cos, sin = cos * keep, sin * keep
    # (re + i im)(cos + i sin): re' = re cos - im sin, im' = re sin + im cos
    from_re = np.stack([cos, sin], axis=-1)  # (m, k_out, 2)
    from_im = np.stack([-sin, cos], axis=-1)
    rows = [from_re, from_im] if c_in == 2 else [from_re]
    return np.stack(rows, axis=1).reshape(m * c_in, k_out * 2)


def _dft(b: Builder, x: str, axis: int, length: int | None, inverse: bool, onesided: bool) -> str:
    shape = b.shape(x)
    r = len(shape)
    c_in = shape[-1]
    if c_in not in (1, 2):
        raise b.error(f"the last dim must be 1 (real) or 2 (complex), got shape {list(shape)}")
    axis = _axis(b, axis, r)
    if axis == r - 1:
        raise b.error("axis must not be the last (real/imaginary) dim")
    m = shape[axis]
    if length is None:
        length = 2 * (m - 1) if inverse and onesided else m
    if length < 1:
        raise b.error(f"dft_length {length} is not positive")
    w = dft_matrix(m, c_in, length, inverse, onesided)
    k_out, c_out = (length, 1) if inverse and onesided else (w.shape[1] // 2, 2)
    others = [d for d in range(r - 1) if d != axis]
    perm = tuple(others) + (axis, r - 1)
    xt = x if perm == tuple(range(r)) else b.emit("Transpose", [x], {"perm": perm})[0]
    lead = [shape[d] for d in others]
    x2 = _reshape(b, xt, (int(np.prod(lead, dtype=np.int64)), m * c_in))
    dtype = b.type(x).dtype
    x2 = b.emit("Cast", [x2], {"to": "float64"})[0] if dtype != "float64" else x2
    y2 = b.emit("MatMul", [x2, b.add_const(w, "dft_matrix")])[0]
    y2 = b.emit("Cast", [y2], {"to": dtype})[0] if dtype != "float64" else y2
    y = _reshape(b, y2, tuple(lead) + (k_out, c_out))
    inv = tuple(int(i) for i in np.argsort(perm))
    return y if perm == tuple(range(r)) else b.emit("Transpose", [y], {"perm": inv})[0]


def _opt_int(b: Builder, ins, k: int, what: str) -> int | None:
    if len(ins) > k and ins[k]:
        return int(_ints(b.static(ins[k], what))[0])
    return None


@converter("DFT", 17)
def DFT17(b, ins, n_out, *, axis=1, inverse=0, onesided=0):
    return [_dft(b, ins[0], int(axis), _opt_int(b, ins, 1, "dft_length"), bool(inverse),
                 bool(onesided))]


@converter("DFT", 20)
def DFT(b, ins, n_out, *, inverse=0, onesided=0):
    axis = _opt_int(b, ins, 2, "axis")
    return [_dft(b, ins[0], -2 if axis is None else axis, _opt_int(b, ins, 1, "dft_length"),
                 bool(inverse), bool(onesided))]


@converter("STFT", 17)
def STFT(b, ins, n_out, *, onesided=1):
    x = ins[0]
    shape = b.shape(x)
    if len(shape) != 3 or shape[-1] not in (1, 2):
        raise b.error(f"signal must be (batch, length, 1 or 2), got {list(shape)}")
    step = _opt_int(b, ins, 1, "frame_step")
    window = ins[2] if len(ins) > 2 and ins[2] else ""
    flen = _opt_int(b, ins, 3, "frame_length")
    if flen is None:
        flen = b.shape(window)[0] if window else shape[1]
    if step is None or step < 1 or not 1 <= flen <= shape[1]:
        raise b.error(f"frame_step {step} / frame_length {flen} do not fit a signal of "
                      f"{shape[1]} samples")
    frames = 1 + (shape[1] - flen) // step
    idx = np.arange(frames)[:, None] * step + np.arange(flen)[None, :]
    fr = b.emit("Gather", [x, b.add_const(idx.astype(np.int64), "frame_idx")], {"axis": 1})[0]
    if window:
        if b.shape(window) != (flen,):
            raise b.error(f"window must have frame_length {flen} entries, got "
                          f"{list(b.shape(window))}")
        wv = window if b.type(window).dtype == b.type(x).dtype else \
            b.emit("Cast", [window], {"to": b.type(x).dtype})[0]
        fr = b.emit("Mul", [fr, _reshape(b, wv, (flen, 1))])[0]
    # (batch, frames, flen, c): a DFT along axis 2 gives (batch, frames, bins, 2).
    return [_dft(b, fr, 2, flen, False, bool(onesided))]


@converter("MelWeightMatrix", 17)
def MelWeightMatrix(b, ins, n_out, *, output_datatype=1):
    from .converters_general import _dtype_of_onnx

    n_mel, dft_len, rate = (int(_ints(b.static(ins[i], w))[0]) for i, w in
                            enumerate(("num_mel_bins", "dft_length", "sample_rate")))
    lo = float(np.asarray(b.static(ins[3], "lower_edge_hertz")).reshape(-1)[0])
    hi = float(np.asarray(b.static(ins[4], "upper_edge_hertz")).reshape(-1)[0])
    if n_mel < 1 or dft_len < 1 or rate < 1 or not 0 <= lo < hi:
        raise b.error(f"invalid mel parameters: {n_mel} bins, dft_length {dft_len}, rate {rate}, "
                      f"edges {lo}..{hi} Hz")
    # Triangular filters between mel-spaced points, as the ONNX reference places them
    # (num_mel_bins + 2 points, FFT bin = floor((dft_length + 1) * hz / sample_rate)).
    def mel(hz):
        return 2595 * np.log1p(hz / 700) / np.log(10)

    pts = np.arange(n_mel + 2)
    step = (mel(hi) - mel(lo)) / pts.shape[0]
    hz = 700 * np.expm1((pts * step + mel(lo)) / 2595 * np.log(10))
    bins = (((dft_len + 1) * hz) // rate).astype(int)
    out = np.zeros((dft_len // 2 + 1, n_mel))
    for i in range(n_mel):
        left, center, right = bins[i], bins[i + 1], bins[i + 2]
        if center == left:
            out[center, i] = 1
        else:
            for j in range(left, center + 1):
                out[j, i] = (j - left) / (center - left)
        for j in range(center, right):
            out[j, i] = (right - j) / (right - center)
    return [b.add_const(out.astype(_dtype_of_onnx(b, output_datatype)), "mel_weights")]


# ---- signal windows (constants once the size is known) --------------------------------


def _window(kind):
    def convert(b, ins, n_out, *, output_datatype=1, periodic=1):
        from .converters_general import _dtype_of_onnx

        size = int(_ints(b.static(ins[0], "size"))[0])
        if size < 1:
            raise b.error(f"window size {size} is not positive")
        n = np.arange(size, dtype=np.float64)
        period = size if periodic else size - 1
        t = 2 * np.pi * n / max(period, 1)
        if kind == "Hann":
            w = np.sin(np.pi * n / max(period, 1)) ** 2
        elif kind == "Hamming":
            w = 25.0 / 46.0 - (21.0 / 46.0) * np.cos(t)
        else:
            w = 0.42 - 0.5 * np.cos(t) + 0.08 * np.cos(2 * t)
        return [b.add_const(w.astype(_dtype_of_onnx(b, int(output_datatype))), "window")]
    convert.__name__ = f"{kind}Window"
    converter(f"{kind}Window", 17)(convert)


for _kind in ("Hann", "Hamming", "Blackman"):
    _window(_kind)

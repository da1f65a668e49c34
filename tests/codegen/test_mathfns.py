"""Inline float32 math (codegen/mathfns.py) against numpy over dense sweeps of the whole
float range, in scalar and vector (8-lane) form, JIT-compiled for the host."""

from __future__ import annotations

import ctypes
import math

import llvmlite.binding as llvm
import numpy as np
import pytest
from llvmlite import ir

from tilecc.codegen import mathfns

F32, I64, PTR = ir.FloatType(), ir.IntType(64), ir.PointerType()
LANES = 8


class _Target:  # rounding functions are only replaced on 32-bit ARM; force them here
    triple = "armv7a-unknown-linux-gnueabihf"


class _RvvTarget:  # RVV's conversions (lrint, no vfcvt.rtz), run on the host
    triple, family, features = "riscv64-unknown-linux-gnu", "riscv", "+64bit,+v,+zvl128b"


class _CG:
    def __init__(self, module, target=None):
        self.module, self.target = module, target or _Target()


def _jit(mod: ir.Module, name: str):
    m = llvm.parse_assembly(str(mod))
    m.verify()
    tm = llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=2)
    ee = llvm.create_mcjit_compiler(m, tm)
    ee.finalize_object()
    return ee.get_function_address(name), (ee, m)


def _jit_lane_loop(nptrs: int, lanes: int, body):
    """JIT `void k(ptr * nptrs, int64 n)`: for (i = 0; i < n; i += lanes) body(b, i, ptrs, mod)
    emits one step. Returns (address, objects to keep alive)."""
    mod = ir.Module("t")
    mod.triple = llvm.get_process_triple()
    f = ir.Function(mod, ir.FunctionType(ir.VoidType(), [PTR] * nptrs + [I64]), "k")
    entry, loop, done = (f.append_basic_block(n) for n in ("entry", "loop", "done"))
    b = ir.IRBuilder(entry)
    b.branch(loop)
    b.position_at_end(loop)
    i = b.phi(I64)
    i.add_incoming(I64(0), entry)
    body(b, i, f.args[:nptrs], mod)
    nxt = b.add(i, I64(lanes))
    i.add_incoming(nxt, loop)
    b.cbranch(b.icmp_signed("<", nxt, f.args[nptrs]), loop, done)
    b.position_at_end(done)
    b.ret_void()
    return _jit(mod, "k")


def _kernel(fn: str, nargs: int, lanes: int, target=None):
    """void k(float *out, const float *a, const float *b, int64 n): out[i] = fn(a[i], b[i])."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    ety = ir.VectorType(F32, lanes) if lanes > 1 else F32

    def body(b, i, ptrs, mod):
        args = [b.load(b.gep(p, [i], source_etype=F32), typ=ety, align=4)
                for p in ptrs[1:1 + nargs]]
        r = mathfns.emit_call(_CG(mod, target), b, fn, args)
        assert r is not None
        b.store(r, b.gep(ptrs[0], [i], source_etype=F32), align=4)

    addr, keep = _jit_lane_loop(3, lanes, body)
    cfn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                           ctypes.c_int64)(addr)

    def run(a, bb=None):
        a = np.ascontiguousarray(a, np.float32)
        n = len(a)
        pad = -n % lanes
        a2 = np.concatenate([a, np.ones(pad, np.float32)])
        b2 = np.concatenate([np.ascontiguousarray(bb if bb is not None else a, np.float32),
                             np.ones(pad, np.float32)])
        out = np.empty_like(a2)
        cfn(out.ctypes.data, a2.ctypes.data, b2.ctypes.data, len(a2))
        return out[:n]
    run._keep = keep
    return run


def _sweep(lo_exp=-149, hi_exp=128, per_octave=4096, seed=0):
    """Positive and negative floats covering every binade densely, plus the edge values."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 0x7F800000, 2_000_000, dtype=np.int64).astype(np.uint32)
    x = bits.view(np.float32)
    dense = np.linspace(-20, 20, 400_001, dtype=np.float32)
    edges = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 1e-45, -1e-45, 1.17e-38,
                      3.4028235e38, -3.4028235e38, 88.72, 88.73, -87.3, -103.9, -104.0],
                     np.float32)
    return np.concatenate([x, -x, dense, edges])


def _ulps(got, want):
    """Distance in float32 ulps at `want` (exact when both are equal, incl. inf/nan)."""
    got, want = got.astype(np.float64), want.astype(np.float64)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    ulp = np.maximum(ulp, 2.0 ** -149)
    with np.errstate(invalid="ignore"):
        d = np.abs(got - want) / ulp
    return np.where(same, 0.0, d)


REFS = {
    "exp": lambda x: np.exp(x.astype(np.float64)).astype(np.float32),
    "log": lambda x: np.log(x.astype(np.float64)).astype(np.float32),
    "tanh": lambda x: np.tanh(x.astype(np.float64)).astype(np.float32),
    "erf": lambda x: np.vectorize(math.erf, otypes=[np.float64])(
        x.astype(np.float64)).astype(np.float32),
    "sigmoid": lambda x: (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32),
}
# Max ulps from the correctly rounded result (the double reference rounded to float).
MAX_ULPS = {"exp": 1, "log": 1, "tanh": 1, "erf": 2, "sigmoid": 2}
# Below this the sigmoid is held to an absolute error of FLT_MIN instead (mathfns._sigmoidf).
SIGMOID_ABS_BELOW = 2.0 ** -126


@pytest.mark.parametrize("rvv", [False, True], ids=["", "rvv_conversions"])
@pytest.mark.parametrize("lanes", [1, LANES])
@pytest.mark.parametrize("fn", sorted(REFS))
def test_unary_accuracy(fn, lanes, rvv):
    x = _sweep()
    if fn == "erf":
        x = np.concatenate([x[::8], np.linspace(-5, 5, 200_001, dtype=np.float32)])
    with np.errstate(all="ignore"):
        want = REFS[fn](x)
    got = _kernel(fn, 1, lanes, _RvvTarget() if rvv else None)(x)
    # Results in the denormal range have an absolute, not relative, error budget.
    d = _ulps(got, want)
    if fn == "sigmoid":
        tiny = want < SIGMOID_ABS_BELOW
        assert np.all(np.abs(got[tiny].astype(np.float64) - want[tiny]) <= SIGMOID_ABS_BELOW)
        d[tiny] = 0.0
    worst = int(np.nanargmax(d))
    print(f"{fn} lanes={lanes}: max {d.max():.2f} ulp at x={x[worst]!r} "
          f"(got {got[worst]!r}, want {want[worst]!r}) over {len(x)} points")
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert d.max() <= MAX_ULPS[fn]


def _pow_ref(x, y):
    with np.errstate(all="ignore"):
        return np.power(x.astype(np.float64), y.astype(np.float64)).astype(np.float32)


@pytest.mark.parametrize("rvv", [False, True], ids=["", "rvv_conversions"])
@pytest.mark.parametrize("lanes", [1, LANES])
def test_pow_accuracy_and_special_cases(lanes, rvv):
    rng = np.random.default_rng(1)
    n = 400_000
    x = np.concatenate([rng.uniform(0, 4, n), rng.uniform(-3, 3, n),
                        np.exp(rng.uniform(-80, 80, n))]).astype(np.float32)
    y = np.concatenate([rng.uniform(-30, 30, n), rng.integers(-20, 20, n),
                        rng.uniform(-1, 1, n)]).astype(np.float32)
    special = np.array([0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, np.inf, -np.inf, np.nan, 1e-45,
                        3.4e38, -8.0], np.float32)
    sx, sy = np.meshgrid(special, np.concatenate([special, [3.0, -3.0, 0.5, -0.5, 1e9]]))
    x = np.concatenate([x, sx.ravel().astype(np.float32)])
    y = np.concatenate([y, sy.ravel().astype(np.float32)])
    want = _pow_ref(x, y)
    got = _kernel("pow", 2, lanes, _RvvTarget() if rvv else None)(x, y)
    d = _ulps(got, want)
    worst = int(np.argmax(d))
    print(f"pow lanes={lanes}: max {d.max():.2f} ulp at ({x[worst]!r}, {y[worst]!r})")
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.array_equal(np.signbit(got[~np.isnan(got)]), np.signbit(want[~np.isnan(want)]))
    assert d.max() <= 1


@pytest.mark.parametrize("fn", ["floor", "ceil", "round"])
def test_rounding_arm32_forms(fn):
    x = np.concatenate([np.linspace(-10, 10, 100_001, dtype=np.float32),
                        np.array([0.5, 1.5, 2.5, -0.5, -2.5, -0.0, 0.0, 8388607.5, 8388608.0,
                                  1e30, -1e30, np.inf, -np.inf, np.nan, -0.3], np.float32)])
    ref = {"floor": np.floor, "ceil": np.ceil, "round": np.round}[fn](x)
    for lanes in (1, LANES):
        got = _kernel(fn, 1, lanes)(x)
        np.testing.assert_array_equal(got, ref)
        assert np.array_equal(np.signbit(got), np.signbit(ref))


INT_TYPES = {"int8": 8, "uint8": 8, "int16": 16, "int32": 32, "uint32": 32, "int64": 64,
             "uint64": 64}


@pytest.mark.parametrize("src", ["float32", "float64"])
@pytest.mark.parametrize("dst", sorted(INT_TYPES))
def test_fp_to_int_truncates_like_fptosi(dst, src):
    """mathfns.fp_to_int (RVV's float-to-int: lrint plus a step toward zero) equals C's
    truncating conversion over the destination's whole range, in vector and scalar form."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    info = np.iinfo(dst)
    rng = np.random.default_rng(2)
    lo, hi = float(info.min), float(info.max)
    x = np.concatenate([
        rng.uniform(lo, hi, 100_000), rng.uniform(-300, 300, 100_000) % (hi - lo + 1) + lo,
        np.arange(-4, 4.01, 0.25), np.float64(2.0) ** np.arange(0, INT_TYPES[dst]) - 0.5,
        [lo, hi * 0.999, 0.49999997, -0.49999997, 8388607.5, 4503599627370495.5]])
    x = x.astype(src)
    x = x[(x >= lo) & (x < hi + 1.0) & (x > lo - 1.0)]  # fptosi/fptoui defined there
    want = np.trunc(x.astype(np.float64)).astype(dst)
    fty = ir.FloatType() if src == "float32" else ir.DoubleType()
    ity = ir.IntType(INT_TYPES[dst])
    for lanes in (1, LANES):
        vf = ir.VectorType(fty, lanes) if lanes > 1 else fty
        vi = ir.VectorType(ity, lanes) if lanes > 1 else ity

        def body(b, i, ptrs, mod, vf=vf, vi=vi):
            v = b.load(b.gep(ptrs[1], [i], source_etype=fty), typ=vf, align=4)
            r = mathfns.fp_to_int(b, v, vi, signed=dst.startswith("int"))
            b.store(r, b.gep(ptrs[0], [i], source_etype=ity), align=1)

        addr, _keep = _jit_lane_loop(2, lanes, body)
        run = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(addr)
        n = len(x) - len(x) % lanes
        got = np.empty(n, dst)
        xs = np.ascontiguousarray(x[:n])
        run(got.ctypes.data, xs.ctypes.data, n)
        bad = np.flatnonzero(got != want[:n])
        assert bad.size == 0, f"lanes={lanes}: {x[bad[:5]]} -> {got[bad[:5]]}, want {want[bad[:5]]}"

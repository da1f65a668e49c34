"""The LLVM lowering of casts to and from bfloat16 / float8 (codegen/floatfmt.py), compiled
for the host in scalar and 8-lane vector form, bit for bit against onnx's reference Cast
(onnx.reference.ops.op_cast.cast_to) over every code and a float32 sweep with ties,
subnormals, NaN, inf and overflow; and for cross targets: the conversion is integer code,
no runtime-library helper is called."""

from __future__ import annotations

import re
import warnings

import llvmlite.binding as llvm
import numpy as np
import pytest
from llvmlite import ir
from onnx import TensorProto
from onnx.reference.ops.op_cast import cast_to

from tests.compiler.test_floatfmt import ONNX_TYPE, SWEEP, modes
from tilecc import floatfmt, te
from tilecc.codegen.function import aligned_empty, build_function
from tilecc.codegen.llvm import I32, PTR, ModuleCodegen
from tilecc.expr import cast
from tilecc.schedule import create_schedule, lower
from tilecc.targets import get_target

HOST = get_target("host")
FORMATS = list(floatfmt.FORMATS)


def cast_schedule(n: int, src: str, dst: str, saturate=True, round_mode="up", lanes=1):
    a = te.placeholder((n,), src, name="a")
    b = te.compute((n,), lambda i: cast(dst, a[i], saturate, round_mode), name="b")
    sch = create_schedule(b)
    if lanes > 1:
        _, inner = sch[b].split(sch[b].op.axes[0], lanes)
        sch[b].vectorize(inner)
    return sch, [a, b]


def run_cast(x: np.ndarray, dst: str, saturate=True, round_mode="up", lanes=1) -> np.ndarray:
    sch, args = cast_schedule(x.size, x.dtype.name, dst, saturate, round_mode, lanes)
    fn = build_function(sch, args, HOST, "k")
    xin = aligned_empty(x.shape, x.dtype)
    xin[...] = x
    out = aligned_empty(x.shape, dst)
    fn(xin, out)
    return out


def ref(x: np.ndarray, to: int, saturate=True, round_mode="up") -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(cast_to(x, to, saturate, round_mode))


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view({1: np.uint8, 2: np.uint16, 4: np.uint32}[a.dtype.itemsize])


@pytest.mark.parametrize("lanes", [1, 8])
@pytest.mark.parametrize("name", FORMATS)
def test_float32_to_format(name, lanes):
    x = SWEEP.view(np.float32)
    for saturate, round_mode in modes(name):
        got = _bits(run_cast(x, name, saturate, round_mode, lanes))
        want = _bits(ref(x, ONNX_TYPE[name], saturate, round_mode))
        bad = np.nonzero(got != want)[0]
        assert bad.size == 0, (saturate, round_mode, [
            (hex(SWEEP[i]), hex(int(want[i])), hex(int(got[i]))) for i in bad[:5]])


@pytest.mark.parametrize("lanes", [1, 8])
@pytest.mark.parametrize("name", FORMATS)
def test_every_code_to_float32_and_float16(name, lanes):
    f = floatfmt.FORMATS[name]
    codes = np.arange(1 << f.bits).astype(f.storage).view(floatfmt.np_dtype(name))
    got = run_cast(codes, "float32", lanes=lanes)
    np.testing.assert_array_equal(_bits(got), _bits(ref(codes, TensorProto.FLOAT)))
    # To float16 (one rounding of the exact float32): bit for bit, except that a NaN's
    # payload is not specified (LLVM keeps its top bits, ml_dtypes makes it canonical).
    got, want = run_cast(codes, "float16", lanes=lanes), ref(codes, TensorProto.FLOAT16)
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(_bits(got)[~nan], _bits(want)[~nan])


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
                                  "float8_e5m2fnuz", "float8_e8m0fnu", "bfloat16"])
def test_float16_to_format(name):
    """Every float16 bit pattern (one rounding: float16 -> float32 is exact)."""
    x = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    for saturate, round_mode in modes(name):
        got = _bits(run_cast(x, name, saturate, round_mode, lanes=8))
        np.testing.assert_array_equal(got, _bits(ref(x, ONNX_TYPE[name], saturate, round_mode)))


def test_format_to_format_and_int():
    """bfloat16 -> float8 rounds once (bfloat16 is exact in float32); float8 -> int32
    truncates like float32 -> int32."""
    codes = np.arange(1 << 16, dtype=np.uint16).view(floatfmt.np_dtype("bfloat16"))
    got = _bits(run_cast(codes, "float8_e4m3fn", lanes=8))
    want = _bits(ref(codes.astype(np.float32), ONNX_TYPE["float8_e4m3fn"]))
    np.testing.assert_array_equal(got, want)
    f8 = np.arange(256, dtype=np.uint8).view(floatfmt.np_dtype("float8_e4m3fn"))
    f32 = f8.astype(np.float32)
    finite = np.isfinite(f32)
    got = run_cast(f8, "int32")
    np.testing.assert_array_equal(got[finite], f32[finite].astype(np.int32))


def _module_for(target_name: str):
    """Every conversion to and from float32 as kernels of one module for a target."""
    target = get_target(target_name)
    cg = ModuleCodegen(target, "casts")
    for k, name in enumerate(FORMATS):
        for src, dst in (("float32", name), (name, "float32")):
            sch, args = cast_schedule(64, src, dst, lanes=8)
            fn = cg.add_kernel(lower(sch, args, f"k{k}_{src[:5]}"))
            fn.linkage = "external"  # keep it: nothing calls it in this module
    entry = ir.Function(cg.module, ir.FunctionType(I32, [PTR]), "entry")
    ir.IRBuilder(entry.append_basic_block("e")).ret(I32(0))
    return cg


_CALL = re.compile(r"^\s+(?:call[ql]?|bl|blx|jal|tail|jalr|b)\s+([A-Za-z_.$][\w.$@]*)", re.MULTILINE)


@pytest.mark.parametrize("target", ["aarch64", "cortex-a7", "riscv64-rvv", "host"])
def test_conversions_call_no_helpers(target):
    """The lowering is plain integer code on every target: the assembly calls no symbol
    (no __truncsfbf2-style runtime helper, no libm)."""
    cg = _module_for(target)
    mod = llvm.parse_assembly(str(cg.module))
    mod.verify()
    tm = cg.target_machine()
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)
    asm = tm.emit_assembly(mod)
    labels = set(re.findall(r"^([A-Za-z_.$][\w.$]*):", asm, re.MULTILINE))
    external = {c for c in _CALL.findall(asm) if c not in labels and not c.startswith(".L")}
    assert not external, sorted(external)
    assert "k0_float" in asm  # the kernels were really emitted

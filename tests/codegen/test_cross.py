"""Cross code generation: the conv and GEMM kernels of a compiled artifact use the target's
vector unit. `objdump -d` of lib/model.o (the artifact's object) must show NEON
multiply-accumulate on 128-bit registers for aarch64 (`fmla vN.4s`), NEON q-register float
arithmetic for cortex-a7 (`vmla/vfma.f32 q`, or `vmul.f32 q` + `vadd.f32 q`: LLVM keeps them
separate on the A7, whose VMLA is not fused and stalls on back-to-back accumulation), and RVV
loads and FMAs for riscv64-rvv (`vle32.v` and `vfmacc`/`vfmadd`).

RVV code must not contain conversions with a static rounding mode (`vfcvt.rtz.*` and
friends): qemu 7.2 aborts translating them (codegen/mathfns.py explains);
`float_to_int_model` exercises every place tilecc converts float to int (Cast to each integer
type, exp's 2^k in Softmax, pow's exponent test in LRN). Nor may it run integer vector
operations on register groups wider than one register (LMUL > 1 at full length): qemu turns
those into 256-bit AVX host code that slows every later soft-float helper ~15x
(targets/target.py explains)."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.models.builders import ds_cnn_kws
from tests.models.harness import import_tilecc
from tests.targets.crosstools import need_tools

PATTERNS = {
    "aarch64": [r"\bfmla\s+v\d+\.4s"],
    "cortex-a7": [r"\bv(mla|fma)\.f32\s+q|\bvmul\.f32\s+q", r"\bv(mla|fma|add)\.f32\s+q"],
    "riscv64-rvv": [r"\bvle32\.v", r"\bvf(macc|madd)\.v[vf]"],
}


def kernels_disassembly(objdump: str, obj) -> dict[str, str]:
    """Function name -> its disassembly (local labels such as RISC-V's .Lpcrel_hi* belong to
    the function before them)."""
    text = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(obj)], check=True,
                          capture_output=True, text=True).stdout
    funcs: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^[0-9a-f]+ <([^>]+)>:", line)
        if m and not m.group(1).startswith(".L"):
            current = m.group(1)
            funcs[current] = ""
        elif current is not None:
            funcs[current] += line + "\n"
    return funcs


@pytest.mark.parametrize("target", sorted(PATTERNS))
def test_conv_and_gemm_kernels_are_vectorised(target, tmp_path):
    tilecc = import_tilecc()
    from tilecc.targets import get_target

    t = get_target(target)
    need_tools(t.objdump, t.linker)
    art = tilecc.compile(ds_cnn_kws(), target=target)
    obj = tmp_path / "model.o"
    obj.write_bytes(art.files["lib/model.o"])
    funcs = kernels_disassembly(t.objdump, obj)
    for kind in ("conv", "gemm"):
        body = "".join(code for name, code in funcs.items() if kind in name)
        assert body, f"no {kind} kernel among {sorted(funcs)}"
        for pat in PATTERNS[target]:
            hits = len(re.findall(pat, body))
            print(f"{target} {kind}: {pat!r} x{hits}")
            assert hits > 0, f"{target} {kind} kernel lacks {pat!r}"


SHAPE = [1, 4, 6, 7]  # 168 elements: whole vectors plus a tail at every vector width
CASTS = {"i8": ("x", TensorProto.INT8), "u8": ("ax", TensorProto.UINT8),
         "i32": ("big", TensorProto.INT32), "i64": ("big", TensorProto.INT64),
         "u32": ("xu32", TensorProto.UINT32), "u64": ("xu64", TensorProto.UINT64)}


def float_to_int_model() -> onnx.ModelProto:
    """Softmax and LRN (exp, pow) of x, and Cast of float inputs to every integer type."""
    nodes = [helper.make_node("Softmax", ["x"], ["softmax"], axis=-1),
             helper.make_node("LRN", ["x"], ["lrn"], size=3, alpha=1e-2, beta=0.75, bias=1.0),
             helper.make_node("Abs", ["x"], ["ax"])]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, SHAPE)
            for n in ("softmax", "lrn")]
    for name, (src, ty) in CASTS.items():
        nodes.append(helper.make_node("Cast", [src], [name], to=ty))
        outs.append(helper.make_tensor_value_info(name, ty, SHAPE))
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, SHAPE)
           for n in ("x", "big", "xu32", "xu64")]
    graph = helper.make_graph(nodes, "float_to_int", ins, outs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def float_to_int_inputs() -> dict[str, np.ndarray]:
    """Values where truncation and round-to-nearest differ (halves, .7s, both signs), exact
    integers, and magnitudes up to each destination type's limits."""
    rng = np.random.default_rng(0)
    n = int(np.prod(SHAPE))
    edge = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49, -0.49, 2.7, -2.7, 3.0, -3.0,
                     0.0, -0.0, 126.9, -127.9, 1e-30, -1e-30], np.float32)

    def fill(vals, scale):
        out = (rng.standard_normal(n) * scale).astype(np.float32)
        out[:len(vals)] = vals
        return rng.permutation(out).reshape(SHAPE).astype(np.float32)

    big = np.concatenate([edge, [8388607.5, -8388607.5, 16777217.0, 2.1e9, -2.1e9,
                                 2147483520.0, -2147483648.0, 123456.75, -123456.75]])
    u32 = np.concatenate([np.abs(edge), [4.2e9, 4294967040.0, 2147483904.0, 3e9 + 0.5]])
    u64 = np.concatenate([np.abs(edge), [1.8e19, 2.0 ** 63, 9.3e18, 2.0 ** 63 - 2.0 ** 40]])
    return {"x": fill(np.clip(edge, -127.9, 126.9), 30.0), "big": fill(big, 1e6),
            "xu32": np.abs(fill(u32, 1e9)), "xu64": np.abs(fill(u64, 1e18))}


def test_rvv_float_to_int_avoids_static_rounding_conversions(tmp_path):
    tilecc = import_tilecc()
    from tilecc.targets import get_target

    t = get_target("riscv64-rvv")
    need_tools(t.objdump, t.linker)
    art = tilecc.compile(float_to_int_model(), target=t)
    obj = tmp_path / "model.o"
    obj.write_bytes(art.files["lib/model.o"])
    funcs = kernels_disassembly(t.objdump, obj)
    body = "".join(funcs.values())
    static = sorted(set(re.findall(r"\bvf[nw]?cvt\.(?:rtz|rod)\.\S+", body)))
    assert not static, f"static-rounding RVV conversions (qemu 7.2 aborts on them): {static}"
    # The conversions stay vector code: the dynamic-rounding forms replace the RTZ ones.
    dyn = re.findall(r"\bvf[nw]?cvt\.x\.f\.[vw]\b", body)
    print(f"riscv64-rvv: {len(dyn)} dynamic-rounding vector float-to-int conversions")
    assert dyn, "no vector float-to-int conversion in the RVV code"


# Integer/move operations qemu 7.2 translates inline into host vector code (gvec) when they
# cover the whole register group; floating-point, load/store and slide operations call C
# helpers instead and are harmless whatever the LMUL.
_GVEC = re.compile(r"\b(?:(?:vadd|vsub|vrsub|vand|vor|vxor|vmul|vsll|vsrl|vsra|vminu?|vmaxu?)"
                   r"\.v[vxi]|vmv\.v\.[vxi]|vfmv\.v\.f|vmv[248]r\.v)\b")


def wide_vector_ops(disassembly: dict[str, str], vlen: int) -> list[str]:
    """Instructions of `_GVEC` that run on more than `vlen` bits: tracks vl and vtype through
    each function's straight-line text (vsetivli sets vl, `vsetvli zero,zero` keeps it, any
    other vsetvli makes it unknown, which counts as wide under LMUL > 1)."""
    bad = []
    for fn, code in disassembly.items():
        vl, sew, lmul = None, 32, "1"
        for line in code.splitlines():
            m = re.search(r"\bvset(i?)vli\s+(\w+),\s*(\w+),\s*e(\d+),\s*m(f?\d)", line)
            if m:
                imm, rd, avl, e, lmul = m.groups()
                sew = int(e)
                if imm:
                    vl = int(avl)
                elif not (rd == "zero" and avl == "zero"):
                    vl = None
                continue
            op = _GVEC.search(line)
            if op is None:
                continue
            group = op.group(0).startswith(("vmv2r", "vmv4r", "vmv8r"))
            if group or (lmul in "248" and (vl is None or vl * sew > vlen)):
                bad.append(f"{fn}: {line.strip()} (e{sew}, m{lmul}, vl={vl})")
    return bad


def test_rvv_integer_vector_ops_fit_one_register(tmp_path):
    tilecc = import_tilecc()
    from tilecc.targets import get_target

    t = get_target("riscv64-rvv")
    need_tools(t.objdump, t.linker)
    checked = 0
    for name, model in (("ds_cnn_kws", ds_cnn_kws()), ("float_to_int", float_to_int_model())):
        art = tilecc.compile(model, target=t)
        obj = tmp_path / f"{name}.o"
        obj.write_bytes(art.files["lib/model.o"])
        funcs = kernels_disassembly(t.objdump, obj)
        checked += sum(len(_GVEC.findall(code)) for code in funcs.values())
        bad = wide_vector_ops(funcs, t.vector_bits)
        assert not bad, f"{name}: vector ops wider than one register:\n" + "\n".join(bad[:10])
    print(f"riscv64-rvv: {checked} integer vector ops, all within one register")
    assert checked > 0

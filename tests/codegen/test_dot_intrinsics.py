"""codegen/dot_intrinsics.py at lane counts the int8 kernels do not use today: dot4 calls wider
than one ARM register (split into 4- or 2-lane sdot/usdot) and widening multiplies in 4-lane
chunks or with a generic tail. Each case is one small LLVM function, linked with a C main for
the preset and run under qemu-user; its results must equal numpy's."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from llvmlite import ir

from tests.models.harness import import_tilecc
from tests.targets.crosstools import need_tools

I16, I32 = ir.IntType(16), ir.IntType(32)

CASES = [("cortex-a76", "dot", n) for n in (4, 6, 8)] + \
        [("cortex-a710", "dot", 8)] + \
        [(t, "mul", n) for t in ("aarch64", "cortex-a7") for n in (4, 6, 8)]


def _kernel_object(t, kind: str, n: int) -> tuple[bytes, str]:
    """k(acc, x, w, out): out = acc + dot4(x, w) (the target's packed dot call), or
    out = x * w widened from int16; and the name of the dot call."""
    from tilecc.codegen import dot_intrinsics as D
    from tilecc.codegen.llvm import PTR, ModuleCodegen

    cg = ModuleCodegen(t)
    fn = ir.Function(cg.module, ir.FunctionType(ir.VoidType(), [PTR] * 4), "k")
    b = ir.IRBuilder(fn.append_basic_block())
    acc_p, x_p, w_p, out_p = fn.args
    vi = ir.VectorType(I32, n)
    dot = D.packed_dot(t) or D.DOT4_U8S8
    if kind == "dot":
        acc, x, w = (b.load(p, typ=vi, align=4) for p in (acc_p, x_p, w_p))
        r = D.emit_dot4_add(b, cg.module, t, dot, acc, x, w)
    else:
        vh = ir.VectorType(I16, n)
        r = D.emit_widening_mul(b, t, cg.module, b.load(x_p, typ=vh, align=2),
                                b.load(w_p, typ=vh, align=2))
    b.store(r, out_p, align=4)
    b.ret_void()
    return cg.compile()[0], dot


def _c_array(name: str, ctype: str, a: np.ndarray) -> str:
    return f"static {ctype} {name}[] = {{{', '.join(str(int(v)) for v in a)}}};\n"


@pytest.mark.parametrize("target,kind,n", CASES)
def test_chunked_dot_and_widening_mul_under_qemu(target, kind, n, tmp_path):
    import_tilecc()
    from tilecc.codegen.dot_intrinsics import DOT4_S8S8
    from tilecc.targets import get_target

    t = get_target(target)
    need_tools(t.linker, *t.qemu[:1])
    obj, dot = _kernel_object(t, kind, n)
    (tmp_path / "k.o").write_bytes(obj)
    rng = np.random.default_rng(n)
    if kind == "dot":
        acc = rng.integers(-10 ** 6, 10 ** 6, n).astype(np.int32)
        x = rng.integers(-2 ** 31, 2 ** 31, n, dtype=np.int64).astype(np.int32)
        w = rng.integers(-2 ** 31, 2 ** 31, n, dtype=np.int64).astype(np.int32)
        xb = x.view(np.int8 if dot == DOT4_S8S8 else np.uint8).reshape(n, 4).astype(np.int64)
        want = acc + (xb * w.view(np.int8).reshape(n, 4)).sum(1)
        ctype, arrays = "int32_t", {"A": acc, "X": x, "W": w}
    else:
        x = rng.integers(-2 ** 15, 2 ** 15, n).astype(np.int16)
        w = rng.integers(-2 ** 15, 2 ** 15, n).astype(np.int16)
        want = x.astype(np.int64) * w
        ctype, arrays = "int16_t", {"A": np.zeros(n, np.int16), "X": x, "W": w}
    src = "#include <stdint.h>\n#include <stdio.h>\nvoid k(void *, void *, void *, void *);\n"
    src += "".join(_c_array(k, ctype, v) for k, v in arrays.items())
    src += (f"static int32_t O[{n}];\nint main(void) {{\n  k(A, X, W, O);\n"
            f"  for (int i = 0; i < {n}; i++) printf(\"%d\\n\", (int)O[i]);\n  return 0;\n}}\n")
    (tmp_path / "main.c").write_text(src)
    exe = tmp_path / "main"
    subprocess.run([t.linker, "-O1", "-o", str(exe), str(tmp_path / "main.c"),
                    str(tmp_path / "k.o")], check=True, capture_output=True)
    out = subprocess.run([*t.emulator(), str(exe)], check=True, capture_output=True, text=True)
    got = np.array([int(v) for v in out.stdout.split()], np.int64)
    np.testing.assert_array_equal(got, want)
    insns = subprocess.run([t.objdump, "-d", str(tmp_path / "k.o")], check=True,
                           capture_output=True, text=True).stdout
    name = {"dot": "sdot" if dot == DOT4_S8S8 else "usdot", "mul": "mull"}[kind]
    print(f"{target} {kind} x{n}: {insns.count(name)} {name}")
    if kind == "dot":  # one instruction per 4 lanes, or per 2 when 4 does not divide n
        assert insns.count(name) == n // (4 if n % 4 == 0 else 2)
    else:
        assert insns.count(name) >= n // 4

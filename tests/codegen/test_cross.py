"""Cross code generation: the conv and GEMM kernels of a compiled artifact use the target's
vector unit. `objdump -d` of lib/model.o (the artifact's object) must show NEON
multiply-accumulate on 128-bit registers for aarch64 (`fmla vN.4s`), NEON q-register float
arithmetic for cortex-a7 (`vmla/vfma.f32 q`, or `vmul.f32 q` + `vadd.f32 q`: LLVM keeps them
separate on the A7, whose VMLA is not fused and stalls on back-to-back accumulation), and RVV
loads and FMAs for riscv64-rvv (`vle32.v` and `vfmacc`/`vfmadd`)."""

from __future__ import annotations

import re
import subprocess

import pytest

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

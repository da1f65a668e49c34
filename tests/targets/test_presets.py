"""Cross target presets are consistent data: LLVM knows the triple/cpu/features, vector
widths match lanes(), toolchain names follow the triple, and round-tripping through
model.json keeps every field."""

from __future__ import annotations

import dataclasses

import pytest

CROSS = ["aarch64", "cortex-a53", "cortex-a76", "cortex-a7", "raspberry-pi-4",
         "raspberry-pi-5", "rk3588", "riscv64", "riscv64-rvv", "spacemit-k1"]


@pytest.mark.parametrize("name", CROSS)
def test_preset_is_valid_for_llvm(name):
    import llvmlite.binding as llvm

    from tilecc.targets import PRESETS, Target

    t = PRESETS[name]
    assert t.family in ("arm", "riscv")
    assert t.lanes() == t.vector_bits // 32
    arch = t.triple.split("-")[0]
    gnu = {"aarch64": "aarch64-linux-gnu", "armv7a": "arm-linux-gnueabihf",
           "riscv64": "riscv64-linux-gnu"}[arch]
    assert t.linker == f"{gnu}-gcc" and t.sysroot == f"/usr/{gnu}"
    assert t.objdump == f"{gnu}-objdump"
    assert t.emulator()[:1] == [{"aarch64": "qemu-aarch64", "armv7a": "qemu-arm",
                                "riscv64": "qemu-riscv64"}[arch]]
    llvm.initialize_all_targets()
    tm = llvm.Target.from_triple(t.triple).create_target_machine(cpu=t.cpu, features=t.features)
    assert tm.target_data is not None
    assert Target.from_dict(t.to_dict()) == t
    assert Target.from_dict(dataclasses.replace(t, bare_metal=True).to_dict()).bare_metal


def test_rvv_presets_fix_vlen_in_features_and_qemu():
    from tilecc.targets import PRESETS

    for name, vlen in (("riscv64-rvv", 128), ("spacemit-k1", 256)):
        t = PRESETS[name]
        assert t.vector_bits == vlen
        assert f"+zvl{vlen}b" in t.features.split(",") and "+v" in t.features.split(",")
        assert f"vlen={vlen}" in " ".join(t.qemu)
    assert "+v" not in PRESETS["riscv64"].features.split(",")


def test_targets_cli_lists_cross_presets(capsys):
    from tilecc.cli import main

    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    for name in CROSS:
        assert any(line.split()[0] == name for line in out.splitlines()[1:])
    assert "riscv64-linux-gnu-gcc" in out and "Cortex-A72" in out

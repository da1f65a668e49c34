"""Bare-metal artifacts: `--bare-metal` gives one relocatable lib/model.o with no undefined
symbols (no libc, libm or threads), carrying its weights (.rodata) and a static arena (.bss),
and a memory report; the DS-CNN object for riscv64 links with -nostdlib -nostartfiles -static
into a freestanding program (our own _start, the input linked in with .incbin, outputs written
through the raw `write` syscall) that runs under qemu-riscv64 and matches onnxruntime (fp32)
or the host int8 build (int8)."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess

import numpy as np
import pytest

from tests.models.builders import ds_cnn_kws
from tests.models.harness import import_tilecc, ort_run
from tests.targets.crosstools import need_tools

RISCV_CC, RISCV_NM = "riscv64-linux-gnu-gcc", "riscv64-linux-gnu-nm"

# _start: set the global pointer (the static link relaxes accesses relative to it), then C.
_PROGRAM = r"""
#include <stdint.h>
#include "model.h"

__asm__(".section .rodata\n.balign 64\n.globl input0\ninput0:\n.incbin \"%(input)s\"\n"
        ".text\n");
extern const unsigned char input0[];

static unsigned char output0[%(out)d] __attribute__((aligned(64)));

static long sys3(long n, long a, long b, long c) {
    register long a0 __asm__("a0") = a, a1 __asm__("a1") = b, a2 __asm__("a2") = c;
    register long a7 __asm__("a7") = n;
    __asm__ __volatile__("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a7) : "memory");
    return a0;
}

void start_c(void) {
    const void *inputs[1] = {input0};
    void *outputs[1] = {output0};
    long rc = TILECC_MODEL_INIT(TILECC_MODEL_WEIGHTS, TILECC_PARAMS_SIZE);
    if (rc == 0) rc = TILECC_MODEL_RUN(inputs, outputs, TILECC_MODEL_ARENA);
    if (rc == 0) sys3(64, 1, (long)output0, %(out)d);   /* write(1, out, n) */
    sys3(93, rc ? 10 + rc : 0, 0, 0);                   /* exit */
    for (;;) {}
}

__asm__(".globl _start\n_start:\n.option push\n.option norelax\n"
        "la gp, __global_pointer$\n.option pop\ncall start_c\n");
"""


@pytest.fixture(scope="module")
def ds_cnn_riscv(tmp_path_factory):
    tilecc = import_tilecc()
    from tilecc.targets import get_target

    model = ds_cnn_kws()
    target = dataclasses.replace(get_target("riscv64"), bare_metal=True)
    art = tilecc.compile(model, target=target)
    work = tmp_path_factory.mktemp("bare_riscv")
    art.save(work / "model.tar")
    return model, art, work


def test_bare_metal_object_has_no_undefined_symbols(ds_cnn_riscv):
    need_tools(RISCV_NM)
    _, art, work = ds_cnn_riscv
    assert "lib/model.so" not in art.files
    obj = work / "model.o"
    obj.write_bytes(art.files["lib/model.o"])
    undefined = subprocess.run([RISCV_NM, "-u", str(obj)], check=True, capture_output=True,
                               text=True).stdout.split()
    assert undefined == []
    defined = subprocess.run([RISCV_NM, "--defined-only", str(obj)], check=True,
                             capture_output=True, text=True).stdout
    assert "tilecc_parallel_for" not in defined and "tilecc_model_run" in defined
    mem = art.metadata["memory"]
    print(f"DS-CNN riscv64 bare metal: {mem}")
    assert mem["weights_bytes"] == art.metadata["params_size"] > 0
    assert mem["arena_bytes"] == art.metadata["workspace_size"]
    assert 0 < mem["code_bytes"] < len(art.files["lib/model.o"])


def _run_freestanding(art, work, x: np.ndarray) -> np.ndarray:
    """Link the artifact's object into the freestanding program and run it on `x`."""
    meta = art.metadata
    assert len(meta["inputs"]) == 1
    (ospec,) = meta["outputs"]
    (work / "include").mkdir(exist_ok=True)
    (work / "include" / "model.h").write_bytes(art.files["include/model.h"])
    (work / "model.o").write_bytes(art.files["lib/model.o"])
    x.tofile(work / "input.bin")
    out_bytes = int(np.prod(ospec["shape"])) * np.dtype(ospec["dtype"]).itemsize
    (work / "main.c").write_text(_PROGRAM % {"input": work / "input.bin", "out": out_bytes})
    exe = work / "kws.elf"
    subprocess.run([RISCV_CC, "-O2", "-ffreestanding", "-fno-builtin", "-nostdlib",
                    "-nostartfiles", "-static", "-I", str(work / "include"), str(work / "main.c"),
                    str(work / "model.o"), "-o", str(exe)], check=True, capture_output=True)
    proc = subprocess.run(["qemu-riscv64", str(exe)], check=False, capture_output=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return np.frombuffer(proc.stdout, dtype=ospec["dtype"]).reshape(ospec["shape"])


def _input(spec: dict) -> np.ndarray:
    n = int(np.prod(spec["shape"]))
    return (np.arange(n).reshape(spec["shape"]) / n).astype(np.float32)


def test_freestanding_program_runs_under_qemu(ds_cnn_riscv):
    need_tools(RISCV_CC, "qemu-riscv64")
    model, art, work = ds_cnn_riscv
    (spec,) = art.metadata["inputs"]
    x = _input(spec)
    got = _run_freestanding(art, work, x)
    (want,) = ort_run(model, {spec["name"]: x}).values()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_int8_freestanding_program_matches_host_int8(tmp_path):
    need_tools(RISCV_CC, "qemu-riscv64")
    tilecc = import_tilecc()
    from tilecc.targets import get_target

    model = ds_cnn_kws()
    rng = np.random.default_rng(0)
    cal = [{"input": rng.standard_normal((1, 1, 49, 10)).astype(np.float32)} for _ in range(8)]
    target = dataclasses.replace(get_target("riscv64"), bare_metal=True)
    art = tilecc.compile(model, target=target, quantize="int8", calibration=cal)
    mem = art.metadata["memory"]
    print(f"\nDS-CNN int8 riscv64 bare metal: {mem}")
    assert any(k["ops"] == ["QConv"] for k in art.metadata["kernels"])
    assert mem["weights_section_bytes"] == len(art.files["params.bin"])
    x = rng.standard_normal((1, 1, 49, 10)).astype(np.float32)
    got = _run_freestanding(art, tmp_path, x)
    # Bare metal quantizes depthwise convs by default; so does this host build: same integers.
    host = tilecc.compile(model, quantize="int8", calibration=cal,
                          quantize_depthwise=True).save(tmp_path / "host.tar")
    want = tilecc.load(host).run({"input": x})["output"]
    print(f"riscv64 int8 vs host int8: max abs err {float(np.abs(got - want).max()):.3g}")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_bare_metal_compile_cli_prints_memory_report(tmp_path, capsys):
    tilecc = import_tilecc()
    if shutil.which("cc") is None:
        pytest.skip("no host C compiler")
    from tilecc.cli import main

    onnx_path = tmp_path / "kws.onnx"
    onnx_path.write_bytes(ds_cnn_kws().SerializeToString())
    out = tmp_path / "kws.tar"
    assert main(["compile", str(onnx_path), "--bare-metal", "-o", str(out)]) == 0
    with tilecc.runtime.artifact.ArtifactReader(out) as r:
        assert r.has("lib/model.o") and not r.has("lib/model.so")
        assert r.metadata["target"]["bare_metal"] is True
        assert set(r.metadata["memory"]) >= {"code_bytes", "weights_bytes", "arena_bytes"}
        # The packed weights' size depends on the host's vector width (block padding), so the
        # report is checked against the artifact's own params.bin, not a fixed figure.
        weights = r.read("params.bin")
        assert r.metadata["memory"]["weights_bytes"] == len(weights)
    assert "memory: code " in capsys.readouterr().out
    assert main(["inspect", str(out)]) == 0
    report = capsys.readouterr().out
    assert "memory: code " in report and f"weights {len(weights) / 1024:.1f} KiB" in report

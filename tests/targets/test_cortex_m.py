"""Cortex-M deployment: DS-CNN (MLPerf Tiny KWS) compiled for cortex-m4/m7 runs as firmware
under qemu-system-arm (runtime/semihost.py) through `tilecc run --emulate` and the API.

int8: every quantized layer (exposed with expose_intermediates) matches the host int8 build
within one quantization step (observed: exactly), the softmax output to float rounding.
fp32: matches onnxruntime at rtol 1e-4 / atol 1e-5. The instruction counts from
`-icount shift=0` are checked against a hand-written loop of known length, and the stack
estimate of the memory report against the stack the firmware saw the run touch."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from tests.models.builders import ds_cnn_kws
from tests.models.harness import import_tilecc, ort_run
from tests.targets.crosstools import need_tools

FW_TOOLS = ("arm-none-eabi-gcc", "qemu-system-arm")
SHAPE = (1, 1, 49, 10)


def _samples(seed: int, n: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"input": rng.standard_normal(SHAPE).astype(np.float32)} for _ in range(n)]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("name", ["cortex-m4", "cortex-m7"])
def test_cortex_m_presets_are_bare_metal_board_data(name):
    import llvmlite.binding as llvm

    from tilecc.runtime.semihost import is_firmware_target
    from tilecc.targets import PRESETS, Target

    t = PRESETS[name]
    assert t.bare_metal and t.cores == 1 and t.lanes(4) == 1 and is_firmware_target(t)
    assert t.triple.startswith("thumbv7em-") and t.triple.endswith("-eabihf")
    assert t.linker == "arm-none-eabi-gcc" and f"-mcpu={t.cpu}" in t.cflags
    assert Target.from_dict(t.to_dict()) == t
    llvm.initialize_all_targets()
    tm = llvm.Target.from_triple(t.triple).create_target_machine(cpu=t.cpu, features=t.features)
    assert tm.target_data is not None


@pytest.fixture(scope="module")
def int8_builds(tmp_path_factory):
    """DS-CNN int8 for the host and for cortex-m4, same calibration, every layer exposed."""
    tilecc = import_tilecc()
    model, cal = ds_cnn_kws(), _samples(0, 8)
    work = tmp_path_factory.mktemp("cortex_m_int8")
    paths = {}
    for target in ("host", "cortex-m4"):
        # Depthwise convs int8 on the host too (bare metal's default): the same integers.
        art = tilecc.compile(model, target=target, quantize="int8", calibration=cal,
                             expose_intermediates=True, quantize_depthwise=True)
        paths[target] = art.save(work / f"{target}.tar")
    return paths, work


def test_int8_cortex_m4_firmware_matches_host_int8(int8_builds):
    need_tools(*FW_TOOLS)
    tilecc = import_tilecc()
    from tilecc.runtime.crunner import EmulatedModule
    from tilecc.runtime.semihost import FirmwareModule

    paths, _ = int8_builds
    host = tilecc.load(paths["host"])
    fw = EmulatedModule(paths["cortex-m4"])
    assert isinstance(fw, FirmwareModule)
    counts = []
    for feeds in _samples(1, 2):
        want, (got, c) = host.run(feeds), fw.run_counted(feeds)
        counts.append(c)
        for name in want:
            if name == "output":
                continue
            # A quantized layer's dequantized values lie on a grid of its scale.
            step = float(np.min(np.diff(np.unique(want[name]))))
            err = float(np.abs(got[name] - want[name]).max())
            assert err <= 1.001 * step, (name, err, step)
        cos = _cosine(got["output"], want["output"])
        err = float(np.abs(got["output"] - want["output"]).max())
        print(f"\nDS-CNN int8 cortex-m4 vs host int8: cosine {cos:.9f}, max abs err {err:.3g}, "
              f"{c['instructions']:,} instructions, stack {c['stack_bytes']} B")
        np.testing.assert_allclose(got["output"], want["output"], rtol=1e-5, atol=1e-6)
    # -icount: the count does not depend on the host, and these kernels not on the data.
    assert counts[0]["instructions"] == counts[1]["instructions"] > 0


def test_int8_cortex_m4_cli_compile_and_emulated_run(tmp_path, capsys):
    need_tools(*FW_TOOLS)
    tilecc = import_tilecc()
    from tilecc.cli import main

    onnx_path, cal_dir = tmp_path / "kws.onnx", tmp_path / "calib"
    onnx_path.write_bytes(ds_cnn_kws().SerializeToString())
    cal_dir.mkdir()
    for k, s in enumerate(_samples(0, 8)):
        np.savez(cal_dir / f"s{k}.npz", **s)
    art = tmp_path / "kws.tar"
    assert main(["compile", str(onnx_path), "-t", "cortex-m4", "--quantize", "int8",
                 "--calibration", str(cal_dir), "-o", str(art)]) == 0
    report = capsys.readouterr().out
    print(report)
    assert "weights " in report and "arena " in report and "stack ~" in report
    (feeds,) = _samples(2, 1)
    np.savez(tmp_path / "x.npz", **feeds)
    assert main(["run", str(art), "--emulate", "--inputs", str(tmp_path / "x.npz"),
                 "-o", str(tmp_path / "y.npz")]) == 0
    assert "instructions (not cycles)" in capsys.readouterr().out
    host = tilecc.compile(str(onnx_path), quantize="int8", calibration=str(cal_dir),
                          quantize_depthwise=True)
    host_path = host.save(tmp_path / "host.tar")
    want = tilecc.load(host_path).run(feeds)["output"]
    with np.load(tmp_path / "y.npz") as out:
        got = out["output"]
    print(f"CLI cortex-m4 int8 vs host int8: cosine {_cosine(got, want):.9f}, "
          f"max abs err {float(np.abs(got - want).max()):.3g}")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_int8_memory_report_and_stack_estimate(int8_builds):
    need_tools(*FW_TOOLS)
    from tilecc.runtime.artifact import ArtifactReader
    from tilecc.runtime.semihost import FirmwareModule

    paths, _ = int8_builds
    with ArtifactReader(paths["cortex-m4"]) as r:
        mem = r.metadata["memory"]
        params_size = r.metadata["params_size"]
    print(f"\nDS-CNN int8 cortex-m4 memory: {mem}")
    assert mem["weights_bytes"] == mem["weights_section_bytes"] == params_size
    assert mem["arena_section_bytes"] == mem["arena_bytes"]
    _, counts = FirmwareModule(paths["cortex-m4"]).run_counted(_samples(3, 1)[0])
    print(f"stack: estimate {mem['stack_bytes']} B, measured {counts['stack_bytes']} B")
    assert 0 < counts["stack_bytes"] <= mem["stack_bytes"]


@pytest.mark.parametrize("name", ["cortex-m4", "riscv64"])
def test_int8_ds_cnn_fits_a_microcontroller(name):
    """DS-CNN int8 as deployed (no exposed layers): every activation uint8 (depthwise convs
    and the average pool included), so the arena holds two 8,000 B activations; weights are
    the int8 tensors plus an int32 bias and an fp32 scale per output channel."""
    tilecc = import_tilecc()
    from dataclasses import replace

    from tilecc.targets import get_target

    target = replace(get_target(name), bare_metal=True)
    art = tilecc.compile(ds_cnn_kws(), target=target, quantize="int8", calibration=_samples(0, 4))
    mem = art.metadata["memory"]
    int8 = sum(int(np.prod([int(d) for d in p["type"].split("[")[1].rstrip("]").split(",")]))
               for p in art.metadata["arena"]["params"] if p["type"].startswith("int8"))
    print(f"\nDS-CNN int8 {name} bare metal: weights {mem['weights_bytes']:,} B "
          f"({int8:,} B int8), arena {mem['arena_bytes']:,} B, code {mem['code_bytes']:,} B")
    assert mem["arena_bytes"] <= 20 * 1024
    assert mem["weights_bytes"] <= 1.25 * int8
    kinds = {k["ops"][0] for k in art.metadata["kernels"]}
    assert {"QDWConv", "QAveragePool"} <= kinds, kinds


@pytest.mark.parametrize("name", ["cortex-m4", "cortex-m7"])
def test_fp32_firmware_matches_onnxruntime(tmp_path, name):
    need_tools(*FW_TOOLS)
    tilecc = import_tilecc()
    from tilecc.runtime.semihost import FirmwareModule

    model = ds_cnn_kws()
    path = tilecc.compile(model, target=name).save(tmp_path / "kws.tar")
    (feeds,) = _samples(4, 1)
    got, counts = FirmwareModule(path).run_counted(feeds)
    (want,) = ort_run(model, feeds).values()
    print(f"\nDS-CNN fp32 {name}: cosine {_cosine(got['output'], want):.9f}, "
          f"max abs err {float(np.abs(got['output'] - want).max()):.3g}, "
          f"{counts['instructions']:,} instructions")
    np.testing.assert_allclose(got["output"], want, rtol=1e-4, atol=1e-5)


# A "model" whose run executes a known number of instructions: ldr + 2 per iteration.
_LOOP_MODEL = r"""
#include <stdint.h>
const uint8_t m_weights[1];
uint8_t m_arena[1];
int32_t m_init(const void *p, int64_t n) { (void)p; (void)n; return 0; }
int32_t m_run(const void *const *i, void *const *o, void *w) {
    (void)i; (void)o; (void)w;
    __asm__ volatile("ldr r3, =%(n)d\n1: subs r3, r3, #1\n bne 1b\n" ::: "r3", "cc");
    return %(rc)d;
}
"""
_LOOP_HEADER = """#include <stdint.h>
#define TILECC_NUM_INPUTS 0
#define TILECC_NUM_OUTPUTS 0
#define TILECC_INPUT_SIZES {0}
#define TILECC_OUTPUT_SIZES {0}
#define TILECC_PARAMS_SIZE 0
extern const uint8_t m_weights[];
extern uint8_t m_arena[];
int32_t m_init(const void *params, int64_t size);
int32_t m_run(const void *const *inputs, void *const *outputs, void *workspace);
#define TILECC_MODEL_WEIGHTS m_weights
#define TILECC_MODEL_ARENA m_arena
#define TILECC_MODEL_INIT m_init
#define TILECC_MODEL_RUN m_run
"""
_LOOP_META = {"name": "m", "inputs": [], "outputs": [], "arena": {}}


def _loop_firmware(tmp_path, n: int, rc: int = 0):
    from tilecc.runtime.semihost import build_firmware
    from tilecc.targets import get_target

    target = get_target("cortex-m4")
    (tmp_path / "include").mkdir(parents=True, exist_ok=True)
    (tmp_path / "lib").mkdir(exist_ok=True)
    (tmp_path / "include" / "model.h").write_text(_LOOP_HEADER)
    (tmp_path / "m.c").write_text(_LOOP_MODEL % {"n": n, "rc": rc})
    subprocess.run([target.linker, *target.cflags, "-O2", "-c", str(tmp_path / "m.c"), "-o",
                    str(tmp_path / "lib" / "model.o")], check=True, capture_output=True)
    return build_firmware(tmp_path, _LOOP_META, target, tmp_path / "fw.elf"), target


def test_instruction_count_of_a_known_loop(tmp_path):
    need_tools(*FW_TOOLS)
    from tilecc.runtime.semihost import run_firmware

    n = 250_000
    elf, target = _loop_firmware(tmp_path, n)
    _, counts = run_firmware(elf, _LOOP_META, target, {}, tmp_path / "run", count=True)
    tick = 1e9 / target.clock_hz  # the resolution: one SysTick tick
    # 2n loop instructions + the ldr, the call and return and the clock reads around it.
    assert abs(counts["instructions"] - 2 * n) <= 64 + tick, counts


def test_firmware_errors_and_timeout_are_reported(tmp_path):
    need_tools(*FW_TOOLS)
    tilecc = import_tilecc()
    from tilecc.runtime.semihost import run_firmware

    elf, target = _loop_firmware(tmp_path / "rc", 10, rc=2)
    with pytest.raises(tilecc.ModelRunError, match="not initialised"):
        run_firmware(elf, _LOOP_META, target, {}, tmp_path / "rc" / "run")
    # ldr r3, =0 then subs: 2^32 iterations, far beyond the timeout.
    elf, target = _loop_firmware(tmp_path / "hang", 0)
    with pytest.raises(tilecc.ModelRunError, match="did not finish within 2 s"):
        run_firmware(elf, _LOOP_META, target, {}, tmp_path / "hang" / "run", timeout=2)


def test_cortex_a7_bare_metal_object_links_freestanding(tmp_path):
    need_tools("arm-linux-gnueabihf-nm", "arm-linux-gnueabihf-gcc")
    tilecc = import_tilecc()
    import dataclasses

    from tilecc.targets import get_target

    target = dataclasses.replace(get_target("cortex-a7"), bare_metal=True)
    art = tilecc.compile(ds_cnn_kws(), target=target)
    obj = tmp_path / "model.o"
    obj.write_bytes(art.files["lib/model.o"])
    nm = subprocess.run(["arm-linux-gnueabihf-nm", str(obj)], check=True, capture_output=True,
                        text=True).stdout
    assert [ln for ln in nm.splitlines() if ln.split()[0] == "U"] == []


_DIVMOD_CHECK = r"""
#include <stdint.h>
#include <stdio.h>
int main(void) {
    uint64_t s = 88172645463325252ull;
    int bad = 0;
    for (int i = 0; i < 100000; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        volatile uint64_t a = s, b = (s >> (i % 64)) ^ (i * 2654435761u);
        volatile int64_t sa = (int64_t)a, sb = (int64_t)(b >> (i % 3)) * ((i & 1) ? -1 : 1);
        if (!b || !sb) continue;
        uint64_t q = a / b, r = a % b;
        int64_t sq = sa / sb, sr = sa % sb;
        bad += q * b + r != a || r >= b;
        bad += sq * sb + sr != sa || (sr != 0 && (sr < 0) != (sa < 0));
    }
    printf("%d\n", bad);
    return bad != 0;
}
"""


@pytest.mark.parametrize("mode", ["-mthumb", "-marm"])
def test_arm_64bit_division_helpers(tmp_path, mode):
    """tilecc_baremetal.c's __aeabi_uldivmod/__aeabi_ldivmod (linked before libgcc, so they
    are the ones called) against C's own / and %, under qemu-arm."""
    cc = "arm-linux-gnueabihf-gcc"
    need_tools(cc, "qemu-arm")
    from tilecc.codegen.link import _BARE_CFLAGS, runtime_source_dir
    from tilecc.targets import get_target

    flags = [*_BARE_CFLAGS, *get_target("cortex-a7").cflags, mode]
    rt = tmp_path / "rt.o"
    subprocess.run([cc, *flags, "-c", str(runtime_source_dir() / "tilecc_baremetal.c"), "-o",
                    str(rt)], check=True, capture_output=True)
    (tmp_path / "check.c").write_text(_DIVMOD_CHECK)
    exe = tmp_path / "check"
    subprocess.run([cc, "-O2", "-static", str(tmp_path / "check.c"), str(rt), "-o", str(exe)],
                   check=True, capture_output=True)
    syms = subprocess.run(["arm-linux-gnueabihf-nm", str(exe)], check=True,
                          capture_output=True, text=True).stdout
    assert "tilecc_udivmod64" in syms
    proc = subprocess.run(["qemu-arm", str(exe)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "0", proc.stdout + proc.stderr


def test_per_kernel_instruction_counts_of_a_profile_build(tmp_path):
    need_tools(*FW_TOOLS)
    import_tilecc()
    from tilecc.build import build
    from tilecc.runtime.semihost import FirmwareModule

    model = ds_cnn_kws()
    path = build(model, target="cortex-m4", profile=True).save(tmp_path / "kws.tar")
    fw = FirmwareModule(path)
    (feeds,) = _samples(5, 1)
    got, counts = fw.run_counted(feeds)
    np.testing.assert_allclose(got["output"], ort_run(model, feeds)["output"], rtol=1e-4,
                               atol=1e-5)
    kernels = counts["kernels"]
    assert [k["kernel"] for k in kernels] == [k["kernel"] for k in fw.metadata["kernels"]]
    spent = sum(k["instructions"] for k in kernels)
    print(f"\nper-kernel instructions {spent:,} of {counts['instructions']:,}: "
          + ", ".join(f"{k['kernel']} {k['instructions']:,}" for k in kernels))
    # The entry's own work (pointer checks, the timer calls) is what the kernels leave.
    assert 0.95 * counts["instructions"] <= spent <= counts["instructions"]

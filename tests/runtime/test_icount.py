"""Executed-instruction counts of cross artifacts under qemu-user (runtime/icount.py):
exactly repeatable, equal to qemu's one-instruction-per-block count, attributed to kernel
calls, independent of the thread count asked for, smaller for an int8 build than for fp32,
and printed by `tilecc run --emulate --profile` (refused, in one line, where there is
nothing to emulate)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.models.builders import random_inputs
from tests.models.harness import import_tilecc
from tests.targets.crosstools import need_target_tools

DS_CNN = Path(__file__).resolve().parents[2] / "compiler" / "data" / "ds_cnn_kws.onnx"
TARGETS = ["aarch64", "cortex-a76", "cortex-a7", "riscv64", "riscv64-rvv"]
# The run function's own code (argument set-up, the inlined output copy, the thread pool's
# dispatch before each parallel body) is under 1% of DS-CNN on every target; 2% leaves room.
KERNEL_SHARE = 0.98


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    tilecc = import_tilecc()
    import onnx

    cache: dict[tuple, Path] = {}

    def get(target: str, **options) -> Path:
        key = (target, *sorted(options.items()))
        if key not in cache:
            if target not in ("host", "opencl"):
                need_target_tools(target)
            path = tmp_path_factory.mktemp(target) / "ds_cnn.tar"
            if options.get("quantize"):
                model = onnx.load(str(DS_CNN))
                options["calibration"] = [random_inputs(model, seed=100 + i) for i in range(2)]
            tilecc.compile(str(DS_CNN), target=target, **options).save(path)
            cache[key] = path
        return cache[key]

    return get


def _feeds(module) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {s["name"]: rng.standard_normal(s["shape"]).astype(np.float32)
            for s in module.input_info}


@pytest.mark.parametrize("target", TARGETS)
def test_counts_repeat_exactly_and_add_up(artifact, target):
    from tilecc.runtime.crunner import EmulatedModule

    mod = EmulatedModule(artifact(target))
    feeds = _feeds(mod)
    out1, c1 = mod.run_counted(feeds)
    out2, c2 = mod.run_counted(feeds)
    assert c1 == c2
    for name, want in out2.items():
        np.testing.assert_array_equal(out1[name], want)
    for name, want in mod.run(feeds).items():
        np.testing.assert_array_equal(out1[name], want)
    kernels = [k["instructions"] for k in c1["kernels"]]
    counted = sum(n for n in kernels if n is not None)
    print(f"\n{target}: {c1['instructions']:,} in the run, {counted:,} in kernels, "
          f"{c1['process_instructions']:,} in the process")
    assert c1["unmatched"] == {}
    assert counted + c1["outside_kernels"] == c1["instructions"]
    assert counted >= KERNEL_SHARE * c1["instructions"]
    assert c1["instructions"] < c1["process_instructions"]
    for k, n in zip(mod.metadata["kernels"], kernels):
        if any(op.startswith("Conv") for op in k["ops"]):
            assert n, k["kernel"]
    rows = mod.instruction_profile(feeds)
    assert [r["instructions"] for r in rows] == kernels


def _single_step_flag(qemu: str) -> str:
    help_text = subprocess.run([qemu, "--help"], capture_output=True, text=True,
                               check=False).stdout
    return "-one-insn-per-tb" if "-one-insn-per-tb" in help_text else "-singlestep"


@pytest.mark.parametrize("target", ["aarch64", "cortex-a7", "riscv64-rvv"])
def test_block_counts_equal_one_instruction_per_block(artifact, target):
    """The count sums the lengths of translated blocks; with one instruction per block qemu
    logs every instruction, and the two must agree to the instruction."""
    from tilecc.runtime.crunner import EmulatedModule

    mod = EmulatedModule(artifact(target))
    feeds = _feeds(mod)
    _, blocks = mod.run_counted(feeds)
    mod.prefix = [mod.prefix[0], _single_step_flag(mod.prefix[0]), *mod.prefix[1:]]
    _, single = mod.run_counted(feeds)
    assert single["instructions"] == blocks["instructions"]
    assert single["kernels"] == blocks["kernels"]


def test_counts_use_one_thread_whatever_was_asked(artifact):
    from tilecc.runtime.crunner import EmulatedModule

    path = artifact("aarch64")
    one, four = EmulatedModule(path, num_threads=1), EmulatedModule(path, num_threads=4)
    feeds = _feeds(one)
    assert one.run_counted(feeds)[1] == four.run_counted(feeds)[1]


def _dense_conv_cost(module, counts) -> tuple[int, list[int]]:
    """(instructions, sorted output sizes) of the group-1 convolutions: QConv, or ConvNCHWc
    not depthwise. (Output sizes identify the layers across builds; the metadata's FLOPs do
    not, QConv counting its 4-packed weights once.)"""
    n, sizes = 0, []
    for k, c in zip(module.metadata["kernels"], counts["kernels"]):
        workload = json.loads(k.get("workload") or "{}")
        dense = workload.get("op") == "QConv" or (
            workload.get("op") == "ConvNCHWc" and not workload["attrs"].get("depthwise"))
        if dense:
            assert c["instructions"], k["kernel"]
            n += c["instructions"]
            sizes.append(int(np.prod(k["shape"])))
    return n, sorted(sizes)


@pytest.fixture(scope="module")
def a76_fp32_int8(artifact):
    from tilecc.runtime.crunner import EmulatedModule

    fp32 = EmulatedModule(artifact("cortex-a76"))
    int8 = EmulatedModule(artifact("cortex-a76", quantize="int8"))
    feeds = _feeds(fp32)
    return [(m, m.run_counted(feeds)[1]) for m in (fp32, int8)]


def test_int8_dense_convolutions_execute_fewer_instructions(a76_fp32_int8):
    """sdot does four multiply-adds per lane where fp32 fmla does one; the same
    convolutions must execute fewer instructions in the int8 build."""
    (n32, s32), (n8, s8) = (_dense_conv_cost(m, c) for m, c in a76_fp32_int8)
    print(f"\ncortex-a76 DS-CNN dense convs: fp32 {n32:,}, int8 {n8:,} instructions "
          f"({n8 / n32:.2f}x) in {len(s32)} layers")
    assert s8 == s32 and s32
    assert n8 < n32


@pytest.mark.xfail(strict=True, reason="int8 DS-CNN on cortex-a76 executes ~16% more "
                   "instructions than fp32: its depthwise convolutions stay float, and the "
                   "layout transforms and requantization around them outweigh what sdot saves "
                   "in the pointwise ones")
def test_int8_executes_fewer_instructions_than_fp32(a76_fp32_int8):
    (_, c32), (_, c8) = a76_fp32_int8
    print(f"\ncortex-a76 DS-CNN: fp32 {c32['instructions']:,}, int8 {c8['instructions']:,}")
    assert c8["instructions"] < c32["instructions"]


def test_cli_prints_the_instruction_profile(artifact, capsys):
    from tilecc.cli import main
    from tilecc.runtime.crunner import EmulatedModule

    path = artifact("riscv64-rvv")
    assert main(["run", str(path), "--emulate", "--profile", "--threads", "2"]) == 0
    out = capsys.readouterr().out
    total = int(re.search(r"^total ([\d,]+) instructions per inference$", out,
                          re.MULTILINE).group(1).replace(",", ""))
    mod = EmulatedModule(path)
    rng = np.random.default_rng(0)  # the CLI's random inputs, seed 0
    feeds = {s["name"]: rng.standard_normal(s["shape"]).astype(np.float32)
             for s in mod.input_info}
    assert total == mod.run_counted(feeds)[1]["instructions"]
    rows = [line for line in out.splitlines() if re.match(r"\s*\d+ k\d+_", line)]
    assert len(rows) == len(mod.metadata["kernels"])
    assert "ms" not in out


@pytest.mark.parametrize("target", ["host", "opencl"])
def test_cli_refuses_to_emulate_what_is_not_cross(artifact, target, capsys):
    from tilecc.cli import main

    rc = main(["run", str(artifact(target)), "--emulate", "--profile"])
    err = capsys.readouterr().err
    assert rc != 0 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("tilecc: error: ") and "--emulate runs Linux artifacts" in err

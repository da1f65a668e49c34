"""Docs that come from the code stay true: generated tables equal what the code makes now,
the C example builds and gives the Python runtime's outputs, links resolve, README is short
and its test command is the one CI runs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.models.harness import import_tilecc

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
KWS = ROOT / "compiler" / "data" / "ds_cnn_kws.onnx"


def _block(path: Path, tag: str) -> str:
    text = path.read_text()
    m = re.search(rf"<!-- {tag}:begin[^>]*-->\n(.*?)<!-- {tag}:end -->", text, re.DOTALL)
    assert m, f"{path.name} lacks the generated {tag} block"
    return m.group(1).strip()


def test_targets_table_is_the_presets():
    from tilecc.cli import targets_markdown

    assert _block(DOCS / "targets.md", "targets") == targets_markdown(), \
        "docs/targets.md's preset table is stale: regenerate it with tilecc.cli.targets_markdown"


def test_bare_metal_figures_are_a_fresh_compile(tmp_path):
    tilecc = import_tilecc()
    from tilecc.targets import get_target

    if shutil.which(get_target("riscv64").linker) is None:
        pytest.skip("no riscv64 cross gcc (gcc-riscv64-linux-gnu)")
    from dataclasses import replace

    from tilecc.cli_inspect import memory_table

    art = tilecc.compile(str(KWS), target=replace(get_target("riscv64"), bare_metal=True))
    assert _block(DOCS / "deploy-c.md", "baremetal") == memory_table(art.metadata["memory"])


def test_c_example_builds_and_matches_python(tmp_path):
    tilecc = import_tilecc()
    if shutil.which("make") is None or shutil.which("gcc") is None:
        pytest.skip("no make/gcc (install build-essential)")
    for f in ("main.c", "Makefile"):
        shutil.copy(DOCS / "examples" / "c" / f, tmp_path)
    tilecc.compile(str(KWS)).save(tmp_path / "m.tar")
    x = np.linspace(-1, 1, 490, dtype=np.float32)
    x.tofile(tmp_path / "x.bin")
    subprocess.run(["make", "-s"], cwd=tmp_path, check=True, capture_output=True)
    out = subprocess.run(["./app", "m/params.bin", "x.bin"], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout
    want = tilecc.load(tmp_path / "m.tar").run({"input": x.reshape(1, 1, 49, 10)})["output"]
    np.testing.assert_allclose([float(v) for v in out.split()], want.ravel()[:4], rtol=1e-5)


def test_readme_is_short_and_links_resolve():
    readme = ROOT / "README.md"
    assert len(readme.read_text().splitlines()) <= 300
    missing = []
    for page in [readme, *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not re.match(r"[a-z]+:", target) and not (page.parent / target).exists():
                missing.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not missing, missing


def test_readme_test_command_is_the_ci_one():
    ci = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()
          if ln.strip().startswith("pytest")]
    assert len(ci) == 1 and ci[0] in (ROOT / "README.md").read_text()


def test_two_models_in_one_c_program(tmp_path):
    """docs/examples/c/two_models: two artifacts (their own --name) and one runtime statically
    linked into one program; each model gives what tilecc.load gives."""
    tilecc = import_tilecc()
    if shutil.which("make") is None or shutil.which("cc") is None:
        pytest.skip("no make/cc (install build-essential)")
    for f in (DOCS / "examples" / "c" / "two_models").iterdir():
        shutil.copy(f, tmp_path)
    models = {"a": KWS, "b": ROOT / "compiler" / "data" / "mobilenet_tiny.onnx"}
    args, want = [], {}
    for key, onnx_path in models.items():
        tilecc.compile(str(onnx_path), name=f"model_{key}").save(tmp_path / f"{key}.tar")
        mod = tilecc.load(tmp_path / f"{key}.tar")
        (spec,) = mod.input_info
        x = np.linspace(-1, 1, int(np.prod(spec["shape"])), dtype=np.float32)
        x.tofile(tmp_path / f"{key}.in")
        (want[key],) = mod.run({spec["name"]: x.reshape(spec["shape"])}).values()
        args += [f"{key}/params.bin", f"{key}.in"]
    subprocess.run(["make", "-s", f"RUNTIME={ROOT / 'runtime' / 'c'}"], cwd=tmp_path,
                   check=True, capture_output=True)
    out = subprocess.run(["./two", *args], cwd=tmp_path, check=True, capture_output=True,
                         text=True).stdout.splitlines()
    got = {ln.split(":")[0]: [float(v) for v in ln.split(":")[1].split()] for ln in out}
    for key in models:
        np.testing.assert_allclose(got[key], want[key].ravel(), rtol=1e-6, atol=1e-7)


def test_model_library_exports_only_the_model_and_thread_controls(tmp_path):
    tilecc = import_tilecc()
    if shutil.which("nm") is None:
        pytest.skip("no nm (binutils)")
    art = tilecc.compile(str(KWS), name="kws")
    (tmp_path / "model.so").write_bytes(art.files["lib/model.so"])
    out = subprocess.run(["nm", "-D", "--defined-only", str(tmp_path / "model.so")],
                         check=True, capture_output=True, text=True).stdout
    exported = {ln.split()[-1] for ln in out.splitlines() if ln.split()[1:2] == ["T"]}
    assert exported == {"kws_init", "kws_run", "kws_workspace_size",
                        "tilecc_set_num_threads", "tilecc_get_num_threads"}

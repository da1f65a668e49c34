"""OpenCL executor: program-binary cache, CLI parity, input checks, and the C host runner
(runtime/c/tilecc_ocl_runner.c built with `cc ... -lOpenCL`) giving the Python executor's
outputs. Runs on PoCL in CI; skips locally only when no OpenCL driver is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.codegen.test_opencl import require_opencl
from tests.models import builders
from tests.models.harness import import_tilecc

CLI = [sys.executable, "-c", "import sys; from tilecc.cli import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def kws_artifact(tmp_path_factory):
    tilecc = import_tilecc()
    require_opencl()
    model = builders.ds_cnn_kws()
    path = tmp_path_factory.mktemp("ocl_kws") / "kws.tar"
    tilecc.compile(model, target="mali-g76").save(path)
    return model, path


def test_second_load_uses_program_binary_cache(kws_artifact, tmp_path, monkeypatch):
    tilecc = import_tilecc()
    model, path = kws_artifact
    monkeypatch.setenv("TILECC_CACHE_DIR", str(tmp_path / "cache"))
    x = builders.random_inputs(model)
    first = tilecc.load(path)
    assert not first.cache_hit
    assert first.cache_path.is_file() and first.cache_path.parent == tmp_path / "cache" / "ocl"
    second = tilecc.load(path)
    assert second.cache_hit, "second load compiled OpenCL C again"
    a, b = first.run(x), second.run(x)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_corrupt_cached_binary_is_rebuilt(kws_artifact, tmp_path, monkeypatch):
    tilecc = import_tilecc()
    _, path = kws_artifact
    monkeypatch.setenv("TILECC_CACHE_DIR", str(tmp_path / "cache"))
    first = tilecc.load(path)
    first.cache_path.write_bytes(b"not a program binary")
    again = tilecc.load(path)
    assert not again.cache_hit
    assert again.cache_path.read_bytes() != b"not a program binary"


def test_cli_run_verbose_reports_cache(kws_artifact, tmp_path):
    _, path = kws_artifact
    env = dict(os.environ, TILECC_CACHE_DIR=str(tmp_path / "cache"))
    runs = [subprocess.run([*CLI, "run", str(path), "-v"], capture_output=True, text=True,
                           env=env, timeout=900, check=False) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
        assert "output: shape=[1, 12]" in r.stdout
    assert "compiled OpenCL C" in runs[0].stderr
    assert "program binary cache hit" in runs[1].stderr


def test_input_checks(kws_artifact):
    tilecc = import_tilecc()
    _, path = kws_artifact
    mod = tilecc.load(path)
    (spec,) = mod.input_info
    with pytest.raises(tilecc.InputError, match="expected dtype float32"):
        mod.run({spec["name"]: np.zeros(spec["shape"], np.float64)})
    with pytest.raises(tilecc.InputError, match="missing input"):
        mod.run({})


def test_c_host_runner_matches_python_executor(kws_artifact, tmp_path):
    tilecc = import_tilecc()
    from tilecc.runtime.artifact import extract_artifact

    model, path = kws_artifact
    cc = shutil.which("cc")
    header = Path("/usr/include/CL/cl.h")
    if cc is None or not header.exists():
        if os.environ.get("CI"):
            raise AssertionError("cc or CL/cl.h missing (ocl-icd-opencl-dev)")
        pytest.skip("needs cc and ocl-icd-opencl-dev")
    src = Path(tilecc.__file__).parent.parent / "runtime" / "c" / "tilecc_ocl_runner.c"
    if not src.exists():
        from tilecc.codegen.link import runtime_source_dir
        src = runtime_source_dir() / "tilecc_ocl_runner.c"
    exe = tmp_path / "runner"
    subprocess.run([cc, "-O2", "-std=c11", "-Wall", "-Werror", str(src), "-lOpenCL", "-o",
                    str(exe)], check=True, capture_output=True, text=True)
    art_dir = extract_artifact(path, tmp_path / "art")
    x = builders.random_inputs(model)
    (name,) = x
    x[name].astype(np.float32).tofile(tmp_path / "in.bin")
    r = subprocess.run([str(exe), str(art_dir), str(tmp_path / "in.bin"),
                        str(tmp_path / "out.bin")], capture_output=True, text=True, timeout=900,
                       check=False)
    assert r.returncode == 0, r.stderr
    want = tilecc.load(path).run(x)
    (ref,) = want.values()
    got = np.fromfile(tmp_path / "out.bin", np.float32).reshape(ref.shape)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)

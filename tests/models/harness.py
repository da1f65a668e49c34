"""Test harness: compile and run with tilecc; reference outputs from onnxruntime.

tilecc is imported lazily: when it cannot be imported, tests that need it skip with the import
error as reason, except under CI (`CI` set in the environment), where they fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest


def import_tilecc():
    """Return the tilecc module, or skip (fail under CI) when it cannot be imported."""
    try:
        import tilecc
    except ImportError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"tilecc is not importable: {exc}")
    if not hasattr(tilecc, "compile"):
        if os.environ.get("CI"):
            raise AssertionError("tilecc has no compile()")
        pytest.skip("tilecc.compile is not implemented yet")
    return tilecc


def compile_and_run(model: onnx.ModelProto | str | os.PathLike, inputs: dict[str, np.ndarray],
                    tmp_path: Path, **compile_kw) -> dict[str, np.ndarray]:
    """Compile for the host with tilecc, save model.tar, load it back and run it once."""
    tilecc = import_tilecc()
    art = tilecc.compile(model, target="host", **compile_kw)
    path = Path(tmp_path) / "model.tar"
    art.save(str(path))
    mod = tilecc.load(str(path))
    return mod.run(dict(inputs))


def ort_run(model: onnx.ModelProto | str | os.PathLike,
            inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Reference outputs from onnxruntime (CPU, single thread, all graph outputs by name)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    src = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    sess = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, dict(inputs))))


def light_inputs(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Feeds for the onnx wheel's light models: `arange(n).reshape(shape) / n` as float32 for
    every non-initializer input, as onnx's backend test generated light_*_output_0.pb."""
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        n = int(np.prod(shape))
        feeds[vi.name] = (np.arange(n).reshape(shape) / n).astype(np.float32)
    return feeds


def clang_opencl(source: str, extensions, *flags: str) -> str:
    """Run clang's OpenCL C front end (OpenCL C 3.0, SPIR) on `source` with only
    `extensions` enabled; returns its stdout (the preprocessed source with -E). Skips when
    clang is absent, fails under CI; a compile error fails the test with clang's message."""
    import shutil
    import subprocess
    import tempfile

    clang = shutil.which("clang")
    if clang is None:
        if os.environ.get("CI"):
            raise AssertionError("clang (the OpenCL C front end) is not installed")
        pytest.skip("clang is not installed")
    with tempfile.NamedTemporaryFile("w", suffix=".cl") as f:
        f.write(source)
        f.flush()
        cmd = [clang, "-x", "cl", "-cl-std=CL3.0", "-Xclang", "-finclude-default-header",
               "-Xclang", "-cl-ext=" + ",".join(["-all", *(f"+{e}" for e in extensions)]),
               "-target", "spir", *(flags or ("-fsyntax-only",)), f.name]
        r = subprocess.run(cmd, check=False, capture_output=True, text=True)
    assert r.returncode == 0, f"clang rejected the OpenCL C ({' '.join(cmd)}):\n{r.stderr}"
    return r.stdout

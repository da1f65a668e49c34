"""Builds the toy artifact (fixtures/toy_model.c) through the real packaging path, so the
runtime is tested without the compiler. Shared by tests/runtime and tests/test_cli.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from tilecc.codegen.link import link_shared
from tilecc.runtime.artifact import Artifact, tensor_spec
from tilecc.runtime.libmeta import abi_c_source, abi_record
from tilecc.targets import get_target

FIXTURES = Path(__file__).parent / "fixtures"
PARAMS = np.array([2.0, 1.0], dtype=np.float32)
INPUTS = [tensor_spec("x", (3, 13), "float32"), tensor_spec("k", (1,), "int32")]
OUTPUTS = [tensor_spec("y", (3, 13), "float32"), tensor_spec("counts", (64,), "int32"),
           tensor_spec("info", (2,), "int32")]
ARENA = {"size": 256, "tensors": [{"name": "t0", "offset": 0, "nbytes": 156},
                                  {"name": "t1", "offset": 0, "nbytes": 156}]}


def have_cc() -> bool:
    return shutil.which("cc") is not None


def compile_object(src: Path, obj: Path, *defines: str) -> Path:
    subprocess.run(["cc", "-O2", "-fPIC", "-c", *defines, str(src), "-o", str(obj)], check=True)
    return obj


def toy_artifact(tmp: Path, name: str = "toy", params: np.ndarray = PARAMS,
                 **meta) -> Artifact:
    tmp.mkdir(parents=True, exist_ok=True)
    obj = compile_object(FIXTURES / "toy_model.c", tmp / f"{name}.o", f"-DMODEL_NAME={name}")
    # What the library is built for, as the codegen embeds it (the loader checks it).
    abi = tmp / f"{name}_abi.c"
    abi.write_text(abi_c_source(abi_record(name, INPUTS, OUTPUTS, 256, params.nbytes)))
    lib = link_shared([obj, compile_object(abi, tmp / f"{name}_abi.o")], tmp / "model.so",
                      get_target("host"))
    return Artifact.create(name=name, target="host", inputs=INPUTS, outputs=OUTPUTS,
                           params=params.tobytes(), workspace_size=256,
                           library=lib.read_bytes(), arena=ARENA, **meta)


def build_toy(tmp: Path, name: str = "toy", **kw) -> Path:
    """Save the toy artifact as tmp/<name>.tar and return its path."""
    return toy_artifact(tmp, name, **kw).save(tmp / f"{name}.tar")


def reference(x: np.ndarray, k: int, params: np.ndarray = PARAMS) -> np.ndarray:
    return x * params[0] + params[1] + np.float32(k)


def random_inputs(seed: int = 0, k: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((3, 13)).astype(np.float32),
            "k": np.array([k], dtype=np.int32)}

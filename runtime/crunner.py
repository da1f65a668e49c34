"""Build the generic C runner (runtime/c/tilecc_runner.c) against an unpacked artifact.

Used by tests, and for cross targets: build with the cross compiler, run under qemu-user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from tilecc.errors import ArtifactError, LinkError
from tilecc.runtime.artifact import HEADER_PATH, LIB_PATH


def runner_source() -> Path:
    from tilecc.codegen.link import runtime_source_dir

    return runtime_source_dir() / "tilecc_runner.c"


def build_c_runner(artifact_dir: str | os.PathLike, out_exe: str | os.PathLike,
                   cc: str = "cc") -> Path:
    """Compile tilecc_runner.c with `cc` against artifact_dir/{include,lib}.

    The executable finds lib/model.so through rpaths: the artifact's lib directory
    (absolute), and $ORIGIN (copy model.so next to the runner to move them together).
    """
    artifact_dir, out_exe = Path(artifact_dir).resolve(), Path(out_exe)
    for needed in (HEADER_PATH, LIB_PATH):
        if not (artifact_dir / needed).is_file():
            raise ArtifactError(f"{artifact_dir}: no {needed} (extract the artifact first: "
                                "tilecc.runtime.artifact.extract_artifact)")
    if shutil.which(cc) is None:
        raise LinkError(f"C compiler {cc!r} not found")
    lib_dir = artifact_dir / "lib"
    cmd = [cc, "-O2", "-std=c11", "-I", str(artifact_dir / "include"), str(runner_source()),
           "-L", str(lib_dir), "-l:model.so", f"-Wl,-rpath,{lib_dir}", "-Wl,-rpath,$ORIGIN",
           "-o", str(out_exe)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise LinkError(f"building the C runner failed ({' '.join(cmd)}):\n"
                        f"{proc.stderr.strip()}")
    return out_exe


def run_c_runner(exe: str | os.PathLike, artifact_dir: str | os.PathLike, metadata: dict,
                 inputs: dict[str, np.ndarray], workdir: str | os.PathLike,
                 prefix: list[str] | None = None, env: dict | None = None,
                 timeout: float = 600) -> dict[str, np.ndarray]:
    """Write inputs as raw files, run the runner (optionally under `prefix`, e.g. qemu),
    read the outputs back. Raises RuntimeError with the runner's stderr on failure."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    args = [str(Path(artifact_dir) / "params.bin")]
    for i, spec in enumerate(metadata["inputs"]):
        path = workdir / f"in{i}.bin"
        np.ascontiguousarray(inputs[spec["name"]], dtype=spec["dtype"]).tofile(path)
        args.append(str(path))
    out_paths = [workdir / f"out{i}.bin" for i in range(len(metadata["outputs"]))]
    args += map(str, out_paths)
    proc = subprocess.run([*(prefix or []), str(exe), *args], check=False, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"C runner exited with {proc.returncode}: {proc.stderr.strip()}")
    return {spec["name"]: np.fromfile(p, dtype=spec["dtype"]).reshape(spec["shape"])
            for spec, p in zip(metadata["outputs"], out_paths)}

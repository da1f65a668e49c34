"""`tilecc.load(path) -> Module`: run a CPU artifact from Python with one native call."""

from __future__ import annotations

import ctypes
import os
import threading

import numpy as np

from tilecc.errors import (
    RUN_ERROR_CODES,
    ArtifactError,
    InputError,
    ModelRunError,
    check_bytes,
)
from tilecc.floatfmt import storage_dtype
from tilecc.runtime.artifact import (
    LIB_PATH,
    PARAMS_PATH,
    ArtifactReader,
    aligned_empty,
    spec_nbytes,
)
from tilecc.runtime.base import BaseModule
from tilecc.runtime.cpu import CpuLibrary, capped_threads, check_host_can_run, env_num_threads
from tilecc.runtime.libmeta import check_library


def _pointer_array(arrays: list[np.ndarray]) -> ctypes.Array:
    return (ctypes.c_void_p * max(len(arrays), 1))(*[a.ctypes.data for a in arrays])


class Module(BaseModule):
    """A loaded model. Buffers are allocated once (64-byte aligned) and reused by every run;
    `run` is serialised by a lock, so one Module may be shared by threads."""

    def __init__(self, metadata: dict, library: CpuLibrary, params: np.ndarray):
        super().__init__(metadata)
        self._lib = library
        self._params = params  # the model keeps a pointer to it: must live as long as we do
        self._lock = threading.Lock()
        ws = int(library.workspace_size())
        if ws != metadata["workspace_size"]:
            raise ArtifactError(f"library wants a {ws}-byte workspace, model.json says "
                                f"{metadata['workspace_size']}")
        # Before allocating: a huge workspace or tensor is a clear error, not an OOM kill.
        check_bytes(ws, f"model {metadata['name']!r}: the workspace")
        for spec in (*metadata["inputs"], *metadata["outputs"]):
            check_bytes(spec_nbytes(spec), f"model {metadata['name']!r}: tensor {spec['name']!r}")
        rc = library.init(params.ctypes.data, params.nbytes)
        if rc != 0:
            raise ArtifactError(f"model init failed with code {rc} (params size {params.nbytes})")
        self._workspace = aligned_empty(ws)
        self._inputs = [self._buffer(s) for s in metadata["inputs"]]
        self._outputs = [self._buffer(s) for s in metadata["outputs"]]
        self._in_ptrs = _pointer_array(self._inputs)
        self._out_ptrs = _pointer_array(self._outputs)
        self._ws_ptr = ctypes.c_void_p(self._workspace.ctypes.data)

    @staticmethod
    def _buffer(spec: dict) -> np.ndarray:
        raw = aligned_empty(spec_nbytes(spec))
        return raw.view(storage_dtype(spec["dtype"])).reshape(spec["shape"])

    def set_num_threads(self, n: int) -> None:
        """Threads used by this model's library (its pool is per library)."""
        if int(n) < 1:
            raise InputError(f"num_threads must be >= 1, got {n}")
        self._lib.set_num_threads(capped_threads(int(n), "num_threads"))

    def get_num_threads(self) -> int:
        return int(self._lib.get_num_threads())

    def run(self, inputs: dict) -> dict[str, np.ndarray]:
        """Run once: {input name: ndarray} -> {output name: ndarray} (fresh copies)."""
        arrays = self._check(inputs)
        with self._lock:
            for buf, arr in zip(self._inputs, arrays):
                np.copyto(buf, arr)
            self._call()
            return {s["name"]: buf.copy()
                    for s, buf in zip(self.metadata["outputs"], self._outputs)}

    def _call(self) -> None:
        rc = self._lib.run(self._in_ptrs, self._out_ptrs, self._ws_ptr)
        if rc != 0:
            what = RUN_ERROR_CODES.get(rc, "a kernel failed")
            raise ModelRunError(f"model {self.name!r} returned error code {rc} ({what})", rc)

    def _kernel_times_ns(self, arrays: list[np.ndarray], runs: int, warmup: int
                         ) -> list[float]:
        kernels = self.metadata.get("kernels") or []
        try:
            table = (ctypes.c_int64 * max(len(kernels), 1)).in_dll(self._lib.lib,
                                                                  f"{self.name}_profile")
        except ValueError:
            raise ArtifactError(f"model {self.name!r}: library has no profiling table "
                                f"{self.name}_profile; recompile with --profile") from None
        with self._lock:
            for buf, arr in zip(self._inputs, arrays):
                np.copyto(buf, arr)
            for _ in range(warmup):
                self._call()
            ctypes.memset(table, 0, ctypes.sizeof(table))
            for _ in range(runs):
                self._call()
            return [int(v) / runs for v in table]


def load(path: str | os.PathLike, num_threads: int | None = None) -> Module:
    """Load an artifact (model.tar) for this machine; OpenCL artifacts go to the OpenCL
    executor (tilecc.runtime.opencl), so the API and CLI are the same for both."""
    with ArtifactReader(path) as reader:
        kind = (reader.metadata.get("target") or {}).get("kind", "cpu")
    if kind == "opencl":
        from tilecc.runtime.opencl import load as load_opencl
        return load_opencl(path)
    # Before the library is loaded: a bad value is the caller's error, not a silent default.
    env_threads = env_num_threads()
    with ArtifactReader(path) as reader:
        meta = {k: v for k, v in reader.metadata.items() if k != "files"}
        meta["files"] = dict(reader.metadata["files"])
        check_host_can_run(meta.get("target") or {})
        if not reader.has(LIB_PATH):
            raise ArtifactError(f"{path}: artifact has no {LIB_PATH} (objects-only artifacts "
                                "are for linking into C programs)")
        if reader.size(PARAMS_PATH) != meta["params_size"]:
            raise ArtifactError(f"{path}: params.bin has {reader.size(PARAMS_PATH)} bytes, "
                                f"model.json says {meta['params_size']}")
        params = aligned_empty(meta["params_size"])
        reader.read_into(PARAMS_PATH, params)
        # Every file is checked, not just the two used here: a tampered header or kernel file
        # means the whole artifact is suspect.
        reader.verify([n for n in reader.names() if n not in (LIB_PATH, PARAMS_PATH)])
        lib_bytes = reader.read(LIB_PATH)
        # From the file's bytes, before dlopen runs anything in it: a model.json that does not
        # describe this library would hand its code buffers of the wrong sizes.
        check_library(meta, lib_bytes, str(path))
        library = CpuLibrary(lib_bytes, meta["name"])
    module = Module(meta, library, params)
    if num_threads is not None or env_threads is not None:
        module.set_num_threads(num_threads if num_threads is not None else env_threads)
    return module

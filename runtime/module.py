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
from tilecc.floatfmt import is_exotic, storage_dtype
from tilecc.runtime.artifact import (
    LIB_PATH,
    PARAMS_PATH,
    ArtifactReader,
    aligned_empty,
    as_storage,
    spec_nbytes,
)
from tilecc.runtime.cpu import CpuLibrary, check_host_can_run


def _pointer_array(arrays: list[np.ndarray]) -> ctypes.Array:
    return (ctypes.c_void_p * max(len(arrays), 1))(*[a.ctypes.data for a in arrays])


class Module:
    """A loaded model. Buffers are allocated once (64-byte aligned) and reused by every run;
    `run` is serialised by a lock, so one Module may be shared by threads."""

    def __init__(self, metadata: dict, library: CpuLibrary, params: np.ndarray):
        self.metadata = metadata
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
        self._input_index = {s["name"]: i for i, s in enumerate(metadata["inputs"])}
        self._in_ptrs = _pointer_array(self._inputs)
        self._out_ptrs = _pointer_array(self._outputs)
        self._ws_ptr = ctypes.c_void_p(self._workspace.ctypes.data)

    @staticmethod
    def _buffer(spec: dict) -> np.ndarray:
        raw = aligned_empty(spec_nbytes(spec))
        return raw.view(storage_dtype(spec["dtype"])).reshape(spec["shape"])

    @property
    def name(self) -> str:
        return self.metadata["name"]

    @property
    def input_info(self) -> list[dict]:
        """[{name, shape, dtype}] in model order."""
        return [dict(s) for s in self.metadata["inputs"]]

    @property
    def output_info(self) -> list[dict]:
        return [dict(s) for s in self.metadata["outputs"]]

    def set_num_threads(self, n: int) -> None:
        """Threads used by this model's library (its pool is per library)."""
        if int(n) < 1:
            raise InputError(f"num_threads must be >= 1, got {n}")
        self._lib.set_num_threads(int(n))

    def get_num_threads(self) -> int:
        return int(self._lib.get_num_threads())

    def _check(self, inputs: dict) -> list[np.ndarray]:
        if not isinstance(inputs, dict):
            raise InputError("run() takes a dict {input name: array}")
        unknown = [k for k in inputs if k not in self._input_index]
        if unknown:
            raise InputError(f"unknown input {unknown[0]!r}; the model's inputs are "
                             f"{list(self._input_index)}")
        missing = [k for k in self._input_index if k not in inputs]
        if missing:
            raise InputError(f"missing input {missing[0]!r}")
        arrays = []
        for spec in self.metadata["inputs"]:
            name, value = spec["name"], inputs[spec["name"]]
            arr = value if isinstance(value, np.ndarray) else np.asarray(value)
            # Strict: a silent float64 -> float32 (or int64 -> int32) cast hides caller bugs.
            stored = as_storage(arr, spec["dtype"])
            if stored is None:
                bits = (f" (as {storage_dtype(spec['dtype']).name} bit patterns)"
                        if is_exotic(spec["dtype"]) else "")
                raise InputError(f"input {name!r}: expected dtype {spec['dtype']}{bits}, got "
                                 f"{arr.dtype.name}")
            arr = stored
            if list(arr.shape) != spec["shape"]:
                raise InputError(f"input {name!r}: expected shape {tuple(spec['shape'])}, got "
                                 f"{tuple(arr.shape)}")
            if arr.dtype.hasobject:
                raise InputError(f"input {name!r}: object arrays cannot be passed")
            # Non-contiguous arrays (slices, transposes) are accepted: run() copies every
            # input into the model's own aligned buffer anyway.
            arrays.append(arr)
        return arrays

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

    @property
    def can_profile(self) -> bool:
        """True for artifacts compiled with profile=True (`tilecc compile --profile`)."""
        return bool((self.metadata.get("arena") or {}).get("profile"))

    def profile(self, inputs: dict, runs: int = 10, warmup: int = 1) -> list[dict]:
        """Run `warmup` + `runs` times and return one record per kernel call, in run order:
        {kernel, ops, shape, time_ms (mean per run), share (of the kernels' total),
        gflops (from the compile-time FLOP count; None when it is 0)}."""
        if not self.can_profile:
            raise ArtifactError(f"model {self.name!r} has no profiling timers; recompile it "
                                "with `tilecc compile --profile` (build(..., profile=True))")
        if runs < 1:
            raise InputError(f"runs must be >= 1, got {runs}")
        kernels = self.metadata.get("kernels") or []
        try:
            table = (ctypes.c_int64 * max(len(kernels), 1)).in_dll(self._lib.lib,
                                                                  f"{self.name}_profile")
        except ValueError:
            raise ArtifactError(f"model {self.name!r}: library has no profiling table "
                                f"{self.name}_profile; recompile with --profile") from None
        arrays = self._check(inputs)
        with self._lock:
            for buf, arr in zip(self._inputs, arrays):
                np.copyto(buf, arr)
            for _ in range(warmup):
                self._call()
            ctypes.memset(table, 0, ctypes.sizeof(table))
            for _ in range(runs):
                self._call()
            ns = [int(v) / runs for v in table]
        total = sum(ns) or 1.0
        rows = []
        for k, t in zip(kernels, ns):
            flops = int(k.get("flops") or 0)
            rows.append({"kernel": k["kernel"], "ops": list(k["ops"]), "shape": k["shape"],
                         "time_ms": t / 1e6, "share": t / total,
                         "gflops": flops / t if flops and t > 0 else None})
        return rows

    def __repr__(self) -> str:
        def fmt(specs):
            return ", ".join(f"{s['name']}: {s['dtype']}{s['shape']}" for s in specs)
        return f"<tilecc.Module {self.name} ({fmt(self.metadata['inputs'])}) -> " \
               f"({fmt(self.metadata['outputs'])})>"


def load(path: str | os.PathLike, num_threads: int | None = None) -> Module:
    """Load an artifact (model.tar) for this machine; OpenCL artifacts go to the OpenCL
    executor (tilecc.runtime.opencl), so the API and CLI are the same for both."""
    with ArtifactReader(path) as reader:
        kind = (reader.metadata.get("target") or {}).get("kind", "cpu")
    if kind == "opencl":
        from tilecc.runtime.opencl import load as load_opencl
        return load_opencl(path)
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
        library = CpuLibrary(reader.read(LIB_PATH), meta["name"])
    module = Module(meta, library, params)
    if num_threads is not None:
        module.set_num_threads(num_threads)
    return module

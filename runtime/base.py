"""What every loaded model shares, whatever runs it (a CPU library, an OpenCL device): the
metadata accessors, strict input checking and the per-kernel profile table. A runtime
supplies `run` and `_kernel_times_ns`."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from tilecc.errors import ArtifactError, InputError
from tilecc.floatfmt import is_exotic, storage_dtype
from tilecc.runtime.artifact import as_storage


class BaseModule(ABC):
    def __init__(self, metadata: dict):
        self.metadata = metadata
        self._input_index = {s["name"]: i for i, s in enumerate(metadata["inputs"])}

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

    @abstractmethod
    def run(self, inputs: dict) -> dict[str, np.ndarray]:
        """Run once: {input name: ndarray} -> {output name: ndarray} (fresh copies)."""

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
            # input into the model's own buffer anyway.
            arrays.append(arr)
        return arrays

    @property
    def can_profile(self) -> bool:
        """True for artifacts compiled with profile=True (`tilecc compile --profile`)."""
        return bool((self.metadata.get("arena") or {}).get("profile"))

    @abstractmethod
    def _kernel_times_ns(self, arrays: list[np.ndarray], runs: int, warmup: int
                         ) -> list[float]:
        """Mean nanoseconds per run of each kernel call, in the order of metadata["kernels"]."""

    def profile(self, inputs: dict, runs: int = 10, warmup: int = 1) -> list[dict]:
        """Run `warmup` + `runs` times and return one record per kernel call, in run order:
        {kernel, ops, shape, time_ms (mean per run), share (of the kernels' total),
        gflops (from the compile-time FLOP count; None when it is 0)}."""
        if not self.can_profile:
            raise ArtifactError(f"model {self.name!r} has no profiling timers; recompile it "
                                "with `tilecc compile --profile` (build(..., profile=True))")
        if runs < 1:
            raise InputError(f"runs must be >= 1, got {runs}")
        ns = self._kernel_times_ns(self._check(inputs), runs, warmup)
        total = sum(ns) or 1.0
        rows = []
        for k, t in zip(self.metadata.get("kernels") or [], ns):
            flops = int(k.get("flops") or 0)
            rows.append({"kernel": k["kernel"], "ops": list(k["ops"]),
                         "shape": k.get("shape", []), "time_ms": t / 1e6, "share": t / total,
                         "gflops": flops / t if flops and t > 0 else None})
        return rows

    def __repr__(self) -> str:
        def fmt(specs: list[dict]) -> str:
            return ", ".join(f"{s['name']}: {s['dtype']}{s['shape']}" for s in specs)
        return (f"<tilecc.{type(self).__name__} {self.name} ({fmt(self.metadata['inputs'])}) "
                f"-> ({fmt(self.metadata['outputs'])})>")


class CountingModule(BaseModule):
    """A module for an emulated target, whose runs are counted in executed guest
    instructions rather than timed (emulation time says nothing of the target's): firmware
    under qemu-system -icount (runtime/semihost.py) and Linux artifacts under qemu-user's
    debug log (runtime/icount.py). `run_counted` gives (outputs, counts) with counts =
    {"instructions": per inference, "kernels": [{kernel, instructions}] in call order, ...};
    `instruction_profile` is `profile`'s table in instructions."""

    last_counts: dict | None = None

    @abstractmethod
    def run_counted(self, inputs: dict) -> tuple[dict[str, np.ndarray], dict]:
        """Run once and count; also keeps the counts as `last_counts`."""

    @abstractmethod
    def describe_counts(self) -> str:
        """One line on the last counted run: what was counted, by what."""

    def instruction_profile(self, inputs: dict) -> list[dict]:
        """Count one run and return one record per kernel call, in run order: {kernel, ops,
        shape, instructions (None: not attributable, e.g. inlined into the run function or
        no per-kernel counters), share (of the whole run)}. The whole-run figure is
        `last_counts["instructions"]`."""
        _, counts = self.run_counted(inputs)
        total = counts["instructions"] or 1
        per_call = counts.get("kernels") or []
        rows = []
        for i, k in enumerate(self.metadata.get("kernels") or []):
            n = per_call[i]["instructions"] if i < len(per_call) else None
            rows.append({"kernel": k["kernel"], "ops": list(k["ops"]),
                         "shape": k.get("shape", []), "instructions": n,
                         "share": n / total if n is not None else None})
        return rows

    def _kernel_times_ns(self, arrays: list[np.ndarray], runs: int, warmup: int
                         ) -> list[float]:
        raise ArtifactError(f"model {self.name!r} runs emulated, where time says nothing of "
                            "the target's; instruction_profile() counts executed instructions "
                            "per kernel instead (tilecc run --emulate --profile)")

"""The OpenCL executor: runs an OpenCL artifact (kernels.cl + plan.json + params.bin) through
pyopencl, with the same `run({name: array}) -> {name: array}` API as the CPU Module.

Loading does all the work once: pick a device, build the program (or load its binary from
the cache), allocate one arena buffer, upload the params once, and create one kernel object per
launch with its arguments already set. A run is then: copy inputs in, enqueue the launch list,
copy outputs out.

Program-binary cache: `$TILECC_CACHE_DIR/ocl` (default `~/.cache/tilecc/ocl`), keyed by
platform, device, driver version, OpenCL version, build options and the kernel source hash, so
a second load of the same model on the same device skips the OpenCL C compile.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np

from tilecc import fileio
from tilecc.errors import ArtifactError, ModelRunError, TileccError
from tilecc.runtime.artifact import PARAMS_PATH, ArtifactReader
from tilecc.runtime.base import BaseModule

KERNELS_PATH = "kernels.cl"
PLAN_PATH = "plan.json"
BUILD_OPTIONS = "-cl-fast-relaxed-math -cl-mad-enable"


class OpenCLUnavailable(TileccError):
    exit_code = 3


def _cl():
    try:
        import pyopencl as cl
    except ImportError:
        raise OpenCLUnavailable("running an OpenCL artifact needs pyopencl: "
                                "pip install pyopencl (and an OpenCL driver, e.g. PoCL)") from None
    return cl


def pick_device():
    """TILECC_OPENCL_DEVICE="<platform substring>[:<device index>]" chooses; otherwise the
    first GPU, else the first device of any kind."""
    cl = _cl()
    try:
        platforms = cl.get_platforms()
    except cl.Error as e:
        raise OpenCLUnavailable(f"no OpenCL platform ({e}); install a driver (e.g. "
                                "pocl-opencl-icd)") from None
    want = os.environ.get("TILECC_OPENCL_DEVICE", "")
    sub, _, idx = want.partition(":")
    devices = []
    for p in platforms:
        if sub and sub.lower() not in p.name.lower():
            continue
        try:
            devices += p.get_devices()
        except cl.Error:
            continue
    if not devices:
        raise OpenCLUnavailable(f"no OpenCL device{' matches ' + want if want else ''}")
    if idx:
        return devices[int(idx)]
    gpus = [d for d in devices if d.type & cl.device_type.GPU]
    return (gpus or devices)[0]


def cache_dir() -> Path:
    return fileio.cache_dir("ocl")


def cache_key(device, source: str, options: str) -> str:
    h = hashlib.sha256()
    for part in (device.platform.name, device.platform.version, device.name,
                 device.driver_version, device.version, options, source):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def build_program(ctx, device, source: str, options: str = BUILD_OPTIONS):
    """(program, cache_hit, cache_path). A corrupt or stale binary is rebuilt from source."""
    cl = _cl()
    path = cache_dir() / f"{cache_key(device, source, options)}.bin"
    if path.is_file():
        try:
            prg = cl.Program(ctx, [device], [path.read_bytes()]).build(options)
            return prg, True, path
        except cl.Error:
            pass  # driver rejected the binary: fall through to a source build
    try:
        prg = cl.Program(ctx, source).build(options, cache_dir=False)
    except cl.RuntimeError as e:
        raise ArtifactError(f"OpenCL build of kernels.cl failed on {device.name}:\n{e}") from None
    binary = prg.get_info(cl.program_info.BINARIES)[0]
    if binary:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fileio.atomic_write(path, binary)
        except OSError:
            pass  # a read-only cache only costs the next load a compile
    return prg, False, path


class OpenCLModule(BaseModule):
    """A loaded OpenCL model; `run` is serialised by a lock."""

    def __init__(self, metadata: dict, source: str, plan: dict, params: np.ndarray):
        cl = _cl()
        super().__init__(metadata)
        self.plan = plan
        self.device = pick_device()
        self.ctx = cl.Context([self.device])
        self.queue = cl.CommandQueue(self.ctx)
        self._lock = threading.Lock()
        self.program, self.cache_hit, self.cache_path = build_program(self.ctx, self.device,
                                                                      source)
        mf = cl.mem_flags
        self._arena = cl.Buffer(self.ctx, mf.READ_WRITE, max(plan["arena_bytes"], 1))
        self._params = cl.Buffer(self.ctx, mf.READ_ONLY | mf.COPY_HOST_PTR,
                                 hostbuf=params if params.nbytes else np.zeros(1, np.uint8))
        self._in_host = [np.empty(s["shape"], s["storage"]) for s in plan["inputs"]]
        self._out_host = [np.empty(s["shape"], s["storage"]) for s in plan["outputs"]]
        self._inputs = [cl.Buffer(self.ctx, mf.READ_ONLY, max(a.nbytes, 1))
                        for a in self._in_host]
        self._outputs = [cl.Buffer(self.ctx, mf.READ_WRITE, max(a.nbytes, 1))
                         for a in self._out_host]
        self._profile_queue = None
        limit = self.device.max_work_group_size
        self._launches = []
        for ln in plan["launches"]:
            if int(np.prod(ln["local"])) > limit:
                raise ArtifactError(f"kernel {ln['kernel']} wants {ln['local']} work-items per "
                                    f"group; {self.device.name} allows {limit}: compile for "
                                    "a preset with this device's limits")
            k = cl.Kernel(self.program, ln["kernel"])
            args = []
            for a in ln["args"]:
                buf = {"arena": lambda i: self._arena, "params": lambda i: self._params,
                       "input": lambda i: self._inputs[i],
                       "output": lambda i: self._outputs[i]}[a["buf"]](a["index"])
                args += [buf, np.int64(a["offset"])]
            k.set_args(*args)
            self._launches.append((k, tuple(ln["global"]), tuple(ln["local"])))

    def set_num_threads(self, n: int) -> None:
        """Host threads do not apply to an OpenCL device; accepted for API parity."""

    def describe(self) -> list[str]:
        """What -v prints: device, and whether the program binary came from the cache."""
        d = self.device
        how = "program binary cache hit" if self.cache_hit else "compiled OpenCL C (cached)"
        return [f"opencl device: {d.name} ({d.platform.name}, driver {d.driver_version})",
                f"opencl program: {how}: {self.cache_path}",
                (f"opencl launches per run: {len(self._launches)}, arena "
                 f"{self.plan['arena_bytes']} bytes, precision {self.plan['precision']}")]

    @property
    def can_profile(self) -> bool:
        """Always: OpenCL profiling events time each launch, no compiled-in timers needed."""
        return True

    def _kernel_times_ns(self, arrays: list[np.ndarray], runs: int, warmup: int
                         ) -> list[float]:
        """Each launch timed by its profiling event (end - start on the device), summed per
        kernel call: a fused kernel may be several launches (one per root stage)."""
        cl = _cl()
        if self._profile_queue is None:
            self._profile_queue = cl.CommandQueue(
                self.ctx, properties=cl.command_queue_properties.PROFILING_ENABLE)
        q = self._profile_queue
        per_call = [len(k.get("launches") or [k["kernel"]])
                    for k in self.metadata.get("kernels") or []]
        totals = [0.0] * len(self._launches)
        with self._lock:
            try:
                self._upload(q, arrays)
                for r in range(warmup + runs):
                    events = [cl.enqueue_nd_range_kernel(q, k, g, loc)
                              for k, g, loc in self._launches]
                    q.finish()
                    if r >= warmup:
                        for i, ev in enumerate(events):
                            totals[i] += ev.profile.end - ev.profile.start
            except cl.Error as e:
                raise ModelRunError(f"model {self.name!r}: OpenCL error {e}", 1) from None
        ns, pos = [], 0
        for n in per_call:
            ns.append(sum(totals[pos:pos + n]) / runs)
            pos += n
        return ns

    def _upload(self, q, arrays: list[np.ndarray]) -> None:
        cl = _cl()
        for host, dev, arr in zip(self._in_host, self._inputs, arrays):
            np.copyto(host, arr, casting="unsafe")  # float32 -> half for fp16 storage
            if host.nbytes:
                cl.enqueue_copy(q, dev, host, is_blocking=False)

    def run(self, inputs: dict) -> dict[str, np.ndarray]:
        cl = _cl()
        arrays = self._check(inputs)
        q = self.queue
        with self._lock:
            try:
                self._upload(q, arrays)
                for k, g, loc in self._launches:
                    cl.enqueue_nd_range_kernel(q, k, g, loc)
                for host, dev in zip(self._out_host, self._outputs):
                    if host.nbytes:
                        cl.enqueue_copy(q, host, dev, is_blocking=False)
                q.finish()
            except cl.Error as e:
                raise ModelRunError(f"model {self.name!r}: OpenCL error {e}", 1) from None
            return {s["name"]: host.astype(s["dtype"])
                    for s, host in zip(self.metadata["outputs"], self._out_host)}

    def __repr__(self) -> str:
        return f"<tilecc.OpenCLModule {self.name} on {self.device.name}>"


def load(path) -> OpenCLModule:
    with ArtifactReader(path) as reader:
        meta = {k: v for k, v in reader.metadata.items() if k != "files"}
        meta["files"] = dict(reader.metadata["files"])
        if meta.get("target", {}).get("kind") != "opencl":
            raise ArtifactError(f"{path}: not an OpenCL artifact")
        for need in (KERNELS_PATH, PLAN_PATH):
            if not reader.has(need):
                raise ArtifactError(f"{path}: OpenCL artifact lacks {need}")
        source = reader.read(KERNELS_PATH).decode()
        plan = json.loads(reader.read(PLAN_PATH))
        params = np.frombuffer(reader.read(PARAMS_PATH), dtype=np.uint8).copy()
        reader.verify([n for n in reader.names() if n not in (KERNELS_PATH, PLAN_PATH,
                                                              PARAMS_PATH)])
    return OpenCLModule(meta, source, plan, params)

"""Build one scheduled kernel into a callable native function (like `tvm.build`).

Used by tests of schedules and by the autotuner to time candidates; models go through the
AOT entry instead (codegen/aot.py).
"""

from __future__ import annotations

import ctypes
import tempfile
from pathlib import Path

import numpy as np
from llvmlite import ir

from tilecc.loopir import PrimFunc
from tilecc.runtime.artifact import aligned_empty as aligned_bytes
from tilecc.schedule import Schedule, lower

from .llvm import I32, PTR, ModuleCodegen


def aligned_empty(shape, dtype, align: int = 64) -> np.ndarray:
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    return aligned_bytes(nbytes, align).view(dtype).reshape(shape)


class NativeFunction:
    def __init__(self, lib_path: Path, symbol: str, func: PrimFunc, keep: tempfile.TemporaryDirectory):
        self._keep = keep  # the library file lives as long as the function
        self.lib = ctypes.CDLL(str(lib_path))
        self.fn = getattr(self.lib, symbol)
        self.fn.argtypes = [ctypes.c_void_p]
        self.fn.restype = ctypes.c_int32
        self.func = func
        self.scratch = [aligned_empty(b.shape, b.dtype) for b in func.attrs.get("scratch", [])]
        nargs = len(func.params) - len(self.scratch)
        self.arg_buffers = func.params[:nargs]

    def __call__(self, *arrays: np.ndarray) -> None:
        if len(arrays) != len(self.arg_buffers):
            raise TypeError(f"{self.func.name}: expected {len(self.arg_buffers)} arrays, "
                            f"got {len(arrays)}")
        for a, b in zip(arrays, self.arg_buffers):
            if tuple(a.shape) != tuple(b.shape) or a.dtype != np.dtype(b.dtype):
                raise TypeError(f"{self.func.name}: argument {b.name} must be {b.dtype}"
                                f"{list(b.shape)}, got {a.dtype}{list(a.shape)}")
            if not a.flags.c_contiguous:
                raise TypeError(f"{self.func.name}: argument {b.name} must be C-contiguous")
        ptrs = (ctypes.c_void_p * len(self.func.params))(
            *[a.ctypes.data for a in list(arrays) + self.scratch])
        rc = self.fn(ptrs)
        if rc != 0:
            raise RuntimeError(f"{self.func.name} returned error code {rc}")


def build_shared(sch: Schedule, args, target, out_dir: str | Path, name: str = "kernel"
                 ) -> tuple[Path, PrimFunc]:
    """Compile and link the kernel with an entry `int32_t <name>_entry(void **args)` into
    out_dir/lib<name>.so for `target`, without loading it: for a cross target the library
    only runs on the board or under an emulator. Returns the library and the lowered function
    (its params are the entry's args: inputs, outputs, then scratch)."""
    from tilecc.targets import get_target

    from .link import link_shared

    target = get_target(target)
    func = lower(sch, list(args), name)
    cg = ModuleCodegen(target, name)
    kfn = cg.add_kernel(func)
    entry = ir.Function(cg.module, ir.FunctionType(I32, [PTR]), f"{name}_entry")
    b = ir.IRBuilder(entry.append_basic_block("entry"))
    argv = [b.load(b.gep(entry.args[0], [I32(k)], source_etype=PTR), typ=PTR)
            for k in range(len(func.params))]
    b.ret(b.call(kfn, argv))
    obj, _ = cg.compile()
    o = Path(out_dir) / f"{name}.o"
    o.write_bytes(obj)
    return link_shared([o], Path(out_dir) / f"lib{name}.so", target), func


def build_function(sch: Schedule, args, target, name: str = "kernel") -> NativeFunction:
    tmp = tempfile.TemporaryDirectory(prefix="tilecc_fn_")
    lib, func = build_shared(sch, args, target, tmp.name, name)
    return NativeFunction(lib, f"{name}_entry", func, tmp)

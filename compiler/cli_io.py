"""Files the `tilecc` command reads and writes: run inputs and calibration samples (.npz, .npy,
raw tensors), shapes on the command line, and atomic writes that honour the umask."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tilecc import fileio
from tilecc.errors import InputError

_NPZ_MAGIC, _NPY_MAGIC = b"PK\x03\x04", b"\x93NUMPY"
FORMS = ("a .npz keyed by input name (np.savez(path, NAME=array)), a .npy for a one-input "
         "model, or a raw tensor file (array.tofile(path)) for a one-input model")


def check_output_dir(path: str | os.PathLike) -> Path:
    """The directory `path` will be written in; checked before long work, not after it."""
    parent = Path(path).parent
    if not parent.is_dir():
        raise InputError(f"{path}: directory {parent} does not exist; create it or choose "
                         "another output path")
    return parent


def atomic_write(path: str | os.PathLike, data: bytes) -> Path:
    """tilecc.fileio's atomic write (unique temp name, umask mode) after checking that the
    output directory exists, so a bad -o is a usage error."""
    check_output_dir(Path(path))
    return fileio.atomic_write(path, data)


def parse_shape(text: str) -> tuple[str, list[int]]:
    """NAME=D0,D1,... from --input-shape."""
    name, sep, dims = text.rpartition("=")
    if not sep or not name:
        raise InputError(f"--input-shape wants NAME=D0,D1,...; got {text!r}")
    try:
        shape = [int(d) for d in dims.split(",")] if dims.strip() else []
    except ValueError:
        raise InputError(f"--input-shape {text!r}: dimensions must be integers") from None
    if any(d < 0 for d in shape):
        raise InputError(f"--input-shape {text!r}: dimensions must be >= 0")
    return name, shape


def _kind(path: Path, what: str) -> str:
    if path.is_dir():
        return "dir"
    if not path.is_file():
        raise InputError(f"{what} {path}: no such file")
    with open(path, "rb") as f:
        head = f.read(6)
    if head.startswith(_NPZ_MAGIC):
        return "npz"
    return "npy" if head == _NPY_MAGIC else "raw"


def _np_load(path: Path, what: str):
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        # numpy's message for object arrays talks about allow_pickle, which tilecc never sets.
        why = "it holds Python objects" if "pickle" in str(e) else str(e)
        raise InputError(f"{what} {path}: cannot read it ({why}); give {FORMS}") from None


def _read_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    try:
        with _np_load(path, what) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError) as e:  # a member that is not a plain array
        why = "an array holds Python objects" if "pickle" in str(e) else str(e)
        raise InputError(f"{what} {path}: cannot read it ({why})") from None


def _one_input(path: Path, what: str, names: list[str], form: str) -> str:
    if len(names) != 1:
        raise InputError(f"{what} {path}: a {form} holds one tensor but the model has "
                         f"{len(names)} inputs {names}; save them in one .npz: "
                         f"np.savez(path, {', '.join(f'{n}=...' for n in names)})")
    return names[0]


def read_run_inputs(path: str, specs: list[dict]) -> dict[str, np.ndarray]:
    """`run -i`: {input name: array} from a .npz, a .npy or a raw tensor file; shape and
    dtype checks are the module's (one message for every input form)."""
    p, what = Path(path), "-i"
    kind = _kind(p, what)
    if kind == "dir":
        raise InputError(f"-i {p} is a directory; give {FORMS}")
    if kind == "npz":
        return _read_npz(p, what)
    name = _one_input(p, what, [s["name"] for s in specs], ".npy" if kind == "npy" else
                      "raw tensor file")
    if kind == "npy":
        return {name: _np_load(p, what)}
    spec = specs[0]
    try:
        dtype = np.dtype(spec["dtype"])
    except TypeError:
        raise InputError(f"-i {p}: raw files of dtype {spec['dtype']} are not supported; "
                         "give a .npz") from None
    want = int(np.prod(spec["shape"])) * dtype.itemsize
    size = p.stat().st_size
    if size != want:
        raise InputError(f"-i {p}: not a .npz or .npy, so read as raw {spec['dtype']}"
                         f"{spec['shape']} for input {name!r}, which is {want} bytes, but "
                         f"the file has {size}; give {FORMS}")
    return {name: np.fromfile(p, dtype=dtype).reshape(spec["shape"])}


def _model_input_names(model: str) -> list[str]:
    import onnx

    g = onnx.load(model, load_external_data=False).graph
    inits = {t.name for t in g.initializer}
    return [vi.name for vi in g.input if vi.name not in inits]


def calibration_data(path: str, model: str, option: str = "--calibration"):
    """What the API takes as calibration data: a directory or .npz path as given, or, for a
    .npy of a one-input model, the list of per-sample input dicts along its leading axis."""
    p = Path(path)
    kind = _kind(p, option)
    if kind in ("dir", "npz"):
        return path
    if kind == "raw":
        raise InputError(f"{option} {p}: not a .npz or .npy file; give a directory of .npz "
                         "files (one sample each, keyed by input name), one .npz whose arrays "
                         "have a leading sample axis, or a .npy (one-input model)")
    name = _one_input(p, option, _model_input_names(model), ".npy")
    arr = _np_load(p, option)
    return [{name: a} for a in arr]

"""The artifact: what `tilecc.compile` produces and `tilecc.load` / the C runner consume.

On disk it is one uncompressed tar (``model.tar``)::

    model.json        metadata (below); lists every other file with its sha256
    lib/model.so      the model + C runtime as a shared library (CPU targets)
    include/model.h   C declarations and size macros for the model
    params.bin        the weights blob, bound by <name>_init (never copied)
    ...               any extra files (objects, kernels, plans), also hashed

``model.json`` keys: format_version, tilecc_version, name (C symbol prefix), target
(Target.to_dict()), inputs / outputs (lists of {name, shape, dtype}), workspace_size,
params_size, arena (memory-plan info from the compiler), files ({path: sha256}), plus any
extra keys the compiler adds (kernels, groups, ...), and meta_sha256: the sha256 of model.json
itself without that key (canonical JSON, metadata_digest), so a corrupted or hand-edited
model.json is refused. It is a checksum, not a signature: whoever edits the file can recompute
it, which is why the loader also compares model.json with the metadata compiled into the
library (runtime/libmeta.py) before calling it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tilecc.errors import ArtifactError
from tilecc.fileio import atomic_output
from tilecc.floatfmt import is_exotic, storage_dtype

FORMAT_VERSION = 2  # 2: meta_sha256 and metadata embedded in the library
MODEL_JSON = "model.json"
LIB_PATH = "lib/model.so"
HEADER_PATH = "include/model.h"
PARAMS_PATH = "params.bin"
ALIGN = 64
# The model library's ABI (runtime/libmeta.py): bump when the entry points' signatures or the
# meaning of the metadata compiled into the library change.
ABI_VERSION = 1

_C_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_REQUIRED = {"format_version": int, "name": str, "inputs": list, "outputs": list,
             "workspace_size": int, "params_size": int, "files": dict}


def sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def metadata_digest(meta: dict) -> str:
    """The checksum model.json carries of itself (every key but meta_sha256)."""
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def tensor_spec(name: str, shape, dtype) -> dict:
    """The {name, shape, dtype} record used for model inputs and outputs."""
    name_ = str(dtype) if is_exotic(str(dtype)) else np.dtype(dtype).name
    return {"name": str(name), "shape": [int(d) for d in shape], "dtype": name_}


def spec_nbytes(spec: dict) -> int:
    return int(np.prod(spec["shape"], dtype=np.int64)) * storage_dtype(spec["dtype"]).itemsize


def as_storage(arr: np.ndarray, dtype: str) -> np.ndarray | None:
    """`arr` as the memory of a `dtype` tensor, or None if its dtype does not fit.

    bfloat16 and float8 tensors (tilecc/floatfmt.py) cross the runtime boundary as their bit
    patterns (uint16 / uint8 arrays, numpy has no such dtypes); an ml_dtypes array of the
    same type is accepted too and reinterpreted."""
    st = storage_dtype(dtype)
    if arr.dtype == st:
        return arr
    if is_exotic(dtype) and arr.dtype.name == dtype and arr.dtype.itemsize == st.itemsize:
        return arr.view(st)
    return None


@dataclass
class Artifact:
    """A compiled model in memory: metadata (the future model.json) and files by tar path."""

    metadata: dict
    files: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def create(cls, *, name: str, target: Any, inputs: list, outputs: list, params: bytes,
               workspace_size: int, library: bytes | None = None, arena: dict | None = None,
               extra_files: dict[str, bytes] | None = None, **extra_meta: Any) -> Artifact:
        """Assemble an artifact; the header is generated here so it always matches.

        `inputs`/`outputs` are lists of {name, shape, dtype} dicts (see tensor_spec);
        `target` is a Target, its dict, or a preset name. Extra keyword arguments become
        extra model.json keys (e.g. kernels=..., groups=...).
        """
        from tilecc import __version__
        from tilecc.targets import Target, get_target

        if not _C_IDENT.match(name):
            raise ArtifactError(f"model name {name!r} is not a C identifier")
        if not isinstance(target, dict):
            target = get_target(target) if isinstance(target, str) else target
            target = Target.to_dict(target)
        meta = {
            "format_version": FORMAT_VERSION,
            "tilecc_version": __version__,
            "name": name,
            "target": target,
            "inputs": [tensor_spec(s["name"], s["shape"], s["dtype"]) for s in inputs],
            "outputs": [tensor_spec(s["name"], s["shape"], s["dtype"]) for s in outputs],
            "workspace_size": int(workspace_size),
            "params_size": len(params),
            "arena": dict(arena or {}),
            **extra_meta,
        }
        files = {PARAMS_PATH: bytes(params), HEADER_PATH: make_header(meta).encode()}
        if library is not None:
            files[LIB_PATH] = bytes(library)
        files.update(extra_files or {})
        return cls(meta, files)

    @property
    def name(self) -> str:
        return self.metadata["name"]

    def full_metadata(self) -> dict:
        """model.json as written: metadata plus the hash of every file."""
        meta = dict(self.metadata)
        meta["files"] = {p: sha256(b) for p, b in sorted(self.files.items())}
        meta["meta_sha256"] = metadata_digest(meta)
        return meta

    def save(self, path: str | os.PathLike) -> Path:
        """Write model.tar atomically (a crash never leaves half an artifact)."""
        path = Path(path)
        for p in self.files:
            _check_member_name(p)
            if p == MODEL_JSON:
                raise ArtifactError("model.json is generated; do not pass it as a file")
        entries = [(MODEL_JSON, json.dumps(self.full_metadata(), indent=2).encode())]
        entries += sorted(self.files.items())
        with atomic_output(path) as tmp, \
                tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for member, data in entries:
                info = tarfile.TarInfo(member)
                info.size = len(data)
                info.mode = 0o644  # mtime/uid left at 0 so equal models give equal tars
                tar.addfile(info, io.BytesIO(data))
        return path


def make_header(meta: dict) -> str:
    """include/model.h: declarations plus the macros a generic C runner needs."""
    name = meta["name"]
    guard = f"TILECC_MODEL_{name.upper()}_H"

    def sizes(specs: list) -> str:
        return "{" + ", ".join(str(spec_nbytes(s)) for s in specs) + "}" if specs else "{0}"

    def names(specs: list) -> str:
        return "{" + ", ".join(_c_string(s["name"]) for s in specs) + "}" if specs else "{0}"

    def describe(kind: str, specs: list) -> list[str]:
        return [f" *   {kind} {i}: {s['name']} {s['dtype']}{s['shape']}"
                for i, s in enumerate(specs)]

    lines = [
        f"/* Generated by tilecc {meta.get('tilecc_version', '')} for model {name!r}.",
        *describe("input", meta["inputs"]),
        *describe("output", meta["outputs"]),
        " * Tensors are dense row-major; every buffer must be 64-byte aligned. */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <stdint.h>",
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
        "/* Bind the weights blob (kept by pointer). Returns 0, or 1 if params_size is wrong. */",
        f"int32_t {name}_init(const void *params, int64_t params_size);",
        "/* Run the model once. Returns 0 or an error code. */",
        f"int32_t {name}_run(const void *const *inputs, void *const *outputs, void *workspace);",
        f"int64_t {name}_workspace_size(void);",
        "/* What the library was built for: {ABI version, inputs, outputs, workspace size,",
        " * params size, input bytes..., output bytes...}; runners compare it with the macros",
        " * below before calling the model (tilecc_check_abi in tilecc_runner.c). */",
        f"extern const int64_t {name}_abi_sizes[];",
        *_thread_decls(meta),
        "",
        "/* Sizes are in bytes (not elements); one entry per input/output in model order. */",
        f'#define TILECC_MODEL_NAME "{name}"',
        f"#define TILECC_NUM_INPUTS {len(meta['inputs'])}",
        f"#define TILECC_NUM_OUTPUTS {len(meta['outputs'])}",
        f"#define TILECC_INPUT_SIZES {sizes(meta['inputs'])}",
        f"#define TILECC_OUTPUT_SIZES {sizes(meta['outputs'])}",
        f"#define TILECC_INPUT_NAMES {names(meta['inputs'])}",
        f"#define TILECC_OUTPUT_NAMES {names(meta['outputs'])}",
        f"#define TILECC_WORKSPACE_SIZE {int(meta['workspace_size'])}",
        f"#define TILECC_PARAMS_SIZE {int(meta['params_size'])}",
        f"#define TILECC_MODEL_INIT {name}_init",
        f"#define TILECC_MODEL_RUN {name}_run",
        f"#define TILECC_MODEL_WORKSPACE_SIZE {name}_workspace_size",
        f"#define TILECC_MODEL_ABI_SIZES {name}_abi_sizes",
        f"#define TILECC_ABI_VERSION {ABI_VERSION}",
        "",
        "#ifdef __cplusplus",
        "}",
        "#endif",
        "",
        f"#endif /* {guard} */",
        "",
    ]
    return "\n".join(lines)


def _thread_decls(meta: dict) -> list[str]:
    """The runtime's thread controls, for artifacts that carry it (not bare metal or OpenCL).
    Declared identically by every model.h, so several headers can meet in one program."""
    target = meta.get("target") or {}
    if target.get("kind", "cpu") != "cpu" or target.get("bare_metal"):
        return []
    return ["/* Threads of the runtime's pool for later runs (lib/model.so has its own pool; with",
            " * lib/model.o, runtime/c/tilecc_runtime.c). Default: $TILECC_NUM_THREADS, else the",
            " * cores this process may use. */",
            "void tilecc_set_num_threads(int32_t n);",
            "int32_t tilecc_get_num_threads(void);"]


def _c_string(s: str) -> str:
    out = []
    for b in s.encode():
        ch = chr(b)
        if ch in '"\\?':  # '?' too: "??" sequences would be trigraphs
            out.append("\\" + ch)
        elif 32 <= b < 127:
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def _check_member_name(name: str) -> None:
    parts = name.split("/")
    if (not name or name.startswith("/") or "\\" in name or ".." in parts
            or "" in parts or "." in parts or posixpath.normpath(name) != name):
        raise ArtifactError(f"unsafe path in artifact: {name!r}")


class ArtifactReader:
    """Reads a model.tar safely: no absolute or `..` paths, no links or devices, every file
    listed in model.json with a matching sha256. Nothing is written to disk."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self._tar = tarfile.open(self.path, "r:")  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            raise ArtifactError(f"{self.path}: no such file") from None
        except (tarfile.TarError, OSError) as e:
            raise ArtifactError(f"{self.path}: not a tilecc artifact (bad tar: {e})") from None
        try:
            self._members = self._index()
            self.metadata = self._read_metadata()
        except (tarfile.TarError, EOFError) as e:
            self._tar.close()
            raise ArtifactError(f"{self.path}: truncated or corrupt artifact ({e}); copy or "
                                "build it again") from None
        except BaseException:
            self._tar.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._tar.close()

    def _index(self) -> dict[str, tarfile.TarInfo]:
        members: dict[str, tarfile.TarInfo] = {}
        for m in self._tar.getmembers():
            try:
                _check_member_name(m.name.rstrip("/") if m.isdir() else m.name)
            except ArtifactError as e:
                raise ArtifactError(f"{self.path}: {e}") from None
            if m.isdir():
                continue
            if not m.isfile():
                raise ArtifactError(f"{self.path}: member {m.name!r} is a link or special file")
            if m.name in members:
                raise ArtifactError(f"{self.path}: member {m.name!r} appears twice")
            members[m.name] = m
        return members

    def _read_metadata(self) -> dict:
        if MODEL_JSON not in self._members:
            raise ArtifactError(f"{self.path}: not a tilecc artifact (no model.json)")
        try:
            meta = json.loads(self._tar.extractfile(self._members[MODEL_JSON]).read())
        except ValueError as e:
            raise ArtifactError(f"{self.path}: model.json is not valid JSON ({e})") from None
        if not isinstance(meta, dict):
            raise ArtifactError(f"{self.path}: model.json is not an object")
        for key, typ in _REQUIRED.items():
            if not isinstance(meta.get(key), typ):
                raise ArtifactError(f"{self.path}: model.json lacks a valid {key!r}")
        if meta["format_version"] > FORMAT_VERSION:
            raise ArtifactError(f"{self.path}: format version {meta['format_version']} is newer "
                                f"than this tilecc understands ({FORMAT_VERSION}); upgrade tilecc")
        if meta["format_version"] < FORMAT_VERSION:
            raise ArtifactError(f"{self.path}: format version {meta['format_version']} (an older "
                                "tilecc) has no integrity data for model.json and no metadata "
                                "in its library; compile the model again")
        if meta.get("meta_sha256") != metadata_digest(meta):
            raise ArtifactError(f"{self.path}: model.json does not match its own checksum "
                                "(meta_sha256): it was edited or corrupted; compile it again")
        listed, present = set(meta["files"]), set(self._members) - {MODEL_JSON}
        if present - listed:
            raise ArtifactError(f"{self.path}: file {min(present - listed)!r} is not "
                                "listed in model.json")
        if listed - present:
            raise ArtifactError(f"{self.path}: file {min(listed - present)!r} listed in "
                                "model.json is missing")
        return meta

    def names(self) -> list[str]:
        return sorted(self.metadata["files"])

    def has(self, name: str) -> bool:
        return name in self.metadata["files"]

    def size(self, name: str) -> int:
        return self._member(name).size

    def _member(self, name: str) -> tarfile.TarInfo:
        if name not in self.metadata["files"]:
            raise ArtifactError(f"{self.path}: artifact has no {name}")
        return self._members[name]

    def _verify(self, name: str, data: bytes | memoryview) -> None:
        if sha256(data) != self.metadata["files"][name]:
            raise ArtifactError(f"{self.path}: {name} does not match its sha256 in model.json "
                                "(corrupted or tampered with)")

    def verify(self, names: list[str]) -> None:
        """Check the hashes of files the caller does not otherwise read."""
        for name in names:
            self.read(name)

    def read(self, name: str) -> bytes:
        try:
            data = self._tar.extractfile(self._member(name)).read()
        except (tarfile.TarError, EOFError) as e:
            raise ArtifactError(f"{self.path}: {name} is truncated or corrupt ({e}); copy or "
                                "build the artifact again") from None
        self._verify(name, data)
        return data

    def read_into(self, name: str, buf: np.ndarray) -> None:
        """Fill a uint8 buffer of exactly the member's size (avoids a second copy of params)."""
        m = self._member(name)
        view = memoryview(buf).cast("B")
        if len(view) != m.size:
            raise ArtifactError(f"{self.path}: {name} has {m.size} bytes, expected {len(view)}")
        f = self._tar.extractfile(m)
        got = 0
        while got < m.size:
            try:
                n = f.readinto(view[got:])
            except (tarfile.TarError, EOFError):
                n = 0
            if not n:
                raise ArtifactError(f"{self.path}: {name} is truncated")
            got += n
        self._verify(name, view)


def read_artifact(path: str | os.PathLike) -> Artifact:
    """Load a model.tar fully into memory, verified (metadata without the derived `files`
    and `meta_sha256`, which save() computes again)."""
    with ArtifactReader(path) as r:
        meta = {k: v for k, v in r.metadata.items() if k not in ("files", "meta_sha256")}
        return Artifact(meta, {name: r.read(name) for name in r.names()})


def extract_artifact(path: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Verify and unpack a model.tar into `dest` (e.g. to build the C runner against it)."""
    dest = Path(dest)
    with ArtifactReader(path) as r:
        for name in [MODEL_JSON, *r.names()]:
            data = r._tar.extractfile(r._members[name]).read() if name == MODEL_JSON \
                else r.read(name)
            out = dest / name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
    return dest


def aligned_empty(nbytes: int, align: int = ALIGN) -> np.ndarray:
    """A uint8 array of `nbytes` whose data pointer is `align`-aligned (never NULL-sized:
    codegen may emit aligned loads, and numpy only guarantees 16 bytes)."""
    raw = np.empty(max(nbytes, 1) + align, dtype=np.uint8)
    offset = (-raw.ctypes.data) % align
    return raw[offset:offset + nbytes]

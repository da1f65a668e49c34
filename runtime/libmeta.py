"""Metadata compiled into a model library, and the check of model.json against it.

model.json is only data next to the library: an edited shape, dtype or extra output made the
runtime hand the native code buffers of the wrong size (segfaults, heap corruption). So the
codegen (codegen/aot.py) embeds what the code was built for, and the loader compares before
any model function is called -- read from the file's bytes (runtime/elf.py), not through
dlopen, so a mismatch is refused before the library is even mapped:

  const char    <name>_abi[];        NUL-terminated JSON: abi_record() below
  const int64_t <name>_abi_sizes[];  {ABI_VERSION, n_in, n_out, workspace, params,
                                      input bytes..., output bytes...} for C runners
"""

from __future__ import annotations

import json

from tilecc.errors import ArtifactError
from tilecc.runtime import elf
from tilecc.runtime.artifact import ABI_VERSION, _c_string, spec_nbytes, tensor_spec

_REBUILD = "the artifact was edited or assembled from different builds; compile it again"


def abi_symbol(name: str) -> str:
    return f"{name}_abi"


def abi_sizes_symbol(name: str) -> str:
    return f"{name}_abi_sizes"


def _io(specs: list[dict]) -> list[dict]:
    out = []
    for s in specs:
        t = tensor_spec(s["name"], s["shape"], s["dtype"])
        out.append({**t, "nbytes": spec_nbytes(t)})
    return out


def abi_record(name: str, inputs: list[dict], outputs: list[dict], workspace_size: int,
               params_size: int) -> dict:
    """What a library is built for, in model.json's terms (plus byte sizes)."""
    return {"abi": ABI_VERSION, "name": name, "inputs": _io(inputs), "outputs": _io(outputs),
            "workspace_size": int(workspace_size), "params_size": int(params_size)}


def abi_sizes(record: dict) -> list[int]:
    return [record["abi"], len(record["inputs"]), len(record["outputs"]),
            record["workspace_size"], record["params_size"],
            *(s["nbytes"] for s in record["inputs"]), *(s["nbytes"] for s in record["outputs"])]


def abi_json(record: dict) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def abi_c_source(record: dict) -> str:
    """The two symbols as C, for model libraries written by hand rather than by the codegen
    (compile it into the library next to <name>_init/_run)."""
    name = record["name"]
    sizes = ", ".join(str(v) for v in abi_sizes(record))
    return (f"#include <stdint.h>\nconst int64_t {abi_sizes_symbol(name)}[] = {{{sizes}}};\n"
            f"const char {abi_symbol(name)}[] = {_c_string(abi_json(record).decode())};\n")


def check_machine(library: bytes, where: str) -> elf.ElfHeader:
    """Refuse a library this machine cannot execute, from its ELF header (e_machine, class)."""
    try:
        h = elf.header(library)
    except elf.ElfError as e:
        raise ArtifactError(f"{where}: lib/model.so is not a shared library ({e})") from None
    have = elf.host_arch()
    if h.machine != have or h.bits != elf.host_bits():
        raise ArtifactError(f"{where}: the library is built for {h.describe()} "
                            f"({h.bits}-bit), this machine is {have.replace('_', '-')}; run it "
                            "with --emulate or on the target")
    return h


def embedded_record(library: bytes, name: str, where: str) -> dict:
    """The metadata compiled into `library` for model `name`."""
    try:
        raw = elf.symbol_bytes(library, abi_symbol(name))
    except elf.ElfError as e:
        raise ArtifactError(f"{where}: lib/model.so is malformed ({e})") from None
    if raw is None:
        raise ArtifactError(f"{where}: lib/model.so has no embedded metadata "
                            f"({abi_symbol(name)}): it is not model {name!r}, or was built "
                            "by an older tilecc; compile it again")
    try:
        rec = json.loads(raw.rstrip(b"\0"))
    except ValueError:
        raise ArtifactError(f"{where}: lib/model.so's embedded metadata is not valid "
                            "JSON; compile it again") from None
    if not isinstance(rec, dict) or rec.get("abi") != ABI_VERSION:
        got = rec.get("abi") if isinstance(rec, dict) else None
        raise ArtifactError(f"{where}: lib/model.so uses model ABI {got}, this tilecc runs "
                            f"ABI {ABI_VERSION}; compile the model again with this tilecc")
    return rec


def check_library(meta: dict, library: bytes, where: str) -> None:
    """Refuse `library` unless it is the native code of exactly the model model.json
    describes (names, shapes, dtypes, byte sizes, workspace and params sizes, ABI)."""
    check_machine(library, where)
    rec = embedded_record(library, meta["name"], where)
    try:
        want = abi_record(meta["name"], meta["inputs"], meta["outputs"],
                          meta["workspace_size"], meta["params_size"])
    except (KeyError, TypeError, ValueError) as e:
        raise ArtifactError(f"{where}: model.json has a malformed input/output entry "
                            f"({e!r}); {_REBUILD}") from None
    for kind in ("inputs", "outputs"):
        got = rec.get(kind) or []
        if len(want[kind]) != len(got):
            raise _mismatch(where, f"{kind} (count)", len(want[kind]), len(got))
        for k, (w, g) in enumerate(zip(want[kind], got)):
            for field in ("name", "shape", "dtype", "nbytes"):
                if w[field] != g.get(field):
                    raise _mismatch(where, f"{kind}[{k}].{field}", w[field], g.get(field))
    for key in ("workspace_size", "params_size"):
        if want[key] != rec.get(key):
            raise _mismatch(where, key, want[key], rec.get(key))


def _mismatch(where: str, field: str, json_value, lib_value) -> ArtifactError:
    return ArtifactError(f"{where}: model.json {field} is {json_value!r} but the library was "
                         f"built for {lib_value!r}; {_REBUILD}")

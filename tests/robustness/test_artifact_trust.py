"""model.json against the library: an edited artifact is refused with ArtifactError naming the
field, never run into a segfault, heap corruption or uninitialised outputs.

Each load runs in a subprocess (the `tilecc run` command), so a native crash fails the test
instead of killing pytest."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import tilecc
from tilecc.runtime.artifact import (
    HEADER_PATH,
    LIB_PATH,
    extract_artifact,
    make_header,
    metadata_digest,
    sha256,
)

sys.path.insert(0, str(Path(__file__).parent))
from cases import conv_model, relu_model

TILECC = str(Path(sys.executable).with_name("tilecc"))


@pytest.fixture(scope="module")
def tar(tmp_path_factory) -> Path:
    return tilecc.compile(conv_model()).save(tmp_path_factory.mktemp("trust") / "m.tar")


def rewrite(src: Path, dst: Path, edit_meta=None, edit_lib=None, rehash: bool = True) -> Path:
    """Copy an artifact changing model.json and/or the library; with `rehash` the file hashes
    and meta_sha256 are recomputed, as a deliberate editor would."""
    with tarfile.open(src) as t:
        files = {m.name: t.extractfile(m).read() for m in t.getmembers()}
    meta = json.loads(files.pop("model.json"))
    if edit_meta:
        edit_meta(meta)
    if edit_lib:
        files[LIB_PATH] = edit_lib(files[LIB_PATH])
    if rehash:
        meta["files"] = {p: sha256(b) for p, b in sorted(files.items())}
        meta["meta_sha256"] = metadata_digest(meta)
    with tarfile.open(dst, "w") as t:
        for name, data in [("model.json", json.dumps(meta).encode()), *sorted(files.items())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return dst


def run_cli(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([TILECC, "run", str(path)], capture_output=True, text=True,
                          timeout=120, check=False)


def _flip_out_dim(m):
    m["outputs"][0]["shape"][-1] ^= 1


def _out_dtype(m):
    m["outputs"][0]["dtype"] = "float64"


def _extra_output(m):
    m["outputs"].append({"name": "ghost", "shape": [1 << 20], "dtype": "float32"})


def _in_shape(m):
    m["inputs"][0]["shape"] = [1, 1, 64, 64]


def _out_name(m):
    m["outputs"][0]["name"] = "z"


def _workspace(m):
    m["workspace_size"] += 64


EDITS = [("one-bit output dim", _flip_out_dim, "outputs[0].shape"),
         ("output dtype", _out_dtype, "outputs[0].dtype"),
         ("extra output", _extra_output, "outputs (count)"),
         ("input shape", _in_shape, "inputs[0].shape"),
         ("output name", _out_name, "outputs[0].name"),
         ("workspace size", _workspace, "workspace_size")]


def test_unedited_artifact_runs(tar):
    proc = run_cli(tar)
    assert proc.returncode == 0, proc.stderr
    assert "y: shape=[1, 2, 4, 4]" in proc.stdout


@pytest.mark.parametrize("label,edit,field", EDITS, ids=[e[0] for e in EDITS])
def test_edited_metadata_refused(tar, tmp_path, label, edit, field):
    proc = run_cli(rewrite(tar, tmp_path / "e.tar", edit))
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    assert f"model.json {field} is" in proc.stderr
    assert "the library was built for" in proc.stderr


def test_model_json_checksum(tar, tmp_path):
    proc = run_cli(rewrite(tar, tmp_path / "e.tar", _flip_out_dim, rehash=False))
    assert proc.returncode == 3, proc.stderr
    assert "model.json does not match its own checksum (meta_sha256)" in proc.stderr


def test_library_of_another_model_refused(tar, tmp_path):
    other = tilecc.compile(relu_model()).save(tmp_path / "o.tar")
    with tarfile.open(other) as t:
        lib = t.extractfile(LIB_PATH).read()
    proc = run_cli(rewrite(tar, tmp_path / "e.tar", edit_lib=lambda _: lib))
    assert proc.returncode == 3, proc.stderr
    assert "model.json inputs[0].shape is [1, 1, 4, 4] but the library was built for [2, 3]" \
        in proc.stderr


def test_library_for_another_machine_refused(tar, tmp_path):
    def to_aarch64(lib: bytes) -> bytes:
        return lib[:0x12] + (183).to_bytes(2, "little") + lib[0x14:]  # e_machine = AArch64

    proc = run_cli(rewrite(tar, tmp_path / "e.tar", edit_lib=to_aarch64))
    assert proc.returncode == 3, proc.stderr
    assert "the library is built for aarch64 (64-bit), this machine is x86-64; run it with " \
           "--emulate or on the target" in proc.stderr


def test_library_without_metadata_refused(tar, tmp_path):
    def rename_symbol(lib: bytes) -> bytes:
        return lib.replace(b"tilecc_model_abi\0", b"tilecc_model_xyz\0")

    proc = run_cli(rewrite(tar, tmp_path / "e.tar", edit_lib=rename_symbol))
    assert proc.returncode == 3, proc.stderr
    assert "has no embedded metadata (tilecc_model_abi)" in proc.stderr


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_c_runner_refuses_a_header_the_library_was_not_built_for(tar, tmp_path):
    from tilecc.runtime.crunner import build_c_runner

    edited = rewrite(tar, tmp_path / "e.tar", _flip_out_dim)
    d = extract_artifact(edited, tmp_path / "x")
    meta = json.loads((d / "model.json").read_text())
    (d / HEADER_PATH).write_text(make_header(meta))  # as a consistent edit would regenerate
    exe = build_c_runner(d, tmp_path / "runner")
    names = [d / "params.bin", tmp_path / "in.bin", tmp_path / "out.bin"]
    names[1].write_bytes(bytes(64))
    proc = subprocess.run([str(exe), *map(str, names)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 5, proc.stderr
    assert "model.h says output 0 has 160 bytes, the library was built for 128" in proc.stderr

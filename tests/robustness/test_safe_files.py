"""Artifacts and files the CLI writes: no path escapes, no links, no pickle, atomic writes,
corrupt bytes always an ArtifactError."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest

import tilecc
from tilecc.cli import atomic_write
from tilecc.errors import ArtifactError
from tilecc.runtime.artifact import extract_artifact, read_artifact

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tar(tmp_path_factory):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from cases import conv_model

    path = tmp_path_factory.mktemp("safe") / "m.tar"
    tilecc.compile(conv_model()).save(path)
    return path


def _append_member(src: Path, dst: Path, info: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(src) as t_in, tarfile.open(dst, "w") as t_out:
        for m in t_in.getmembers():
            t_out.addfile(m, t_in.extractfile(m))
        t_out.addfile(info, io.BytesIO(data) if data else None)
    return dst


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink_out", "hardlink_out",
                                  "symlink_abs", "device"])
def test_extraction_refuses_escapes(tar, tmp_path, kind):
    info = tarfile.TarInfo({"absolute": "/tmp/evil", "dotdot": "lib/../../evil"}.get(kind,
                                                                                  "lib/evil"))
    data = b""
    if kind in ("absolute", "dotdot"):
        data = b"x"
        info.size = 1
    elif kind == "symlink_out":
        info.type, info.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
    elif kind == "symlink_abs":
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    elif kind == "hardlink_out":
        info.type, info.linkname = tarfile.LNKTYPE, "/etc/passwd"
    else:
        info.type = tarfile.CHRTYPE
    bad = _append_member(tar, tmp_path / "bad.tar", info, data)
    out = tmp_path / "out"
    with pytest.raises(ArtifactError, match="unsafe path|link or special file"):
        extract_artifact(bad, out)
    assert not out.exists() or not any(out.rglob("*"))
    assert not (tmp_path / "evil").exists()


def test_every_truncation_is_an_artifact_error(tar, tmp_path):
    data = tar.read_bytes()
    whole = read_artifact(tar).files
    refused = 0
    for k, cut in enumerate(range(0, len(data), max(len(data) // 40, 1))):
        p = tmp_path / f"cut{k}.tar"
        p.write_bytes(data[:cut])
        try:
            got = read_artifact(p)
        except ArtifactError:
            refused += 1
            continue
        # Only the tar's zero padding was cut: every file is there and verified.
        assert got.files == whole
    assert refused >= 35


def test_no_pickle_anywhere():
    """numpy loads must refuse pickles; nothing may import pickle or use allow_pickle=True."""
    offenders = []
    for path in ROOT.rglob("*.py"):
        if ".venv" in path.parts or path == Path(__file__):
            continue
        text = path.read_text(errors="replace")
        if re.search(r"^\s*(import|from)\s+(c?pickle|dill|joblib)\b", text, re.MULTILINE):
            offenders.append(f"{path}: imports pickle")
        if "allow_pickle=True" in text:
            offenders.append(f"{path}: allow_pickle=True")
        for m in re.finditer(r"np\.load\(([^)]*)\)", text):
            if "allow_pickle=False" not in m.group(1) and "tests" not in path.parts:
                offenders.append(f"{path}: np.load without allow_pickle=False")
    assert not offenders, offenders


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    atomic_write(target, b"old")


    with pytest.raises(TypeError):
        atomic_write(target, object())  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temp file left
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"

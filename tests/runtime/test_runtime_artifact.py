"""The artifact format: layout, model.json, header, and refusal of unsafe/tampered tars."""

import io
import json
import shutil
import subprocess
import tarfile

import pytest
from toy_artifact import have_cc, toy_artifact

import tilecc
from tilecc.errors import ArtifactError
from tilecc.runtime.artifact import (
    Artifact,
    extract_artifact,
    make_header,
    metadata_digest,
    read_artifact,
    sha256,
    tensor_spec,
)


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    if not have_cc():
        pytest.skip("no C compiler `cc` (install build-essential)")
    return toy_artifact(tmp_path_factory.mktemp("art"), kernels=[{"name": "k0"}])


def rewrite(src, dst, change):
    """Copy a tar member by member; change(name, data) -> (name, data) or None to drop."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for m in tin.getmembers():
            got = change(m.name, tin.extractfile(m).read())
            if got is not None:
                info = tarfile.TarInfo(got[0])
                info.size = len(got[1])
                tout.addfile(info, io.BytesIO(got[1]))
    return dst


def test_layout_and_model_json(art, tmp_path):
    path = art.save(tmp_path / "model.tar")
    with tarfile.open(path) as tar:
        names = tar.getnames()
        meta = json.loads(tar.extractfile("model.json").read())
        assert names[0] == "model.json"
        assert set(names) == {"model.json", "lib/model.so", "include/model.h", "params.bin"}
        for name in names[1:]:
            assert meta["files"][name] == sha256(tar.extractfile(name).read())
    assert meta["format_version"] == 2
    assert meta["meta_sha256"] == metadata_digest(meta)
    assert meta["tilecc_version"] == tilecc.__version__
    assert meta["name"] == "toy"
    assert meta["target"]["name"] == "host" and "triple" in meta["target"]
    assert meta["inputs"][0] == {"name": "x", "shape": [3, 13], "dtype": "float32"}
    assert meta["workspace_size"] == 256 and meta["params_size"] == 8
    assert meta["arena"]["size"] == 256
    assert meta["kernels"] == [{"name": "k0"}]


def test_save_is_deterministic(art, tmp_path):
    a, b = art.save(tmp_path / "a.tar"), art.save(tmp_path / "b.tar")
    assert a.read_bytes() == b.read_bytes()


def test_read_and_extract_round_trip(art, tmp_path):
    path = art.save(tmp_path / "model.tar")
    again = read_artifact(path)
    assert again.files == art.files
    assert again.metadata == art.metadata
    out = extract_artifact(path, tmp_path / "x")
    assert (out / "lib/model.so").read_bytes() == art.files["lib/model.so"]
    assert json.loads((out / "model.json").read_text())["name"] == "toy"


def test_extra_files_are_hashed(art, tmp_path):
    extra = Artifact(dict(art.metadata), {**art.files, "kernels/k0.cl": b"kernel"})
    path = extra.save(tmp_path / "extra.tar")
    assert read_artifact(path).files["kernels/k0.cl"] == b"kernel"
    tilecc.load(path)


@pytest.mark.parametrize("member", ["params.bin", "lib/model.so", "include/model.h"])
def test_tampered_file_refused(art, tmp_path, member):
    src = art.save(tmp_path / "model.tar")

    def flip(name, data):
        if name == member:
            data = bytes([data[0] ^ 1]) + data[1:]
        return name, data

    bad = rewrite(src, tmp_path / "bad.tar", flip)
    with pytest.raises(ArtifactError, match=f"{member} does not match its sha256"):
        tilecc.load(bad)


@pytest.mark.parametrize("evil", ["../x", "/etc/x", "lib/../../x", "./params.bin"])
def test_unsafe_member_refused(art, tmp_path, evil):
    src = art.save(tmp_path / "model.tar")
    bad = tmp_path / "bad.tar"
    shutil.copy(src, bad)
    with tarfile.open(bad, "a") as tar:
        info = tarfile.TarInfo(evil)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ArtifactError, match="unsafe path"):
        tilecc.load(bad)
    assert not (tmp_path.parent / "x").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_links_refused(art, tmp_path, kind):
    bad = tmp_path / "bad.tar"
    shutil.copy(art.save(tmp_path / "model.tar"), bad)
    with tarfile.open(bad, "a") as tar:
        info = tarfile.TarInfo("lib/evil.so")
        info.type, info.linkname = kind, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(ArtifactError, match="link or special file"):
        tilecc.load(bad)


def test_unlisted_and_missing_files_refused(art, tmp_path):
    src = art.save(tmp_path / "model.tar")
    dropped = rewrite(src, tmp_path / "d.tar", lambda n, d: None if n == "params.bin" else (n, d))
    with pytest.raises(ArtifactError, match="'params.bin' listed in model.json is missing"):
        tilecc.load(dropped)
    renamed = rewrite(src, tmp_path / "r.tar",
                      lambda n, d: ("params2.bin", d) if n == "params.bin" else (n, d))
    with pytest.raises(ArtifactError, match="'params2.bin' is not listed"):
        tilecc.load(renamed)


def test_bad_model_json(art, tmp_path):
    src = art.save(tmp_path / "model.tar")

    def edit(fn):
        def change(name, data):
            return (name, fn(data)) if name == "model.json" else (name, data)
        return change

    newer = rewrite(src, tmp_path / "n.tar", edit(
        lambda d: json.dumps({**json.loads(d), "format_version": 99}).encode()))
    with pytest.raises(ArtifactError, match="newer than this tilecc"):
        tilecc.load(newer)
    broken = rewrite(src, tmp_path / "b.tar", edit(lambda d: d[:10]))
    with pytest.raises(ArtifactError, match="not valid JSON"):
        tilecc.load(broken)
    no_name = rewrite(src, tmp_path / "m.tar", edit(
        lambda d: json.dumps({k: v for k, v in json.loads(d).items() if k != "name"}).encode()))
    with pytest.raises(ArtifactError, match="lacks a valid 'name'"):
        tilecc.load(no_name)


def test_not_an_artifact(tmp_path):
    (tmp_path / "junk.tar").write_bytes(b"hello")
    with pytest.raises(ArtifactError, match="not a tilecc artifact"):
        tilecc.load(tmp_path / "junk.tar")
    with pytest.raises(ArtifactError, match="no such file"):
        tilecc.load(tmp_path / "missing.tar")
    with tarfile.open(tmp_path / "empty.tar", "w"):
        pass
    with pytest.raises(ArtifactError, match="no model.json"):
        tilecc.load(tmp_path / "empty.tar")


def test_name_must_be_c_identifier():
    with pytest.raises(ArtifactError, match="not a C identifier"):
        Artifact.create(name="my-model", target={}, inputs=[], outputs=[], params=b"",
                        workspace_size=0)


HEADER_CHECK = r"""
#include <string.h>
#include "model.h"
static const int64_t in_sizes[] = TILECC_INPUT_SIZES;
static const int64_t out_sizes[] = TILECC_OUTPUT_SIZES;
static const char *const in_names[] = TILECC_INPUT_NAMES;
static const char *const out_names[] = TILECC_OUTPUT_NAMES;
_Static_assert(TILECC_NUM_INPUTS == 2, "inputs");
_Static_assert(TILECC_NUM_OUTPUTS == 1, "outputs");
_Static_assert(TILECC_WORKSPACE_SIZE == 4096, "workspace");
_Static_assert(TILECC_PARAMS_SIZE == 3, "params");
int32_t (*init)(const void *, int64_t) = TILECC_MODEL_INIT;
int32_t (*run)(const void *const *, void *const *, void *) = TILECC_MODEL_RUN;
int64_t (*ws)(void) = TILECC_MODEL_WORKSPACE_SIZE;
int check(void) {
    return in_sizes[0] == 1 * 3 * 8 * 8 * 4 && in_sizes[1] == 16 && out_sizes[0] == 10
        && strcmp(in_names[0], "in\"put?\\0") == 0 && strcmp(in_names[1], "ids") == 0
        && strcmp(out_names[0], "out") == 0 && strcmp(TILECC_MODEL_NAME, "net_1") == 0;
}
"""


def test_header_compiles_and_matches(tmp_path):
    if not have_cc():
        pytest.skip("no C compiler `cc`")
    meta = {"name": "net_1", "workspace_size": 4096, "params_size": 3,
            "inputs": [tensor_spec('in"put?\\0', (1, 3, 8, 8), "float32"),
                       tensor_spec("ids", (2,), "int64")],
            "outputs": [tensor_spec("out", (10,), "bool")]}
    (tmp_path / "model.h").write_text(make_header(meta))
    (tmp_path / "check.c").write_text(HEADER_CHECK + "int main(void) { return !check(); }\n")
    # link-free check: declarations only, so compile and run the size/name checks
    subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", "-I", str(tmp_path), "-c",
                    str(tmp_path / "check.c"), "-o", str(tmp_path / "check.o")], check=True)
    stub = ('#include "model.h"\n'
            "int32_t net_1_init(const void *p, int64_t n) { (void)p; return !n; }\n"
            "int32_t net_1_run(const void *const *i, void *const *o, void *w)\n"
            "{ (void)i; (void)o; (void)w; return 0; }\n"
            "int64_t net_1_workspace_size(void) { return 4096; }\n")
    (tmp_path / "stub.c").write_text(stub)
    subprocess.run(["cc", "-std=c11", "-I", str(tmp_path), str(tmp_path / "check.o"),
                    str(tmp_path / "stub.c"), "-o", str(tmp_path / "check")], check=True)
    subprocess.run([str(tmp_path / "check")], check=True)
    assert "#ifndef TILECC_MODEL_NET_1_H" in make_header(meta)

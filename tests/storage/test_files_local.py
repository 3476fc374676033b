"""fused.api files without a server: straight through the C++ file-system layer (fd:// under
the data home), with the same errors and containment as the server."""

from __future__ import annotations

import io
import os
import zipfile

import pytest

import fused
from fused import InvalidArgumentError, NotFoundError
from fused._errors import PermissionDeniedError


@pytest.fixture
def fd_root(fused_home):
    return fused_home / "fd"


def test_issue_example_locally(fd_root, tmp_path):
    csv = tmp_path / "ais.csv"
    csv.write_text("mmsi,lat,lon\n1,2,3\n")
    fused.api.upload("%s" % csv, "fd://demo/ais.csv")
    assert (fd_root / "demo" / "ais.csv").read_text() == csv.read_text()
    [entry] = fused.api.list("fd://demo/", details=True)
    assert (entry.url, entry.size, entry.is_directory, entry.name) == (
        "fd://demo/ais.csv",
        csv.stat().st_size,
        False,
        "ais.csv",
    )
    assert entry.last_modified is not None
    assert fused.api.get("fd://demo/ais.csv") == csv.read_bytes()
    fused.api.download("fd://demo/ais.csv", tmp_path / "local.csv")
    assert (tmp_path / "local.csv").read_bytes() == csv.read_bytes()
    assert fused.api.delete("fd://demo/", max_deletion_depth=2)
    assert not (fd_root / "demo").exists()


def test_top_level_upload_and_delete_aliases(fd_root):
    fused.upload(b"bytes", "fd://alias/x.bin")
    fused.upload(io.BytesIO(b"stream"), "fd://alias/y.bin")
    assert fused.api.list("fd://alias") == ["fd://alias/x.bin", "fd://alias/y.bin"]
    assert fused.api.get("fd://alias/y.bin") == b"stream"
    fused.delete("fd://alias/x.bin")
    assert fused.api.list("fd://alias") == ["fd://alias/y.bin"]


def test_fd_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TERRAFUSE_FD_ROOT", str(tmp_path / "team"))
    fused.api.upload(b"x", "fd://a/b.txt")
    assert (tmp_path / "team" / "a" / "b.txt").read_bytes() == b"x"


def test_local_paths_and_directories(tmp_path, fd_root):
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "dir" / "one.txt").write_text("1")
    (tmp_path / "dir" / "sub" / "two.txt").write_text("22")
    listed = fused.api.list(str(tmp_path / "dir"), details=True)
    assert [(e.name, e.is_directory) for e in listed] == [("one.txt", False), ("sub", True)]
    fused.api.upload(str(tmp_path / "dir" / "one.txt"), "fd://d/one.txt")
    fused.api.upload(str(tmp_path / "dir" / "sub" / "two.txt"), "fd://d/sub/two.txt")
    fused.api.download("fd://d", tmp_path / "d.zip")
    archive = zipfile.ZipFile(tmp_path / "d.zip")
    assert {n: archive.read(n) for n in archive.namelist()} == {
        "one.txt": b"1",
        "sub/two.txt": b"22",
    }


def test_missing_files_name_the_path(tmp_path):
    with pytest.raises(NotFoundError, match="'fd://nope/x.csv'"):
        fused.api.get("fd://nope/x.csv")
    with pytest.raises(NotFoundError, match="fd://nope"):
        fused.api.list("fd://nope")
    with pytest.raises(NotFoundError, match="fd://nope"):
        fused.api.download("fd://nope", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    with pytest.raises(NotFoundError, match="no such file"):
        fused.api.upload(str(tmp_path / "missing.csv"), "fd://x.csv")
    assert fused.api.list("fd://") == []


@pytest.mark.parametrize("path", ["fd://../x", "fd://a/../../x", "/mount/../etc/passwd"])
def test_escapes_are_refused(path):
    with pytest.raises(PermissionDeniedError, match="'..' is not allowed"):
        fused.api.upload(b"x", path)


def test_symlink_escape_is_refused(fd_root, tmp_path):
    fd_root.mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", fd_root / "evil")
    with pytest.raises(PermissionDeniedError, match="outside its storage root"):
        fused.api.upload(b"x", "fd://evil/x.txt")
    assert list((tmp_path / "outside").iterdir()) == []


def test_bad_arguments_are_named():
    with pytest.raises(InvalidArgumentError, match="max_deletion_depth"):
        fused.api.delete("fd://x", max_deletion_depth=-1)
    with pytest.raises(InvalidArgumentError, match="path must be"):
        fused.api.list("")
    with pytest.raises(InvalidArgumentError, match="ftp://"):
        fused.api.get("ftp://host/x")
    with pytest.raises(InvalidArgumentError, match="local_path must be"):
        fused.api.upload(12, "fd://x")
    with pytest.raises(InvalidArgumentError, match="base_url"):
        fused.api.sign_url("fd://x")


def test_mount_paths_are_the_shared_disk(fused_home, tmp_path):
    shared = tmp_path / "shared"
    fused.api.upload(b"weights", "/mnt/cache/models/m.bin")
    assert (shared / "models" / "m.bin").read_bytes() == b"weights"
    assert fused.api.get("/mount/models/m.bin") == b"weights"
    assert fused.file_path("models/m.bin") == str(shared / "models" / "m.bin")


def test_udf_sees_the_same_fd_and_mount_in_process(fused_home, tmp_path):
    fused.api.upload(b"hello from fd", "fd://shared/in.txt")

    @fused.udf
    def udf():
        import fused as f
        import pandas as pd

        f.api.upload(f.api.get("fd://shared/in.txt") + b"!", "/mount/out.txt")
        return pd.DataFrame({"n": [len(open(f.file_path("out.txt"), "rb").read())]})

    assert fused.run(udf, engine="local", cache=False)["n"][0] == len(b"hello from fd!")
    assert (tmp_path / "shared" / "out.txt").read_bytes() == b"hello from fd!"


def test_fused_download_copies_fd_files_to_the_shared_disk(tmp_path):
    fused.api.upload(b"model weights", "fd://models/m.bin")
    local = fused.download("fd://models/m.bin", "models/m.bin")
    assert local == str(tmp_path / "shared" / "models" / "m.bin")
    assert open(local, "rb").read() == b"model weights"
    fused.api.upload(b"changed", "fd://models/m.bin")
    assert (
        open(fused.download("fd://models/m.bin", "models/m.bin"), "rb").read() == b"model weights"
    )  # once
    with pytest.raises(NotFoundError, match="fd://models/none.bin"):
        fused.download("fd://models/none.bin", "models/none.bin")
    assert not (tmp_path / "shared" / "models" / "none.bin").exists()

"""The files API over HTTP (docs/storage.md) against the real terrafused: streaming atomic
uploads, Range downloads, directory zips, signed URLs, auth and escape attempts, and the SDK's
fused.api.* talking to it."""

from __future__ import annotations

import io
import os
import socket
import time
import urllib.parse
import zipfile
from pathlib import Path

import pytest
import requests

import fused
from fused import InvalidArgumentError, NotFoundError
from fused._errors import PermissionDeniedError
from fused._server import start_server


@pytest.fixture(scope="module")
def files_server(terrafused_bin, tmp_path_factory, assert_log_clean):
    home = tmp_path_factory.mktemp("files-home")
    env = dict(os.environ, TERRAFUSE_SHARED_DIR=str(home / "shared"))
    env.pop("TERRAFUSE_FD_ROOT", None)
    process = start_server(binary=terrafused_bin, port=0, home=home, workers=1, threads=4, env=env)
    yield process
    assert process.stop() == 0, process.log_text()
    assert_log_clean(process)


@pytest.fixture
def api(files_server, monkeypatch):
    token = (Path(files_server.home) / "credentials").read_text().strip()
    monkeypatch.setenv("TERRAFUSE_TOKEN", token)
    fused.options.base_url = files_server.base_url
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    session.base = files_server.base_url
    return session


def _root(server) -> Path:
    return Path(server.home) / "fd"


def _url(session, route: str, **params) -> str:
    return f"{session.base}{route}?{urllib.parse.urlencode(params)}"


def test_issue_example_through_the_server(api, files_server, tmp_path):
    csv = tmp_path / "ais.csv"
    csv.write_text("mmsi,lat,lon\n1,2,3\n")
    fused.api.upload(str(csv), "fd://demo/ais.csv")
    assert (_root(files_server) / "demo" / "ais.csv").read_text() == csv.read_text()
    details = fused.api.list("fd://demo/", details=True)
    assert [(d.url, d.size, d.is_directory) for d in details] == [
        ("fd://demo/ais.csv", csv.stat().st_size, False)
    ]
    assert abs(details[0].last_modified.timestamp() - time.time()) < 120
    assert fused.api.list("fd://demo/") == ["fd://demo/ais.csv"]
    assert fused.api.get("fd://demo/ais.csv") == csv.read_bytes()
    fused.api.download("fd://demo/ais.csv", str(tmp_path / "local.csv"))
    assert (tmp_path / "local.csv").read_bytes() == csv.read_bytes()
    url = fused.api.sign_url("fd://demo/ais.csv")
    plain = requests.get(url, timeout=30)  # no token
    assert plain.status_code == 200 and plain.content == csv.read_bytes()
    assert fused.api.delete("fd://demo/", max_deletion_depth=2) is True
    assert not (_root(files_server) / "demo").exists()
    with pytest.raises(NotFoundError, match="fd://demo/ais.csv"):
        fused.api.get("fd://demo/ais.csv")


def test_upload_streams_bytes_and_file_objects(api, files_server):
    fused.api.upload(b"\x00\x01binary", "fd://up/a.bin")
    fused.api.upload(io.BytesIO(b"from a file object"), "fd://up/b.txt")
    fused.api.FusedAPI().upload("fd://up/c.txt", b"FusedAPI.upload(path, data)")
    assert fused.api.get("fd://up/a.bin") == b"\x00\x01binary"
    assert fused.api.get("fd://up/b.txt") == b"from a file object"
    assert fused.api.get("fd://up/c.txt") == b"FusedAPI.upload(path, data)"
    # Chunked transfer encoding (no Content-Length) streams too.
    r = api.put(
        _url(api, "/files/upload", path="fd://up/chunked.bin"), data=iter([b"a" * 70000, b"b" * 5])
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"url": "fd://up/chunked.bin", "size": 70005}
    assert fused.api.delete("fd://up", max_deletion_depth=1)


def test_range_requests_and_etags(api):
    body = bytes(range(256)) * 40
    fused.api.upload(body, "fd://range/data.bin")
    url = _url(api, "/files/download", path="fd://range/data.bin")
    r = api.get(url, headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == body[100:200]
    assert r.headers["Content-Range"] == f"bytes 100-199/{len(body)}"
    assert api.get(url, headers={"Range": "bytes=-10"}).content == body[-10:]
    assert api.get(url, headers={"Range": f"bytes={len(body)}-"}).status_code == 416
    full = api.get(url)
    assert full.content == body and full.headers["Accept-Ranges"] == "bytes"
    assert api.get(url, headers={"If-None-Match": full.headers["ETag"]}).status_code == 304
    head = api.head(url)
    assert (
        head.status_code == 200
        and int(head.headers["Content-Length"]) == len(body)
        and head.content == b""
    )


def test_directory_downloads_as_zip(api, tmp_path):
    fused.api.upload(b"alpha", "fd://table/a.parquet")
    fused.api.upload(b"beta", "fd://table/sub/b.parquet")
    r = api.get(_url(api, "/files/download", path="fd://table/"))
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert archive.testzip() is None
    assert {n: archive.read(n) for n in archive.namelist()} == {
        "a.parquet": b"alpha",
        "sub/b.parquet": b"beta",
    }
    fused.api.download("fd://table", tmp_path / "table.zip")
    assert sorted(zipfile.ZipFile(tmp_path / "table.zip").namelist()) == [
        "a.parquet",
        "sub/b.parquet",
    ]
    with pytest.raises(InvalidArgumentError, match="3 levels deep|2 levels deep"):
        fused.api.upload(b"x", "fd://table/sub/deeper/c.bin")
        fused.api.delete("fd://table", max_deletion_depth=2)
    assert fused.api.delete("fd://table", max_deletion_depth="unlimited")


def test_private_routes_need_the_token(files_server):
    base = files_server.base_url
    for method, route in [
        ("GET", "/files/list"),
        ("GET", "/files/download"),
        ("PUT", "/files/upload"),
        ("DELETE", "/files"),
        ("POST", "/files/sign"),
    ]:
        r = requests.request(
            method,
            f"{base}{route}?path=fd://x",
            data=b"secret" if method == "PUT" else None,
            timeout=30,
        )
        assert r.status_code == 401, (method, route, r.text)
        r = requests.request(
            method,
            f"{base}{route}?path=fd://x",
            headers={"Authorization": "Bearer nope"},
            timeout=30,
        )
        assert r.status_code == 401, (method, route, r.text)
    assert not (_root(files_server) / "x").exists()


@pytest.mark.parametrize(
    "path",
    [
        "fd://../escape.txt",
        "fd://a/../../escape.txt",
        "fd://a/..%2F..%2Fescape.txt",
        "/etc/passwd",
        "file:///etc/passwd",
        "s3://bucket/key",
        "fd://evil/escape.txt",
    ],
)
def test_escapes_are_refused(api, files_server, path):
    root = _root(files_server)
    root.mkdir(parents=True, exist_ok=True)
    outside = Path(files_server.home).parent / "outside"
    outside.mkdir(exist_ok=True)
    if not (root / "evil").is_symlink():
        os.symlink(outside, root / "evil")
    # The query parameter is decoded once, so "..%2F.." arrives as "../..".
    target = urllib.parse.unquote(path)
    for method, route in [
        ("PUT", "/files/upload"),
        ("GET", "/files/download"),
        ("DELETE", "/files"),
    ]:
        r = api.request(
            method, _url(api, route, path=target), data=b"x" if method == "PUT" else None
        )
        assert r.status_code in (400, 403), (method, path, r.status_code, r.text)
        assert str(root) not in r.text and str(files_server.home) not in r.text
    assert not (outside / "escape.txt").exists()
    assert not (Path(files_server.home) / "escape.txt").exists()


def test_upload_with_a_length_is_exact_and_leaves_a_pipelined_request_alone(api, files_server):
    # Declared-length uploads to a local fd:// are spliced from the socket into the file: the
    # bytes read with the header, the rest in pieces, never a byte of the next request.
    host, port = files_server.base_url.split("//")[1].split("/")[0].rsplit(":", 1)
    token = api.headers["Authorization"]
    body = os.urandom(3_000_000)
    head = (f"PUT /server/v1/files/upload?path=fd://spliced/x.bin HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: {token}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    follow = (f"GET /server/v1/files/list?path=fd://spliced/ HTTP/1.1\r\nHost: x\r\n"
              f"Authorization: {token}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head + body[:100_000])
        time.sleep(0.1)
        sock.sendall(body[100_000:2_000_000])
        time.sleep(0.1)
        sock.sendall(body[2_000_000:] + follow)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.count(b"HTTP/1.1 200") == 2, answer[:500]
    assert b'"size":3000000' in answer and b'"url":"fd://spliced/x.bin"' in answer
    assert (_root(files_server) / "spliced" / "x.bin").read_bytes() == body
    assert fused.api.delete("fd://spliced", max_deletion_depth=1)


def test_interrupted_upload_leaves_nothing(api, files_server):
    host, port = files_server.base_url.split("//")[1].split("/")[0].rsplit(":", 1)
    token = api.headers["Authorization"]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            (
                f"PUT /server/v1/files/upload?path=fd://partial/big.bin HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: {token}\r\nContent-Length: 10000000\r\n\r\n"
            ).encode()
        )
        sock.sendall(b"z" * 3_000_000)
        time.sleep(0.5)  # the server has written part of it to its temp file
    deadline = time.time() + 10
    folder = _root(files_server) / "partial"
    while time.time() < deadline and folder.exists() and any(folder.iterdir()):
        time.sleep(0.1)
    assert not folder.exists() or list(folder.iterdir()) == []
    assert fused.api.list("fd://partial/") == [] if folder.exists() else True
    with pytest.raises(NotFoundError, match="fd://partial/big.bin"):
        fused.api.get("fd://partial/big.bin")


def _put_head(api, files_server, uri: str, length: int, extra: str = "") -> tuple[socket.socket, bytes]:
    host, port = files_server.base_url.split("//")[1].split("/")[0].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = (f"PUT /server/v1/files/upload?path={uri} HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: {api.headers['Authorization']}\r\nContent-Length: {length}\r\n{extra}\r\n")
    return sock, head.encode()


def _read_all(sock: socket.socket) -> bytes:
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer


def test_upload_reserves_its_length_and_shows_nothing_until_complete(api, files_server):
    # The declared length is reserved (fallocate) before the body; the reserved temp file is
    # hidden from listings and reads until the last byte has come and it is renamed.
    body = os.urandom(4 << 20)
    folder = _root(files_server) / "reserved"
    sock, head = _put_head(api, files_server, "fd://reserved/r.bin", len(body))
    with sock:
        sock.sendall(head + body[: 1 << 20])
        deadline = time.time() + 10
        while time.time() < deadline and not (folder.exists() and any(folder.iterdir())):
            time.sleep(0.05)
        (temp,) = folder.iterdir()
        assert temp.name.startswith(".tfupload-")
        # The whole length is reserved up front (the file is created a moment before).
        while time.time() < deadline and temp.stat().st_blocks * 512 < len(body):
            time.sleep(0.05)
        assert temp.stat().st_blocks * 512 >= len(body)
        assert fused.api.list("fd://reserved/") == []
        with pytest.raises(NotFoundError, match="fd://reserved/r.bin"):
            fused.api.get("fd://reserved/r.bin")
        sock.sendall(body[1 << 20:])
        sock.shutdown(socket.SHUT_WR)
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert [p.name for p in folder.iterdir()] == ["r.bin"]
    assert (folder / "r.bin").read_bytes() == body
    assert fused.api.delete("fd://reserved", max_deletion_depth=1)


def test_body_shorter_than_its_content_length_is_refused_and_leaves_nothing(api, files_server):
    # The client declares 4 MB, sends 1 MB and says it is done: the reservation goes too.
    folder = _root(files_server) / "short"
    sock, head = _put_head(api, files_server, "fd://short/s.bin", 4 << 20)
    with sock:
        sock.sendall(head + b"s" * (1 << 20))
        sock.shutdown(socket.SHUT_WR)
        answer = _read_all(sock)
    assert b" 200 " not in answer.split(b"\r\n", 1)[0], answer[:300]
    deadline = time.time() + 10
    while time.time() < deadline and folder.exists() and any(folder.iterdir()):
        time.sleep(0.05)
    assert not folder.exists() or list(folder.iterdir()) == []
    with pytest.raises(NotFoundError, match="fd://short/s.bin"):
        fused.api.get("fd://short/s.bin")


def test_upload_bigger_than_the_disk_is_refused_before_its_body(api, files_server):
    # 15 TiB: under ext4's largest file, over any disk this runs on. With Expect:
    # 100-continue the client is told before it sends a byte.
    folder = _root(files_server) / "huge"
    sock, head = _put_head(api, files_server, "fd://huge/h.bin", 15 << 40, "Expect: 100-continue\r\n")
    with sock:
        sock.sendall(head)
        answer = _read_all(sock)
    status_line = answer.split(b"\r\n", 1)[0]
    assert not status_line.startswith(b"HTTP/1.1 100"), answer[:300]
    assert status_line.split()[1] in (b"500", b"413"), answer[:300]
    assert b"fd://huge/h.bin" in answer and (b"disk is full" in answer or b"file system allows" in answer)
    assert str(_root(files_server)) not in answer.decode("latin-1")
    assert not folder.exists() or list(folder.iterdir()) == []


def test_overwriting_upload_replaces_the_file_and_lets_the_old_one_go(api, files_server):
    # The replaced file is held open across the rename (its blocks are freed after the
    # answer, not inside rename) and must then be closed: no deleted file stays open.
    folder = _root(files_server) / "over"
    fused.api.upload(b"first version " * 100_000, "fd://over/x.bin")
    fused.api.upload(b"second", "fd://over/x.bin")
    assert fused.api.get("fd://over/x.bin") == b"second"
    assert [p.name for p in folder.iterdir()] == ["x.bin"]
    fds = Path(f"/proc/{files_server.process.pid}/fd")

    def deleted_open_files() -> list[str]:
        targets = []
        for fd in fds.iterdir():
            try:
                targets.append(os.readlink(fd))
            except OSError:
                pass  # closed meanwhile
        return [t for t in targets if t.startswith(str(folder)) and t.endswith("(deleted)")]

    deadline = time.time() + 5
    while deleted_open_files() and time.time() < deadline:
        time.sleep(0.05)
    assert deleted_open_files() == []
    assert fused.api.delete("fd://over", max_deletion_depth=1)


def test_sdk_moves_big_files_both_ways_exactly(api, tmp_path):
    # fused.api.upload sends 1 MiB blocks; fused.api.download splices the socket into the
    # file after the bytes read with the head: many pieces, each byte in its place.
    body = os.urandom(5_000_000 + 123)
    source = tmp_path / "big.bin"
    source.write_bytes(body)
    fused.api.upload(source, "fd://sdkbig/big.bin")
    fused.api.download("fd://sdkbig/big.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == body
    assert fused.api.delete("fd://sdkbig", max_deletion_depth=1)


def test_signed_urls_expire_and_resist_tampering(api):
    fused.api.upload(b"shared data", "fd://signed/a.txt")
    fused.api.upload(b"other", "fd://signed/b.txt")
    url = fused.api.sign_url("fd://signed/a.txt")
    assert requests.get(url, timeout=30).content == b"shared data"
    assert requests.get(url, headers={"Range": "bytes=0-5"}, timeout=30).content == b"shared"
    tampered = url.replace("a.txt", "b.txt")
    assert requests.get(tampered, timeout=30).status_code == 403
    bad_sig = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    assert requests.get(bad_sig, timeout=30).status_code == 403
    longer = url.replace("expires=", "expires=9")
    assert requests.get(longer, timeout=30).status_code == 403
    short = api.post(_url(api, "/files/sign", path="fd://signed/a.txt", expires_in=1)).json()["url"]
    time.sleep(2.2)
    r = requests.get(short, timeout=30)
    assert r.status_code == 403 and "expired" in r.text
    urls = fused.api.sign_url_prefix("fd://signed/")
    assert sorted(urls) == ["fd://signed/a.txt", "fd://signed/b.txt"]
    assert requests.get(urls["fd://signed/b.txt"], timeout=30).content == b"other"
    assert api.post(_url(api, "/files/sign", path="fd://x", expires_in=10**9)).status_code == 400


def test_errors_name_the_path(api):
    with pytest.raises(NotFoundError, match="'fd://nothing/here.csv'"):
        fused.api.get("fd://nothing/here.csv")
    with pytest.raises(NotFoundError, match="fd://nothing"):
        fused.api.list("fd://nothing/")
    with pytest.raises(NotFoundError, match="fd://nothing"):
        fused.api.delete("fd://nothing")
    with pytest.raises(PermissionDeniedError, match="'..' is not allowed"):
        fused.api.get("fd://../x")
    r = api.get(_url(api, "/files/download"))
    assert r.status_code == 400 and "'path'" in r.text


WORKER_UDF = """
@fused.udf
def udf():
    import os
    import pandas as pd
    data = fused.api.get("fd://worker/in.txt")
    fused.api.upload(data.upper(), "/mount/from_worker.txt")
    with open(fused.file_path("from_worker.txt"), "rb") as f:
        same = f.read() == data.upper()
    return pd.DataFrame({"n": [len(data)], "same": [same], "pid": [os.getpid()]})
"""


def test_udf_in_a_server_worker_sees_the_same_fd_and_mount(api, files_server):
    fused.api.upload(b"from the sdk", "fd://worker/in.txt")
    udf = fused.load(WORKER_UDF)
    df = fused.run(udf, engine="remote", cache=False)
    assert df.to_dict("records")[0]["n"] == len(b"from the sdk") and bool(df["same"][0])
    assert df["pid"][0] != os.getpid()  # it ran in a worker process
    assert (Path(files_server.home) / "shared" / "from_worker.txt").read_bytes() == b"FROM THE SDK"

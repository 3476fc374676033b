"""fd:// on S3 for real: a moto S3 server on loopback behind the SDK (direct) and behind
terrafused (files API and signed URLs), plus s3:// URIs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
import requests

import fused
from fused import NotFoundError

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")

BUCKET = "team-bucket"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            requests.get(endpoint, timeout=1)
            break
        except requests.ConnectionError:
            if time.time() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("the moto S3 server did not start")
            time.sleep(0.2)
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        **{
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "region_name": "us-east-1",
        },
    )
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    process.terminate()
    process.wait(10)


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch):
    endpoint, client = s3_endpoint
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TERRAFUSE_S3_ENDPOINT", endpoint)
    monkeypatch.setenv("TERRAFUSE_FD_ROOT", f"s3://{BUCKET}/org")
    return client


def _keys(client, prefix: str) -> list[str]:
    return sorted(
        o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    )


def test_fd_on_s3_through_the_sdk(s3_env, tmp_path):
    client = s3_env
    csv = tmp_path / "ais.csv"
    csv.write_text("a,b\n1,2\n")
    fused.api.upload(str(csv), "fd://demo/ais.csv")
    fused.api.upload(b"nested", "fd://demo/sub/x.bin")
    assert _keys(client, "org/demo/") == ["org/demo/ais.csv", "org/demo/sub/x.bin"]
    assert (
        client.get_object(Bucket=BUCKET, Key="org/demo/ais.csv")["Body"].read() == csv.read_bytes()
    )
    details = fused.api.list("fd://demo/", details=True)
    assert [(d.url, d.size, d.is_directory) for d in details] == [
        ("fd://demo/ais.csv", csv.stat().st_size, False),
        ("fd://demo/sub", 0, True),
    ]
    assert fused.api.get("fd://demo/ais.csv") == csv.read_bytes()
    fused.api.download("fd://demo/ais.csv", tmp_path / "back.csv")
    assert (tmp_path / "back.csv").read_bytes() == csv.read_bytes()
    with pytest.raises(NotFoundError, match="fd://demo/missing.csv"):
        fused.api.get("fd://demo/missing.csv")
    with pytest.raises(fused.InvalidArgumentError, match="2 levels deep"):
        fused.api.delete("fd://demo", max_deletion_depth=1)
    assert fused.api.delete("fd://demo", max_deletion_depth=2)
    assert _keys(client, "org/demo/") == []


def test_s3_uris_directly(s3_env):
    client = s3_env
    fused.api.upload(b"direct", f"s3://{BUCKET}/raw/direct.bin")
    assert client.get_object(Bucket=BUCKET, Key="raw/direct.bin")["Body"].read() == b"direct"
    assert fused.api.list(f"s3://{BUCKET}/raw/") == [f"s3://{BUCKET}/raw/direct.bin"]
    assert fused.api.get(f"s3://{BUCKET}/raw/direct.bin") == b"direct"
    fused.api.delete(f"s3://{BUCKET}/raw/direct.bin")
    assert "raw/direct.bin" not in _keys(client, "raw/")  # Arrow may keep a "raw/" marker
    with pytest.raises(NotFoundError, match=f"s3://{BUCKET}/raw/direct.bin"):
        fused.api.get(f"s3://{BUCKET}/raw/direct.bin")


def test_fd_on_s3_through_the_server(
    s3_env, terrafused_bin, tmp_path, monkeypatch, assert_log_clean
):
    import os

    from fused._server import start_server

    client = s3_env
    home = tmp_path / "server-home"
    server = start_server(binary=terrafused_bin, port=0, home=home, workers=1, env=dict(os.environ))
    try:
        token = (home / "credentials").read_text().strip()
        monkeypatch.setenv("TERRAFUSE_TOKEN", token)
        fused.options.base_url = server.base_url
        body = bytes(range(256)) * 100
        fused.api.upload(body, "fd://served/data.bin")
        assert _keys(client, "org/served/") == ["org/served/data.bin"]
        assert fused.api.list("fd://served/") == ["fd://served/data.bin"]
        url = fused.api.sign_url("fd://served/data.bin")
        assert requests.get(url, timeout=30).content == body
        ranged = requests.get(url, headers={"Range": "bytes=256-511"}, timeout=30)
        assert ranged.status_code == 206 and ranged.content == body[256:512]
        query = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
        assert query["path"] == ["fd://served/data.bin"]
        assert fused.api.delete("fd://served/")
        assert _keys(client, "org/served/") == []
        # An interrupted upload never becomes an object (the multipart upload is aborted).
        host, port = server.base_url.split("//")[1].split("/")[0].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                (
                    f"PUT /server/v1/files/upload?path=fd://cut/big.bin HTTP/1.1\r\nHost: x\r\n"
                    f"Authorization: Bearer {token}\r\nContent-Length: 20000000\r\n\r\n"
                ).encode()
            )
            sock.sendall(b"z" * 12_000_000)
            time.sleep(0.5)
        deadline = time.time() + 30
        while client.list_multipart_uploads(Bucket=BUCKET, Prefix="org/cut/").get("Uploads"):
            assert time.time() < deadline, "the interrupted upload's multipart upload was not aborted"
            time.sleep(0.2)
        assert _keys(client, "org/cut/") == []
        with pytest.raises(NotFoundError, match="fd://cut/big.bin"):
            fused.api.get("fd://cut/big.bin")
    finally:
        assert server.stop() == 0
    # A part of the abandoned upload may still be on its way to a slow store (moto under
    # load) when the server stops: it then exits after 3 s without waiting for it, as designed.
    assert_log_clean(server, allowed=("storage_finalize_skipped",))


def test_upload_to_s3_through_the_server_keeps_memory_flat(
    s3_env, terrafused_bin, tmp_path, monkeypatch, assert_log_clean
):
    # The S3 stream uploads parts in the background; a client faster than the store must
    # not pile them up in the server's memory (it did: +330 MB for a 300 MB upload).
    import os

    from fused._server import start_server

    size = 120 << 20
    source = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    with open(source, "wb") as out:
        for _ in range(size >> 20):
            out.write(block)
    home = tmp_path / "server-home"
    server = start_server(binary=terrafused_bin, port=0, home=home, workers=1, env=dict(os.environ))

    def peak_mb() -> int:
        status = Path(f"/proc/{server.process.pid}/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) >> 10

    try:
        monkeypatch.setenv("TERRAFUSE_TOKEN", (home / "credentials").read_text().strip())
        fused.options.base_url = server.base_url
        fused.api.upload(b"warm up", "fd://flat/small.bin")
        before = peak_mb()
        fused.api.upload(source, "fd://flat/big.bin")
        growth = peak_mb() - before
        head = s3_env.head_object(Bucket=BUCKET, Key="org/flat/big.bin")
        assert head["ContentLength"] == size
        assert growth < 80, f"the server's peak memory grew by {growth} MB for a {size >> 20} MB upload"
    finally:
        assert server.stop() == 0
    assert_log_clean(server)


def test_s3_credentials_from_secrets(s3_env, monkeypatch, tmp_path):
    from fused import _storage
    from fused._secrets import write_store

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    write_store(
        {"AWS_ACCESS_KEY_ID": "from-secrets", "AWS_SECRET_ACCESS_KEY": "secret-from-secrets"}
    )
    assert _storage._config().s3_access_key == "from-secrets"
    assert "secret-from-secrets" not in repr(_storage._config().s3_secret_key)
    fused.api.upload(b"with secret keys", "fd://keyed/x.bin")
    assert (
        s3_env.get_object(Bucket=BUCKET, Key="org/keyed/x.bin")["Body"].read()
        == b"with secret keys"
    )


def _clustered_points(n: int = 3000):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    centres = rng.uniform([-10, 40], [10, 55], size=(5, 2))
    xy = centres[rng.integers(0, 5, n)] + rng.normal(0, 0.5, (n, 2))
    return pd.DataFrame({"LON": xy[:, 0], "LAT": xy[:, 1], "v": np.arange(n)})


def test_ingest_to_s3_and_read_the_table_back(s3_env, tmp_path):
    # fd:// on S3 for the whole ingest path: an fd:// input, an fd:// table written to the
    # bucket, and the chunk readers and the bounds reader reading it from there.
    client = s3_env
    df = _clustered_points()
    local = tmp_path / "points.csv"
    df.to_csv(local, index=False)
    fused.api.upload(str(local), "fd://raw/points.csv")
    fused.ingest("fd://raw/points.csv", "fd://tables/points/", lonlat_cols=("LON", "LAT"),
                 target_num_chunks=12).run_local(show_progress=False)
    keys = _keys(client, "org/tables/points/")
    assert "org/tables/points/_sample" in keys and any(k.endswith(".parquet") for k in keys)
    meta = fused.get_chunks_metadata("fd://tables/points/")
    assert len(meta) >= 10 and int(meta["num_rows"].sum()) == len(df)
    chunk = fused.get_chunk_from_table("fd://tables/points/", meta.file_id.iloc[0], meta.chunk_id.iloc[0])
    assert len(chunk) == int(meta["num_rows"].iloc[0])
    bounds = (-5.0, 45.0, 5.0, 50.0)
    inside = df[df.LON.between(bounds[0], bounds[2]) & df.LAT.between(bounds[1], bounds[3])]
    assert sorted(fused.read_table("fd://tables/points/", bounds).v) == sorted(inside.v)


def test_ingest_nongeospatial_needs_a_local_fd_root(s3_env, tmp_path):
    local = tmp_path / "rows.csv"
    _clustered_points(10).to_csv(local, index=False)
    with pytest.raises(NotImplementedError, match="only when fd:// is a local directory"):
        fused.ingest_nongeospatial(str(local), "fd://tables/rows.parquet").run_local()


def test_result_cache_on_s3_survives_a_restart(
    s3_env, terrafused_bin, tmp_path, monkeypatch, assert_log_clean
):
    # terrafused --cache-uri s3://...: a miss writes an object, a restarted server (empty
    # memory tier) answers from the bucket without running the UDF, a purge deletes it.
    import os
    from pathlib import Path

    from fused._server import start_server

    client = s3_env
    home = tmp_path / "server-home"
    calls = tmp_path / "calls"
    extra = ["--cache-uri", f"s3://{BUCKET}/results-cache"]

    def start():
        server = start_server(binary=terrafused_bin, port=0, home=home, workers=1,
                              env=dict(os.environ), extra_args=extra)
        monkeypatch.setenv("TERRAFUSE_TOKEN", (home / "credentials").read_text().strip())
        fused.options.base_url = server.base_url
        return server

    server = start()
    try:
        udf = fused.load(f"""
@fused.udf
def udf(k: int = 0):
    with open({str(calls)!r}, "a") as f:
        f.write("x")
    return {{"k": k}}
""")
        udf.name = "s3_cached"
        udf.to_fused()
        url = udf.create_access_token().get_file_url(k=7)
        first = requests.get(url, timeout=30)
        assert first.status_code == 200 and first.headers["X-Fused-Cache"] == "miss"
        assert first.json() == {"k": 7}
        assert [k.endswith(".tfc") for k in _keys(client, "results-cache/")] == [True]
        assert requests.get(url, timeout=30).headers["X-Fused-Cache"] == "hit"  # memory
    finally:
        assert server.stop() == 0
    assert_log_clean(server)

    old_base = server.base_url
    server = start()
    url = url.replace(old_base, server.base_url)  # a new port
    try:
        again = requests.get(url, timeout=30)
        assert again.headers["X-Fused-Cache"] == "disk_hit", again.headers
        assert json.loads(again.headers["X-Fused-Metadata"])["cache"] == "disk_hit"
        assert again.json() == {"k": 7}
        assert len(calls.read_text()) == 1  # the UDF ran once, before the restart
        owner = fused.api.whoami()
        token = (Path(home) / "credentials").read_text().strip()
        purged = requests.delete(f"{server.base_url}/cache/udfs/{owner}/s3_cached", timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})
        assert purged.status_code == 204
        # Arrow may leave an empty "directory" marker (a key ending in '/'); no entries.
        assert [k for k in _keys(client, "results-cache/") if not k.endswith("/")] == []
        assert requests.get(url, timeout=30).headers["X-Fused-Cache"] == "miss"
        assert len(calls.read_text()) == 2
    finally:
        assert server.stop() == 0
    assert_log_clean(server)

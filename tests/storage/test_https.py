"""https:// and http:// read-only through the C++ storage layer: a real HTTPS server on
loopback (http.server + ssl, a self-signed certificate made here) serving files with Range
support, read by the SDK and by ingestion."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import ssl
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fused
from fused import NotFoundError
from fused._errors import DeadlineExceededError

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1 (its own CA), and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / f"{name}.pem"
    key_path = directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves the files in `server.files`; /redirect/<name> answers 302 to /<name>."""

    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802
        self.server.requests.append((self.path, self.headers.get("Range")))
        if self.path.startswith("/to-http/"):  # a downgrade, which must not be followed
            self.send_response(302)
            self.send_header("Location", f"{self.server.plain_base}/{self.path[len('/to-http/'):]}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", "/" + self.path[len("/redirect/") :])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/no-range.bin":
            body = self.server.files["data.bin"]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        body = self.server.files.get(self.path.lstrip("/").split("?")[0])
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "9")
            self.end_headers()
            self.wfile.write(b"not found")
            return
        ranged = self.headers.get("Range")
        if ranged and ranged.startswith("bytes="):
            first, last = ranged[6:].split("-")
            first, last = int(first), min(int(last), len(body) - 1)
            if first >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {first}-{last}/{len(body)}")
            body = body[first : last + 1]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _serve(files: dict, context: ssl.SSLContext | None):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.handle_error = lambda request, address: None  # clients hang up after the bytes they need
    server.files = files
    server.requests = []
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture(scope="module")
def remote_files(tmp_path_factory):
    n = 5000
    table = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "name": pa.array([f"row-{i}" for i in range(n)]),
            "LON": pa.array([-120 + 10 * (i % 100) / 100 for i in range(n)]),
            "LAT": pa.array([30 + 10 * (i // 100) / 50 for i in range(n)]),
        }
    )
    directory = tmp_path_factory.mktemp("https")
    pq.write_table(table, directory / "table.parquet", row_group_size=1000)
    files = {
        "data.bin": bytes(range(256)) * 1000,
        "table.parquet": (directory / "table.parquet").read_bytes(),
        "points.csv": table.to_pandas().to_csv(index=False).encode(),
        "empty.bin": b"",
    }
    cert, key = _self_signed(directory, "loopback")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    https = _serve(files, context)
    plain = _serve(files, None)
    https.plain_base = f"http://127.0.0.1:{plain.server_address[1]}"
    yield {
        "https": f"https://127.0.0.1:{https.server_address[1]}",
        "http": f"http://127.0.0.1:{plain.server_address[1]}",
        "server": https,
        "files": files,
        "table": table,
        "cert": cert,
        "directory": directory,
    }
    https.shutdown()
    plain.shutdown()


@pytest.fixture
def trusted(remote_files, monkeypatch):
    monkeypatch.setenv("TERRAFUSE_CA_BUNDLE", str(remote_files["cert"]))
    return remote_files


def test_get_whole_file_over_https_and_http(trusted):
    data = trusted["files"]["data.bin"]
    assert fused.api.get(f"{trusted['https']}/data.bin") == data
    assert fused.api.get(f"{trusted['http']}/data.bin") == data
    assert fused.api.get(f"{trusted['https']}/empty.bin") == b""


def test_download_streams_to_a_local_file(trusted, tmp_path):
    fused.api.download(f"{trusted['https']}/data.bin", tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == trusted["files"]["data.bin"]


def test_range_reads_ask_only_for_the_bytes_needed(trusted):
    from fused import _core

    url = f"{trusted['https']}/data.bin"
    data = trusted["files"]["data.bin"]
    server = trusted["server"]
    server.requests.clear()
    config = _storage_config()
    assert _core.storage_read(url, config, 1000, 300) == data[1000:1300]
    assert _core.storage_read(url, config, len(data) - 10, 100) == data[-10:]  # short at the end
    assert _core.storage_read(url, config, len(data) + 5, 10) == b""
    ranges = [r for _, r in server.requests]
    assert "bytes=1000-1299" in ranges
    assert all(r is not None for r in ranges)  # never the whole file


def test_a_server_without_range_support_still_reads_right(trusted):
    from fused import _core

    data = trusted["files"]["data.bin"]
    url = f"{trusted['https']}/no-range.bin"
    assert _core.storage_read(url, _storage_config(), 5000, 10) == data[5000:5010]


def test_stat_reports_the_size(trusted):
    from fused import _core

    entry = _core.storage_stat(f"{trusted['https']}/table.parquet", _storage_config())
    assert entry.size == len(trusted["files"]["table.parquet"]) and not entry.is_dir


def _storage_config():
    from fused._storage import _config

    return _config()


def test_missing_file_is_not_found_naming_the_url(trusted):
    url = f"{trusted['https']}/missing.parquet"
    with pytest.raises(NotFoundError, match="https://127.0.0.1:[0-9]+/missing.parquet"):
        fused.api.get(url)


def test_redirects_are_followed_but_never_from_https_to_http(trusted):
    assert fused.api.get(f"{trusted['https']}/redirect/data.bin") == trusted["files"]["data.bin"]
    with pytest.raises(fused.FusedError, match="leaves https"):
        fused.api.get(f"{trusted['https']}/to-http/data.bin")


def test_untrusted_certificate_is_a_clear_tls_error(remote_files, monkeypatch, tmp_path):
    other, _ = _self_signed(tmp_path, "someone-else")
    monkeypatch.setenv("TERRAFUSE_CA_BUNDLE", str(other))
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(fused.FusedError, match="TLS certificate .* rejected") as info:
        fused.api.get(f"{remote_files['https']}/data.bin")
    assert "TERRAFUSE_CA_BUNDLE" in str(info.value)


def test_a_silent_server_times_out(trusted, monkeypatch):
    import socket
    import time

    monkeypatch.setenv("TERRAFUSE_HTTP_TIMEOUT", "1")
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError, match="timed out"):
            fused.api.get(f"http://127.0.0.1:{silent.getsockname()[1]}/x.bin")
        assert time.monotonic() - started < 10


def test_writes_to_https_are_refused(trusted):
    from fused import _core

    url = f"{trusted['https']}/new.bin"
    with pytest.raises(fused.FusedError, match="read-only"):
        _core.storage_write(url, b"x", _storage_config())
    with pytest.raises(fused.FusedError, match="read-only"):
        fused.api.upload(b"x", url)
    with pytest.raises(fused.FusedError, match="read-only"):
        _core.storage_delete(f"{trusted['https']}/data.bin", _storage_config(), 1)


def _ingest(source: str, out: Path) -> None:
    fused.ingest(
        source, str(out), lonlat_cols=("LON", "LAT"), target_num_chunks=4,
        partitioning_force_utm=None,
    ).run_local(show_progress=False)


@pytest.mark.parametrize("name", ["table.parquet", "points.csv"])
def test_ingest_reads_parquet_and_csv_from_https(trusted, tmp_path, name):
    out = tmp_path / "ingested"
    _ingest(f"{trusted['https']}/{name}", out)
    ids = sorted(fused.read_table(str(out), (-180, -90, 180, 90), columns=["id"]).id)
    assert ids == list(range(5000))


def test_ingest_of_a_missing_url_names_it(trusted, tmp_path):
    with pytest.raises(NotFoundError, match="missing.parquet"):
        _ingest(f"{trusted['https']}/missing.parquet", tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_read_table_over_https_fetches_only_the_chunks_in_view(trusted, tmp_path):
    local = tmp_path / "table"
    _ingest(f"{trusted['http']}/table.parquet", local)
    for path in local.iterdir():  # serve the ingested table beside the other files
        trusted["files"][f"served/{path.name}"] = path.read_bytes()
    remote = f"{trusted['https']}/served"
    assert len(fused.get_chunks_metadata(remote)) == len(fused.get_chunks_metadata(str(local)))
    bounds = (-120, 30, -118, 33)
    server = trusted["server"]
    server.requests.clear()
    got = fused.read_table(remote, bounds, columns=["id"])
    want = fused.read_table(str(local), bounds, columns=["id"])
    assert sorted(got.id) == sorted(want.id) and 0 < len(got) < 5000
    assert all(r is not None for _, r in server.requests)  # ranges only, never a whole file

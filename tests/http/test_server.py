"""terrafused over real HTTP: routing errors, CORS, HEAD, ETag, Range, limits, keep-alive,
the access log, graceful shutdown and the command line."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from fused._server import find_terrafused, start_server

BYTES = "/server/v1/_debug/bytes"


def expected_bytes(n: int) -> bytes:
    return bytes(ord("a") + i % 26 for i in range(n))


def request(server, method: str, path: str, headers: dict | None = None, body: bytes | None = None):
    """One request on a fresh connection; returns (status, headers, body)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def raw_exchange(server, data: bytes) -> bytes:
    """Send raw bytes and read until the server closes the connection."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def metrics(server) -> dict[str, float]:
    status, _, body = request(server, "GET", "/metrics")
    assert status == 200
    return {
        name: float(value)
        for name, value in (
            line.rsplit(" ", 1)
            for line in body.decode().splitlines()
            if line and not line.startswith("#")
        )
    }


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_health(server):
    status, headers, body = request(server, "GET", "/health")
    assert status == 200
    assert json.loads(body) == {"status": "ok"}
    assert headers["Content-Type"] == "application/json"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["X-Request-Id"]
    assert request(server, "GET", "/server/v1/health")[0] == 200


def test_metrics_count_requests_by_status_class(server):
    before = metrics(server)
    request(server, "GET", "/server/v1/no-such-route")
    after = metrics(server)
    assert (
        after['terrafuse_http_requests_total{class="4xx"}']
        == before['terrafuse_http_requests_total{class="4xx"}'] + 1
    )
    assert (
        after['terrafuse_http_requests_total{class="2xx"}']
        >= before['terrafuse_http_requests_total{class="2xx"}'] + 1
    )
    assert after["terrafuse_http_requests_in_flight"] == 1  # the /metrics request itself
    assert after["terrafuse_uptime_seconds"] > 0
    _, headers, _ = request(server, "GET", "/metrics")
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "ETag" not in headers


def test_unknown_route_is_404_with_json_error_and_metadata_header(server):
    status, headers, body = request(server, "GET", "/server/v1/no-such-route")
    assert status == 404
    error = json.loads(body)["error"]
    assert error == {
        "kind": "not_found",
        "message": "No route for '/server/v1/no-such-route'",
        "request_id": headers["X-Request-Id"],
    }
    assert json.loads(headers["X-Fused-Metadata"]) == json.loads(body)


def test_wrong_method_is_405_with_allow(server):
    status, headers, body = request(server, "POST", "/health", body=b"{}")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD, OPTIONS"
    error = json.loads(body)["error"]
    assert error["kind"] == "method_not_allowed"
    assert error["message"] == "Method 'POST' is not allowed on '/health': use GET, HEAD, OPTIONS"
    assert json.loads(headers["X-Fused-Metadata"])["error"]["kind"] == "method_not_allowed"


def test_bad_parameter_is_400_naming_it(server):
    status, _, body = request(server, "GET", BYTES + "?n=abc")
    assert status == 400
    assert (
        json.loads(body)["error"]["message"]
        == "Invalid n='abc': expected an integer between 0 and 67108864"
    )


def test_cors_preflight(server):
    status, headers, body = request(
        server,
        "OPTIONS",
        BYTES,
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, x-custom",
        },
    )
    assert status == 204
    assert body == b""
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in headers["Access-Control-Allow-Methods"].split(", ")
    assert headers["Access-Control-Allow-Headers"] == "authorization, x-custom"
    assert "X-Fused-Metadata" in headers["Access-Control-Expose-Headers"]


def test_head_sends_length_without_body(server):
    status, headers, body = request(server, "HEAD", BYTES + "?n=100")
    assert status == 200
    assert headers["Content-Length"] == "100"
    assert body == b""


def test_etag_and_if_none_match(server):
    status, headers, body = request(server, "GET", BYTES + "?n=100")
    assert status == 200 and body == expected_bytes(100)
    etag = headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    status, headers, body = request(
        server, "GET", BYTES + "?n=100", headers={"If-None-Match": etag}
    )
    assert status == 304
    assert body == b""
    assert headers["ETag"] == etag
    other = request(server, "GET", BYTES + "?n=101")[1]["ETag"]
    assert other != etag
    assert request(server, "GET", BYTES + "?n=101", headers={"If-None-Match": etag})[0] == 200


@pytest.mark.parametrize(
    "header, first, last",
    [
        ("bytes=10-19", 10, 19),
        ("bytes=90-", 90, 99),
        ("bytes=-5", 95, 99),
        ("bytes=50-500", 50, 99),
    ],
)
def test_range_gives_206(server, header, first, last):
    status, headers, body = request(server, "GET", BYTES + "?n=100", headers={"Range": header})
    assert status == 206
    assert headers["Content-Range"] == f"bytes {first}-{last}/100"
    assert body == expected_bytes(100)[first : last + 1]


def test_unsatisfiable_range_gives_416(server):
    status, headers, body = request(
        server, "GET", BYTES + "?n=100", headers={"Range": "bytes=100-"}
    )
    assert status == 416
    assert headers["Content-Range"] == "bytes */100"
    assert json.loads(body)["error"]["kind"] == "range_not_satisfiable"


def test_declared_body_over_the_limit_gives_413(server):
    reply = raw_exchange(
        server, f"POST {BYTES} HTTP/1.1\r\nHost: x\r\nContent-Length: {10**9}\r\n\r\n".encode()
    )
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    error = json.loads(body)["error"]
    assert error["kind"] == "too_large"
    assert error["message"] == "Request body exceeds the 33554432-byte limit"


def test_headers_over_the_limit_give_413(server):
    big = "x" * (100 * 1024)
    reply = raw_exchange(
        server, f"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n".encode()
    )
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b"Request line and headers exceed the 65536-byte limit" in reply


def test_keep_alive_reuses_one_connection(server):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        sockets = []
        for path in ("/health", BYTES + "?n=10", "/nope", "/health"):
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            assert response.getheader("Connection") is None  # HTTP/1.1: keep-alive by default
            sockets.append(conn.sock)
        assert all(s is sockets[0] for s in sockets) and sockets[0] is not None
    finally:
        conn.close()


def test_access_log_has_one_structured_line_per_request(server):
    status, _, _ = request(server, "GET", "/health", headers={"X-Request-Id": "access-log-test-1"})
    assert status == 200

    def line():
        return next(
            (entry for entry in server.log() if "request_id=access-log-test-1 " in entry), None
        )

    assert wait_for(lambda: line() is not None), server.log_text()
    fields = dict(part.split("=", 1) for part in line().split(" "))
    assert fields["event"] == "request"
    assert fields["level"] == "info"
    assert (fields["method"], fields["path"], fields["status"], fields["bytes"]) == (
        "GET",
        "/health",
        "200",
        "15",
    )
    assert float(fields["ms"]) >= 0


def test_binds_to_loopback_by_default(server):
    # The session server was started without --host.
    assert server.host == "127.0.0.1"
    assert server.url == f"http://127.0.0.1:{server.port}"


def test_port_in_use_exits_2_naming_it(server, terrafused_bin, tmp_path):
    result = subprocess.run(
        [str(terrafused_bin), "--port", str(server.port), "--home", str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert f"Cannot listen on 127.0.0.1:{server.port}: Address already in use" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "abc"], "Invalid --port 'abc': expected an integer from 0 to 65535"),
        (["--port", "70000"], "Invalid --port '70000'"),
        (["--threads", "0"], "Invalid --threads '0': expected an integer from 1 to 4096"),
        (["--workers", "-1"], "Invalid --workers '-1'"),
        (["--log-level", "loud"], "Invalid log level 'loud': use debug, info, warn or error"),
        (["--port"], "Option --port needs a value"),
        (["--bogus"], "Unknown option '--bogus'"),
        (["serve"], "Unexpected argument 'serve'"),
    ],
)
def test_bad_flags_exit_2_with_a_message(terrafused_bin, tmp_path, args, message):
    result = subprocess.run(
        [str(terrafused_bin), "--home", str(tmp_path), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "terrafused --help" in result.stderr


def test_help(terrafused_bin):
    result = subprocess.run(
        [str(terrafused_bin), "--help"], check=False, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: terrafused")
    for flag in (
        "--host",
        "--port",
        "--home",
        "--workers",
        "--threads",
        "--log-level",
        "--debug-routes",
    ):
        assert flag in result.stdout


def test_home_defaults_to_terrafuse_home_and_is_created(terrafused_bin, tmp_path):
    home = tmp_path / "new" / "home"
    env = dict(os.environ, TERRAFUSE_HOME=str(home))
    with start_server(binary=terrafused_bin, env=env) as srv:
        assert home.is_dir()
        assert any(f"home={home}" in line for line in srv.log())


def test_sigterm_lets_an_in_flight_request_finish(terrafused_bin, tmp_path, assert_log_clean):
    srv = start_server(binary=terrafused_bin, home=tmp_path, debug_routes=True)
    result = {}

    def slow_request():
        result["response"] = request(srv, "GET", BYTES + "?n=1000&delay_ms=1500")

    thread = threading.Thread(target=slow_request)
    thread.start()
    assert wait_for(
        lambda: metrics(srv)["terrafuse_http_requests_in_flight"] >= 2
    )  # the slow one + /metrics
    srv.process.send_signal(signal.SIGTERM)
    thread.join(timeout=15)
    status, headers, body = result["response"]
    assert status == 200
    assert body == expected_bytes(1000)
    assert headers["Connection"] == "close"
    assert srv.process.wait(timeout=15) == 0
    log = srv.log_text()
    assert "event=shutdown_started" in log and "event=stopped" in log
    assert_log_clean(srv)
    with pytest.raises(OSError):
        socket.create_connection((srv.host, srv.port), timeout=2).close()


def test_terrafuse_serve_runs_the_server(terrafused_bin, tmp_path):
    env = dict(os.environ, TERRAFUSE_SERVER_BIN=str(terrafused_bin))
    command = [sys.executable, "-m", "fused.cli", "serve", "--port", "0", "--home", str(tmp_path)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stderr.readline()
        while line and "listening on" not in line:
            line = process.stderr.readline()
        assert line.startswith("terrafused listening on http://127.0.0.1:"), line
        # `terrafuse serve` became terrafused, so the signal reaches the server itself.
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.stderr.close()


def test_terrafuse_serve_reports_bad_flags(terrafused_bin):
    env = dict(os.environ, TERRAFUSE_SERVER_BIN=str(terrafused_bin))
    result = subprocess.run(
        [sys.executable, "-m", "fused.cli", "serve", "--port", "abc"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert result.returncode == 2
    assert "Invalid --port 'abc'" in result.stderr


def test_find_terrafused_rejects_a_bad_explicit_path(monkeypatch, tmp_path):
    monkeypatch.setenv("TERRAFUSE_SERVER_BIN", str(tmp_path / "missing"))
    with pytest.raises(
        FileNotFoundError, match="TERRAFUSE_SERVER_BIN=.*missing.* is not an executable file"
    ):
        find_terrafused()


def test_find_terrafused_looks_in_the_checkout_build_dirs(monkeypatch, tmp_path):
    import fused
    from fused import _server

    fake = tmp_path / "build" / "cp311-cp311-linux_x86_64" / "engine" / "apps" / "terrafused"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    (tmp_path / "engine" / "apps").mkdir(parents=True)
    monkeypatch.delenv("TERRAFUSE_SERVER_BIN", raising=False)
    monkeypatch.setattr(_server, "_CHECKOUT", tmp_path)
    monkeypatch.setattr(fused, "__path__", [str(tmp_path / "no-package")])
    assert find_terrafused() == fake
    fake.unlink()
    with pytest.raises(FileNotFoundError, match="cannot find the terrafused binary; searched"):
        find_terrafused()


def test_find_terrafused_prefers_the_installed_package(monkeypatch, tmp_path):
    import fused

    installed = tmp_path / "site-packages" / "fused" / "bin" / "terrafused"
    installed.parent.mkdir(parents=True)
    installed.write_text("#!/bin/sh\n")
    installed.chmod(0o755)
    monkeypatch.delenv("TERRAFUSE_SERVER_BIN", raising=False)
    monkeypatch.setattr(fused, "__path__", [str(installed.parent.parent), *fused.__path__])
    assert find_terrafused() == installed

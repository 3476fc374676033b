"""The workbench served by a real terrafused: static files, sign-in link, and the browser
end to end (headless Chromium driven by playwright-core, web/e2e/workbench.e2e.mjs)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from fused._server import find_terrafused, find_web_root, start_server

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _on_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _require(condition: bool, why: str) -> None:
    """Missing tools skip locally and fail on CI, where scripts/setup.sh installs them."""
    if not condition:
        if _on_ci():
            pytest.fail(f"{why} (CI=true: scripts/setup.sh should have installed it)")
        pytest.skip(why)


@pytest.fixture(scope="module")
def web_server(tmp_path_factory, fake_github):
    _require(find_web_root() is not None, "the workbench is not built: cd web && npm ci && npm run build")
    try:
        binary = find_terrafused()
    except FileNotFoundError as e:
        _require(False, str(e))
    home = tmp_path_factory.mktemp("workbench-home")
    # GitHub URLs reach the fake GitHub on loopback (Catalog → Add from GitHub).
    env = {k: v for k, v in os.environ.items() if k != "TERRAFUSE_GITHUB_MIRROR"}
    server = start_server(binary=binary, port=0, home=home, workers=2, threads=8, startup_timeout=60,
                          env={**env, **fake_github.env})
    server.token = (home / "credentials").read_text().strip()
    yield server
    assert server.stop() == 0, server.log_text()


def _raw_get(server, path: str, headers: dict | None = None) -> http.client.HTTPResponse:
    # http.client sends the path as written (requests would normalise "..").
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response


def test_index_assets_and_app_paths(web_server):
    index = requests.get(f"{web_server.url}/workbench", timeout=10)
    assert index.status_code == 200
    assert index.headers["Content-Type"] == "text/html; charset=utf-8"
    assert index.headers["Cache-Control"] == "no-cache"
    assert '<div id="app">' in index.text
    script = next(part.split('"')[0] for part in index.text.split('src="')[1:] if part.startswith("/workbench/assets/"))

    gz = _raw_get(web_server, script, {"Accept-Encoding": "gzip"})
    assert gz.status == 200
    assert gz.getheader("Content-Encoding") == "gzip"
    assert gz.getheader("Content-Type") == "text/javascript; charset=utf-8"
    assert gz.getheader("Cache-Control") == "public, max-age=31536000, immutable"
    plain = _raw_get(web_server, script)
    assert plain.getheader("Content-Encoding") is None
    import gzip

    assert gzip.decompress(gz.body) == plain.body
    # ETag revalidation: 304 without a body.
    again = _raw_get(web_server, script, {"If-None-Match": plain.getheader("ETag")})
    assert again.status == 304

    for path in ("/workbench/", "/workbench/tokens", "/workbench/catalog/Some_UDF"):
        response = _raw_get(web_server, path)
        assert response.status == 200, path
        assert b'<div id="app">' in response.body
    land = _raw_get(web_server, "/workbench/basemap/land.geojson")
    assert land.status == 200 and land.getheader("Content-Type") == "application/geo+json"
    assert json.loads(land.body)["type"] in ("FeatureCollection", "Feature", "MultiPolygon", "GeometryCollection")


def test_nothing_outside_the_bundle(web_server):
    for path in ("/workbench/../credentials", "/workbench/%2e%2e/%2e%2e/credentials", "/workbench/..%2Fcredentials",
                 "/workbench/assets/missing.js", "/workbench/.vite/manifest.json"):
        response = _raw_get(web_server, path)
        assert response.status == 404, path
        assert web_server.token.encode() not in response.body


def test_whoami_and_the_startup_link(web_server):
    me = requests.get(f"{web_server.base_url}/whoami", headers={"Authorization": f"Bearer {web_server.token}"}, timeout=10)
    assert me.status_code == 200 and me.json()["owner"]
    anonymous = requests.get(f"{web_server.base_url}/whoami", timeout=10)
    assert anonymous.status_code == 401
    assert "API token" in anonymous.json()["error"]["message"]
    link = f"terrafused workbench: {web_server.url}/workbench#token={web_server.token}"
    assert link in web_server.log(), web_server.log_text()


def test_unbuilt_web_root_is_a_clear_error(tmp_path):
    try:
        binary = find_terrafused()
    except FileNotFoundError as e:
        _require(False, str(e))
    result = subprocess.run([str(binary), "--web-root", str(tmp_path), "--port", "0", "--home", str(tmp_path / "h")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"Invalid --web-root '{tmp_path}': no index.html there" in result.stderr


@pytest.mark.slow
def test_browser_end_to_end(web_server, tmp_path, capsys):
    _require(shutil.which("node") is not None, "node is not installed")
    _require(Path(CHROMIUM).is_file(), f"chromium is not installed at {CHROMIUM}")
    _require((REPO / "web" / "node_modules" / "playwright-core").is_dir(), "web/node_modules is missing: cd web && npm ci")
    data = tmp_path / "states.geojson"
    states = {"California": (-122.52, 37.70, -122.40, 37.83), "Texas": (-122.38, 37.70, -122.30, 37.83),
              "Nevada": (-122.28, 37.70, -122.20, 37.83)}
    data.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": name},
         "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}}
        for name, (w, s, e, n) in states.items()]}))
    figures_path = tmp_path / "figures.json"
    env = dict(os.environ, WORKBENCH_URL=web_server.url, TF_TOKEN=web_server.token, E2E_DATA=str(data),
               E2E_FIGURES=str(figures_path), WEB_ROOT=str(find_web_root()), CHROMIUM=CHROMIUM,
               E2E_FAKE_GITHUB="1")
    result = subprocess.run(["node", "e2e/workbench.e2e.mjs"], cwd=REPO / "web", env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\nserver log:\n{web_server.log_text()[-4000:]}"
    figures = json.loads(figures_path.read_text())
    with capsys.disabled():
        # The steps run (and those skipped on a server without files or jobs routes).
        print("\n" + "\n".join(line for line in result.stdout.splitlines() if line.startswith("[e2e]") and "figures" not in line))
        print("\nworkbench e2e figures (targets: edit→map ≤150 ms uncached / ≤50 ms cached, "
              "20-tile cached viewport ≤300 ms, bundle ≤2.5 MB gz, first load ≤1.5 s):")
        for name, value in figures.items():
            print(f"  {name:45s} {value}")
        print(f"[e2e] figures {json.dumps(figures)}")  # read by bench/workbench/bench_workbench.py
    assert figures["bundle_gzipped_mb"] <= 2.5


def test_make_serve_prints_a_working_workbench_link(tmp_path):
    """`terrafuse serve --examples` (what `make serve` runs) prints a link that signs in."""
    import re
    import signal
    import sys

    _require(find_web_root() is not None, "the workbench is not built: cd web && npm ci && npm run build")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fused.cli", "serve", "--examples", "examples/udfs", "--port", "0",
         "--home", str(tmp_path / "home"), "--workers", "1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        link = None
        for line in proc.stdout:
            if match := re.match(r"terrafuse: workbench at (http://\S+)", line):
                link = match[1]
            if "press Ctrl-C" in line:
                break
        assert link, "no workbench link printed"
        page, token = link.split("#token=")
        assert page.endswith("/workbench")
        assert token == (tmp_path / "home" / "credentials").read_text().strip()
        assert '<div id="app">' in requests.get(page, timeout=10).text
        # The Catalog lists the published examples for that token.
        base = page.removesuffix("/workbench") + "/server/v1"
        names = {u["name"] for u in requests.get(f"{base}/udfs", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()}
        assert {"Hello_World", "Subway_Stations"} <= names
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0

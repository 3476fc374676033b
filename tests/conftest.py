"""Shared fixtures: every test gets its own data home, cache and shared disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fused

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fused_home(tmp_path, monkeypatch):
    """Point TERRAFUSE_HOME, the cache and the shared disk at per-test directories."""
    home = tmp_path / "home"
    shared = tmp_path / "shared"
    monkeypatch.setenv("TERRAFUSE_HOME", str(home))
    monkeypatch.setenv("TERRAFUSE_SHARED_DIR", str(shared))
    # The secrets key lives under the config home: never the real ~/.config in tests.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("TERRAFUSE_SECRETS_KEY", raising=False)
    monkeypatch.delenv("TERRAFUSE_FD_ROOT", raising=False)
    monkeypatch.delenv("TERRAFUSE_GITHUB_MIRROR", raising=False)
    saved = {name: getattr(fused.options, name) for name in dir(fused.options) if name not in ("save", "reset")}
    fused.options.cache_directory = str(home / "cache")
    fused.options.temp_directory = str(shared)
    fused.options.base_url = None
    fused.options.github_mirror = None
    yield home
    for name, value in saved.items():
        setattr(fused.options, name, value)


@pytest.fixture
def run_python(fused_home):
    """Run Python code in a fresh process that sees this test's data home."""

    def run(code: str, *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                timeout=timeout, env=dict(os.environ), cwd=REPO)
        if check and result.returncode != 0:
            raise AssertionError(f"subprocess failed:\n{result.stdout}\n{result.stderr}")
        return result

    return run


# A fake GitHub on loopback: the REST API's matching-refs and codeload's tarballs of one
# repository, fusedio/udfs, branch main. Servers under test reach it through
# TERRAFUSE_GITHUB_API_URL / TERRAFUSE_GITHUB_CODELOAD_URL (this machine has no internet).
FAKE_GITHUB_SHA = "1234567" + "0" * 33
FAKE_GITHUB_UDF = '''@fused.udf
def udf(n: int = 2):
    import geopandas as gpd, shapely
    from utils import box_of
    return gpd.GeoDataFrame({"i": list(range(n))}, geometry=[box_of(i) for i in range(n)], crs=4326)
'''
FAKE_GITHUB_UTILS = '''def box_of(i):
    import shapely
    return shapely.box(-122.5 + i * 0.06, 37.70, -122.45 + i * 0.06, 37.84)
'''
FAKE_GITHUB_FILES = {
    "README.md": "udfs\n",
    "public/Boxes_Example/meta.json": json.dumps({
        "version": "0.0.3",
        "job_config": {"version": "0.0.3", "name": None, "steps": [{"type": "udf", "udf": {
            "type": "geopandas_v2", "name": "Boxes_Example", "entrypoint": "udf",
            "source": "Boxes_Example.py",
            "headers": [{"module_name": "utils", "source_file": "utils.py"}],
            "metadata": {"fused:udfType": "vector_single",
                         "fused:defaultViewState": {"latitude": 37.77, "longitude": -122.42, "zoom": 11}},
        }}]}}),
    "public/Boxes_Example/Boxes_Example.py": FAKE_GITHUB_UDF,
    "public/Boxes_Example/utils.py": FAKE_GITHUB_UTILS,
    "public/Not_A_Udf/notes.md": "no meta.json here\n",
}


def _fake_github_tarball(files: dict) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"udfs-{FAKE_GITHUB_SHA}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="session")
def fake_github():
    """Serve fusedio/udfs on loopback; ``.env`` points a server's GitHub base URLs at it.

    The owner ``offline`` answers by closing the connection (a network failure)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    tarball = _fake_github_tarball(FAKE_GITHUB_FILES)
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            seen.append(self.path)
            parts = self.path.split("?")[0].strip("/").split("/")
            if "offline" in parts[:2]:
                self.close_connection = True
                return  # no response at all
            body, status, kind = b'{"message": "Not Found"}', 404, "application/json"
            if parts[:3] == ["repos", "fusedio", "udfs"] and parts[3:5] == ["git", "matching-refs"]:
                refs = [{"ref": "refs/heads/main", "object": {"type": "commit", "sha": FAKE_GITHUB_SHA}}]
                start = "refs/" + "/".join(parts[5:])
                body, status = json.dumps([r for r in refs if r["ref"].startswith(start)]).encode(), 200
            elif parts[:3] == ["repos", "fusedio", "udfs"] and parts[3:4] == ["commits"]:
                status, body = 422, b'{"message": "No commit found"}'
            elif parts == ["fusedio", "udfs", "tar.gz", FAKE_GITHUB_SHA]:
                body, status, kind = tarball, 200, "application/x-gzip"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    class Fake:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        env = {"TERRAFUSE_GITHUB_API_URL": url, "TERRAFUSE_GITHUB_CODELOAD_URL": url}
        requests = seen
        sha = FAKE_GITHUB_SHA
        udf_code = FAKE_GITHUB_UDF
        utils_code = FAKE_GITHUB_UTILS

    yield Fake
    server.shutdown()
    server.server_close()

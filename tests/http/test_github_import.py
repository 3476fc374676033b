"""POST /server/v1/udfs/github against a fake GitHub on loopback (tests/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests

import fused
from fused._server import start_server

BASE = "https://github.com/fusedio/udfs"


@pytest.fixture(scope="module")
def github_server(terrafused_bin, fake_github, tmp_path_factory):
    home = tmp_path_factory.mktemp("github-home")
    env = {k: v for k, v in os.environ.items() if k != "TERRAFUSE_GITHUB_MIRROR"}
    process = start_server(binary=terrafused_bin, port=0, home=home, workers=1, env={**env, **fake_github.env})
    process.token = (Path(home) / "credentials").read_text().strip()
    yield process
    assert process.stop() == 0, process.log_text()


def post(server, body, token=None):
    headers = {"Authorization": f"Bearer {token or server.token}"} if token != "" else {}
    return requests.post(f"{server.base_url}/udfs/github", json=body, headers=headers, timeout=60)


def test_import_saves_the_folder(github_server, fake_github):
    fake_github.requests.clear()
    response = post(github_server, {"url": f"{BASE}/tree/main/public/Boxes_Example"})
    assert response.status_code == 201, response.text
    saved = response.json()
    assert saved["name"] == "Boxes_Example"
    assert fake_github.requests == ["/repos/fusedio/udfs/git/matching-refs/heads/main",
                                    "/repos/fusedio/udfs/git/matching-refs/tags/main",
                                    f"/fusedio/udfs/tar.gz/{fake_github.sha}"]
    doc = requests.get(f"{github_server.base_url}/udfs/{saved['owner']}/Boxes_Example",
                       headers={"Authorization": f"Bearer {github_server.token}"}, timeout=10).json()
    assert doc["code"] == fake_github.udf_code
    assert doc["headers"] == [{"module_name": "utils", "source_code": fake_github.utils_code}]
    assert doc["metadata"]["fused:udfType"] == "vector_single"
    assert doc["metadata"]["fused:source"] == f"{BASE}/tree/main/public/Boxes_Example"
    # The saved UDF runs, with its utils module.
    run = requests.get(f"{github_server.base_url}/realtime/fused/api/v1/run/udf/saved/{saved['owner']}/Boxes_Example",
                       params={"n": 3, "dtype_out_vector": "geojson"},
                       headers={"Authorization": f"Bearer {github_server.token}"}, timeout=60)
    assert run.status_code == 200, run.text
    assert len(run.json()["features"]) == 3


def test_import_under_another_name(github_server):
    response = post(github_server, {"url": f"{BASE}/tree/main/public/Boxes_Example/", "name": "My_Boxes"})
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "My_Boxes"


@pytest.mark.parametrize("url, status, message", [
    ("https://gitlab.com/a/b/tree/main/x", 400, "not a GitHub URL: 'https://gitlab.com/a/b/tree/main/x'"),
    (f"{BASE}/tree/main/public/Nope", 404, "path 'public/Nope' not found in fusedio/udfs"),
    (f"{BASE}/tree/nobranch/public/Boxes_Example", 404, "unknown ref 'nobranch' in fusedio/udfs"),
    ("https://github.com/fusedio/missing/tree/main/x", 404, "GitHub repository fusedio/missing not found"),
    (f"{BASE}/tree/main/public/Not_A_Udf", 404,
     f"Cannot load UDF from '{BASE}/tree/main/public/Not_A_Udf': no meta.json (and no Not_A_Udf.py)"),
    ("https://github.com/offline/udfs/tree/main/x", 503, "cannot reach http://127.0.0.1:"),
])
def test_import_errors_name_the_problem(github_server, url, status, message):
    response = post(github_server, {"url": url})
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]


def test_import_needs_a_token_and_a_url(github_server):
    assert post(github_server, {"url": f"{BASE}/tree/main/public/Boxes_Example"}, token="").status_code == 401
    assert post(github_server, {"url": f"{BASE}/tree/main/public/Boxes_Example"}, token="tfk_wrong").status_code == 401
    missing = post(github_server, {})
    assert missing.status_code == 400 and "'url'" in missing.json()["error"]["message"]


def test_sdk_loads_the_same_url(fake_github, monkeypatch):
    """fused.load shares the fetch and folder reading with the server route."""
    for name, value in fake_github.env.items():
        monkeypatch.setenv(name, value)
    udf = fused.load(f"{BASE}/tree/main/public/Boxes_Example")
    assert udf.name == "Boxes_Example" and udf.code == fake_github.udf_code
    assert len(fused.run(udf, n=2, engine="local")) == 2

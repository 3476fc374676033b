"""Worker faults seen through the server: crashes, timeouts, recycling; and /metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from fused._server import start_server


@pytest.fixture
def strict_server(terrafused_bin, tmp_path, assert_log_clean):
    server = start_server(binary=terrafused_bin, port=0, home=tmp_path / "home", workers=1,
                          extra_args=["--udf-timeout", "2", "--worker-max-calls", "3"], startup_timeout=60)
    yield server
    assert server.stop() == 0
    assert_log_clean(server, allowed=(r"event=worker_(crashed|timeout|timed_out)", r"event=call_(timed_out|failed)",
                                      r"worker=\d+", r"timed out", r"crash"))


def _run(server, code: str, **params) -> requests.Response:
    token = (Path(server.home) / "credentials").read_text().strip()
    body = {"udf": {"name": "faulty", "code": code}, "parameters": params, "dtype_out_vector": "json"}
    return requests.post(f"{server.base_url}/realtime/fused/api/v1/run/udf/code", json=body,
                         headers={"Authorization": f"Bearer {token}"}, timeout=60)


PID = "@fused.udf\ndef udf(i: int = 0):\n    import os\n    return {'pid': os.getpid(), 'i': i}\n"


def test_crash_timeout_and_recycling_leave_the_server_serving(strict_server):
    crashed = _run(strict_server, "@fused.udf\ndef udf():\n    import os\n    os._exit(3)\n")
    assert crashed.status_code == 500
    error = crashed.json()["error"]
    assert error["kind"] == "worker_crashed" and "exited with status 3" in error["message"]
    assert _run(strict_server, PID, i=1).status_code == 200  # a replacement answers

    slow = _run(strict_server, "@fused.udf\ndef udf():\n    import time\n    time.sleep(30)\n")
    assert slow.status_code == 504 and "2" in slow.json()["error"]["message"]
    pids = {_run(strict_server, PID, i=i).json()["pid"] for i in range(10, 17)}
    assert len(pids) >= 2  # recycled after 3 calls

    metrics = requests.get(f"{strict_server.url}/metrics", timeout=30).text
    assert "terrafuse_worker_crashes_total 1" in metrics
    assert "terrafuse_worker_timeouts_total 1" in metrics
    assert "terrafuse_cache_misses_total" in metrics


def test_cache_hits_show_in_metrics(server):
    token = (Path(server.home) / "credentials").read_text().strip()
    body = {"udf": {"name": "m", "code": "@fused.udf\ndef udf():\n    return {'x': 1}\n"}, "parameters": {}}
    for _ in range(3):
        r = requests.post(f"{server.base_url}/realtime/fused/api/v1/run/udf/code", json=body,
                          headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert r.json() == {"x": 1}
    assert json.loads(r.headers["X-Fused-Metadata"])["cache"] == "hit"
    metrics = requests.get(f"{server.url}/metrics", timeout=30).text
    hits = int(next(line.split()[1] for line in metrics.splitlines()
                    if line.startswith("terrafuse_cache_memory_hits_total ")))
    assert hits >= 2

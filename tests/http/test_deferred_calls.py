"""Uncached runs of shared tokens wait for a worker in the pool's queue, not on a handler
thread (WorkerPool::RunAsync; docs/design/server.md, "Calls without a handler thread")."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from fused._server import start_server


@pytest.fixture
def one_thread_server(terrafused_bin, tmp_path, assert_log_clean):
    # One handler thread: a request that needs one holds it for as long as its UDF runs.
    server = start_server(binary=terrafused_bin, port=0, home=tmp_path / "home", workers=2, threads=1,
                          startup_timeout=60)
    yield server
    assert server.stop() == 0
    assert_log_clean(server, allowed=(r"event=call_cancelled", r"worker=\d+"))


def _share(server, name: str, code: str) -> str:
    auth = {"Authorization": f"Bearer {(Path(server.home) / 'credentials').read_text().strip()}"}
    requests.post(f"{server.base_url}/udfs", json={"name": name, "code": code}, headers=auth,
                  timeout=30).raise_for_status()
    r = requests.post(f"{server.base_url}/tokens", json={"udf": name}, headers=auth, timeout=30)
    r.raise_for_status()
    return f"{server.base_url}/realtime-shared/{r.json()['token']}/run/file"


def _metric(server, name: str) -> int:
    text = requests.get(f"{server.base_url}/metrics", timeout=30).text
    return int(next(line.split()[1] for line in text.splitlines() if line.startswith(name + " ")))


SLOW = "@fused.udf\ndef udf(s: float = 0):\n    import time\n    time.sleep(s)\n    return {'slept': s}\n"
ECHO = "@fused.udf\ndef udf(a: int = 1):\n    import os\n    print('hello from', a)\n    return {'a': a, 'pid': os.getpid()}\n"
FAILS = "@fused.udf\ndef udf():\n    print('about to fail')\n    raise ValueError('boom')\n"


def test_uncached_runs_answer_while_the_only_handler_thread_is_busy(one_thread_server):
    slow, echo, fails = (_share(one_thread_server, n, c) for n, c in
                         (("slow", SLOW), ("echo", ECHO), ("fails", FAILS)))
    # Warm: the server has resolved each token (the first request after a registry change
    # goes to the pool, which resolves it) and the workers have seen the versions.
    for url in (slow, echo, fails, echo):
        assert requests.get(url + "?cache_max_age=0", timeout=30).status_code in (200, 500)
    deferred = _metric(one_thread_server, "terrafuse_http_deferred_responses_total")

    # A cacheable miss runs on the handler pool (single-flight): it holds the one thread, for
    # 5 s, so that the calls below answering while it is still held is what shows they did not
    # wait for the thread (on a contended host the seven calls took over 1.5 s).
    held = {}
    holder = threading.Thread(target=lambda: held.update(r=requests.get(slow + "?s=5", timeout=30)))
    holder.start()
    time.sleep(0.5)
    start = time.monotonic()
    answers = [requests.get(echo + f"?a={i}&cache_max_age=0", timeout=30) for i in range(5)]
    failed = requests.get(fails + "?cache_max_age=0", timeout=30)
    bad = requests.get(echo + "?a=notanint&cache_max_age=0", timeout=30)
    elapsed = time.monotonic() - start
    assert holder.is_alive(), "the cacheable call should still hold the handler thread"
    holder.join()

    assert elapsed < 4, f"uncached calls waited {elapsed:.2f} s for the handler thread"
    for i, r in enumerate(answers):
        assert r.status_code == 200, r.text
        assert r.json()["a"] == i
        meta = json.loads(r.headers["X-Fused-Metadata"])
        assert meta["cache"] == "bypass" and meta["stdout"] == f"hello from {i}\n"
        assert r.headers["X-Fused-Cache"] == "bypass"
    assert failed.status_code == 500
    udf_error = json.loads(failed.headers["X-Fused-Metadata"])["error"]["udf"]
    assert "ValueError: boom" in udf_error["traceback"] and udf_error["stdout"] == "about to fail\n"
    assert bad.status_code == 422 and "a" in bad.json()["error"]["message"]
    assert held["r"].status_code == 200 and held["r"].headers["X-Fused-Cache"] == "miss"
    # The seven uncached calls took the deferred path; the cacheable miss did not.
    assert _metric(one_thread_server, "terrafuse_http_deferred_responses_total") == deferred + 7
    assert _metric(one_thread_server, "terrafuse_worker_calls_async_total") >= 7


def test_a_client_going_away_cancels_its_uncached_call(one_thread_server):
    slow = _share(one_thread_server, "slow", SLOW)
    echo = _share(one_thread_server, "echo", ECHO)
    pids = {requests.get(echo + f"?a={i}&cache_max_age=0", timeout=30).json()["pid"] for i in range(8)}
    path = slow.split(str(one_thread_server.port), 1)[1] + "?s=60&cache_max_age=0"
    client = socket.create_connection(("127.0.0.1", one_thread_server.port), timeout=10)
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    time.sleep(0.5)  # the call runs on a worker
    client.close()
    # Its worker is stopped and replaced: the pool has two workers again, and every call answers.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if _metric(one_thread_server, "terrafuse_workers_idle") == 2:
            break
        time.sleep(0.1)
    now = {requests.get(echo + f"?a={i}&cache_max_age=0", timeout=30).json()["pid"] for i in range(8)}
    assert _metric(one_thread_server, "terrafuse_workers_idle") == 2
    assert len(now - pids) >= 1, "a new worker should have replaced the cancelled one"
    assert "event=call_cancelled" in one_thread_server.log_text()

"""fused.submit and job tasks on a Dask cluster (a small distributed.LocalCluster)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import fused
from fused import UdfError

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=40) as cluster:
        yield cluster


@pytest.fixture
def dask(cluster):
    fused.options.dask_scheduler = cluster.scheduler_address
    yield cluster
    fused.options.dask_scheduler = None


def _worker_addresses(cluster) -> set:
    info = cluster.scheduler_info
    return set((info() if callable(info) else info)["workers"])


@fused.udf
def on_dask(x: int = 0):
    import distributed

    print("x is", x)
    if x < 0:
        raise ValueError("negative")
    return (x * 3, distributed.get_worker().address)


def test_submit_runs_on_the_dask_cluster(dask):
    pool = fused.submit(on_dask, [1, 2, -1, 3], engine="local", collect=False, max_retry=1)
    results = pool.results(return_exceptions=True)
    workers = _worker_addresses(dask)
    assert [r[0] for r in results if not isinstance(r, Exception)] == [3, 6, 9]
    assert {r[1] for r in results if not isinstance(r, Exception)} <= workers
    assert isinstance(results[2], UdfError) and "negative" in str(results[2])
    logs = pool.logs_df()
    assert logs.loc[2, "stdout"] == "x is 2\n"
    assert logs.loc[-1, "attempts"] == 2  # retried once


def test_dask_results_are_cached_like_local_ones(dask, tmp_path):
    log = tmp_path / "runs"

    @fused.udf
    def counted(x: int = 0, log: str = ""):
        open(log, "a").write("x")
        return x

    inputs = [dict(x=i, log=str(log)) for i in range(3)]
    assert list(fused.submit(counted, inputs, engine="local")["result"]) == [0, 1, 2]
    assert list(fused.submit(counted, inputs, engine="local")["result"]) == [0, 1, 2]
    assert log.read_text() == "xxx"


def test_option_reads_the_environment(monkeypatch):
    from fused._options import Options

    monkeypatch.setenv("TERRAFUSE_DASK_SCHEDULER", "tcp://10.0.0.1:8786")
    assert Options().dask_scheduler == "tcp://10.0.0.1:8786"


def test_unreachable_scheduler_is_a_clear_error():
    fused.options.dask_scheduler = "tcp://127.0.0.1:9"
    try:
        with pytest.raises(fused.FusedError, match="Cannot reach the Dask scheduler"):
            fused.submit(on_dask, [1], engine="local")
    finally:
        fused.options.dask_scheduler = None


def test_job_tasks_run_on_the_dask_cluster(cluster, tmp_path, monkeypatch):
    try:
        from fused._server import find_terrafused, start_server

        binary = find_terrafused()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    import os

    env = {**os.environ, "TERRAFUSE_DASK_SCHEDULER": cluster.scheduler_address}
    server = start_server(binary=binary, port=0, home=tmp_path / "home", workers=1, env=env)
    try:
        token = (Path(server.home) / "credentials").read_text().strip()
        monkeypatch.setenv("TERRAFUSE_TOKEN", token)
        fused.options.base_url = server.base_url

        @fused.udf
        def where(x: int = 0):
            import distributed

            print("ran on", distributed.get_worker().address)
            if x < 0:
                raise ValueError("negative on dask")

        job = where(arg_list=[1, -1]).run_remote()
        job.wait_for_job(poll_interval_seconds=0.2, timeout=120)
        assert job.status == "failed"
        texts = [line["text"] for line in job.get_logs()]
        workers = _worker_addresses(cluster)
        ran_on = {t.split("ran on ", 1)[1] for t in texts if t.startswith("ran on ")}
        assert ran_on and ran_on <= workers
        assert "negative on dask" in job.task_list[1]["error"]
        assert any("ValueError: negative on dask" in t for t in texts)
    finally:
        server.stop()
        fused.options.base_url = None

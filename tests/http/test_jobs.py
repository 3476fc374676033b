"""Batch jobs on the server: udf(arg_list=...).run_remote(), RunResponse, fused.api job
functions, the /jobs routes, cancel, and jobs surviving a killed server."""

from __future__ import annotations

import datetime
import io
import signal
import time
from pathlib import Path

import pytest
import requests

import fused
from fused import InvalidArgumentError
from fused._server import start_server


def _point_at(server, monkeypatch):
    token = (Path(server.home) / "credentials").read_text().strip()
    monkeypatch.setenv("TERRAFUSE_TOKEN", token)
    fused.options.base_url = server.base_url
    return token


@fused.udf
def job_udf(x: int = 0, folder: str = ""):
    import os

    print("working on", x)
    if x < 0:
        raise ValueError(f"negative input {x}")
    if folder:
        open(os.path.join(folder, f"out-{x}.txt"), "w").write(str(x * x))
    return x


def test_udf_arg_list_job_runs_every_task_with_logs(remote, tmp_path):
    job = job_udf(arg_list=[dict(x=i, folder=str(tmp_path)) for i in range(3)]).run_remote()
    assert isinstance(job, fused.api.RunResponse)
    assert job.job_id.count("-") == 2  # human readable: "brisk-otter-7f3a"
    job.wait_for_job(poll_interval_seconds=0.2, timeout=120)
    assert job.status == "succeeded"
    assert job.tasks["succeeded"] == 3
    assert sorted(p.read_text() for p in tmp_path.glob("out-*.txt")) == ["0", "1", "4"]
    logs = job.get_logs()
    texts = [(line["task"], line["stream"], line["text"]) for line in logs]
    for i in range(3):
        assert (i, "stdout", f"working on {i}") in texts
    assert any("job succeeded in" in t for _, _, t in texts)
    assert isinstance(job.get_exec_time(), datetime.timedelta)
    out = io.StringIO()
    job.print_logs(file=out)
    assert "task 1 | stdout | working on 1" in out.getvalue()
    # the fused.api functions take the id or the RunResponse
    assert fused.api.job_get_status(job.job_id).status == "succeeded"
    assert len(fused.api.job_get_logs(job)) == len(logs)
    assert fused.api.job_get_exec_time(job) == job.get_exec_time()
    assert job.job_id in [j.job_id for j in fused.api.get_jobs(n=50)]
    assert "succeeded" in repr(job)


def test_values_go_to_the_first_parameter(remote, tmp_path):
    job = job_udf(arg_list=[5, 6], folder=str(tmp_path)).run_remote()
    fused.api.job_wait_for_job(job, poll_interval_seconds=0.2, timeout=120)
    assert sorted(p.name for p in tmp_path.glob("out-*.txt")) == ["out-5.txt", "out-6.txt"]
    assert [t["params"] for t in job.get_status().task_list] == [{"x": 5}, {"x": 6}]


def test_a_failing_task_fails_the_job_with_its_traceback_and_retries(remote):
    job = job_udf(arg_list=[1, -2]).run_remote()
    job.wait_for_job(poll_interval_seconds=0.2, timeout=120)
    assert job.status == "failed"
    tasks = job.get_status().task_list
    assert tasks[0]["status"] == "succeeded"
    assert tasks[1]["status"] == "failed" and "negative input -2" in tasks[1]["error"]
    assert any("ValueError: negative input -2" in line["text"] for line in job.get_logs())

    config = job_udf(arg_list=[-3])
    config.max_retry = 2
    retried = config.run_remote().wait_for_job(poll_interval_seconds=0.2, timeout=120)
    assert retried.task_list[0]["attempts"] == 3


def test_tail_logs_prints_until_the_job_ends(remote):
    @fused.udf
    def slow(x: int = 0):
        import time

        print("start", x)
        time.sleep(0.5)
        print("end", x)

    job = slow(arg_list=[1, 2]).run_remote()
    out = io.StringIO()
    job.tail_logs(file=out, timeout=120)
    assert job.terminal and job.status == "succeeded"
    text = out.getvalue()
    assert "start 1" in text and "end 2" in text and "job succeeded" in text


def test_cancel_stops_queued_tasks_at_once_and_running_ones_quickly(remote):
    @fused.udf
    def sleeper(x: int = 0):
        import time

        time.sleep(60)

    job = sleeper(arg_list=list(range(6))).run_remote()
    deadline = time.monotonic() + 60
    while job.get_status().tasks.get("running", 0) == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    job.cancel()
    assert job.tasks["queued"] == 0
    start = time.monotonic()
    while not job.get_status().terminal and time.monotonic() - start < 5:
        time.sleep(0.1)
    assert time.monotonic() - start < 1.5
    assert job.status == "cancelled"
    assert job.tasks["cancelled"] == 6


def test_bad_jobs_fail_before_reaching_the_server(remote):
    with pytest.raises(InvalidArgumentError, match=r"arg_list\[0\] names unknown parameter 'y'"):
        job_udf(arg_list=[dict(y=1)])
    with pytest.raises(InvalidArgumentError, match="cannot be sent to a job as JSON"):
        job_udf(arg_list=[dict(x=object())])
    with pytest.raises(InvalidArgumentError, match="at least one input"):
        job_udf(arg_list=[])


def test_run_local_runs_the_tasks_here(tmp_path):
    df = job_udf(arg_list=[2, 3], folder=str(tmp_path)).run_local(cache=False)
    assert list(df["result"]) == [2, 3]


def test_job_routes_need_a_token_and_hide_other_owners_jobs(remote):
    base = remote.base_url
    assert requests.get(f"{base}/jobs", timeout=10).status_code == 401
    headers = {"Authorization": "Bearer " + (Path(remote.home) / "credentials").read_text().strip()}
    r = requests.post(f"{base}/jobs", json={"kind": "udf", "tasks": []}, headers=headers, timeout=10)
    assert r.status_code == 400 and "non-empty list" in r.json()["error"]["message"]
    r = requests.post(f"{base}/jobs", json={"tasks": [{}]}, headers=headers, timeout=10)
    assert r.status_code == 400 and "'kind'" in r.json()["error"]["message"]
    r = requests.get(f"{base}/jobs/no-such-job", headers=headers, timeout=10)
    assert r.status_code == 404
    r = requests.post(f"{base}/jobs", json={"kind": "no_such_kind", "tasks": [{}]}, headers=headers, timeout=10)
    assert r.status_code == 201
    job = fused.api.job_wait_for_job(r.json()["id"], poll_interval_seconds=0.2, timeout=60)
    assert job.status == "failed"
    assert "Unknown job kind 'no_such_kind'" in job.task_list[0]["error"]


def test_jobs_survive_a_killed_server(terrafused_bin, tmp_path, monkeypatch):
    home = tmp_path / "server-home"
    folder = tmp_path / "out"
    folder.mkdir()

    @fused.udf
    def step(x: int = 0, folder: str = ""):
        import os
        import time

        marker = os.path.join(folder, f"started-{x}")
        first = not os.path.exists(marker)
        open(marker, "a").write("x")
        if first:
            time.sleep(60)  # the server is killed meanwhile
        open(os.path.join(folder, f"done-{x}"), "w").write("ok")

    server = start_server(binary=terrafused_bin, port=0, home=home, workers=1)
    try:
        _point_at(server, monkeypatch)
        job = step(arg_list=[0, 1], folder=str(folder)).run_remote()
        deadline = time.monotonic() + 60
        while not (folder / "started-0").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
    finally:
        if server.process.poll() is None:
            server.stop()
    server = start_server(binary=terrafused_bin, port=0, home=home, workers=1)
    try:
        _point_at(server, monkeypatch)
        job = fused.api.job_wait_for_job(job.job_id, poll_interval_seconds=0.2, timeout=120)
        assert job.status == "succeeded"
        assert (folder / "done-0").exists() and (folder / "done-1").exists()
        assert (folder / "started-0").read_text() == "xx"  # the interrupted task ran again
        assert job.task_list[0]["attempts"] == 2
        assert any("was running when the server stopped" in line["text"] for line in job.get_logs())
    finally:
        assert server.stop() == 0


def test_task_output_is_streamed_while_the_task_runs(remote):
    @fused.udf
    def chatty(x: int = 0):
        import sys
        import time

        print("first line")
        print("a warning", file=sys.stderr)
        time.sleep(3)
        print("second line", end="")

    job = chatty(arg_list=[1]).run_remote()
    deadline = time.monotonic() + 60
    seen: list = []
    while time.monotonic() < deadline:
        seen = [(line["stream"], line["text"]) for line in job.get_logs()]
        if ("stdout", "first line") in seen:
            break
        time.sleep(0.1)
    assert ("stdout", "first line") in seen and ("stderr", "a warning") in seen
    assert job.get_status().status == "running"  # seen before the task ended
    job.wait_for_job(poll_interval_seconds=0.2, timeout=60)
    texts = [(line["stream"], line["text"]) for line in job.get_logs()]
    assert texts.count(("stdout", "first line")) == 1  # not repeated at the end
    assert ("stdout", "second line") in texts


def test_terrafuse_jobs_command(remote, capsys):
    from fused import cli

    job = job_udf(arg_list=[1, -1]).run_remote()
    job.wait_for_job(poll_interval_seconds=0.2, timeout=120)
    capsys.readouterr()
    assert cli.main(["jobs", "status", job.job_id]) == 1  # a failed job
    out = capsys.readouterr().out
    assert job.job_id in out and "task 1: failed (attempts 1) UDF 'job:udf' raised ValueError: negative input -1" in out
    assert cli.main(["jobs", "logs", job.job_id]) == 0
    assert "task 0 | stdout | working on 1" in capsys.readouterr().out
    assert cli.main(["jobs", "list", "-n", "3"]) == 0
    assert job.job_id in capsys.readouterr().out
    assert cli.main(["jobs", "status", "no-such-job"]) == 1
    assert "Job 'no-such-job' not found" in capsys.readouterr().err


def test_a_new_job_kind_plugs_in_with_a_config_class_and_a_runner(terrafused_bin, tmp_path, monkeypatch):
    """What fused.ingest(...).run_remote() will use: a JobConfig subclass on the client, a
    runner registered in a module the server's workers import."""
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "echo_kind.py").write_text(
        "from fused._jobs import register_job_kind\n"
        "def run(config, task):\n"
        "    print(config['greeting'], task['who'])\n"
        "register_job_kind('echo', run)\n")
    import os

    from fused._jobs import JobConfig

    class EchoJob(JobConfig):
        kind = "echo"
        name = "greetings"

        def to_job(self):
            return {"greeting": "hello"}, [{"who": "ann"}, {"who": "bob"}]

    env = {**os.environ, "PYTHONPATH": f"{plugin}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "TERRAFUSE_JOB_KIND_MODULES": "echo=echo_kind"}
    server = start_server(binary=terrafused_bin, port=0, home=tmp_path / "home", workers=1, env=env)
    try:
        _point_at(server, monkeypatch)
        job = EchoJob().run_remote().wait_for_job(poll_interval_seconds=0.2, timeout=120)
        assert job.status == "succeeded" and job._doc["kind"] == "echo"
        texts = [line["text"] for line in job.get_logs() if line["stream"] == "stdout"]
        assert texts == ["hello ann", "hello bob"]
    finally:
        assert server.stop() == 0

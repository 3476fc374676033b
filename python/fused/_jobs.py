"""Batch jobs: job configs (``udf(arg_list=[...])``), ``run_remote``/``run_local``, and the
``RunResponse`` handle with its status, logs and cancel.

A job on the server is generic: ``{"kind", "name", "config", "tasks", "max_retry"}``. The
server stores it (SQLite), and runs each task in a worker as
``run_job_task(kind, config, task)``, which calls the runner registered for ``kind``.

Adding a kind (e.g. ``"ingest"``) takes two steps:

1. A config object with ``kind`` and ``to_job() -> (config: dict, tasks: list[dict])``,
   JSON-serialisable; subclass :class:`JobConfig` to get ``run_remote()`` for free.
2. ``register_job_kind("ingest", runner)`` in a module the worker imports (e.g. at the end of
   ``fused/_ingest.py``, plus its import in ``_KIND_MODULES`` below), where
   ``runner(config: dict, task: dict) -> Any`` does the work of one task in the worker (what
   it prints becomes the task's logs; an exception fails the task and is retried).
"""

from __future__ import annotations

import datetime
import importlib
import json
import sys
import time
from typing import IO, Any, Callable

from fused._errors import InvalidArgumentError

# kind -> runner(config, task) executed in the worker for each task.
_KINDS: dict[str, Callable[[dict, dict], Any]] = {}
# Modules that register kinds when imported (workers import them on demand).
_KIND_MODULES = {"ingest": "fused._ingest", "ingest_nongeospatial": "fused._ingest"}
_FINAL = ("succeeded", "failed", "cancelled")


def _env_kind_modules() -> dict[str, str]:
    """Plug-in kinds of the server's workers: ``TERRAFUSE_JOB_KIND_MODULES="kind=module,..."``."""
    import os

    pairs = (item.split("=", 1) for item in os.environ.get("TERRAFUSE_JOB_KIND_MODULES", "").split(",") if "=" in item)
    return {kind.strip(): module.strip() for kind, module in pairs}


def register_job_kind(kind: str, runner: Callable[[dict, dict], Any]) -> None:
    """Register ``runner(config, task)`` as the code run in a worker for each task of jobs of
    ``kind``."""
    if not isinstance(kind, str) or not kind:
        raise InvalidArgumentError(f"Invalid job kind {kind!r}: use a non-empty string")
    _KINDS[kind] = runner


def run_job_task(kind: str, config: str, task: str, *, job_id: str = "", index: int = 0,
                 live_log: str = "") -> Any:
    """Run one task of a job (what server workers call): here, or on the Dask cluster when
    ``TERRAFUSE_DASK_SCHEDULER`` / ``fused.options.dask_scheduler`` is set. What the task
    prints is also appended, line by line, to ``live_log``, which the server reads while the
    task runs (streamed logs)."""
    if not live_log:
        return _run_task(kind, config, task)
    with _LiveLog(live_log):
        return _run_task(kind, config, task)


class _LiveLog:
    """Copies what reaches the worker's stdout/stderr routers into ``path``: ``o <line>`` for
    stdout, ``e <line>`` for stderr, one flushed line at a time."""

    def __init__(self, path: str):
        self.path = path
        self.file: Any = None
        self.saved: list = []

    def __enter__(self) -> "_LiveLog":
        from fused._capture import _Router

        for name, tag in (("stdout", "o"), ("stderr", "e")):
            stream = getattr(sys, name)
            if isinstance(stream, _Router):  # captured by the worker: tee at its far end
                self.saved.append((stream, stream._real))
                stream._real = _LiveTee(stream._real, self, tag)
        return self

    def write_line(self, tag: str, line: str) -> None:
        if self.file is None:
            self.file = open(self.path, "a", encoding="utf-8", errors="replace")
        self.file.write(f"{tag} {line}\n")
        self.file.flush()

    def __exit__(self, *exc: Any) -> None:
        for stream, real in self.saved:
            stream._real.finish()
            stream._real = real
        if self.file is not None:
            self.file.close()


class _LiveTee:
    def __init__(self, real: Any, live: _LiveLog, tag: str):
        self.real, self.live, self.tag, self.partial = real, live, tag, ""

    def write(self, text: str) -> int:
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        for line in lines:
            self.live.write_line(self.tag, line)
        return self.real.write(text)

    def finish(self) -> None:
        if self.partial:
            self.live.write_line(self.tag, self.partial)
            self.partial = ""

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.real, attr)


def _run_task(kind: str, config: str, task: str) -> Any:
    from fused._options import options

    if options.dask_scheduler:
        from fused._dask import run_function

        outcome = run_function(_run_captured, kind, config, task)
        sys.stdout.write(outcome[1])
        sys.stderr.write(outcome[2])
        if outcome[0] != "ok":
            sys.stderr.write(outcome[3])
            raise RuntimeError(outcome[4])
        return None
    _run_kind(kind, config, task)
    return None


def _run_captured(kind: str, config: str, task: str) -> tuple:
    """One task on a Dask worker: ``("ok", stdout, stderr)`` or ``("error", stdout, stderr,
    traceback, message)``."""
    import traceback

    from fused._capture import capture

    with capture() as captured:
        try:
            _run_kind(kind, config, task)
        except Exception as e:  # noqa: BLE001 - reported to the job's logs
            error = (traceback.format_exc(), f"{type(e).__name__}: {e}")
        else:
            error = None
    if error is None:
        return ("ok", captured.stdout, captured.stderr)
    return ("error", captured.stdout, captured.stderr, *error)


def _run_kind(kind: str, config: str, task: str) -> None:
    runner = _KINDS.get(kind)
    modules = {**_KIND_MODULES, **_env_kind_modules()}
    if runner is None and kind in modules:
        importlib.import_module(modules[kind])
        runner = _KINDS.get(kind)
    if runner is None:
        raise InvalidArgumentError(f"Unknown job kind {kind!r}: known kinds are {', '.join(sorted(_KINDS))}")
    runner(json.loads(config), json.loads(task))


# -- the "udf" kind -----------------------------------------------------------------------
_UDFS: dict[str, Any] = {}


def _run_udf_task(config: dict, task: dict) -> Any:
    from fused._run import run
    from fused._udf import Header, Udf

    spec = config["udf"]
    key = json.dumps(spec, sort_keys=True)
    udf = _UDFS.get(key)
    if udf is None:
        udf = Udf(name=spec["name"], code=spec["code"], entrypoint=spec.get("entrypoint") or "udf",
                  headers=[Header(h["module_name"], h["source_code"]) for h in spec.get("headers", [])])
        _UDFS[key] = udf
    from fused._errors import UdfError

    try:
        return run(udf, engine="local", cache=False, **{**config.get("parameters", {}), **task})
    except UdfError as e:  # the UDF's own exception names the problem, not a wrapper of it
        if e.__cause__ is not None:
            raise e.__cause__ from None
        raise


register_job_kind("udf", _run_udf_task)


class JobConfig:
    """Base of job configs: ``kind`` and ``to_job()``; adds ``run_remote``."""

    kind = ""
    name = ""
    max_retry = 0

    def to_job(self) -> tuple[dict, list[dict]]:
        raise NotImplementedError

    def run_remote(self, output_table: str | None = None, instance_type: str | None = None, *,
                   region: str | None = None, disk_size_gb: int | None = None,
                   additional_env: list[str] | None = None, image_name: str | None = None,
                   **compat: Any) -> "RunResponse":
        """Start this job on the server (``fused.options.base_url``) and return its handle.

        ``instance_type``, ``region``, ``disk_size_gb``, ``additional_env`` and ``image_name``
        are accepted for compatibility: tasks run on the server's worker pool.
        """
        config, tasks = self.to_job()
        return start_job(self.kind, config, tasks, name=self.name, max_retry=self.max_retry)

    execute = run_remote


class UdfJobConfig(JobConfig):
    """``udf(arg_list=[...])``: one task per input of ``arg_list``."""

    kind = "udf"

    def __init__(self, udf: Any, arg_list: Any, parameters: dict | None = None, *, max_retry: int = 0):
        from fused._run import _plan
        from fused._submit import _normalize

        self.udf = udf
        self.name = udf.name
        self.parameters = dict(parameters or {})
        self.max_retry = max_retry
        plan = _plan(udf)
        inputs, _ = _normalize(arg_list, next(iter(plan.specs), None), udf.name)
        if not inputs:
            raise InvalidArgumentError("A job needs at least one input in arg_list")
        self.tasks = []
        for i, item in enumerate(inputs):
            unknown = [n for n in {**self.parameters, **item} if n not in plan.specs and n not in ("bounds", "bbox")]
            if unknown and not plan.accepts_any:
                raise InvalidArgumentError(
                    f"arg_list[{i}] names unknown parameter{'s' if len(unknown) > 1 else ''} "
                    f"{', '.join(repr(n) for n in unknown)} for UDF '{udf.name}': it takes {plan.allowed()}")
            try:
                json.dumps(item, allow_nan=False)
            except (TypeError, ValueError) as e:
                raise InvalidArgumentError(f"arg_list[{i}] cannot be sent to a job as JSON: {e}") from None
            self.tasks.append(item)
        try:
            json.dumps(self.parameters)
        except (TypeError, ValueError) as e:
            raise InvalidArgumentError(f"The parameters of the job cannot be sent as JSON: {e}") from None

    def to_job(self) -> tuple[dict, list[dict]]:
        udf = self.udf
        config = {"udf": {"name": udf.name, "code": udf.code, "entrypoint": udf.entrypoint,
                          "headers": [{"module_name": h.module_name, "source_code": h.source_code}
                                      for h in udf.headers]},
                  "parameters": {**udf.parameters, **self.parameters}}
        return config, self.tasks

    def run_local(self, **options: Any) -> Any:
        """Run every task here, in parallel (``fused.submit(..., engine="local")``)."""
        from fused._submit import submit

        return submit(self.udf, self.tasks, engine="local", max_retry=self.max_retry, **self.parameters, **options)

    def __repr__(self) -> str:
        return f"<UdfJobConfig of UDF '{self.name}' with {len(self.tasks)} tasks>"


# -- the server API -----------------------------------------------------------------------
def start_job(kind: str, config: dict, tasks: list[dict] | None = None, *, name: str = "",
              max_retry: int = 0) -> "RunResponse":
    """Create a job of ``kind`` on the server; ``tasks`` defaults to one task without
    parameters."""
    from fused import _remote

    body = {"kind": kind, "name": name, "config": config, "tasks": tasks if tasks else [{}],
            "max_retry": max_retry}
    try:
        json.dumps(body, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(f"The {kind} job cannot be sent as JSON: {e}") from None
    return RunResponse(_remote.request("POST", "/jobs", json_body=body).json())


def _job_id(job: Any) -> str:
    if isinstance(job, RunResponse):
        return job.job_id
    if isinstance(job, str) and job:
        return job
    raise InvalidArgumentError(f"Expected a job id or a RunResponse, got {job!r}")


def _quote(job_id: str) -> str:
    import urllib.parse

    return urllib.parse.quote(job_id, safe="")


class RunResponse:
    """A job on the server: ``get_status()``, ``print_logs()``, ``tail_logs()``,
    ``get_exec_time()``, ``wait_for_job()``, ``cancel()``; ``status`` is the last one fetched."""

    def __init__(self, doc: dict):
        self._doc = doc

    @property
    def job_id(self) -> str:
        return self._doc["id"]

    id = job_id

    @property
    def status(self) -> str:
        return self._doc["status"]

    @property
    def tasks(self) -> dict:
        """Tasks per status, as last fetched."""
        return dict(self._doc.get("tasks", {}))

    @property
    def task_list(self) -> list:
        """Each task's parameters, status, attempts and error (after ``get_status()``)."""
        return list(self._doc.get("task_list", []))

    @property
    def logs_url(self) -> str:
        from fused import _remote

        return f"{_remote.base_url()}/jobs/{_quote(self.job_id)}/logs"

    @property
    def terminal(self) -> bool:
        return self.status in _FINAL

    def get_status(self) -> "RunResponse":
        """Fetch the job's status (and each task's); returns this object, updated."""
        from fused import _remote

        self._doc = _remote.request("GET", f"/jobs/{_quote(self.job_id)}").json()
        return self

    def get_logs(self, since_ms: int | None = None) -> list[dict]:
        """The job's log lines: ``{"id", "ts_ms", "task", "stream", "text"}``."""
        from fused import _remote

        params = {"since_ms": int(since_ms)} if since_ms is not None else {}
        lines: list[dict] = []
        while True:
            params["after"] = lines[-1]["id"] if lines else 0
            batch = _remote.request("GET", f"/jobs/{_quote(self.job_id)}/logs", params=params).json()
            lines.extend(batch)
            if len(batch) < 10_000:
                return lines

    def print_logs(self, since_ms: int | None = None, file: IO | None = None) -> None:
        """Fetch the logs and print them (to ``file``, default stdout)."""
        for line in self.get_logs(since_ms):
            print(_format_line(line), file=file or sys.stdout)

    def tail_logs(self, refresh_seconds: float = 1, sample_logs: bool = True, timeout: float | None = None,
                  get_logs_retries: int = 1, *, file: IO | None = None) -> "RunResponse":
        """Print the logs as they come until the job ends (or ``timeout`` seconds pass).

        ``sample_logs`` is accepted for compatibility: every line is printed.
        """
        from fused import _remote
        from fused._errors import FusedError

        deadline = None if timeout is None else time.monotonic() + timeout
        after = 0
        failures = 0
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            poll = 10 if remaining is None else max(0, min(10, int(remaining)))
            try:
                doc = _remote.request("GET", f"/jobs/{_quote(self.job_id)}/logs/tail",
                                      params={"after": after, "timeout": poll}).json()
            except FusedError:
                failures += 1
                if failures > get_logs_retries:
                    raise
                time.sleep(refresh_seconds)
                continue
            failures = 0
            for line in doc["lines"]:
                print(_format_line(line), file=file or sys.stdout)
                after = line["id"]
            self._doc["status"] = doc["status"]
            if doc["status"] in _FINAL and not doc["lines"]:
                return self.get_status()
            if deadline is not None and time.monotonic() >= deadline:
                return self

    def get_exec_time(self) -> datetime.timedelta:
        """Time from the first to the last log line (so far, for a running job)."""
        lines = self.get_logs()
        if not lines:
            return datetime.timedelta(0)
        return datetime.timedelta(milliseconds=lines[-1]["ts_ms"] - lines[0]["ts_ms"])

    def wait_for_job(self, poll_interval_seconds: float = 5, timeout: float | None = None) -> "RunResponse":
        """Block until the job has ended.

        Raises
        ------
        TimeoutError
            When ``timeout`` seconds pass first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.get_status().terminal:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"Job '{self.job_id}' did not finish within {timeout} s (status "
                                   f"'{self.status}')")
            pause = poll_interval_seconds if deadline is None else min(poll_interval_seconds,
                                                                        max(0.0, deadline - time.monotonic()))
            time.sleep(pause)
        return self

    def cancel(self) -> "RunResponse":
        """Cancel the job: queued tasks at once, running ones within a second."""
        from fused import _remote

        self._doc = _remote.request("POST", f"/jobs/{_quote(self.job_id)}/cancel").json()
        return self

    def run_and_tail_output(self, **kwargs: Any) -> "RunResponse":
        return self.tail_logs(**kwargs)

    def __repr__(self) -> str:
        tasks = self._doc.get("tasks") or {}
        done = sum(tasks.get(s, 0) for s in _FINAL)
        return (f"<RunResponse job '{self.job_id}' ({self._doc.get('kind')}) status '{self.status}' "
                f"[{done}/{self._doc.get('num_tasks', 0)} tasks done]>")


def _format_line(line: dict) -> str:
    stamp = datetime.datetime.fromtimestamp(line["ts_ms"] / 1000).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    where = "job" if line["task"] < 0 else f"task {line['task']}"
    return f"{stamp} | {where} | {line['stream']} | {line['text']}"


class Jobs(list):
    """The job history (``get_jobs``): a list of :class:`RunResponse`, newest first."""

    def __repr__(self) -> str:
        return "\n".join(repr(j) for j in self) or "<no jobs>"


def get_jobs(n: int = 5, *, skip: int = 0, per_request: int = 25, max_requests: int | None = 1) -> Jobs:
    """The caller's last ``n`` jobs, newest first."""
    from fused import _remote

    jobs = Jobs()
    requests_made = 0
    while len(jobs) < n and (max_requests is None or requests_made < max_requests):
        batch = _remote.request("GET", "/jobs", params={"n": min(per_request, n - len(jobs)),
                                                        "skip": skip + len(jobs)}).json()
        requests_made += 1
        jobs.extend(RunResponse(doc) for doc in batch)
        if len(batch) < min(per_request, n):
            break
    return jobs


def job_get_status(job: Any) -> RunResponse:
    return RunResponse({"id": _job_id(job), "status": "unknown"}).get_status()


def job_get_logs(job: Any, since_ms: int | None = None) -> list[dict]:
    return RunResponse({"id": _job_id(job), "status": "unknown"}).get_logs(since_ms)


def job_print_logs(job: Any, since_ms: int | None = None, file: IO | None = None) -> None:
    RunResponse({"id": _job_id(job), "status": "unknown"}).print_logs(since_ms, file)


def job_tail_logs(job: Any, refresh_seconds: float = 1, sample_logs: bool = True, timeout: float | None = None,
                  get_logs_retries: int = 1) -> RunResponse:
    return RunResponse({"id": _job_id(job), "status": "unknown"}).tail_logs(
        refresh_seconds, sample_logs, timeout, get_logs_retries)


def job_cancel(job: Any) -> RunResponse:
    return RunResponse({"id": _job_id(job), "status": "unknown"}).cancel()


def job_get_exec_time(job: Any) -> datetime.timedelta:
    return RunResponse({"id": _job_id(job), "status": "unknown"}).get_exec_time()


def job_wait_for_job(job: Any, poll_interval_seconds: float = 5, timeout: float | None = None) -> RunResponse:
    return RunResponse({"id": _job_id(job), "status": "unknown"}).wait_for_job(poll_interval_seconds, timeout)

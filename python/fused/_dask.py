"""Running UDF calls on a Dask cluster (``fused.options.dask_scheduler`` /
``TERRAFUSE_DASK_SCHEDULER``): the backend of ``fused.submit`` and of job tasks.

Each call is one Dask task running :func:`run_pickled` on a Dask worker (which needs
terrafuse installed). Calls and results cross as pickles, exactly as with the local worker
pool, so retries, captured logs, results and the result cache behave the same.
"""

from __future__ import annotations

import pickle
import threading
from typing import Any

from fused._errors import FusedError, UdfError, WorkerCrashedError

_CLIENTS: dict[str, Any] = {}
_LOCK = threading.Lock()
_UDFS: dict[str, Any] = {}


def client(address: str) -> Any:
    """The ``distributed.Client`` of ``address``, made once per process."""
    try:
        import distributed
    except ImportError:
        raise FusedError("fused.options.dask_scheduler is set, but dask.distributed is not installed: "
                         "pip install 'dask[distributed]'") from None
    with _LOCK:
        existing = _CLIENTS.get(address)
        if existing is None or existing.status in ("closed", "closing"):
            try:
                existing = distributed.Client(address, set_as_default=False, timeout=30)
            except (OSError, TimeoutError) as e:
                raise FusedError(f"Cannot reach the Dask scheduler at {address!r} "
                                 f"(fused.options.dask_scheduler): {e}") from None
            _CLIENTS[address] = existing
        return existing


def _udf_of(spec: dict) -> Any:
    from fused._udf import Header, Udf

    key = spec["hash"]
    udf = _UDFS.get(key)
    if udf is None:
        udf = Udf(name=spec["name"], code=spec["code"], entrypoint=spec["entrypoint"],
                  headers=[Header(m, s) for m, s in spec["headers"]])
        if len(_UDFS) > 64:
            _UDFS.clear()
        _UDFS[key] = udf
    return udf


def run_pickled(spec: dict, calls: bytes) -> tuple:
    """Run bound calls of a UDF (on a Dask worker). Returns ``("ok", pickle of (value,
    stdout, stderr))`` or ``("error", kind, message, traceback, stdout, stderr)``."""
    from fused._run import _plan, _run_calls

    try:
        udf = _udf_of(spec)
        result = _run_calls(udf, _plan(udf), pickle.loads(calls), 0.0)
    except UdfError as e:
        return ("error", "udf_failed", str(e).split("\n\n", 1)[0], e.traceback, e.stdout, e.stderr)
    except FusedError as e:
        return ("error", "invalid_argument", str(e), "", "", "")
    try:
        return ("ok", pickle.dumps((result.data, result.stdout, result.stderr), protocol=5))
    except Exception as e:  # noqa: BLE001 - unpicklable results
        return ("error", "invalid_argument", f"UDF '{udf.name}' returned a {type(result.data).__name__} that "
                f"cannot be pickled: {e}", "", result.stdout, result.stderr)


def run_function(function: Any, *args: Any) -> Any:
    """Run ``function(*args)`` on the cluster and return its result (job tasks)."""
    from fused._options import options

    return client(options.dask_scheduler).submit(function, *args, pure=False).result()


class _FutureFlag:
    """Stands for a CancelFlag: ``set()`` cancels the Dask future."""

    def __init__(self, future: Any):
        self.future = future
        self.cancelled = False

    def set(self) -> None:
        self.cancelled = True
        self.future.cancel()

    def is_set(self) -> bool:
        return self.cancelled


class DaskBackend:
    """fused.submit's backend when a Dask scheduler is configured."""

    def __init__(self, udf: Any):
        from fused._options import options

        self.client = client(options.dask_scheduler)
        self.spec = {"name": udf.name, "code": udf.code, "entrypoint": udf.entrypoint, "hash": udf.hash,
                     "headers": [(h.module_name, h.source_code) for h in udf.headers]}

    def call(self, task: Any, jobs: Any) -> tuple:
        from fused._submit import _Cancelled, _reply_error

        future = self.client.submit(run_pickled, self.spec, pickle.dumps(task.calls, protocol=5), pure=False)
        task.cancel = _FutureFlag(future)
        if jobs._cancelled:
            task.cancel.set()
        try:
            answer = future.result()
        except Exception as e:  # noqa: BLE001 - KilledWorker, CancelledError, lost connections
            if task.cancel.is_set():
                raise _Cancelled from None
            raise WorkerCrashedError(f"The Dask task of call {task.i} failed: {type(e).__name__}: {e}") from None
        if answer[0] == "ok":
            data, out, err = pickle.loads(answer[1])
            return data, out, err, answer[1]
        _, kind, message, tb, out, err = answer
        raise _reply_error({"error": {"kind": kind, "message": message, "traceback": tb},
                            "stdout": out, "stderr": err})

    def cancel(self, jobs: Any) -> None:
        pass  # JobPool.cancel sets each running task's flag, which cancels its future

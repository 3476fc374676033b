"""``fused.submit`` and ``udf.map``: run one UDF over many inputs, in parallel, as a JobPool.

Engines:

- ``local``: a pool of ``python -m fused._worker`` processes kept by the C++ WorkerPool
  (``fused._core.WorkerPool``), started on first use and reused. Calls and results cross as
  pickles. Inside a worker (a UDF that submits), calls run in threads of that worker instead,
  so nested submits never wait on the pool they run in.
- ``remote``: each call is ``fused.run(..., engine="remote")`` against the server.
- ``dask``: each call is a task of the Dask cluster at ``fused.options.dask_scheduler``.

Every call is bound (names checked, values coerced) before any work starts; a call that fails
is retried up to ``max_retry`` times with backoff and never fails the pool.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import pickle
import sys
import threading
import time
import weakref
from typing import Any, Iterator

from fused._errors import (
    DeadlineExceededError,
    FusedError,
    InvalidArgumentError,
    UdfError,
    UnavailableError,
    WorkerCrashedError,
    from_kind,
)
from fused._udf import Udf

DEFAULT_MAX_WORKERS = 32
PENDING, RUNNING, SUCCESS, ERROR, CANCELLED = "pending", "running", "success", "error", "cancelled"
_FINAL = (SUCCESS, ERROR, CANCELLED)
# Errors worth another attempt: the UDF raised, its worker died, or the server was busy.
_RETRYABLE = (UdfError, WorkerCrashedError, UnavailableError, DeadlineExceededError)
_BACKOFF_SECONDS = 0.05
# Short calls of the local engine travel in batches of up to _MAX_BATCH per frame, sized so
# each thread still takes about _BATCH_SPREAD batches of what is left (the tail stays spread).
_MAX_BATCH = 16
_BATCH_SPREAD = 4
_SHORT_CALL_SECONDS = 0.02
_MAX_BACKOFF_SECONDS = 5.0
_ids = itertools.count()


def submit(
    udf: Any,
    arg_list: Any,
    /,
    *,
    engine: str | None = None,
    max_workers: int | None = None,
    max_retry: int = 2,
    debug_mode: bool = False,
    collect: bool | None = None,
    cache_max_age: str | int | None = None,
    cache: bool = True,
    wait_on_results: bool | None = None,
    wait_on_result: bool | None = None,
    **kwargs: Any,
) -> Any:
    """Run a UDF once per input of ``arg_list``, in parallel.

    Parameters
    ----------
    udf : Udf or str
        A UDF object, or anything :func:`fused.load` accepts (a shared token or public name
        with ``engine="remote"``).
    arg_list : iterable, list of dict, or DataFrame
        Values of the UDF's first parameter; or one dict of parameters per call; or a
        DataFrame, one call per row (columns are parameter names).
    engine : {"local", "remote"}, optional
        Default: ``fused.options.default_udf_run_engine``, else ``"remote"`` when
        ``fused.options.base_url`` is set, else ``"local"``. When
        ``fused.options.dask_scheduler`` is set, ``"local"`` runs on that Dask cluster.
    max_workers : int, default 32
        Calls running at the same time.
    max_retry : int, default 2
        Further attempts of a call that failed (the UDF raised, its worker died).
    debug_mode : bool, default False
        Run only the first input, with ``fused.run``, and return its result.
    collect : bool, default True
        Wait and return the results as a DataFrame; ``False`` returns the :class:`JobPool`
        at once. ``wait_on_results`` (older releases) is accepted as its alias.
    cache_max_age : str or int, optional
        Lifetime of cached results (``"10m"``, ``"2d"``); calls cached within it are not run
        again. ``cache=False`` neither reads nor writes the cache.
    **kwargs
        Parameters given to every call.

    Returns
    -------
    pandas.DataFrame or JobPool
        Results in input order, indexed by the inputs.

    Raises
    ------
    InvalidArgumentError
        Before any call runs, when an input names a parameter the UDF does not take or has a
        value that does not fit its annotation.
    """
    if wait_on_results is not None or wait_on_result is not None:
        import warnings

        warnings.warn("fused.submit(wait_on_results=...) is deprecated: use collect=...", DeprecationWarning,
                      stacklevel=2)
        if collect is None:
            collect = bool(wait_on_results if wait_on_results is not None else wait_on_result)
    collect = True if collect is None else collect
    max_workers = DEFAULT_MAX_WORKERS if max_workers is None else max_workers
    if not isinstance(max_workers, int) or isinstance(max_workers, bool) or max_workers < 1:
        raise InvalidArgumentError(f"Invalid max_workers {max_workers!r}: use a positive integer")
    if not isinstance(max_retry, int) or isinstance(max_retry, bool) or max_retry < 0:
        raise InvalidArgumentError(f"Invalid max_retry {max_retry!r}: use a non-negative integer")
    engine = _engine(engine)
    pool = JobPool._make(udf, arg_list, kwargs, engine=engine, max_workers=max_workers, max_retry=max_retry,
                         cache_max_age=cache_max_age, cache=cache)
    if debug_mode:
        from fused._run import run

        if not pool._tasks:
            raise InvalidArgumentError("debug_mode needs at least one input in arg_list")
        first = pool._tasks[0]
        return run(pool._udf if pool._udf is not None else udf, engine="local" if engine == "dask" else engine,
                   cache_max_age=cache_max_age, cache=cache, **first.params)
    pool._start()
    if collect:
        return pool.collect()
    return pool


def _engine(engine: str | None) -> str:
    from fused._options import options

    if engine is None:
        engine = options.default_udf_run_engine or ("remote" if options.base_url else "local")
    if engine == "realtime":
        engine = "remote"
    if engine not in ("local", "remote"):
        raise InvalidArgumentError(f"Invalid engine {engine!r} for fused.submit: use 'local' or 'remote'")
    if engine == "local" and getattr(options, "dask_scheduler", None):
        import fused._worker

        if not fused._worker.IN_WORKER:
            return "dask"
    return engine


# -- inputs -------------------------------------------------------------------------------
def _normalize(arg_list: Any, first_param: str | None, udf_name: str) -> tuple[list[dict], Any]:
    """Return one dict of parameters per call, and the pandas index of the inputs."""
    import pandas as pd

    if isinstance(arg_list, pd.DataFrame):
        rows = arg_list.to_dict("records")
        names = [str(c) for c in arg_list.columns]
        return [{str(k): v for k, v in r.items()} for r in rows], _index([[r[c] for c in arg_list.columns]
                                                                          for r in rows], names)
    if isinstance(arg_list, (str, bytes, dict)) or not hasattr(arg_list, "__iter__"):
        raise InvalidArgumentError(
            f"arg_list must be a list of values, a list of dicts or a DataFrame, got a {type(arg_list).__name__}"
        )
    items = list(arg_list)
    if items and all(isinstance(i, dict) for i in items):
        names: list[str] = []
        for item in items:
            for name in item:
                if not isinstance(name, str):
                    raise InvalidArgumentError(f"arg_list has a parameter name {name!r}: names must be strings")
                if name not in names:
                    names.append(name)
        return [dict(i) for i in items], _index([[i.get(n) for n in names] for i in items], names)
    if any(isinstance(i, dict) for i in items):
        raise InvalidArgumentError("arg_list mixes dicts and plain values: give one dict per call, or only values")
    if first_param is None:
        raise InvalidArgumentError(
            f"arg_list for UDF '{udf_name}' needs dicts of parameter names, not plain values: "
            "its first parameter is not known (it takes none, or it runs by token)"
        )
    return [{first_param: v} for v in items], _index([[v] for v in items], [first_param])


def _index(values: list[list], names: list[str]) -> Any:
    import pandas as pd

    if not names:
        return pd.RangeIndex(len(values))

    def label(v: Any) -> Any:
        try:
            hash(v)
            return v
        except TypeError:  # lists, dicts, frames: their text stands for them
            return repr(v)

    if len(names) == 1:
        return pd.Index([label(v[0]) for v in values], name=names[0], tupleize_cols=False)
    return pd.MultiIndex.from_tuples([tuple(label(x) for x in v) for v in values], names=names)


# -- tasks --------------------------------------------------------------------------------
class _Task:
    __slots__ = ("i", "params", "calls", "key", "status", "result", "error", "stdout", "stderr",
                 "attempts", "started", "ended", "cached", "cancel", "worker")

    def __init__(self, i: int, params: dict, calls: list | None, key: str | None):
        self.i, self.params, self.calls, self.key = i, params, calls, key
        self.status = PENDING
        self.result: Any = None
        self.error: BaseException | None = None
        self.stdout = self.stderr = ""
        self.attempts = 0
        self.started = self.ended = None
        self.cached = False
        self.cancel: Any = None
        self.worker: Any = None


class JobPool:
    """The calls of one ``fused.submit``: running, then done; results in input order.

    ``repr`` gives ``<JobPool with 10 jobs [status: 0/10 done]>``. Iterating yields
    ``(input, result)`` pairs as calls finish (failed calls give the exception as result).
    """

    def __init__(self) -> None:  # built by fused.submit / Udf.map
        raise TypeError("JobPool objects are made by fused.submit(...) or udf.map(...)")

    @classmethod
    def _make(cls, udf: Any, arg_list: Any, common: dict, *, engine: str, max_workers: int, max_retry: int,
              cache_max_age: Any, cache: bool) -> "JobPool":
        self = object.__new__(cls)
        self._engine = engine
        self._max_workers = max_workers
        self._max_retry = max_retry
        self._cache_max_age = cache_max_age
        self._cache = cache
        self._lock = threading.Condition()
        self._finished: list[_Task] = []
        self._cancelled = False
        self._threads: list[threading.Thread] = []
        self._next = 0
        self._n_threads = 1
        self._call_seconds = float("inf")  # moving average of finished calls, for batching
        self._backend: Any = None
        self._store = None
        by_reference = isinstance(udf, str) and udf.startswith(("fsh_", "UDF_"))
        self._udf = None if (by_reference and engine == "remote") else _resolve(udf)
        self._ref = udf if self._udf is None else None
        name = self._udf.name if self._udf is not None else str(udf)
        plan = None
        first = None
        if self._udf is not None:
            from fused._run import _plan

            plan = _plan(self._udf)
            first = next(iter(plan.specs), None)
        inputs, self._index = _normalize(arg_list, first, name)
        self._inputs = inputs
        self._tasks = [cls._task(self, i, item, common, plan) for i, item in enumerate(inputs)]
        return self

    def _task(self, i: int, item: dict, common: dict, plan: Any) -> _Task:
        params = {**common, **item}
        if plan is None:
            return _Task(i, params, None, None)
        from fused._run import _bind

        udf = self._udf
        unknown = [n for n in params if n not in plan.specs and n not in ("bounds", "bbox")]
        if unknown and not plan.accepts_any:
            raise InvalidArgumentError(
                f"arg_list[{i}] names unknown parameter{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(n) for n in unknown)} for UDF '{udf.name}': it takes {plan.allowed()}"
            )
        if self._engine == "remote":
            return _Task(i, params, None, None)
        try:
            calls = _bind(udf, plan, {**udf.parameters, **params}, None, None, None)
        except FusedError as e:
            raise InvalidArgumentError(f"arg_list[{i}]: {e}") from None
        return _Task(i, params, calls, self._cache_key(calls))

    def _cache_key(self, calls: list) -> str | None:
        from fused._hashing import hash_values
        from fused._run import ENGINE_VERSION, _max_age

        if len(calls) != 1:
            return None
        if not hasattr(self, "_max_age"):
            self._max_age = _max_age(self._udf, self._cache_max_age, self._cache)
        if self._max_age <= 0:
            return None
        try:
            return hash_values(ENGINE_VERSION, self._udf.hash, calls[0])
        except TypeError:
            return None  # an argument with no stable hash: run uncached

    # -- running --------------------------------------------------------------------------
    def _start(self) -> None:
        if not self._tasks:
            return
        if any(t.key for t in self._tasks):
            import os as _os

            from fused._cache import store_at
            from fused._options import options

            self._store = store_at(_os.path.join(options.cache_directory, "udf_results"))
        workers = min(self._max_workers, len(self._tasks))
        if self._engine == "local":
            import fused._worker

            self._backend = _ThreadBackend(self._udf) if fused._worker.IN_WORKER else _local_pool(workers)
        elif self._engine == "remote":
            self._backend = _RemoteBackend(self._udf, self._ref, self._cache_max_age, self._cache)
        else:
            from fused._dask import DaskBackend

            self._backend = DaskBackend(self._udf)
        self._started_at = time.time()
        self._n_threads = workers
        _ACTIVE.add(self)
        for n in range(workers):
            thread = threading.Thread(target=self._loop, name=f"fused-submit-{n}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _take(self) -> list[_Task]:
        """The next calls for one thread: one, or a batch when many short calls are queued."""
        with self._lock:
            if self._cancelled or self._next >= len(self._tasks):
                return []
            size = 1
            # Batches only for calls seen to be short: long ones gain nothing and would queue
            # behind each other in one worker.
            if isinstance(self._backend, _LocalPool) and self._call_seconds < _SHORT_CALL_SECONDS:
                remaining = len(self._tasks) - self._next
                size = max(1, min(_MAX_BATCH, remaining // (_BATCH_SPREAD * self._n_threads)))
            tasks = self._tasks[self._next:self._next + size]
            self._next += len(tasks)
            now = time.time()
            for task in tasks:
                task.status = RUNNING
                task.started = now
            return tasks

    def _loop(self) -> None:
        while True:
            tasks = self._take()
            if not tasks:
                return
            try:
                if len(tasks) == 1:
                    self._run(tasks[0])
                else:
                    self._run_batch(tasks)
            except BaseException as e:  # noqa: BLE001 - a bug here must not hang wait()
                for task in tasks:
                    self._finish(task, ERROR, error=e)

    def _cached(self, task: _Task) -> bool:
        """Finish ``task`` from the result cache when it is there."""
        if task.key is None or self._store is None:
            return False
        payload = self._store.get(task.key, self._max_age)
        if payload is None:
            return False
        try:
            data, out, err = pickle.loads(payload)
        except Exception:  # noqa: BLE001 - a damaged entry: run the call instead
            self._store.remove(task.key)
            return False
        task.cached = True
        self._finish(task, SUCCESS, data, out, err)
        return True

    def _succeeded(self, task: _Task, data: Any, out: str, err: str, payload: Any) -> None:
        if payload is not None and task.key is not None and self._store is not None:
            try:
                self._store.put(task.key, payload)
            except Exception:  # noqa: BLE001 - a full disk costs the cache, not the result
                pass
        self._finish(task, SUCCESS, data, out, err)

    def _run_batch(self, tasks: list[_Task]) -> None:
        """Many short calls in one frame (the per-frame cost is paid once). A call that fails
        goes on alone with its remaining attempts; a batch that fails as a whole (its worker
        died) runs again call by call."""
        todo = [t for t in tasks if not self._cached(t)]
        if len(todo) <= 1:
            for task in todo:
                self._run(task, check_cache=False)
            return
        try:
            outcomes = self._backend.call_batch(todo, self)
        except _Cancelled:
            for task in todo:
                self._finish(task, CANCELLED)
            return
        except BaseException:  # noqa: BLE001 - the worker died or the frame failed: one by one
            outcomes = [None] * len(todo)
        for task, outcome in zip(todo, outcomes):
            if outcome is None:
                self._run(task, check_cache=False)
                continue
            task.attempts += 1
            if outcome[0] == "ok":
                data, out, err = pickle.loads(outcome[1])
                self._succeeded(task, data, out, err, outcome[1])
                continue
            _, kind, message, tb, out, err = outcome
            error = _reply_error({"error": {"kind": kind, "message": message, "traceback": tb},
                                  "stdout": out, "stderr": err})
            if isinstance(error, _RETRYABLE) and self._max_retry > 0:
                self._run(task, check_cache=False, first_attempt=1)
            else:
                self._finish(task, ERROR, error=error, out=out, err=err)

    def _run(self, task: _Task, *, check_cache: bool = True, first_attempt: int = 0) -> None:
        if check_cache and self._cached(task):
            return
        error: BaseException | None = None
        for attempt in range(first_attempt, self._max_retry + 1):
            if attempt > 0 and not self._cancelled:
                with self._lock:
                    self._lock.wait_for(lambda: self._cancelled,
                                        min(_BACKOFF_SECONDS * 2 ** (attempt - 1), _MAX_BACKOFF_SECONDS))
            if self._cancelled:
                self._finish(task, CANCELLED)
                return
            task.attempts += 1
            try:
                data, out, err, payload = self._backend.call(task, self)
            except _Cancelled:
                self._finish(task, CANCELLED)
                return
            except _RETRYABLE as e:
                error = e
            except BaseException as e:  # noqa: BLE001 - not worth another attempt
                self._finish(task, ERROR, error=e, out=getattr(e, "stdout", ""), err=getattr(e, "stderr", ""))
                return
            else:
                self._succeeded(task, data, out, err, payload)
                return
        self._finish(task, ERROR, error=error, out=getattr(error, "stdout", ""), err=getattr(error, "stderr", ""))

    def _finish(self, task: _Task, status: str, data: Any = None, out: str = "", err: str = "",
                error: BaseException | None = None) -> None:
        with self._lock:
            if task.status in _FINAL:
                return
            task.status, task.result, task.error = status, data, error
            task.stdout, task.stderr = out or "", err or ""
            task.ended = time.time()
            if task.started is None:
                task.started = task.ended
            if status == SUCCESS and not task.cached:
                seconds = task.ended - task.started
                previous = self._call_seconds
                self._call_seconds = seconds if previous == float("inf") else 0.8 * previous + 0.2 * seconds
            self._finished.append(task)
            self._lock.notify_all()

    # -- state ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._tasks)

    def __repr__(self) -> str:
        return f"<JobPool with {len(self._tasks)} jobs [status: {self.n_done()}/{len(self._tasks)} done]>"

    def _repr_html_(self) -> str:
        return f"<code>{self!r}</code>".replace("<JobPool", "&lt;JobPool").replace("done]>", "done]&gt;")

    def n_done(self) -> int:
        """Calls finished (succeeded, failed or cancelled)."""
        return len(self._finished)

    def done(self) -> bool:
        """True when every call has finished."""
        return len(self._finished) == len(self._tasks)

    def all_succeeded(self) -> bool:
        return self.done() and all(t.status == SUCCESS for t in self._tasks)

    def status(self) -> Any:
        """Number of calls per status (``pending``, ``running``, ``success``, ``error``,
        ``cancelled``), as a pandas Series."""
        import pandas as pd

        with self._lock:
            counts = {s: 0 for s in (PENDING, RUNNING, SUCCESS, ERROR, CANCELLED)}
            for t in self._tasks:
                counts[t.status] += 1
        return pd.Series(counts, name="count")

    def wait(self, timeout: float | None = None, *, progress: bool | None = None) -> "JobPool":
        """Block until every call has finished (with a progress bar in terminals and notebooks).

        Raises
        ------
        TimeoutError
            When ``timeout`` seconds pass first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = _progress_bar(len(self._tasks)) if (progress if progress is not None else _interactive()) else None
        shown = 0
        try:
            with self._lock:
                while not self.done():
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise TimeoutError(f"{self!r} did not finish within {timeout} s")
                    self._lock.wait(0.1 if remaining is None else min(0.1, remaining))
                    if bar is not None and len(self._finished) != shown:
                        bar.update(len(self._finished) - shown)
                        shown = len(self._finished)
            if bar is not None and len(self._finished) != shown:
                bar.update(len(self._finished) - shown)
        finally:
            if bar is not None:
                bar.close()
        return self

    def cancel(self, wait: bool = True) -> None:
        """Stop the calls: queued ones at once, running ones within a second (local engine:
        their worker is stopped and replaced; Dask: the future is cancelled; remote: the
        request's result is dropped). Finished calls keep their results."""
        with self._lock:
            self._cancelled = True
            now = time.time()
            for t in self._tasks:
                if t.status in (PENDING, RUNNING):
                    if t.cancel is not None:
                        t.cancel.set()
                    t.status = CANCELLED
                    t.ended = now
                    self._finished.append(t)
            self._lock.notify_all()
        if self._backend is not None:
            self._backend.cancel(self)
        if wait:  # the local engine's threads return within ~50 ms of their worker's kill
            deadline = time.monotonic() + 1.0
            for thread in self._threads:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))

    # -- results --------------------------------------------------------------------------
    def results(self, return_exceptions: bool = False) -> list:
        """Wait, then return the results in input order.

        Raises the first call's error unless ``return_exceptions``, which puts the exception
        in the failed call's place instead.
        """
        self.wait()
        out = []
        for t in self._tasks:
            if t.status == SUCCESS:
                out.append(t.result)
            else:
                error = t.error if t.error is not None else _cancelled_error(t)
                if not return_exceptions:
                    raise error
                out.append(error)
        return out

    def errors(self) -> dict:
        """``{input label: exception}`` of the calls that failed (or were cancelled)."""
        return {self._label(t.i): (t.error if t.error is not None else _cancelled_error(t))
                for t in self._tasks if t.status in (ERROR, CANCELLED)}

    def _label(self, i: int) -> Any:
        """The index label of input ``i`` as plain Python values (no numpy scalars)."""
        label = self._index[i]
        if isinstance(label, tuple):
            return tuple(v.item() if hasattr(v, "item") else v for v in label)
        return label.item() if hasattr(label, "item") else label

    def first_error(self) -> BaseException | None:
        errors = list(self.errors().values())
        return errors[0] if errors else None

    def collect(self, ignore_exceptions: bool = True) -> Any:
        """Wait, then return the results as one DataFrame indexed by the inputs.

        DataFrame results are concatenated (each row indexed by its call's inputs); other
        results fill a ``result`` column. Failed calls are left out with a warning (or raise
        their error when ``ignore_exceptions=False``); see :meth:`errors`.
        """
        import pandas as pd

        self.wait()
        done = [t for t in self._tasks if t.status == SUCCESS]
        failed = len(self._tasks) - len(done)
        if failed:
            if not ignore_exceptions:
                raise self.first_error()
            import warnings

            warnings.warn(f"{failed} of {len(self._tasks)} calls failed and are left out; "
                          "JobPool.errors() has their errors", stacklevel=2)
        positions = [t.i for t in done]
        results = [t.result for t in done]
        if results and all(isinstance(r, pd.DataFrame) for r in results):
            lengths = [len(r) for r in results]
            frame = pd.concat(results, ignore_index=True)
            frame.index = self._index[[p for p, n in zip(positions, lengths) for _ in range(n)]]
            return frame
        return pd.DataFrame({"result": results}, index=self._index[positions])

    collect_df = collect
    df = collect

    def logs_df(self) -> Any:
        """One row per call, indexed by the inputs: ``status``, ``attempts``, ``cached``,
        ``stdout``, ``stderr``, ``error``, ``seconds``."""
        import pandas as pd

        with self._lock:
            rows = [{
                "status": t.status,
                "attempts": t.attempts,
                "cached": t.cached,
                "stdout": t.stdout,
                "stderr": t.stderr,
                "error": None if t.error is None else f"{type(t.error).__name__}: {t.error}".split("\n\n")[0],
                "seconds": (t.ended - t.started) if t.ended and t.started else None,
            } for t in self._tasks]
        return pd.DataFrame(rows, index=self._index)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        """Yield ``(input, result)`` as calls finish; a failed call's result is its exception."""
        seen = 0
        while True:
            with self._lock:
                while seen >= len(self._finished) and not self.done():
                    self._lock.wait(0.1)
                if seen >= len(self._finished):
                    return
                task = self._finished[seen]
            seen += 1
            value = task.result if task.status == SUCCESS else (task.error or _cancelled_error(task))
            yield self._inputs[task.i] if len(self._inputs[task.i]) != 1 else next(iter(self._inputs[task.i].values())), value


class _Cancelled(Exception):
    pass


def _cancelled_error(task: _Task) -> BaseException:
    return FusedError(f"call {task.i} was cancelled")


def _resolve(udf: Any) -> Udf:
    from fused._run import _resolve as resolve

    return resolve(udf)


# -- backends -----------------------------------------------------------------------------
# A backend runs one attempt of one task: call(task, pool) returns (data, stdout, stderr,
# pickled (data, stdout, stderr) or None) or raises; cancel(pool) stops what it runs.
class _LocalPool:
    """The process's pool of light worker processes (C++ WorkerPool), shared by all JobPools."""

    def __init__(self, size: int):
        from fused import _core

        env = [("TERRAFUSE_WORKER_LIGHT", "1")]
        self.pool = _core.WorkerPool.start(sys.executable, ["-m", "fused._worker"], min(size, _initial_workers()),
                                           env, 365.0 * 24 * 3600, 120.0, True)
        self.pool.grow(size)

    def call(self, task: _Task, jobs: JobPool) -> tuple:
        from fused import _core

        udf = jobs._udf
        task.cancel = _core.CancelFlag()
        if jobs._cancelled:
            raise _Cancelled
        try:
            ok, header, payload, pid = self.pool.run(
                f"submit-{next(_ids)}", udf.name, udf.code, udf.entrypoint, udf.hash,
                [(h.module_name, h.source_code) for h in udf.headers],
                pickle.dumps(task.calls, protocol=5), 0.0, task.cancel)
        except FusedError:
            if task.cancel.is_set():
                raise _Cancelled from None
            raise
        task.worker = pid
        if ok:
            data, out, err = pickle.loads(payload)
            return data, out, err, payload
        raise _reply_error(json.loads(header))

    def call_batch(self, tasks: list[_Task], jobs: JobPool) -> list:
        """Run the calls of ``tasks`` in one frame; returns one outcome per task:
        ``("ok", pickle of (value, stdout, stderr))`` or ``("error", kind, message, traceback,
        stdout, stderr)``."""
        from fused import _core

        udf = jobs._udf
        flag = _core.CancelFlag()
        for task in tasks:
            task.cancel = flag
        if jobs._cancelled:
            raise _Cancelled
        try:
            ok, header, payload, pid = self.pool.run(
                f"submit-{next(_ids)}", udf.name, udf.code, udf.entrypoint, udf.hash,
                [(h.module_name, h.source_code) for h in udf.headers],
                pickle.dumps({"batch": [t.calls for t in tasks]}, protocol=5), 0.0, flag)
        except FusedError:
            if flag.is_set():
                raise _Cancelled from None
            raise
        if not ok:
            raise _reply_error(json.loads(header))
        for task in tasks:
            task.worker = pid
        return pickle.loads(payload)

    def cancel(self, jobs: JobPool) -> None:
        pass  # every running task's CancelFlag is set by JobPool.cancel


def _initial_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


def _reply_error(header: dict) -> BaseException:
    error = header.get("error") or {}
    message = error.get("message", "the UDF failed")
    if error.get("kind") == "udf_failed":
        return UdfError(message, traceback=error.get("traceback", ""), stdout=header.get("stdout", ""),
                        stderr=header.get("stderr", ""))
    exc = from_kind(error.get("kind", ""), message)
    exc.stdout, exc.stderr = header.get("stdout", ""), header.get("stderr", "")
    return exc


_POOL_LOCK = threading.Lock()
_POOL: _LocalPool | None = None
# JobPools that may still run calls: cancelled at exit, so no thread is inside the C++ pool
# when the interpreter finalizes (a thread killed there would abort the process).
_ACTIVE: "weakref.WeakSet[JobPool]" = weakref.WeakSet()


def _local_pool(size: int) -> _LocalPool:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = _LocalPool(size)
            atexit.register(_at_exit)
        elif _POOL.pool.size() < size:
            _POOL.pool.grow(size)
        return _POOL


def _at_exit() -> None:
    for jobs in list(_ACTIVE):
        if not jobs.done():
            jobs.cancel(wait=True)
    shutdown_local_pool()


def shutdown_local_pool() -> None:
    """Stop the worker processes of the local engine (they start again when needed)."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.pool.shutdown(2.0)


class _ThreadBackend:
    """Inside a worker: run calls in this process's threads (no pool to wait on)."""

    def __init__(self, udf: Udf):
        from fused._run import _plan

        self.plan = _plan(udf)
        self.udf = udf

    def call(self, task: _Task, jobs: JobPool) -> tuple:
        from fused._run import _run_calls

        result = _run_calls(self.udf, self.plan, task.calls, 0.0)
        return result.data, result.stdout, result.stderr, None

    def cancel(self, jobs: JobPool) -> None:
        pass  # threads cannot be stopped: queued calls are, running ones finish


class _RemoteBackend:
    """Each call is one ``fused.run(..., engine="remote")`` request to the server."""

    def __init__(self, udf: Udf | None, ref: str | None, cache_max_age: Any, cache: bool):
        self.udf, self.ref, self.cache_max_age, self.cache = udf, ref, cache_max_age, cache

    def call(self, task: _Task, jobs: JobPool) -> tuple:
        from fused._run import _run_remote

        result = _run_remote(self.udf if self.udf is not None else self.ref, (), None, None, None, None,
                             dict(task.params), self.cache_max_age, self.cache, 0, True)
        if jobs._cancelled:
            raise _Cancelled
        return result.data, result.stdout, result.stderr, None

    def cancel(self, jobs: JobPool) -> None:
        pass  # requests in flight finish on the server; their results are dropped


# -- progress -----------------------------------------------------------------------------
def _interactive() -> bool:
    try:
        if "ipykernel" in sys.modules:
            return True
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _progress_bar(total: int) -> Any:
    try:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc="fused.submit", unit="call")
    except ImportError:
        return _SimpleBar(total)


class _SimpleBar:
    """A one-line stderr progress bar for terminals without tqdm."""

    def __init__(self, total: int):
        self.total, self.n = total, 0
        self._draw()

    def update(self, n: int) -> None:
        self.n += n
        self._draw()

    def _draw(self) -> None:
        width = 30
        filled = width * self.n // max(1, self.total)
        sys.stderr.write(f"\rfused.submit [{'#' * filled}{'.' * (width - filled)}] {self.n}/{self.total}")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()

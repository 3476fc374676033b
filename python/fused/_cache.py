"""``@fused.cache``: persist a function's results, keyed by its source and its arguments.

Values are pickled into the engine's :class:`DiskStore` (checksummed entries, atomic
writes, LRU size bound). While one process computes a key, others asking for the same key
wait for it on a cross-process lock instead of computing it again.
"""

from __future__ import annotations

import functools
import inspect
import os
import pickle
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

from fused import _core
from fused._duration import parse_duration
from fused._errors import DeadlineExceededError
from fused._hashing import function_source, hash_values
from fused._options import options

DEFAULT_CACHE_MAX_AGE = "12h"
_CACHE_STORAGES = ("auto", "mount", "local")
_stores: dict[str, "_core.DiskStore"] = {}
_stores_lock = threading.Lock()


def store_at(directory: str | os.PathLike) -> "_core.DiskStore":
    """Return the (shared, per-process) store rooted at ``directory``."""
    key = os.path.abspath(os.fspath(directory))
    store = _stores.get(key)
    if store is None:
        with _stores_lock:
            store = _stores.get(key)
            if store is None:
                store = _stores[key] = _core.DiskStore.open(key, options.cache_max_bytes)
    return store


def cache_folder(cache_folder_path: str, cache_storage: str = "auto") -> Path:
    """Resolve a ``cache_folder_path`` to a directory.

    A relative folder lives under ``fused.options.cache_directory`` (or, for
    ``cache_storage="mount"``, under the shared disk). An absolute path is used as it is, with
    the seeds' ``/mount`` and ``/mnt/cache`` mapped to the local shared disk.
    """
    if cache_storage not in _CACHE_STORAGES:
        raise ValueError(f"Invalid cache_storage {cache_storage!r}: use one of {', '.join(_CACHE_STORAGES)}")
    from fused._files import map_mount_path

    folder = str(cache_folder_path)
    if os.path.isabs(folder):
        return Path(map_mount_path(folder))
    if ".." in Path(folder).parts:
        raise ValueError(f"Invalid cache_folder_path {cache_folder_path!r}: must not contain '..'")
    if cache_storage == "mount":
        return Path(options.temp_directory) / "cached_data" / folder
    return Path(options.cache_directory) / folder


def cache(
    func: Callable | None = None,
    *,
    cache_max_age: str | int | None = None,
    cache_folder_path: str = "tmp",
    concurrent_lock_timeout: str | int = 120,
    cache_reset: bool | None = None,
    cache_storage: str = "auto",
    cache_key_exclude: Iterable[str] = (),
    cache_verbose: bool | None = None,
    path: str | None = None,
    reset: bool | None = None,
    storage: str | None = None,
    **kwargs: Any,
) -> Callable:
    """Cache a function's return value on disk, keyed by its code and arguments.

    Works bare (``@fused.cache``) and called (``@fused.cache(cache_max_age="24h")``), on
    plain functions, on functions nested inside UDFs and in utils modules.

    Parameters
    ----------
    func : callable, optional
        The function, when used bare.
    cache_max_age : str or int, default "12h"
        Age beyond which a stored value is recomputed: seconds or ``"30s"``, ``"10m"``,
        ``"12h"``, ``"90d"``. ``0`` disables caching.
    cache_folder_path : str, default "tmp"
        Folder of the cache, relative to ``fused.options.cache_directory``, or absolute.
        Older name: ``path``.
    concurrent_lock_timeout : str or int, default 120
        Seconds a call waits for another process computing the same key before computing
        it itself.
    cache_reset : bool, optional
        Recompute and overwrite the stored value. Older name: ``reset``.
    cache_storage : {"auto", "mount", "local"}, default "auto"
        ``"mount"`` stores on the shared disk; ``"auto"`` and ``"local"`` in the cache
        directory.
    cache_key_exclude : iterable of str
        Names of arguments left out of the key.
    cache_verbose : bool, optional
        Print whether each call was a hit or a miss.

    Every cached function also accepts ``cache_max_age=``, ``cache_reset=``,
    ``cache_verbose=`` and ``cache_storage=`` at call time, which override the decorator's.

    Returns
    -------
    callable
        The wrapped function.

    Examples
    --------
    >>> @fused.cache(cache_max_age="30s")
    ... def load(path):
    ...     return pd.read_csv(path)
    """
    if kwargs:
        raise TypeError(f"fused.cache() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
    if path is not None:
        warnings.warn("fused.cache(path=...) is deprecated: use cache_folder_path=", DeprecationWarning, stacklevel=2)
        cache_folder_path = path
    if reset is not None:
        warnings.warn("fused.cache(reset=...) is deprecated: use cache_reset=", DeprecationWarning, stacklevel=2)
        cache_reset = reset
    if storage is not None:
        cache_storage = storage
    settings = dict(
        cache_max_age=parse_duration(DEFAULT_CACHE_MAX_AGE if cache_max_age is None else cache_max_age),
        folder=cache_folder(cache_folder_path, cache_storage),
        lock_timeout=parse_duration(concurrent_lock_timeout, name="concurrent_lock_timeout"),
        cache_reset=bool(cache_reset),
        cache_verbose=cache_verbose,
        exclude=frozenset(cache_key_exclude),
        storage=cache_storage,
        folder_path=cache_folder_path,
    )
    if func is None:
        return lambda f: _wrap(f, settings)
    if not callable(func):
        raise TypeError(f"fused.cache expects a function, got {type(func).__name__}")
    return _wrap(func, settings)


def _wrap(func: Callable, settings: dict) -> Callable:
    signature = inspect.signature(func)
    code_hash = hash_values(function_source(func), getattr(func, "__qualname__", ""))

    @functools.wraps(func)
    def cached(*args: Any, **kwargs: Any) -> Any:
        max_age = settings["cache_max_age"]
        if "cache_max_age" in kwargs:
            max_age = parse_duration(kwargs.pop("cache_max_age"))
        reset = bool(kwargs.pop("cache_reset", settings["cache_reset"]))
        verbose = kwargs.pop("cache_verbose", settings["cache_verbose"])
        # Resolved per call, so changes to fused.options apply to functions decorated earlier.
        folder = cache_folder(settings["folder_path"], kwargs.pop("cache_storage", settings["storage"]))
        if verbose is None:
            verbose = options.verbose_cached_functions
        if max_age == 0:
            return func(*args, **kwargs)

        key = _call_key(code_hash, signature, settings["exclude"], args, kwargs)
        store = store_at(folder)
        if not reset:
            hit = _load(store, key, max_age)
            if hit is not _MISS:
                if verbose:
                    print(f"Cached data found for {func.__qualname__} ({store.entry_path(key)})", file=sys.stderr)
                return hit
        try:
            lock = store.lock(key, settings["lock_timeout"])
        except DeadlineExceededError:
            lock = None  # the other process is too slow: compute it ourselves
        try:
            if lock is not None and not reset:
                hit = _load(store, key, max_age)  # computed by the process we waited for
                if hit is not _MISS:
                    return hit
            if verbose:
                print(f"Cache miss for {func.__qualname__}: computing", file=sys.stderr)
            value = func(*args, **kwargs)
            _save(store, key, value, func)
            return value
        finally:
            if lock is not None:
                lock.release()

    cached.__wrapped__ = func
    cached._fused_cache_settings = settings
    return cached


_MISS = object()


def _call_key(code_hash: str, signature: inspect.Signature, exclude: frozenset, args: tuple, kwargs: dict) -> str:
    try:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = {k: v for k, v in bound.arguments.items() if k not in exclude}
        for name, param in signature.parameters.items():  # names passed through **kwargs too
            if param.kind is inspect.Parameter.VAR_KEYWORD and name in arguments:
                arguments[name] = {k: v for k, v in arguments[name].items() if k not in exclude}
    except TypeError:
        arguments = {"args": args, "kwargs": {k: v for k, v in kwargs.items() if k not in exclude}}
    return hash_values(code_hash, arguments)


def _load(store: "_core.DiskStore", key: str, max_age: float | None = None) -> Any:
    payload = store.get(key, -1.0 if max_age is None else max_age)
    if payload is None:
        return _MISS
    try:
        return pickle.loads(payload)
    except Exception:
        store.remove(key)  # written by an incompatible version: recompute
        return _MISS


def _save(store: "_core.DiskStore", key: str, value: Any, func: Callable) -> None:
    try:
        payload = pickle.dumps(value, protocol=5)
    except Exception as e:
        warnings.warn(f"Result of {func.__qualname__} was not cached: it cannot be pickled ({e})", stacklevel=3)
        return
    store.put(key, payload)

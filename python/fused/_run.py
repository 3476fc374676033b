"""``fused.run`` with the local engine: bind, coerce, cache, execute, capture, validate.

Per UDF a :class:`_Plan` is built once (resolved annotations, reserved parameters), so a
warm run costs a few microseconds over calling the function directly.
"""

from __future__ import annotations

import inspect
import io
import os
import pickle
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

from fused._capture import capture
from fused._coerce import coerce, resolve_annotation, to_bounds
from fused._errors import InvalidArgumentError, UdfError
from fused._udf import Udf

ENGINE_VERSION = "terrafuse-run-1"  # part of every result-cache key
DEFAULT_UDF_CACHE_MAX_AGE = "90d"
ENGINES = ("local", "remote", "realtime", "batch")
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclass
class RunResult:
    """What ``fused.run(..., _return_response=True)`` returns."""

    data: Any
    stdout: str
    stderr: str
    cache_hit: bool
    seconds: float
    udf_name: str


class _Spec:
    __slots__ = ("name", "annotation", "default", "kind")

    def __init__(self, parameter: inspect.Parameter, namespace: dict | None):
        self.name = parameter.name
        self.annotation = resolve_annotation(parameter.annotation, namespace)
        self.default = parameter.default
        self.kind = parameter.kind


class _Plan:
    """How to call one UDF: its parameters, resolved once."""

    def __init__(self, udf: Udf):
        from fused import types as fused_types

        function = udf.function
        self.function = function
        namespace = getattr(function, "__globals__", None)
        self.specs = {p.name: _Spec(p, namespace) for p in inspect.signature(function).parameters.values()
                      if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        self.accepts_any = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(function).parameters.values())
        self.positional = [s.name for s in self.specs.values()
                           if s.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        # The reserved spatial parameter: `bounds`, or the legacy `bbox`.
        self.bounds_param = "bounds" if "bounds" in self.specs else ("bbox" if "bbox" in self.specs else None)
        self.bounds_type = None
        if self.bounds_param:
            annotation = self.specs[self.bounds_param].annotation
            if isinstance(annotation, type) and issubclass(annotation, fused_types._LegacyGeoDataFrame):
                self.bounds_type = annotation
        # Since Fused 1.15, x/y/z are ordinary parameters of UDFs that declare them.
        self.xyz_are_params = any(n in self.specs for n in ("x", "y", "z"))

    def allowed(self) -> str:
        return ", ".join(self.specs) or "no parameters"


def _plan(udf: Udf) -> _Plan:
    plan = udf._plan
    if plan is None or plan.function is not udf.function:
        plan = udf._plan = _Plan(udf)
    return plan


def run(
    udf: Any = None,
    *args: Any,
    x: int | None = None,
    y: int | None = None,
    z: int | None = None,
    sync: bool = True,
    engine: str | None = None,
    type: str | None = None,  # noqa: A002 - the Fused SDK's name
    max_retry: int = 0,
    cache_max_age: str | int | None = None,
    cache: bool = True,
    parameters: dict | None = None,
    _include_log: bool = False,
    _return_response: bool = False,
    instance_type: str | None = None,
    disk_size_gb: int | None = None,
    **kw_parameters: Any,
) -> Any:
    """Run a UDF and return its result.

    Parameters
    ----------
    udf : Udf, str
        A UDF object (bound or not), or anything :func:`fused.load` accepts.
    *args
        Values of the UDF's first parameters.
    x, y, z : int, optional
        A map tile; the UDF receives its bounds as ``bounds``.
    sync : bool, default True
        ``False`` returns an awaitable of the result (``asyncio.gather`` several runs).
    engine : {"local", "remote"}, optional
        ``"local"`` runs in this process. Default: ``fused.options.default_udf_run_engine``,
        else ``"remote"`` when ``fused.options.base_url`` is set, else ``"local"``.
    type : {"tile", "file"}, optional
        Accepted for compatibility: the mode follows from the parameters given.
    max_retry : int, default 0
        Times to run again after the UDF raises.
    cache_max_age : str or int, optional
        How long a cached result stays valid; overrides the UDF's own (default 90 days).
    cache : bool, default True
        ``False`` neither reads nor writes the result cache (same as ``cache_max_age="0s"``).
    parameters : dict, optional
        UDF parameters, merged with ``**kw_parameters``.
    _return_response, _include_log : bool
        Return a :class:`RunResult` with the data, captured stdout/stderr, cache hit and time.
    instance_type, disk_size_gb : optional
        Accepted for compatibility; the local engine runs in this process.
    **kw_parameters
        UDF parameters, coerced by the UDF's annotations.

    Raises
    ------
    UdfError
        When the UDF raises: carries the UDF's traceback and captured stdout/stderr.
    InvalidArgumentError
        For unknown parameters, values that do not fit the annotations, or invalid outputs.
    """
    if udf is None:
        raise ValueError("fused.run needs a UDF: pass a UDF object, a path, code or a name")
    if not sync:
        # An awaitable for asyncio.gather(...) code; the local engine runs it when awaited.
        async def later() -> Any:
            return run(udf, *args, x=x, y=y, z=z, engine=engine, type=type, max_retry=max_retry,
                       instance_type=instance_type, disk_size_gb=disk_size_gb,
                       cache_max_age=cache_max_age, cache=cache, parameters=parameters,
                       _include_log=_include_log, _return_response=_return_response, **kw_parameters)

        return later()
    engine = _engine(engine)
    if engine in ("remote", "realtime"):
        return _run_remote(udf, args, x, y, z, parameters, kw_parameters, cache_max_age, cache,
                           max_retry, _return_response or _include_log)
    if engine == "batch":
        raise InvalidArgumentError("engine='batch' needs the batch engine, which this build does not include yet")
    udf_obj = _resolve(udf)
    if type not in (None, "tile", "file"):
        raise ValueError(f"Invalid type {type!r}: use 'tile' or 'file'")
    if not isinstance(max_retry, int) or max_retry < 0:
        raise ValueError(f"Invalid max_retry {max_retry!r}: use a non-negative integer")
    plan = _plan(udf_obj)
    supplied = dict(udf_obj.parameters)
    if parameters:
        supplied.update(parameters)
    supplied.update(kw_parameters)
    for name, value in zip(plan.positional, args):
        if name in kw_parameters:
            raise TypeError(f"UDF '{udf_obj.name}' got parameter '{name}' twice")
        supplied[name] = value
    if len(args) > len(plan.positional):
        raise TypeError(f"UDF '{udf_obj.name}' takes {len(plan.positional)} positional parameters, got {len(args)}")

    calls = _bind(udf_obj, plan, supplied, x, y, z)
    max_age = _max_age(udf_obj, cache_max_age, cache)
    result = None
    for attempt in range(max_retry + 1):
        try:
            result = _run_calls(udf_obj, plan, calls, max_age)
            break
        except UdfError:
            if attempt == max_retry:
                raise
    if _return_response or _include_log:
        return result
    return result.data


def _run_remote(udf: Any, args: tuple, x: Any, y: Any, z: Any, parameters: dict | None, kw: dict,
                cache_max_age: Any, cache: bool, max_retry: int, return_response: bool) -> Any:
    """Run on the server at fused.options.base_url; tokens and public names run by reference."""
    from fused import _remote

    supplied = dict(parameters or {})
    supplied.update(kw)
    tile = None
    if (x, y, z) != (None, None, None):
        if None in (x, y, z):
            raise InvalidArgumentError(f"Tile needs all of x, y and z, got x={x}, y={y}, z={z}")
        tile = _tile_arg(x, y, z)
    if "bounds" in supplied and supplied["bounds"] is not None:
        try:
            supplied["bounds"] = to_bounds(supplied["bounds"])
        except ValueError as e:
            raise InvalidArgumentError(f"Invalid bounds: {e}") from None
    if not cache:
        cache_max_age = 0
    by_reference = isinstance(udf, str) and udf.startswith(("fsh_", "UDF_"))
    udf_obj = None if by_reference else _resolve(udf)
    if udf_obj is not None:
        supplied = {**udf_obj.parameters, **supplied}
        if args:
            names = [n for n in udf_obj.signature.parameters][: len(args)]
            supplied.update(zip(names, args))
    elif args:
        raise TypeError("Positional parameters need the UDF's signature: pass them by name for tokens")
    if by_reference and cache_max_age is not None:
        supplied["cache_max_age"] = cache_max_age
    for attempt in range(max_retry + 1):
        try:
            start = time.perf_counter()
            if by_reference:
                response = _remote.run_shared(udf, supplied, tile)
            else:
                response = _remote.run_udf_object(udf_obj, supplied, tile, cache_max_age)
            break
        except UdfError:
            if attempt == max_retry:
                raise
    data = _remote.decode(response)
    if not return_response:
        return data
    metadata = _remote.metadata_of(response)
    return RunResult(data, metadata.get("stdout", ""), metadata.get("stderr", ""),
                     metadata.get("cache") in ("hit", "disk_hit"), time.perf_counter() - start,
                     metadata.get("udf", getattr(udf_obj, "name", str(udf))))


def _resolve(udf: Any) -> Udf:
    if isinstance(udf, Udf):
        return udf
    if callable(udf) and not isinstance(udf, (str, os.PathLike)):
        raise TypeError(f"fused.run expects a UDF: decorate {getattr(udf, '__name__', udf)!r} with @fused.udf")
    from fused._load import load

    return load(udf)


def _engine(engine: str | None) -> str:
    from fused._options import options

    if engine is None:
        engine = options.default_udf_run_engine or ("remote" if options.base_url else "local")
    if engine not in ENGINES:
        raise ValueError(f"Invalid engine {engine!r}: use one of {', '.join(ENGINES)}")
    return engine


def _max_age(udf: Udf, run_value: Any, cache: bool) -> float:
    from fused._duration import parse_duration
    from fused._options import options

    if not cache or not options.local_engine_cache:
        return 0.0
    for value in (run_value, udf.cache_max_age):
        if value is not None:
            return parse_duration(value)
    return parse_duration(DEFAULT_UDF_CACHE_MAX_AGE)


def _bind(udf: Udf, plan: _Plan, supplied: dict, x: Any, y: Any, z: Any) -> list[dict]:
    """Return the keyword arguments of each call (several for legacy per-tile UDFs)."""
    kwargs: dict[str, Any] = {}
    bounds = supplied.pop("bounds", None)
    if "bbox" in supplied:  # the legacy name, as a UDF parameter or as the caller's keyword
        legacy = supplied.pop("bbox")
        bounds = legacy if bounds is None else bounds
    tile = None
    if plan.xyz_are_params:
        for name, value in (("x", x), ("y", y), ("z", z)):
            if value is not None:
                supplied[name] = value
    elif x is not None or y is not None or z is not None:
        if None in (x, y, z):
            raise InvalidArgumentError(f"Tile needs all of x, y and z, got x={x}, y={y}, z={z}")
        tile = _tile_arg(x, y, z)

    specs = plan.specs
    if not plan.accepts_any and not supplied.keys() <= specs.keys():
        unknown = [n for n in supplied if n not in specs]
        raise InvalidArgumentError(
            f"Unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(repr(n) for n in unknown)} "
            f"for UDF '{udf.name}': it takes {plan.allowed()}"
        )
    for name, value in supplied.items():
        spec = specs.get(name)
        kwargs[name] = coerce(value, spec.annotation, param=name, udf_name=udf.name) if spec else value

    if plan.bounds_param is None:
        if bounds is not None or tile is not None:
            import warnings

            warnings.warn(f"UDF '{udf.name}' takes no bounds: the bounds given are ignored", stacklevel=4)
        return [kwargs]
    if tile is None and bounds is None:
        return [kwargs]
    if plan.bounds_type is None:
        try:
            kwargs[plan.bounds_param] = tile_bounds(*tile) if tile is not None else to_bounds(bounds)
        except ValueError as e:
            raise InvalidArgumentError(f"Invalid bounds for UDF '{udf.name}': {e}") from None
        return [kwargs]
    # Legacy GeoDataFrame types.
    box = tile_bounds(*tile) if tile is not None else to_bounds(bounds)
    if not plan.bounds_type.per_tile:
        return [{**kwargs, plan.bounds_param: _viewport_gdf(box)}]
    tiles = [tile] if tile is not None else _covering_tiles(box)
    return [{**kwargs, plan.bounds_param: _tile_gdf(*t)} for t in tiles]


def _tile_arg(x: Any, y: Any, z: Any) -> tuple[int, int, int]:
    try:
        return int(x), int(y), int(z)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"Invalid tile x={x!r}, y={y!r}, z={z!r}: use integers") from None


def tile_bounds(x: int, y: int, z: int) -> list[float]:
    from fused import tiles

    return list(tiles.bounds(x, y, z))


def _covering_tiles(box: list[float]) -> list[tuple[int, int, int]]:
    # The zoom at which the box fits one tile; the box then touches at most 4 tiles.
    from fused import tiles

    zoom = tiles.estimate_zoom(box)
    return [tuple(t) for t in tiles.tiles(*box, zooms=zoom)]


def _tile_gdf(x: int, y: int, z: int) -> Any:
    import geopandas as gpd
    import shapely

    return gpd.GeoDataFrame({"x": [x], "y": [y], "z": [z]},
                            geometry=[shapely.box(*tile_bounds(x, y, z))], crs=4326)


def _viewport_gdf(box: list[float]) -> Any:
    import geopandas as gpd
    import shapely

    return gpd.GeoDataFrame(geometry=[shapely.box(*box)], crs=4326)


# -- executing -----------------------------------------------------------------------------
def _run_calls(udf: Udf, plan: _Plan, calls: list[dict], max_age: float) -> RunResult:
    if len(calls) == 1:
        return _run_one(udf, plan, calls[0], max_age)
    parts = [_run_one(udf, plan, kwargs, max_age) for kwargs in calls]
    return RunResult(
        data=_concat([p.data for p in parts]),
        stdout="".join(p.stdout for p in parts),
        stderr="".join(p.stderr for p in parts),
        cache_hit=all(p.cache_hit for p in parts),
        seconds=sum(p.seconds for p in parts),
        udf_name=udf.name,
    )


def _run_one(udf: Udf, plan: _Plan, kwargs: dict, max_age: float) -> RunResult:
    store = key = None
    if max_age > 0:
        from fused._cache import store_at
        from fused._hashing import hash_values
        from fused._options import options

        store = store_at(os.path.join(options.cache_directory, "udf_results"))
        try:
            key = hash_values(ENGINE_VERSION, udf.hash, kwargs)
        except TypeError:
            store = None  # an argument with no stable hash: run uncached
        if store is not None:
            start = time.perf_counter()
            payload = store.get(key, max_age)
            if payload is not None:
                try:
                    data, out, err = pickle.loads(payload)
                except Exception:
                    store.remove(key)
                else:
                    sys.stdout.write(out)
                    sys.stderr.write(err)
                    return RunResult(data, out, err, True, time.perf_counter() - start, udf.name)

    start = time.perf_counter()
    with capture() as captured:
        try:
            if udf.headers:
                with udf.imports():
                    data = plan.function(**kwargs)
            else:
                data = plan.function(**kwargs)
        except Exception as e:
            error = e
        else:
            error = None
    if error is not None:
        raise _udf_error(udf, error, captured.stdout, captured.stderr) from error
    seconds = time.perf_counter() - start
    if not isinstance(data, _SIMPLE):
        validate_output(data, udf.name)
    result = RunResult(data, "".join(captured.out), "".join(captured.err), False, seconds, udf.name)
    if store is not None:
        try:
            payload = pickle.dumps((data, result.stdout, result.stderr), protocol=5)
        except Exception:
            pass  # e.g. response objects: returned, not cached
        else:
            store.put(key, payload)
    return result


def _udf_error(udf: Udf, error: Exception, stdout: str, stderr: str) -> UdfError:
    # Show the UDF's own frames: drop the engine's frames in front of them.
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR) and tb.tb_next:
        tb = tb.tb_next
    error.__traceback__ = tb
    text = "".join(traceback.format_exception(type(error), error, tb))
    return UdfError(f"UDF '{udf.name}' raised {type(error).__name__}: {error}",
                    traceback=text, stdout=stdout, stderr=stderr)


def _concat(parts: list) -> Any:
    import pandas as pd

    frames = [p for p in parts if p is not None]
    if not frames:
        return None
    if all(isinstance(p, pd.DataFrame) for p in frames):
        return pd.concat(frames, ignore_index=True)
    return frames


# -- outputs -------------------------------------------------------------------------------
_SIMPLE = (str, int, float, bool, type(None), bytes)
_VALID = ("a DataFrame, GeoDataFrame, Series or GeoSeries, a shapely geometry, a numpy array, "
          "an xarray Dataset/DataArray, an (array, bounds) tuple, io.BytesIO, a str, int, float "
          "or bool, a dict, a list or tuple, None, or a response object")


def validate_output(value: Any, udf_name: str) -> None:
    """Raise InvalidArgumentError unless ``value`` is a valid UDF return value."""
    if not _valid(value, depth=0):
        raise InvalidArgumentError(
            f"UDF '{udf_name}' returned a {type(value).__module__}.{type(value).__qualname__}, "
            f"which is not a valid UDF output: return {_VALID}"
        )


def _valid(value: Any, depth: int) -> bool:
    if isinstance(value, _SIMPLE) or isinstance(value, io.BytesIO):
        return True
    if isinstance(value, (list, tuple)):
        return depth < 8 and all(_valid(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return depth < 8 and all(isinstance(k, str) and _valid(v, depth + 1) for k, v in value.items())
    module = type(value).__module__.split(".")[0]
    if module in ("pandas", "geopandas", "numpy", "xarray", "shapely", "pyarrow"):
        return True
    # Response objects (fastapi/starlette and alike): a body and a media type.
    return hasattr(value, "body") and hasattr(value, "media_type")

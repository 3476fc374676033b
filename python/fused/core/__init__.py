"""``fused.core``: the Fused SDK's direct HTTP run helpers, over a terrafuse server.

``run_file``/``run_tile`` run a saved UDF (``owner`` + name, with the API token);
``run_shared_file``/``run_shared_tile`` run a shared token or public ``UDF_<Name>``. Each has
an ``*_async`` form returning an awaitable. Results come back as Python objects (tables as
(Geo)DataFrames, arrays as numpy).
"""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

from fused import _remote

DEFAULT_DTYPE_VECTOR = _remote.SDK_DTYPE_VECTOR
DEFAULT_DTYPE_RASTER = _remote.SDK_DTYPE_RASTER


def _params(params: dict, dtype_vector: str, dtype_raster: str) -> dict:
    out = {k: _remote._wire_value(v) for k, v in params.items()}
    out.update(dtype_out_vector=dtype_vector, dtype_out_raster=dtype_raster)
    return out


def _saved_path(email: str, id: str | None) -> str:
    owner, name = (email, id) if id is not None else email.rsplit("/", 1)
    return (f"/realtime/fused/api/v1/run/udf/saved/{urllib.parse.quote(owner, safe='@')}/"
            f"{urllib.parse.quote(name)}")


def run_file(email: str, id: str | None = None, *, _dtype_out_vector: str = DEFAULT_DTYPE_VECTOR,
             _dtype_out_raster: str = DEFAULT_DTYPE_RASTER, _client_id: Any = None, **params: Any) -> Any:
    """Run a saved UDF as File: ``run_file("me@x.com", "my_udf", year=2021)``."""
    response = _remote.request("GET", _saved_path(email, id),
                               params=_params(params, _dtype_out_vector, _dtype_out_raster))
    return _remote.decode(response)


def run_tile(email: str, id: str | None = None, *, x: int, y: int, z: int,
             _dtype_out_vector: str = DEFAULT_DTYPE_VECTOR, _dtype_out_raster: str = DEFAULT_DTYPE_RASTER,
             _client_id: Any = None, **params: Any) -> Any:
    """Run a saved UDF as the tile ``z/x/y``."""
    response = _remote.request("GET", f"{_saved_path(email, id)}/tiles/{z}/{x}/{y}",
                               params=_params(params, _dtype_out_vector, _dtype_out_raster))
    return _remote.decode(response)


def run_shared_file(token: str, *, _dtype_out_vector: str = DEFAULT_DTYPE_VECTOR,
                    _dtype_out_raster: str = DEFAULT_DTYPE_RASTER, **params: Any) -> Any:
    """Run a shared token (``fsh_...``) or public name (``UDF_<Name>``) as File."""
    path = f"/realtime-shared/{urllib.parse.quote(token, safe='')}/run/file"
    return _remote.decode(_remote.request("GET", path, params=_params(params, _dtype_out_vector, _dtype_out_raster)))


def run_shared_tile(token: str, *, x: int, y: int, z: int, _dtype_out_vector: str = DEFAULT_DTYPE_VECTOR,
                    _dtype_out_raster: str = DEFAULT_DTYPE_RASTER, **params: Any) -> Any:
    """Run a shared token or public name as the tile ``z/x/y``."""
    path = f"/realtime-shared/{urllib.parse.quote(token, safe='')}/run/tiles/{z}/{x}/{y}"
    return _remote.decode(_remote.request("GET", path, params=_params(params, _dtype_out_vector, _dtype_out_raster)))


async def run_file_async(*args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(run_file, *args, **kwargs)


async def run_tile_async(*args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(run_tile, *args, **kwargs)


async def run_shared_file_async(*args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(run_shared_file, *args, **kwargs)


async def run_shared_tile_async(*args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(run_shared_tile, *args, **kwargs)


__all__ = ["run_file", "run_file_async", "run_shared_file", "run_shared_file_async", "run_shared_tile",
           "run_shared_tile_async", "run_tile", "run_tile_async"]

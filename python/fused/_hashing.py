"""Stable content hashing of Python values for cache keys.

Equal values hash equal across processes and runs (no ``id()``, no ``hash()`` of str, which
Python salts per process). Each value is fed to the engine's XXH3-128 hasher with a type tag,
so ``1``, ``"1"`` and ``[1]`` never collide. Large buffers (numpy, pandas hashes) are hashed
in C++ without a copy.
"""

from __future__ import annotations

import datetime
import decimal
import inspect
import pathlib
import pickle
import struct
import textwrap
import types
import uuid
from typing import Any

from fused import _core

_SCALAR_TYPES = (type(None), bool, int, float, complex, str, bytes, decimal.Decimal,
                 datetime.date, datetime.time, datetime.timedelta, uuid.UUID, pathlib.PurePath)


def hash_values(*values: Any) -> str:
    """Return the 32-hex-character content hash of ``values``."""
    h = _core.Hasher()
    for value in values:
        _feed(h, value)
    return h.hexdigest()


def _tag(h: "_core.Hasher", tag: str, payload: bytes = b"") -> None:
    h.update(tag.encode() + struct.pack("<Q", len(payload)) + payload)


def _feed(h: "_core.Hasher", value: Any) -> None:  # noqa: C901 - one dispatch table
    if isinstance(value, _SCALAR_TYPES):
        if isinstance(value, str):
            _tag(h, "str", value.encode("utf-8", "surrogatepass"))
        elif isinstance(value, bytes):
            _tag(h, "bytes", value)
        else:
            _tag(h, type(value).__name__, repr(value).encode())
        return
    if isinstance(value, (list, tuple)):
        _tag(h, type(value).__name__, struct.pack("<Q", len(value)))
        for item in value:
            _feed(h, item)
        return
    if isinstance(value, dict):
        # Order-insensitive: sort entries by the hash of their key.
        items = sorted((hash_values(k), k, v) for k, v in value.items()) if value else []
        _tag(h, "dict", struct.pack("<Q", len(items)))
        for key_hash, _, item in items:
            h.update(key_hash.encode())
            _feed(h, item)
        return
    if isinstance(value, (set, frozenset)):
        _tag(h, "set", "".join(sorted(hash_values(v) for v in value)).encode())
        return

    module = type(value).__module__.split(".")[0]
    if module == "numpy":
        _feed_numpy(h, value)
    elif module in ("pandas", "geopandas"):
        _feed_pandas(h, value)
    elif module == "shapely":
        import shapely

        _tag(h, "geom", shapely.to_wkb(value))
    elif module == "xarray":
        _feed_xarray(h, value)
    elif module == "pyarrow":
        _feed_pandas(h, value.to_pandas())
    elif getattr(value, "_is_fused_udf", False):
        _tag(h, "udf", value.hash.encode())
    elif inspect.isfunction(value) or inspect.ismethod(value):
        _tag(h, "func", function_source(value).encode())
    else:
        try:
            payload = pickle.dumps(value, protocol=5)
        except Exception as e:
            raise TypeError(
                f"Cannot hash an argument of type {type(value).__name__} for caching: {e}. "
                "Pass it under a name listed in cache_key_exclude to leave it out of the key."
            ) from None
        _tag(h, "pickle", payload)


def _feed_numpy(h: "_core.Hasher", value: Any) -> None:
    import numpy as np

    if isinstance(value, np.generic):
        _tag(h, "npscalar", value.dtype.str.encode() + value.tobytes())
        return
    if value.dtype == object:
        _tag(h, "ndarray-object", repr(value.shape).encode())
        for item in value.ravel():
            _feed(h, item)
        return
    _tag(h, "ndarray", f"{value.dtype.str}{value.shape}".encode())
    h.update_buffer(np.ascontiguousarray(value).view(np.uint8).reshape(-1))


def _feed_pandas(h: "_core.Hasher", value: Any) -> None:
    import pandas as pd

    if isinstance(value, pd.Index):
        value = value.to_series(index=pd.RangeIndex(len(value)))
    if isinstance(value, pd.Series):
        value = value.to_frame(name=value.name if value.name is not None else "__series__")
        _tag(h, "series")
    if not isinstance(value, pd.DataFrame):
        _tag(h, "pandas-other", repr(value).encode())
        return
    _tag(h, type(value).__name__, repr([(str(c), str(t)) for c, t in value.dtypes.items()]).encode())
    frame = value
    geom_cols = [c for c, t in value.dtypes.items() if str(t) == "geometry"]
    for c in geom_cols:  # every geometry column's CRS, whatever the column is called
        crs = getattr(value[c].values, "crs", None)
        if crs is not None:
            _tag(h, "crs", f"{c}={crs.to_string()}".encode())
    if geom_cols:
        import shapely

        frame = pd.DataFrame(value.copy(deep=False))
        for c in geom_cols:
            frame[c] = shapely.to_wkb(value[c].values)
    try:
        hashed = pd.util.hash_pandas_object(frame, index=True)
    except TypeError:  # unhashable cells (lists, dicts): fall back to their pickles
        hashed = pd.util.hash_pandas_object(frame.map(lambda v: pickle.dumps(v, protocol=5)), index=True)
    h.update_buffer(hashed.to_numpy())


def _feed_xarray(h: "_core.Hasher", value: Any) -> None:
    import xarray as xr

    if isinstance(value, xr.Dataset):
        _tag(h, "xr.Dataset", repr(sorted(map(str, value.data_vars))).encode())
        for name in sorted(map(str, value.data_vars)):
            _feed_xarray(h, value[name])
        _feed(h, dict(value.attrs))
        return
    _tag(h, "xr.DataArray", repr((value.name, value.dims)).encode())
    _feed_numpy(h, value.values)
    for name in sorted(map(str, value.coords)):
        h.update(name.encode())
        _feed_numpy(h, value.coords[name].values)
    _feed(h, dict(value.attrs))


def function_source(fn: Any) -> str:
    """Return the exact source text of ``fn``, dedented; its bytecode when the source is gone."""
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        if code is None:
            return repr(fn)
        return f"<bytecode {hash_values(_code_fingerprint(code))}>"


def _code_fingerprint(code: types.CodeType) -> tuple:
    """Bytecode, constants and names of ``code``, nested code objects included.

    Not ``repr(code.co_consts)``: that shows nested code objects (comprehensions, lambdas,
    inner functions) by memory address and frozensets in hash-seed order, which differ
    between processes.
    """
    consts = tuple(_code_fingerprint(c) if isinstance(c, types.CodeType) else c
                   for c in code.co_consts)
    return ("code", code.co_code, consts, code.co_names)

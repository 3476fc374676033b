"""Coercion of UDF parameters by their annotations.

Values arrive as Python objects (``fused.run``) or as strings (HTTP query strings, CLI); the
same rules turn both into what the annotation asks for, so a UDF behaves the same either way.
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from typing import Any, Literal, Union

from fused._errors import InvalidArgumentError

_TRUE = {"true", "1", "yes", "y", "t", "on"}
_FALSE = {"false", "0", "no", "n", "f", "off", ""}
_NONE_STRINGS = {"none", "null"}


class _AnnotationNames(dict):
    """Names available to string annotations beyond the function's globals."""

    def __missing__(self, name: str) -> Any:
        if name == "fused":
            import fused

            return fused
        if name in ("gpd", "geopandas"):
            import geopandas

            return geopandas
        if name in ("pd", "pandas"):
            import pandas

            return pandas
        if name in ("np", "numpy"):
            import numpy

            return numpy
        if hasattr(typing, name):
            return getattr(typing, name)
        raise KeyError(name)


def resolve_annotation(annotation: Any, namespace: dict | None) -> Any:
    """Turn a string annotation (``"fused.types.Bounds"``, ``"int"``) into the object."""
    # Code compiled with postponed annotations turns `n: "int"` into the string "'int'":
    # evaluate until an object comes out.
    for _ in range(2):
        if not isinstance(annotation, str):
            return annotation
        try:
            annotation = eval(annotation, dict(namespace or {}), _AnnotationNames())  # noqa: S307 - UDF's own code
        except Exception:
            return inspect.Parameter.empty  # unresolvable: treated as untyped
    return annotation if not isinstance(annotation, str) else inspect.Parameter.empty


def describe(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return "str"
    origin = typing.get_origin(annotation)
    if origin is not None:
        return str(annotation).replace("typing.", "")
    return getattr(annotation, "__qualname__", None) or str(annotation)


def coerce(value: Any, annotation: Any, *, param: str, udf_name: str) -> Any:
    """Return ``value`` converted to ``annotation``.

    Raises
    ------
    InvalidArgumentError
        Naming the parameter, the expected type and the value.
    """
    try:
        if type(value) is str:  # query-string values, the common case: _coerce's rules, fewer checks
            if annotation is int:
                return int(value.strip())
            if annotation is float:
                return float(value.strip())
            if annotation is str:
                return value
        return _coerce(value, annotation)
    except (ValueError, TypeError) as e:
        shown = value if not isinstance(value, str) or len(value) < 80 else value[:77] + "..."
        reason = f": {e}" if str(e) else ""
        raise InvalidArgumentError(
            f"Invalid value for parameter '{param}' of UDF '{udf_name}': expected "
            f"{describe(annotation)}, got {shown!r}{reason}"
        ) from None


_FUSED_TYPES: Any = None


def _fused_types() -> Any:
    """``fused.types``, imported on first use (it imports this module): an import statement
    on every coercion cost more than the coercion."""
    global _FUSED_TYPES
    if _FUSED_TYPES is None:
        from fused import types

        _FUSED_TYPES = types
    return _FUSED_TYPES


def _coerce(value: Any, annotation: Any) -> Any:  # noqa: C901 - one rule per type
    empty = inspect.Parameter.empty
    if annotation is empty:
        return _untyped(value)
    if annotation is Any or annotation is object:
        return value
    if type(annotation) is type:  # a plain class (int, str, ...): no origin, no arguments
        origin, args = None, ()
    else:
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)

    if origin is Union or origin is types.UnionType:
        if value is None or (isinstance(value, str) and value.lower() in _NONE_STRINGS and type(None) in args):
            if type(None) in args:
                return None
        errors = []
        for member in args:
            if member is type(None):
                continue
            try:
                return _coerce(value, member)
            except (ValueError, TypeError) as e:
                errors.append(str(e))
        raise ValueError("; ".join(e for e in errors if e))
    if origin is Literal:
        for allowed in args:
            candidate = value
            if isinstance(value, str) and not isinstance(allowed, str):
                try:
                    candidate = _coerce(value, type(allowed))
                except (ValueError, TypeError):
                    continue
            if candidate == allowed:
                return allowed
        raise ValueError(f"must be one of {', '.join(repr(a) for a in args)}")
    if value is None:
        return None

    fused_types = _fused_types()
    if annotation is fused_types.Bounds:
        return to_bounds(value)
    if isinstance(annotation, type) and issubclass(annotation, fused_types._LegacyGeoDataFrame):
        return value  # built by the run from the bounds
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError("use true/false, 1/0, yes/no")
    if annotation is int:
        if isinstance(value, bool):
            raise ValueError("")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            return int(value.strip())
        raise ValueError("")
    if annotation is float:
        if isinstance(value, bool):
            raise ValueError("")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            return float(value.strip())
        raise ValueError("")
    if annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float, bool)):
            return str(value)
        if isinstance(value, (list, dict)):
            return json.dumps(value)
        raise ValueError("")
    if annotation in (list, tuple) or origin in (list, tuple):
        items = _to_list(value)
        if args and origin is list:
            items = [_coerce(item, args[0]) for item in items]
        return tuple(items) if (annotation is tuple or origin is tuple) else items
    if annotation is dict or origin is dict:
        if isinstance(value, str):
            value = json.loads(value)
        if not isinstance(value, dict):
            raise ValueError("expected a JSON object")
        return value

    module = getattr(annotation, "__module__", "") or ""
    if module.startswith("geopandas") and getattr(annotation, "__name__", "") == "GeoDataFrame":
        return to_geodataframe(value)
    if module.startswith("pandas") and getattr(annotation, "__name__", "") == "DataFrame":
        return to_dataframe(value)
    return value  # other annotations: passed through unchanged


def _untyped(value: Any) -> Any:
    # Untyped parameters receive strings, as they do over HTTP; objects that have no
    # string form there (tables, geometries) pass through.
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple, dict)):
        try:
            return json.dumps(value)
        except TypeError:
            return value
    return value


def _to_list(value: Any) -> list:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            parsed = json.loads(text)
            if not isinstance(parsed, list):
                raise ValueError("expected a JSON list")
            return parsed
        return [part.strip() for part in text.split(",")] if text else []
    if isinstance(value, (list, tuple)):
        return list(value)
    if hasattr(value, "tolist"):
        return list(value.tolist())
    raise ValueError("expected a list")


def to_bounds(value: Any) -> list[float]:
    """Turn a list, a string, a GeoDataFrame or a shapely geometry into ``[xmin, ymin, xmax, ymax]``."""
    if isinstance(value, str):
        value = _to_list(value)
    module = type(value).__module__.split(".")[0]
    if module in ("geopandas", "pandas") and hasattr(value, "total_bounds"):
        value = list(value.to_crs(4326).total_bounds if value.crs and not value.crs.equals("EPSG:4326")
                     else value.total_bounds)
    elif module == "shapely":
        value = list(value.bounds)
    elif hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise ValueError("bounds are 4 numbers [xmin, ymin, xmax, ymax], a GeoDataFrame or a geometry")
    bounds = [float(v) for v in value]
    if bounds[0] > bounds[2] or bounds[1] > bounds[3]:
        raise ValueError("bounds must have xmin <= xmax and ymin <= ymax")
    return bounds


def to_dataframe(value: Any) -> Any:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return value
    if isinstance(value, str):
        value = json.loads(value)
    if isinstance(value, (list, dict)):
        return pd.DataFrame(value)
    raise ValueError("expected a DataFrame or its JSON (records or columns)")


def to_geodataframe(value: Any) -> Any:
    import geopandas as gpd

    if isinstance(value, gpd.GeoDataFrame):
        return value
    if isinstance(value, str):
        value = json.loads(value)
    if isinstance(value, dict):
        if value.get("type") == "FeatureCollection":
            return gpd.GeoDataFrame.from_features(value["features"], crs=4326)
        if value.get("type") == "Feature":
            return gpd.GeoDataFrame.from_features([value], crs=4326)
        if "type" in value and "coordinates" in value:
            import shapely.geometry

            return gpd.GeoDataFrame(geometry=[shapely.geometry.shape(value)], crs=4326)
    if isinstance(value, list) and all(isinstance(f, dict) and f.get("type") == "Feature" for f in value):
        return gpd.GeoDataFrame.from_features(value, crs=4326)
    raise ValueError("expected a GeoDataFrame or GeoJSON")

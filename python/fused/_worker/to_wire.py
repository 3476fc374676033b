"""A UDF's return value → the ``kind``, extra header fields and payload of a reply frame.

The kinds and their payloads are listed in docs/design/server.md ("Worker protocol"):
``table`` (Arrow IPC stream, geometry as WKB with GeoParquet ``geo`` metadata), ``raster``
(array bytes in C order with ``shape``/``dtype``/``bounds``), ``json``, ``html``, ``bytes``
and ``none``. The server encodes them into the format the caller asked for.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely
from geopandas.array import GeometryArray, GeometryDtype
from geopandas.io.arrow import _geopandas_to_arrow

try:
    from geopandas.io.arrow import _remove_id_from_member_of_ensembles as _remove_ensemble_ids
except ImportError:  # older geopandas: keep the ids
    def _remove_ensemble_ids(projjson: dict) -> None:
        pass

from fused._coerce import to_bounds
from fused._errors import InvalidArgumentError
from fused._run import validate_output
from fused._worker.protocol import json_dumps

HTML_MEDIA_TYPE = "text/html; charset=utf-8"
OCTET_STREAM = "application/octet-stream"
_RASTER_DTYPE_KINDS = "biuf"  # bool, signed, unsigned, float
_EMPTY = b""
_json_encode = json_dumps(default=lambda o: _json_default(o))


def to_wire(value: Any, udf_name: str) -> tuple[dict, Any]:
    """Return ``(fields, payload)`` for ``value``: ``fields`` holds ``kind`` and its extra fields.

    Raises
    ------
    InvalidArgumentError
        When ``value`` is not a valid UDF output or cannot be converted; the message names the
        UDF and the problem.
    """
    if type(value) is int:  # what the JSON encoder writes, without its set-up
        try:
            return {"kind": "json"}, int.__repr__(value).encode()
        except ValueError:  # over Python's digit limit: the encoder's error message
            return _json(value, udf_name)
    if value is None:
        return {"kind": "none"}, _EMPTY
    if isinstance(value, str):
        if value.lstrip()[:1] == "<":
            return {"kind": "html", "media_type": HTML_MEDIA_TYPE}, value.encode("utf-8", "replace")
        return _json(value, udf_name)
    if isinstance(value, (bool, int, float, dict, list)):
        return _json(value, udf_name)
    if isinstance(value, tuple):
        pair = _raster_pair(value)
        return _raster(*pair, udf_name) if pair is not None else _json(value, udf_name)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"kind": "bytes", "media_type": OCTET_STREAM}, value
    if isinstance(value, io.BytesIO):
        return {"kind": "bytes", "media_type": OCTET_STREAM}, value.getbuffer()

    module = type(value).__module__.split(".")[0]
    if module in ("pandas", "geopandas", "shapely", "pyarrow"):
        return {"kind": "table"}, _ipc_stream(_to_arrow(value, udf_name))
    if module == "numpy":
        if isinstance(value, np.ndarray):
            return _raster(value, None, udf_name)
        if isinstance(value, np.generic):  # numpy scalars
            return _json(value.item(), udf_name)
    if module == "xarray":
        array, bounds = _from_xarray(value)
        return _raster(array, bounds, udf_name)
    if hasattr(value, "body") and hasattr(value, "media_type"):  # fastapi/starlette responses
        body = value.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        return {"kind": "bytes", "media_type": value.media_type or OCTET_STREAM}, body or _EMPTY
    validate_output(value, udf_name)  # raises with the list of valid outputs
    raise InvalidArgumentError(f"UDF '{udf_name}' returned a {_type_name(value)}, which the server cannot send")


# -- json ----------------------------------------------------------------------------------
def _json(value: Any, udf_name: str) -> tuple[dict, bytes]:
    try:
        text = _json_encode(value)
    except ValueError:  # NaN or infinity: JSON has no such numbers, send null
        try:
            text = _json_encode(_finite(value))
        except (TypeError, ValueError) as e:
            raise _unencodable(value, udf_name, e) from None
    except TypeError as e:
        raise _unencodable(value, udf_name, e) from None
    return {"kind": "json"}, text.encode("utf-8", "replace")


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.ndarray, np.generic)):
        return o.tolist()
    if isinstance(o, (pd.Timestamp,)) or hasattr(o, "isoformat"):
        return o.isoformat()
    if isinstance(o, (bytes, bytearray)):
        return o.decode("utf-8", "replace")
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"a {_type_name(o)} has no JSON form")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return _finite(value.tolist())
    return value


def _unencodable(value: Any, udf_name: str, error: Exception) -> InvalidArgumentError:
    return InvalidArgumentError(f"UDF '{udf_name}' returned a {_type_name(value)} that cannot be sent as JSON: {error}")


# -- tables --------------------------------------------------------------------------------
def _to_arrow(value: Any, udf_name: str) -> pa.Table:
    if isinstance(value, pa.Table):
        return value
    if isinstance(value, pa.RecordBatch):
        return pa.Table.from_batches([value])
    if isinstance(value, shapely.Geometry):
        value = gpd.GeoDataFrame(geometry=[value], crs=4326)
    elif isinstance(value, gpd.GeoSeries):
        value = gpd.GeoDataFrame(geometry=value, crs=value.crs if value.crs is not None else 4326)
    elif isinstance(value, pd.Series):
        value = value.to_frame(name=value.name if value.name is not None else "value")
    if not isinstance(value, pd.DataFrame):
        validate_output(value, udf_name)
        raise InvalidArgumentError(f"UDF '{udf_name}' returned a {_type_name(value)}, which the server cannot send")
    try:
        table = _simple_frame_to_arrow(value)
        if table is not None:
            return table
        value = _with_active_geometry(value)
        if isinstance(value, gpd.GeoDataFrame):
            return _geopandas_to_arrow(value, index=None, geometry_encoding="WKB")
        return pa.Table.from_pandas(value, preserve_index=None)
    except (pa.ArrowException, TypeError, ValueError) as e:
        raise InvalidArgumentError(
            f"UDF '{udf_name}' returned a {_type_name(value)} that cannot be converted to an Arrow "
            f"table: {e}"
        ) from None


def _with_active_geometry(df: pd.DataFrame) -> pd.DataFrame:
    """A frame with geometry columns becomes a GeoDataFrame with an active geometry column."""
    if isinstance(df, gpd.GeoDataFrame) and df._geometry_column_name in df.columns:
        return df
    geometry_columns = [c for c in df.columns if isinstance(df[c].dtype, GeometryDtype)]
    if not geometry_columns:
        return pd.DataFrame(df) if isinstance(df, gpd.GeoDataFrame) else df
    name = "geometry" if "geometry" in geometry_columns else geometry_columns[0]
    return gpd.GeoDataFrame(df, geometry=name)


# The fast path: frames with a default index and plain columns (what tile UDFs return) are
# converted column by column; pandas' generic conversion costs ~0.2 ms and geopandas' ~1.5 ms
# even for one row. The result equals theirs (tests/workers/test_worker.py checks it), minus
# the pandas index metadata, which a default RangeIndex does not need.
def _simple_frame_to_arrow(df: pd.DataFrame) -> pa.Table | None:
    index = df.index
    if type(index) is not pd.RangeIndex or index.start != 0 or index.step != 1 or index.name is not None:
        return None
    names = df.columns.tolist()
    if not all(type(n) is str for n in names) or len(set(names)) != len(names):
        return None
    primary = df._geometry_column_name if isinstance(df, gpd.GeoDataFrame) else None
    fields, arrays, geo_columns = [], [], []
    for i, name in enumerate(names):
        values = _column_values(df, i, name)
        if isinstance(values, GeometryArray):
            geometries = np.asarray(values)
            crs_geo, crs_field = _crs_documents(values.crs)
            fields.append(pa.field(name, pa.binary(), metadata=crs_field))
            arrays.append(pa.array(shapely.to_wkb(geometries, **_WKB_OPTIONS), pa.binary()))
            geo_columns.append((name, _geo_column(geometries, crs_geo)))
            continue
        dtype = values.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
            array = pa.array(values, from_pandas=True)
        elif isinstance(dtype, pd.StringDtype):
            array = pa.array(values)
        else:
            return None
        fields.append(pa.field(name, array.type))
        arrays.append(array)
    metadata = None
    if geo_columns:
        if primary not in [name for name, _ in geo_columns]:
            primary = "geometry" if any(name == "geometry" for name, _ in geo_columns) else geo_columns[0][0]
        columns = ", ".join(f"{json.dumps(name)}: {text}" for name, text in geo_columns)
        metadata = {b"geo": (f'{{"primary_column": {json.dumps(primary)}, "columns": {{{columns}}}, '
                             f'"version": "1.1.0", "creator": {_CREATOR}}}').encode()}
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=metadata))


def _column_values(df: pd.DataFrame, i: int, name: str) -> Any:
    try:
        return df._get_column_array(i)  # pandas >= 2: no Series built
    except AttributeError:
        return df[name].array


_WKB_OPTIONS = {"flavor": "iso"} if shapely.geos_version > (3, 10, 0) else {}
_GEOMETRY_TYPE_NAMES = ["Point", "LineString", "LineString", "Polygon", "MultiPoint", "MultiLineString",
                        "MultiPolygon", "GeometryCollection"]
_GEOMETRY_TYPE_NAMES += [name + " Z" for name in _GEOMETRY_TYPE_NAMES]
_CREATOR = json.dumps({"library": "geopandas", "version": gpd.__version__})
_NO_CRS = ("null", {"ARROW:extension:name": "geoarrow.wkb", "ARROW:extension:metadata": "{}"})
_crs_documents_cache: dict[str, tuple[str, dict]] = {}


def _crs_documents(crs: Any) -> tuple[str, dict]:
    """``crs`` as JSON text for the ``geo`` metadata, and the geometry field's metadata.

    Both hold PROJJSON, which costs tens of microseconds to produce: cached per CRS.
    """
    if crs is None:
        return _NO_CRS
    key = crs.srs
    documents = _crs_documents_cache.get(key)
    if documents is None:
        field = {"ARROW:extension:name": "geoarrow.wkb",
                 "ARROW:extension:metadata": json.dumps({"crs": crs.to_json_dict()})}
        geo = crs.to_json_dict()
        _remove_ensemble_ids(geo)
        if len(_crs_documents_cache) > 64:
            _crs_documents_cache.clear()
        documents = _crs_documents_cache[key] = (json.dumps(geo), field)
    return documents


def _geo_column(geometries: np.ndarray, crs_text: str) -> str:
    """The ``geo`` metadata of one column as JSON text, as geopandas writes it."""
    type_ids = shapely.get_type_id(geometries)
    type_ids[shapely.has_z(geometries)] += 8
    types = sorted({_GEOMETRY_TYPE_NAMES[i] for i in np.unique(type_ids).tolist() if i >= 0})
    text = f'{{"encoding": "WKB", "crs": {crs_text}, "geometry_types": {json.dumps(types)}'
    bbox = shapely.total_bounds(geometries).tolist() if len(geometries) else [math.nan]
    if np.isfinite(bbox).all():
        text += f', "bbox": {json.dumps(bbox)}'
    return text + "}"


def _ipc_stream(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


# -- rasters -------------------------------------------------------------------------------
def _raster_pair(value: tuple) -> tuple[np.ndarray, list[float]] | None:
    """``(array, bounds)`` as Fused UDFs return it, else None."""
    if len(value) != 2:
        return None
    array, bounds = value
    if type(array).__module__.split(".")[0] == "xarray":
        array = _from_xarray(array)[0]
    if not isinstance(array, np.ndarray) or array.ndim < 2:
        return None
    try:
        return array, to_bounds(bounds)
    except (TypeError, ValueError):
        return None


def _raster(array: Any, bounds: list[float] | None, udf_name: str) -> tuple[dict, memoryview]:
    array = np.asarray(array)
    if array.dtype.kind not in _RASTER_DTYPE_KINDS:
        raise InvalidArgumentError(
            f"UDF '{udf_name}' returned an array of dtype {array.dtype}: a raster needs bool, "
            "integer or float values"
        )
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("="))
    array = np.ascontiguousarray(array)
    fields = {"kind": "raster", "shape": list(array.shape), "dtype": array.dtype.name, "bounds": bounds}
    return fields, memoryview(array.reshape(-1).view(np.uint8)) if array.size else _EMPTY


def _from_xarray(value: Any) -> tuple[np.ndarray, list[float] | None]:
    if hasattr(value, "data_vars"):  # a Dataset: its first variable
        names = list(value.data_vars)
        if not names:
            raise InvalidArgumentError("an xarray Dataset with no data variables is not a raster")
        value = value[names[0]]
    return np.asarray(value.values), _xarray_bounds(value)


def _xarray_bounds(array: Any) -> list[float] | None:
    """Bounds of the pixel edges from 1-D x/y coordinates (pixel centres), when present."""
    for x_name, y_name in (("x", "y"), ("lon", "lat"), ("longitude", "latitude")):
        if x_name in array.coords and y_name in array.coords:
            try:
                xs = np.asarray(array.coords[x_name].values, dtype=float)
                ys = np.asarray(array.coords[y_name].values, dtype=float)
            except (TypeError, ValueError):
                return None
            if xs.ndim != 1 or ys.ndim != 1 or len(xs) < 2 or len(ys) < 2:
                return None
            dx, dy = abs(xs[1] - xs[0]) / 2, abs(ys[1] - ys[0]) / 2
            return [float(xs.min() - dx), float(ys.min() - dy), float(xs.max() + dx), float(ys.max() + dy)]
    return None


def _type_name(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"

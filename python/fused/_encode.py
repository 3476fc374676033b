"""Output encoders of the engine (C++, ``fused._core.encode``) for Python callers.

The server encodes UDF results in C++ without Python; these helpers reach the same encoders
from Python (tests, benchmarks, the local engine): a table or GeoDataFrame to ``csv``,
``json``, ``geojson``, ``parquet``, ``feather`` or (for one tile) ``mvt`` bytes, and a raster
to ``png`` bytes.
"""

from __future__ import annotations

from typing import Any

from fused import _core

__all__ = ["encode_png", "encode_table", "formats", "to_arrow_table"]


def formats() -> list[dict[str, str]]:
    """List the output formats of the engine.

    Returns
    -------
    list of dict
        One dict per format with ``name``, ``kind`` (``"vector"`` or ``"raster"``),
        ``media_type`` and ``description``, sorted by name.
    """
    return _core.encode.formats()


def _geometry_types(values: Any) -> list[str]:
    """GeoParquet ``geometry_types`` of an array of shapely geometries ("Point", "Polygon Z")."""
    import numpy as np
    import shapely

    names = [
        "Point",
        "LineString",
        "LinearRing",
        "Polygon",
        "MultiPoint",
        "MultiLineString",
        "MultiPolygon",
        "GeometryCollection",
    ]
    type_ids = shapely.get_type_id(values)
    has_z = shapely.has_z(values)
    present = type_ids >= 0
    codes = np.unique(type_ids[present] * 2 + has_z[present])
    out = set()
    for code in codes.tolist():
        name = names[code // 2]
        if name == "LinearRing":
            name = "LineString"
        out.add(name + (" Z" if code % 2 else ""))
    return sorted(out)


def _geodataframe_to_arrow(gdf: Any) -> Any:
    """A GeoDataFrame as a pyarrow table: geometry as WKB, GeoParquet 1.1 ``geo`` metadata."""
    import json

    import pyarrow as pa

    table = pa.table(gdf.to_arrow(index=None, geometry_encoding="WKB"))
    columns = {}
    for name in gdf.columns[gdf.dtypes == "geometry"]:
        series = gdf[name]
        columns[name] = {
            "encoding": "WKB",
            "geometry_types": _geometry_types(series.to_numpy()),
            "crs": series.crs.to_json_dict() if series.crs is not None else None,
        }
    geo = {"version": "1.1.0", "primary_column": gdf.geometry.name, "columns": columns}
    metadata = dict(table.schema.metadata or {})
    metadata[b"geo"] = json.dumps(geo).encode()
    return table.replace_schema_metadata(metadata)


def to_arrow_table(data: Any) -> Any:
    """Convert a result to what the encoders take: an Arrow table with WKB geometry.

    Parameters
    ----------
    data : GeoDataFrame, DataFrame, pyarrow.Table or any object with ``__arrow_c_stream__``
        A GeoDataFrame keeps its geometry columns as WKB described by GeoParquet ``geo``
        schema metadata (with their CRS), as the worker protocol sends tables.

    Returns
    -------
    pyarrow.Table or the object itself
        Objects that already export an Arrow stream are returned unchanged.

    Raises
    ------
    InvalidArgumentError
        When ``data`` is none of these.
    """
    from fused._optional_deps import GPD_GEODATAFRAME, HAS_PANDAS

    if GPD_GEODATAFRAME and isinstance(data, GPD_GEODATAFRAME):
        return _geodataframe_to_arrow(data)
    if HAS_PANDAS:
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            import pyarrow as pa

            return pa.Table.from_pandas(data)
    if hasattr(data, "__arrow_c_stream__"):
        return data
    from fused._errors import InvalidArgumentError

    raise InvalidArgumentError(
        "data must be a GeoDataFrame, a DataFrame or an Arrow table (an object with "
        f"__arrow_c_stream__), got {type(data).__name__!r}"
    )


def _tile_tuple(tile: Any) -> tuple[int, int, int] | None:
    """``tile`` as (x, y, z) ints, or None; anything else raises naming the parameter."""
    import numbers

    if tile is None:
        return None
    try:
        x, y, z = tile
    except (TypeError, ValueError):
        x = y = z = None
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in (x, y, z)):
        from fused._errors import InvalidArgumentError

        raise InvalidArgumentError(
            f"tile must be (x, y, z) integers, such as (778, 1548, 12), got {tile!r}"
        )
    return int(x), int(y), int(z)


def encode_table(
    data: Any,
    format: str,
    *,
    compression: str | None = None,
    compression_level: int | None = None,
    tile: Any = None,
) -> bytes:
    """Encode a table as one of the engine's vector formats.

    Parameters
    ----------
    data : GeoDataFrame, DataFrame, pyarrow.Table or any object with ``__arrow_c_stream__``
        The table; see :func:`to_arrow_table`.
    format : str
        ``"csv"`` (geometry as WKT), ``"json"`` (an array of row objects), ``"geojson"``
        (a FeatureCollection), ``"parquet"`` (GeoParquet), ``"feather"`` or ``"mvt"`` (a
        Mapbox Vector Tile of ``tile``: one layer ``udf``, extent 4096, geometry in
        EPSG:4326 or EPSG:3857 clipped to the tile plus a 64-unit buffer, the other columns
        as properties).
    compression : str, optional
        Codec of ``parquet`` (``zstd`` default, ``snappy``, ``gzip``, ``lz4``, ``none``) or
        ``feather`` (``lz4`` default, ``zstd``, ``none``).
    compression_level : int, optional
        Level of that codec.
    tile : tuple of int, optional
        The tile ``(x, y, z)`` being rendered (a ``mercantile.Tile`` or
        ``fused.tiles.Tile`` works); ``mvt`` needs it, the other formats ignore it.

    Returns
    -------
    bytes
        The encoded table.

    Raises
    ------
    InvalidArgumentError
        For an unknown format or codec, a geometry column that is not valid WKB, ``data``
        that is not a table, or (``mvt``) a missing or invalid ``tile`` or a table without a
        geometry column; the message names the value at fault.

    Examples
    --------
    >>> import pyarrow as pa
    >>> encode_table(pa.table({"a": [1, 2]}), "json")
    b'[{"a":1},{"a":2}]'
    """
    if not isinstance(format, str):
        from fused._errors import InvalidArgumentError

        raise InvalidArgumentError(f"format must be a string such as 'geojson', got {format!r}")
    options: dict[str, Any] = {}
    if tile is not None:  # only then: a _core built before `tile` existed still works
        options["tile"] = _tile_tuple(tile)
    table = to_arrow_table(data)
    return bytes(
        _core.encode.encode_table(
            table, format, compression=compression, compression_level=compression_level, **options
        )
    )


def encode_png(array: Any, *, compression_level: int | None = None) -> bytes:
    """Encode a uint8 raster as PNG.

    Parameters
    ----------
    array : numpy.ndarray
        ``(bands, height, width)`` with 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA)
        bands, or ``(height, width)`` for gray; dtype uint8.
    compression_level : int, optional
        zlib level 0-9; the default (1) favours speed, levels from 4 up also choose the PNG
        filter of each row. At levels 1-3, images on which LZ77 matching barely helps
        (imagery, noise) are Huffman-coded without it: as small, several times faster.

    Returns
    -------
    bytes
        The PNG file.

    Raises
    ------
    InvalidArgumentError
        For another dtype (scale to 0-255 and cast to uint8 first), shape or band count.
    """
    return bytes(_core.encode.encode_raster(array, "png", compression_level=compression_level))

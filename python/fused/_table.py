"""Readers of ingested tables: ``fused.get_chunks_metadata``, ``fused.get_chunk_from_table``
and ``fused.read_table`` (a terrafuse extension). The work (decoding ``_sample``, choosing row
groups, exact filtering) happens in the engine; this module turns Arrow into GeoDataFrames.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import geopandas as gpd
    import pyarrow as pa

_COVERING = "bbox"


class _Stream:
    """Hands an engine Arrow stream capsule to pyarrow (the PyCapsule protocol)."""

    def __init__(self, capsule: Any) -> None:
        self._capsule = capsule

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self._capsule


def _arrow(capsule: Any) -> pa.Table:
    import pyarrow as pa

    return pa.RecordBatchReader.from_stream(_Stream(capsule)).read_all()


def _storage_config():
    """Where fd:// and s3:// resolve: the same settings as the files API (fused.api)."""
    from fused._storage import _config

    return _config()


def normalize_path(url: str | os.PathLike) -> str:
    """A path the engine resolves: local paths made absolute; URLs (file://, s3://, fd://) kept."""
    text = os.fspath(url)
    if "://" in text:
        return text
    return os.path.abspath(os.path.expanduser(text))


def _geometry_column(table: pa.Table) -> str:
    import json

    meta = table.schema.metadata or {}
    if b"geo" in meta:
        try:
            return json.loads(meta[b"geo"])["primary_column"]
        except (ValueError, KeyError):
            pass
    return "geometry"


def _wkb_points(column: Any) -> Any:
    """Shapely points straight from a column of 2D little-endian WKB points, or None.

    Ingested point tables hold 21-byte WKB points; reading their coordinates with numpy is
    several times faster than parsing each value (shapely.from_wkb).
    """
    import numpy as np
    import pyarrow as pa
    import shapely

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(arr) == 0 or arr.null_count or arr.type != pa.binary():
        return None
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset: arr.offset + len(arr) + 1]
    if not (np.diff(offsets) == 21).all():
        return None
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0]: offsets[-1]].reshape(-1, 21)
    if not ((data[:, 0] == 1).all() and (data[:, 1:5] == (1, 0, 0, 0)).all()):
        return None
    x = np.ascontiguousarray(data[:, 5:13]).view("<f8").ravel()
    y = np.ascontiguousarray(data[:, 13:21]).view("<f8").ravel()
    return shapely.points(x, y)


@contextlib.contextmanager
def _gc_paused() -> Any:
    """No garbage collection while shapely makes one object per row: every 700 new objects
    start a collection that walks the growing heap, which made this 2-4x slower."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def to_geodataframe(table: pa.Table, *, drop_covering: bool = True) -> gpd.GeoDataFrame:
    """A GeoDataFrame (EPSG:4326) from an engine table with a WKB geometry column."""
    import geopandas as gpd
    import shapely

    geom = _geometry_column(table)
    if drop_covering and _COVERING in table.column_names and geom != _COVERING:
        table = table.drop_columns([_COVERING])
    if geom not in table.column_names:
        return gpd.GeoDataFrame(table.replace_schema_metadata(None).to_pandas())
    column = table.column(geom)
    with _gc_paused():
        points = _wkb_points(column)
        geoms = points if points is not None else shapely.from_wkb(column.to_numpy(zero_copy_only=False))
    position = table.column_names.index(geom)
    # One block per column and no threads: no consolidation copy, and for the ~100 k rows
    # of a bbox read, thread start-up costs more than it saves.
    df = table.drop_columns([geom]).replace_schema_metadata(None).to_pandas(split_blocks=True, use_threads=False)
    df.insert(position, geom, gpd.array.GeometryArray(geoms, crs="EPSG:4326"))
    return gpd.GeoDataFrame(df, geometry=geom, copy=False)


def get_chunks_metadata(url: str) -> gpd.GeoDataFrame:
    """Return a GeoDataFrame with each chunk in the table as a row.

    Parameters
    ----------
    url : str
        The table (a directory written by ``fused.ingest``): local path, ``file://`` or ``s3://``.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``file_id``, ``chunk_id``, ``bbox_minx``, ``bbox_miny``, ``bbox_maxx``,
        ``bbox_maxy``, ``num_rows`` and the chunk box as ``geometry`` (EPSG:4326).
    """
    import geopandas as gpd
    import shapely

    from fused import _core

    df = _arrow(_core.ingest.read_chunks_metadata(normalize_path(url), _storage_config())).to_pandas()
    geoms = shapely.box(df["bbox_minx"], df["bbox_miny"], df["bbox_maxx"], df["bbox_maxy"])
    return gpd.GeoDataFrame(df, geometry=geoms, crs="EPSG:4326")


def get_chunk_from_table(
    url: str,
    file_id: str | int | None,
    chunk_id: int | None,
    *,
    columns: Iterable[str] | None = None,
) -> gpd.GeoDataFrame:
    """Return one chunk (a row group) of a table, by the coordinates from ``get_chunks_metadata``.

    Parameters
    ----------
    url : str
        The table.
    file_id : str or int
        File to read (``<url>/<file_id>.parquet``).
    chunk_id : int or None
        Chunk (row group) to read; None reads the whole file.
    columns : iterable of str, optional
        Read only these columns (the geometry column is always read).
    """
    from fused import _core

    if file_id is None:
        raise ValueError("file_id is required: take it from fused.get_chunks_metadata(url)")
    fid = str(int(file_id)) if not isinstance(file_id, str) else file_id
    cols = list(columns) if columns is not None else []
    if cols and "geometry" not in cols:
        cols.append("geometry")
    path = normalize_path(url)
    if chunk_id is None:
        import pyarrow as pa

        meta = get_chunks_metadata(url)
        ids = meta.loc[meta["file_id"].astype(str) == fid, "chunk_id"]
        tables = [_arrow(_core.ingest.read_chunk(path, fid, int(c), cols, _storage_config())) for c in ids]
        if not tables:
            raise LookupError(f"file_id {fid!r} is not in the table {url!r}")
        return to_geodataframe(pa.concat_tables(tables))
    return to_geodataframe(_arrow(_core.ingest.read_chunk(path, fid, int(chunk_id), cols, _storage_config())))


def _bounds_tuple(bounds: Any) -> tuple[float, float, float, float]:
    if hasattr(bounds, "total_bounds"):  # GeoDataFrame / GeoSeries
        bounds = bounds.total_bounds
    elif hasattr(bounds, "bounds") and not isinstance(bounds, (list, tuple)):  # shapely geometry
        bounds = bounds.bounds
    try:
        values = tuple(float(v) for v in bounds)
    except TypeError:
        raise ValueError(f"bounds must be (minx, miny, maxx, maxy), got {bounds!r}") from None
    if len(values) != 4:
        raise ValueError(f"bounds must have 4 numbers (minx, miny, maxx, maxy), got {len(values)}")
    return values  # type: ignore[return-value]


def read_table_arrow(path: str, bounds: Any, columns: Sequence[str] | None = None) -> tuple[pa.Table, dict]:
    """Like :func:`read_table` but returns the Arrow table and read statistics."""
    from fused import _core

    capsule, stats = _core.ingest.read_table(
        normalize_path(path), _bounds_tuple(bounds), list(columns) if columns else [], _storage_config()
    )
    return _arrow(capsule), stats


def read_table(path: str, bounds: Any, columns: Sequence[str] | None = None, *,
               as_arrow: bool = False) -> gpd.GeoDataFrame | pa.Table:
    """Read the rows of an ingested table whose geometry intersects ``bounds`` (terrafuse extension).

    Only the chunks whose box meets ``bounds`` are read (in the engine, row group by row
    group), then rows are filtered exactly: by bounding box for points, with GEOS for other
    geometries whose box is not inside ``bounds``.

    Parameters
    ----------
    path : str
        The table.
    bounds : sequence of 4 floats, shapely geometry or GeoDataFrame
        ``(minx, miny, maxx, maxy)`` in WGS84; geometries and frames use their bounds.
    columns : sequence of str, optional
        Columns to return (the geometry column is always returned).
    as_arrow : bool, default False
        Return the engine's ``pyarrow.Table`` (geometry as WKB, with the file's GeoParquet
        metadata) instead of a GeoDataFrame: several times faster for large results, as no
        shapely object is made.

    Returns
    -------
    geopandas.GeoDataFrame, or pyarrow.Table with ``as_arrow=True``
    """
    if not isinstance(as_arrow, bool):
        raise TypeError(f"as_arrow must be True or False, got {as_arrow!r}")
    table, _ = read_table_arrow(path, bounds, columns)
    if as_arrow:
        return table
    return to_geodataframe(table, drop_covering=not (columns and _COVERING in columns))

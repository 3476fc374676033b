"""``fused.ingest`` and ``fused.ingest_nongeospatial``: build a job config, run it locally.

Parquet and CSV files stream straight into the engine (engine/terrafuse/ingest/), which reads
them in batches, partitions and writes the table. Everything else becomes Arrow here first:
GDAL formats through pyogrio, GeoDataFrames and DataFrames in memory. See docs/ingest.md.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fused._table import _storage_config, normalize_path

_PARQUET = (".parquet", ".pq", ".geoparquet")
_CSV = (".csv", ".tsv", ".txt")
_WGS84_CODES = {("EPSG", "4326"), ("OGC", "CRS84")}

# Fused parameter name -> engine option name.
_ENGINE_NAMES = {
    "partitioning_method": "partitioning_method",
    "partitioning_maximum_per_file": "max_per_file",
    "partitioning_maximum_per_chunk": "max_per_chunk",
    "partitioning_max_width_ratio": "max_width_ratio",
    "partitioning_max_height_ratio": "max_height_ratio",
    "partitioning_force_utm": "force_utm",
    "partitioning_split_method": "split_method",
    "subdivide_method": "subdivide_method",
    "subdivide_start": "subdivide_start",
    "subdivide_stop": "subdivide_stop",
    "split_identical_centroids": "split_identical_centroids",
    "target_num_chunks": "target_num_chunks",
    "drop_out_of_bounds": "drop_out_of_bounds",
    "overwrite": "overwrite",
    "compression": "compression",
    "compression_level": "compression_level",
}

_CHOICES = {
    "partitioning_method": ("rows", "area", "length", "coords"),
    "partitioning_force_utm": ("file", "chunk", None),
    "partitioning_split_method": ("mean", "median"),
    "subdivide_method": ("area", None),
}


def _is_frame(obj: Any) -> bool:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, pd.DataFrame)


def _is_arrow(obj: Any) -> bool:
    return hasattr(obj, "__arrow_c_stream__") and not _is_frame(obj)


@dataclass
class IngestJobConfig:
    """An ingest job: what to read, where to write, and the partitioning parameters.

    Returned by :func:`fused.ingest`. ``run_local()`` runs it in this process;
    ``to_dict()`` is the JSON form (``kind="ingest"``) a job system stores and runs
    elsewhere with ``IngestJobConfig.from_dict(d).run_local()``.
    """

    input: Any
    output: str
    params: dict = field(default_factory=dict)
    kind: str = "ingest"

    # --- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The JSON-serialisable job description.

        Raises
        ------
        ValueError
            For an in-memory input (a DataFrame): write it to a file and ingest the file.
        """
        if _is_frame(self.input) or _is_arrow(self.input):
            raise ValueError(
                "an ingest job with an in-memory input (DataFrame/Arrow) cannot be serialised; "
                "write it to Parquet and ingest the file instead"
            )
        params = dict(self.params)
        schema = params.get("schema")
        if schema is not None and not isinstance(schema, (dict, str)):
            params["schema"] = {f.name: str(f.type) for f in schema}
        data = {"kind": self.kind, "input": self.input, "output": self.output, "params": params}
        json.dumps(data)  # fail here, not in the job store, on anything unserialisable
        return data

    @classmethod
    def from_dict(cls, data: dict) -> IngestJobConfig:
        """Rebuild a job from :meth:`to_dict`'s output."""
        if data.get("kind") not in ("ingest", "ingest_nongeospatial"):
            raise ValueError(f"not an ingest job: kind={data.get('kind')!r}")
        # Jobs saved before the codec option carry no "compression": the engine's default,
        # zstd, is what they were written with.
        return cls(input=data["input"], output=data["output"], params=dict(data.get("params", {})),
                   kind=data["kind"])

    # --- running ------------------------------------------------------------------------
    def run_local(self, *, show_progress: bool = True, spill_dir: str | None = None,
                  memory_budget: int | None = None) -> dict:
        """Run the ingest in this process, with a progress bar (rows read, rows/s) on stderr.

        ``spill_dir`` is where the rows are spilled (the system temp directory by default);
        ``memory_budget`` (bytes) bounds the engine's memory, by default
        ``TERRAFUSE_INGEST_MEMORY`` or a quarter of the RAM (docs/ingest.md, "Memory").

        Returns
        -------
        dict
            ``num_rows``, ``num_files``, ``num_chunks``, ``rows_dropped``, ``seconds``, ``output``.
        """
        if self.kind == "ingest_nongeospatial":
            return _run_nongeospatial(self)
        return _run_ingest(self, show_progress=show_progress, spill_dir=spill_dir, memory_budget=memory_budget)

    def to_job(self) -> tuple[dict, list[dict]]:
        """The job system's (config, tasks): one task, the config with local paths made
        absolute (the server's workers run in another directory)."""
        config = self.to_dict()
        for key in ("input", "output"):
            value = config[key]
            config[key] = [normalize_path(v) for v in value] if isinstance(value, list) else normalize_path(value)
        return config, [{}]

    def run_remote(self, output_table: str | None = None, instance_type: str | None = None,
                   **compat: Any) -> Any:
        """Start the ingest as a job on the server (``fused.options.base_url``); returns its
        ``RunResponse`` (status, streamed logs with the progress, cancel). The other
        arguments of Fused's ``run_remote`` are accepted for compatibility."""
        from fused import _jobs

        config, tasks = self.to_job()
        return _jobs.start_job(self.kind, config, tasks, name=f"{self.kind} {Path(str(self.output)).name}")

    def execute(self, **kwargs: Any) -> Any:
        """Alias of :meth:`run_remote` (the Fused docstring's name)."""
        return self.run_remote(**kwargs)


def _run_job_task(config: dict, task: dict) -> dict:
    """One ingest job task, in a server worker: progress lines and the summary go to its logs."""
    result = IngestJobConfig.from_dict(config).run_local(show_progress=True)
    print(f"ingested {result['num_rows']:,} rows into {result['num_files']} files, "
          f"{result['num_chunks']} chunks ({result['rows_dropped']:,} rows dropped) in {result['seconds']} s")
    return result


def ingest(
    input: Any,
    output: str | None = None,
    *,
    output_metadata: str | None = None,
    schema: Any = None,
    file_suffix: str | None = None,
    load_columns: Sequence[str] | None = None,
    remove_cols: Sequence[str] | None = None,
    explode_geometries: bool = False,
    drop_out_of_bounds: bool | None = None,
    partitioning_method: str = "rows",
    partitioning_maximum_per_file: float | None = None,
    partitioning_maximum_per_chunk: float | None = None,
    partitioning_max_width_ratio: float = 2,
    partitioning_max_height_ratio: float = 2,
    partitioning_force_utm: str | None = "chunk",
    partitioning_split_method: str = "mean",
    subdivide_method: str | None = None,
    subdivide_start: float | None = None,
    subdivide_stop: float | None = None,
    split_identical_centroids: bool = True,
    target_num_chunks: int | None = None,
    lonlat_cols: tuple[str, str] | None = None,
    partitioning_schema_input: str | None = None,
    gdal_config: dict | None = None,
    overwrite: bool = False,
    compression: str | None = "zstd",
    compression_level: int | None = None,
) -> IngestJobConfig:
    """Ingest a dataset into the Fused geo-partitioned table format.

    Returns a job; nothing is read until ``.run_local()`` (or ``.run_remote()``). The table
    at ``output`` is a directory of ``<file_id>.parquet`` GeoParquet files, one row group per
    chunk, plus ``_sample`` with the chunk boxes (docs/ingest.md).

    Parameters
    ----------
    input : str, Path, list of them, GeoDataFrame or DataFrame
        Parquet/GeoParquet or CSV files (streamed), any GDAL vector format (GeoJSON,
        Shapefile or zipped Shapefile, GeoPackage, KML, FlatGeobuf...), a directory
        (with ``file_suffix``), ``https://`` URLs (downloaded first), or an in-memory frame.
    output : str
        The table directory: local path, ``file://`` or ``s3://``.
    partitioning_method, partitioning_maximum_per_file, partitioning_maximum_per_chunk,
    partitioning_max_width_ratio, partitioning_max_height_ratio, partitioning_force_utm,
    partitioning_split_method, subdivide_method, subdivide_start, subdivide_stop,
    split_identical_centroids, target_num_chunks
        As in Fused. ``target_num_chunks`` (when given and ``partitioning_maximum_per_chunk``
        is None) sets the chunk maximum to total / target_num_chunks.
    lonlat_cols : (str, str), optional
        Longitude and latitude columns to build points from (Parquet and CSV).
    load_columns, remove_cols : list of str, optional
        Columns to read / to drop.
    explode_geometries : bool
        Split multi-part geometries into one row per part.
    drop_out_of_bounds : bool, optional
        Drop rows outside WGS84 bounds (default True, as Fused); False makes them an error.
    schema : pyarrow.Schema or dict, optional
        Types to cast the named input columns to.
    gdal_config : dict, optional
        ``{"layer": ..., "open_options": {...}}`` for GDAL inputs; for CSV,
        ``X_POSSIBLE_NAMES`` / ``Y_POSSIBLE_NAMES`` name the lon/lat columns.
    partitioning_schema_input : str, optional
        An earlier table (or a Parquet file of its chunk boxes) whose boxes to reuse.
    overwrite : bool
        Replace an existing table at ``output`` (otherwise that is an error).
    compression : str or None
        Parquet codec of the table's files: ``"zstd"`` (default, as Fused writes),
        ``"lz4"`` (LZ4_RAW: faster to write and to read back in small boxes, ~25% bigger
        files), ``"snappy"``, ``"gzip"`` or None (terrafuse extension; docs/ingest.md
        compares them).
    compression_level : int, optional
        zstd (1..22, default 3) or gzip (1..9) level (terrafuse extension).

    Returns
    -------
    IngestJobConfig
    """
    if output is None:
        raise ValueError("fused.ingest needs an output location (output='path/to/table')")
    if output_metadata is not None:
        raise ValueError("output_metadata is not supported: the chunk metadata lives in <output>/_sample")
    for name, value in (("partitioning_method", partitioning_method),
                        ("partitioning_force_utm", partitioning_force_utm),
                        ("partitioning_split_method", partitioning_split_method),
                        ("subdivide_method", subdivide_method)):
        if value not in _CHOICES[name]:
            raise ValueError(f"{name} must be one of {_CHOICES[name]}, got {value!r}")
    if lonlat_cols is not None and (isinstance(lonlat_cols, str) or len(lonlat_cols) != 2):
        raise ValueError(f"lonlat_cols must be a pair (lon, lat), got {lonlat_cols!r}")
    if subdivide_method == "area" and subdivide_start is None:
        raise ValueError("subdivide_method='area' needs subdivide_start")
    if compression is not None and not isinstance(compression, str):
        raise ValueError(f"compression must be a codec name or None, got {compression!r}")
    if target_num_chunks is not None and int(target_num_chunks) <= 0:
        raise ValueError(f"target_num_chunks must be > 0, got {target_num_chunks}")
    if isinstance(input, (str, Path)):
        input = os.fspath(input)
    elif isinstance(input, (list, tuple)):
        input = [os.fspath(p) for p in input]
    elif not (_is_frame(input) or _is_arrow(input)):
        raise TypeError(f"input must be a path, a list of paths or a (Geo)DataFrame, got {type(input).__name__}")
    params = {
        "schema": schema, "file_suffix": file_suffix,
        "load_columns": list(load_columns) if load_columns is not None else None,
        "remove_cols": list(remove_cols) if remove_cols is not None else None,
        "explode_geometries": bool(explode_geometries),
        "drop_out_of_bounds": True if drop_out_of_bounds is None else bool(drop_out_of_bounds),
        "partitioning_method": partitioning_method,
        "partitioning_maximum_per_file": partitioning_maximum_per_file,
        "partitioning_maximum_per_chunk": partitioning_maximum_per_chunk,
        "partitioning_max_width_ratio": partitioning_max_width_ratio,
        "partitioning_max_height_ratio": partitioning_max_height_ratio,
        "partitioning_force_utm": partitioning_force_utm,
        "partitioning_split_method": partitioning_split_method,
        "subdivide_method": subdivide_method,
        "subdivide_start": subdivide_start,
        "subdivide_stop": subdivide_stop if subdivide_stop is not None else subdivide_start,
        "split_identical_centroids": bool(split_identical_centroids),
        "target_num_chunks": int(target_num_chunks) if target_num_chunks is not None else None,
        "lonlat_cols": list(lonlat_cols) if lonlat_cols is not None else None,
        "partitioning_schema_input": partitioning_schema_input,
        "gdal_config": dict(gdal_config) if gdal_config else None,
        "overwrite": bool(overwrite),
        "compression": "none" if compression is None else compression.lower(),
        "compression_level": int(compression_level) if compression_level is not None else None,
    }
    return IngestJobConfig(input=input, output=os.fspath(output), params=params)


def ingest_nongeospatial(
    input: Any,
    output: str | None = None,
    *,
    partition_col: str | None = None,
    partitioning_maximum_per_file: int | None = None,
    partitioning_maximum_per_chunk: int | None = None,
    overwrite: bool = False,
) -> IngestJobConfig:
    """Ingest a table without geometry into one Parquet file (zstd, row groups of at most
    ``partitioning_maximum_per_chunk`` rows, sorted by ``partition_col`` when given).

    ``partitioning_maximum_per_file`` is accepted for compatibility; one file is written.

    Returns
    -------
    IngestJobConfig
        ``kind="ingest_nongeospatial"``.
    """
    if output is None:
        raise ValueError("fused.ingest_nongeospatial needs an output location")
    if isinstance(input, (str, Path)):
        input = os.fspath(input)
    elif isinstance(input, (list, tuple)):
        input = [os.fspath(p) for p in input]
    params = {"partition_col": partition_col, "partitioning_maximum_per_file": partitioning_maximum_per_file,
              "partitioning_maximum_per_chunk": partitioning_maximum_per_chunk, "overwrite": bool(overwrite)}
    return IngestJobConfig(input=input, output=os.fspath(output), params=params, kind="ingest_nongeospatial")


# --- input planning -----------------------------------------------------------------------

def _suffix(path: str) -> str:
    name = path.split("?", 1)[0].rstrip("/").lower()
    return os.path.splitext(name)[1]


def _download(url: str, workdir: str, index: int) -> str:
    """An http(s) input copied into `workdir` through the engine's storage layer (for readers
    that need a local file: GDAL, pyarrow datasets)."""
    from fused import _core

    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "download"
    target = os.path.join(workdir, f"http-{index}-{name}")
    _core.storage_copy(url, target, _storage_config())
    return target


def _data_files(paths: list[str], item: str, file_suffix: str | None) -> list[str]:
    """The files of a directory listing an ingest reads: sorted, hidden (`.`, `_`) ones skipped,
    filtered by suffix; FileNotFoundError naming the directory when none is left."""
    found = sorted(p for p in paths if not p.rstrip("/").rpartition("/")[2].startswith((".", "_"))
                   and (file_suffix is None or p.endswith(file_suffix)))
    if not found:
        raise FileNotFoundError(f"no files in directory {item!r}" + (f" ending with {file_suffix!r}" if file_suffix else ""))
    return found


def _local_fd_path(path: str) -> str:
    """An fd:// URI as the local path behind it (pyarrow reads and writes those directly)."""
    if not path.startswith("fd://"):
        return path
    from fused import _core

    local = _core.storage_local_path(path, _storage_config())
    if local is None:
        raise NotImplementedError(f"{path!r}: ingest_nongeospatial reads and writes fd:// only when "
                                  "fd:// is a local directory (not S3); fused.ingest handles both")
    return local


def _expand_fd(item: str, path: str, file_suffix: str | None, workdir: str) -> list[str]:
    """The files of an fd:// input (a file, or a directory listed through the storage layer), as
    local paths: the files themselves when fd:// is a local directory, else copies in
    `workdir` (inputs are read several times: schema, header, rows)."""
    from fused import _core

    config = _storage_config()
    entry = _core.storage_stat(path, config)  # NotFoundError naming the URI when missing
    uris = [path]
    if entry.is_dir:
        uris = _data_files([e.uri for e in _core.storage_list(path, config, True) if not e.is_dir], item,
                           file_suffix)
    files = []
    for i, uri in enumerate(uris):
        local = _core.storage_local_path(uri, config)
        if local is None:
            local = os.path.join(workdir, f"fd-{i}-{uri.rpartition('/')[2]}")
            _core.storage_copy(uri, local, config)
        files.append(local)
    return files


def _expand(input: str | list[str], file_suffix: str | None, workdir: str, keep_urls: bool = False) -> list[str]:
    """Files to read: lists flattened, directories listed (sorted, filtered by suffix). With
    `keep_urls`, http(s) Parquet and CSV inputs stay URLs (the engine reads them in ranges);
    other http(s) inputs are downloaded into `workdir`."""
    import pyarrow.fs as pafs

    items = [input] if isinstance(input, str) else list(input)
    if not items:
        raise ValueError("ingest input is an empty list")
    files: list[str] = []
    for item in items:
        if item.startswith(("http://", "https://")):
            streamed = keep_urls and _suffix(item) in _PARQUET + _CSV
            files.append(item if streamed else _download(item, workdir, len(files)))
            continue
        path = normalize_path(item)
        if path.startswith("fd://"):
            files.extend(_expand_fd(item, path, file_suffix, workdir))
            continue
        fs, inner = pafs.FileSystem.from_uri(path) if "://" in path else (pafs.LocalFileSystem(), path)
        info = fs.get_file_info(inner)
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"ingest input {item!r} does not exist")
        if info.type == pafs.FileType.Directory:
            selector = pafs.FileSelector(inner, recursive=True)
            found = _data_files([i.path for i in fs.get_file_info(selector) if i.type == pafs.FileType.File],
                                item, file_suffix)
            prefix = path[: len(path) - len(inner)] if "://" in path else ""
            files.extend(prefix + f for f in found)
        else:
            files.append(path)
    return files


def _crs_is_wgs84(crs: Any) -> bool:
    if crs is None:
        return True
    if isinstance(crs, dict):
        ident = crs.get("id") or {}
        return (str(ident.get("authority")), str(ident.get("code"))) in _WGS84_CODES
    return False


def _parquet_schema(path: str) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fused._errors import InvalidArgumentError

    try:
        return pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidArgumentError(f"'{path}' is not a readable Parquet file: {exc}") from None


def _parquet_geo(schema: Any) -> dict | None:
    meta = schema.metadata or {}
    return json.loads(meta[b"geo"]) if b"geo" in meta else None


def _selected_columns(names: list[str], params: dict, must_keep: list[str]) -> list[str]:
    load, remove = params.get("load_columns"), params.get("remove_cols") or []
    for col in (load or []) + list(remove):
        if col not in names:
            raise ValueError(f"column {col!r} (load_columns/remove_cols) not found; the input has {names}")
    cols = list(load) if load else list(names)
    cols = [c for c in cols if c not in remove]
    for col in must_keep:
        if col in names and col not in cols:
            cols.append(col)
    return [] if cols == list(names) else cols


def _csv_header(path: str) -> list[str]:
    import io

    import pyarrow.csv as pcsv

    source: Any = path
    if path.startswith(("http://", "https://")):
        from fused import _core

        head = _core.storage_read(path, _storage_config(), 0, 1 << 20)  # the header is in there
        source = io.BytesIO(head[: head.rfind(b"\n") + 1] or head)
    with pcsv.open_csv(source) as reader:
        return reader.schema.names


def _from_frame(df: Any, params: dict) -> Any:
    """Arrow table with WKB geometry (EPSG:4326) from a (Geo)DataFrame."""
    import geopandas as gpd
    import pyarrow as pa

    lonlat = params.get("lonlat_cols")
    if not isinstance(df, gpd.GeoDataFrame) or lonlat:
        if not lonlat:
            raise ValueError("a DataFrame without geometry needs lonlat_cols=(lon, lat)")
        names = list(df.columns)
        cols = _selected_columns(names, params, list(lonlat))
        if cols:
            df = df[cols]
        return pa.Table.from_pandas(df, preserve_index=False)
    names = [c for c in df.columns]
    cols = _selected_columns(names, params, [df.geometry.name])
    if cols:
        df = df[cols]
    if df.crs is not None and not df.crs.equals("EPSG:4326"):
        df = df.to_crs("EPSG:4326")
    if params.get("explode_geometries"):
        df = df.explode(index_parts=False)
    df = df.reset_index(drop=True)
    return pa.table(df.to_arrow(index=False, geometry_encoding="WKB"))


_STREAM_BATCH_ROWS = 16_384  # rows per batch read through GDAL or reprojected in Python


def _to_wgs84(crs: Any) -> Any:
    """A pyproj transformer from `crs` to EPSG:4326 (lon, lat order), or None for WGS84 or an
    unknown CRS (taken as WGS84, as GeoParquet does)."""
    import pyproj

    if crs is None or _crs_is_wgs84(crs):
        return None
    source = pyproj.CRS.from_user_input(json.dumps(crs) if isinstance(crs, dict) else crs)
    if source.equals("EPSG:4326", ignore_axis_order=True) or source.equals("OGC:CRS84"):
        return None
    return pyproj.Transformer.from_crs(source, "EPSG:4326", always_xy=True)


def _stream_geometries(sources: list[tuple[str, Any]], open_batches: Any, params: dict) -> Any:
    """One Arrow stream of every source's batches, with a plain WKB ``geometry`` column,
    reprojected to EPSG:4326 and exploded per batch (never the whole input in memory).

    ``open_batches(source)`` is a context manager giving (schema, geometry column, CRS,
    batch iterator). All sources must have the first one's columns.
    """
    import numpy as np
    import pyarrow as pa
    import shapely

    def plan(source: str) -> tuple[pa.Schema, list[str], str, Any]:
        with open_batches(source) as (schema, geom, crs, _):
            names = [n for n in schema.names if n != geom]
            keep = _selected_columns(names, params, []) or names
            fields = [schema.field(n).remove_metadata() for n in keep] + [pa.field("geometry", pa.binary())]
            if "geometry" in keep:
                raise ValueError(f"{source!r} has a column 'geometry' besides its geometry column {geom!r}")
            return pa.schema(fields), keep, geom, crs

    plans = [plan(src) for src, _ in sources]
    first_schema = plans[0][0]
    for (src, label), (schema, _, _, _) in zip(sources, plans):
        if not schema.equals(first_schema):
            raise ValueError(f"mixed schemas: {label!r} has columns {schema.names} ({schema}), but "
                             f"{sources[0][1]!r} has {first_schema.names} ({first_schema})")

    def reproject(transformer: Any) -> Any:
        def fn(coords: Any) -> Any:
            return np.column_stack(transformer.transform(*coords.T))
        return fn

    def batches() -> Any:
        for (src, _), (_, keep, geom, crs) in zip(sources, plans):
            transformer = _to_wgs84(crs)
            with open_batches(src) as (_, _, _, stream):
                for batch in stream:
                    wkb = batch.column(geom)
                    columns = [batch.column(n) for n in keep]
                    if transformer is not None or params.get("explode_geometries"):
                        geoms = shapely.from_wkb(wkb.to_numpy(zero_copy_only=False))
                        if params.get("explode_geometries"):
                            geoms, index = shapely.get_parts(geoms, return_index=True)
                            columns = [c.take(pa.array(index)) for c in columns]
                        if transformer is not None:
                            has_z = bool(shapely.has_z(geoms).any())
                            geoms = shapely.transform(geoms, reproject(transformer), include_z=has_z)
                        wkb = pa.array(shapely.to_wkb(geoms), pa.binary())
                    elif wkb.type != pa.binary():
                        wkb = wkb.cast(pa.binary())
                    yield pa.RecordBatch.from_arrays(columns + [wkb], schema=first_schema)

    return pa.RecordBatchReader.from_batches(first_schema, batches())


def _gdal_source(path: str) -> str:
    return "zip://" + path if path.lower().endswith(".zip") and "://" not in path else path


def _read_gdal(paths: list[str], params: dict) -> Any:
    """GeoJSON, Shapefile, GeoPackage, KML... streamed through pyogrio's Arrow reader."""
    import contextlib

    from pyogrio.raw import open_arrow

    config = params.get("gdal_config") or {}

    @contextlib.contextmanager
    def open_batches(path: str) -> Any:
        try:
            opened = open_arrow(_gdal_source(path), layer=config.get("layer"), batch_size=_STREAM_BATCH_ROWS,
                                use_pyarrow=True, **(config.get("open_options") or {}))
            meta, reader = opened.__enter__()
        except Exception as exc:  # GDAL's errors are many classes; name the file
            raise ValueError(f"cannot read {path!r} with GDAL: {exc}") from exc
        try:
            geom = meta.get("geometry_name") or "wkb_geometry"
            if geom not in reader.schema.names:
                raise ValueError(f"{path!r} has no geometry (layer {config.get('layer')!r})")
            yield reader.schema, geom, meta.get("crs"), reader
        finally:
            opened.__exit__(None, None, None)

    return _stream_geometries([(p, p) for p in paths], open_batches, params)


def _read_geoparquet(paths: list[str], params: dict) -> Any:
    """GeoParquet files read in batches, reprojected to EPSG:4326 and/or exploded on the way."""
    import contextlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    @contextlib.contextmanager
    def open_batches(path: str) -> Any:
        file = pq.ParquetFile(path)
        try:
            schema = file.schema_arrow
            geo = _parquet_geo(schema) or {}
            geom = geo.get("primary_column", "geometry")
            column = (geo.get("columns") or {}).get(geom, {})
            covering = ((column.get("covering") or {}).get("bbox") or {}).get("xmin", [None])[0]
            names = [n for n in schema.names if n != covering]  # stale once reprojected: recomputed
            yield (pa.schema([schema.field(n) for n in names]), geom, column.get("crs"),
                   file.iter_batches(batch_size=_STREAM_BATCH_ROWS, columns=names))
        finally:
            file.close()

    return _stream_geometries([(p, p) for p in paths], open_batches, params)


def _cast_stream(data: Any, schema: Any) -> Any:
    """`data` (Arrow stream) with the columns named in `schema` cast to its types."""
    import pyarrow as pa

    reader = pa.RecordBatchReader.from_stream(data)
    targets = dict(schema) if isinstance(schema, dict) else {f.name: f.type for f in schema}
    for name in targets:
        if name not in reader.schema.names:
            raise ValueError(f"schema names column {name!r}, which the input lacks ({reader.schema.names})")
    fields = [pa.field(f.name, pa.type_for_alias(targets[f.name]) if isinstance(targets.get(f.name), str)
                       else targets.get(f.name, f.type)) for f in reader.schema]
    out_schema = pa.schema(fields, metadata=reader.schema.metadata)

    def batches():
        for batch in reader:
            try:
                yield batch.cast(out_schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ValueError(f"cannot cast the input to schema: {exc}") from exc

    return pa.RecordBatchReader.from_batches(out_schema, batches())


def _plan(job: IngestJobConfig, workdir: str) -> tuple[Any, list[str], str, list[str], dict]:
    """(arrow input or None, paths, format, columns, extra engine options)."""
    import pyarrow.dataset as ds

    params = job.params
    extra: dict = {}
    lonlat = params.get("lonlat_cols")
    if _is_frame(job.input) or _is_arrow(job.input):
        data = _from_frame(job.input, params) if _is_frame(job.input) else job.input
        return data, [], "", [], extra
    paths = _expand(job.input, params.get("file_suffix"), workdir, keep_urls=params.get("schema") is None)
    kinds = {"parquet" if _suffix(p) in _PARQUET else "csv" if _suffix(p) in _CSV else "gdal" for p in paths}
    if len(kinds) > 1:
        raise ValueError(f"mixed input formats ({sorted(kinds)}): ingest files of one format at a time")
    kind = kinds.pop()
    if kind == "csv" and not lonlat:
        opts = (params.get("gdal_config") or {}).get("open_options") or {}
        x, y = opts.get("X_POSSIBLE_NAMES"), opts.get("Y_POSSIBLE_NAMES")
        if x and y:
            lonlat = [x.split(",")[0], y.split(",")[0]]
            extra.update(lon_column=lonlat[0], lat_column=lonlat[1])
        else:
            raise ValueError("CSV input needs lonlat_cols=(lon, lat) (or gdal_config open_options "
                             "X_POSSIBLE_NAMES / Y_POSSIBLE_NAMES)")
    if kind == "gdal":
        return _read_gdal(paths, params), [], "", [], extra
    if kind == "parquet":
        schema = _parquet_schema(paths[0]) if "://" not in paths[0] else None
        geo = _parquet_geo(schema) if schema is not None else None
        crs = geo["columns"].get(geo["primary_column"], {}).get("crs") if geo else None
        if (geo and not _crs_is_wgs84(crs)) or (geo and params.get("explode_geometries")):
            return _read_geoparquet(paths, params), [], "", [], extra
        names = schema.names if schema is not None else []
        keep = list(lonlat or []) + ([geo["primary_column"]] if geo else ["geometry"])
        columns = _selected_columns(names, params, keep) if names else list(params.get("load_columns") or [])
    else:
        columns = _selected_columns(_csv_header(paths[0]), params, list(lonlat or []))
    if params.get("schema") is not None:
        dataset = ds.dataset(paths, format=kind)
        scanner = dataset.scanner(columns=columns or None)
        return _cast_stream(scanner.to_reader(), params["schema"]), [], "", [], extra
    return None, paths, kind, columns, extra


def _engine_options(job: IngestJobConfig, extra: dict, spill_dir: str | None,
                    memory_budget: int | None = None) -> dict:
    import pyproj

    params = job.params
    options = {engine: params[name] for name, engine in _ENGINE_NAMES.items() if params.get(name) is not None}
    if "force_utm" not in options:
        options["force_utm"] = None
    lonlat = params.get("lonlat_cols")
    if lonlat:
        options["lon_column"], options["lat_column"] = lonlat
    options.update(extra)
    if params.get("partitioning_schema_input"):
        options["partitioning_schema_input"] = normalize_path(params["partitioning_schema_input"])
    if spill_dir:
        options["spill_dir"] = spill_dir
    if memory_budget is not None:
        if isinstance(memory_budget, bool) or not isinstance(memory_budget, int) or memory_budget <= 0:
            raise ValueError(f"memory_budget must be a positive number of bytes, got {memory_budget!r}")
        options["memory_budget"] = memory_budget
    options["crs_projjson"] = pyproj.CRS("EPSG:4326").to_json()
    return options


_LOG_LINE_SECONDS = 2.0  # progress lines when stderr is not a terminal


class _ProgressBar:
    """One stderr line, redrawn: rows done, total (when known), rows/s."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.start = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.last_line = 0.0

    def draw(self, progress: Any, final: bool = False) -> None:
        if not self.enabled:
            return
        read, total, written = progress.rows_read, progress.rows_total, progress.rows_written
        elapsed = max(time.monotonic() - self.start, 1e-9)
        if total > 0:
            frac = min(read / total, 1.0)
            bar = "#" * int(frac * 30)
            text = f"ingest [{bar:<30}] {read:,}/{total:,} rows"
        else:
            text = f"ingest {read:,} rows"
        text += f", {read / elapsed:,.0f} rows/s"
        if written:
            text += f", written {written:,}"
        if self.tty:
            sys.stderr.write("\r" + text + ("\n" if final else ""))
        elif final or time.monotonic() - self.last_line >= _LOG_LINE_SECONDS:
            sys.stderr.write(text + "\n")  # a log (a job's, a file): whole lines, now and then
            self.last_line = time.monotonic()
        sys.stderr.flush()


def _run_ingest(job: IngestJobConfig, *, show_progress: bool, spill_dir: str | None,
                memory_budget: int | None = None) -> dict:
    from fused import _core

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="terrafuse-ingest-input-") as workdir:
        data, paths, fmt, columns, extra = _plan(job, workdir)
        options = _engine_options(job, extra, spill_dir, memory_budget)
        output = normalize_path(job.output)
        progress = _core.ingest.IngestProgress()
        storage = _storage_config()  # read here: the secrets and options of the calling thread
        outcome: dict = {}

        def work() -> None:
            try:
                outcome["result"] = _core.ingest.ingest(data, paths, fmt, columns, output, options,
                                                        storage, progress)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                outcome["error"] = exc

        bar = _ProgressBar(show_progress)
        thread = threading.Thread(target=work, name="terrafuse-ingest", daemon=True)
        thread.start()
        try:
            while thread.is_alive():
                thread.join(0.25)
                bar.draw(progress)
        except KeyboardInterrupt:
            progress.cancel()
            thread.join()
            raise
        bar.draw(progress, final=True)
    if "error" in outcome:
        raise outcome["error"]
    result = dict(outcome["result"])
    result["seconds"] = round(time.monotonic() - started, 3)
    result["output"] = job.output
    if result["rows_dropped"] and show_progress:
        sys.stderr.write(f"ingest: dropped {result['rows_dropped']:,} rows outside WGS84 bounds\n")
    return result


def _run_nongeospatial(job: IngestJobConfig) -> dict:
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    started = time.monotonic()
    params = job.params
    if _is_frame(job.input):
        table = pa.Table.from_pandas(job.input, preserve_index=False)
    elif _is_arrow(job.input):
        table = pa.table(job.input)
    else:
        with tempfile.TemporaryDirectory() as workdir:
            paths = _expand(job.input, None, workdir)
            fmt = "csv" if _suffix(paths[0]) in _CSV else "parquet"
            table = ds.dataset(paths, format=fmt).to_table()
    if params.get("partition_col"):
        col = params["partition_col"]
        if col not in table.column_names:
            raise ValueError(f"partition_col {col!r} not found; the input has {table.column_names}")
        table = table.sort_by(col)
    chunk = params.get("partitioning_maximum_per_chunk") or max(1, -(-table.num_rows // 100))
    output = _local_fd_path(normalize_path(job.output))
    if "://" not in output:
        if os.path.exists(output) and not params.get("overwrite"):
            raise FileExistsError(f"ingest output {job.output!r} exists; pass overwrite=True to replace it")
        os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
        tmp = f"{output}.tmp-{os.getpid()}"
        pq.write_table(table, tmp, row_group_size=int(chunk), compression="zstd")
        os.replace(tmp, output)
    else:
        pq.write_table(table, output, row_group_size=int(chunk), compression="zstd")
    return {"num_rows": table.num_rows, "num_files": 1, "num_chunks": -(-table.num_rows // int(chunk)),
            "rows_dropped": 0, "seconds": round(time.monotonic() - started, 3), "output": job.output}


def _register_job_kinds() -> None:
    from fused._jobs import register_job_kind

    for kind in ("ingest", "ingest_nongeospatial"):
        register_job_kind(kind, _run_job_task)


_register_job_kinds()

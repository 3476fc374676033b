"""fused.ingest end to end: real files in, the Fused table layout out, read back by peers."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import time
import zipfile

import fused
import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import shapely
from fused._errors import AlreadyExistsError, InvalidArgumentError


def _ingest(inp, out, **kw):
    kw.setdefault("partitioning_force_utm", None)
    return fused.ingest(inp, str(out), **kw).run_local(show_progress=False)


def _brute_force(df, b):
    m = (df.LON >= b[0]) & (df.LON <= b[2]) & (df.LAT >= b[1]) & (df.LAT <= b[3])
    return set(df.id[m])


def test_layout_matches_the_table_format(points_parquet, tmp_path):
    src, _df = points_parquet
    out = tmp_path / "table"
    result = _ingest(src, out, lonlat_cols=("LON", "LAT"), partitioning_maximum_per_file=8000,
                     partitioning_maximum_per_chunk=1000, partitioning_split_method="median")
    assert result["num_rows"] == 20_000
    # 3 files of ~6,667 rows, each cut into 7 chunks of at most 1,000
    assert result["num_files"] == 3 and result["num_chunks"] == 21
    files = sorted(p.name for p in out.iterdir())
    assert files == ["0.parquet", "1.parquet", "2.parquet", "_sample"]

    sample = pq.ParquetFile(out / "_sample")
    kv = sample.metadata.metadata
    assert kv[b"fused:format_version"] == b"5"
    chunks = pq.read_table(io.BytesIO(base64.decodebytes(kv[b"fused:_metadata"]))).to_pandas()
    assert list(chunks.columns[:6]) == ["file_id", "chunk_id", "bbox_minx", "bbox_miny", "bbox_maxx", "bbox_maxy"]
    assert chunks.num_rows.sum() == 20_000

    for file_id, group in chunks.groupby("file_id"):
        pf = pq.ParquetFile(out / f"{file_id}.parquet")
        assert pf.metadata.num_row_groups == len(group)  # one row group per chunk
        geo = json.loads(pf.metadata.metadata[b"geo"])
        assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
        col = geo["columns"]["geometry"]
        assert col["encoding"] == "WKB" and col["geometry_types"] == ["Point"]
        assert col["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
        assert pf.schema_arrow.field("bbox").type == pa.struct([(k, pa.float32()) for k in ("xmin", "ymin", "xmax", "ymax")])
        assert col["crs"]["id"] == {"authority": "EPSG", "code": 4326}
        for _, row in group.iterrows():
            rg = pf.metadata.row_group(int(row.chunk_id))
            assert rg.num_rows == row.num_rows <= 1000
            assert rg.column(0).compression == "ZSTD"  # the default codec, as Fused writes
            # Floats split into byte streams, 64-bit integers as deltas (faster to decode)
            encodings = {rg.column(i).path_in_schema: rg.column(i).encodings for i in range(rg.num_columns)}
            for leaf in ("LON", "LAT", "speed", "bbox.xmin", "bbox.ymin", "bbox.xmax", "bbox.ymax"):
                assert "BYTE_STREAM_SPLIT" in encodings[leaf], (leaf, encodings[leaf])
            assert "DELTA_BINARY_PACKED" in encodings["id"]
            # The chunk box is exactly the rows' extent.
            t = pf.read_row_group(int(row.chunk_id), columns=["LON", "LAT", "bbox"]).to_pandas()
            assert (t.LON.min(), t.LAT.max()) == (row.bbox_minx, row.bbox_maxy)
            # float32 covering boxes, rounded outward: they contain their point
            box = pd.DataFrame(list(t.bbox))
            assert ((box.xmin <= t.LON) & (t.LON <= box.xmax) & (box.ymin <= t.LAT) & (t.LAT <= box.ymax)).all()
            assert (box.xmax - box.xmin).max() < 1e-4
        assert geo["columns"]["geometry"]["bbox"][0] == group.bbox_minx.min()


def test_numbers_whose_values_repeat_get_a_dictionary(tmp_path, make_points):
    # The first 8,192 rows tell: a speed rounded to 0.1 (300 values) and a small int64 code
    # repeat, so they are dictionary-encoded; continuous values keep their split/delta
    # encoding. The choice does not depend on the batch size (memory budget).
    df = make_points(15_000, seed=8)  # at most 16,384 rows: exact cuts at both budgets
    rng = np.random.default_rng(8)
    df["speed"] = rng.uniform(0, 30, len(df)).round(1)
    df["code"] = rng.integers(0, 50, len(df)).astype(np.int64)
    src = tmp_path / "p.parquet"
    df.to_parquet(src, index=False)
    tables = []
    for name, budget in (("big", None), ("small", 1 << 20)):
        out = tmp_path / name
        fused.ingest(str(src), str(out), lonlat_cols=("LON", "LAT"), target_num_chunks=4,
                     partitioning_force_utm=None).run_local(show_progress=False, memory_budget=budget)
        tables.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert tables[0] == tables[1]
    rg = pq.ParquetFile(tmp_path / "big" / "0.parquet").metadata.row_group(0)
    encodings = {rg.column(i).path_in_schema: rg.column(i).encodings for i in range(rg.num_columns)}
    assert "RLE_DICTIONARY" in encodings["speed"] and "RLE_DICTIONARY" in encodings["code"]
    assert "BYTE_STREAM_SPLIT" in encodings["LON"] and "DELTA_BINARY_PACKED" in encodings["id"]
    back = pq.read_table(tmp_path / "big", columns=["id", "speed", "code"]).to_pandas().sort_values("id")
    np.testing.assert_array_equal(back.speed.to_numpy(), df.speed.to_numpy())
    np.testing.assert_array_equal(back.code.to_numpy(), df.code.to_numpy())
    b = (2.0, 48.5, 2.6, 49.0)
    got = fused.read_table(str(tmp_path / "big"), b, as_arrow=True).to_pandas().set_index("id").sort_index()
    assert set(got.index) == _brute_force(df, b)
    np.testing.assert_array_equal(got.speed.to_numpy(), df.set_index("id").loc[got.index].speed.to_numpy())


def test_peers_read_the_output_unchanged(points_parquet, tmp_path):
    src, df = points_parquet
    out = tmp_path / "table"
    _ingest(src, out, lonlat_cols=("LON", "LAT"), target_num_chunks=10)
    # GeoPandas
    gdf = gpd.read_parquet(out / "0.parquet")
    assert gdf.crs.to_epsg() == 4326
    assert gdf.geometry.geom_type.unique().tolist() == ["Point"]
    np.testing.assert_array_equal(gdf.geometry.x.to_numpy(), gdf.LON.to_numpy())
    # pyarrow, the whole directory as a dataset of the data files
    import pyarrow.dataset as ds

    data = ds.dataset([str(p) for p in sorted(out.glob("*.parquet"))]).to_table()
    assert data.num_rows == 20_000 and sorted(data.column("id").to_pylist()) == list(range(20_000))
    # DuckDB: all rows, and a bbox-covering filter
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    # every value of the byte-split floats and delta-coded integers, as written
    back = con.execute(f"select id, LON, LAT, speed from read_parquet('{out}/*.parquet') order by id").df()
    pd.testing.assert_frame_equal(back, df[["id", "LON", "LAT", "speed"]], check_dtype=True)
    b = (2.0, 48.5, 2.6, 49.0)
    got = con.execute(
        f"select id from read_parquet('{out}/*.parquet') where bbox.xmin >= {b[0]} and bbox.xmax <= {b[2]} "
        f"and bbox.ymin >= {b[1]} and bbox.ymax <= {b[3]}").fetchall()
    assert {r[0] for r in got} == _brute_force(df, b)


# pyarrow names Parquet's LZ4_RAW "LZ4" (the Hadoop framing would be "LZ4_HADOOP").
@pytest.mark.parametrize("codec, parquet_name", [("zstd", "ZSTD"), ("lz4", "LZ4"), ("snappy", "SNAPPY"),
                                                 ("gzip", "GZIP"), (None, "UNCOMPRESSED")])
def test_codec_choice_is_written_and_read_back_by_everyone(points_parquet, tmp_path, codec, parquet_name):
    src, df = points_parquet
    out = tmp_path / "table"
    _ingest(src, out, lonlat_cols=("LON", "LAT"), target_num_chunks=8, compression=codec)
    files = sorted(out.glob("*.parquet")) + [out / "_sample"]
    for f in files:
        md = pq.ParquetFile(f).metadata
        assert {md.row_group(0).column(i).compression for i in range(md.num_columns)} == {parquet_name}
    b = (2.0, 48.5, 2.6, 49.0)
    assert set(fused.read_table(str(out), b).id) == _brute_force(df, b)
    gdf = gpd.read_parquet(out / "0.parquet")
    np.testing.assert_array_equal(gdf.geometry.x.to_numpy(), gdf.LON.to_numpy())
    import pyarrow.dataset as ds

    assert ds.dataset([str(p) for p in files[:-1]]).count_rows() == 20_000
    duckdb = pytest.importorskip("duckdb")
    got = duckdb.connect().execute(
        f"select id from read_parquet('{out}/*.parquet') where bbox.xmin >= {b[0]} and bbox.xmax <= {b[2]} "
        f"and bbox.ymin >= {b[1]} and bbox.ymax <= {b[3]}").fetchall()
    assert {r[0] for r in got} == _brute_force(df, b)


def test_bad_codec_options_are_named(points_parquet, tmp_path):
    src, _ = points_parquet
    cases = [({"compression": "brotli"}, "compression must be 'zstd', 'lz4', 'snappy', 'gzip' or None, got 'brotli'"),
             ({"compression": 3}, "compression must be a codec name or None, got 3"),
             ({"compression": "lz4", "compression_level": 5}, "compression_level applies to zstd and gzip, not to 'lz4'"),
             ({"compression": "zstd", "compression_level": 23}, "compression_level of zstd must be 1..22, got 23"),
             ({"compression_level": 0}, "compression_level of zstd must be 1..22, got 0"),
             ({"compression": "gzip", "compression_level": 10}, "compression_level of gzip must be 1..9, got 10")]
    for kw, message in cases:
        with pytest.raises((InvalidArgumentError, ValueError), match=re.escape(message)):
            _ingest(src, tmp_path / "t", lonlat_cols=("LON", "LAT"), **kw)
        assert not (tmp_path / "t").exists()


def test_jobs_saved_before_the_codec_option_still_run_with_zstd(points_parquet, tmp_path):
    # Their params carry compression_level (3, the old default) and no codec: zstd, as then.
    src, _ = points_parquet
    job = fused.ingest(str(src), str(tmp_path / "t"), lonlat_cols=("LON", "LAT")).to_dict()
    del job["params"]["compression"]
    job["params"]["compression_level"] = 3
    fused._ingest.IngestJobConfig.from_dict(job).run_local(show_progress=False)
    assert pq.ParquetFile(tmp_path / "t" / "0.parquet").metadata.row_group(0).column(0).compression == "ZSTD"


def test_zstd_level_is_applied(points_parquet, tmp_path):
    # A higher level gives a smaller table: the level reaches the writer.
    src, _ = points_parquet
    sizes = []
    for level in (1, 19):
        out = tmp_path / f"l{level}"
        _ingest(src, out, lonlat_cols=("LON", "LAT"), target_num_chunks=4, compression="zstd", compression_level=level)
        sizes.append(sum(p.stat().st_size for p in out.iterdir()))
    assert sizes[1] < sizes[0]


def test_readers_and_catalog_helper_logic(points_parquet, tmp_path):
    src, df = points_parquet
    out = tmp_path / "table"
    _ingest(src, out, lonlat_cols=("LON", "LAT"), target_num_chunks=40, partitioning_split_method="median")
    meta = fused.get_chunks_metadata(str(out) + "/")
    assert len(meta) == 40 and meta.crs.to_epsg() == 4326
    assert (meta.geometry.geom_type == "Polygon").all()
    one = fused.get_chunk_from_table(str(out), meta.file_id[0], meta.chunk_id[0], columns=["speed"])
    assert list(one.columns) == ["speed", "geometry"] and len(one) == meta.num_rows[0]
    assert one.crs.to_epsg() == 4326

    # What the public catalog's table_to_tile does: intersect, read chunks, filter rows.
    b = (-122.5, 37.7, -122.3, 37.9)
    tile = shapely.box(*b)
    hits = meta[meta.intersects(tile)]
    rows = pd.concat([fused.get_chunk_from_table(str(out), f, c, columns=["id"])
                      for f, c in hits[["file_id", "chunk_id"]].values])
    rows = rows[rows.intersects(tile)]
    assert set(rows.id) == _brute_force(df, b)
    assert len(hits) < len(meta)

    # The built-in bounds reader gives the same rows, reading only the matching chunks.
    got = fused.read_table(str(out), b, columns=["id"])
    assert set(got.id) == _brute_force(df, b)
    assert list(got.columns) == ["id", "geometry"]
    _, stats = fused._table.read_table_arrow(str(out), b)
    assert stats["chunks_read"] == len(hits)
    # Empty result keeps the schema.
    empty = fused.read_table(str(out), (0, -80, 1, -79))
    assert len(empty) == 0 and "speed" in empty.columns
    # The engine's Arrow result: the same rows, WKB geometry, no shapely objects.
    arrow = fused.read_table(str(out), b, columns=["id"], as_arrow=True)
    assert isinstance(arrow, pa.Table) and arrow.column_names == ["id", "geometry"]
    assert set(arrow.column("id").to_pylist()) == _brute_force(df, b)
    assert shapely.intersects(shapely.from_wkb(arrow.column("geometry").to_numpy(zero_copy_only=False)), tile).all()
    with pytest.raises(TypeError, match="as_arrow must be True or False"):
        fused.read_table(str(out), b, as_arrow="yes")


def test_catalog_utils_names(points_parquet, tmp_path):
    src, _ = points_parquet
    out = tmp_path / "t"
    _ingest(src, out, lonlat_cols=("LON", "LAT"))
    from fused import utils

    assert len(utils.get_chunks_metadata(str(out))) == len(fused.get_chunks_metadata(str(out)))


def test_output_is_deterministic(points_parquet, tmp_path):
    src, _ = points_parquet
    a, b = tmp_path / "a", tmp_path / "b"
    _ingest(src, a, lonlat_cols=("LON", "LAT"), target_num_chunks=13)
    _ingest(src, b, lonlat_cols=("LON", "LAT"), target_num_chunks=13)
    for p in a.iterdir():
        assert p.read_bytes() == (b / p.name).read_bytes(), p.name


def test_every_column_type_survives_the_reordering(tmp_path, make_points):
    # The writer gathers each chunk's rows in Hilbert order with its own copy loop for
    # fixed-width and binary columns without nulls, and Arrow's Take for the rest: every
    # value must come out with its row, whatever the type, nulls included.
    df = make_points(6_000, seed=5)
    n = len(df)
    rng = np.random.default_rng(5)
    table = pa.table({
        "id": pa.array(df.id), "LON": pa.array(df.LON), "LAT": pa.array(df.LAT),
        "i8": pa.array(rng.integers(-100, 100, n), pa.int8()),
        "u16": pa.array(rng.integers(0, 60_000, n), pa.uint16()),
        "f32": pa.array(rng.uniform(0, 1, n), pa.float32()),
        "flag": pa.array(rng.uniform(0, 1, n) < 0.5),
        "ts": pa.array(rng.integers(0, 10**12, n), pa.timestamp("ms")),
        "name": pa.array(df.name),
        "maybe": pa.array([None if i % 7 == 0 else f"s{i}" for i in range(n)]),
        "nullable_f64": pa.array([None if i % 5 == 0 else float(i) for i in range(n)]),
        "tags": pa.array([[i, i + 1] if i % 3 else [] for i in range(n)]),
        "fixed": pa.array([i.to_bytes(4, "little") for i in range(n)], pa.binary(4)),
    })
    src, out = tmp_path / "types.parquet", tmp_path / "t"
    pq.write_table(table, src)
    _ingest(src, out, lonlat_cols=("LON", "LAT"), partitioning_maximum_per_chunk=700)
    got = pq.read_table(out).sort_by("id")
    for name in table.column_names:
        assert got[name].combine_chunks().equals(table[name].combine_chunks()), name
    # The bounds reader gathers the hits of each page with its own loop for fixed-width
    # columns without nulls, and Arrow's Take for the rest: each value stays with its row.
    b = (df.LON.quantile(0.2), df.LAT.quantile(0.2), df.LON.quantile(0.7), df.LAT.quantile(0.7))
    hits, _ = fused._table.read_table_arrow(str(out), b)
    hits = hits.sort_by("id")
    inside = (df.LON >= b[0]) & (df.LON <= b[2]) & (df.LAT >= b[1]) & (df.LAT <= b[3])
    assert 0 < hits.num_rows == inside.sum() < n
    expected = table.take(pa.array(np.flatnonzero(inside.to_numpy()))).sort_by("id")
    for name in table.column_names:
        assert hits[name].combine_chunks().equals(expected[name].combine_chunks()), name


def test_polygons_exact_bounds_filter_and_methods(polygons_gdf, tmp_path):
    src = tmp_path / "polys.parquet"
    polygons_gdf.to_parquet(src)
    for method in ("rows", "area", "length", "coords"):
        out = tmp_path / method
        r = _ingest(src, out, partitioning_method=method, partitioning_maximum_per_chunk=None)
        assert r["num_rows"] == 600, method
        assert r["num_chunks"] >= 50, method  # 1/100 of the total per chunk
    meta = fused.get_chunks_metadata(str(tmp_path / "area"))
    # Under "area", chunk areas are balanced, not row counts.
    areas = []
    for f, c in meta[["file_id", "chunk_id"]].values:
        areas.append(shapely.area(fused.get_chunk_from_table(str(tmp_path / "area"), f, c).geometry.values).sum())
    total = shapely.area(polygons_gdf.geometry.values)
    assert max(areas) <= total.sum() / 100 + total.max()
    b = (0.0, 44.0, 2.0, 46.0)
    got = fused.read_table(str(tmp_path / "rows"), b)
    expected = polygons_gdf[polygons_gdf.intersects(shapely.box(*b))]
    assert set(got.pid) == set(expected.pid)
    assert set(got.columns) == {"pid", "kind", "geometry"}


def test_subdivide_splits_big_polygons(tmp_path):
    gdf = gpd.GeoDataFrame({"name": ["big", "small"]},
                           geometry=[shapely.box(0, 0, 2, 2), shapely.box(5, 5, 5.1, 5.1)], crs=4326)
    out = tmp_path / "t"
    r = _ingest(gdf, out, subdivide_method="area", subdivide_start=0.5, subdivide_stop=0.25)
    assert r["num_rows"] == 16 + 1
    back = pd.concat([fused.get_chunk_from_table(str(out), f, c)
                      for f, c in fused.get_chunks_metadata(str(out))[["file_id", "chunk_id"]].values])
    areas = shapely.area(back.geometry.values)
    assert areas[(back.name == "big").to_numpy()].sum() == pytest.approx(4.0)
    assert (areas <= 0.25 + 1e-12).all()


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp.zip", "geoparquet", "frame"])
def test_other_inputs(fmt, polygons_gdf, tmp_path):
    gdf = polygons_gdf.head(200)
    if fmt == "frame":
        src = gdf
    elif fmt == "shp.zip":
        shp_dir = tmp_path / "shp"
        shp_dir.mkdir()
        gdf.to_file(shp_dir / "polys.shp")
        src = tmp_path / "polys.zip"
        with zipfile.ZipFile(src, "w") as z:
            for p in shp_dir.iterdir():
                z.write(p, p.name)
    elif fmt == "geoparquet":
        src = tmp_path / "polys.parquet"
        gdf.to_crs(3857).to_parquet(src)  # projected: reprojected to 4326 on the way in
    else:
        src = tmp_path / f"polys.{fmt}"
        gdf.to_file(src)
    out = tmp_path / "t"
    assert _ingest(src, out)["num_rows"] == 200
    back = fused.read_table(str(out), (-180, -90, 180, 90))
    assert sorted(back.pid) == sorted(gdf.pid)
    merged = back.merge(gdf[["pid", "geometry"]], on="pid")
    assert np.allclose(shapely.area(merged.geometry_x.values), shapely.area(merged.geometry_y.values), rtol=1e-6)


def test_csv_lists_and_directories(tmp_path, make_points):
    df = make_points(3000, seed=2)
    d = tmp_path / "parts"
    d.mkdir()
    for i in range(3):
        df.iloc[i * 1000:(i + 1) * 1000].to_csv(d / f"part{i}.csv", index=False)
    (d / "notes.txt.bak").write_text("ignored")
    out = tmp_path / "t"
    r = _ingest(str(d), out, file_suffix=".csv", lonlat_cols=("LON", "LAT"), remove_cols=["name"])
    assert r["num_rows"] == 3000
    back = fused.read_table(str(out), (-180, -90, 180, 90))
    assert "name" not in back.columns and sorted(back.id) == list(range(3000))
    # gdal_config open options name the columns, as in Fused
    r = _ingest([str(d / "part0.csv"), str(d / "part1.csv")], tmp_path / "t2",
                gdal_config={"open_options": {"X_POSSIBLE_NAMES": "LON", "Y_POSSIBLE_NAMES": "LAT"}},
                load_columns=["id", "LON", "LAT"])
    assert r["num_rows"] == 2000
    assert set(fused.read_table(str(tmp_path / "t2"), (-180, -90, 180, 90)).columns) == {"id", "LON", "LAT", "geometry"}


def test_explode_and_schema(tmp_path, make_points):
    multi = shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(3, 3, 4, 4)])
    gdf = gpd.GeoDataFrame({"v": [1, 2]}, geometry=[multi, shapely.box(8, 8, 9, 9)], crs=4326)
    src = tmp_path / "m.parquet"
    gdf.to_parquet(src)
    r = _ingest(src, tmp_path / "t", explode_geometries=True)
    assert r["num_rows"] == 3
    df = make_points(100)
    pts = tmp_path / "p.parquet"
    df.to_parquet(pts, index=False)
    _ingest(pts, tmp_path / "s", lonlat_cols=("LON", "LAT"), schema=pa.schema([("speed", pa.float32())]))
    back = pq.read_table(tmp_path / "s" / "0.parquet")
    assert back.schema.field("speed").type == pa.float32()


def test_partitioning_schema_input_reuses_boxes(tmp_path, make_points):
    a, b = make_points(5000, seed=3), make_points(5000, seed=4)
    pa_, pb = tmp_path / "a.parquet", tmp_path / "b.parquet"
    a.to_parquet(pa_, index=False)
    b.to_parquet(pb, index=False)
    _ingest(pa_, tmp_path / "day1", lonlat_cols=("LON", "LAT"), target_num_chunks=16,
            partitioning_split_method="median")
    boxes = tmp_path / "boxes.parquet"
    fused.get_chunks_metadata(str(tmp_path / "day1")).to_parquet(boxes)
    _ingest(pb, tmp_path / "day2", lonlat_cols=("LON", "LAT"), partitioning_schema_input=str(boxes))
    m1 = fused.get_chunks_metadata(str(tmp_path / "day1"))
    m2 = fused.get_chunks_metadata(str(tmp_path / "day2"))
    assert len(m2) <= len(m1) and m2.num_rows.sum() == 5000
    # Day-2 chunks sit inside (or next to) the day-1 boxes they were assigned to.
    assert m2.union_all().intersects(m1.union_all())


def test_job_config_serialises_and_runs(points_parquet, tmp_path):
    src, _ = points_parquet
    job = fused.ingest(str(src), str(tmp_path / "t"), lonlat_cols=("LON", "LAT"), target_num_chunks=5)
    d = job.to_dict()
    assert d["kind"] == "ingest" and json.loads(json.dumps(d)) == d
    again = fused.IngestJobConfig.from_dict(d)
    assert again.run_local(show_progress=False)["num_rows"] == 20_000
    with pytest.raises(ValueError, match="in-memory input"):
        fused.ingest(pd.DataFrame({"LON": [0.0], "LAT": [0.0]}), "x", lonlat_cols=("LON", "LAT")).to_dict()


def test_progress_bar_shows_rows_per_second(points_parquet, tmp_path, capsys):
    src, _ = points_parquet
    fused.ingest(str(src), str(tmp_path / "t"), lonlat_cols=("LON", "LAT")).run_local()
    err = capsys.readouterr().err
    assert "20,000/20,000 rows" in err and "rows/s" in err


def test_ingest_nongeospatial(tmp_path):
    df = pd.DataFrame({"k": np.arange(1000)[::-1], "v": np.arange(1000) * 2.0})
    out = tmp_path / "plain.parquet"
    r = fused.ingest_nongeospatial(df, str(out), partition_col="k",
                                   partitioning_maximum_per_chunk=300).run_local()
    assert r["num_chunks"] == 4
    pf = pq.ParquetFile(out)
    assert pf.metadata.num_row_groups == 4
    assert pf.read().column("k").to_pylist() == list(range(1000))
    with pytest.raises(FileExistsError):
        fused.ingest_nongeospatial(df, str(out)).run_local()


# --- bad input ---------------------------------------------------------------------------

def test_unreadable_file(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not a parquet file at all")
    with pytest.raises(InvalidArgumentError, match="bad.parquet' is not a readable Parquet file"):
        _ingest(bad, tmp_path / "t", lonlat_cols=("x", "y"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _ingest(tmp_path / "missing.parquet", tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_missing_lonlat_cols(points_parquet, tmp_path, make_points):
    src, _ = points_parquet
    with pytest.raises(ValueError, match="'lng' .*not found"):
        _ingest(src, tmp_path / "t", lonlat_cols=("lng", "LAT"))
    csv = tmp_path / "p.csv"
    make_points(10).to_csv(csv, index=False)
    with pytest.raises(ValueError, match="CSV input needs lonlat_cols"):
        _ingest(csv, tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_invalid_geometry_names_the_row(tmp_path):
    good = shapely.to_wkb(shapely.points([0, 1], [0, 1]))
    table = pa.table({"geometry": pa.array(list(good) + [b"\x01\x03\x00\x00\x00garbage"], pa.binary())})
    with pytest.raises(InvalidArgumentError, match="row 2: invalid WKB"):
        _ingest(table, tmp_path / "t")
    table = pa.table({"geometry": pa.array([good[0], None], pa.binary())})
    with pytest.raises(InvalidArgumentError, match="row 1: the geometry is null"):
        _ingest(table, tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_mixed_schemas(tmp_path, make_points):
    a = make_points(10)
    b = make_points(10).rename(columns={"speed": "velocity"})
    a.to_parquet(tmp_path / "a.parquet", index=False)
    b.to_parquet(tmp_path / "b.parquet", index=False)
    with pytest.raises(InvalidArgumentError, match="mixed schemas: .*b.parquet"):
        _ingest([tmp_path / "a.parquet", tmp_path / "b.parquet"], tmp_path / "t", lonlat_cols=("LON", "LAT"))
    assert not (tmp_path / "t").exists()


def test_out_of_bounds_dropped_by_default_or_an_error(tmp_path, make_points):
    df = make_points(100)
    df.loc[5, "LAT"] = 95.0
    df.loc[7, "LON"] = 500000.0  # projected coordinates by mistake
    src = tmp_path / "p.parquet"
    df.to_parquet(src, index=False)
    r = _ingest(src, tmp_path / "t", lonlat_cols=("LON", "LAT"))
    assert r["rows_dropped"] == 2 and r["num_rows"] == 98
    with pytest.raises(InvalidArgumentError, match="row 5: coordinates outside WGS84 bounds"):
        _ingest(src, tmp_path / "u", lonlat_cols=("LON", "LAT"), drop_out_of_bounds=False)
    assert not (tmp_path / "u").exists()


def test_overwrite_is_explicit_and_atomic(points_parquet, tmp_path):
    src, _ = points_parquet
    out = tmp_path / "t"
    _ingest(src, out, lonlat_cols=("LON", "LAT"))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(AlreadyExistsError, match="overwrite=True"):
        _ingest(src, out, lonlat_cols=("LON", "LAT"))
    # A failing overwrite leaves the old table as it was.
    with pytest.raises(ValueError):
        _ingest(src, out, lonlat_cols=("nope", "LAT"), overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    _ingest(src, out, lonlat_cols=("LON", "LAT"), overwrite=True, target_num_chunks=3,
            partitioning_split_method="median")
    assert len(fused.get_chunks_metadata(str(out))) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["points.parquet", "t"]  # no temp left


def test_reads_never_use_the_parsed_footers_of_a_table_written_over(tmp_path):
    # read_table keeps the parsed footers and chunk metadata of files settled for 10 s; a
    # table written again at the same path must be read anew.
    out = tmp_path / "t"
    bounds = (-180, -90, 180, 90)

    def write(value: int, age: float) -> None:
        df = pd.DataFrame({"LON": np.linspace(-10, 10, 500), "LAT": np.linspace(-5, 5, 500),
                           "v": np.full(500, value, dtype=np.int64)})
        src = tmp_path / f"src{value}.parquet"
        df.to_parquet(src, index=False)
        _ingest(src, out, lonlat_cols=("LON", "LAT"), overwrite=True, target_num_chunks=4)
        settled = time.time() - age
        for p in out.iterdir():
            os.utime(p, (settled, settled))

    write(1, age=60)
    for _ in range(2):  # the second read uses what the first parsed
        assert set(fused.read_table(str(out), bounds)["v"]) == {1}
    write(2, age=30)
    assert set(fused.read_table(str(out), bounds)["v"]) == {2}
    assert fused._table.read_table_arrow(str(out), bounds)[0].num_rows == 500


@pytest.mark.parametrize("kwargs, message", [
    ({"partitioning_method": "volume"}, "partitioning_method must be one of"),
    ({"partitioning_split_method": "mode"}, "partitioning_split_method must be one of"),
    ({"partitioning_force_utm": "zone"}, "partitioning_force_utm must be one of"),
    ({"lonlat_cols": "LON"}, "lonlat_cols must be a pair"),
    ({"subdivide_method": "area"}, "needs subdivide_start"),
    ({"target_num_chunks": 0}, "target_num_chunks must be > 0"),
])
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fused.ingest("x.parquet", "out", **kwargs)


def test_bad_engine_parameters(points_parquet, tmp_path):
    src, _ = points_parquet
    with pytest.raises(InvalidArgumentError, match="partitioning_maximum_per_chunk must be > 0"):
        _ingest(src, tmp_path / "t", lonlat_cols=("LON", "LAT"), partitioning_maximum_per_chunk=-5)
    with pytest.raises(InvalidArgumentError, match="needs geometries with a positive area"):
        _ingest(src, tmp_path / "t", lonlat_cols=("LON", "LAT"), partitioning_method="area")


def test_readers_errors(tmp_path):
    with pytest.raises(fused.NotFoundError, match="_sample' does not exist"):
        fused.get_chunks_metadata(str(tmp_path / "nothing"))
    (tmp_path / "odd" / "_sample").mkdir(parents=True)
    with pytest.raises(OSError, match="_sample': not a file"):
        fused.get_chunks_metadata(str(tmp_path / "odd"))
    (tmp_path / "plain").mkdir()
    pq.write_table(pa.table({"a": [1]}), tmp_path / "plain" / "_sample")
    with pytest.raises(InvalidArgumentError, match="no Fused metadata"):
        fused.get_chunks_metadata(str(tmp_path / "plain"))
    with pytest.raises(ValueError, match="bounds must have 4 numbers"):
        fused.read_table(str(tmp_path / "plain"), (1, 2, 3))


def test_empty_input_gives_an_empty_table(tmp_path, make_points):
    src = tmp_path / "empty.parquet"
    make_points(0).to_parquet(src, index=False)
    r = _ingest(src, tmp_path / "t", lonlat_cols=("LON", "LAT"))
    assert (r["num_rows"], r["num_files"], r["num_chunks"]) == (0, 0, 0)
    assert len(fused.get_chunks_metadata(str(tmp_path / "t"))) == 0
    back = fused.read_table(str(tmp_path / "t"), (-180, -90, 180, 90))
    assert len(back) == 0 and "speed" in back.columns


def test_kml_input(tmp_path, polygons_gdf):
    import pyogrio

    if "KML" not in pyogrio.list_drivers(write=True) and "LIBKML" not in pyogrio.list_drivers(write=True):
        pytest.skip("this GDAL cannot write KML")
    src = tmp_path / "polys.kml"
    polygons_gdf.head(20)[["pid", "geometry"]].assign(pid=lambda d: d.pid.astype(str)).to_file(src, driver="KML")
    assert _ingest(src, tmp_path / "t")["num_rows"] == 20


def test_file_urls(points_parquet, tmp_path):
    src, _df = points_parquet
    out = f"file://{tmp_path}/t"
    r = fused.ingest(f"file://{src}", out, lonlat_cols=("LON", "LAT")).run_local(show_progress=False)
    assert r["num_rows"] == 20_000
    assert len(fused.read_table(out, (-180, -90, 180, 90), columns=["id"])) == 20_000
    assert fused.get_chunks_metadata(out).num_rows.sum() == 20_000


def test_point_fast_path_matches_wkb_parsing():
    from fused._table import to_geodataframe

    pts = shapely.points([1.5, -2.25, 3.0], [4.0, 5.5, -6.75])
    mixed = list(shapely.to_wkb(pts)) + [shapely.to_wkb(shapely.box(0, 0, 1, 1))]
    for values in (list(shapely.to_wkb(pts)), mixed, list(shapely.to_wkb(pts, byte_order=0))):
        table = pa.table({"v": range(len(values)), "geometry": pa.array(values, pa.binary())})
        for t in (table, table.slice(1)):
            got = to_geodataframe(t)
            expected = shapely.from_wkb(t.column("geometry").to_pylist())
            assert list(got.columns) == ["v", "geometry"]
            assert all(shapely.equals_exact(a, b) for a, b in zip(got.geometry.values, expected))


def test_gdal_config_layer(tmp_path, polygons_gdf):
    src = tmp_path / "two.gpkg"
    polygons_gdf.head(10).to_file(src, layer="small")
    polygons_gdf.head(30).to_file(src, layer="big")
    assert _ingest(src, tmp_path / "t", gdal_config={"layer": "big"})["num_rows"] == 30
    with pytest.raises(ValueError, match="cannot read .*two.gpkg.* with GDAL"):
        _ingest(src, tmp_path / "u", gdal_config={"layer": "missing"})


def test_http_input_from_a_server_without_range_support(points_parquet, tmp_path):
    # http.server ignores Range: the engine's http file system still reads the right bytes.
    import functools
    import http.server
    import threading

    src, _ = points_parquet
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(src.parent))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{src.name}"
        assert _ingest(url, tmp_path / "t", lonlat_cols=("LON", "LAT"))["num_rows"] == 20_000
        with pytest.raises(fused.NotFoundError, match="points.parquet.missing.parquet' does not exist"):
            _ingest(url + ".missing.parquet", tmp_path / "u", lonlat_cols=("LON", "LAT"))
    finally:
        server.shutdown()
        server.server_close()


def test_fd_paths_resolve_through_the_storage_layer(points_parquet, tmp_path, monkeypatch):
    # fd:// is the files API's store (here a local directory): an ingest reads and writes it
    # there, and escapes are refused by the same containment.
    path, df = points_parquet
    monkeypatch.setenv("TERRAFUSE_FD_ROOT", str(tmp_path / "fd"))
    fused.api.upload(str(path), "fd://in/points.parquet")
    fused.ingest("fd://in/", "fd://out/points/", target_num_chunks=20,
                 lonlat_cols=("LON", "LAT")).run_local(show_progress=False)
    assert (tmp_path / "fd" / "out" / "points" / "_sample").is_file()
    meta = fused.get_chunks_metadata("fd://out/points/")
    assert int(meta["num_rows"].sum()) == len(df)
    with pytest.raises(Exception, match=r"\.\."):
        fused.ingest("fd://in/points.parquet", "fd://../escape/",
                     lonlat_cols=("LON", "LAT")).run_local(show_progress=False)
    assert not (tmp_path / "escape").exists()
    (tmp_path / "fd" / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no files in directory 'fd://empty/'"):
        fused.ingest("fd://empty/", "fd://out/none/", lonlat_cols=("LON", "LAT")).run_local(show_progress=False)


@pytest.mark.parametrize("fmt", ["gpkg", "geojson", "geoparquet"])
def test_projected_inputs_are_streamed_and_reprojected(fmt, tmp_path, make_points, monkeypatch):
    # 40,000 points in Web Mercator, over three 16 k-row batches; never read whole.
    import pyogrio

    df = make_points(40_000, seed=8)
    gdf = gpd.GeoDataFrame(df[["id", "speed"]], geometry=gpd.points_from_xy(df.LON, df.LAT), crs=4326)
    src = tmp_path / f"pts.{fmt if fmt != 'geoparquet' else 'parquet'}"
    if fmt == "geoparquet":
        gdf.to_crs(3857).to_parquet(src, row_group_size=10_000)
    else:
        gdf.to_crs(3857).to_file(src)

    def whole(*args, **kwargs):
        raise AssertionError("the input was read whole")

    monkeypatch.setattr(pyogrio, "read_dataframe", whole)
    monkeypatch.setattr(gpd, "read_parquet", whole)
    monkeypatch.setattr(gpd, "read_file", whole)
    out = tmp_path / "t"
    assert _ingest(src, out, partitioning_maximum_per_chunk=5000)["num_rows"] == 40_000
    back = fused.read_table(str(out), (-180, -90, 180, 90))
    back = back.set_index("id").sort_index()
    assert back.crs == "EPSG:4326"
    assert np.allclose(back.geometry.x.to_numpy(), df.LON.to_numpy(), atol=1e-7)
    assert np.allclose(back.geometry.y.to_numpy(), df.LAT.to_numpy(), atol=1e-7)
    assert np.allclose(back.speed.to_numpy(), df.speed.to_numpy())


def test_gdal_inputs_stream_several_files_and_check_their_schemas(tmp_path, polygons_gdf):
    a, b, c = tmp_path / "a.gpkg", tmp_path / "b.gpkg", tmp_path / "c.gpkg"
    polygons_gdf.head(50).to_crs(32631).to_file(a)
    polygons_gdf.iloc[50:120].to_file(b)
    polygons_gdf.head(10).rename(columns={"pid": "other"}).to_file(c)
    r = _ingest([str(a), str(b)], tmp_path / "t", explode_geometries=True, remove_cols=["kind"])
    assert r["num_rows"] == 120
    back = fused.read_table(str(tmp_path / "t"), (-180, -90, 180, 90))
    assert sorted(back.pid) == list(range(120)) and "kind" not in back.columns
    # file a (UTM 31N) came back to degrees
    merged = back.merge(polygons_gdf[["pid", "geometry"]], on="pid")
    assert np.allclose(shapely.area(merged.geometry_x.values), shapely.area(merged.geometry_y.values), rtol=1e-3)
    with pytest.raises(ValueError, match="mixed schemas: .*c.gpkg"):
        _ingest([str(a), str(c)], tmp_path / "u")
    assert not (tmp_path / "u").exists()


def test_read_skips_chunks_whose_rows_miss_the_bounds(tmp_path):
    # Points on the diagonal y = x, one chunk: its box holds the empty corner (0..1, 9..10),
    # so the chunk box meets that query but no row's bbox does.
    n = 5000
    t = np.linspace(0, 10, n)
    df = pd.DataFrame({"id": np.arange(n), "LON": t, "LAT": t})
    src = tmp_path / "diag.parquet"
    df.to_parquet(src, index=False)
    out = tmp_path / "t"
    _ingest(src, out, lonlat_cols=("LON", "LAT"), partitioning_maximum_per_chunk=n)
    from fused._table import read_table_arrow

    table, stats = read_table_arrow(str(out), (0, 9, 1, 10))
    assert table.num_rows == 0 and stats["chunks_read"] == 0 and stats["rows_read"] == 0
    table, stats = read_table_arrow(str(out), (4, 4, 5, 5))
    assert sorted(table.column("id").to_pylist()) == sorted(_brute_force(df, (4, 4, 5, 5)))
    # Rows are in Hilbert order inside the chunk and the page index says which 2,048-row
    # pages can meet the box: ~500 hits decode one or two pages, not the chunk's 5,000 rows.
    assert stats["chunks_read"] == 1 and table.num_rows <= stats["rows_read"] <= 4096
    # A point table is filtered on its WKB, decoded once and put back in its place.
    assert table.column_names == ["id", "LON", "LAT", "geometry"]
    assert read_table_arrow(str(out), (4, 4, 5, 5), ["LAT"])[0].column_names == ["LAT", "geometry"]
    assert read_table_arrow(str(out), (4, 4, 5, 5), ["bbox", "id"])[0].column_names == ["bbox", "id", "geometry"]
    only = read_table_arrow(str(out), (4, 4, 5, 5), ["geometry"])[0]
    assert only.column_names == ["geometry"] and only.num_rows == len(_brute_force(df, (4, 4, 5, 5)))


def _clustered(n, seed=5):
    rng = np.random.default_rng(seed)
    lon = rng.normal(10, 3, n).clip(-180, 180)
    lat = rng.normal(45, 2, n).clip(-85, 85)
    name = np.array([f"n{i}" for i in range(n)], dtype=object)
    name[::7] = None
    speed = rng.uniform(0, 30, n)
    speed[::11] = np.nan  # nulls in a nullable float column (pandas NaN -> null)
    return pd.DataFrame({
        "id": np.arange(n), "LON": lon, "LAT": lat, "name": name,
        "speed": pd.array(np.where(np.arange(n) % 11 == 0, None, speed), dtype="Float64"),
        "status": rng.integers(0, 16, n).astype(np.int32), "flag": rng.integers(0, 2, n).astype(bool),
        "ts": pd.to_datetime(1_704_067_200 + rng.integers(0, 86_400, n), unit="s"),
    })


def test_rows_inside_a_chunk_are_in_hilbert_order_with_a_page_index(tmp_path):
    n = 20_000
    df = _clustered(n)
    src = tmp_path / "pts.parquet"
    df.to_parquet(src, index=False)
    out = tmp_path / "t"
    _ingest(src, out, lonlat_cols=("LON", "LAT"), partitioning_maximum_per_chunk=n)
    chunk = fused.get_chunk_from_table(str(out), 0, 0)
    assert len(chunk) == n
    # Consecutive rows are neighbours: far closer than in the input's random order.
    step = np.hypot(np.diff(chunk.LON.to_numpy()), np.diff(chunk.LAT.to_numpy()))
    step_in = np.hypot(np.diff(df.LON.to_numpy()), np.diff(df.LAT.to_numpy()))
    assert np.median(step) < np.median(step_in) / 50
    md = pq.ParquetFile(out / "0.parquet").metadata
    rg = md.row_group(0)
    assert rg.num_rows == n  # still one row group per chunk
    assert all(rg.column(i).has_offset_index for i in range(rg.num_columns))
    names = [rg.column(i).path_in_schema for i in range(rg.num_columns)]
    assert rg.column(names.index("bbox.xmin")).has_column_index


def test_read_decodes_only_the_pages_that_meet_the_bounds(tmp_path):
    n = 30_000
    df = _clustered(n)
    src = tmp_path / "pts.parquet"
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table.set_column(3, "name", table.column("name").cast(pa.string())), src)
    out = tmp_path / "t"
    _ingest(src, out, lonlat_cols=("LON", "LAT"), partitioning_maximum_per_chunk=n)
    from fused._table import read_table_arrow

    for b in [(9.5, 44.5, 10.5, 45.5), (0, 40, 12, 46), (15, 49, 30, 60), (-180, -90, 180, 90), (50, 0, 51, 1)]:
        table, stats = read_table_arrow(str(out), b)
        want = df[df.id.isin(_brute_force(df, b))].sort_values("id").reset_index(drop=True)
        got = table.to_pandas().sort_values("id").reset_index(drop=True)
        assert list(got.id) == list(want.id), b
        # every column decoded by pages comes back as the plain reader gives it
        for col in ["name", "speed", "status", "flag", "ts", "LON", "LAT"]:
            pd.testing.assert_series_equal(got[col], want[col].astype(got[col].dtype), check_names=False)
        assert got.name.isna().sum() == want.name.isna().sum() and got.speed.isna().sum() == want.speed.isna().sum()
        assert table.schema.remove_metadata() == pq.read_schema(out / "0.parquet").remove_metadata().remove(
            pq.read_schema(out / "0.parquet").get_field_index("bbox"))
        assert table.schema.field("name").type == pa.string()  # decoded by pages, not by the Arrow reader
        if b == (9.5, 44.5, 10.5, 45.5):  # a small box: a few pages of the one 30,000-row chunk
            assert stats["chunks_read"] == 1 and len(got) <= stats["rows_read"] < n / 3
    table, stats = read_table_arrow(str(out), (9.5, 44.5, 10.5, 45.5), ["name", "bbox"])
    assert table.column_names == ["name", "bbox", "geometry"]
    assert len(table) == len(_brute_force(df, (9.5, 44.5, 10.5, 45.5)))


@pytest.mark.parametrize("use_dictionary,compression,page_version",
                         [(False, "zstd", "1.0"), (True, "zstd", "1.0"), (True, "snappy", "1.0"),
                          (False, "gzip", "2.0")])
def test_pages_written_by_another_writer_read_the_same(tmp_path, use_dictionary, compression, page_version):
    # The bounds reader decodes pages itself when they are laid out as the ingest writes them
    # (plain WKB without a dictionary; numbers plain, split or delta, or in a dictionary);
    # here pyarrow rewrites a table with null geometries (definition levels with bit-packed
    # runs), with dictionaries for every column (the geometry's then goes through the general
    # page reader), with other codecs, and with v2 data pages (the general reader). Every case
    # must give exactly the rows in the box, with the values the file holds.
    n = 12_000
    df = _clustered(n)
    src = tmp_path / "pts.parquet"
    df.to_parquet(src, index=False)
    out = tmp_path / "t"
    _ingest(src, out, lonlat_cols=("LON", "LAT"), partitioning_maximum_per_chunk=n)
    path = out / "0.parquet"
    f = pq.ParquetFile(path)
    t = f.read()
    nulls = np.zeros(len(t), dtype=bool)
    nulls[:4000:5] = True
    nulls[6000:6100] = True  # a long run of nulls too (pages without nulls can still be skipped)
    mask = pa.array(nulls)
    t = t.set_column(t.schema.get_field_index("geometry"), "geometry",
                     pc.if_else(mask, pa.scalar(None, pa.binary()), t.column("geometry")))
    t = t.set_column(t.schema.get_field_index("bbox"), t.schema.field("bbox"),
                     pc.if_else(mask, pa.scalar(None, t.schema.field("bbox").type), t.column("bbox")))
    geo = {k: v for k, v in f.metadata.metadata.items() if k != b"ARROW:schema"}  # the `geo` key
    pq.write_table(t.replace_schema_metadata(geo), path, compression=compression,
                   use_dictionary=use_dictionary, write_page_index=True, data_page_version=page_version,
                   max_rows_per_page=1000, row_group_size=n)
    kept = set(t.column("id").filter(pc.invert(mask)).to_pylist())
    from fused._table import read_table_arrow

    for b in [(9.5, 44.5, 10.5, 45.5), (0, 40, 12, 46), (-180, -90, 180, 90)]:
        table, stats = read_table_arrow(str(out), b)
        assert sorted(table.column("id").to_pylist()) == sorted(_brute_force(df, b) & kept), b
        got = table.to_pandas().set_index("id").sort_index()
        want = df.set_index("id").loc[got.index]
        np.testing.assert_array_equal(shapely.get_x(shapely.from_wkb(got.geometry)), want.LON.to_numpy())
        for col in ["LON", "LAT", "speed", "status", "flag", "ts"]:
            pd.testing.assert_series_equal(got[col], want[col].astype(got[col].dtype), check_names=False)
        assert stats["rows_read"] < n or b == (-180, -90, 180, 90)


def test_a_corrupt_geometry_page_is_an_error(points_parquet, tmp_path):
    # Uncompressed pages, so the bytes are where the test can find them: the first point's
    # WKB length (21) becomes larger than its page. The read says which column is corrupt.
    src, _df = points_parquet
    out = tmp_path / "table"
    _ingest(src, out, lonlat_cols=("LON", "LAT"), target_num_chunks=2, compression=None)
    path = out / "0.parquet"
    raw = bytearray(path.read_bytes())
    at = raw.find(b"\x15\x00\x00\x00\x01\x01\x00\x00\x00")  # length 21, little-endian Point
    assert at > 0
    raw[at:at + 4] = b"\xff\xff\xff\x7f"
    path.write_bytes(bytes(raw))
    with pytest.raises(Exception, match="a page of column 'geometry' is corrupt"):
        fused.read_table(str(out), (-180, -90, 180, 90))


def test_tables_without_page_index_or_order_still_read(tmp_path):
    # The layout written before rows were ordered inside chunks: same files and row groups,
    # rows in input order, no page index.
    n = 12_000
    df = _clustered(n)
    src = tmp_path / "pts.parquet"
    df.to_parquet(src, index=False)
    out = tmp_path / "t"
    _ingest(src, out, lonlat_cols=("LON", "LAT"), partitioning_maximum_per_chunk=3000)
    rng = np.random.default_rng(1)
    for path in out.glob("*.parquet"):
        f = pq.ParquetFile(path)
        groups = [f.read_row_group(i) for i in range(f.num_row_groups)]
        groups = [g.take(rng.permutation(len(g))) for g in groups]
        with pq.ParquetWriter(path, f.schema_arrow, compression="zstd") as w:
            for g in groups:
                w.write_table(g, row_group_size=len(g))
        assert not pq.ParquetFile(path).metadata.row_group(0).column(0).has_offset_index
    from fused._table import read_table_arrow

    b = (9.5, 44.5, 10.5, 45.5)
    table, stats = read_table_arrow(str(out), b)
    assert sorted(table.column("id").to_pylist()) == sorted(_brute_force(df, b))
    # whole chunks, as before: those with a row in the box
    meta = fused.get_chunks_metadata(str(out))
    chunks = [fused.get_chunk_from_table(str(out), f, c) for f, c in zip(meta.file_id, meta.chunk_id)]
    hit = [c for c in chunks if len(_brute_force(c, b))]
    assert stats["chunks_read"] == len(hit) and stats["rows_read"] == sum(len(c) for c in hit)


def test_polygons_read_by_pages_match_geos(tmp_path):
    # Boxes of varied size in one chunk of many pages: page pruning by the bbox columns
    # keeps every polygon that meets the bounds (big ones reach across pages' areas).
    rng = np.random.default_rng(9)
    n = 12_000
    x, y = rng.uniform(-10, 10, n), rng.uniform(40, 50, n)
    size = np.where(rng.random(n) < 0.01, rng.uniform(2, 6, n), rng.uniform(0.01, 0.2, n))
    gdf = gpd.GeoDataFrame({"pid": np.arange(n)}, geometry=shapely.box(x, y, x + size, y + size), crs=4326)
    out = tmp_path / "t"
    _ingest(gdf, out, partitioning_maximum_per_chunk=n)
    from fused._table import read_table_arrow

    for b in [(0.0, 44.0, 0.5, 44.5), (-3, 41, 1, 47), (9.9, 49.9, 20, 60), (-20, 30, -15, 35)]:
        table, stats = read_table_arrow(str(out), b)
        want = set(gdf.pid[gdf.intersects(shapely.box(*b))])
        assert set(table.column("pid").to_pylist()) == want, b
        if b == (0.0, 44.0, 0.5, 44.5):  # some pages skipped (the big boxes widen pages' ranges)
            assert stats["rows_read"] < n


def test_os_errors_name_their_cause(points_parquet):
    # An engine I/O error carries the OS's reason (e.g. "No space left on device" when a
    # spill fills the disk), not only the operation that failed.
    from fused._errors import EngineIOError

    src, _ = points_parquet
    with pytest.raises(EngineIOError, match="'/dev/full'.*: File exists$"):
        _ingest(src, "/dev/full/table", lonlat_cols=("LON", "LAT"))

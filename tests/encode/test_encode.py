"""The engine's output encoders (fused._encode -> fused._core.encode), checked against peers
reading the bytes back: pandas (csv), json + pandas (json), geopandas (geojson, parquet),
pyarrow (feather) and a zlib-based PNG decoder (or PIL when installed)."""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import re
import struct
import zlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather
import pytest

gpd = pytest.importorskip("geopandas")
shapely = pytest.importorskip("shapely")

from fused import _encode
from fused._errors import InvalidArgumentError
from geopandas.testing import assert_geodataframe_equal, assert_geoseries_equal

# ------------------------------------------------------------------------------------------
# Data


def make_geometries(n: int, rng: np.random.Generator) -> list:
    """Every geometry type, 2D and Z, with empties and nulls, cycling over n rows."""
    x, y = rng.uniform(-180, 180, n), rng.uniform(-85, 85, n)
    out = []
    for i in range(n):
        px, py = float(x[i]), float(y[i])
        kind = i % 11
        if kind == 0:
            g = shapely.Point(px, py)
        elif kind == 1:
            g = shapely.LineString([(px, py), (px + 0.1, py + 0.2), (px + 0.3, py)])
        elif kind == 2:
            g = shapely.Polygon(
                [(px, py), (px + 1, py), (px + 1, py + 1), (px, py + 1)],
                holes=[[(px + 0.2, py + 0.2), (px + 0.4, py + 0.2), (px + 0.4, py + 0.4)]],
            )
        elif kind == 3:
            g = shapely.MultiPoint([(px, py), (px + 1e-7, py - 3.25)])
        elif kind == 4:
            g = shapely.MultiLineString([[(px, py), (px + 1, py)], [(px, py + 1), (px + 2, py)]])
        elif kind == 5:
            g = shapely.MultiPolygon(
                [shapely.box(px, py, px + 1, py + 1), shapely.box(px + 2, py, px + 3, py + 1)]
            )
        elif kind == 6:
            g = shapely.GeometryCollection(
                [shapely.Point(px, py), shapely.LineString([(px, py), (1, 1)])]
            )
        elif kind == 7:
            g = shapely.Point(px, py, float(i))
        elif kind == 8:
            g = None
        elif kind == 9:
            g = shapely.LineString([(px, py, 1.5), (px + 1, py + 1, -2.0)])
        else:
            g = shapely.Point(px, py) if i % 2 else shapely.Polygon()
        out.append(g)
    return out


def make_frame(n: int = 220, seed: int = 7) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    names = ["plain", "with, comma", 'with "quotes"', "line\nbreak", "ünïcödé ✓", None]
    value = rng.normal(size=n) * 1e3
    value[::9] = np.nan
    return gpd.GeoDataFrame(
        {
            "id": np.arange(n, dtype="int64"),
            "value": value,
            "name": [names[i % len(names)] for i in range(n)],
            "flag": (np.arange(n) % 3 == 0),
            "when": pd.to_datetime(
                1_600_000_000_000_000 + np.arange(n) * 1_234_567, unit="us", utc=True
            ),
        },
        geometry=make_geometries(n, rng),
        crs="EPSG:4326",
    )


@pytest.fixture(scope="module")
def gdf() -> gpd.GeoDataFrame:
    return make_frame()


def to_geoseries(wkt_values, index) -> gpd.GeoSeries:
    values = [
        None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in wkt_values
    ]
    return gpd.GeoSeries(shapely.from_wkt(values), index=index, crs="EPSG:4326")


# ------------------------------------------------------------------------------------------
# Formats


def test_formats_lists_the_builtins():
    formats = {f["name"]: f for f in _encode.formats()}
    assert sorted(formats) == [
        "csv", "excel", "feather", "geojson", "gif", "html", "jpeg", "jpg", "json", "mvt", "npy",
        "parquet", "png", "tif", "tiff", "webp", "xml",
    ]  # fmt: skip
    assert formats["geojson"]["media_type"] == "application/geo+json"
    assert formats["png"]["kind"] == "raster"
    assert formats["csv"]["kind"] == "vector"


def test_csv_reads_back_with_pandas(gdf):
    out = _encode.encode_table(gdf, "csv")
    back = pd.read_csv(io.BytesIO(out), keep_default_na=False, na_values=[""])
    assert list(back.columns) == list(gdf.columns)
    pd.testing.assert_series_equal(back["id"], gdf["id"])
    pd.testing.assert_series_equal(back["value"], gdf["value"])  # shortest exact doubles
    pd.testing.assert_series_equal(back["flag"], pd.Series(gdf["flag"], name="flag"))
    expected_names = gdf["name"].where(gdf["name"].notna(), np.nan)
    pd.testing.assert_series_equal(back["name"], expected_names, check_dtype=False)
    pd.testing.assert_series_equal(pd.to_datetime(back["when"]), gdf["when"], check_dtype=False)
    assert_geoseries_equal(
        to_geoseries(back["geometry"].tolist(), back.index), gdf.geometry, check_less_precise=False
    )


def test_csv_geometry_is_shapely_wkt_with_exact_numbers(gdf):
    out = _encode.encode_table(gdf[["geometry"]], "csv").decode()
    lines = pd.read_csv(io.StringIO(out), keep_default_na=False, skip_blank_lines=False)[
        "geometry"
    ].tolist()
    number = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
    for text, geom in zip(lines, gdf.geometry):
        if geom is None:
            assert text == ""
            continue
        # The same text as shapely's, except that numbers are shortest round-trip (GEOS'
        # 16 significant digits are not always exact).
        expected = shapely.to_wkt(geom, rounding_precision=-1)
        assert number.sub("#", text) == number.sub("#", expected)
        coords = [float(v) for v in number.findall(text)]
        assert coords == shapely.get_coordinates(geom, include_z=geom.has_z).ravel().tolist()


def test_json_is_an_array_of_row_objects(gdf):
    rows = json.loads(_encode.encode_table(gdf, "json"))
    records = pd.DataFrame(gdf).to_dict("records")
    assert len(rows) == len(records)
    for row, record in zip(rows, records):
        assert list(row) == list(gdf.columns)
        assert row["id"] == record["id"]
        assert row["flag"] == record["flag"]
        assert row["name"] == (None if pd.isna(record["name"]) else record["name"])
        if math.isnan(record["value"]):
            assert row["value"] is None
        else:
            assert row["value"] == record["value"]
        assert dt.datetime.fromisoformat(row["when"]) == record["when"].to_pydatetime()
        if record["geometry"] is None:
            assert row["geometry"] is None
        else:
            assert shapely.from_wkt(row["geometry"]).equals_exact(record["geometry"], 0) or (
                record["geometry"].is_empty and shapely.from_wkt(row["geometry"]).is_empty
            )


def test_geojson_loads_back_with_geopandas(gdf):
    collection = json.loads(_encode.encode_table(gdf, "geojson"))
    assert collection["type"] == "FeatureCollection"
    back = gpd.GeoDataFrame.from_features(collection["features"], crs="EPSG:4326")
    assert_geoseries_equal(back.geometry, gdf.geometry, check_less_precise=False)
    for column in ["id", "value", "name", "flag"]:
        pd.testing.assert_series_equal(back[column], gdf[column], check_dtype=False)
    pd.testing.assert_series_equal(pd.to_datetime(back["when"]), gdf["when"], check_dtype=False)


def test_geojson_features_match_geodataframe_to_json(gdf):
    frame = gdf.drop(columns=["when"])
    ours = json.loads(_encode.encode_table(frame, "geojson"))["features"]
    theirs = json.loads(frame.to_json())["features"]
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a["properties"] == b["properties"]
        if b["geometry"] is None:  # geopandas writes empty geometries as null too
            assert a["geometry"] is None or shapely.geometry.shape(a["geometry"]).is_empty
        else:
            assert (
                shapely.geometry.shape(a["geometry"]).equals_exact(
                    shapely.geometry.shape(b["geometry"]), 0
                )
                or shapely.geometry.shape(a["geometry"]).is_empty
            )


def test_parquet_reads_back_with_geopandas(gdf):
    out = _encode.encode_table(gdf, "parquet")
    back = gpd.read_parquet(io.BytesIO(out))
    assert_geodataframe_equal(back, gdf, check_less_precise=False)
    assert back.crs == gdf.crs
    geo = json.loads(pa.parquet.read_schema(io.BytesIO(out)).metadata[b"geo"])
    assert geo["version"] == "1.1.0"
    assert geo["primary_column"] == "geometry"
    assert geo["columns"]["geometry"]["encoding"] == "WKB"
    assert "Polygon" in geo["columns"]["geometry"]["geometry_types"]


@pytest.mark.parametrize("compression", ["zstd", "snappy", "gzip", "lz4", "none"])
def test_parquet_codecs(gdf, compression):
    out = _encode.encode_table(gdf, "parquet", compression=compression)
    codec = pa.parquet.ParquetFile(io.BytesIO(out)).metadata.row_group(0).column(0).compression
    assert codec == {"none": "UNCOMPRESSED"}.get(compression, compression.upper())
    assert_geodataframe_equal(gpd.read_parquet(io.BytesIO(out)), gdf)


def test_parquet_of_a_geoarrow_table_gets_geo_metadata(gdf):
    # GeoDataFrame.to_arrow marks geometry with GeoArrow extension metadata only.
    table = pa.table(gdf.to_arrow(geometry_encoding="WKB"))
    assert b"geo" not in (table.schema.metadata or {})
    back = gpd.read_parquet(io.BytesIO(_encode.encode_table(table, "parquet")))
    assert_geodataframe_equal(back, gdf, check_less_precise=False)


@pytest.mark.parametrize("compression", [None, "zstd", "none"])
def test_feather_reads_back_with_pyarrow(gdf, compression):
    table = _encode.to_arrow_table(gdf)
    out = _encode.encode_table(table, "feather", compression=compression)
    back = pyarrow.feather.read_table(io.BytesIO(out))
    assert back.equals(table)
    assert back.schema.metadata == table.schema.metadata
    assert_geodataframe_equal(gpd.read_feather(io.BytesIO(out)), gdf)


def test_every_input_kind_gives_the_same_bytes(gdf):
    table = _encode.to_arrow_table(gdf)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=50))
    chunked = pa.concat_tables([table.slice(0, 100), table.slice(100)])
    expected = _encode.encode_table(gdf, "geojson")
    assert _encode.encode_table(table, "geojson") == expected
    assert _encode.encode_table(reader, "geojson") == expected
    assert _encode.encode_table(chunked, "geojson") == expected


def test_plain_dataframe(gdf):
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", None]})
    assert json.loads(_encode.encode_table(frame, "json")) == [
        {"a": 1, "b": "x"},
        {"a": 2, "b": None},
    ]
    assert _encode.encode_table(frame, "csv") == b'"a","b"\n1,"x"\n2,\n'


def test_empty_table(gdf):
    empty = gdf.iloc[:0]
    assert json.loads(_encode.encode_table(empty, "json")) == []
    assert json.loads(_encode.encode_table(empty, "geojson")) == {
        "type": "FeatureCollection",
        "features": [],
    }
    assert len(gpd.read_parquet(io.BytesIO(_encode.encode_table(empty, "parquet")))) == 0


# ------------------------------------------------------------------------------------------
# PNG


def decode_png(data: bytes) -> tuple[int, np.ndarray]:
    """A minimal PNG reader (8-bit, non-interlaced): returns (color type, (h, w, c) pixels)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and interlace == 0
    channels = {0: 1, 4: 2, 2: 3, 6: 4}[color]
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + width * channels)
    out = np.zeros((height, width * channels), np.int32)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        prev = out[y - 1] if y else np.zeros_like(line)
        row = np.zeros_like(line)
        for x in range(line.size):
            a = row[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if kind == 0:
                pred = 0
            elif kind == 1:
                pred = a
            elif kind == 2:
                pred = b
            elif kind == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa_, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa_ <= pb and pa_ <= pc else (b if pb <= pc else c)
            row[x] = (line[x] + pred) & 0xFF
        out[y] = row
    return color, out.astype(np.uint8).reshape(height, width, channels)


def make_raster(shape) -> np.ndarray:
    rng = np.random.default_rng(len(shape) * 10 + shape[0])
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


@pytest.mark.parametrize(
    ("shape", "color"),
    [((12, 9), 0), ((1, 12, 9), 0), ((2, 12, 9), 4), ((3, 12, 9), 2), ((4, 12, 9), 6)],
)
@pytest.mark.parametrize("level", [None, 9])
def test_png_decodes_back(shape, color, level):
    raster = make_raster(shape)
    png = _encode.encode_png(raster, compression_level=level)
    got_color, pixels = decode_png(png)
    assert got_color == color
    expected = raster.reshape(1, *shape) if len(shape) == 2 else raster
    np.testing.assert_array_equal(pixels, np.moveaxis(expected, 0, -1))


def test_png_decodes_back_with_pil():
    image_module = pytest.importorskip("PIL.Image")
    raster = make_raster((4, 16, 16))
    image = image_module.open(io.BytesIO(_encode.encode_png(raster)))
    np.testing.assert_array_equal(np.asarray(image), np.moveaxis(raster, 0, -1))


@pytest.mark.parametrize("level", [None, 1, 3, 4])
def test_png_noisy_and_smooth_tiles_decode_back_with_pil(level):
    """256x256 RGBA tiles: noisy ones are coded as literals at levels 1-3, smooth ones matched."""
    image_module = pytest.importorskip("PIL.Image")
    yy, xx = np.mgrid[0:256, 0:256]
    field = (np.sin(xx / 40.0) * np.cos(yy / 30.0) + 1) * 127.5
    rng = np.random.default_rng(1)
    noisy = np.stack([field + rng.normal(0, 12, field.shape) for _ in range(3)] + [field * 0 + 255])
    smooth = np.stack([field, 255 - field, field // 32 * 32, field * 0 + 255])
    sizes = []
    for raster in (noisy, smooth):
        raster = np.clip(raster, 0, 255).astype(np.uint8)
        png = _encode.encode_png(raster, compression_level=level)
        image = image_module.open(io.BytesIO(png))
        np.testing.assert_array_equal(np.asarray(image), np.moveaxis(raster, 0, -1))
        sizes.append(len(png))
    assert sizes[0] < 0.7 * noisy.size  # the noise still compresses
    assert sizes[1] < 0.1 * smooth.size


def test_png_of_a_non_contiguous_view():
    raster = make_raster((4, 16, 16))
    view = raster[:, ::2, ::2]
    _, pixels = decode_png(_encode.encode_png(view))
    np.testing.assert_array_equal(pixels, np.moveaxis(view, 0, -1))


# ------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (
            np.zeros((8, 8), np.float32),
            (
                "PNG encodes uint8 rasters, got dtype 'float32': scale the values to 0-255 and cast "
                "to uint8 first"
            ),
        ),
        (
            np.zeros((5, 8, 8), np.uint8),
            r"PNG needs 1 to 4 bands \(gray, gray\+alpha, RGB, RGBA\), got 5 in shape \[5, 8, 8\]$",
        ),
        (
            np.zeros((8, 8, 3), np.uint8),
            (
                r"got 8 in shape \[8, 8, 3\]: it looks band-last, transpose it to "
                r"\(bands, height, width\)"
            ),
        ),
        (
            np.zeros(8, np.uint8),
            (
                r"PNG needs a raster of shape \(bands, height, width\) or \(height, width\), got "
                r"shape \[8\]"
            ),
        ),
        (
            np.zeros((0, 8), np.uint8),
            r"PNG needs a height and width from 1 to 2\^31-1, got shape \[0, 8\]",
        ),
    ],
)
def test_png_errors(array, message):
    with pytest.raises(InvalidArgumentError, match=message):
        _encode.encode_png(array)


def test_png_level_out_of_range():
    with pytest.raises(
        InvalidArgumentError, match="PNG compression level must be from 0 to 9, got 10"
    ):
        _encode.encode_png(np.zeros((2, 2), np.uint8), compression_level=10)


def test_unknown_format_lists_the_known_ones(gdf):
    with pytest.raises(
        InvalidArgumentError,
        match="Unknown output format 'xlsx': formats for tables are csv, excel, feather, "
        "geojson, html, json, mvt, parquet, xml",
    ):
        _encode.encode_table(gdf, "xlsx")
    with pytest.raises(
        InvalidArgumentError, match="Output format 'png' encodes rasters, not tables"
    ):
        _encode.encode_table(gdf, "png")


def test_unknown_compression(gdf):
    with pytest.raises(
        InvalidArgumentError,
        match="Unknown compression 'lzma' for parquet: use one of zstd, snappy, gzip, lz4, none",
    ):
        _encode.encode_table(gdf, "parquet", compression="lzma")


def test_invalid_wkb_names_row_and_column():
    geo = {
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {"geometry": {"encoding": "WKB", "geometry_types": []}},
    }
    table = pa.table({"geometry": pa.array([shapely.to_wkb(shapely.Point(1, 2)), b"\x01\x02"])})
    table = table.replace_schema_metadata({"geo": json.dumps(geo)})
    with pytest.raises(
        InvalidArgumentError,
        match=r"Cannot write row 1 of column 'geometry' as geojson: invalid WKB: "
        r"truncated at byte 0 of 2",
    ):
        _encode.encode_table(table, "geojson")


def test_not_a_table():
    with pytest.raises(
        InvalidArgumentError, match="data must be a GeoDataFrame, a DataFrame or an Arrow table"
    ):
        _encode.encode_table([1, 2], "json")
    with pytest.raises(InvalidArgumentError, match="format must be a string such as 'geojson'"):
        _encode.encode_table(pa.table({"a": [1]}), 3)


@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "float64", "bool"])
def test_npy_round_trips_through_numpy(dtype):
    from fused import _core

    array = (np.arange(24).reshape(2, 3, 4) % 3).astype(dtype)
    out = bytes(_core.encode.encode_raster(array, "npy"))
    back = np.load(io.BytesIO(out), allow_pickle=False)
    assert back.dtype == array.dtype and back.shape == array.shape and np.array_equal(back, array)

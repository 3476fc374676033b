"""The engine's remaining output formats, read back by peers: Pillow (jpeg, webp, tiff, gif),
openpyxl and pandas (excel), xml.etree (xml) and html.parser (html).

Rasters go through ``fused._core.encode.encode_raster(array, format)``, tables through
``fused._encode.encode_table``."""

from __future__ import annotations

import datetime as dt
import io
import math
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

gpd = pytest.importorskip("geopandas")
shapely = pytest.importorskip("shapely")

from fused import _core, _encode
from fused._errors import FusedNotImplementedError, InvalidArgumentError

# ------------------------------------------------------------------------------------------
# Data


def make_raster(shape, seed=3, dtype=np.uint8):
    """Smooth gradients with a little noise, band-major."""
    rng = np.random.default_rng(seed)
    grids = np.indices(shape[-2:]).sum(axis=0)
    bands = shape[0] if len(shape) == 3 else 1
    planes = [(grids * (b + 1) + rng.integers(0, 4, shape[-2:])) % 256 for b in range(bands)]
    return np.stack(planes).reshape(shape).astype(dtype)


def encode_raster(array, format, **kwargs) -> bytes:
    return bytes(_core.encode.encode_raster(array, format, **kwargs))


def make_frame(n: int = 60) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(11)
    names = ["plain", "a < b & c > d", 'say "hi"', "line\nbreak", "ünïcödé ✓", None, " padded "]
    value = rng.normal(size=n) * 1e3
    value[::9] = np.nan
    geoms = []
    for i in range(n):
        x, y = float(rng.uniform(-180, 180)), float(rng.uniform(-85, 85))
        kind = i % 4
        if kind == 0:
            geoms.append(shapely.Point(x, y))
        elif kind == 1:
            geoms.append(shapely.LineString([(x, y), (x + 0.5, y + 0.25)]))
        elif kind == 2:
            geoms.append(shapely.box(x, y, x + 1, y + 1))
        else:
            geoms.append(None)
    return gpd.GeoDataFrame(
        {
            "id": np.arange(n, dtype="int64"),
            "value": value,
            "name": [names[i % len(names)] for i in range(n)],
            "flag": np.arange(n) % 3 == 0,
            "when": pd.to_datetime(1_600_000_000 + np.arange(n) * 3_600, unit="s"),
            "day": [dt.date(2020, 1, 1) + dt.timedelta(days=int(i) * 40) for i in range(n)],
        },
        geometry=geoms,
        crs="EPSG:4326",
    )


@pytest.fixture(scope="module")
def gdf() -> gpd.GeoDataFrame:
    return make_frame()


def text_or_none(values):
    """Strings as they are, missing values (None, NaN) as None."""
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]


def assert_geometry_text_equal(texts, geometries):
    """WKT read back by shapely equals the geometries; None stands for null."""
    for text, geom in zip(texts, geometries):
        if geom is None:
            assert text in (None, "")
        else:
            assert shapely.equals_exact(shapely.from_wkt(text), geom, 0), (text, geom)


# ------------------------------------------------------------------------------------------
# Registry


def test_formats_lists_the_new_ones():
    formats = {f["name"]: f for f in _encode.formats()}
    expected = {
        "jpeg": ("raster", "image/jpeg"),
        "jpg": ("raster", "image/jpeg"),
        "webp": ("raster", "image/webp"),
        "tiff": ("raster", "image/tiff"),
        "tif": ("raster", "image/tiff"),
        "gif": ("raster", "image/gif"),
        "html": ("vector", "text/html; charset=utf-8"),
        "xml": ("vector", "application/xml"),
        "excel": (
            "vector",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
    }
    for name, (kind, media_type) in expected.items():
        assert formats[name]["kind"] == kind
        assert formats[name]["media_type"] == media_type


@pytest.mark.parametrize(("alias", "name"), [("jpg", "jpeg"), ("TIF", "tiff"), ("Jpeg", "jpeg")])
def test_aliases_and_case(alias, name):
    raster = make_raster((3, 32, 32))
    assert encode_raster(raster, alias) == encode_raster(raster, name)


# ------------------------------------------------------------------------------------------
# Rasters, read back with Pillow


def pil():
    return pytest.importorskip("PIL.Image")


@pytest.mark.parametrize(
    ("shape", "mode"),
    [
        ((64, 48), "L"),
        ((1, 64, 48), "L"),
        ((2, 64, 48), "L"),
        ((3, 64, 48), "RGB"),
        ((4, 64, 48), "RGB"),
    ],
)
def test_jpeg_reads_back_with_pil(shape, mode):
    raster = make_raster(shape)
    image = pil().open(io.BytesIO(encode_raster(raster, "jpeg")))
    assert image.format == "JPEG"
    assert image.mode == mode
    assert image.size == (48, 64)
    pixels = np.asarray(image, dtype=np.int16)
    bands = raster.reshape(-1, 64, 48)[: 1 if mode == "L" else 3].astype(np.int16)
    expected = bands[0] if mode == "L" else np.moveaxis(bands, 0, -1)
    assert np.abs(pixels - expected).mean() < (2 if mode == "L" else 6)


def test_jpeg_quality_is_85():
    # Pillow estimates quality from the quantisation tables: ours are libjpeg's at 85.
    raster = make_raster((3, 64, 64))
    ours = pil().open(io.BytesIO(encode_raster(raster, "jpeg")))
    out = io.BytesIO()
    pil().fromarray(np.moveaxis(raster, 0, -1)).save(out, "JPEG", quality=85)
    theirs = pil().open(io.BytesIO(out.getvalue()))
    assert ours.quantization == theirs.quantization


@pytest.mark.parametrize(("bands", "mode"), [(1, "RGB"), (2, "RGBA"), (3, "RGB"), (4, "RGBA")])
def test_webp_reads_back_with_pil(bands, mode):
    raster = make_raster((bands, 40, 56))
    if bands in (2, 4):
        raster[-1] = 255
        raster[-1, :, :10] = 0
    image = pil().open(io.BytesIO(encode_raster(raster, "webp")))
    assert image.format == "WEBP"
    assert image.size == (56, 40)
    assert image.mode == mode
    pixels = np.asarray(image).astype(np.int16)
    if bands in (2, 4):
        np.testing.assert_array_equal(pixels[..., 3], raster[-1])  # alpha is lossless
        opaque = raster[-1] == 255
    else:
        opaque = np.ones((40, 56), bool)
    colors = raster[:1].repeat(3, 0) if bands <= 2 else raster[:3]
    error = np.abs(pixels[..., :3] - np.moveaxis(colors, 0, -1).astype(np.int16))[opaque]
    assert error.mean() < 6


@pytest.mark.parametrize(
    ("shape", "dtype", "mode"),
    [
        ((30, 20), np.uint8, "L"),
        ((3, 30, 20), np.uint8, "RGB"),
        ((4, 30, 20), np.uint8, "RGBA"),
        ((30, 20), np.uint16, "I;16"),
        ((30, 20), np.int16, "I"),  # Pillow widens int16
        ((30, 20), np.int32, "I"),
        ((30, 20), np.float32, "F"),
    ],
)
def test_tiff_is_lossless(shape, dtype, mode):
    raster = make_raster(shape, dtype=dtype)
    if np.issubdtype(dtype, np.floating):
        raster = raster / 7 - 3.25
    elif dtype != np.uint8:
        raster = raster * 97 - (1000 if np.issubdtype(dtype, np.signedinteger) else 0)
    raster = raster.astype(dtype)
    image = pil().open(io.BytesIO(encode_raster(raster, "tiff")))
    assert image.format == "TIFF"
    assert image.mode == mode
    assert image.info["compression"] == "tiff_adobe_deflate"
    expected = raster if raster.ndim == 2 else np.moveaxis(raster, 0, -1)
    np.testing.assert_array_equal(np.asarray(image), expected)


def tiff_tags(data: bytes) -> dict[int, tuple]:
    """The tags of the first IFD of a little-endian TIFF: {tag: values} (arrays of SHORT,
    LONG and DOUBLE only)."""
    import struct

    assert data[:4] == b"II*\x00"
    (offset,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, offset)
    sizes = {3: ("H", 2), 4: ("I", 4), 12: ("d", 8)}
    tags = {}
    for k in range(count):
        tag, kind, n, value = struct.unpack_from("<HHI4s", data, offset + 2 + 12 * k)
        if kind not in sizes:
            continue
        code, size = sizes[kind]
        raw = value if n * size <= 4 else data[struct.unpack("<I", value)[0] :][: n * size]
        tags[tag] = struct.unpack_from(f"<{n}{code}", raw)
    return tags


def test_tiff_keeps_float64_and_many_bands():
    # Pillow opens neither: check the tags (the C++ tests read the pixels back with libtiff).
    raster = make_raster((6, 8, 8)).astype(np.float64) / 3
    tags = tiff_tags(encode_raster(raster, "tiff"))
    assert tags[256] == (8,) and tags[257] == (8,)  # width, height
    assert tags[277] == (6,)  # SamplesPerPixel
    assert tags[258] == (64,) * 6  # BitsPerSample
    assert tags[339] == (3,) * 6  # SampleFormat: IEEE float
    assert tags[317] == (3,)  # Predictor: floating point
    assert tags[338] == (0,) * 5  # ExtraSamples: unspecified
    assert 33550 not in tags  # no GeoTIFF tags without bounds


def test_gif_reads_back_with_pil():
    # A classified map with nodata: few colours, so the palette is exact.
    classes = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200]], np.uint8)
    index = (np.indices((50, 70)).sum(axis=0) // 9) % 4
    rgba = np.concatenate([np.moveaxis(classes[index], -1, 0), np.full((1, 50, 70), 255, np.uint8)])
    rgba[3, 10:20, 10:30] = 0
    image = pil().open(io.BytesIO(encode_raster(rgba, "gif")))
    assert image.format == "GIF"
    assert image.size == (70, 50)
    rgb = np.asarray(image.convert("RGBA"))
    opaque = rgba[3] == 255
    np.testing.assert_array_equal(rgb[..., :3][opaque], np.moveaxis(rgba[:3], 0, -1)[opaque])
    np.testing.assert_array_equal(rgb[..., 3] == 0, ~opaque)


def test_gif_of_gray_is_exact():
    raster = make_raster((33, 21))
    image = pil().open(io.BytesIO(encode_raster(raster, "gif")))
    np.testing.assert_array_equal(np.asarray(image.convert("L")), raster)


def test_gif_of_many_colours_is_close():
    raster = make_raster((3, 64, 64))
    image = pil().open(io.BytesIO(encode_raster(raster, "gif")))
    rgb = np.asarray(image.convert("RGB")).astype(np.int16)
    diff = rgb - np.moveaxis(raster, 0, -1).astype(np.int16)
    assert np.abs(diff).max() <= 51  # one step of the 6x7x6 cube
    assert np.abs(diff.mean(axis=(0, 1))).max() < 6  # dithering keeps the average


@pytest.mark.parametrize(
    ("format", "array", "message"),
    [
        (
            "jpeg",
            np.zeros((8, 8), np.float32),
            (
                "JPEG encodes uint8 rasters, got dtype 'float32': scale the values to 0-255 and "
                "cast to uint8 first"
            ),
        ),
        ("jpg", np.zeros((5, 8, 8), np.uint8), r"JPEG needs 1 to 4 bands .* got 5 in shape"),
        ("webp", np.zeros((8, 8), np.uint16), "WebP encodes uint8 rasters, got dtype 'uint16'"),
        (
            "webp",
            np.zeros((2, 16384), np.uint8),
            r"WebP needs a height and width from 1 to 16383, got shape \[2, 16384\]",
        ),
        ("gif", np.zeros((8, 8), np.int16), "GIF encodes uint8 rasters, got dtype 'int16'"),
        (
            "tiff",
            np.zeros((8, 8), bool),
            (
                "TIFF encodes uint8, int8, uint16, int16, uint32, int32, float32 or float64 "
                "rasters, got dtype 'bool': cast to one of these first"
            ),
        ),
        (
            "tif",
            np.zeros((8, 8), np.float16),
            "TIFF encodes .* got dtype 'float16'",
        ),
    ],
)
def test_raster_errors(format, array, message):
    with pytest.raises(InvalidArgumentError, match=message):
        encode_raster(array, format)


@pytest.mark.parametrize(
    ("format", "level", "message"),
    [
        ("webp", 7, r"WebP compression level \(libwebp's method\) must be from 0 to 6, got 7"),
        ("tiff", 0, "TIFF deflate level must be from 1 to 9, got 0"),
    ],
)
def test_raster_level_errors(format, level, message):
    with pytest.raises(InvalidArgumentError, match=message):
        encode_raster(np.zeros((4, 4), np.uint8), format, compression_level=level)


# ------------------------------------------------------------------------------------------
# Tables


class TableParser(HTMLParser):
    """The cells of a <table> as text: the first row is the header."""

    def __init__(self):
        super().__init__()
        self.rows, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    @property
    def header(self):
        return self.rows[0]

    @property
    def body(self):
        return self.rows[1:]


def parse_html(data: bytes) -> TableParser:
    parser = TableParser()
    parser.feed(data.decode("utf-8"))
    parser.close()
    return parser


def test_html_reads_back_with_html_parser(gdf):
    data = _encode.encode_table(gdf, "html")
    assert data.startswith(b"<!DOCTYPE html>")
    table = parse_html(data)
    assert table.header == list(gdf.columns)
    assert len(table.body) == len(gdf)
    columns = {name: [row[j] for row in table.body] for j, name in enumerate(table.header)}
    assert columns["id"] == [str(v) for v in gdf["id"]]
    assert columns["name"] == [v or "" for v in text_or_none(gdf["name"])]
    # pandas' NaN arrives as null (an empty cell); numbers are exact.
    values = [float(v) if v else math.nan for v in columns["value"]]
    np.testing.assert_array_equal(values, gdf["value"].to_numpy())
    assert columns["flag"] == ["true" if v else "false" for v in gdf["flag"]]
    # ISO 8601 with the unit's digits and no zone, as pandas' naive datetimes are.
    assert all(not v.endswith("Z") for v in columns["when"])
    pd.testing.assert_series_equal(
        pd.Series(pd.to_datetime(columns["when"]), name="when"), gdf["when"], check_dtype=False
    )
    assert columns["day"] == [d.isoformat() for d in gdf["day"]]
    assert_geometry_text_equal(columns["geometry"], gdf.geometry)


def test_html_of_an_empty_table():
    table = parse_html(_encode.encode_table(pa.table({"a": pa.array([], pa.int32())}), "html"))
    assert table.header == ["a"] and table.body == []


def test_xml_reads_back_with_etree(gdf):
    root = ET.fromstring(_encode.encode_table(gdf, "xml"))
    assert root.tag == "rows"
    rows = list(root)
    assert len(rows) == len(gdf) and all(row.tag == "row" for row in rows)
    assert [child.tag for child in rows[0]] == list(gdf.columns)

    def column(name):
        return [row.find(name).text for row in rows]

    assert column("id") == [str(v) for v in gdf["id"]]
    # Nulls are empty elements; text (including escapes and newlines) comes back unchanged.
    assert column("name") == text_or_none(gdf["name"])
    values = [math.nan if v is None else float(v) for v in column("value")]
    np.testing.assert_array_equal(values, gdf["value"].to_numpy())
    assert column("flag") == ["true" if v else "false" for v in gdf["flag"]]
    assert_geometry_text_equal(column("geometry"), gdf.geometry)


def test_xml_element_names_are_valid_and_unique():
    table = pa.table([pa.array([1])] * 6, names=["a b", "a_b", "1st", "xml", "café", "ns:x"])
    root = ET.fromstring(_encode.encode_table(table, "xml"))
    assert [child.tag for child in root[0]] == ["a_b", "a_b_2", "_1st", "_xml", "café", "ns_x"]


def test_xml_reads_back_with_pandas_read_xml_when_lxml_is_missing(gdf):
    # pandas.read_xml needs lxml, or parser="etree" with the standard library.
    frame = pd.read_xml(
        io.BytesIO(_encode.encode_table(gdf.drop(columns="geometry"), "xml")), parser="etree"
    )
    assert list(frame.columns) == ["id", "value", "name", "flag", "when", "day"]
    np.testing.assert_array_equal(frame["id"], gdf["id"])
    np.testing.assert_array_equal(frame["value"], gdf["value"])


def test_excel_reads_back_with_openpyxl(gdf):
    openpyxl = pytest.importorskip("openpyxl")
    data = _encode.encode_table(gdf, "excel")
    assert data[:4] == b"PK\x03\x04"
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book.active
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == list(gdf.columns)
    assert sheet["A1"].font.b
    assert sheet.freeze_panes == "A2"
    body = rows[1:]
    assert len(body) == len(gdf)
    columns = {name: [row[j] for row in body] for j, name in enumerate(rows[0])}
    assert columns["id"] == gdf["id"].tolist()
    assert all(type(v) is int for v in columns["id"])
    assert columns["value"] == [None if math.isnan(v) else v for v in gdf["value"]]
    assert columns["name"] == text_or_none(gdf["name"])
    assert columns["flag"] == gdf["flag"].tolist()
    assert columns["when"] == [t.to_pydatetime() for t in gdf["when"]]
    assert columns["day"] == [dt.datetime.combine(d, dt.time()) for d in gdf["day"]]
    assert sheet["F2"].number_format == "yyyy-mm-dd"
    assert sheet["E2"].is_date and sheet["F2"].is_date
    assert_geometry_text_equal(columns["geometry"], gdf.geometry)


def test_excel_reads_back_with_pandas(gdf):
    pytest.importorskip("openpyxl")
    frame = gdf.drop(columns="geometry")
    back = pd.read_excel(io.BytesIO(_encode.encode_table(frame, "excel")))
    pd.testing.assert_series_equal(back["id"], frame["id"])
    pd.testing.assert_series_equal(back["value"], frame["value"])
    pd.testing.assert_series_equal(back["flag"], frame["flag"])
    pd.testing.assert_series_equal(back["when"], frame["when"], check_dtype=False)


def test_excel_of_special_values():
    openpyxl = pytest.importorskip("openpyxl")
    table = pa.table(
        {
            "x": pa.array([math.inf, -math.inf, 1e300]),
            "t": pa.array([dt.time(1, 2, 3), None, dt.time(23, 59, 59)]),
            "old": pa.array([dt.date(1850, 5, 6), dt.date(1900, 1, 1), dt.date(9999, 12, 31)]),
            "tags": pa.array([["a", "b"], [], None]),
            "cat": pa.array(["p", "q", "p"]).dictionary_encode(),
        }
    )
    sheet = openpyxl.load_workbook(io.BytesIO(_encode.encode_table(table, "excel"))).active
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in rows] == ["inf", "-inf", 1e300]
    assert [r[1] for r in rows] == [dt.time(1, 2, 3), None, dt.time(23, 59, 59)]
    assert [r[2] for r in rows] == [
        "1850-05-06",
        dt.datetime(1900, 1, 1),
        dt.datetime(9999, 12, 31),
    ]
    assert [r[3] for r in rows] == ['["a","b"]', "[]", None]
    assert [r[4] for r in rows] == ["p", "q", "p"]


def test_excel_too_many_columns():
    table = pa.table({f"c{i}": pa.array([], pa.int8()) for i in range(16385)})
    with pytest.raises(
        InvalidArgumentError,
        match="Table has 16385 columns: excel holds at most 16384; use csv or parquet instead",
    ):
        _encode.encode_table(table, "excel")


@pytest.mark.parametrize("format", ["html", "xml", "excel"])
def test_table_errors_name_the_column(format):
    table = pa.table({"span": pa.array([pa.MonthDayNano([1, 2, 3])], pa.month_day_nano_interval())})
    with pytest.raises(
        FusedNotImplementedError,
        match=f"Cannot write column 'span' as {format}: type month_day_nano_interval has no "
        "JSON form",
    ):
        _encode.encode_table(table, format)

"""Output encoders of the engine (C++) against the Python libraries a user would call instead.

Usage: python bench/encode/bench_encode.py [--quick] [--scale S] [--runs N]

Cases (see README.md beside this script): geojson vs ``GeoDataFrame.to_json()``, csv vs
``DataFrame.to_csv`` with ``to_wkt(rounding_precision=-1)`` geometry (exact,
like ours), json vs ``DataFrame.to_json(orient="records")``,
parquet vs ``GeoDataFrame.to_parquet``, feather vs ``pyarrow.feather.write_feather``, PNG
of a 256x256 RGBA tile vs PIL (when installed) or a numpy + zlib PNG writer, and MVT of one
z10 tile vs ``mapbox_vector_tile.encode`` (when installed) doing the same work: projection
to EPSG:3857 (``to_crs``), clipping to the tile plus its 64-unit buffer (shapely
``clip_by_rect``), quantisation to the extent (``quantize_bounds``) and encoding.
JPEG, WebP, TIFF and GIF of 256x256 RGB tiles vs PIL (when installed); html, xml and excel of
up to 5,000 rows vs ``DataFrame.to_html``, ``to_xml(parser="etree")`` and ``to_excel``
(openpyxl, when installed).

Each case has a setup (load) part, not timed: the data is generated and converted to the
Arrow table the server holds (WKB geometry, GeoParquet ``geo`` metadata). The timed (run) part
is executed once to warm up, then N times; the table shows the median time of one run and
ratio = peer / terrafuse (above 1: terrafuse is faster). Both sides are checked to describe
the same data first. Targets are printed under the table; times are never asserted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
import warnings
import xml.etree.ElementTree as ET
import zlib

# Never touch ~/.terrafuse.
_HOME = tempfile.mkdtemp(prefix="terrafuse-bench-encode-")
os.environ["TERRAFUSE_HOME"] = _HOME

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.feather
import pyarrow.parquet as pq
import shapely
from fused import _encode

GEOJSON_TARGET = 10.0  # x GeoDataFrame.to_json
PNG_TARGET_MS = 2.0  # 256x256 RGBA
MVT_TARGET = 20.0  # x mapbox_vector_tile.encode (with to_crs + clip_by_rect)


def median_seconds(fn, runs):
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def format_seconds(seconds):
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} us"


# -- data ----------------------------------------------------------------------------------
def make_gdf(rows: int) -> gpd.GeoDataFrame:
    """Points, 5-40 vertex polygons and lines in equal parts, with four property columns."""
    rng = np.random.default_rng(42)
    x, y = rng.uniform(-180, 170, rows), rng.uniform(-80, 75, rows)
    geoms = []
    for i in range(rows):
        kind = i % 3
        if kind == 0:
            geoms.append(shapely.Point(x[i], y[i]))
        elif kind == 1:
            n = 5 + i % 36
            angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
            radius = rng.uniform(0.01, 1.0, n)
            ring = np.column_stack([x[i] + radius * np.cos(angles), y[i] + radius * np.sin(angles)])
            geoms.append(shapely.Polygon(ring))
        else:
            steps = rng.normal(scale=0.01, size=(8, 2)).cumsum(axis=0)
            geoms.append(shapely.LineString(steps + [x[i], y[i]]))
    names = np.array(["alpha", "beta", "gamma street", "delta, east", "épsilon"])
    return gpd.GeoDataFrame(
        {
            "id": np.arange(rows, dtype="int64"),
            "value": rng.normal(size=rows) * 100,
            "name": names[np.arange(rows) % len(names)],
            "flag": np.arange(rows) % 2 == 0,
        },
        geometry=geoms,
        crs="EPSG:4326",
    )


# -- PNG peers -----------------------------------------------------------------------------
def png_numpy_zlib(raster: np.ndarray) -> bytes:
    """What one writes without an imaging library: interleave, filter None, zlib level 6."""
    bands, height, width = raster.shape
    pixels = np.ascontiguousarray(np.moveaxis(raster, 0, -1)).reshape(height, width * bands)
    rows = np.zeros((height, width * bands + 1), np.uint8)
    rows[:, 1:] = pixels

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, {1: 0, 2: 4, 3: 2, 4: 6}[bands], 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def png_peer():
    """(name, function) of the PNG peer: PIL when installed, else numpy + zlib."""
    try:
        from PIL import Image
    except ImportError:
        return "numpy+zlib PNG", png_numpy_zlib

    def encode(raster):
        out = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(np.moveaxis(raster, 0, -1))).save(out, "PNG")
        return out.getvalue()

    return "PIL", encode


def make_tiles():
    """Two 256x256 RGBA tiles: a colour-mapped field with nodata, and noisy imagery."""
    yy, xx = np.mgrid[0:256, 0:256]
    field = (np.sin(xx / 40.0) * np.cos(yy / 30.0) + 1) * 127.5
    smooth = np.stack([field, 255 - field, (field // 32) * 32, np.full_like(field, 255)])
    smooth[3, 100:180, 60:200] = 0  # transparent nodata
    smooth[:3, 100:180, 60:200] = 0
    rng = np.random.default_rng(1)
    noisy = np.stack(
        [field + rng.normal(0, 12, field.shape) for _ in range(3)] + [np.full_like(field, 255)]
    )
    return {
        "smooth": np.clip(smooth, 0, 255).astype(np.uint8),
        "noisy": np.clip(noisy, 0, 255).astype(np.uint8),
    }


# -- cases ---------------------------------------------------------------------------------
def vector_cases(gdf: gpd.GeoDataFrame):
    table = _encode.to_arrow_table(gdf)
    frame = pd.DataFrame(gdf)
    rows = len(gdf)

    def csv_peer():
        return (
            frame.assign(geometry=gdf.geometry.to_wkt(rounding_precision=-1))
            .to_csv(index=False)
            .encode()
        )

    def json_peer():
        return (
            frame.assign(geometry=gdf.geometry.to_wkt(rounding_precision=-1))
            .to_json(orient="records")
            .encode()
        )

    def parquet_peer():
        out = io.BytesIO()
        gdf.to_parquet(out)
        return out.getvalue()

    def pq_peer():
        out = io.BytesIO()
        pq.write_table(table, out, compression="zstd")
        return out.getvalue()

    def feather_peer():
        out = io.BytesIO()
        pyarrow.feather.write_feather(table, out)
        return out.getvalue()

    def same_geojson(ours, theirs):
        a, b = json.loads(ours)["features"], json.loads(theirs)["features"]
        return len(a) == len(b) and all(f["properties"] == g["properties"] for f, g in zip(a, b))

    def same_rows(ours, theirs):
        return len(json.loads(ours)) == len(json.loads(theirs)) == rows

    def same_csv(ours, theirs):
        a, b = pd.read_csv(io.BytesIO(ours)), pd.read_csv(io.BytesIO(theirs))
        # GEOS' WKT is not always exact (16 digits); ours is: compare with a tolerance.
        return (
            a.shape == b.shape
            and shapely.equals_exact(
                shapely.from_wkt(a["geometry"]), shapely.from_wkt(b["geometry"]), 1e-12
            ).all()
        )

    def same_parquet(ours, theirs):
        return (
            gpd.read_parquet(io.BytesIO(ours))
            .geom_equals(gpd.read_parquet(io.BytesIO(theirs)))
            .all()
        )

    def same_table(ours, theirs):
        return pyarrow.feather.read_table(io.BytesIO(ours)).equals(
            pyarrow.feather.read_table(io.BytesIO(theirs))
        )

    return [
        (
            f"geojson: {rows} rows",
            "GeoDataFrame.to_json",
            lambda: _encode.encode_table(table, "geojson"),
            gdf.to_json,
            same_geojson,
        ),
        (
            f"geojson from GeoDataFrame: {rows} rows",
            "GeoDataFrame.to_json",
            lambda: _encode.encode_table(gdf, "geojson"),
            gdf.to_json,
            same_geojson,
        ),
        (
            f"csv: {rows} rows",
            "to_wkt + DataFrame.to_csv",
            lambda: _encode.encode_table(table, "csv"),
            csv_peer,
            same_csv,
        ),
        (
            f"json: {rows} rows",
            "to_wkt + DataFrame.to_json",
            lambda: _encode.encode_table(table, "json"),
            json_peer,
            same_rows,
        ),
        (
            f"parquet: {rows} rows",
            "GeoDataFrame.to_parquet",
            lambda: _encode.encode_table(table, "parquet"),
            parquet_peer,
            same_parquet,
        ),
        (
            f"parquet: {rows} rows",
            "pyarrow write_table (zstd)",
            lambda: _encode.encode_table(table, "parquet"),
            pq_peer,
            same_parquet,
        ),
        (
            f"feather: {rows} rows",
            "pyarrow write_feather",
            lambda: _encode.encode_table(table, "feather"),
            feather_peer,
            same_table,
        ),
    ]


def png_cases():
    peer_name, peer = png_peer()
    cases = []
    for name, raster in make_tiles().items():
        cases.append(
            (
                f"png 256x256 RGBA, {name}",
                peer_name,
                lambda r=raster: _encode.encode_png(r),
                lambda r=raster: peer(r),
                lambda ours, theirs: ours[:8] == theirs[:8] == b"\x89PNG\r\n\x1a\n",
            )
        )
    return cases


# -- MVT -----------------------------------------------------------------------------------
MVT_TILE = (518, 352, 10)  # Paris, z10
MVT_EXTENT, MVT_BUFFER = 4096, 64


def make_tile_gdf(rows: int, kind: str) -> gpd.GeoDataFrame:
    """Points or 8-40 vertex polygons over one tile and a 10% margin around it (so some
    cross its edges and some are outside), with four property columns."""
    from fused import tiles

    rng = np.random.default_rng(7)
    west, south, east, north = tiles.bounds(*MVT_TILE)
    w, h = east - west, north - south
    x = rng.uniform(west - 0.1 * w, east + 0.1 * w, rows)
    y = rng.uniform(south - 0.1 * h, north + 0.1 * h, rows)
    if kind == "points":
        geoms = shapely.points(x, y)
    else:
        geoms = []
        for i in range(rows):
            n = 8 + i % 33
            angles = np.sort(rng.uniform(0, 2 * np.pi, n))
            radius = rng.uniform(0.002, 0.02, n) * w
            ring = np.column_stack([x[i] + radius * np.cos(angles), y[i] + radius * np.sin(angles)])
            geoms.append(shapely.Polygon(ring))
    names = np.array(["alpha", "beta", "gamma street", "delta, east", "épsilon"])
    return gpd.GeoDataFrame(
        {
            "id": np.arange(rows, dtype="int64"),
            "value": rng.normal(size=rows) * 100,
            "name": names[np.arange(rows) % len(names)],
            "flag": np.arange(rows) % 2 == 0,
        },
        geometry=geoms,
        crs="EPSG:4326",
    )


def mvt_cases(rows: int):
    """MVT of one tile vs mapbox_vector_tile.encode; none when it is not installed."""
    try:
        import mapbox_vector_tile
    except ImportError:
        print("mapbox_vector_tile is not installed: no MVT cases", file=sys.stderr)
        return []
    from fused import tiles

    left, bottom, right, top = tiles.xy_bounds(*MVT_TILE)
    margin = (right - left) * MVT_BUFFER / MVT_EXTENT

    def peer(gdf):
        # What a user writes with the Python package: it quantises and encodes, the caller
        # projects and clips.
        merc = np.asarray(gdf.geometry.to_crs(3857).values)
        clipped = shapely.clip_by_rect(
            merc, left - margin, bottom - margin, right + margin, top + margin
        )
        props = gdf.drop(columns="geometry").to_dict("records")
        features = [
            {"geometry": g, "properties": p} for g, p in zip(clipped, props) if not g.is_empty
        ]
        return mapbox_vector_tile.encode(
            {"name": "udf", "features": features},
            default_options={"quantize_bounds": (left, bottom, right, top), "extents": MVT_EXTENT},
        )

    def same_tile(ours, theirs):
        a = mapbox_vector_tile.decode(ours)["udf"]["features"]
        b = mapbox_vector_tile.decode(theirs)["udf"]["features"]
        ids = {f["properties"]["id"]: f["properties"] for f in a}
        # The peer keeps a few slivers that quantise to nothing; ours drops them.
        return (
            len(a) > 0
            and len(b) - len(a) <= len(b) // 100
            and all(ids.get(f["properties"]["id"], f["properties"]) == f["properties"] for f in b)
        )

    cases = []
    peer_name = "to_crs + clip_by_rect + mapbox_vector_tile.encode"
    for kind, n in (("polygons", max(3, rows // 4)), ("points", rows)):
        gdf = make_tile_gdf(n, kind)
        table = _encode.to_arrow_table(gdf)
        cases.append(
            (
                f"mvt: {n} {kind} in one tile",
                peer_name,
                lambda t=table: _encode.encode_table(t, "mvt", tile=MVT_TILE),
                lambda g=gdf: peer(g),
                same_tile,
            )
        )
        if kind == "polygons":
            cases.append(
                (
                    f"mvt from GeoDataFrame: {n} {kind} in one tile",
                    peer_name,
                    lambda g=gdf: _encode.encode_table(g, "mvt", tile=MVT_TILE),
                    lambda g=gdf: peer(g),
                    same_tile,
                )
            )
    return cases


# -- more formats: jpeg, webp, tiff, gif rasters; html, xml, excel tables --------------------
def more_format_cases(gdf: gpd.GeoDataFrame):
    """256x256 RGB tiles vs PIL (skipped without it) and tables vs pandas' writers."""
    from fused import _core

    cases = []
    try:
        from PIL import Image
    except ImportError:
        Image = None
    if Image is not None:

        def pil(raster, format, **kwargs):
            out = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(np.moveaxis(raster, 0, -1))).save(
                out, format, **kwargs
            )
            return out.getvalue()

        def same_image(ours, theirs):
            a, b = Image.open(io.BytesIO(ours)), Image.open(io.BytesIO(theirs))
            return a.size == b.size == (256, 256) and a.format == b.format

        formats = [
            ("jpeg", "JPEG", "PIL (quality 85)", {"quality": 85}),
            ("webp", "WEBP", "PIL (quality 80, method 4)", {"quality": 80}),
            ("tiff", "TIFF", "PIL (deflate)", {"compression": "tiff_adobe_deflate"}),
            ("gif", "GIF", "PIL (adaptive palette)", {}),
        ]
        for name, tile in make_tiles().items():
            rgb = np.ascontiguousarray(tile[:3])
            for format, pil_format, peer_name, kwargs in formats:
                cases.append(
                    (
                        f"{format} 256x256 RGB, {name}",
                        peer_name,
                        lambda r=rgb, f=format: bytes(_core.encode.encode_raster(r, f)),
                        lambda r=rgb, f=pil_format, k=kwargs: pil(r, f, **k),
                        same_image,
                    )
                )

    # pandas' writers are slow: a slice keeps the run short.
    part = gdf.iloc[: min(len(gdf), 5_000)]
    table = _encode.to_arrow_table(part)
    frame = pd.DataFrame(part).assign(geometry=part.geometry.to_wkt(rounding_precision=-1))
    rows = len(part)

    def html_peer():
        return frame.to_html(index=False).encode()

    def xml_peer():
        return frame.to_xml(index=False, parser="etree").encode()

    def same_html(ours, theirs):
        return ours.count(b"<tr") == theirs.count(b"<tr") == rows + 1

    def same_xml(ours, theirs):
        return len(ET.fromstring(ours)) == len(ET.fromstring(theirs)) == rows

    cases += [
        (
            f"html: {rows} rows",
            "DataFrame.to_html",
            lambda: _encode.encode_table(table, "html"),
            html_peer,
            same_html,
        ),
        (
            f"xml: {rows} rows",
            "DataFrame.to_xml (etree)",
            lambda: _encode.encode_table(table, "xml"),
            xml_peer,
            same_xml,
        ),
    ]
    try:
        import openpyxl
    except ImportError:
        return cases

    def excel_peer():
        out = io.BytesIO()
        frame.to_excel(out, index=False, engine="openpyxl")
        return out.getvalue()

    def same_sheet(ours, theirs):
        def shape(data):
            sheet = openpyxl.load_workbook(io.BytesIO(data), read_only=True).active
            return sum(1 for _ in sheet.iter_rows(values_only=True))

        return shape(ours) == shape(theirs) == rows + 1

    cases.append(
        (
            f"excel: {rows} rows",
            "DataFrame.to_excel (openpyxl)",
            lambda: _encode.encode_table(table, "excel"),
            excel_peer,
            same_sheet,
        )
    )
    return cases


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 rows and 3 runs (for CI)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the row counts")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per case (default 7)")
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 7)
    rows = max(3, int((2_000 if args.quick else 20_000) * args.scale))
    warnings.simplefilter("ignore", UserWarning)

    gdf = make_gdf(rows)
    results = []
    figures = {}
    cases = vector_cases(gdf) + png_cases() + mvt_cases(rows) + more_format_cases(gdf)
    for name, peer_name, ours, theirs, same in cases:
        if not same(ours(), theirs()):
            print(f"MISMATCH in {name} (peer {peer_name})", file=sys.stderr)
            return 1
        t_ours = median_seconds(ours, runs)
        t_theirs = median_seconds(theirs, runs)
        figures[(name, peer_name)] = (t_ours, t_theirs)
        results.append(
            (
                name,
                peer_name,
                format_seconds(t_ours),
                format_seconds(t_theirs),
                f"{t_theirs / t_ours:.1f}x",
            )
        )

    header = ("case", "peer", "terrafuse", "peer time", "ratio")
    widths = [max(len(r[i]) for r in results + [header]) for i in range(len(header))]
    print(
        f"terrafuse encoders vs Python peers: median of {runs} runs after 1 warm-up; "
        "ratio = peer / terrafuse"
    )
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-|-".join("-" * w for w in widths))
    for row in results:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [c.rjust(w) for c, w in zip(row[2:], widths[2:])]
        print(" | ".join(cells))

    print()
    ours, theirs = figures[(f"geojson: {rows} rows", "GeoDataFrame.to_json")]
    verdict = "PASS" if theirs / ours >= GEOJSON_TARGET else "MISS"
    print(
        f"target geojson >= {GEOJSON_TARGET:g}x GeoDataFrame.to_json: "
        f"{theirs / ours:.1f}x {verdict}"
    )
    for (name, _), (ours, theirs) in figures.items():
        if name.startswith("mvt"):
            verdict = "PASS" if theirs / ours >= MVT_TARGET else "MISS"
            print(
                f"target {name} >= {MVT_TARGET:g}x mapbox_vector_tile: {theirs / ours:.1f}x {verdict}"
            )
    for (name, _), (ours, _) in figures.items():
        if name.startswith("png"):
            verdict = "PASS" if ours * 1e3 <= PNG_TARGET_MS else "MISS"
            print(f"target {name} <= {PNG_TARGET_MS:g} ms: {ours * 1e3:.2f} ms {verdict}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        shutil.rmtree(_HOME, ignore_errors=True)

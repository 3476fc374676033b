"""Output encoders of the engine (C++) against the Python libraries a user would call instead.

Usage: python bench/encode/bench_encode.py [--quick] [--scale S] [--runs N]

Cases (see README.md beside this script): geojson vs ``GeoDataFrame.to_json()``, csv vs
``DataFrame.to_csv`` with ``to_wkt(rounding_precision=-1)`` geometry (exact,
like ours), json vs ``DataFrame.to_json(orient="records")``,
parquet vs ``GeoDataFrame.to_parquet``, feather vs ``pyarrow.feather.write_feather``, and PNG
of a 256x256 RGBA tile vs PIL (when installed) or a numpy + zlib PNG writer.

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
    for name, peer_name, ours, theirs, same in vector_cases(gdf) + png_cases():
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

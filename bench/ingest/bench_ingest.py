"""Benchmark fused.ingest (C++ partitioner) and the bounds reader against their peers.

Usage: python bench/ingest/bench_ingest.py [--quick] [--scale S] [--runs N] [--compression zstd|lz4|snappy]

Data: N synthetic clustered points with 5 attribute columns, generated here (10 M at full
size, 200 k with --quick), written as one unsorted Parquet file and one CSV.

Cases (peer / terrafuse = ratio, above 1 terrafuse is faster):
- ingest: fused.ingest of the Parquet file (65,536-row chunks) against DuckDB ordering the
  same rows along a Hilbert curve and writing Parquet with 65,536-row groups, both sides with
  the same codec (--compression; default zstd, the ingest's default). The
  Hilbert key comes from DuckDB's spatial extension when it is installed, else from numpy
  (its time is counted on DuckDB's side). Each side runs in a child process so its peak
  memory (max RSS) and CPU time (user + sys) are measured; the output sizes are printed.
- small-bbox read (boxes of 0.01% of the data's extent): p50 of fused.read_table (a
  GeoDataFrame; also the engine's Arrow result) against filtering the unsorted Parquet file
  (pyarrow, predicate pushdown, an Arrow result) and against filtering the CSV
  (pyarrow.csv, the fastest CSV reader at hand). Two query sets: boxes centred on random
  rows (where users look; in the dense clusters such a box holds ~1% of all rows) and boxes
  placed uniformly over the extent (a map panning over the data).
- layout quality of the ingested table: overlap of chunk boxes, chunks touched per query,
  coefficient of variation of rows per chunk.
Both sides are checked to return the same rows. Times are printed, never asserted.

Last measured at full size (session 8, 4 runs on a 2-core host; details in docs/ingest.md,
"Session 8"): with zstd (the default) ingest 2.15-2.21x DuckDB by wall time, 1.64x with a
busy loop holding one core the whole run; peak 1.96 GB; row-centred reads as Arrow
(fused.read_table(..., as_arrow=True)) 3.8-7.5 ms = 57-67x Parquet and 282-349x CSV;
uniform boxes 1.4-1.7 ms = 854-1,480x CSV. As a GeoDataFrame 17.7-24.7 ms (making ~95 k
shapely points is most of it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

CHUNK_ROWS = 65_536


def generate(n: int, path_parquet: str, path_csv: str, seed: int = 7) -> tuple[float, float, float, float]:
    """Clustered points (60 Gaussian clusters of varied spread), rows in random order."""
    rng = np.random.default_rng(seed)
    centers = np.column_stack([rng.uniform(-170, 170, 60), rng.uniform(-60, 70, 60)])
    spread = rng.uniform(0.05, 3.0, 60)
    weights = rng.dirichlet(np.ones(60))
    which = rng.choice(60, size=n, p=weights)
    lon = np.clip(centers[which, 0] + rng.normal(0, 1, n) * spread[which], -180, 180)
    lat = np.clip(centers[which, 1] + rng.normal(0, 1, n) * spread[which] * 0.7, -85, 85)
    table = pa.table({
        "LON": lon, "LAT": lat,
        "vessel_id": rng.integers(0, 100_000, n).astype(np.int64),
        "speed": rng.uniform(0, 30, n).round(2),
        "heading": rng.uniform(0, 360, n).astype(np.float32),
        "status": rng.integers(0, 16, n).astype(np.int32),
        "ts": np.int64(1_704_067_200) + rng.integers(0, 86_400, n),
    })
    pq.write_table(table, path_parquet, compression="zstd", row_group_size=1 << 20)
    pcsv.write_csv(table, path_csv)
    return float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())


def run_child(code: str) -> tuple[dict, float]:
    """Run `code` in a fresh Python; it prints one JSON line. Returns (that, peak RSS GB), with
    the child's CPU seconds (user + sys) added to that as "cpu"."""
    wrapper = code + textwrap.dedent("""
        import resource, json as _j
        _u = resource.getrusage(resource.RUSAGE_SELF)
        print("PEAK", _u.ru_maxrss, _u.ru_utime + _u.ru_stime)
    """)
    out = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"child failed:\n{out.stdout}\n{out.stderr}")
    lines = out.stdout.strip().splitlines()
    _, peak_kb, cpu = lines[-1].split()
    result = json.loads(lines[-2])
    result["cpu"] = float(cpu)
    return result, int(peak_kb) / 1024 / 1024


def ingest_child(src: str, out: str, codec: str) -> str:
    return textwrap.dedent(f"""
        import json, time, fused
        t = time.perf_counter()
        r = fused.ingest({src!r}, {out!r}, lonlat_cols=("LON", "LAT"),
                         partitioning_maximum_per_chunk={CHUNK_ROWS},
                         partitioning_split_method="median", partitioning_force_utm=None,
                         compression={codec!r}, overwrite=True).run_local(show_progress=False)
        r["seconds"] = time.perf_counter() - t
        print(json.dumps(r))
    """)


def duckdb_child(src: str, out: str, codec: str) -> str:
    # The peer writes the same content as the ingest (the points' WKB geometry included), built
    # with numpy when DuckDB's spatial extension is not installed (it needs the network); the
    # numpy work counts on DuckDB's side.
    return textwrap.dedent(f"""
        import json, time, duckdb, numpy as np, pyarrow as pa, pyarrow.parquet as pq
        t = time.perf_counter()
        con = duckdb.connect()
        con.execute("SET threads TO 2")
        try:
            con.execute("LOAD spatial")
            key = "ST_Hilbert(LON, LAT, {{'min_x': -180, 'min_y': -90, 'max_x': 180, 'max_y': 90}}::BOX_2D)"
            sql = f"SELECT *, ST_AsWKB(ST_Point(LON, LAT)) AS geometry FROM read_parquet('{src}') ORDER BY {{key}}"
            how = "spatial ST_Hilbert"
        except Exception:
            xy = pq.read_table({src!r}, columns=["LON", "LAT"])
            lon, lat = xy["LON"].to_numpy(), xy["LAT"].to_numpy()
            x = ((lon + 180) / 360 * 65535).astype(np.uint32)
            y = ((lat + 90) / 180 * 65535).astype(np.uint32)
            d = np.zeros(len(x), dtype=np.uint64)
            s = 1 << 15
            while s > 0:
                rx = ((x & s) > 0).astype(np.uint32)
                ry = ((y & s) > 0).astype(np.uint32)
                d += np.uint64(s) * np.uint64(s) * ((3 * rx) ^ ry).astype(np.uint64)
                flip = ry == 0
                swap_x = np.where(flip & (rx == 1), 65535 - x, x)
                swap_y = np.where(flip & (rx == 1), 65535 - y, y)
                x, y = np.where(flip, swap_y, swap_x), np.where(flip, swap_x, swap_y)
                s >>= 1
            wkb = np.empty((len(lon), 21), dtype=np.uint8)
            wkb[:, 0] = 1
            wkb[:, 1:5] = np.frombuffer(np.uint32(1).tobytes(), np.uint8)
            wkb[:, 5:13] = lon.view(np.uint8).reshape(-1, 8)
            wkb[:, 13:21] = lat.view(np.uint8).reshape(-1, 8)
            geometry = pa.FixedSizeBinaryArray.from_buffers(pa.binary(21), len(lon), [None, pa.py_buffer(wkb)])
            keys = pa.table({{"h": d, "geometry": geometry.cast(pa.binary())}})
            con.register("keys", keys)
            sql = f"SELECT t.*, k.geometry FROM read_parquet('{src}') t POSITIONAL JOIN keys k ORDER BY k.h"
            how = "numpy Hilbert key + WKB"
        con.execute(f"COPY ({{sql}}) TO '{out}' (FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE {CHUNK_ROWS})")
        print(json.dumps({{"seconds": time.perf_counter() - t, "how": how}}))
    """)


def median_ms(fn, queries, runs_cap=None):
    times = []
    for q in queries[:runs_cap] if runs_cap else queries:
        start = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def layout_quality(table: str, queries, uniform) -> tuple[float, float, float, float]:
    import fused
    import shapely

    meta = fused.get_chunks_metadata(table)
    boxes = meta.geometry.values
    tree = shapely.STRtree(boxes)
    left, right = tree.query(boxes, predicate="intersects")
    pairs = left < right
    overlap = shapely.area(shapely.intersection(boxes[left[pairs]], boxes[right[pairs]])).sum()
    overlap_frac = overlap / shapely.area(boxes).sum()
    def touched(qs):
        return float(np.mean([len(tree.query(shapely.box(*q), predicate="intersects")) for q in qs]))

    rows = meta.num_rows.to_numpy()
    return overlap_frac, touched(uniform), touched(queries), float(rows.std() / rows.mean())


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--compression", default="zstd", choices=("lz4", "zstd", "snappy"),
                        help="codec of both sides' output (default: the ingest's default)")
    args = parser.parse_args(argv)
    n = int((200_000 if args.quick else 10_000_000) * args.scale)
    n_queries = args.runs or (20 if args.quick else 100)

    work = tempfile.mkdtemp(prefix="terrafuse-bench-ingest-")
    try:
        src, csv = os.path.join(work, "points.parquet"), os.path.join(work, "points.csv")
        t = time.perf_counter()
        extent = generate(n, src, csv)
        print(f"data: {n:,} clustered points, 5 attribute columns "
              f"(generated in {time.perf_counter() - t:.1f} s)")

        table = os.path.join(work, "ingested")
        duck = os.path.join(work, "duck.parquet")
        ours, our_peak = run_child(ingest_child(src, table, args.compression))
        try:
            theirs, their_peak = run_child(duckdb_child(src, duck, args.compression))
            their_size = os.path.getsize(duck) / 1e6
        except RuntimeError as exc:
            print(f"duckdb peer unavailable: {str(exc).splitlines()[-1]}")
            theirs, their_peak, their_size = {"seconds": float("nan"), "cpu": float("nan"), "how": "n/a"}, \
                float("nan"), float("nan")
        our_size = sum(os.path.getsize(os.path.join(table, f)) for f in os.listdir(table)) / 1e6

        import fused
        import shapely

        # Queries: boxes of 0.01% of the data's area, centred on random rows.
        rng = np.random.default_rng(3)
        xy = pq.read_table(src, columns=["LON", "LAT"])
        idx = rng.integers(0, n, n_queries)
        w = (extent[2] - extent[0]) * 0.01
        h = (extent[3] - extent[1]) * 0.01
        cx, cy = xy["LON"].to_numpy()[idx], xy["LAT"].to_numpy()[idx]
        queries = [(x - w / 2, y - h / 2, x + w / 2, y + h / 2) for x, y in zip(cx, cy)]

        def ours_read(q):
            return fused.read_table(table, q)

        def ours_read_arrow(q):  # the engine's result as Arrow, like the peers' results
            return fused.read_table(table, q, as_arrow=True)

        def parquet_read(q):
            f = (pc.field("LON") >= q[0]) & (pc.field("LON") <= q[2]) & (pc.field("LAT") >= q[1]) & \
                (pc.field("LAT") <= q[3])
            return ds.dataset(src).to_table(filter=f)

        def csv_read(q):
            t = pcsv.read_csv(csv)
            m = pc.and_(pc.and_(pc.greater_equal(t["LON"], q[0]), pc.less_equal(t["LON"], q[2])),
                        pc.and_(pc.greater_equal(t["LAT"], q[1]), pc.less_equal(t["LAT"], q[3])))
            return t.filter(m)

        for q in queries[:3]:  # same rows on every side
            a, b = ours_read(q), parquet_read(q)
            assert sorted(a.vessel_id) == sorted(b["vessel_id"].to_pylist()), q
        ours_read(queries[0])
        parquet_read(queries[0])
        ours_ms = median_ms(ours_read, queries)
        ours_arrow_ms = median_ms(ours_read_arrow, queries)
        parquet_ms = median_ms(parquet_read, queries, runs_cap=max(5, n_queries // 4))
        csv_ms = median_ms(csv_read, queries, runs_cap=3)
        # The same box size placed uniformly over the data's extent (the layout metric, and a
        # second read case: what a map viewer panning over the extent asks).
        ux = rng.uniform(extent[0], extent[2] - w, 1000)
        uy = rng.uniform(extent[1], extent[3] - h, 1000)
        uniform = [(x, y, x + w, y + h) for x, y in zip(ux, uy)]
        ours_uniform_ms = median_ms(ours_read, uniform[:n_queries])
        rows_centred = statistics.median(len(ours_read(q)) for q in queries[:20])
        read_stats = [fused._table.read_table_arrow(table, q)[1] for q in queries[:20]]
        rows_decoded = statistics.median(s["rows_read"] for s in read_stats)
        chunks_decoded = statistics.median(s["chunks_read"] for s in read_stats)
        overlap, touched, touched_rows, cv = layout_quality(table, queries, uniform)
        del shapely

        rows = [
            ("ingest Parquet -> table (s)", ours["seconds"], theirs["seconds"]),
            ("small-bbox read p50, boxes centred on rows, vs unsorted Parquet (ms)", ours_ms, parquet_ms),
            ("  same, terrafuse returning Arrow like the peer (ms)", ours_arrow_ms, parquet_ms),
            ("small-bbox read p50, boxes centred on rows, vs CSV (ms)", ours_ms, csv_ms),
            ("small-bbox read p50, boxes uniform over the extent, vs unsorted Parquet (ms)", ours_uniform_ms,
             parquet_ms),
            ("small-bbox read p50, boxes uniform over the extent, vs CSV (ms)", ours_uniform_ms, csv_ms),
        ]
        print("\n| case | terrafuse | peer | ratio |\n|---|---|---|---|")
        for name, a, b in rows:
            print(f"| {name} | {a:.3f} | {b:.3f} | {b / a:.1f}x |")
        print(f"\npeer for ingest: DuckDB {theirs['how']} sort + COPY to Parquet "
              f"(ROW_GROUP_SIZE {CHUNK_ROWS}, {args.compression}); terrafuse: {ours['num_files']} files, "
              f"{ours['num_chunks']} chunks, {args.compression}")
        print(f"ingest CPU (user + sys): terrafuse {ours['cpu']:.1f} s, DuckDB {theirs['cpu']:.1f} s; "
              f"output size: terrafuse {our_size:.0f} MB, DuckDB {their_size:.0f} MB; "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"peak memory: terrafuse {our_peak:.2f} GB, DuckDB {their_peak:.2f} GB")
        print(f"read boxes: {w:.3f} x {h:.3f} degrees (0.01% of the extent); a box centred on a row "
              f"returns {rows_centred:,.0f} rows (median), decoding {rows_decoded:,.0f} rows of "
              f"{chunks_decoded:g} chunks")
        print(f"layout: overlap of chunk boxes {overlap:.4f} of their area, chunks touched per "
              f"0.01%-area query {touched:.2f} (uniform over the extent; {touched_rows:.2f} for the read "
              f"benchmark's queries, centred on rows), CV of rows per chunk {cv:.3f}")
        print("\ntargets (full size):")
        print(f"  ingest >= 1.5x DuckDB Hilbert sort: {theirs['seconds'] / ours['seconds']:.2f}x "
              f"{verdict(theirs['seconds'] / ours['seconds'] >= 1.5)}")
        print(f"  ingest peak memory <= 2.5 GB: {our_peak:.2f} GB {verdict(our_peak <= 2.5)}")
        for label, ms in (("centred on rows", ours_ms), ("centred on rows, Arrow result", ours_arrow_ms),
                          ("uniform", ours_uniform_ms)):
            print(f"  read p50 <= 30 ms ({label}): {ms:.1f} ms {verdict(ms <= 30)}")
            print(f"  read >= 20x unsorted Parquet ({label}): {parquet_ms / ms:.1f}x {verdict(parquet_ms / ms >= 20)}")
            print(f"  read >= 200x CSV ({label}): {csv_ms / ms:.1f}x {verdict(csv_ms / ms >= 200)}")
        print(f"  overlap <= 0.02: {verdict(overlap <= 0.02)}; chunks per query <= 1.3: "
              f"{verdict(touched <= 1.3)}; CV <= 0.1: {verdict(cv <= 0.1)}")
        if args.quick:
            print("  (--quick: too small for the targets to mean much)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

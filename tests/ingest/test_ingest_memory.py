"""Ingest memory is bounded by the memory budget, not the input's size: rows spill to disk.

The big case runs in a child process so its peak resident memory (VmHWM) is its own.
"""

from __future__ import annotations

import json
import subprocess
import sys

import fused
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

PAYLOAD = 400  # bytes of attributes per row: a wide row, so the input is big in few rows

CHILD = r"""
import json, sys
import fused, geopandas, pyarrow  # imported before the baseline

def hwm():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

src, out, budget, spill = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
base = hwm()
result = fused.ingest(src, out, lonlat_cols=("LON", "LAT"), partitioning_force_utm=None,
                      partitioning_split_method="median").run_local(show_progress=False, memory_budget=budget,
                                                                    spill_dir=spill)
print(json.dumps({"base": base, "peak": hwm(), "result": result}))
"""


def _write_wide_points(path, n: int, seed: int = 5) -> int:
    """Clustered points with a wide payload column, written 50k rows at a time (the test's
    own memory stays small). Returns the payload's size in memory, in bytes."""
    rng = np.random.default_rng(seed)
    centers = np.array([[-122.4, 37.8], [-74.0, 40.7], [2.35, 48.85], [139.7, 35.7], [18.4, -33.9]])
    schema = pa.schema([("id", pa.int64()), ("LON", pa.float64()), ("LAT", pa.float64()), ("payload", pa.binary())])
    step = 50_000
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for start in range(0, n, step):
            m = min(step, n - start)
            which = rng.integers(0, len(centers), m)
            # Bytes that differ per row but compress well on disk (the input file stays small).
            payload = np.tile(np.arange(start, start + m, dtype=np.int64)[:, None], (1, PAYLOAD // 8))
            writer.write_table(pa.table({
                "id": np.arange(start, start + m, dtype=np.int64),
                "LON": centers[which, 0] + rng.normal(0, 0.5, m),
                "LAT": centers[which, 1] + rng.normal(0, 0.5, m),
                "payload": pa.FixedSizeBinaryArray.from_buffers(pa.binary(PAYLOAD), m, [None, pa.py_buffer(payload)])
                .cast(pa.binary()),
            }, schema=schema), row_group_size=16_384)
    return n * PAYLOAD


def test_input_several_times_the_budget_stays_within_it(tmp_path):
    n = 1_500_000
    src = tmp_path / "wide.parquet"
    data_bytes = _write_wide_points(src, n)
    budget = 64 << 20
    assert data_bytes > 8 * budget
    out, spill = tmp_path / "table", tmp_path / "spill"
    spill.mkdir()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(src), str(out), str(budget), str(spill)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    growth = report["peak"] - report["base"]
    assert report["result"]["num_rows"] == n
    # Measured 140-195 MB: the budget's parts, plus fixed costs that a 64 MB budget does not
    # dwarf (Parquet reader buffers, allocator caches). Not the input's 600 MB.
    assert growth < 4 * budget, f"peak RSS grew by {growth / 2**20:.0f} MB for a {budget >> 20} MB budget"
    assert growth < data_bytes / 2
    meta = fused.get_chunks_metadata(str(out))
    assert meta.num_rows.sum() == n
    # A sample of the centroids cut the chunks: still near the default 1/100 of the rows each.
    rows = meta.num_rows.to_numpy()
    assert len(rows) >= 90 and rows.std() / rows.mean() < 0.15
    ids = pq.read_table(out, columns=["id"])["id"].to_numpy()
    assert len(ids) == n and len(np.unique(ids)) == n
    assert not list(spill.iterdir())  # the spill is removed


def _file_bytes(table):
    return {p.name: p.read_bytes() for p in sorted(table.iterdir())}


def test_small_budget_writes_the_same_table(tmp_path, make_points, monkeypatch, capfd):
    # 15,000 rows: the sample is every row even at 1 MB, so the cuts are the in-memory ones.
    # With the default budget the rows stay in memory; at 1 MB they are spilled and go
    # through many small bucket files. Both must come out byte for byte the same.
    df = make_points(15_000, seed=3)
    src = tmp_path / "p.parquet"
    df.to_parquet(src, index=False)
    monkeypatch.setenv("TERRAFUSE_INGEST_TIMING", "1")  # names the first phase "read" or "read+spill"
    outs, phases = [], []
    for name, budget in (("big", None), ("small", 1 << 20)):
        out = tmp_path / name
        fused.ingest(str(src), str(out), lonlat_cols=("LON", "LAT"), partitioning_maximum_per_chunk=500,
                     partitioning_force_utm=None).run_local(show_progress=False, memory_budget=budget)
        outs.append(out)
        phases.append(capfd.readouterr().err.split()[1])
    assert phases == ["read", "read+spill"]
    assert _file_bytes(outs[0]) == _file_bytes(outs[1])
    assert len(_file_bytes(outs[0])) > 3


def test_sampled_cuts_keep_every_row_and_the_layout(tmp_path, make_points):
    # 60,000 rows with a 1 MB budget: the sample holds about a quarter of them.
    df = make_points(60_000, seed=4)
    src = tmp_path / "p.parquet"
    df.to_parquet(src, index=False)
    metas = []
    for name, budget in (("exact", None), ("sampled", 1 << 20)):
        out = tmp_path / name
        fused.ingest(str(src), str(out), lonlat_cols=("LON", "LAT"), partitioning_maximum_per_chunk=1000,
                     partitioning_split_method="median", partitioning_force_utm=None
                     ).run_local(show_progress=False, memory_budget=budget)
        metas.append(fused.get_chunks_metadata(str(out)))
        ids = pq.read_table(out, columns=["id"])["id"].to_numpy()
        assert sorted(ids) == list(range(60_000))
    exact, sampled = metas
    assert exact.num_rows.max() == 1000
    # Cut by a quarter of the rows, the maximum holds within sampling noise.
    assert abs(len(sampled) - len(exact)) <= 0.15 * len(exact)
    rows = sampled.num_rows.to_numpy()
    assert rows.max() <= 1100 and rows.std() / rows.mean() < 0.1
    # Chunk boxes barely overlap, as in the exact layout.
    import shapely

    boxes = sampled.geometry.values
    tree = shapely.STRtree(boxes)
    left, right = tree.query(boxes, predicate="intersects")
    pairs = left < right
    overlap = shapely.area(shapely.intersection(boxes[left[pairs]], boxes[right[pairs]])).sum()
    assert overlap / shapely.area(boxes).sum() < 0.02


def test_failed_ingest_removes_its_spill(tmp_path, make_points):
    df = make_points(30_000, seed=6)
    df.loc[29_000, "LON"] = 500.0  # a bad row late in the input: the spill exists by then
    src = tmp_path / "p.parquet"
    df.to_parquet(src, index=False)
    spill = tmp_path / "spill"
    spill.mkdir()
    with pytest.raises(Exception, match="outside WGS84 bounds"):
        fused.ingest(str(src), str(tmp_path / "t"), lonlat_cols=("LON", "LAT"), drop_out_of_bounds=False).run_local(
            show_progress=False, spill_dir=str(spill), memory_budget=1 << 20)
    assert not list(spill.iterdir())
    assert not (tmp_path / "t").exists()


def test_bad_memory_budget(tmp_path, make_points, monkeypatch):
    src = tmp_path / "p.parquet"
    make_points(100).to_parquet(src, index=False)
    job = fused.ingest(str(src), str(tmp_path / "t"), lonlat_cols=("LON", "LAT"))
    with pytest.raises(ValueError, match="memory_budget"):
        job.run_local(show_progress=False, memory_budget=-5)
    monkeypatch.setenv("TERRAFUSE_INGEST_MEMORY", "lots")
    with pytest.raises(Exception, match="TERRAFUSE_INGEST_MEMORY"):
        job.run_local(show_progress=False)
    monkeypatch.setenv("TERRAFUSE_INGEST_MEMORY", "8MB")
    assert job.run_local(show_progress=False)["num_rows"] == 100

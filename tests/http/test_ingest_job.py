"""fused.ingest(...).run_remote(): an ingest as a job on the server, with its progress in the
job's logs."""

from __future__ import annotations

import numpy as np
import pandas as pd

import fused


def test_ingest_runs_as_a_server_job(remote, tmp_path, monkeypatch):
    rng = np.random.default_rng(11)
    df = pd.DataFrame({"LON": rng.uniform(-10, 10, 5000), "LAT": rng.uniform(40, 55, 5000), "v": np.arange(5000)})
    df.to_parquet(tmp_path / "points.parquet", index=False)
    monkeypatch.chdir(tmp_path)  # relative paths: the job gets them absolute
    job = fused.ingest("points.parquet", "table/", lonlat_cols=("LON", "LAT"), target_num_chunks=8).run_remote()
    job.wait_for_job(poll_interval_seconds=0.2, timeout=120)
    assert job.status == "succeeded", job.get_logs()
    meta = fused.get_chunks_metadata(str(tmp_path / "table"))
    assert int(meta["num_rows"].sum()) == len(df)
    texts = [line["text"] for line in job.get_logs()]
    assert any("ingested 5,000 rows" in t for t in texts)
    assert any(t.startswith("ingest [") and "rows/s" in t for t in texts)  # the progress, as lines


def test_a_failing_ingest_job_reports_the_error(remote, tmp_path):
    job = fused.ingest(str(tmp_path / "missing.parquet"), str(tmp_path / "out")).run_remote()
    job.wait_for_job(poll_interval_seconds=0.2, timeout=120)
    assert job.status == "failed"
    assert any("missing.parquet" in line["text"] for line in job.get_logs())
    assert not (tmp_path / "out").exists()

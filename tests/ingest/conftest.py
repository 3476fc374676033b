"""Data for the ingest tests, generated small and fresh per test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def _make_points(n: int, seed: int = 0) -> pd.DataFrame:
    """Clustered points with a few attribute columns (lon/lat in LON/LAT)."""
    rng = np.random.default_rng(seed)
    centers = np.array([[-122.4, 37.8], [-74.0, 40.7], [2.35, 48.85], [139.7, 35.7]])
    which = rng.integers(0, len(centers), n)
    lon = centers[which, 0] + rng.normal(0, 0.3, n)
    lat = centers[which, 1] + rng.normal(0, 0.3, n)
    return pd.DataFrame({
        "id": np.arange(n, dtype=np.int64),
        "LON": lon,
        "LAT": lat,
        "speed": rng.uniform(0, 30, n),
        "name": [f"v{i % 97}" for i in range(n)],
    })


@pytest.fixture
def make_points():
    return _make_points


@pytest.fixture
def points_parquet(tmp_path):
    df = _make_points(20_000, seed=1)
    path = tmp_path / "points.parquet"
    df.to_parquet(path, index=False)
    return path, df


@pytest.fixture
def polygons_gdf():
    import geopandas as gpd
    import shapely

    rng = np.random.default_rng(5)
    n = 600
    x = rng.uniform(-10, 10, n)
    y = rng.uniform(40, 50, n)
    size = rng.uniform(0.01, 0.2, n)
    geoms = shapely.box(x, y, x + size, y + size)
    return gpd.GeoDataFrame({"pid": np.arange(n), "kind": rng.integers(0, 3, n)}, geometry=geoms,
                            crs="EPSG:4326")

"""Which optional libraries are importable; the public catalog's helpers read these flags."""

from __future__ import annotations

import importlib.util


def _has(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


HAS_GEOPANDAS = _has("geopandas")
HAS_SHAPELY = _has("shapely")
HAS_MERCANTILE = _has("mercantile")
HAS_PANDAS = _has("pandas")
HAS_H3 = _has("h3")
HAS_XARRAY = _has("xarray")

GPD_GEODATAFRAME: tuple = ()
SHAPELY_GEOMETRY: tuple = ()
MERCANTILE_TILE: tuple = ()
if HAS_GEOPANDAS:
    import geopandas

    GPD_GEODATAFRAME = (geopandas.GeoDataFrame,)
if HAS_SHAPELY:
    import shapely

    SHAPELY_GEOMETRY = (shapely.geometry.base.BaseGeometry,)
if HAS_MERCANTILE:
    import mercantile

    MERCANTILE_TILE = (mercantile.Tile,)

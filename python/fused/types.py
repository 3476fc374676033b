"""Parameter types of UDFs (``fused.types``).

``Bounds`` is the modern way for a UDF to receive the area it runs on: a list
``[xmin, ymin, xmax, ymax]`` in EPSG:4326. The others are legacy types kept so old UDFs run:
``Tile``/``TileGDF``/``TileXYZ`` receive a GeoDataFrame with ``x, y, z, geometry`` (and a UDF
typed with them runs once per covering tile), ``ViewportGDF``/``Bbox`` a GeoDataFrame with
the bounds polygon.
"""

from __future__ import annotations

from typing import List


class Bounds(List[float]):
    """``[xmin, ymin, xmax, ymax]`` in EPSG:4326."""


class _LegacyGeoDataFrame:
    """Marker base for legacy GeoDataFrame-valued bounds types."""

    per_tile = False


class Tile(_LegacyGeoDataFrame):
    """[Legacy] GeoDataFrame with one row: ``x``, ``y``, ``z`` and the tile polygon."""

    per_tile = True


class TileGDF(Tile):
    """[Legacy] Same as :class:`Tile`."""


class TileXYZ(Tile):
    """[Legacy] Same as :class:`Tile`."""


class ViewportGDF(_LegacyGeoDataFrame):
    """[Legacy] GeoDataFrame with one row: the polygon of the bounds."""


class Bbox(ViewportGDF):
    """[Legacy] Same as :class:`ViewportGDF`."""


__all__ = ["Bounds", "Tile", "TileGDF", "TileXYZ", "ViewportGDF", "Bbox"]

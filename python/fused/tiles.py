"""Web-mercator XYZ tile math computed by the terrafuse engine.

A drop-in for the parts of `mercantile <https://github.com/mapbox/mercantile>`_ that UDFs
use: the same names, arguments and results (bit for bit), so ``import fused.tiles as
mercantile`` works for code that calls only the functions below (``ul``, ``xy``,
``lnglat``, ``neighbors``, ``simplify`` and ``feature`` are not provided). This module is a
terrafuse extension; the Fused SDK has no equivalent.

Two additions make covers fast: :func:`tiles_array` returns the tiles covering bounds as an
``(N, 3)`` int64 numpy array built in C++ without a Python object per tile, and
:func:`estimate_zoom` picks a zoom for bounds with the rule of the Fused catalog's
``common.estimate_zoom``.

Differences from mercantile 1.2.1, almost all where mercantile returns an invalid or
meaningless answer:

- Invalid input raises :class:`fused._errors.InvalidArgumentError` (a ``ValueError``) whose
  message names the value and the valid range: zoom outside 0..30, tile x or y outside
  0..2**z - 1, NaN or infinite coordinates (mercantile clamps infinite longitudes),
  latitudes outside [-90, 90], south > north, quadkeys with characters other than 0-3.
  mercantile warns, raises ``MercantileError`` or returns a tile.
- Latitudes within about 6e-7 degrees of a pole (beyond +-89.9999993) have no web mercator
  y; both mercantile and terrafuse raise, terrafuse with ``InvalidArgumentError``.
- :func:`tile` clamps x and y to 2**z - 1 for points within 1e-14 world widths of the east
  or south edge of the map, where mercantile returns the invalid index 2**z.
- :func:`bounding_tile` returns ``Tile(0, 0, 0)`` for bounds crossing the antimeridian
  (west > east); mercantile returns a tile that does not contain them.
- :func:`tiles` returns a list rather than a generator, and refuses covers of more than
  ``max_tiles`` tiles (default 2**26) instead of running out of memory.
- :func:`children` refuses zooms above 30 and more than ``max_tiles`` descendants.
"""

from __future__ import annotations

import operator
from collections import namedtuple
from collections.abc import Iterable
from functools import partial

from fused import _core
from fused._errors import InvalidArgumentError

__all__ = [
    "DEFAULT_MAX_TILES",
    "MAX_ZOOM",
    "Bbox",
    "LngLatBbox",
    "Tile",
    "bounding_tile",
    "bounds",
    "children",
    "estimate_zoom",
    "parent",
    "quadkey",
    "quadkey_to_tile",
    "tile",
    "tiles",
    "tiles_array",
    "xy_bounds",
]

_engine = _core.tiles

MAX_ZOOM: int = _engine.MAX_ZOOM
"""The largest zoom level accepted (30)."""

DEFAULT_MAX_TILES: int = _engine.DEFAULT_MAX_TILES
"""The default cap on the number of tiles one call returns (2**26)."""

Tile = namedtuple("Tile", ["x", "y", "z"])
Tile.__doc__ = """An XYZ web mercator tile: column ``x`` and row ``y`` (from the north-west
corner) at zoom ``z``. Equal to a ``mercantile.Tile`` with the same values."""

LngLatBbox = namedtuple("LngLatBbox", ["west", "south", "east", "north"])
LngLatBbox.__doc__ = """A geographic bounding box in decimal degrees."""

Bbox = namedtuple("Bbox", ["left", "bottom", "right", "top"])
Bbox.__doc__ = """A web mercator (EPSG:3857) bounding box in meters."""

# tuple.__new__ bound to Tile builds a Tile from a row without a Python-level call.
_new_tile = partial(tuple.__new__, Tile)


# --- argument parsing: fast path straight into the engine, precise messages on the slow path


def _integer(name, value):
    try:
        return operator.index(value)
    except TypeError:
        pass
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise InvalidArgumentError(f"Invalid {name}={value!r}: must be an integer")


def _number(name, value):
    if isinstance(value, (str, bytes)):
        raise InvalidArgumentError(f"Invalid {name}={value!r}: must be a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"Invalid {name}={value!r}: must be a number") from None


def _tile_arg(args):
    """Return (x, y, z) ints from ``*tile`` arguments: a Tile, a 3-sequence or 3 ints."""
    if len(args) == 1:
        args = args[0]
    try:
        count = len(args)
    except TypeError:
        count = -1
    if count != 3:
        raise InvalidArgumentError(
            f"Invalid tile {args!r}: pass a Tile, a sequence (x, y, z) or three integers x, y, z"
            " (zoom is a keyword-only argument)"
        )
    x, y, z = args
    return _integer("x", x), _integer("y", y), _integer("z", z)


def _optional_zoom(zoom):
    return None if zoom is None else _integer("zoom", zoom)


def _zoom_list(zooms):
    if isinstance(zooms, Iterable) and not isinstance(zooms, (str, bytes)):
        return [_integer("zoom", z) for z in zooms]
    return [_integer("zoom", zooms)]


def _bounds_arg(west, south, east, north):
    return (
        _number("west", west),
        _number("south", south),
        _number("east", east),
        _number("north", north),
    )


def _truncate(lng, lat):
    return min(max(lng, -180.0), 180.0), min(max(lat, -90.0), 90.0)


# --- public API


def bounds(*tile):
    """Return the geographic bounds of a tile.

    Parameters
    ----------
    *tile : Tile or (int, int, int)
        A :class:`Tile`, a sequence ``(x, y, z)``, or three integers x, y, z.

    Returns
    -------
    LngLatBbox
        West, south, east and north edges in decimal degrees.

    Raises
    ------
    InvalidArgumentError
        If z is outside 0..30 or x, y outside 0..2**z - 1.

    Examples
    --------
    >>> bounds(486, 332, 10)
    LngLatBbox(west=-9.140625, south=53.120405283106564, east=-8.7890625, north=53.33087298301705)
    """
    if len(tile) == 1:
        tile = tile[0]
    try:
        return LngLatBbox._make(_engine.bounds(*tile))
    except TypeError:
        return LngLatBbox._make(_engine.bounds(*_tile_arg((tile,))))


def xy_bounds(*tile):
    """Return the web mercator bounds of a tile in meters.

    Parameters
    ----------
    *tile : Tile or (int, int, int)
        A :class:`Tile`, a sequence ``(x, y, z)``, or three integers x, y, z.

    Returns
    -------
    Bbox
        Left, bottom, right and top in EPSG:3857 meters.

    Raises
    ------
    InvalidArgumentError
        If z is outside 0..30 or x, y outside 0..2**z - 1.

    Examples
    --------
    >>> xy_bounds(0, 0, 1)
    Bbox(left=-20037508.342789244, bottom=0.0, right=0.0, top=20037508.342789244)
    """
    if len(tile) == 1:
        tile = tile[0]
    try:
        return Bbox._make(_engine.xy_bounds(*tile))
    except TypeError:
        return Bbox._make(_engine.xy_bounds(*_tile_arg((tile,))))


def tile(lng, lat, zoom, truncate=False):
    """Return the tile containing a point at a zoom.

    Longitudes beyond +-180 fall in the first or last column and latitudes beyond the edge of
    the map (+-85.0511) in the first or last row, as in mercantile. A point on a tile edge
    belongs to the tile east or south of it.

    Parameters
    ----------
    lng, lat : float
        Longitude and latitude in decimal degrees.
    zoom : int
        Zoom level, 0..30.
    truncate : bool, default False
        Clamp lng to [-180, 180] and lat to [-90, 90] first.

    Returns
    -------
    Tile

    Raises
    ------
    InvalidArgumentError
        If zoom is outside 0..30, lng or lat is not finite, lat is outside [-90, 90], or lat
        is within about 6e-7 degrees of a pole.

    Examples
    --------
    >>> tile(-122.4194, 37.7749, 11)
    Tile(x=327, y=791, z=11)
    """
    if truncate:
        lng, lat = _truncate(_number("lng", lng), _number("lat", lat))
    try:
        return _new_tile(_engine.tile(lng, lat, zoom))
    except TypeError:
        lng, lat, zoom = _number("lng", lng), _number("lat", lat), _integer("zoom", zoom)
        return _new_tile(_engine.tile(lng, lat, zoom))


def tiles(west, south, east, north, zooms, truncate=False, *, max_tiles=DEFAULT_MAX_TILES):
    """Return the tiles overlapping geographic bounds, as ``list(mercantile.tiles(...))``.

    Bounds with west > east cross the antimeridian and are split into [-180, east] and
    [west, 180], listed in that order. Longitudes are clamped to [-180, 180] and latitudes to
    [-85.051129, 85.051129]. Tiles are listed zoom by zoom (in the order given, repeats
    included), column by column. The east and south edges are moved inwards by 1e-11 degrees,
    so the bounds of a tile give that one tile.

    Parameters
    ----------
    west, south, east, north : float
        Bounds in decimal degrees.
    zooms : int or sequence of int
        One or more zoom levels, 0..30.
    truncate : bool, default False
        Clamp longitudes to [-180, 180] and latitudes to [-90, 90] first.
    max_tiles : int, default DEFAULT_MAX_TILES
        Refuse covers of more tiles than this.

    Returns
    -------
    list of Tile

    Raises
    ------
    InvalidArgumentError
        If a coordinate is not finite, a latitude is outside [-90, 90], south > north, a
        zoom is outside 0..30, or the cover has more than ``max_tiles`` tiles.

    See Also
    --------
    tiles_array : the same tiles as an (N, 3) numpy array, much faster.

    Examples
    --------
    >>> tiles(170, -10, -170, 10, 2)
    [Tile(x=0, y=1, z=2), Tile(x=0, y=2, z=2), Tile(x=3, y=1, z=2), Tile(x=3, y=2, z=2)]
    """
    if truncate:
        west, south = _truncate(_number("west", west), _number("south", south))
        east, north = _truncate(_number("east", east), _number("north", north))
    zooms = [zooms] if type(zooms) is int else _zoom_list(zooms)
    try:
        return _engine.tiles_list(west, south, east, north, zooms, max_tiles, Tile)
    except TypeError:
        west, south, east, north = _bounds_arg(west, south, east, north)
        max_tiles = _integer("max_tiles", max_tiles)
        return _engine.tiles_list(west, south, east, north, zooms, max_tiles, Tile)


def tiles_array(west, south, east, north, zoom, truncate=False, *, max_tiles=DEFAULT_MAX_TILES):
    """Return the tiles overlapping geographic bounds as an ``(N, 3)`` int64 array.

    The rows are the tiles of :func:`tiles`, in the same order, as ``x, y, z``. The array is
    built in C++ (without holding the GIL) and handed to numpy without a copy.

    Parameters
    ----------
    west, south, east, north : float
        Bounds in decimal degrees; west > east crosses the antimeridian.
    zoom : int or sequence of int
        One or more zoom levels, 0..30.
    truncate : bool, default False
        Clamp longitudes to [-180, 180] and latitudes to [-90, 90] first.
    max_tiles : int, default DEFAULT_MAX_TILES
        Refuse covers of more tiles than this.

    Returns
    -------
    numpy.ndarray
        Shape ``(N, 3)``, dtype int64, C-contiguous.

    Raises
    ------
    InvalidArgumentError
        As :func:`tiles`.

    Examples
    --------
    >>> tiles_array(-105, 39.99, -104.99, 40, 14)
    array([[3413, 6202,   14],
           [3413, 6203,   14]], dtype=int64)
    """
    if truncate:
        west, south = _truncate(_number("west", west), _number("south", south))
        east, north = _truncate(_number("east", east), _number("north", north))
    zooms = [zoom] if type(zoom) is int else _zoom_list(zoom)
    try:
        return _engine.tiles_array(west, south, east, north, zooms, max_tiles)
    except TypeError:
        return _engine.tiles_array(
            *_bounds_arg(west, south, east, north), zooms, _integer("max_tiles", max_tiles)
        )


def bounding_tile(*bbox, truncate=False):
    """Return the smallest tile containing geographic bounds or a point.

    Bounds that straddle the equator or the prime meridian, touch a pole, or cross the
    antimeridian (west > east) give ``Tile(0, 0, 0)``. The zoom is at most 28.

    Parameters
    ----------
    *bbox : float
        ``west, south, east, north``, or a point ``lng, lat`` (a single sequence of either is
        accepted too).
    truncate : bool, default False
        Clamp longitudes to [-180, 180] and latitudes to [-90, 90] first.

    Returns
    -------
    Tile

    Raises
    ------
    InvalidArgumentError
        If not 2 or 4 values are given, one is not finite, a latitude is outside [-90, 90]
        or south > north.

    Examples
    --------
    >>> bounding_tile(-92, 0.5, -91, 1)
    Tile(x=31, y=63, z=7)
    """
    if len(bbox) == 4 and not truncate:
        try:
            return _new_tile(_engine.bounding_tile(*bbox))
        except TypeError:
            pass  # not numbers: _bounds_arg names the bad value
    if len(bbox) == 1 and isinstance(bbox[0], Iterable):
        bbox = tuple(bbox[0])
    if len(bbox) == 2:
        bbox = bbox + bbox
    if len(bbox) != 4:
        raise InvalidArgumentError(
            f"Invalid bbox {bbox!r}: pass west, south, east, north or a point lng, lat"
        )
    west, south, east, north = _bounds_arg(*bbox)
    if truncate:
        west, south = _truncate(west, south)
        east, north = _truncate(east, north)
    return _new_tile(_engine.bounding_tile(west, south, east, north))


def parent(*tile, zoom=None):
    """Return the parent of a tile, or its ancestor at a zoom.

    Parameters
    ----------
    *tile : Tile or (int, int, int)
        A :class:`Tile`, a sequence ``(x, y, z)``, or three integers x, y, z.
    zoom : int, optional
        Zoom of the ancestor, 0..z - 1. Defaults to z - 1.

    Returns
    -------
    Tile or None
        None for the root tile ``Tile(0, 0, 0)``, as in mercantile.

    Raises
    ------
    InvalidArgumentError
        If the tile is invalid or zoom is outside 0..z - 1.

    Examples
    --------
    >>> parent(486, 332, 10, zoom=5)
    Tile(x=15, y=10, z=5)
    """
    x, y, z = _tile_arg(tile)
    if z == 0:
        _engine.validate_tile(x, y, z)
        return None
    return _new_tile(_engine.parent(x, y, z, _optional_zoom(zoom)))


def children(*tile, zoom=None, max_tiles=DEFAULT_MAX_TILES):
    """Return the children of a tile, or its descendants at a zoom.

    Parameters
    ----------
    *tile : Tile or (int, int, int)
        A :class:`Tile`, a sequence ``(x, y, z)``, or three integers x, y, z.
    zoom : int, optional
        Zoom of the descendants, z..30 (z gives the tile itself). Defaults to z + 1.
    max_tiles : int, default DEFAULT_MAX_TILES
        Refuse to return more tiles than this.

    Returns
    -------
    list of Tile
        In mercantile's order: depth first, each level clockwise from the top-left child
        (top-left, top-right, bottom-right, bottom-left).

    Raises
    ------
    InvalidArgumentError
        If the tile is invalid, zoom is outside z..30, or there are more than ``max_tiles``.

    Examples
    --------
    >>> children(1, 1, 1)
    [Tile(x=2, y=2, z=2), Tile(x=3, y=2, z=2), Tile(x=3, y=3, z=2), Tile(x=2, y=3, z=2)]
    """
    x, y, z = _tile_arg(tile)
    zoom = _optional_zoom(zoom)
    return _engine.children(x, y, z, zoom, _integer("max_tiles", max_tiles), Tile)


def quadkey(*tile):
    """Return the quadkey of a tile.

    Parameters
    ----------
    *tile : Tile or (int, int, int)
        A :class:`Tile`, a sequence ``(x, y, z)``, or three integers x, y, z.

    Returns
    -------
    str
        z digits 0-3; ``""`` for the root tile.

    Raises
    ------
    InvalidArgumentError
        If the tile is invalid.

    Examples
    --------
    >>> quadkey(486, 332, 10)
    '0313102310'
    """
    if len(tile) == 1:
        tile = tile[0]
    try:
        return _engine.quadkey(*tile)
    except TypeError:
        return _engine.quadkey(*_tile_arg((tile,)))


def quadkey_to_tile(qk):
    """Return the tile of a quadkey.

    Parameters
    ----------
    qk : str
        Up to 30 digits 0-3; ``""`` is the root tile.

    Returns
    -------
    Tile

    Raises
    ------
    InvalidArgumentError
        If qk is not a str, has a character other than 0-3, or more than 30 digits.

    Examples
    --------
    >>> quadkey_to_tile("0313102310")
    Tile(x=486, y=332, z=10)
    """
    if not isinstance(qk, str):
        raise InvalidArgumentError(f"Invalid quadkey {qk!r}: must be a str of digits 0-3")
    return _new_tile(_engine.quadkey_to_tile(qk))


def estimate_zoom(bounds, target_num_tiles=1):
    """Estimate the zoom at which bounds fill about ``target_num_tiles`` tiles.

    The rule is that of ``estimate_zoom`` in the Fused catalog's ``common`` module:

    - ``target_num_tiles=1``: from zoom 20 down to 1, the first zoom at which the tile under
      the center of the bounds is at least as wide and as tall, in degrees, as the bounds
      (less 1e-11); 1 if none is. The result is in 1..20, never 0.
    - ``target_num_tiles=n > 1``: ``floor(20 + log2(sqrt(n) / d))``, d being the larger of
      the bounds' width and height in zoom-20 tiles, plus one if the bounds cover fewer than
      n tiles at that zoom; clamped to 0..30.

    Parameters
    ----------
    bounds : sequence of 4 floats, GeoDataFrame, shapely geometry or Tile
        ``[west, south, east, north]`` in decimal degrees; a GeoDataFrame's ``total_bounds``
        or a geometry's ``bounds`` (assumed to be in EPSG:4326); for a tile, its zoom is
        returned.
        Unlike Fused, which raises ``TypeError`` for them, tuples and arrays are accepted.
    target_num_tiles : int, default 1
        How many tiles the bounds should fill, at least 1.

    Returns
    -------
    int

    Raises
    ------
    InvalidArgumentError
        If bounds are not 4 finite numbers with latitudes in [-90, 90] and south <= north,
        the center is within about 6e-7 degrees of a pole, or target_num_tiles < 1.

    Examples
    --------
    >>> estimate_zoom([-122.4194, 37.7749, -122.4094, 37.7849])
    14
    """
    if isinstance(bounds, tuple) and getattr(bounds, "_fields", None) == ("x", "y", "z"):
        return _integer("z", bounds[2])
    if hasattr(bounds, "total_bounds"):  # GeoDataFrame / GeoSeries
        bounds = bounds.total_bounds
    elif hasattr(bounds, "bounds") and not isinstance(bounds, Iterable):  # shapely geometry
        bounds = bounds.bounds
    try:
        values = list(bounds)
    except TypeError:
        values = None
    if values is None or len(values) != 4:
        raise InvalidArgumentError(
            f"Invalid bounds {bounds!r}: pass [west, south, east, north], a GeoDataFrame, a"
            " shapely geometry or a Tile"
        )
    west, south, east, north = _bounds_arg(*values)
    target = _integer("target_num_tiles", target_num_tiles)
    return _engine.estimate_zoom(west, south, east, north, target)

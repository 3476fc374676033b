"""fused.tiles against its peer, mercantile: property tests on seeded random inputs, the
documented differences, and one test per error message."""

from __future__ import annotations

import math
import random
import warnings

import numpy as np
import pytest

mercantile = pytest.importorskip("mercantile")

from fused import tiles  # noqa: E402
from fused._errors import InvalidArgumentError  # noqa: E402

SEED = 20240611
N = 3000  # random cases per property
MAX_LAT = 85.0511287798066  # north edge of the web mercator map


@pytest.fixture(autouse=True)
def _quiet_mercantile():
    # mercantile warns (FutureWarning) about the invalid tiles some of its answers hold.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


# --- random inputs -------------------------------------------------------------------------


def random_tile(rng, min_zoom=0, max_zoom=tiles.MAX_ZOOM):
    z = rng.randint(min_zoom, max_zoom)
    return tiles.Tile(rng.randrange(2**z), rng.randrange(2**z), z)


def random_lng(rng):
    """Mostly uniform, often exactly on a tile edge or the antimeridian, sometimes beyond."""
    kind = rng.random()
    if kind < 0.6:
        return rng.uniform(-180.0, 180.0)
    if kind < 0.85:
        return mercantile.bounds(random_tile(rng, 0, 24)).west
    if kind < 0.95:
        return rng.choice([-180.0, 180.0, 0.0, -179.99999999999, 179.99999999999])
    return rng.uniform(-540.0, 540.0)


def random_lat(rng):
    """Mostly inside the map, often on a tile edge, sometimes between the map edge and a pole."""
    kind = rng.random()
    if kind < 0.6:
        return rng.uniform(-MAX_LAT, MAX_LAT)
    if kind < 0.85:
        return mercantile.bounds(random_tile(rng, 0, 24)).north
    if kind < 0.95:
        edges = [0.0, MAX_LAT, -MAX_LAT, 85.051129, -85.051129, 89.9999993, -89.9999993]
        return rng.choice(edges)
    if kind < 0.98:
        return rng.uniform(-89.9999993, 89.9999993)
    return rng.choice([90.0, -90.0, 89.9999995, -89.99999999])  # mercantile raises


def random_bounds(rng):
    """(west, south, east, north, zoom) with a cover of at most a few thousand tiles."""
    span = 10 ** rng.uniform(-7, 2.5)
    west = random_lng(rng) if rng.random() < 0.8 else rng.uniform(-180, 180)
    if rng.random() < 0.15:  # crosses the antimeridian
        west = rng.uniform(180 - span, 180)
        east = west + span - 360
    else:
        east = west + span * rng.uniform(0, 1)
    if rng.random() < 0.05:
        east = west  # empty when on a tile edge (east moves inwards by 1e-11)
    south = random_lat(rng)
    north = min(90.0, south + span * rng.uniform(0, 1))
    if rng.random() < 0.05:
        north = south
    if rng.random() < 0.1:  # reaches towards or touches a pole
        south = rng.choice([-90.0, -89.0, south])
        north = max(south, rng.choice([89.0, 89.99999, 90.0]))
    # Largest zoom at which the box spans about 60 tiles across and down, at most 30.
    extent = max(span, north - south, 1e-9)
    zoom = rng.randint(0, max(0, min(30, int(math.log2(60 * 360 / extent)))))
    if abs(south) > 80 or abs(north) > 80:
        zoom = min(zoom, 12)  # mercator rows grow towards the poles
    return west, south, east, north, zoom


def mercantile_or_error(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except mercantile.MercantileError as exc:
        return exc


# --- properties: equal to mercantile -------------------------------------------------------


def test_bounds_and_xy_bounds_equal_mercantile():
    rng = random.Random(SEED)
    for _ in range(N):
        t = random_tile(rng)
        assert tiles.bounds(t) == mercantile.bounds(t), t
        assert tiles.bounds(*t) == mercantile.bounds(*t), t
        assert tiles.xy_bounds(t) == mercantile.xy_bounds(t), t
    assert type(tiles.bounds(0, 0, 0)) is tiles.LngLatBbox
    assert type(tiles.xy_bounds(0, 0, 0)) is tiles.Bbox


def test_tile_equals_mercantile():
    rng = random.Random(SEED + 1)
    compared = 0
    for _ in range(N):
        lng, lat, z = random_lng(rng), random_lat(rng), rng.randint(0, tiles.MAX_ZOOM)
        expected = mercantile_or_error(mercantile.tile, lng, lat, z)
        if isinstance(expected, Exception):
            with pytest.raises(InvalidArgumentError, match="web mercator y is infinite"):
                tiles.tile(lng, lat, z)
            continue
        # Documented difference: mercantile can answer 2**z within 1e-14 of the east or
        # south edge of the map; terrafuse answers the last column or row.
        expected = tiles.Tile(min(expected.x, 2**z - 1), min(expected.y, 2**z - 1), z)
        assert tiles.tile(lng, lat, z) == expected, (lng, lat, z)
        compared += 1
    assert compared > N * 0.9


def test_tile_of_a_tile_corner_is_that_tile():
    rng = random.Random(SEED + 2)
    for _ in range(N):
        t = random_tile(rng, 0, 28)
        west, _, _, north = mercantile.bounds(t)
        assert tiles.tile(west, north, t.z) == mercantile.tile(west, north, t.z) == t


def test_tiles_and_tiles_array_equal_mercantile():
    rng = random.Random(SEED + 3)
    total = 0
    for _ in range(N):
        west, south, east, north, z = random_bounds(rng)
        zooms = z if rng.random() < 0.7 else [z, max(0, z - 1), z]
        bounds = (west, south, east, north)
        expected = mercantile_or_error(lambda: list(mercantile.tiles(*bounds, zooms)))
        if isinstance(expected, Exception):
            with pytest.raises(InvalidArgumentError, match="web mercator y is infinite"):
                tiles.tiles(west, south, east, north, zooms)
            continue
        got = tiles.tiles(west, south, east, north, zooms)
        assert got == expected, (west, south, east, north, zooms)
        assert all(type(t) is tiles.Tile for t in got)
        array = tiles.tiles_array(west, south, east, north, zooms)
        assert array.dtype == np.int64 and array.shape == (len(expected), 3)
        assert array.flags.c_contiguous
        assert array.tolist() == [list(t) for t in expected]
        total += len(expected)
    assert total > N  # the cases were not all empty


def test_tiles_of_tile_bounds_is_that_tile():
    rng = random.Random(SEED + 4)
    for _ in range(N):
        t = random_tile(rng, 0, 28)
        b = mercantile.bounds(t)
        assert tiles.tiles(*b, t.z) == list(mercantile.tiles(*b, t.z)) == [t]


def test_bounding_tile_equals_mercantile():
    rng = random.Random(SEED + 5)
    for _ in range(N):
        west, south, east, north, _ = random_bounds(rng)
        if west > east:
            # Documented difference: no tile but the root contains such bounds.
            assert tiles.bounding_tile(west, south, east, north) == (0, 0, 0)
            continue
        expected = mercantile.bounding_tile(west, south, east, north)
        assert tiles.bounding_tile(west, south, east, north) == expected, (west, south, east, north)
        assert tiles.bounding_tile(west, south) == mercantile.bounding_tile(west, south)


def test_bounding_tile_of_tile_bounds_is_that_tile():
    rng = random.Random(SEED + 6)
    for _ in range(N):
        t = random_tile(rng, 1, 28)
        b = mercantile.bounds(t)
        assert tiles.bounding_tile(*b) == mercantile.bounding_tile(*b)


def test_parent_and_children_equal_mercantile():
    rng = random.Random(SEED + 7)
    for _ in range(N):
        t = random_tile(rng, 1, tiles.MAX_ZOOM)
        assert tiles.parent(t) == mercantile.parent(t), t
        zoom = rng.randint(0, t.z - 1)
        assert tiles.parent(*t, zoom=zoom) == mercantile.parent(*t, zoom=zoom), (t, zoom)
        c = random_tile(rng, 0, tiles.MAX_ZOOM - 1)
        assert tiles.children(c) == mercantile.children(c), c
        zoom = rng.randint(c.z, min(tiles.MAX_ZOOM, c.z + 3))
        got = tiles.children(c, zoom=zoom)
        assert got == mercantile.children(c, zoom=zoom), (c, zoom)
        assert all(type(t) is tiles.Tile for t in got)
    assert tiles.parent(0, 0, 0) is mercantile.parent(0, 0, 0) is None


def test_quadkeys_equal_mercantile():
    rng = random.Random(SEED + 8)
    for _ in range(N):
        t = random_tile(rng)
        qk = mercantile.quadkey(t)
        assert tiles.quadkey(t) == tiles.quadkey(*t) == qk
        assert tiles.quadkey_to_tile(qk) == mercantile.quadkey_to_tile(qk) == t
    assert tiles.quadkey_to_tile("") == mercantile.quadkey_to_tile("") == (0, 0, 0)


def fused_estimate_zoom(bounds, target_num_tiles=1):
    """estimate_zoom of the Fused catalog's common.py, for list bounds (the peer)."""
    minx, miny, maxx, maxy = bounds
    if target_num_tiles == 1:
        centroid = (minx + maxx) / 2, (miny + maxy) / 2
        width = (maxx - minx) - 1e-11
        height = (maxy - miny) - 1e-11
        for z in range(20, 0, -1):
            tile = mercantile.tile(*centroid, zoom=z)
            west, south, east, north = mercantile.bounds(tile)
            if width <= (east - west) and height <= (north - south):
                break
        return z
    miny = max(miny, -89.9999993)
    maxy = min(maxy, 89.9999993)
    x_min, y_min, _ = mercantile.tile(minx, maxy, 20)
    x_max, y_max, _ = mercantile.tile(maxx, miny, 20)
    zoom = math.log2(math.sqrt(target_num_tiles) / max(x_max - x_min + 1, y_max - y_min + 1)) + 20
    zoom = min(max(int(math.floor(zoom)), 0), 30)
    # Fused counts the tiles that intersect the box (shapely): the same as mercantile.tiles
    # inside the map.
    count = len(list(mercantile.tiles(*bounds, zoom)))
    return zoom if count >= target_num_tiles or zoom == 30 else zoom + 1


def test_estimate_zoom_equals_fused():
    rng = random.Random(SEED + 9)
    for _ in range(N):
        west, south, east, north, _ = random_bounds(rng)
        if west > east or max(abs(south), abs(north)) > MAX_LAT:
            continue
        bounds = [west, south, east, north]
        if max(abs(south + north) / 2, 0) > 89.9999993:
            continue
        assert tiles.estimate_zoom(bounds) == fused_estimate_zoom(bounds), bounds
        target = rng.choice([2, 4, 9, 16, 50])
        assert tiles.estimate_zoom(bounds, target) == fused_estimate_zoom(bounds, target), (
            bounds,
            target,
        )


def test_estimate_zoom_accepts_what_fused_accepts():
    shapely = pytest.importorskip("shapely")
    gpd = pytest.importorskip("geopandas")
    box = [-122.4194, 37.7749, -122.4094, 37.7849]
    assert tiles.estimate_zoom(box) == 14
    assert tiles.estimate_zoom(tuple(box)) == 14
    assert tiles.estimate_zoom(np.array(box)) == 14
    assert tiles.estimate_zoom(shapely.box(*box)) == 14
    assert tiles.estimate_zoom(gpd.GeoDataFrame(geometry=[shapely.box(*box)], crs=4326)) == 14
    assert tiles.estimate_zoom(tiles.Tile(1, 2, 3)) == 3
    assert tiles.estimate_zoom(mercantile.Tile(1, 2, 7)) == 7
    assert tiles.estimate_zoom([-180, -85, 180, 85]) == 1  # never 0


# --- documented edge behaviour -------------------------------------------------------------


def test_tiles_across_the_antimeridian_list_the_west_part_first():
    expected = [(0, 1, 2), (0, 2, 2), (3, 1, 2), (3, 2, 2)]
    assert tiles.tiles(170, -10, -170, 10, 2) == list(mercantile.tiles(170, -10, -170, 10, 2))
    assert tiles.tiles(170, -10, -170, 10, 2) == expected


def test_tiles_clamp_latitude_and_longitude():
    world = [(0, 0, 1), (0, 1, 1), (1, 0, 1), (1, 1, 1)]
    assert tiles.tiles(-180, -90, 180, 90, 1) == world
    assert tiles.tiles(-400, -89, 400, 89, [1]) == world
    assert list(mercantile.tiles(-400, -89, 400, 89, [1])) == world


def test_tile_clamps_the_east_edge_where_mercantile_overflows():
    assert mercantile.tile(179.999999999999, 0, 3) == (8, 4, 3)  # not a tile
    assert tiles.tile(179.999999999999, 0, 3) == (7, 4, 3)


def test_truncate_clamps_first():
    assert tiles.tile(200, 0, 3, truncate=True) == mercantile.tile(200, 0, 3, truncate=True)
    assert tiles.tiles(-200, 0, -100, 10, 3, truncate=True) == list(
        mercantile.tiles(-200, 0, -100, 10, 3, truncate=True)
    )
    assert tiles.bounding_tile(-200, 0, -100, 10, truncate=True) == mercantile.bounding_tile(
        -200, 0, -100, 10, truncate=True
    )


def test_arguments_take_numpy_scalars_and_integral_floats():
    expected = mercantile.bounds(486, 332, 10)
    assert tiles.bounds(np.int64(486), np.int32(332), np.int8(10)) == expected
    assert tiles.bounds(486.0, 332.0, 10.0) == expected
    assert tiles.tile(np.float32(1.5), 2, np.int64(3)) == mercantile.tile(1.5, 2, 3)
    assert tiles.tile(1.5, 2, zoom=3.0) == (4, 3, 3)
    assert tiles.tiles(0, 0, 1, 1, np.array([3, 4])) == list(mercantile.tiles(0, 0, 1, 1, [3, 4]))
    assert tiles.bounding_tile([-92, 0.5, -91, 1]) == (31, 63, 7)


def test_tiles_array_owns_its_memory():
    array = tiles.tiles_array(-1, -1, 1, 1, 10)
    copy = array.copy()
    del array
    again = tiles.tiles_array(-1, -1, 1, 1, 10)
    np.testing.assert_array_equal(copy, again)


# --- every error message -------------------------------------------------------------------


BAD_CALLS = [
    (lambda: tiles.bounds(0, 0, 31), r"Invalid tile z=31 x=0 y=0: zoom must be between 0 and 30"),
    (lambda: tiles.bounds(0, 0, -1), r"Invalid tile z=-1 x=0 y=0: zoom must be between 0 and 30"),
    (
        lambda: tiles.bounds(1024, 0, 10),
        r"Invalid tile z=10 x=1024 y=0: x must be between 0 and 1023 at zoom 10",
    ),
    (
        lambda: tiles.xy_bounds(0, -1, 10),
        r"Invalid tile z=10 x=0 y=-1: y must be between 0 and 1023 at zoom 10",
    ),
    (lambda: tiles.bounds(1, 2), r"Invalid tile \(1, 2\): pass a Tile, a sequence \(x, y, z\)"),
    (lambda: tiles.bounds(1.5, 0, 3), r"Invalid x=1.5: must be an integer"),
    (lambda: tiles.quadkey("a", 0, 3), r"Invalid x='a': must be an integer"),
    (lambda: tiles.tile(0, 0, 31), r"Invalid zoom z=31: zoom must be between 0 and 30"),
    (lambda: tiles.tile(0, 0, 2.5), r"Invalid zoom=2.5: must be an integer"),
    (lambda: tiles.tile("x", 0, 3), r"Invalid lng='x': must be a number"),
    (lambda: tiles.tile(float("nan"), 0, 3), r"Invalid lng=nan: must be a finite number"),
    (lambda: tiles.tile(0, 91, 3), r"Invalid lat=91: latitude must be between -90 and 90"),
    (
        lambda: tiles.tile(0, 90, 3),
        r"Invalid latitude lat=90: web mercator y is infinite at the poles; latitude must be "
        r"between -89.9999993 and 89.9999993",
    ),
    (lambda: tiles.tile(0, -89.9999995, 3), r"Invalid latitude lat=-89.9999995"),
    (lambda: tiles.tiles(0, 0, 1, 1, 31), r"Invalid zoom z=31: zoom must be between 0 and 30"),
    (lambda: tiles.tiles(0, 0, 1, 1, [3, "4"]), r"Invalid zoom='4': must be an integer"),
    (lambda: tiles.tiles(0, 0, float("inf"), 1, 3), r"Invalid east=inf: must be a finite number"),
    (
        lambda: tiles.tiles(0, -91, 1, 1, 3),
        r"Invalid south=-91: latitude must be between -90 and 90",
    ),
    (lambda: tiles.tiles(0, 0, 1, None, 3), r"Invalid north=None: must be a number"),
    (
        lambda: tiles.tiles_array(0, 10, 1, 5, 3),
        r"Invalid bounds south=10 north=5: south must be less than or equal to north",
    ),
    (lambda: tiles.tiles(0, 90, 1, 90, 3), r"web mercator y is infinite at the poles"),
    (
        lambda: tiles.tiles_array(-180, -90, 180, 90, 16),
        r"Too many tiles: the cover of bounds \(-180, -90, 180, 90\) at zoom 16 has 4294967296 "
        r"tiles, more than max_tiles=67108864; use a lower zoom or smaller bounds, or raise "
        r"max_tiles",
    ),
    (lambda: tiles.tiles(0, 0, 1, 1, 10, max_tiles=5), r"has 9 tiles, more than max_tiles=5"),
    (
        lambda: tiles.bounding_tile(1, 2, 3),
        r"Invalid bbox \(1, 2, 3\): pass west, south, east, north",
    ),
    (
        lambda: tiles.bounding_tile(0, 5, 1, 4),
        r"Invalid bounds south=5 north=4: south must be less than or equal to north",
    ),
    (
        lambda: tiles.bounding_tile(0, 0, 1, 100),
        r"Invalid north=100: latitude must be between -90 and 90",
    ),
    (
        lambda: tiles.parent(486, 332, 10, zoom=10),
        r"Invalid parent zoom=10 for tile 10/486/332: zoom must be between 0 and 9",
    ),
    (lambda: tiles.parent(486, 332, 10, zoom=1.5), r"Invalid zoom=1.5: must be an integer"),
    (lambda: tiles.parent(1, 0, 0), r"Invalid tile z=0 x=1 y=0: x must be between 0 and 0"),
    (
        lambda: tiles.children(486, 332, 10, zoom=9),
        r"Invalid children zoom=9 for tile 10/486/332: zoom must be between 10 and 30",
    ),
    (
        lambda: tiles.children(0, 0, 30),
        r"Invalid tile 30/0/0: tiles at zoom 30 have no children \(the maximum zoom is 30\)",
    ),
    (
        lambda: tiles.children(0, 0, 0, zoom=20),
        r"Too many tiles: the children of tile 0/0/0 at zoom 20 are 4\^20 tiles, more than "
        r"max_tiles=67108864",
    ),
    (
        lambda: tiles.quadkey_to_tile("0124"),
        r"Invalid quadkey '0124': character '4' at position 3 is not a quadkey digit "
        r"\(0, 1, 2 or 3\)",
    ),
    (
        lambda: tiles.quadkey_to_tile("0" * 31),
        r"Invalid quadkey '0{31}': it has 31 digits, more than the maximum zoom 30",
    ),
    (lambda: tiles.quadkey_to_tile(123), r"Invalid quadkey 123: must be a str of digits 0-3"),
    (lambda: tiles.quadkey(0, 0, 31), r"zoom must be between 0 and 30"),
    (
        lambda: tiles.estimate_zoom([0, 0, 1, 1], 0),
        r"Invalid target_num_tiles=0: must be at least 1",
    ),
    (lambda: tiles.estimate_zoom([0, 0, 1]), r"Invalid bounds \[0, 0, 1\]: pass \[west, south"),
    (lambda: tiles.estimate_zoom("abcd"), r"Invalid west='a': must be a number"),
    (
        lambda: tiles.estimate_zoom([0, 2, 1, 1]),
        r"Invalid bounds south=2 north=1: south must be less than or equal to north",
    ),
]


@pytest.mark.parametrize(
    "call, message", BAD_CALLS, ids=[m.replace("\\", "")[:48] for _, m in BAD_CALLS]
)
def test_bad_input_raises_invalid_argument(call, message):
    with pytest.raises(InvalidArgumentError, match=message):
        call()


def test_invalid_argument_is_a_value_error():
    with pytest.raises(ValueError):
        tiles.tile(0, 0, 99)

"""The `mvt` encoder (fused._encode -> fused._core.encode), read back with the Python
``mapbox_vector_tile`` package and compared with peers on the same GeoDataFrame:

- ``mapbox_vector_tile.encode`` of the same features, after the projection (pyproj, to
  EPSG:3857) and the clipping to the tile plus its buffer (shapely ``clip_by_rect``) that
  the peer leaves to its caller;
- shapely's ``clip_by_rect`` of the geometries projected to tile pixels.

Geometries are compared in tile coordinates (y down) with a tolerance of about one unit:
quantisation moves a vertex by up to half a unit on each axis, and our polygon clipping
(Sutherland-Hodgman) may join the pieces of a concave polygon along the buffer's edge where
shapely returns separate polygons, which changes no area.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

gpd = pytest.importorskip("geopandas")
shapely = pytest.importorskip("shapely")
mapbox_vector_tile = pytest.importorskip("mapbox_vector_tile")

from fused import _encode, tiles
from fused._errors import InvalidArgumentError
from mapbox_vector_tile.Mapbox import vector_tile_pb2

# mapbox_vector_tile 2.2 calls shapely.ops.transform, which shapely 2.1+ deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:The 'shapely.ops.transform:DeprecationWarning")

EXTENT = 4096
BUFFER = 64
PARIS = tiles.tile(2.35, 48.85, 10)

# ------------------------------------------------------------------------------------------
# Data


def star(cx: float, cy: float, rng: np.random.Generator, r_min: float, r_max: float, n: int):
    """A simple (star-shaped) ring around (cx, cy): angles sorted, radii random."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radius = rng.uniform(r_min, r_max, n)
    return np.column_stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)])


def make_frame(tile, n: int = 300, seed: int = 3) -> gpd.GeoDataFrame:
    """Every geometry type around `tile`: a third outside it, many across its edges."""
    rng = np.random.default_rng(seed)
    west, south, east, north = tiles.bounds(tile)
    w, h = east - west, north - south
    cx = rng.uniform(west - 0.4 * w, east + 0.4 * w, n)
    cy = rng.uniform(south - 0.4 * h, north + 0.4 * h, n)
    geoms = []
    for i in range(n):
        x, y, kind = cx[i], cy[i], i % 8
        if kind == 0:
            g = shapely.Point(x, y)
        elif kind == 1:
            steps = rng.normal(scale=0.05 * w, size=(12, 2)).cumsum(axis=0)
            g = shapely.LineString(steps + [x, y])
        elif kind in (2, 3):
            g = shapely.Polygon(star(x, y, rng, 0.05 * w, 0.3 * w, 5 + i % 30))
        elif kind == 4:
            hole = star(x, y, rng, 0.01 * w, 0.02 * w, 6)[::-1]
            g = shapely.Polygon(star(x, y, rng, 0.05 * w, 0.2 * w, 16), holes=[hole])
        elif kind == 5:
            g = shapely.MultiPoint(rng.normal(scale=0.1 * w, size=(4, 2)) + [x, y])
        elif kind == 6:
            g = shapely.MultiLineString(
                [
                    rng.normal(scale=0.03 * w, size=(5, 2)).cumsum(axis=0) + [x, y],
                    rng.normal(scale=0.03 * w, size=(5, 2)).cumsum(axis=0) + [x + 0.1 * w, y],
                ]
            )
        else:
            g = shapely.MultiPolygon(
                [
                    shapely.Polygon(star(x, y, rng, 0.02 * w, 0.08 * w, 9)),
                    shapely.Polygon(star(x + 0.25 * w, y, rng, 0.02 * w, 0.08 * w, 9)),
                ]
            )
        geoms.append(g)
    value = rng.normal(size=n) * 100
    value[::7] = np.nan
    names = np.array(["alpha", "beta", "gamma street", None, "épsilon"], dtype=object)
    return gpd.GeoDataFrame(
        {
            "id": np.arange(n, dtype="int64"),
            "delta": np.arange(n, dtype="int64") - n // 2,
            "value": value,
            "name": names[np.arange(n) % len(names)],
            "flag": np.arange(n) % 3 == 0,
        },
        geometry=geoms,
        crs="EPSG:4326",
    )


@pytest.fixture(scope="module")
def frame() -> gpd.GeoDataFrame:
    return make_frame(PARIS)


# ------------------------------------------------------------------------------------------
# Helpers


def to_tile_pixels(geoms, tile):
    """Longitude/latitude geometries in tile pixels (float, y down), as mercantile projects."""
    left, bottom, right, top = tiles.xy_bounds(tile)

    def project(coords):
        x = 6378137.0 * np.radians(coords[:, 0])
        y = 6378137.0 * np.log(np.tan(np.pi / 4 + np.radians(coords[:, 1]) / 2))
        return np.column_stack(
            [(x - left) * EXTENT / (right - left), (top - y) * EXTENT / (top - bottom)]
        )

    return shapely.transform(geoms, project)


def decode(data: bytes) -> dict:
    """The layers of a tile, geometries in tile coordinates (y down)."""
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def shapes_by_id(layer: dict) -> dict:
    return {f["properties"]["id"]: shapely.geometry.shape(f["geometry"]) for f in layer["features"]}


def is_missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def properties(gdf: gpd.GeoDataFrame) -> list[dict]:
    rows = gdf.drop(columns=gdf.geometry.name).to_dict("records")
    return [{k: v for k, v in row.items() if not is_missing(v)} for row in rows]


def peer_encode(gdf: gpd.GeoDataFrame, tile) -> bytes:
    """mapbox_vector_tile.encode doing the same work: to EPSG:3857, clip to the tile plus
    the buffer with shapely, quantise to the tile's bounds."""
    left, bottom, right, top = tiles.xy_bounds(tile)
    margin = (right - left) * BUFFER / EXTENT
    merc = gdf.geometry.to_crs(3857).values
    clipped = shapely.clip_by_rect(
        np.asarray(merc), left - margin, bottom - margin, right + margin, top + margin
    )
    features = [
        {"geometry": g, "properties": p}
        for g, p in zip(clipped, properties(gdf))
        if g is not None and not g.is_empty
    ]
    return mapbox_vector_tile.encode(
        {"name": "udf", "features": features},
        default_options={"quantize_bounds": (left, bottom, right, top), "extents": EXTENT},
    )


def polygonal(g):
    g = shapely.make_valid(g)
    if g.geom_type == "GeometryCollection":
        g = shapely.union_all([p for p in g.geoms if p.geom_type in ("Polygon", "MultiPolygon")])
    return g


def assert_same_geometry(ours, expected, key):
    """Equal within quantisation: points and lines by Hausdorff distance, polygons by the
    area of their symmetric difference (at most about one unit along the boundary)."""
    if expected.geom_type in ("Polygon", "MultiPolygon"):
        a, b = polygonal(ours), polygonal(expected)
        diff = a.symmetric_difference(b).area
        assert diff <= 1.0 * b.length + 2, (key, diff, b.length, ours.wkt, expected.wkt)
    else:
        d = shapely.hausdorff_distance(ours, expected)
        assert d <= 1.0, (key, d, ours.wkt, expected.wkt)


def raw_layer(data: bytes):
    tile = vector_tile_pb2.tile()
    tile.ParseFromString(data)
    assert len(tile.layers) == 1
    return tile.layers[0]


def raw_rings(geometry) -> list[list[tuple[int, int]]]:
    """The parts of a feature's command integers (rings of a polygon), in tile coordinates."""
    parts, x, y, i = [], 0, 0, 0
    while i < len(geometry):
        cmd, count = geometry[i] & 7, geometry[i] >> 3
        i += 1
        if cmd == 7:
            continue
        for _ in range(count):
            dx, dy = geometry[i], geometry[i + 1]
            x += (dx >> 1) ^ -(dx & 1)
            y += (dy >> 1) ^ -(dy & 1)
            i += 2
            if cmd == 1:
                parts.append([])
            parts[-1].append((x, y))
    return parts


def signed_area2(ring) -> int:
    """Twice the area by the surveyor's formula in tile coordinates (spec 4.3.4.4)."""
    return sum(
        ring[k][0] * ring[(k + 1) % len(ring)][1] - ring[(k + 1) % len(ring)][0] * ring[k][1]
        for k in range(len(ring))
    )


# ------------------------------------------------------------------------------------------
# The layer


def test_mvt_is_a_registered_format():
    formats = {f["name"]: f for f in _encode.formats()}
    assert formats["mvt"]["media_type"] == "application/vnd.mapbox-vector-tile"
    assert formats["mvt"]["kind"] == "vector"


def test_one_layer_named_udf_version_2_extent_4096(frame):
    layer = raw_layer(_encode.encode_table(frame, "mvt", tile=PARIS))
    assert layer.name == "udf"
    assert layer.version == 2
    assert layer.extent == 4096
    assert decode(_encode.encode_table(frame, "mvt", tile=PARIS)).keys() == {"udf"}


@pytest.mark.parametrize(
    "tile",
    [PARIS, tiles.Tile(0, 0, 0), tiles.parent(PARIS, zoom=6)],
    ids=["z10", "z0", "z6"],
)
def test_matches_mapbox_vector_tile_on_the_same_frame(frame, tile):
    ours = decode(_encode.encode_table(frame, "mvt", tile=tile))["udf"]
    theirs = decode(peer_encode(frame, tile))["udf"]
    assert ours["extent"] == theirs["extent"] == EXTENT
    ours_by_id, theirs_by_id = shapes_by_id(ours), shapes_by_id(theirs)
    assert len(ours_by_id) == len(ours["features"])  # one feature per row
    assert set(ours_by_id) <= set(theirs_by_id)
    for key in set(theirs_by_id) - set(ours_by_id):
        # Only slivers the peer keeps after quantisation (no area, or no length) may differ.
        g = theirs_by_id[key]
        degenerate = g.area == 0 if g.geom_type.endswith("Polygon") else g.length <= 2
        assert degenerate, (key, g.wkt)
    assert len(ours_by_id) > 100
    for key, g in ours_by_id.items():
        assert_same_geometry(g, theirs_by_id[key], key)
    expected = properties(frame)
    for f in ours["features"]:
        assert f["properties"] == expected[f["properties"]["id"]]


def test_clipping_matches_shapely_clip_by_rect(frame):
    pixels = to_tile_pixels(frame.geometry.values, PARIS)
    clipped = shapely.clip_by_rect(
        np.asarray(pixels), -BUFFER, -BUFFER, EXTENT + BUFFER, EXTENT + BUFFER
    )
    ours = shapes_by_id(decode(_encode.encode_table(frame, "mvt", tile=PARIS))["udf"])
    kept = 0
    for key, expected in enumerate(clipped):
        if key not in ours:
            # Dropped: nothing is left, or too little to survive quantisation.
            assert expected.is_empty or (expected.area < 2 and expected.length < 4), (
                key,
                expected.wkt,
            )
            continue
        kept += 1
        g = ours[key]
        for coords in [np.asarray(shapely.get_coordinates(g))]:
            assert coords.min() >= -BUFFER and coords.max() <= EXTENT + BUFFER
        assert_same_geometry(g, expected, key)
    assert kept > 100


def test_points_outside_the_buffer_are_dropped():
    # Pixel 4096 + 64 = 4160 is the last column kept; 4161 is out.
    west, south, east, north = tiles.bounds(PARIS)
    per_pixel = (east - west) / EXTENT
    y = (north + south) / 2
    gdf = gpd.GeoDataFrame(
        {"id": [0, 1, 2]},
        geometry=[
            shapely.Point(east + 63.9 * per_pixel, y),
            shapely.Point(east + 64.7 * per_pixel, y),
            shapely.Point(west - 70 * per_pixel, y),
        ],
        crs=4326,
    )
    layer = decode(_encode.encode_table(gdf, "mvt", tile=PARIS))["udf"]
    assert [f["properties"]["id"] for f in layer["features"]] == [0]
    assert layer["features"][0]["geometry"]["coordinates"][0] == 4160


def test_polygons_are_wound_as_the_spec_says(frame):
    layer = raw_layer(_encode.encode_table(frame, "mvt", tile=PARIS))
    holes = 0
    for feature in layer.features:
        if feature.type != vector_tile_pb2.tile.Polygon:
            continue
        rings = raw_rings(feature.geometry)
        areas = [signed_area2(r) for r in rings]
        assert areas[0] > 0  # the first ring is an exterior: positive area, y down
        assert 0 not in areas
        holes += sum(a < 0 for a in areas)
        for ring in rings:
            assert len(ring) >= 3
            assert all(p != q for p, q in zip(ring, ring[1:] + ring[:1]))  # no repeats
    assert holes > 0


def test_keys_and_values_are_deduplicated(frame):
    layer = raw_layer(_encode.encode_table(frame, "mvt", tile=PARIS))
    assert sorted(layer.keys) == ["delta", "flag", "id", "name", "value"]
    values = [v.SerializeToString() for v in layer.values]
    assert len(values) == len(set(values))
    strings = [v.string_value for v in layer.values if v.HasField("string_value")]
    assert sorted(strings) == ["alpha", "beta", "gamma street", "épsilon"]
    assert sum(v.HasField("bool_value") for v in layer.values) == 2


def test_property_types():
    gdf = gpd.GeoDataFrame(
        {
            "i": pd.array([1, -2, None], dtype="Int64"),
            "f": [0.5, np.nan, 2.0],
            "f32": np.array([1.5, 2.5, 3.5], dtype="float32"),
            "s": ["a", None, "c"],
            "b": [True, False, None],
            "day": pd.to_datetime(["2021-01-02", None, "2021-01-03"]).date,
        },
        geometry=[shapely.Point(2.35, 48.85)] * 3,
        crs=4326,
    )
    table = _encode.to_arrow_table(gdf)
    features = decode(_encode.encode_table(table, "mvt", tile=PARIS))["udf"]["features"]
    assert [f["properties"] for f in features] == [
        {"i": 1, "f": 0.5, "f32": 1.5, "s": "a", "b": True, "day": "2021-01-02"},
        {"i": -2, "f32": 2.5, "b": False},
        {"f": 2.0, "f32": 3.5, "s": "c", "day": "2021-01-03"},
    ]


def test_multi_geometries_are_one_feature_and_collections_split_by_type():
    x, y = 2.35, 48.85
    gdf = gpd.GeoDataFrame(
        {"id": [0, 1]},
        geometry=[
            shapely.MultiPolygon(
                [
                    shapely.box(x, y, x + 0.01, y + 0.01),
                    shapely.box(x + 0.05, y, x + 0.06, y + 0.01),
                ]
            ),
            shapely.GeometryCollection(
                [
                    shapely.Point(x, y),
                    shapely.LineString([(x, y), (x + 0.01, y)]),
                    shapely.box(x, y, x + 0.01, y + 0.01),
                ]
            ),
        ],
        crs=4326,
    )
    features = decode(_encode.encode_table(gdf, "mvt", tile=PARIS))["udf"]["features"]
    assert [(f["properties"]["id"], f["geometry"]["type"]) for f in features] == [
        (0, "MultiPolygon"),
        (1, "Point"),
        (1, "LineString"),
        (1, "Polygon"),
    ]


def test_web_mercator_input_gives_the_same_tile(frame):
    ours = _encode.encode_table(frame, "mvt", tile=PARIS)
    from_3857 = _encode.encode_table(frame.to_crs(3857), "mvt", tile=PARIS)
    a, b = shapes_by_id(decode(ours)["udf"]), shapes_by_id(decode(from_3857)["udf"])
    assert set(a) == set(b)
    for key in a:
        assert_same_geometry(a[key], b[key], key)


def test_tile_accepts_mercantile_style_tuples(frame):
    expected = _encode.encode_table(frame, "mvt", tile=(PARIS.x, PARIS.y, PARIS.z))
    assert _encode.encode_table(frame, "mvt", tile=tiles.Tile(*PARIS)) == expected
    assert _encode.encode_table(frame, "mvt", tile=[PARIS.x, PARIS.y, PARIS.z]) == expected


def test_nothing_in_the_tile_is_an_empty_tile(frame):
    far = tiles.Tile(0, 0, 10)
    out = _encode.encode_table(frame, "mvt", tile=far)
    assert out == b""
    assert decode(out) == {}
    assert _encode.encode_table(frame.iloc[:0], "mvt", tile=PARIS) == b""


# ------------------------------------------------------------------------------------------
# Errors


def test_without_a_tile_is_an_error(frame):
    with pytest.raises(
        InvalidArgumentError,
        match=r"^mvt encodes a tile: call it through a /tiles/\{z\}/\{x\}/\{y\} route",
    ):
        _encode.encode_table(frame, "mvt")


def test_without_geometry_is_an_error():
    with pytest.raises(
        InvalidArgumentError, match=r"^mvt needs a geometry column: the table has none"
    ):
        _encode.encode_table(pa.table({"a": [1]}), "mvt", tile=PARIS)


@pytest.mark.parametrize(
    "tile, message",
    [
        ((1, 2), r"tile must be \(x, y, z\) integers, such as \(778, 1548, 12\), got \(1, 2\)"),
        ("1/2/3", r"tile must be \(x, y, z\) integers"),
        ((1.5, 2, 3), r"tile must be \(x, y, z\) integers"),
        ((True, 0, 0), r"tile must be \(x, y, z\) integers"),
        ((4, 0, 2), r"4"),
        ((0, 0, 31), r"31"),
    ],
)
def test_bad_tiles_are_errors(frame, tile, message):
    with pytest.raises(InvalidArgumentError, match=message):
        _encode.encode_table(frame, "mvt", tile=tile)


def test_a_projected_crs_other_than_web_mercator_is_an_error(frame):
    with pytest.raises(
        InvalidArgumentError,
        match=r"Cannot write geometry column 'geometry' as mvt: its CRS 'WGS 84 / UTM zone 31N' "
        r"is neither longitude/latitude \(EPSG:4326\) nor web mercator \(EPSG:3857\)",
    ):
        _encode.encode_table(frame.to_crs(32631), "mvt", tile=PARIS)


def test_invalid_wkb_names_the_row():
    table = pa.table({"geometry": pa.array([shapely.Point(2.35, 48.85).wkb, b"\x01\x02"])})
    table = table.replace_schema_metadata(
        {
            b"geo": b'{"version":"1.1.0","primary_column":"geometry","columns":{"geometry":{"encoding":"WKB"}}}'
        }
    )
    with pytest.raises(
        InvalidArgumentError, match=r"^Cannot write row 1 of column 'geometry' as mvt: invalid WKB"
    ):
        _encode.encode_table(table, "mvt", tile=PARIS)

#include "terrafuse/tiles/tile_math.h"

#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

// Expected values come from mercantile 1.2.1; tests/sdk/test_tiles.py compares against it
// on thousands of random inputs.

namespace terrafuse::tiles {

void PrintTo(const Tile& tile, std::ostream* os) { *os << ToString(tile); }

namespace {

template <typename T>
T ValueOf(Result<T> result) {
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() ? std::move(result).ValueUnsafe() : T{};
}

// Asserts that result failed with an invalid_argument error whose message contains `text`.
template <typename T>
void ExpectInvalid(const Result<T>& result, const std::string& text) {
  ASSERT_FALSE(result.ok()) << "expected an error containing: " << text;
  EXPECT_EQ(KindOf(result.status()), ErrorKind::kInvalidArgument);
  EXPECT_NE(result.status().message().find(text), std::string::npos)
      << "message: " << result.status().message() << "\nexpected to contain: " << text;
}

void ExpectInvalid(const Status& status, const std::string& text) {
  ASSERT_FALSE(status.ok()) << "expected an error containing: " << text;
  EXPECT_EQ(KindOf(status), ErrorKind::kInvalidArgument);
  EXPECT_NE(status.message().find(text), std::string::npos)
      << "message: " << status.message() << "\nexpected to contain: " << text;
}

std::vector<Tile> Cover(LngLatBounds bounds, std::vector<int> zooms) {
  return ValueOf(Tiles(bounds, zooms));
}

TEST(TileMathTest, BoundsOfKnownTile) {
  LngLatBounds b = ValueOf(Bounds({486, 332, 10}));
  EXPECT_EQ(b.west, -9.140625);
  EXPECT_EQ(b.south, 53.120405283106564);
  EXPECT_EQ(b.east, -8.7890625);
  EXPECT_EQ(b.north, 53.33087298301705);
  LngLatBounds world = ValueOf(Bounds({0, 0, 0}));
  EXPECT_EQ(world.west, -180.0);
  EXPECT_EQ(world.east, 180.0);
  EXPECT_NEAR(world.north, 85.0511287798066, 1e-12);
  EXPECT_NEAR(world.south, -85.0511287798066, 1e-12);
}

TEST(TileMathTest, XyBoundsOfKnownTile) {
  MercatorBounds b = ValueOf(XyBounds({486, 332, 10}));
  EXPECT_EQ(b.left, -1017529.7205322646);
  EXPECT_EQ(b.bottom, 7005300.768279833);
  EXPECT_EQ(b.right, -978393.9620502543);
  EXPECT_EQ(b.top, 7044436.526761843);
}

TEST(TileMathTest, TileAtKnownPoints) {
  EXPECT_EQ(ValueOf(TileAt(-122.4194, 37.7749, 11)), (Tile{327, 791, 11}));
  EXPECT_EQ(ValueOf(TileAt(0, 0, 0)), (Tile{0, 0, 0}));
}

TEST(TileMathTest, TileAtEdgesOfTheMap) {
  EXPECT_EQ(ValueOf(TileAt(180, 0, 3)), (Tile{7, 4, 3}));
  EXPECT_EQ(ValueOf(TileAt(-180, 0, 3)), (Tile{0, 4, 3}));
  EXPECT_EQ(ValueOf(TileAt(200, -89, 3)), (Tile{7, 7, 3}));  // beyond the map: clamped
  EXPECT_EQ(ValueOf(TileAt(-500, 89, 3)), (Tile{0, 0, 3}));
  EXPECT_EQ(ValueOf(TileAt(0, 85.1, 3)), (Tile{4, 0, 3}));
  EXPECT_EQ(ValueOf(TileAt(0, -85.1, 3)), (Tile{4, 7, 3}));
  // mercantile answers x=8 (an invalid tile) within 1e-14 world units of the east edge.
  EXPECT_EQ(ValueOf(TileAt(179.999999999999, 0, 3)), (Tile{7, 4, 3}));
}

TEST(TileMathTest, TileAtCountsPointsOnAnEdgeInTheNextTile) {
  LngLatBounds b = ValueOf(Bounds({486, 332, 10}));
  EXPECT_EQ(ValueOf(TileAt(b.west, b.north, 10)), (Tile{486, 332, 10}));
  EXPECT_EQ(ValueOf(TileAt(b.east, b.north, 10)), (Tile{487, 332, 10}));
}

TEST(TileMathTest, TileAtRejectsBadInput) {
  ExpectInvalid(TileAt(0, 0, 31), "Invalid zoom z=31: zoom must be between 0 and 30");
  ExpectInvalid(TileAt(0, 0, -1), "Invalid zoom z=-1: zoom must be between 0 and 30");
  ExpectInvalid(TileAt(std::nan(""), 0, 3), "Invalid lng=nan: must be a finite number");
  ExpectInvalid(TileAt(0, 91, 3), "Invalid lat=91: latitude must be between -90 and 90");
  ExpectInvalid(TileAt(0, 90, 3),
                "Invalid latitude lat=90: web mercator y is infinite at the poles; latitude must "
                "be between -89.9999993 and 89.9999993");
  ExpectInvalid(TileAt(0, -90, 3), "Invalid latitude lat=-90");
  ExpectInvalid(TileAt(0, 89.9999995, 3), "Invalid latitude lat=89.9999995");
  EXPECT_TRUE(TileAt(0, kMaxSafeLatitude, 3).ok());
  EXPECT_TRUE(TileAt(0, -kMaxSafeLatitude, 3).ok());
}

TEST(TileMathTest, ValidateTileNamesTheBadCoordinate) {
  EXPECT_TRUE(ValidateTile({1023, 1023, 10}).ok());
  ExpectInvalid(ValidateTile({0, 0, 31}),
                "Invalid tile z=31 x=0 y=0: zoom must be between 0 and 30");
  ExpectInvalid(ValidateTile({1024, 0, 10}),
                "Invalid tile z=10 x=1024 y=0: x must be between 0 and 1023 at zoom 10");
  ExpectInvalid(ValidateTile({0, -1, 10}),
                "Invalid tile z=10 x=0 y=-1: y must be between 0 and 1023 at zoom 10");
  ExpectInvalid(Bounds({2, 0, 1}), "x must be between 0 and 1 at zoom 1");
  ExpectInvalid(XyBounds({0, 2, 1}), "y must be between 0 and 1 at zoom 1");
}

TEST(TileMathTest, TilesOfASmallBox) {
  EXPECT_EQ(Cover({-105, 39.99, -104.99, 40}, {14}),
            (std::vector<Tile>{{3413, 6202, 14}, {3413, 6203, 14}}));
}

TEST(TileMathTest, TilesOfATileAreThatTile) {
  Tile tile{486, 332, 10};
  EXPECT_EQ(Cover(ValueOf(Bounds(tile)), {10}), std::vector<Tile>{tile});
}

TEST(TileMathTest, TilesAcrossTheAntimeridianListTheWestPartFirst) {
  EXPECT_EQ(Cover({170, -10, -170, 10}, {2}),
            (std::vector<Tile>{{0, 1, 2}, {0, 2, 2}, {3, 1, 2}, {3, 2, 2}}));
}

TEST(TileMathTest, TilesClampLatitudeAndListColumnByColumn) {
  EXPECT_EQ(Cover({-180, -90, 180, 90}, {1}),
            (std::vector<Tile>{{0, 0, 1}, {0, 1, 1}, {1, 0, 1}, {1, 1, 1}}));
}

TEST(TileMathTest, TilesRepeatZoomsInOrder) {
  std::vector<Tile> tiles = Cover({1, 1, 2, 2}, {1, 0, 1});
  EXPECT_EQ(tiles, (std::vector<Tile>{{1, 0, 1}, {0, 0, 0}, {1, 0, 1}}));
  EXPECT_EQ(ValueOf(CountTiles({1, 1, 2, 2}, std::vector<int>{1, 0, 1})), 3);
}

TEST(TileMathTest, TilesOfADegenerateBoxOnATileEdgeAreEmpty) {
  // mercantile moves east inwards by 1e-11, past the west edge: no tile.
  EXPECT_TRUE(Cover({0, 1, 0, 2}, {3}).empty());
  EXPECT_EQ(Cover({0.5, 1, 0.5, 2}, {3}).size(), 1u);
}

TEST(TileMathTest, TilesArrayEqualsTiles) {
  LngLatBounds bounds{179.5, -1.2, -179.7, 0.3};
  std::vector<int> zooms{9, 11};
  std::vector<Tile> tiles = Cover(bounds, zooms);
  TileArray array = ValueOf(TilesArray(bounds, zooms));
  ASSERT_EQ(array.num_tiles, static_cast<int64_t>(tiles.size()));
  ASSERT_GT(array.num_tiles, 0);
  for (size_t i = 0; i < tiles.size(); ++i) {
    EXPECT_EQ(array.xyz[3 * i], tiles[i].x);
    EXPECT_EQ(array.xyz[3 * i + 1], tiles[i].y);
    EXPECT_EQ(array.xyz[3 * i + 2], tiles[i].z);
  }
  EXPECT_EQ(ValueOf(CountTiles(bounds, zooms)), array.num_tiles);
}

TEST(TileMathTest, TilesRejectBadInput) {
  std::vector<int> z3{3};
  ExpectInvalid(Tiles({0, 0, 1, 1}, std::vector<int>{31}),
                "Invalid zoom z=31: zoom must be between 0 and 30");
  ExpectInvalid(Tiles({std::nan(""), 0, 1, 1}, z3), "Invalid west=nan: must be a finite number");
  ExpectInvalid(Tiles({0, 0, std::numeric_limits<double>::infinity(), 1}, z3),
                "Invalid east=inf: must be a finite number");
  ExpectInvalid(Tiles({0, -91, 1, 1}, z3),
                "Invalid south=-91: latitude must be between -90 and 90");
  ExpectInvalid(Tiles({0, 0, 1, 95.5}, z3),
                "Invalid north=95.5: latitude must be between -90 and 90");
  ExpectInvalid(Tiles({0, 10, 1, 5}, z3),
                "Invalid bounds south=10 north=5: south must be less than or equal to north");
  ExpectInvalid(Tiles({0, 90, 1, 90}, z3), "web mercator y is infinite at the poles");
  ExpectInvalid(TilesArray({-180, -85, 180, 85}, std::vector<int>{16}),
                "Too many tiles: the cover of bounds (-180, -85, 180, 85) at zoom 16 has");
  ExpectInvalid(Tiles({0, 0, 1, 1}, std::vector<int>{10}, 5),
                "has 9 tiles, more than max_tiles=5; use a lower zoom or smaller bounds, or raise "
                "max_tiles");
}

TEST(TileMathTest, BoundingTileOfKnownBoxes) {
  EXPECT_EQ(ValueOf(BoundingTile({-122.42, 37.77, -122.41, 37.78})), (Tile{1310, 3166, 13}));
  EXPECT_EQ(ValueOf(BoundingTile({-92, 0.5, -91, 1})), (Tile{31, 63, 7}));
  EXPECT_EQ(ValueOf(BoundingTile({-10, -10, 10, 10})), (Tile{0, 0, 0}));  // straddles 0
  EXPECT_EQ(ValueOf(BoundingTile({-10, -90, 10, 90})), (Tile{0, 0, 0}));  // touches a pole
  EXPECT_EQ(ValueOf(BoundingTile({170, 10, -170, 20})), (Tile{0, 0, 0}));  // antimeridian
  // A point has a zoom-28 bounding tile.
  Tile point = ValueOf(BoundingTile({1.5, 1.5, 1.5, 1.5}));
  EXPECT_EQ(point.z, 28);
  EXPECT_EQ(point, ValueOf(TileAt(1.5, 1.5, 28)));
  // The bounding tile of a tile is that tile.
  Tile tile{486, 332, 10};
  EXPECT_EQ(ValueOf(BoundingTile(ValueOf(Bounds(tile)))), tile);
}

TEST(TileMathTest, BoundingTileRejectsBadInput) {
  ExpectInvalid(BoundingTile({0, 5, 1, 4}), "south must be less than or equal to north");
  ExpectInvalid(BoundingTile({0, 0, 1, 100}),
                "Invalid north=100: latitude must be between -90 and 90");
  ExpectInvalid(BoundingTile({0, std::nan(""), 1, 1}),
                "Invalid south=nan: must be a finite number");
}

TEST(TileMathTest, ParentAndAncestors) {
  EXPECT_EQ(ValueOf(Parent({486, 332, 10})), (Tile{243, 166, 9}));
  EXPECT_EQ(ValueOf(Parent({486, 332, 10}, 5)), (Tile{15, 10, 5}));
  EXPECT_EQ(ValueOf(Parent({486, 332, 10}, 0)), (Tile{0, 0, 0}));
  EXPECT_EQ(ValueOf(Parent({1, 1, 1})), (Tile{0, 0, 0}));
}

TEST(TileMathTest, ParentRejectsBadInput) {
  ExpectInvalid(Parent({0, 0, 0}), "Invalid tile z=0 x=0 y=0: the root tile has no parent");
  ExpectInvalid(Parent({0, 0, 0}, 0),
                "Invalid parent zoom=0 for tile 0/0/0: the root tile has no parent");
  ExpectInvalid(Parent({486, 332, 10}, 10),
                "Invalid parent zoom=10 for tile 10/486/332: zoom must be between 0 and 9");
  ExpectInvalid(Parent({486, 332, 10}, -1), "Invalid parent zoom=-1");
  ExpectInvalid(Parent({4, 0, 2}), "x must be between 0 and 3 at zoom 2");
}

TEST(TileMathTest, ChildrenInClockwiseOrder) {
  EXPECT_EQ(ValueOf(Children({1, 1, 1})),
            (std::vector<Tile>{{2, 2, 2}, {3, 2, 2}, {3, 3, 2}, {2, 3, 2}}));
  std::vector<Tile> grandchildren = ValueOf(Children({0, 0, 0}, 2));
  EXPECT_EQ(grandchildren,
            (std::vector<Tile>{{0, 0, 2}, {1, 0, 2}, {1, 1, 2}, {0, 1, 2}, {2, 0, 2}, {3, 0, 2},
                               {3, 1, 2}, {2, 1, 2}, {2, 2, 2}, {3, 2, 2}, {3, 3, 2}, {2, 3, 2},
                               {0, 2, 2}, {1, 2, 2}, {1, 3, 2}, {0, 3, 2}}));
  EXPECT_EQ(ValueOf(Children({5, 6, 4}, 4)), std::vector<Tile>{(Tile{5, 6, 4})});
  for (const Tile& child : ValueOf(Children({5, 6, 4}, 7))) {
    EXPECT_EQ(ValueOf(Parent(child, 4)), (Tile{5, 6, 4}));
  }
}

TEST(TileMathTest, ChildrenRejectBadInput) {
  ExpectInvalid(Children({486, 332, 10}, 9),
                "Invalid children zoom=9 for tile 10/486/332: zoom must be between 10 and 30");
  ExpectInvalid(Children({486, 332, 10}, 31), "zoom must be between 10 and 30");
  ExpectInvalid(Children({0, 0, 30}), "Invalid tile 30/0/0: tiles at zoom 30 have no children");
  ExpectInvalid(Children({0, 0, 0}, 20),
                "Too many tiles: the children of tile 0/0/0 at zoom 20 are 4^20 tiles, more than "
                "max_tiles=67108864");
  ExpectInvalid(Children({0, 2, 1}, 2), "y must be between 0 and 1 at zoom 1");
}

TEST(TileMathTest, QuadkeyRoundTrips) {
  EXPECT_EQ(ValueOf(Quadkey({486, 332, 10})), "0313102310");
  EXPECT_EQ(ValueOf(Quadkey({0, 0, 0})), "");
  EXPECT_EQ(ValueOf(QuadkeyToTile("0313102310")), (Tile{486, 332, 10}));
  EXPECT_EQ(ValueOf(QuadkeyToTile("")), (Tile{0, 0, 0}));
  Tile deep{(int64_t{1} << 30) - 1, 12345, 30};
  EXPECT_EQ(ValueOf(QuadkeyToTile(ValueOf(Quadkey(deep)))), deep);
}

TEST(TileMathTest, QuadkeyRejectsBadInput) {
  ExpectInvalid(QuadkeyToTile("0124"),
                "Invalid quadkey '0124': character '4' at position 3 is not a quadkey digit "
                "(0, 1, 2 or 3)");
  ExpectInvalid(QuadkeyToTile("01\n"), "character '\\x0a' at position 2");
  ExpectInvalid(QuadkeyToTile(std::string(31, '0')),
                "': it has 31 digits, more than the maximum zoom 30");
  ExpectInvalid(Quadkey({0, 0, 31}), "zoom must be between 0 and 30");
}

TEST(TileMathTest, EstimateZoomForOneTile) {
  // A zoom-10 tile fits a zoom-10 tile; the rule looks at the tile under the center.
  EXPECT_EQ(ValueOf(EstimateZoom(ValueOf(Bounds({486, 332, 10})))), 10);
  EXPECT_EQ(ValueOf(EstimateZoom({-122.4194, 37.7749, -122.4094, 37.7849})), 14);
  EXPECT_EQ(ValueOf(EstimateZoom({-180, -85, 180, 85})), 1);  // never 0
  EXPECT_EQ(ValueOf(EstimateZoom({1, 1, 1, 1})), 20);         // capped at 20
}

TEST(TileMathTest, EstimateZoomForManyTiles) {
  LngLatBounds bounds{-122.5, 37.7, -122.3, 37.9};
  int z = ValueOf(EstimateZoom(bounds, 16));
  int64_t count = ValueOf(CountTiles(bounds, std::vector<int>{z}));
  // The formula gives zoom 12, where the bounds cover 12 tiles: too few, so 13.
  EXPECT_EQ(z, 13);
  EXPECT_GE(count, 16);
  EXPECT_EQ(ValueOf(CountTiles(bounds, std::vector<int>{12})), 12);
}

TEST(TileMathTest, EstimateZoomRejectsBadInput) {
  ExpectInvalid(EstimateZoom({0, 0, 1, 1}, 0), "Invalid target_num_tiles=0: must be at least 1");
  ExpectInvalid(EstimateZoom({0, 2, 1, 1}), "south must be less than or equal to north");
  ExpectInvalid(EstimateZoom({0, 0, std::nan(""), 1}), "Invalid east=nan");
}

TEST(TileMathTest, ToStringIsZxy) { EXPECT_EQ(ToString({486, 332, 10}), "10/486/332"); }

}  // namespace
}  // namespace terrafuse::tiles

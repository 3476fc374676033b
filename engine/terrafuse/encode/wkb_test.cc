#include "terrafuse/encode/wkb.h"

#include <arrow/builder.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "terrafuse/encode/testing_internal.h"

namespace terrafuse::encode {
namespace {

using testing::Line;
using testing::Point;
using testing::Wkb;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string Wkt(const std::string& wkb) {
  std::string out;
  Status st = AppendWkt(wkb, &out);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

std::string GeoJson(const std::string& wkb) {
  std::string out;
  Status st = AppendGeoJson(wkb, &out);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

std::string WktError(const std::string& wkb) {
  std::string out;
  Status st = AppendWkt(wkb, &out);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(KindOf(st), ErrorKind::kInvalidArgument);
  return st.message();
}

// A square with a square hole.
std::string Polygon() {
  return Wkb()
      .Header(3)
      .U32(2)
      .U32(5)
      .Coords({0, 0, 10, 0, 10, 10, 0, 10, 0, 0})
      .U32(4)
      .Coords({1, 1, 2, 1, 1, 2, 1, 1})
      .str();
}

TEST(WkbTest, Point) {
  EXPECT_EQ(Wkt(Point(1, 2)), "POINT (1 2)");
  EXPECT_EQ(GeoJson(Point(1, 2)), R"({"type":"Point","coordinates":[1,2]})");
}

TEST(WkbTest, NumbersAreShortestExact) {
  EXPECT_EQ(Wkt(Point(0.1, -122.41941550000001)), "POINT (0.1 -122.41941550000001)");
  EXPECT_EQ(Wkt(Point(1e20, -0.5)), "POINT (1e+20 -0.5)");
  EXPECT_EQ(GeoJson(Point(1e-7, 3)), R"({"type":"Point","coordinates":[1e-07,3]})");
}

TEST(WkbTest, PointZIsoAndExtended) {
  std::string iso = Wkb().Header(1001).Coords({1, 2, 3}).str();
  std::string ewkb = Wkb().Header(0x80000001u).Coords({1, 2, 3}).str();
  for (const auto& wkb : {iso, ewkb}) {
    EXPECT_EQ(Wkt(wkb), "POINT Z (1 2 3)");
    EXPECT_EQ(GeoJson(wkb), R"({"type":"Point","coordinates":[1,2,3]})");
  }
}

TEST(WkbTest, MeasureIsDroppedZIsKept) {
  EXPECT_EQ(Wkt(Wkb().Header(2001).Coords({1, 2, 9}).str()), "POINT (1 2)");
  EXPECT_EQ(Wkt(Wkb().Header(0x40000001u).Coords({1, 2, 9}).str()), "POINT (1 2)");
  std::string zm = Wkb().Header(3002).U32(2).Coords({1, 2, 3, 9, 4, 5, 6, 9}).str();
  EXPECT_EQ(Wkt(zm), "LINESTRING Z (1 2 3, 4 5 6)");
  EXPECT_EQ(GeoJson(zm), R"({"type":"LineString","coordinates":[[1,2,3],[4,5,6]]})");
}

TEST(WkbTest, BigEndianAndSrid) {
  EXPECT_EQ(Wkt(Wkb(true).Header(1).Coords({1.5, -2}).str()), "POINT (1.5 -2)");
  std::string with_srid = Wkb().Header(0x20000001u).U32(4326).Coords({3, 4}).str();
  EXPECT_EQ(Wkt(with_srid), "POINT (3 4)");
}

TEST(WkbTest, LineString) {
  std::string wkb = Line({0, 0, 1, 1, 2, 0});
  EXPECT_EQ(Wkt(wkb), "LINESTRING (0 0, 1 1, 2 0)");
  EXPECT_EQ(GeoJson(wkb), R"({"type":"LineString","coordinates":[[0,0],[1,1],[2,0]]})");
}

TEST(WkbTest, PolygonWithHole) {
  EXPECT_EQ(Wkt(Polygon()), "POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0), (1 1, 2 1, 1 2, 1 1))");
  EXPECT_EQ(GeoJson(Polygon()),
            R"({"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]],)"
            R"([[1,1],[2,1],[1,2],[1,1]]]})");
}

TEST(WkbTest, MultiPoint) {
  std::string wkb = Wkb().Header(4).U32(2).Part(Point(1, 2)).Part(Point(3, 4)).str();
  EXPECT_EQ(Wkt(wkb), "MULTIPOINT ((1 2), (3 4))");
  EXPECT_EQ(GeoJson(wkb), R"({"type":"MultiPoint","coordinates":[[1,2],[3,4]]})");
}

TEST(WkbTest, MultiLineString) {
  std::string wkb = Wkb().Header(5).U32(2).Part(Line({0, 0, 1, 1})).Part(Line({2, 2, 3, 3})).str();
  EXPECT_EQ(Wkt(wkb), "MULTILINESTRING ((0 0, 1 1), (2 2, 3 3))");
  EXPECT_EQ(GeoJson(wkb),
            R"({"type":"MultiLineString","coordinates":[[[0,0],[1,1]],[[2,2],[3,3]]]})");
}

TEST(WkbTest, MultiPolygon) {
  std::string triangle = Wkb().Header(3).U32(1).U32(4).Coords({5, 5, 6, 5, 6, 6, 5, 5}).str();
  std::string wkb = Wkb().Header(6).U32(2).Part(Polygon()).Part(triangle).str();
  EXPECT_EQ(Wkt(wkb),
            "MULTIPOLYGON (((0 0, 10 0, 10 10, 0 10, 0 0), (1 1, 2 1, 1 2, 1 1)), "
            "((5 5, 6 5, 6 6, 5 5)))");
  EXPECT_EQ(GeoJson(wkb),
            R"({"type":"MultiPolygon","coordinates":[[[[0,0],[10,0],[10,10],[0,10],[0,0]],)"
            R"([[1,1],[2,1],[1,2],[1,1]]],[[[5,5],[6,5],[6,6],[5,5]]]]})");
}

TEST(WkbTest, GeometryCollectionNestedWithZ) {
  std::string inner = Wkb().Header(7).U32(1).Part(Line({0, 0, 1, 1})).str();
  std::string point_z = Wkb().Header(1001).Coords({1, 2, 3}).str();
  std::string wkb = Wkb().Header(1007).U32(2).Part(point_z).Part(inner).str();
  EXPECT_EQ(Wkt(wkb),
            "GEOMETRYCOLLECTION Z (POINT Z (1 2 3), GEOMETRYCOLLECTION (LINESTRING (0 0, 1 1)))");
  EXPECT_EQ(GeoJson(wkb),
            R"({"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,2,3]},)"
            R"({"type":"GeometryCollection","geometries":[{"type":"LineString",)"
            R"("coordinates":[[0,0],[1,1]]}]}]})");
}

TEST(WkbTest, Empties) {
  EXPECT_EQ(Wkt(Point(kNaN, kNaN)), "POINT EMPTY");
  EXPECT_EQ(Wkt(Wkb().Header(1001).Coords({kNaN, kNaN, kNaN}).str()), "POINT Z EMPTY");
  EXPECT_EQ(Wkt(Wkb().Header(2).U32(0).str()), "LINESTRING EMPTY");
  EXPECT_EQ(Wkt(Wkb().Header(3).U32(0).str()), "POLYGON EMPTY");
  EXPECT_EQ(Wkt(Wkb().Header(4).U32(0).str()), "MULTIPOINT EMPTY");
  EXPECT_EQ(Wkt(Wkb().Header(7).U32(0).str()), "GEOMETRYCOLLECTION EMPTY");
  EXPECT_EQ(GeoJson(Point(kNaN, kNaN)), R"({"type":"Point","coordinates":[]})");
  EXPECT_EQ(GeoJson(Wkb().Header(6).U32(0).str()), R"({"type":"MultiPolygon","coordinates":[]})");
  EXPECT_EQ(GeoJson(Wkb().Header(7).U32(0).str()),
            R"({"type":"GeometryCollection","geometries":[]})");
}

TEST(WkbTest, NonFiniteCoordinatesAreNullInGeoJson) {
  EXPECT_EQ(GeoJson(Line({0, kNaN, 1, 1})),
            R"({"type":"LineString","coordinates":[[0,null],[1,1]]})");
}

TEST(WkbTest, MalformedInputIsAnError) {
  std::string point = Point(1, 2);
  EXPECT_EQ(WktError(""), "invalid WKB: truncated at byte 0 of 0");
  EXPECT_EQ(WktError(point.substr(0, 13)), "invalid WKB: truncated at byte 5 of 13");
  EXPECT_EQ(WktError("\x02" + point.substr(1)),
            "invalid WKB: byte order 2 at byte 0 (expected 0 or 1)");
  EXPECT_EQ(WktError(Wkb().Header(17).str()),
            "invalid WKB: unknown geometry type code 17 at byte 1");
  EXPECT_EQ(WktError(point + "x"), "invalid WKB: 1 bytes left over after the geometry at byte 21");
  EXPECT_EQ(WktError(Wkb().Header(2).U32(1000000).Coords({1, 2}).str()),
            "invalid WKB: count 1000000 at byte 5 exceeds the remaining 16 bytes");
  EXPECT_EQ(WktError(Wkb().Header(4).U32(1).Part(Line({0, 0, 1, 1})).str()),
            "invalid WKB: MultiPoint holds a LineString at byte 9");
}

TEST(WkbTest, DeepNestingIsRejected) {
  std::string wkb = Point(1, 2);
  for (int i = 0; i < 100; ++i) wkb = Wkb().Header(7).U32(1).Part(wkb).str();
  EXPECT_EQ(WktError(wkb), "invalid WKB: collections nested deeper than 64");
  std::string out;
  EXPECT_FALSE(AppendGeoJson(wkb, &out).ok());
}

TEST(WkbTest, ArrayToWktKeepsNulls) {
  arrow::BinaryBuilder builder;
  ASSERT_TRUE(builder.Append(Point(1, 2)).ok());
  ASSERT_TRUE(builder.AppendNull().ok());
  ASSERT_TRUE(builder.Append(Line({0, 0, 1, 1})).ok());
  auto array = builder.Finish().ValueOrDie();
  auto wkt = WkbArrayToWkt(*array->Slice(1)).ValueOrDie();
  ASSERT_EQ(wkt->type_id(), arrow::Type::LARGE_STRING);
  ASSERT_EQ(wkt->length(), 2);
  const auto& text = static_cast<const arrow::LargeStringArray&>(*wkt);
  EXPECT_TRUE(text.IsNull(0));
  EXPECT_EQ(text.GetView(1), "LINESTRING (0 0, 1 1)");
}

TEST(WkbTest, ArrayToWktNamesTheBadRow) {
  arrow::BinaryBuilder builder;
  ASSERT_TRUE(builder.Append(Point(1, 2)).ok());
  ASSERT_TRUE(builder.Append(std::string("\x01\x01", 2)).ok());
  auto result = WkbArrayToWkt(*builder.Finish().ValueOrDie());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(), "row 1: invalid WKB: truncated at byte 0 of 2");
  auto strings = arrow::StringBuilder().Finish().ValueOrDie();
  EXPECT_EQ(WkbArrayToWkt(*strings).status().message(),
            "WKB must be binary, large_binary or binary_view, got string");
}

}  // namespace
}  // namespace terrafuse::encode

#include "terrafuse/ingest/geometry.h"

#include <gtest/gtest.h>

#include <cstring>

namespace terrafuse::ingest {
namespace {

// Little-endian WKB builder for tests.
struct Wkb {
  std::string bytes;
  Wkb& U8(uint8_t v) { bytes.push_back(static_cast<char>(v)); return *this; }
  Wkb& U32(uint32_t v) { bytes.append(reinterpret_cast<char*>(&v), 4); return *this; }
  Wkb& D(double v) { bytes.append(reinterpret_cast<char*>(&v), 8); return *this; }
  Wkb& Ring(std::initializer_list<std::pair<double, double>> pts) {
    U32(static_cast<uint32_t>(pts.size()));
    for (auto [x, y] : pts) D(x).D(y);
    return *this;
  }
};

std::string Square(double x0, double y0, double s) {
  Wkb w;
  w.U8(1).U32(3).U32(1).Ring({{x0, y0}, {x0 + s, y0}, {x0 + s, y0 + s}, {x0, y0 + s}, {x0, y0}});
  return w.bytes;
}

TEST(Geometry, ScansPolygonWithHole) {
  Wkb w;
  w.U8(1).U32(3).U32(2);
  w.Ring({{0, 0}, {4, 0}, {4, 4}, {0, 4}, {0, 0}});
  w.Ring({{1, 1}, {2, 1}, {2, 2}, {1, 2}, {1, 1}});
  GeomInfo info;
  ASSERT_TRUE(ScanWkb(w.bytes, &info).ok());
  EXPECT_EQ(info.type, 3u);
  EXPECT_EQ(info.num_coords, 10);
  EXPECT_DOUBLE_EQ(info.area, 15);
  EXPECT_DOUBLE_EQ(info.length, 16 + 4);
  EXPECT_EQ(info.minx, 0);
  EXPECT_EQ(info.maxy, 4);
}

TEST(Geometry, PointsAndErrors) {
  std::string p;
  AppendPointWkb(1.5, -2.5, &p);
  GeomInfo info;
  ASSERT_TRUE(ScanWkb(p, &info).ok());
  EXPECT_EQ(info.minx, 1.5);
  EXPECT_EQ(info.maxy, -2.5);
  EXPECT_EQ(GeometryTypeName(info.type, info.has_z), "Point");
  auto st = ScanWkb(std::string_view(p).substr(0, 10), &info);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("truncated"), std::string::npos);
  st = ScanWkb(p + "x", &info);
  EXPECT_NE(st.message().find("trailing bytes"), std::string::npos);
}

TEST(Geometry, SubdivideSplitsUntilSmall) {
  auto geos = GeosOps::Make().ValueOrDie();
  auto pieces = geos->Subdivide(Square(0, 0, 4), 1.0).ValueOrDie();
  EXPECT_EQ(pieces.size(), 16u);
  double total = 0;
  for (const auto& piece : pieces) {
    GeomInfo info;
    ASSERT_TRUE(ScanWkb(piece, &info).ok());
    EXPECT_LE(info.area, 1.0 + 1e-9);
    total += info.area;
  }
  EXPECT_NEAR(total, 16, 1e-9);
  EXPECT_FALSE(geos->Subdivide(Square(0, 0, 4), 0).ok());
}

TEST(Geometry, IntersectsBoxIsExact) {
  auto geos = GeosOps::Make().ValueOrDie();
  // An L-shaped line whose bbox meets the box but the line does not.
  Wkb w;
  w.U8(1).U32(2).Ring({{0, 0}, {10, 0}, {10, 10}});
  EXPECT_FALSE(geos->IntersectsBox(w.bytes, {1, 1, 9, 9}).ValueOrDie());
  EXPECT_TRUE(geos->IntersectsBox(w.bytes, {9, 1, 11, 9}).ValueOrDie());
}

}  // namespace
}  // namespace terrafuse::ingest

#include "terrafuse/ingest/geometry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
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

// 21-byte little-endian points take a direct path; it must agree with the general reader
// (reached here through a big-endian encoding of the same point), NaN cases included.
TEST(Geometry, PointFastPathMatchesTheGeneralReader) {
  const double nan = std::nan("");
  for (auto [x, y] : std::initializer_list<std::pair<double, double>>{{1.5, -2.25}, {nan, nan}, {nan, 3}, {-180, 90}}) {
    Wkb le;
    le.U8(1).U32(1).D(x).D(y);
    ASSERT_EQ(le.bytes.size(), 21u);
    std::string be = le.bytes;
    be[0] = 0;
    std::reverse(be.begin() + 1, be.begin() + 5);
    std::reverse(be.begin() + 5, be.begin() + 13);
    std::reverse(be.begin() + 13, be.begin() + 21);
    GeomInfo fast, general;
    ASSERT_TRUE(ScanWkb(le.bytes, &fast).ok());
    ASSERT_TRUE(ScanWkb(be, &general).ok());
    EXPECT_EQ(fast.type, 1u);
    EXPECT_EQ(fast.type, general.type);
    EXPECT_EQ(fast.has_z, general.has_z);
    EXPECT_EQ(fast.num_coords, general.num_coords);
    EXPECT_EQ(fast.empty(), std::isnan(x) && std::isnan(y));
    for (auto [a, b] : {std::pair{fast.minx, general.minx}, {fast.miny, general.miny}, {fast.maxx, general.maxx},
                        {fast.maxy, general.maxy}}) {
      EXPECT_TRUE(a == b || (std::isnan(a) && std::isnan(b))) << a << " vs " << b;
    }
  }
  // A 21-byte value that is not a 2D point is still rejected by the general reader.
  Wkb bad;
  bad.U8(1).U32(2).D(0).D(0);
  GeomInfo info;
  EXPECT_FALSE(ScanWkb(bad.bytes, &info).ok());
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

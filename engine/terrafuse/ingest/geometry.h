// Geometry facts the ingest needs per row, read straight from WKB (no GEOS object per row):
// bounds, type, coordinate count, planar area and length. GEOS only where real
// geometry operations are needed: subdividing big polygons and exact intersection tests.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "terrafuse/common/status.h"

namespace terrafuse::ingest {

struct GeomInfo {
  double minx, miny, maxx, maxy;  // +inf/-inf when empty
  int64_t num_coords = 0;
  uint32_t type = 0;  // WKB type 1..7
  bool has_z = false;
  double area = 0;    // polygons only
  double length = 0;  // lines: length; polygons: perimeter
  bool empty() const { return num_coords == 0; }
};

/// Reads `wkb` once. Area and length are planar, in degrees (as Fused measures them).
Status ScanWkb(std::string_view wkb, GeomInfo* out);

/// Appends the little-endian WKB of POINT (x y) to `out`.
void AppendPointWkb(double x, double y, std::string* out);

/// GeoParquet's name of a WKB type ("Point", "MultiPolygon Z").
std::string GeometryTypeName(uint32_t type, bool has_z);

/// GEOS-backed operations; one instance per thread (holds a GEOS context).
class GeosOps {
 public:
  static Result<std::unique_ptr<GeosOps>> Make();
  ~GeosOps();
  GeosOps(const GeosOps&) = delete;
  GeosOps& operator=(const GeosOps&) = delete;

  /// Splits a polygonal geometry into pieces of planar area (degrees²) at most `stop`, by
  /// halving its bounding box; returns the pieces as WKB. A geometry already small enough
  /// comes back as the one piece.
  Result<std::vector<std::string>> Subdivide(std::string_view wkb, double stop);

  /// Whether `wkb` intersects the rectangle `box` = (minx, miny, maxx, maxy).
  Result<bool> IntersectsBox(std::string_view wkb, const std::array<double, 4>& box);

 private:
  explicit GeosOps(void* handle) : handle_(handle) {}
  void* handle_;  // GEOSContextHandle_t
};

}  // namespace terrafuse::ingest

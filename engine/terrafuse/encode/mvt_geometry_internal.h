// Geometry of the `mvt` encoder: one WKB geometry to the command integers of Mapbox Vector
// Tile features (spec 2.1, section 4.3). Coordinates are projected to the pixels of one tile,
// clipped to the tile plus a buffer (Sutherland-Hodgman for rings, Liang-Barsky for lines,
// points outside dropped), quantised to the extent (round half to even), and cleaned:
// repeated points removed, rings with fewer than 3 points or no area dropped, exteriors
// wound clockwise on screen (positive area, y down) and holes the other way.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "terrafuse/common/status.h"
#include "terrafuse/encode/wkb_reader_internal.h"
#include "terrafuse/tiles/tile_math.h"

namespace terrafuse::encode::internal {

/// Feature.GeomType of vector_tile.proto.
enum class MvtGeomType : uint8_t { kPoint = 1, kLineString = 2, kPolygon = 3 };

/// What the input coordinates are: longitude/latitude degrees (EPSG:4326, OGC:CRS84) or web
/// mercator meters (EPSG:3857).
enum class MvtInputCrs : uint8_t { kLonLat, kWebMercator };

/// The encoded geometry of one input geometry, one command list per MVT type. A
/// GeometryCollection may fill several (one feature each); an empty list means no feature.
struct MvtGeometry {
  std::array<std::vector<uint32_t>, 3> commands;

  std::vector<uint32_t>& Of(MvtGeomType type) { return commands[static_cast<int>(type) - 1]; }
  const std::vector<uint32_t>& Of(MvtGeomType type) const {
    return commands[static_cast<int>(type) - 1];
  }
  bool Empty() const { return commands[0].empty() && commands[1].empty() && commands[2].empty(); }
};

/// Encodes WKB geometries for one tile. Not thread-safe (it keeps scratch buffers); cheap
/// to make, so make one per encode.
class MvtGeometryEncoder {
 public:
  /// Checks the tile, 1 <= extent <= 2^24 and 0 <= buffer <= extent.
  static Result<MvtGeometryEncoder> Make(const tiles::Tile& tile, int extent, int buffer,
                                         MvtInputCrs crs = MvtInputCrs::kLonLat);

  /// Encodes one WKB geometry (ISO or extended, either byte order; Z and M ignored) into
  /// `out`, which is cleared first. Points are the feature's MoveTo(n); every linestring
  /// piece left after clipping is a MoveTo + LineTo; every polygon is its exterior ring
  /// then its holes, each MoveTo + LineTo + ClosePath. Multi* and collections (flattened)
  /// add their parts to the list of their type. Vertices with NaN or infinite coordinates
  /// are skipped. Fails with InvalidArgument when `wkb` is malformed.
  Status Encode(std::string_view wkb, MvtGeometry* out);

  /// The tile pixel coordinates (before rounding) of a point in the input CRS.
  std::array<double, 2> Project(double x, double y) const;

 private:
  struct Point {
    double x, y;
  };
  struct IntPoint {
    int32_t x, y;
    friend bool operator==(const IntPoint&, const IntPoint&) = default;
  };
  using Reader = WkbReader;  // wkb_reader_internal.h

  MvtGeometryEncoder() = default;

  Status ReadGeometry(Reader& reader, int depth);
  Status ReadPolygon(Reader& reader, int dims);
  void ReadCoords(Reader& reader, uint32_t count, int dims, std::vector<Point>* out) const;
  void AddPoint(const Point& p);
  void AddLine(const std::vector<Point>& line);
  void AddLinePiece(const std::vector<Point>& piece);
  // Clips, quantises and cleans one ring into `ring_`, with its doubled signed area in
  // `area`; false when nothing of it is left.
  bool PrepareRing(std::vector<Point>* ring, int64_t* area);
  void EmitPolygon();
  void EmitPoints();
  // Appends the deltas of `p` from the cursor of `type` and moves the cursor there.
  void Delta(MvtGeomType type, IntPoint p);

  double origin_x_ = 0, origin_y_ = 0;  // the tile's left and top, in mercator meters
  double scale_x_ = 1, scale_y_ = 1;    // pixels per meter (y grows downwards)
  double lo_ = 0, hi_ = 0;              // the clip box on both axes, in pixels
  MvtInputCrs crs_ = MvtInputCrs::kLonLat;

  // Per Encode call.
  MvtGeometry* out_ = nullptr;
  std::array<IntPoint, 3> cursor_{};  // the command cursor of each type's feature
  std::vector<IntPoint> points_;

  // Scratch, kept across calls to save allocations.
  std::vector<Point> coords_, clip_, piece_;
  std::vector<IntPoint> ring_;
  // The quantised rings of the polygon being read, one after the other.
  std::vector<IntPoint> polygon_points_;
  std::vector<uint32_t> polygon_sizes_;
  std::vector<int64_t> polygon_areas_;
};

}  // namespace terrafuse::encode::internal

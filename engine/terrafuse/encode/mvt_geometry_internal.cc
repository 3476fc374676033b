#include "terrafuse/encode/mvt_geometry_internal.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numbers>

namespace terrafuse::encode::internal {

namespace {

constexpr double kEarthRadius = 6378137.0;  // mercantile's web mercator sphere
constexpr double kDegToRad = std::numbers::pi / 180.0;
constexpr int kMaxDepth = 64;  // nested collections deeper than this are rejected
constexpr int kMaxExtent = 1 << 24;

constexpr uint32_t kMoveTo = 1;
constexpr uint32_t kLineTo = 2;
constexpr uint32_t kClosePath = 7;

constexpr uint32_t Command(uint32_t id, uint32_t count) { return (count << 3) | id; }

constexpr uint32_t ZigZag(int32_t v) {
  return (static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31);
}

}  // namespace

namespace {

// One Sutherland-Hodgman pass: keeps the part of the closed ring `in` on the inside of the
// line coordinate[Axis] = bound (<= bound when Upper, else >=).
template <int Axis, bool Upper, typename Point>
void ClipRingEdge(const std::vector<Point>& in, double bound, std::vector<Point>* out) {
  out->clear();
  if (in.empty()) return;
  auto coord = [](const Point& p) { return Axis == 0 ? p.x : p.y; };
  auto inside = [&](const Point& p) { return Upper ? coord(p) <= bound : coord(p) >= bound; };
  const Point* prev = &in.back();
  bool prev_in = inside(*prev);
  for (const Point& cur : in) {
    bool cur_in = inside(cur);
    if (cur_in != prev_in) {
      // One end is strictly on each side: the divisor is not zero.
      double t = (bound - coord(*prev)) / (coord(cur) - coord(*prev));
      if constexpr (Axis == 0) {
        out->push_back({bound, prev->y + t * (cur.y - prev->y)});
      } else {
        out->push_back({prev->x + t * (cur.x - prev->x), bound});
      }
    }
    if (cur_in) out->push_back(cur);
    prev = &cur;
    prev_in = cur_in;
  }
}

template <typename Point>
struct Box {
  double min_x = HUGE_VAL, min_y = HUGE_VAL, max_x = -HUGE_VAL, max_y = -HUGE_VAL;

  explicit Box(const std::vector<Point>& points) {
    for (const Point& p : points) {
      min_x = std::min(min_x, p.x);
      max_x = std::max(max_x, p.x);
      min_y = std::min(min_y, p.y);
      max_y = std::max(max_y, p.y);
    }
  }
  bool Inside(double lo, double hi) const {
    return min_x >= lo && max_x <= hi && min_y >= lo && max_y <= hi;
  }
  bool Disjoint(double lo, double hi) const {
    return max_x < lo || min_x > hi || max_y < lo || min_y > hi;
  }
};

}  // namespace

Result<MvtGeometryEncoder> MvtGeometryEncoder::Make(const tiles::Tile& tile, int extent, int buffer,
                                                    MvtInputCrs crs) {
  if (extent < 1 || extent > kMaxExtent) {
    return InvalidArgument("Invalid MVT extent ", extent, ": it must be between 1 and ",
                           kMaxExtent);
  }
  if (buffer < 0 || buffer > extent) {
    return InvalidArgument("Invalid MVT buffer ", buffer, ": it must be between 0 and the extent (",
                           extent, ")");
  }
  ARROW_ASSIGN_OR_RAISE(tiles::MercatorBounds bounds, tiles::XyBounds(tile));
  MvtGeometryEncoder encoder;
  encoder.origin_x_ = bounds.left;
  encoder.origin_y_ = bounds.top;
  encoder.scale_x_ = extent / (bounds.right - bounds.left);
  encoder.scale_y_ = extent / (bounds.top - bounds.bottom);
  encoder.lo_ = -buffer;
  encoder.hi_ = static_cast<double>(extent) + buffer;
  encoder.crs_ = crs;
  return encoder;
}

std::array<double, 2> MvtGeometryEncoder::Project(double x, double y) const {
  if (crs_ == MvtInputCrs::kLonLat) {
    // mercantile.xy, with latitudes clamped short of the poles (where y is infinite).
    double lat = std::clamp(y, -tiles::kMaxSafeLatitude, tiles::kMaxSafeLatitude);
    x = kEarthRadius * (x * kDegToRad);
    y = kEarthRadius * std::log(std::tan(std::numbers::pi * 0.25 + 0.5 * (lat * kDegToRad)));
  }
  return {(x - origin_x_) * scale_x_, (origin_y_ - y) * scale_y_};
}

Status MvtGeometryEncoder::Encode(std::string_view wkb, MvtGeometry* out) {
  for (auto& commands : out->commands) commands.clear();
  out_ = out;
  cursor_ = {};
  points_.clear();
  Reader reader(wkb);
  ARROW_RETURN_NOT_OK(ReadGeometry(reader, 0));
  if (!reader.AtEnd()) {
    return InvalidArgument("invalid WKB: ", wkb.size() - reader.Offset(),
                           " unexpected bytes after the geometry at byte ", reader.Offset());
  }
  EmitPoints();
  return Status::OK();
}

void MvtGeometryEncoder::ReadCoords(Reader& reader, uint32_t count, int dims,
                                    std::vector<Point>* out) const {
  out->clear();
  out->reserve(count);
  const size_t skip = static_cast<size_t>(dims - 2) * 8;
  for (uint32_t i = 0; i < count; ++i) {
    double x = reader.ReadDoubleUnchecked();
    double y = reader.ReadDoubleUnchecked();
    reader.SkipUnchecked(skip);
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    auto [px, py] = Project(x, y);
    out->push_back({px, py});
  }
}

Status MvtGeometryEncoder::ReadGeometry(Reader& reader, int depth) {
  if (depth > kMaxDepth) {
    return InvalidArgument("invalid WKB: collections nested deeper than ", kMaxDepth,
                           " levels at byte ", reader.Offset());
  }
  WkbHeader h{};
  ARROW_RETURN_NOT_OK(reader.ReadHeader(&h));
  const size_t coord_bytes = static_cast<size_t>(h.dims) * 8;
  switch (h.type) {
    case kWkbPoint: {
      ARROW_RETURN_NOT_OK(reader.CheckCoords(1, h.dims));
      ReadCoords(reader, 1, h.dims, &coords_);
      if (!coords_.empty()) AddPoint(coords_[0]);
      return Status::OK();
    }
    case kWkbLineString: {
      uint32_t n;
      ARROW_RETURN_NOT_OK(reader.ReadCount(&n, coord_bytes));
      ReadCoords(reader, n, h.dims, &coords_);
      AddLine(coords_);
      return Status::OK();
    }
    case kWkbPolygon:
      return ReadPolygon(reader, h.dims);
    default: {  // Multi* and GeometryCollection: each part has its own header
      uint32_t n;
      ARROW_RETURN_NOT_OK(reader.ReadCount(&n, 5));
      for (uint32_t i = 0; i < n; ++i) ARROW_RETURN_NOT_OK(ReadGeometry(reader, depth + 1));
      return Status::OK();
    }
  }
}

Status MvtGeometryEncoder::ReadPolygon(Reader& reader, int dims) {
  uint32_t num_rings;
  ARROW_RETURN_NOT_OK(reader.ReadCount(&num_rings, 4));
  polygon_points_.clear();
  polygon_sizes_.clear();
  polygon_areas_.clear();
  bool keep = true;  // false once the exterior is gone: the holes are then read and dropped
  for (uint32_t r = 0; r < num_rings; ++r) {
    uint32_t n;
    ARROW_RETURN_NOT_OK(reader.ReadCount(&n, static_cast<size_t>(dims) * 8));
    if (!keep) {
      reader.SkipUnchecked(static_cast<size_t>(n) * dims * 8);
      continue;
    }
    ReadCoords(reader, n, dims, &coords_);
    int64_t area;
    if (PrepareRing(&coords_, &area)) {
      polygon_points_.insert(polygon_points_.end(), ring_.begin(), ring_.end());
      polygon_sizes_.push_back(static_cast<uint32_t>(ring_.size()));
      polygon_areas_.push_back(area);
    } else if (r == 0) {
      keep = false;
    }
  }
  if (keep && !polygon_sizes_.empty()) EmitPolygon();
  return Status::OK();
}

void MvtGeometryEncoder::Delta(MvtGeomType type, IntPoint p) {
  IntPoint& cursor = cursor_[static_cast<int>(type) - 1];
  std::vector<uint32_t>& out = out_->Of(type);
  out.push_back(ZigZag(p.x - cursor.x));
  out.push_back(ZigZag(p.y - cursor.y));
  cursor = p;
}

void MvtGeometryEncoder::AddPoint(const Point& p) {
  if (p.x < lo_ || p.x > hi_ || p.y < lo_ || p.y > hi_) return;
  points_.push_back(
      {static_cast<int32_t>(std::nearbyint(p.x)), static_cast<int32_t>(std::nearbyint(p.y))});
}

void MvtGeometryEncoder::EmitPoints() {
  if (points_.empty()) return;
  out_->Of(MvtGeomType::kPoint).push_back(Command(kMoveTo, static_cast<uint32_t>(points_.size())));
  for (const IntPoint& p : points_) Delta(MvtGeomType::kPoint, p);
}

void MvtGeometryEncoder::AddLine(const std::vector<Point>& line) {
  if (line.size() < 2) return;
  Box<Point> box(line);
  if (box.Disjoint(lo_, hi_)) return;
  if (box.Inside(lo_, hi_)) {
    AddLinePiece(line);
    return;
  }
  // Liang-Barsky on each segment; a piece ends where the line leaves the box.
  piece_.clear();
  for (size_t i = 1; i < line.size(); ++i) {
    const Point& a = line[i - 1];
    const Point& b = line[i];
    const double dx = b.x - a.x, dy = b.y - a.y;
    double t0 = 0, t1 = 1;
    bool visible = true;
    const double p[4] = {-dx, dx, -dy, dy};
    const double q[4] = {a.x - lo_, hi_ - a.x, a.y - lo_, hi_ - a.y};
    for (int k = 0; k < 4 && visible; ++k) {
      if (p[k] == 0) {
        visible = q[k] >= 0;
      } else {
        double r = q[k] / p[k];
        if (p[k] < 0) {
          if (r > t1) visible = false;
          t0 = std::max(t0, r);
        } else {
          if (r < t0) visible = false;
          t1 = std::min(t1, r);
        }
      }
    }
    if (!visible) {
      if (!piece_.empty()) {
        AddLinePiece(piece_);
        piece_.clear();
      }
      continue;
    }
    if (t0 > 0 && !piece_.empty()) {  // re-entered: a new piece
      AddLinePiece(piece_);
      piece_.clear();
    }
    if (piece_.empty()) piece_.push_back(t0 > 0 ? Point{a.x + t0 * dx, a.y + t0 * dy} : a);
    piece_.push_back(t1 < 1 ? Point{a.x + t1 * dx, a.y + t1 * dy} : b);
    if (t1 < 1) {  // left the box
      AddLinePiece(piece_);
      piece_.clear();
    }
  }
  if (!piece_.empty()) AddLinePiece(piece_);
}

void MvtGeometryEncoder::AddLinePiece(const std::vector<Point>& piece) {
  ring_.clear();
  for (const Point& p : piece) {
    IntPoint q{static_cast<int32_t>(std::nearbyint(p.x)),
               static_cast<int32_t>(std::nearbyint(p.y))};
    if (ring_.empty() || !(q == ring_.back())) ring_.push_back(q);
  }
  if (ring_.size() < 2) return;
  std::vector<uint32_t>& out = out_->Of(MvtGeomType::kLineString);
  out.push_back(Command(kMoveTo, 1));
  Delta(MvtGeomType::kLineString, ring_[0]);
  out.push_back(Command(kLineTo, static_cast<uint32_t>(ring_.size() - 1)));
  for (size_t i = 1; i < ring_.size(); ++i) Delta(MvtGeomType::kLineString, ring_[i]);
}

bool MvtGeometryEncoder::PrepareRing(std::vector<Point>* ring, int64_t* area) {
  // WKB rings repeat their first point at the end; the clipper wants it once.
  if (ring->size() > 1 && ring->front().x == ring->back().x && ring->front().y == ring->back().y) {
    ring->pop_back();
  }
  if (ring->size() < 3) return false;
  Box<Point> box(*ring);
  if (box.Disjoint(lo_, hi_)) return false;
  const std::vector<Point>* clipped = ring;
  if (!box.Inside(lo_, hi_)) {
    ClipRingEdge<0, false>(*ring, lo_, &clip_);
    ClipRingEdge<0, true>(clip_, hi_, ring);
    ClipRingEdge<1, false>(*ring, lo_, &clip_);
    ClipRingEdge<1, true>(clip_, hi_, ring);
  }
  ring_.clear();
  for (const Point& p : *clipped) {
    IntPoint q{static_cast<int32_t>(std::nearbyint(p.x)),
               static_cast<int32_t>(std::nearbyint(p.y))};
    if (ring_.empty() || !(q == ring_.back())) ring_.push_back(q);
  }
  while (ring_.size() > 1 && ring_.back() == ring_.front()) ring_.pop_back();
  if (ring_.size() < 3) return false;
  // Twice the signed area (shoelace), positive when clockwise on screen (y down).
  int64_t sum = 0;
  const IntPoint* prev = &ring_.back();
  for (const IntPoint& p : ring_) {
    sum += static_cast<int64_t>(prev->x) * p.y - static_cast<int64_t>(p.x) * prev->y;
    prev = &p;
  }
  *area = sum;
  return sum != 0;
}

void MvtGeometryEncoder::EmitPolygon() {
  // Holes left covering the whole exterior (a tile inside a hole) leave nothing.
  int64_t net = std::llabs(polygon_areas_[0]);
  for (size_t r = 1; r < polygon_areas_.size(); ++r) net -= std::llabs(polygon_areas_[r]);
  if (net <= 0) return;
  std::vector<uint32_t>& out = out_->Of(MvtGeomType::kPolygon);
  const IntPoint* ring = polygon_points_.data();
  for (size_t r = 0; r < polygon_sizes_.size(); ++r) {
    const size_t n = polygon_sizes_[r];
    // Exteriors have a positive area, holes a negative one (spec 4.3.4.4).
    const bool reverse = (r == 0) != (polygon_areas_[r] > 0);
    out.push_back(Command(kMoveTo, 1));
    Delta(MvtGeomType::kPolygon, ring[0]);
    out.push_back(Command(kLineTo, static_cast<uint32_t>(n - 1)));
    if (reverse) {
      for (size_t i = n - 1; i >= 1; --i) Delta(MvtGeomType::kPolygon, ring[i]);
    } else {
      for (size_t i = 1; i < n; ++i) Delta(MvtGeomType::kPolygon, ring[i]);
    }
    out.push_back(Command(kClosePath, 1));
    ring += n;
  }
}

}  // namespace terrafuse::encode::internal

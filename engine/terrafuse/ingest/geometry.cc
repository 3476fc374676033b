#include "terrafuse/ingest/geometry.h"

#include <geos_c.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "terrafuse/encode/wkb_reader_internal.h"

namespace terrafuse::ingest {

namespace {

using encode::internal::WkbHeader;
using encode::internal::WkbReader;

constexpr int kMaxDepth = 32;

struct Scanner {
  WkbReader reader;
  GeomInfo* info;

  void Add(double x, double y) {
    info->minx = std::min(info->minx, x);
    info->maxx = std::max(info->maxx, x);
    info->miny = std::min(info->miny, y);
    info->maxy = std::max(info->maxy, y);
    ++info->num_coords;
  }

  // Reads `n` coordinates; returns the ring's signed area * 2 and adds the path length.
  double ReadPath(uint32_t n, int dims) {
    double area2 = 0, px = 0, py = 0, length = 0;
    for (uint32_t i = 0; i < n; ++i) {
      double x = reader.ReadDoubleUnchecked();
      double y = reader.ReadDoubleUnchecked();
      reader.SkipUnchecked((dims - 2) * 8);
      Add(x, y);
      if (i > 0) {
        area2 += px * y - x * py;
        length += std::hypot(x - px, y - py);
      }
      px = x;
      py = y;
    }
    info->length += length;
    return area2;
  }

  Status Scan(int depth) {
    if (depth > kMaxDepth) return InvalidArgument("invalid WKB: nesting deeper than ", kMaxDepth);
    WkbHeader h;
    ARROW_RETURN_NOT_OK(reader.ReadHeader(&h));
    if (depth == 0) {
      info->type = h.type;
      info->has_z = h.has_z;
    }
    const size_t coord_bytes = static_cast<size_t>(h.dims) * 8;
    uint32_t n = 0;
    switch (h.type) {
      case encode::internal::kWkbPoint: {
        ARROW_RETURN_NOT_OK(reader.CheckCoords(1, h.dims));
        double x = reader.ReadDoubleUnchecked();
        double y = reader.ReadDoubleUnchecked();
        reader.SkipUnchecked((h.dims - 2) * 8);
        if (!(std::isnan(x) && std::isnan(y))) Add(x, y);  // NaN NaN is POINT EMPTY
        return Status::OK();
      }
      case encode::internal::kWkbLineString:
        ARROW_RETURN_NOT_OK(reader.ReadCount(&n, coord_bytes));
        ReadPath(n, h.dims);
        return Status::OK();
      case encode::internal::kWkbPolygon: {
        ARROW_RETURN_NOT_OK(reader.ReadCount(&n, 4));
        for (uint32_t r = 0; r < n; ++r) {
          uint32_t m = 0;
          ARROW_RETURN_NOT_OK(reader.ReadCount(&m, coord_bytes));
          double a = std::abs(ReadPath(m, h.dims)) / 2;
          info->area += r == 0 ? a : -a;  // holes subtract
        }
        return Status::OK();
      }
      default:  // Multi* and GeometryCollection: a count of full geometries
        ARROW_RETURN_NOT_OK(reader.ReadCount(&n, 5));
        for (uint32_t i = 0; i < n; ++i) ARROW_RETURN_NOT_OK(Scan(depth + 1));
        return Status::OK();
    }
  }
};

// GEOS reports errors through a callback; keep the last message per context.
void GeosMessage(const char* message, void* userdata) {
  if (userdata) *static_cast<std::string*>(userdata) = message;
}

struct GeosContext {
  GEOSContextHandle_t handle;
  std::string last_error;
};

}  // namespace

Status ScanWkb(std::string_view wkb, GeomInfo* out) {
  *out = GeomInfo{HUGE_VAL, HUGE_VAL, -HUGE_VAL, -HUGE_VAL};
  // A 2D little-endian point (every row of a lonlat_cols ingest), read directly: this runs
  // for every row several times per ingest and per read, and the general reader costs 3-4x.
  if constexpr (std::endian::native == std::endian::little) {
    if (wkb.size() == 21 && std::memcmp(wkb.data(), "\x01\x01\x00\x00\x00", 5) == 0) {
      double x, y;
      std::memcpy(&x, wkb.data() + 5, 8);
      std::memcpy(&y, wkb.data() + 13, 8);
      out->type = encode::internal::kWkbPoint;
      if (!(std::isnan(x) && std::isnan(y))) Scanner{WkbReader(wkb), out}.Add(x, y);  // NaN NaN is POINT EMPTY
      return Status::OK();
    }
  }
  Scanner scanner{WkbReader(wkb), out};
  ARROW_RETURN_NOT_OK(scanner.Scan(0));
  if (!scanner.reader.AtEnd()) {
    return InvalidArgument("invalid WKB: ", scanner.reader.Size() - scanner.reader.Offset(),
                           " trailing bytes after the geometry");
  }
  return Status::OK();
}

void AppendPointWkb(double x, double y, std::string* out) {
  char buf[21];
  buf[0] = 1;  // little endian
  uint32_t type = 1;
  std::memcpy(buf + 1, &type, 4);
  std::memcpy(buf + 5, &x, 8);
  std::memcpy(buf + 13, &y, 8);
  out->append(buf, sizeof buf);
}

std::string GeometryTypeName(uint32_t type, bool has_z) {
  static const char* kNames[] = {"Geometry",   "Point",           "LineString",   "Polygon",
                                 "MultiPoint", "MultiLineString", "MultiPolygon", "GeometryCollection"};
  std::string name = type < 8 ? kNames[type] : "Geometry";
  if (has_z) name += " Z";
  return name;
}

// --- GEOS -------------------------------------------------------------------------------

Result<std::unique_ptr<GeosOps>> GeosOps::Make() {
  auto* ctx = new GeosContext{GEOS_init_r(), {}};
  if (!ctx->handle) {
    delete ctx;
    return Internal("GEOS_init_r failed");
  }
  GEOSContext_setErrorMessageHandler_r(ctx->handle, GeosMessage, &ctx->last_error);
  return std::unique_ptr<GeosOps>(new GeosOps(ctx));
}

GeosOps::~GeosOps() {
  auto* ctx = static_cast<GeosContext*>(handle_);
  GEOS_finish_r(ctx->handle);
  delete ctx;
}

namespace {

struct GeomDeleter {
  GEOSContextHandle_t h;
  void operator()(GEOSGeometry* g) const {
    if (g) GEOSGeom_destroy_r(h, g);
  }
};
using GeomPtr = std::unique_ptr<GEOSGeometry, GeomDeleter>;

Result<GeomPtr> ReadGeos(GeosContext* ctx, std::string_view wkb) {
  GEOSWKBReader* reader = GEOSWKBReader_create_r(ctx->handle);
  GEOSGeometry* g = GEOSWKBReader_read_r(ctx->handle, reader,
                                         reinterpret_cast<const unsigned char*>(wkb.data()), wkb.size());
  GEOSWKBReader_destroy_r(ctx->handle, reader);
  if (!g) return InvalidArgument("invalid WKB for GEOS: ", ctx->last_error);
  return GeomPtr(g, GeomDeleter{ctx->handle});
}

Result<std::string> WriteGeos(GeosContext* ctx, const GEOSGeometry* g) {
  GEOSWKBWriter* writer = GEOSWKBWriter_create_r(ctx->handle);
  GEOSWKBWriter_setByteOrder_r(ctx->handle, writer, GEOS_WKB_NDR);
  size_t size = 0;
  unsigned char* bytes = GEOSWKBWriter_write_r(ctx->handle, writer, g, &size);
  GEOSWKBWriter_destroy_r(ctx->handle, writer);
  if (!bytes) return Internal("GEOS could not write WKB: ", ctx->last_error);
  std::string out(reinterpret_cast<char*>(bytes), size);
  GEOSFree_r(ctx->handle, bytes);
  return out;
}

}  // namespace

Result<std::vector<std::string>> GeosOps::Subdivide(std::string_view wkb, double stop) {
  auto* ctx = static_cast<GeosContext*>(handle_);
  if (!(stop > 0)) return InvalidArgument("subdivide_stop must be > 0 (0 would subdivide forever)");
  ARROW_ASSIGN_OR_RAISE(GeomPtr root, ReadGeos(ctx, wkb));
  std::vector<std::string> pieces;
  std::vector<GeomPtr> stack;
  stack.push_back(std::move(root));
  while (!stack.empty()) {
    GeomPtr g = std::move(stack.back());
    stack.pop_back();
    if (GEOSisEmpty_r(ctx->handle, g.get())) continue;
    double area = 0;
    GEOSArea_r(ctx->handle, g.get(), &area);
    double minx, miny, maxx, maxy;
    if (!GEOSGeom_getXMin_r(ctx->handle, g.get(), &minx) || !GEOSGeom_getYMin_r(ctx->handle, g.get(), &miny) ||
        !GEOSGeom_getXMax_r(ctx->handle, g.get(), &maxx) || !GEOSGeom_getYMax_r(ctx->handle, g.get(), &maxy)) {
      return Internal("GEOS could not compute bounds: ", ctx->last_error);
    }
    // Stop when small enough, or when the box is already tiny (degenerate slivers).
    if (area <= stop || (maxx - minx) * (maxy - miny) <= stop / 1024) {
      ARROW_ASSIGN_OR_RAISE(std::string piece, WriteGeos(ctx, g.get()));
      pieces.push_back(std::move(piece));
      continue;
    }
    bool vertical = (maxx - minx) >= (maxy - miny);
    double mid = vertical ? (minx + maxx) / 2 : (miny + maxy) / 2;
    double boxes[2][4] = {
        {minx, miny, vertical ? mid : maxx, vertical ? maxy : mid},
        {vertical ? mid : minx, vertical ? miny : mid, maxx, maxy}};
    // Push the second half first so pieces come out in a stable left/bottom-first order.
    for (int i = 1; i >= 0; --i) {
      GEOSGeometry* part = GEOSClipByRect_r(ctx->handle, g.get(), boxes[i][0], boxes[i][1], boxes[i][2], boxes[i][3]);
      if (!part) return Internal("GEOS clip failed: ", ctx->last_error);
      stack.emplace_back(part, GeomDeleter{ctx->handle});
    }
  }
  return pieces;
}

Result<bool> GeosOps::IntersectsBox(std::string_view wkb, const std::array<double, 4>& box) {
  auto* ctx = static_cast<GeosContext*>(handle_);
  ARROW_ASSIGN_OR_RAISE(GeomPtr g, ReadGeos(ctx, wkb));
  GeomPtr rect(GEOSGeom_createRectangle_r(ctx->handle, box[0], box[1], box[2], box[3]),
               GeomDeleter{ctx->handle});
  if (!rect) return Internal("GEOS could not build the query box: ", ctx->last_error);
  char r = GEOSIntersects_r(ctx->handle, g.get(), rect.get());
  if (r == 2) return InvalidArgument("GEOS intersects failed: ", ctx->last_error);
  return r == 1;
}

}  // namespace terrafuse::ingest

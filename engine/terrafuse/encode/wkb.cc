#include "terrafuse/encode/wkb.h"

#include <arrow/buffer_builder.h>
#include <arrow/type_traits.h>
#include <arrow/util/bitmap_ops.h>
#include <arrow/visit_type_inline.h>

#include <bit>
#include <cmath>
#include <cstring>

#include "terrafuse/encode/text_internal.h"
#include "terrafuse/encode/wkb_reader_internal.h"

namespace terrafuse::encode {

namespace {

using internal::AppendDouble;
using internal::AppendJsonDouble;

// Nested collections deeper than this are rejected rather than recursed into.
constexpr int kMaxDepth = 64;

// The shared reader's names, short, as this file uses them throughout.
using Header = internal::WkbHeader;
using Cursor = internal::WkbReader;
constexpr uint32_t kPoint = internal::kWkbPoint;
constexpr uint32_t kLineString = internal::kWkbLineString;
constexpr uint32_t kPolygon = internal::kWkbPolygon;
constexpr uint32_t kMultiPoint = internal::kWkbMultiPoint;
constexpr uint32_t kMultiLineString = internal::kWkbMultiLineString;
constexpr uint32_t kMultiPolygon = internal::kWkbMultiPolygon;
constexpr uint32_t kGeometryCollection = internal::kWkbGeometryCollection;

const char* WktName(uint32_t type) {
  switch (type) {
    case kPoint:
      return "POINT";
    case kLineString:
      return "LINESTRING";
    case kPolygon:
      return "POLYGON";
    case kMultiPoint:
      return "MULTIPOINT";
    case kMultiLineString:
      return "MULTILINESTRING";
    case kMultiPolygon:
      return "MULTIPOLYGON";
    default:
      return "GEOMETRYCOLLECTION";
  }
}

const char* GeoJsonName(uint32_t type) {
  switch (type) {
    case kPoint:
      return "Point";
    case kLineString:
      return "LineString";
    case kPolygon:
      return "Polygon";
    case kMultiPoint:
      return "MultiPoint";
    case kMultiLineString:
      return "MultiLineString";
    case kMultiPolygon:
      return "MultiPolygon";
    default:
      return "GeometryCollection";
  }
}

Status CheckChildType(const Header& parent, const Header& child, size_t offset) {
  uint32_t expected = parent.type - 3;  // MultiPoint -> Point, ...
  if (child.type != expected) {
    return InvalidArgument("invalid WKB: ", GeoJsonName(parent.type), " holds a ",
                           GeoJsonName(child.type), " at byte ", offset);
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------------------
// WKT

class WktWriter {
 public:
  explicit WktWriter(std::string* out) : out_(out) {}

  // A whole geometry: "POINT Z (1 2 3)".
  Status Tagged(Cursor& c, int depth) {
    Header h;
    ARROW_RETURN_NOT_OK(c.ReadHeader(&h));
    return TaggedBody(c, h, depth);
  }

 private:
  Status TaggedBody(Cursor& c, const Header& h, int depth) {
    out_->append(WktName(h.type));
    if (h.has_z) out_->append(" Z", 2);
    out_->push_back(' ');
    return Body(c, h, depth);
  }

  void Coord(Cursor& c, const Header& h) {
    double x = c.ReadDoubleUnchecked();
    double y = c.ReadDoubleUnchecked();
    AppendDouble(out_, x);
    out_->push_back(' ');
    AppendDouble(out_, y);
    if (h.dims >= 3) {
      double third = c.ReadDoubleUnchecked();
      if (h.has_z) {
        out_->push_back(' ');
        AppendDouble(out_, third);
      }
      if (h.dims == 4) c.ReadDoubleUnchecked();  // M
    }
  }

  // "(x y, x y)" or "EMPTY" after reading the count.
  Status Sequence(Cursor& c, const Header& h) {
    uint32_t n = 0;
    ARROW_RETURN_NOT_OK(c.ReadCount(&n, h.dims * 8));
    if (n == 0) {
      out_->append("EMPTY", 5);
      return Status::OK();
    }
    out_->push_back('(');
    for (uint32_t i = 0; i < n; ++i) {
      if (i) out_->append(", ", 2);
      Coord(c, h);
    }
    out_->push_back(')');
    return Status::OK();
  }

  Status Rings(Cursor& c, const Header& h) {
    uint32_t n = 0;
    ARROW_RETURN_NOT_OK(c.ReadCount(&n, 4));
    if (n == 0) {
      out_->append("EMPTY", 5);
      return Status::OK();
    }
    out_->push_back('(');
    for (uint32_t i = 0; i < n; ++i) {
      if (i) out_->append(", ", 2);
      ARROW_RETURN_NOT_OK(Sequence(c, h));
    }
    out_->push_back(')');
    return Status::OK();
  }

  // The part after the tag.
  Status Body(Cursor& c, const Header& h, int depth) {
    switch (h.type) {
      case kPoint: {
        ARROW_RETURN_NOT_OK(c.CheckCoords(1, h.dims));
        Cursor peek = c;
        double x = peek.ReadDoubleUnchecked();
        double y = peek.ReadDoubleUnchecked();
        if (std::isnan(x) && std::isnan(y)) {  // WKB has no empty point: NaN coordinates
          for (int i = 0; i < h.dims; ++i) c.ReadDoubleUnchecked();
          out_->append("EMPTY", 5);
          return Status::OK();
        }
        out_->push_back('(');
        Coord(c, h);
        out_->push_back(')');
        return Status::OK();
      }
      case kLineString:
        return Sequence(c, h);
      case kPolygon:
        return Rings(c, h);
      default:
        break;
    }
    if (depth >= kMaxDepth) {
      return InvalidArgument("invalid WKB: collections nested deeper than ", kMaxDepth);
    }
    uint32_t n = 0;
    ARROW_RETURN_NOT_OK(c.ReadCount(&n, 5));
    if (n == 0) {
      out_->append("EMPTY", 5);
      return Status::OK();
    }
    out_->push_back('(');
    for (uint32_t i = 0; i < n; ++i) {
      if (i) out_->append(", ", 2);
      size_t offset = c.Offset();
      Header child;
      ARROW_RETURN_NOT_OK(c.ReadHeader(&child));
      if (h.type == kGeometryCollection) {
        ARROW_RETURN_NOT_OK(TaggedBody(c, child, depth + 1));
      } else {
        ARROW_RETURN_NOT_OK(CheckChildType(h, child, offset));
        ARROW_RETURN_NOT_OK(Body(c, child, depth + 1));
      }
    }
    out_->push_back(')');
    return Status::OK();
  }

  std::string* out_;
};

// ---------------------------------------------------------------------------------------
// GeoJSON

class GeoJsonWriter {
 public:
  explicit GeoJsonWriter(std::string* out) : out_(out) {}

  Status Object(Cursor& c, int depth) {
    Header h;
    ARROW_RETURN_NOT_OK(c.ReadHeader(&h));
    return ObjectBody(c, h, depth);
  }

 private:
  Status ObjectBody(Cursor& c, const Header& h, int depth) {
    out_->append("{\"type\":\"", 9);
    out_->append(GeoJsonName(h.type));
    if (h.type == kGeometryCollection) {
      if (depth >= kMaxDepth) {
        return InvalidArgument("invalid WKB: collections nested deeper than ", kMaxDepth);
      }
      out_->append("\",\"geometries\":[", 16);
      uint32_t n = 0;
      ARROW_RETURN_NOT_OK(c.ReadCount(&n, 5));
      for (uint32_t i = 0; i < n; ++i) {
        if (i) out_->push_back(',');
        ARROW_RETURN_NOT_OK(Object(c, depth + 1));
      }
      out_->append("]}", 2);
      return Status::OK();
    }
    out_->append("\",\"coordinates\":", 16);
    ARROW_RETURN_NOT_OK(Coordinates(c, h));
    out_->push_back('}');
    return Status::OK();
  }

  void Position(Cursor& c, const Header& h) {
    out_->push_back('[');
    AppendJsonDouble(out_, c.ReadDoubleUnchecked());
    out_->push_back(',');
    AppendJsonDouble(out_, c.ReadDoubleUnchecked());
    if (h.dims >= 3) {
      double third = c.ReadDoubleUnchecked();
      if (h.has_z) {
        out_->push_back(',');
        AppendJsonDouble(out_, third);
      }
      if (h.dims == 4) c.ReadDoubleUnchecked();
    }
    out_->push_back(']');
  }

  Status Sequence(Cursor& c, const Header& h) {
    uint32_t n = 0;
    ARROW_RETURN_NOT_OK(c.ReadCount(&n, h.dims * 8));
    out_->push_back('[');
    for (uint32_t i = 0; i < n; ++i) {
      if (i) out_->push_back(',');
      Position(c, h);
    }
    out_->push_back(']');
    return Status::OK();
  }

  // The "coordinates" member of types 1-6; Multi* recurse once into their parts.
  Status Coordinates(Cursor& c, const Header& h) {
    switch (h.type) {
      case kPoint: {
        ARROW_RETURN_NOT_OK(c.CheckCoords(1, h.dims));
        Cursor peek = c;
        double x = peek.ReadDoubleUnchecked();
        double y = peek.ReadDoubleUnchecked();
        if (std::isnan(x) && std::isnan(y)) {
          for (int i = 0; i < h.dims; ++i) c.ReadDoubleUnchecked();
          out_->append("[]", 2);
          return Status::OK();
        }
        Position(c, h);
        return Status::OK();
      }
      case kLineString:
        return Sequence(c, h);
      case kPolygon: {
        uint32_t n = 0;
        ARROW_RETURN_NOT_OK(c.ReadCount(&n, 4));
        out_->push_back('[');
        for (uint32_t i = 0; i < n; ++i) {
          if (i) out_->push_back(',');
          ARROW_RETURN_NOT_OK(Sequence(c, h));
        }
        out_->push_back(']');
        return Status::OK();
      }
      default: {
        uint32_t n = 0;
        ARROW_RETURN_NOT_OK(c.ReadCount(&n, 5));
        out_->push_back('[');
        for (uint32_t i = 0; i < n; ++i) {
          if (i) out_->push_back(',');
          size_t offset = c.Offset();
          Header child;
          ARROW_RETURN_NOT_OK(c.ReadHeader(&child));
          ARROW_RETURN_NOT_OK(CheckChildType(h, child, offset));
          ARROW_RETURN_NOT_OK(Coordinates(c, child));
        }
        out_->push_back(']');
        return Status::OK();
      }
    }
  }

  std::string* out_;
};

template <typename Writer, typename Method>
Status Convert(std::string_view wkb, std::string* out, Method method) {
  Cursor c(wkb);
  Writer writer(out);
  ARROW_RETURN_NOT_OK((writer.*method)(c, 0));
  if (!c.AtEnd()) {
    return InvalidArgument("invalid WKB: ", c.Size() - c.Offset(),
                           " bytes left over after the geometry at byte ", c.Offset());
  }
  return Status::OK();
}

template <typename ArrayType>
Result<std::shared_ptr<arrow::Array>> ToWkt(const ArrayType& wkb) {
  const int64_t n = wkb.length();
  arrow::TypedBufferBuilder<int64_t> offsets;
  ARROW_RETURN_NOT_OK(offsets.Reserve(n + 1));
  std::string text;
  text.reserve(static_cast<size_t>(n) * 32);
  offsets.UnsafeAppend(0);
  for (int64_t i = 0; i < n; ++i) {
    if (!wkb.IsNull(i)) {
      Status st = AppendWkt(wkb.GetView(i), &text);
      if (!st.ok()) return InvalidArgument("row ", i, ": ", st.message());
    }
    offsets.UnsafeAppend(static_cast<int64_t>(text.size()));
  }
  ARROW_ASSIGN_OR_RAISE(auto offsets_buffer, offsets.Finish());
  auto data_buffer = arrow::Buffer::FromString(std::move(text));
  std::shared_ptr<arrow::Buffer> validity;
  if (wkb.null_count() > 0) {
    ARROW_ASSIGN_OR_RAISE(validity, arrow::AllocateBitmap(n));
    arrow::internal::CopyBitmap(wkb.null_bitmap_data(), wkb.offset(), n, validity->mutable_data(),
                                0);
  }
  return std::make_shared<arrow::LargeStringArray>(
      n, std::move(offsets_buffer), std::move(data_buffer), std::move(validity), wkb.null_count());
}

}  // namespace

Status AppendWkt(std::string_view wkb, std::string* out) {
  return Convert<WktWriter>(wkb, out, &WktWriter::Tagged);
}

Status AppendGeoJson(std::string_view wkb, std::string* out) {
  return Convert<GeoJsonWriter>(wkb, out, &GeoJsonWriter::Object);
}

Result<std::shared_ptr<arrow::Array>> WkbArrayToWkt(const arrow::Array& wkb) {
  switch (wkb.type_id()) {
    case arrow::Type::BINARY:
      return ToWkt(static_cast<const arrow::BinaryArray&>(wkb));
    case arrow::Type::LARGE_BINARY:
      return ToWkt(static_cast<const arrow::LargeBinaryArray&>(wkb));
    case arrow::Type::BINARY_VIEW:
      return ToWkt(static_cast<const arrow::BinaryViewArray&>(wkb));
    default:
      return InvalidArgument("WKB must be binary, large_binary or binary_view, got ",
                             wkb.type()->ToString());
  }
}

}  // namespace terrafuse::encode

// The one WKB reader of the encoders (WKT, GeoJSON, MVT): ISO and extended (PostGIS/GEOS)
// WKB, either byte order, optional SRID; every read checks the remaining length, so corrupt
// input is an error naming the byte, never a crash.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "terrafuse/common/status.h"

namespace terrafuse::encode::internal {

enum WkbType : uint32_t {
  kWkbPoint = 1,
  kWkbLineString = 2,
  kWkbPolygon = 3,
  kWkbMultiPoint = 4,
  kWkbMultiLineString = 5,
  kWkbMultiPolygon = 6,
  kWkbGeometryCollection = 7,
};

struct WkbHeader {
  uint32_t type;  // 1..7
  bool has_z;
  int dims;  // doubles per coordinate: 2, 3 (Z or M) or 4
};

class WkbReader {
 public:
  explicit WkbReader(std::string_view wkb)
      : begin_(reinterpret_cast<const uint8_t*>(wkb.data())), p_(begin_), end_(begin_ + wkb.size()) {}

  bool AtEnd() const { return p_ == end_; }
  size_t Offset() const { return static_cast<size_t>(p_ - begin_); }
  size_t Size() const { return static_cast<size_t>(end_ - begin_); }

  Status Truncated() const {
    return InvalidArgument("invalid WKB: truncated at byte ", Offset(), " of ", Size());
  }

  Status ReadHeader(WkbHeader* h) {
    if (end_ - p_ < 5) return Truncated();
    uint8_t order = *p_++;
    if (order > 1) {
      return InvalidArgument("invalid WKB: byte order ", static_cast<int>(order), " at byte ",
                             Offset() - 1, " (expected 0 or 1)");
    }
    swap_ = (order == 1) != (std::endian::native == std::endian::little);
    uint32_t code = ReadU32Unchecked();
    bool has_z = false, has_m = false, has_srid = false;
    if (code & 0xE0000000u) {  // extended WKB (PostGIS, GEOS, shapely's default)
      has_z = code & 0x80000000u;
      has_m = code & 0x40000000u;
      has_srid = code & 0x20000000u;
      code &= 0x0FFFFFFFu;
    }
    uint32_t iso_dims = code / 1000;  // ISO WKB: 1000 Z, 2000 M, 3000 ZM
    uint32_t type = code % 1000;
    if (iso_dims > 3 || type < kWkbPoint || type > kWkbGeometryCollection) {
      return InvalidArgument("invalid WKB: unknown geometry type code ", code, " at byte ", Offset() - 4);
    }
    has_z = has_z || iso_dims == 1 || iso_dims == 3;
    has_m = has_m || iso_dims == 2 || iso_dims == 3;
    if (has_srid) {
      if (end_ - p_ < 4) return Truncated();
      p_ += 4;
    }
    h->type = type;
    h->has_z = has_z;
    h->dims = 2 + has_z + has_m;
    return Status::OK();
  }

  // Reads a count of items that each take at least `min_item_bytes`, rejecting counts the
  // remaining bytes cannot hold (so a corrupt count never drives a long loop).
  Status ReadCount(uint32_t* n, size_t min_item_bytes) {
    if (end_ - p_ < 4) return Truncated();
    *n = ReadU32Unchecked();
    if (static_cast<uint64_t>(*n) * min_item_bytes > static_cast<uint64_t>(end_ - p_)) {
      return InvalidArgument("invalid WKB: count ", *n, " at byte ", Offset() - 4, " exceeds the remaining ",
                             end_ - p_, " bytes");
    }
    return Status::OK();
  }

  Status CheckCoords(size_t count, int dims) const {
    if (static_cast<size_t>(end_ - p_) < count * dims * 8) return Truncated();
    return Status::OK();
  }

  // Callers have checked (through ReadCount or CheckCoords) that the bytes are there.
  double ReadDoubleUnchecked() {
    uint64_t bits;
    std::memcpy(&bits, p_, 8);
    p_ += 8;
    if (swap_) bits = __builtin_bswap64(bits);
    return std::bit_cast<double>(bits);
  }
  void SkipUnchecked(size_t bytes) { p_ += bytes; }

 private:
  uint32_t ReadU32Unchecked() {
    uint32_t v;
    std::memcpy(&v, p_, 4);
    p_ += 4;
    return swap_ ? __builtin_bswap32(v) : v;
  }

  const uint8_t* begin_;
  const uint8_t* p_;
  const uint8_t* end_;
  bool swap_ = false;
};

}  // namespace terrafuse::encode::internal

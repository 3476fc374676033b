// Test helpers of terrafuse/encode: a WKB writer, so tests state geometries by value.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>

namespace terrafuse::encode::testing {

/// Builds WKB byte by byte: `Wkb().Header(1).Coords({1, 2}).str()` is POINT (1 2).
class Wkb {
 public:
  explicit Wkb(bool big_endian = false) : big_endian_(big_endian) {}

  /// Byte order byte (of this builder's order) then the type code.
  Wkb& Header(uint32_t type) {
    bytes_.push_back(big_endian_ ? '\0' : '\1');
    return U32(type);
  }
  Wkb& U32(uint32_t v) {
    if (big_endian_ == (std::endian::native == std::endian::little)) v = __builtin_bswap32(v);
    bytes_.append(reinterpret_cast<const char*>(&v), 4);
    return *this;
  }
  Wkb& Coords(std::initializer_list<double> values) {
    for (double d : values) {
      uint64_t bits = std::bit_cast<uint64_t>(d);
      if (big_endian_ == (std::endian::native == std::endian::little))
        bits = __builtin_bswap64(bits);
      bytes_.append(reinterpret_cast<const char*>(&bits), 8);
    }
    return *this;
  }
  /// Appends another geometry's bytes (a part of a Multi* or collection).
  Wkb& Part(const std::string& wkb) {
    bytes_ += wkb;
    return *this;
  }
  const std::string& str() const { return bytes_; }

 private:
  bool big_endian_;
  std::string bytes_;
};

inline std::string Point(double x, double y) { return Wkb().Header(1).Coords({x, y}).str(); }

inline std::string Line(std::initializer_list<double> xy) {
  return Wkb().Header(2).U32(static_cast<uint32_t>(xy.size() / 2)).Coords(xy).str();
}

}  // namespace terrafuse::encode::testing

// Shared by the raster encoders of more_formats.h: checking a RasterView's shape, dtype and
// size with messages that name the format, and band-major planes to interleaved rows.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "terrafuse/encode/encoder.h"

namespace terrafuse::encode::internal {

/// The checked geometry of a raster: `bands` planes of `height` x `width` elements of
/// `element_size` bytes, band-major.
struct RasterLayout {
  int64_t bands = 1;
  int64_t height = 0;
  int64_t width = 0;
  int element_size = 1;

  int64_t plane() const { return height * width; }
};

/// What a format accepts.
struct RasterLimits {
  /// Name in messages ("JPEG").
  std::string_view format;
  int64_t max_bands = 4;
  /// Largest height and width.
  int64_t max_side = INT32_MAX;
  /// Largest total size of the pixels, in bytes.
  int64_t max_bytes = int64_t{1} << 31;
};

/// "[3, 256, 256]".
std::string ShapeText(const std::vector<int64_t>& shape);

/// Returns the size in bytes of numpy dtype `dtype` when it is one of the numeric dtypes the
/// encoders know (bool, [u]int8-64, float16-64), else 0.
int DtypeSize(std::string_view dtype);

/// Checks that `raster` is uint8 with a (bands, height, width) or (height, width) shape
/// within `limits`, and that its size matches. InvalidArgument naming the fault otherwise.
Result<RasterLayout> CheckUint8Raster(const RasterView& raster, const RasterLimits& limits);

/// As CheckUint8Raster for any dtype; the caller checks the dtype first.
Result<RasterLayout> CheckRasterShape(const RasterView& raster, const RasterLimits& limits);

/// Writes row `y` of bands `first_band` to `first_band + count - 1` of a band-major uint8
/// raster as `count`-sample pixels.
void InterleaveRow(const uint8_t* data, const RasterLayout& layout, int64_t y, int first_band,
                   int count, uint8_t* out);

/// As InterleaveRow for elements of any size, all bands.
void InterleaveRowBytes(const uint8_t* data, const RasterLayout& layout, int64_t y, uint8_t* out);

}  // namespace terrafuse::encode::internal

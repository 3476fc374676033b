// `png`: libspng over a band-major uint8 raster, interleaved into pixels first.
#include <spng.h>
#include <zlib.h>  // Z_RLE only: spng does the compressing

#include <cstdlib>
#include <vector>

#include "terrafuse/encode/encoder.h"

namespace terrafuse::encode {

namespace {

// Tiles are encoded on every cache miss, so the defaults favour time. Measured on 256x256
// RGBA tiles (bench/encode): zlib level 1 with the Up filter takes 0.5-1.5 ms on smooth
// tiles, where level 6 with a per-row filter choice takes 3-40 ms for outputs 5-15% smaller.
// Levels from kAdaptiveFilterLevel up also let spng choose the filter of each row.
constexpr int kDefaultPngLevel = 1;
constexpr int kAdaptiveFilterLevel = 4;

// On noisy imagery zlib's string matching finds little and costs most of the time: there
// run-length matching (Z_RLE) is 2-3x faster and even compresses better. Smooth tiles
// (colour maps, gradients, flat areas) keep full matching, which finds their repeats. A tile
// counts as smooth when this share of the sampled bytes is within 2 of the byte above.
constexpr double kSmoothShare = 0.6;
constexpr int64_t kSampleEveryRows = 8;

// Larger rasters are refused rather than half-allocated (a PNG this big is a mistake).
constexpr int64_t kMaxPngBytes = int64_t{1} << 31;

double SmoothShare(const uint8_t* pixels, int64_t height, int64_t row_bytes) {
  int64_t smooth = 0, total = 0;
  for (int64_t y = 1; y < height; y += kSampleEveryRows) {
    const uint8_t* row = pixels + y * row_bytes;
    const uint8_t* up = row - row_bytes;
    for (int64_t x = 0; x < row_bytes; ++x) {
      smooth += static_cast<uint8_t>(row[x] - up[x] + 2) <= 4;
    }
    total += row_bytes;
  }
  return total ? static_cast<double>(smooth) / static_cast<double>(total) : 1.0;
}

// Owns the malloc'd PNG that spng hands over.
class MallocBuffer : public arrow::Buffer {
 public:
  MallocBuffer(void* data, int64_t size) : arrow::Buffer(static_cast<uint8_t*>(data), size) {}
  ~MallocBuffer() override { std::free(const_cast<uint8_t*>(data_)); }
};

struct SpngContext {
  spng_ctx* ctx = spng_ctx_new(SPNG_CTX_ENCODER);
  ~SpngContext() { spng_ctx_free(ctx); }
};

Status SpngError(int code, const char* what) {
  return Internal("PNG encoding failed (", what, "): ", spng_strerror(code));
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

uint8_t ColorType(int64_t bands) {
  switch (bands) {
    case 1:
      return SPNG_COLOR_TYPE_GRAYSCALE;
    case 2:
      return SPNG_COLOR_TYPE_GRAYSCALE_ALPHA;
    case 3:
      return SPNG_COLOR_TYPE_TRUECOLOR;
    default:
      return SPNG_COLOR_TYPE_TRUECOLOR_ALPHA;
  }
}

// Band-major planes to pixel-interleaved samples, one loop per band count so that the
// compiler keeps the stores contiguous.
template <int kBands>
void InterleaveN(const uint8_t* data, int64_t plane, uint8_t* out) {
  const uint8_t* src[kBands];
  for (int b = 0; b < kBands; ++b) src[b] = data + b * plane;
  for (int64_t i = 0; i < plane; ++i) {
    for (int b = 0; b < kBands; ++b) out[i * kBands + b] = src[b][i];
  }
}

void Interleave(const uint8_t* data, int64_t bands, int64_t plane, uint8_t* out) {
  switch (bands) {
    case 2:
      return InterleaveN<2>(data, plane, out);
    case 3:
      return InterleaveN<3>(data, plane, out);
    default:
      return InterleaveN<4>(data, plane, out);
  }
}

}  // namespace

Result<Encoded> EncodePng(const RasterView& raster, const EncodeOptions& options) {
  const auto& shape = raster.shape;
  if (raster.dtype != "uint8") {
    return InvalidArgument("PNG encodes uint8 rasters, got dtype '", raster.dtype,
                           "': scale the values to 0-255 and cast to uint8 first");
  }
  if (shape.size() != 2 && shape.size() != 3) {
    return InvalidArgument(
        "PNG needs a raster of shape (bands, height, width) or (height, width), "
        "got shape ",
        ShapeText(shape));
  }
  const int64_t bands = shape.size() == 3 ? shape[0] : 1;
  const int64_t height = shape[shape.size() - 2];
  const int64_t width = shape[shape.size() - 1];
  if (bands < 1 || bands > 4) {
    std::string hint = shape.size() == 3 && shape[2] >= 2 && shape[2] <= 4
                           ? ": it looks band-last, transpose it to (bands, height, width)"
                           : "";
    return InvalidArgument("PNG needs 1 to 4 bands (gray, gray+alpha, RGB, RGBA), got ", bands,
                           " in shape ", ShapeText(shape), hint);
  }
  if (height < 1 || width < 1 || height > INT32_MAX || width > INT32_MAX) {
    return InvalidArgument("PNG needs a height and width from 1 to 2^31-1, got shape ",
                           ShapeText(shape));
  }
  const int64_t plane = height * width;
  if (plane > kMaxPngBytes / bands) {
    return InvalidArgument("Raster of shape ", ShapeText(shape), " is too large for PNG: at most ",
                           kMaxPngBytes, " bytes of pixels");
  }
  if (raster.size_bytes >= 0 && raster.size_bytes != plane * bands) {
    return InvalidArgument("Raster of shape ", ShapeText(shape), " and dtype uint8 needs ",
                           plane * bands, " bytes, got ", raster.size_bytes);
  }
  int level = options.compression_level.value_or(kDefaultPngLevel);
  if (level < 0 || level > 9) {
    return InvalidArgument("PNG compression level must be from 0 to 9, got ", level);
  }

  SpngContext spng;
  if (!spng.ctx) return Internal("PNG encoding failed: cannot create an spng context");
  spng_ihdr ihdr{};
  ihdr.width = static_cast<uint32_t>(width);
  ihdr.height = static_cast<uint32_t>(height);
  ihdr.bit_depth = 8;
  ihdr.color_type = ColorType(bands);
  int rc = spng_set_ihdr(spng.ctx, &ihdr);
  if (rc) return SpngError(rc, "header");
  spng_set_option(spng.ctx, SPNG_ENCODE_TO_BUFFER, 1);
  spng_set_option(spng.ctx, SPNG_IMG_COMPRESSION_LEVEL, level);
  spng_set_option(spng.ctx, SPNG_FILTER_CHOICE,
                  level >= kAdaptiveFilterLevel ? SPNG_FILTER_CHOICE_ALL : SPNG_FILTER_CHOICE_UP);

  // spng takes interleaved pixels: one band already is.
  const auto* data = static_cast<const uint8_t*>(raster.data);
  std::vector<uint8_t> interleaved;
  if (bands > 1) {
    interleaved.resize(static_cast<size_t>(plane * bands));
    Interleave(data, bands, plane, interleaved.data());
    data = interleaved.data();
  }
  if (level < kAdaptiveFilterLevel && SmoothShare(data, height, width * bands) < kSmoothShare) {
    spng_set_option(spng.ctx, SPNG_IMG_COMPRESSION_STRATEGY, Z_RLE);
  }
  rc = spng_encode_image(spng.ctx, data, static_cast<size_t>(plane * bands), SPNG_FMT_PNG,
                         SPNG_ENCODE_FINALIZE);
  if (rc) return SpngError(rc, "image");
  size_t size = 0;
  void* png = spng_get_png_buffer(spng.ctx, &size, &rc);
  if (!png) return SpngError(rc, "output");
  return Encoded{std::make_shared<MallocBuffer>(png, static_cast<int64_t>(size)), media_type::kPng};
}

}  // namespace terrafuse::encode

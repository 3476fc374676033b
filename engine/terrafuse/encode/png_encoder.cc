// `png`: a band-major uint8 raster, interleaved into pixels, filtered per row and compressed
// with libdeflate, in the PNG container (signature, IHDR, one IDAT, IEND). zlib's deflate was
// most of the time of a tile: libdeflate's is 2-4x faster at the same ratio. Noisy images
// (imagery) skip the matching at the fast levels: see UseMatching.
#include <libdeflate.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include <arrow/buffer.h>

#include "terrafuse/encode/encoder.h"
#include "terrafuse/encode/literal_zlib_internal.h"

namespace terrafuse::encode {

namespace {

// Tiles are encoded on every cache miss, so the defaults favour time: level 1 with the Up
// filter on every row. Levels from kAdaptiveFilterLevel up also choose each row's filter
// (the one with the smallest sum of absolute values, as libpng does) for smaller files.
constexpr int kDefaultPngLevel = 1;
constexpr int kAdaptiveFilterLevel = 4;
// Below it, images on which LZ77 matching barely helps are coded as literals (see UseMatching).
constexpr int kAlwaysMatchLevel = 4;

// Larger rasters are refused rather than half-allocated (a PNG this big is a mistake).
constexpr int64_t kMaxPngBytes = int64_t{1} << 31;

constexpr std::array<uint8_t, 8> kSignature{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
enum Filter : uint8_t { kNone = 0, kSub = 1, kUp = 2, kAverage = 3, kPaeth = 4 };

// One compressor per thread and level: allocating one costs more than compressing a tile.
libdeflate_compressor* Compressor(int level) {
  struct Free {
    void operator()(libdeflate_compressor* c) const { libdeflate_free_compressor(c); }
  };
  thread_local std::array<std::unique_ptr<libdeflate_compressor, Free>, 10> compressors;
  auto& slot = compressors[static_cast<size_t>(level)];
  if (!slot) slot.reset(libdeflate_alloc_compressor(level));
  return slot.get();
}

uint8_t Paeth(int a, int b, int c) {
  const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  if (pa <= pb && pa <= pc) return static_cast<uint8_t>(a);
  return static_cast<uint8_t>(pb <= pc ? b : c);
}

// Writes `row` filtered with `filter` into out[0..n); `up` is the previous row (zeros first).
void FilterRow(Filter filter, const uint8_t* row, const uint8_t* up, int64_t n, int64_t bpp, uint8_t* out) {
  for (int64_t i = 0; i < n; ++i) {
    const int a = i >= bpp ? row[i - bpp] : 0, b = up[i], c = i >= bpp ? up[i - bpp] : 0;
    uint8_t predicted = 0;
    switch (filter) {
      case kNone: predicted = 0; break;
      case kSub: predicted = static_cast<uint8_t>(a); break;
      case kUp: predicted = static_cast<uint8_t>(b); break;
      case kAverage: predicted = static_cast<uint8_t>((a + b) / 2); break;
      case kPaeth: predicted = Paeth(a, b, c); break;
    }
    out[i] = static_cast<uint8_t>(row[i] - predicted);
  }
}

int64_t AbsSum(const uint8_t* data, int64_t n) {
  int64_t sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += data[i] < 128 ? data[i] : 256 - data[i];
  return sum;
}

// The scanlines PNG compresses: each row prefixed by its filter type.
std::vector<uint8_t> FilterImage(const uint8_t* pixels, int64_t height, int64_t row_bytes, int64_t bpp,
                                 bool adaptive) {
  std::vector<uint8_t> out(static_cast<size_t>(height * (row_bytes + 1)));
  std::vector<uint8_t> zeros(static_cast<size_t>(row_bytes), 0), trial(static_cast<size_t>(row_bytes));
  for (int64_t y = 0; y < height; ++y) {
    const uint8_t* row = pixels + y * row_bytes;
    const uint8_t* up = y ? row - row_bytes : zeros.data();
    uint8_t* line = out.data() + y * (row_bytes + 1);
    Filter best = kUp;
    if (adaptive) {
      int64_t best_sum = INT64_MAX;
      for (Filter f : {kNone, kSub, kUp, kAverage, kPaeth}) {
        FilterRow(f, row, up, row_bytes, bpp, trial.data());
        const int64_t sum = AbsSum(trial.data(), row_bytes);
        if (sum < best_sum) best_sum = sum, best = f;
      }
    }
    line[0] = best;
    if (best == kUp) {
      for (int64_t i = 0; i < row_bytes; ++i) line[1 + i] = static_cast<uint8_t>(row[i] - up[i]);
    } else {
      FilterRow(best, row, up, row_bytes, bpp, line + 1);
    }
  }
  return out;
}

// On noisy images (imagery, noise) libdeflate's matching is 3/4 of a tile's time and saves
// about nothing: Huffman-coded literals come out as small, 4x faster. Whether matching pays is
// measured on four 4 KiB slices spread over the scanlines (about 1/16 of a 256x256 RGBA tile):
// it does if libdeflate makes them more than 5% smaller than literals do.
bool UseMatching(const std::vector<uint8_t>& scanlines, libdeflate_compressor* compressor) {
  constexpr size_t kSlices = 4, kSlice = 4096;
  if (scanlines.size() < 4 * kSlices * kSlice) return true;  // small: matching is cheap anyway
  thread_local std::vector<uint8_t> scratch;
  scratch.resize(libdeflate_zlib_compress_bound(compressor, kSlice));
  size_t matched = 0, literal = 0;
  for (size_t i = 0; i < kSlices; ++i) {
    const uint8_t* slice = scanlines.data() + (2 * i + 1) * scanlines.size() / (2 * kSlices) - kSlice / 2;
    matched += libdeflate_zlib_compress(compressor, slice, kSlice, scratch.data(), scratch.size());
    literal += LiteralZlib(slice, kSlice).size();
  }
  return matched * 20 < literal * 19;
}

void PutU32(uint8_t* at, uint32_t value) {
  at[0] = static_cast<uint8_t>(value >> 24);
  at[1] = static_cast<uint8_t>(value >> 16);
  at[2] = static_cast<uint8_t>(value >> 8);
  at[3] = static_cast<uint8_t>(value);
}

// Completes the chunk whose length field starts at `chunk` (length, type, data, CRC).
void SealChunk(uint8_t* chunk, uint32_t data_length) {
  PutU32(chunk, data_length);
  PutU32(chunk + 8 + data_length, libdeflate_crc32(0, chunk + 4, 4 + data_length));
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

// PNG colour types: gray 0, RGB 2, gray+alpha 4, RGBA 6.
uint8_t ColorType(int64_t bands) {
  static constexpr uint8_t kTypes[] = {0, 0, 4, 2, 6};
  return kTypes[bands];
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

  // PNG stores interleaved pixels: one band already is.
  const auto* data = static_cast<const uint8_t*>(raster.data);
  std::vector<uint8_t> interleaved;
  if (bands > 1) {
    interleaved.resize(static_cast<size_t>(plane * bands));
    Interleave(data, bands, plane, interleaved.data());
    data = interleaved.data();
  }
  const std::vector<uint8_t> scanlines = FilterImage(data, height, width * bands, bands, level >= kAdaptiveFilterLevel);

  libdeflate_compressor* compressor = Compressor(level);
  if (compressor == nullptr) return Internal("PNG encoding failed: cannot allocate a compressor");
  std::optional<LiteralZlib> literals;
  if (level > 0 && level < kAlwaysMatchLevel && !UseMatching(scanlines, compressor)) {
    literals.emplace(scanlines.data(), scanlines.size());
  }
  const size_t bound = literals ? literals->size() : libdeflate_zlib_compress_bound(compressor, scanlines.size());
  constexpr size_t kIhdrChunk = 12 + 13, kIendChunk = 12;
  const size_t capacity = kSignature.size() + kIhdrChunk + 12 + bound + kIendChunk;
  ARROW_ASSIGN_OR_RAISE(std::unique_ptr<arrow::ResizableBuffer> png,
                        arrow::AllocateResizableBuffer(static_cast<int64_t>(capacity)));
  uint8_t* out = png->mutable_data();
  std::memcpy(out, kSignature.data(), kSignature.size());
  uint8_t* ihdr = out + kSignature.size();
  std::memcpy(ihdr + 4, "IHDR", 4);
  PutU32(ihdr + 8, static_cast<uint32_t>(width));
  PutU32(ihdr + 12, static_cast<uint32_t>(height));
  const uint8_t rest[] = {8, ColorType(bands), 0, 0, 0};  // depth, colour, deflate, filter set 0, no interlace
  std::memcpy(ihdr + 16, rest, sizeof(rest));
  SealChunk(ihdr, 13);
  uint8_t* idat = ihdr + kIhdrChunk;
  std::memcpy(idat + 4, "IDAT", 4);
  size_t compressed = bound;
  if (literals) {
    literals->Write(idat + 8);
  } else {
    compressed = libdeflate_zlib_compress(compressor, scanlines.data(), scanlines.size(), idat + 8, bound);
  }
  if (compressed == 0 || compressed > UINT32_MAX) return Internal("PNG encoding failed: deflate output too large");
  SealChunk(idat, static_cast<uint32_t>(compressed));
  uint8_t* iend = idat + 12 + compressed;
  std::memcpy(iend + 4, "IEND", 4);
  SealChunk(iend, 0);
  ARROW_RETURN_NOT_OK(png->Resize(static_cast<int64_t>(iend + kIendChunk - out), /*shrink_to_fit=*/false));
  return Encoded{std::shared_ptr<arrow::Buffer>(std::move(png)), media_type::kPng};
}

}  // namespace terrafuse::encode

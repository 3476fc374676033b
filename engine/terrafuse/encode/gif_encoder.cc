// `gif`: one GIF89a frame (giflib) of a band-major uint8 raster, quantised to a palette of
// at most 256 colours: gray levels for 1-2 bands; for RGB(A) the exact colours when they
// fit (colour-mapped and classified tiles), else a 6x7x6 colour cube with ordered dithering.
#include <arrow/buffer_builder.h>
#include <gif_lib.h>

#include <array>
#include <cstring>
#include <vector>

#include "terrafuse/encode/more_formats.h"
#include "terrafuse/encode/raster_internal.h"

namespace terrafuse::encode {

namespace {

constexpr int64_t kMaxGifSide = 65535;
// Pixels with less alpha than this are transparent; GIF has no partial transparency.
constexpr uint8_t kOpaqueFrom = 128;
// The 6x7x6 colour cube (green gets one more level: the eye is most sensitive to it).
constexpr int kRedLevels = 6, kGreenLevels = 7, kBlueLevels = 6;
constexpr int kCubeColors = kRedLevels * kGreenLevels * kBlueLevels;  // 252

// 4x4 Bayer matrix: thresholds for ordered dithering.
constexpr int kBayer[4][4] = {{0, 8, 2, 10}, {12, 4, 14, 6}, {3, 11, 1, 9}, {15, 7, 13, 5}};

struct Palette {
  std::vector<GifColorType> colors;
  int transparent = NO_TRANSPARENT_COLOR;
};

// The level (0 to levels-1) of `v` dithered by Bayer threshold `b` (0-15):
// floor(v * (levels - 1) / 255 + (2b + 1) / 32).
inline int DitherLevel(int v, int levels, int b) {
  int level = (v * (levels - 1) * 32 + (2 * b + 1) * 255) / (255 * 32);
  return level < levels ? level : levels - 1;
}

inline uint8_t LevelValue(int level, int levels) {
  return static_cast<uint8_t>((level * 255 + (levels - 1) / 2) / (levels - 1));
}

// Up to 256 distinct colours in an open-addressing table: colour (rgb + 1, 0 = empty)
// to palette index.
class ColorTable {
 public:
  explicit ColorTable(int limit) : limit_(limit) { keys_.fill(0); }

  // Returns the index of `rgb`, adding it; -1 once there would be more than `limit` colours.
  int IndexOf(uint32_t rgb) {
    const uint32_t key = rgb + 1;
    uint32_t slot = (rgb * 2654435761u) >> (32 - kBits);
    while (true) {
      if (keys_[slot] == key) return values_[slot];
      if (keys_[slot] == 0) break;
      slot = (slot + 1) & (kSize - 1);
    }
    if (static_cast<int>(colors_.size()) == limit_) return -1;
    keys_[slot] = key;
    values_[slot] = static_cast<uint8_t>(colors_.size());
    colors_.push_back(rgb);
    return values_[slot];
  }
  const std::vector<uint32_t>& colors() const { return colors_; }

 private:
  static constexpr int kBits = 10;
  static constexpr uint32_t kSize = 1u << kBits;
  int limit_;
  std::array<uint32_t, kSize> keys_;
  std::array<uint8_t, kSize> values_{};
  std::vector<uint32_t> colors_;
};

// Palette indexes of a 1 or 2 band raster.
Palette QuantizeGray(const uint8_t* data, const internal::RasterLayout& layout, uint8_t* out) {
  Palette palette;
  const int64_t plane = layout.plane();
  if (layout.bands == 1) {
    palette.colors.resize(256);
    for (int i = 0; i < 256; ++i) {
      auto v = static_cast<GifByteType>(i);
      palette.colors[i] = {v, v, v};
    }
    std::memcpy(out, data, static_cast<size_t>(plane));
    return palette;
  }
  // 255 gray levels and the transparent index 255.
  palette.colors.resize(256);
  for (int i = 0; i < 255; ++i) {
    auto v = static_cast<GifByteType>((i * 255 + 127) / 254);
    palette.colors[i] = {v, v, v};
  }
  palette.colors[255] = {0, 0, 0};
  palette.transparent = 255;
  const uint8_t* alpha = data + plane;
  for (int64_t i = 0; i < plane; ++i) {
    out[i] = alpha[i] < kOpaqueFrom ? 255 : static_cast<uint8_t>((data[i] * 254 + 127) / 255);
  }
  return palette;
}

// Palette indexes of a 3 or 4 band raster.
Palette QuantizeColor(const uint8_t* data, const internal::RasterLayout& layout, uint8_t* out) {
  Palette palette;
  const int64_t plane = layout.plane();
  const uint8_t* r = data;
  const uint8_t* g = data + plane;
  const uint8_t* b = data + 2 * plane;
  const uint8_t* alpha = layout.bands == 4 ? data + 3 * plane : nullptr;
  bool any_transparent = false;
  if (alpha) {
    for (int64_t i = 0; i < plane && !any_transparent; ++i)
      any_transparent = alpha[i] < kOpaqueFrom;
  }
  const int limit = any_transparent ? 255 : 256;
  const uint8_t transparent = static_cast<uint8_t>(limit == 255 ? 255 : 0);

  // Exact colours when they fit.
  ColorTable table(limit);
  bool exact = true;
  for (int64_t i = 0; i < plane; ++i) {
    if (alpha && alpha[i] < kOpaqueFrom) {
      out[i] = transparent;
      continue;
    }
    int index = table.IndexOf((uint32_t{r[i]} << 16) | (uint32_t{g[i]} << 8) | b[i]);
    if (index < 0) {
      exact = false;
      break;
    }
    out[i] = static_cast<uint8_t>(index);
  }
  if (exact) {
    for (uint32_t rgb : table.colors()) {
      palette.colors.push_back({static_cast<GifByteType>(rgb >> 16),
                                static_cast<GifByteType>((rgb >> 8) & 0xff),
                                static_cast<GifByteType>(rgb & 0xff)});
    }
    if (any_transparent) {
      palette.colors.resize(256, GifColorType{0, 0, 0});
      palette.transparent = 255;
    }
    return palette;
  }

  // The colour cube, dithered.
  palette.colors.resize(256, GifColorType{0, 0, 0});
  for (int ri = 0; ri < kRedLevels; ++ri) {
    for (int gi = 0; gi < kGreenLevels; ++gi) {
      for (int bi = 0; bi < kBlueLevels; ++bi) {
        palette.colors[(ri * kGreenLevels + gi) * kBlueLevels + bi] = {
            LevelValue(ri, kRedLevels), LevelValue(gi, kGreenLevels), LevelValue(bi, kBlueLevels)};
      }
    }
  }
  if (any_transparent) palette.transparent = 255;
  for (int64_t y = 0; y < layout.height; ++y) {
    for (int64_t x = 0; x < layout.width; ++x) {
      const int64_t i = y * layout.width + x;
      if (alpha && alpha[i] < kOpaqueFrom) {
        out[i] = 255;
        continue;
      }
      const int t = kBayer[y & 3][x & 3];
      out[i] = static_cast<uint8_t>(
          (DitherLevel(r[i], kRedLevels, t) * kGreenLevels + DitherLevel(g[i], kGreenLevels, t)) *
              kBlueLevels +
          DitherLevel(b[i], kBlueLevels, t));
    }
  }
  static_assert(kCubeColors < 256, "the transparent index follows the cube");
  return palette;
}

int WriteToBuilder(GifFileType* gif, const GifByteType* data, int size) {
  auto* builder = static_cast<arrow::BufferBuilder*>(gif->UserData);
  return builder->Append(data, size).ok() ? size : 0;
}

// Owns a GifFileType until closed.
struct GifWriter {
  GifFileType* gif = nullptr;
  ~GifWriter() {
    if (gif) EGifCloseFile(gif, nullptr);
  }
};

struct ColorMap {
  ColorMapObject* map = nullptr;
  ~ColorMap() { GifFreeMapObject(map); }
};

Status GifError(int code, const char* what) {
  return Internal("GIF encoding failed (", what, "): ", GifErrorString(code));
}

}  // namespace

Result<Encoded> EncodeGif(const RasterView& raster, const EncodeOptions&) {
  ARROW_ASSIGN_OR_RAISE(auto layout, internal::CheckUint8Raster(raster, {"GIF", 4, kMaxGifSide}));
  const auto* data = static_cast<const uint8_t*>(raster.data);
  std::vector<GifPixelType> indexes(static_cast<size_t>(layout.plane()));
  Palette palette = layout.bands <= 2 ? QuantizeGray(data, layout, indexes.data())
                                      : QuantizeColor(data, layout, indexes.data());
  // giflib wants a power of two from 2 to 256 colours.
  size_t count = 2;
  while (count < palette.colors.size()) count *= 2;
  palette.colors.resize(count, GifColorType{0, 0, 0});
  ColorMap color_map;
  color_map.map = GifMakeMapObject(static_cast<int>(count), palette.colors.data());
  if (!color_map.map) return Internal("GIF encoding failed: cannot make the colour map");

  arrow::BufferBuilder builder;
  int error = 0;
  GifWriter writer;
  writer.gif = EGifOpen(&builder, WriteToBuilder, &error);
  if (!writer.gif) return GifError(error, "open");
  GifFileType* gif = writer.gif;
  EGifSetGifVersion(gif, true);
  const int width = static_cast<int>(layout.width);
  const int height = static_cast<int>(layout.height);
  if (EGifPutScreenDesc(gif, width, height, 8, 0, color_map.map) == GIF_ERROR) {
    return GifError(gif->Error, "screen");
  }
  if (palette.transparent != NO_TRANSPARENT_COLOR) {
    GraphicsControlBlock gcb{DISPOSAL_UNSPECIFIED, false, 0, palette.transparent};
    GifByteType extension[4];
    size_t length = EGifGCBToExtension(&gcb, extension);
    if (EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, static_cast<int>(length), extension) ==
        GIF_ERROR) {
      return GifError(gif->Error, "transparency");
    }
  }
  if (EGifPutImageDesc(gif, 0, 0, width, height, false, nullptr) == GIF_ERROR) {
    return GifError(gif->Error, "image");
  }
  for (int y = 0; y < height; ++y) {
    if (EGifPutLine(gif, indexes.data() + static_cast<size_t>(y) * width, width) == GIF_ERROR) {
      return GifError(gif->Error, "pixels");
    }
  }
  writer.gif = nullptr;
  if (EGifCloseFile(gif, &error) == GIF_ERROR) return GifError(error, "close");
  ARROW_ASSIGN_OR_RAISE(auto bytes, builder.Finish(/*shrink_to_fit=*/true));
  return Encoded{std::move(bytes), media_type::kGif};
}

}  // namespace terrafuse::encode

#include <gif_lib.h>
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "terrafuse/encode/more_formats.h"
#include "terrafuse/encode/more_formats_testing_internal.h"

namespace terrafuse::encode {
namespace {

using testing::MakeRaster;
using testing::View;

struct Source {
  const arrow::Buffer* buffer;
  int64_t pos = 0;
};

int ReadGif(GifFileType* gif, GifByteType* out, int n) {
  auto* src = static_cast<Source*>(gif->UserData);
  int count = static_cast<int>(std::min<int64_t>(n, src->buffer->size() - src->pos));
  std::memcpy(out, src->buffer->data() + src->pos, static_cast<size_t>(count));
  src->pos += count;
  return count;
}

// A decoded single-frame GIF: RGB per pixel and whether it is transparent.
struct DecodedGif {
  int width = 0, height = 0, colors = 0, transparent = NO_TRANSPARENT_COLOR;
  std::vector<uint8_t> rgb;
  std::vector<bool> clear;
  std::string version;
};

DecodedGif Decode(const arrow::Buffer& bytes) {
  DecodedGif out;
  Source src{&bytes};
  int error = 0;
  GifFileType* gif = DGifOpen(&src, ReadGif, &error);
  EXPECT_NE(gif, nullptr) << GifErrorString(error);
  if (!gif) return out;
  EXPECT_EQ(DGifSlurp(gif), GIF_OK) << GifErrorString(gif->Error);
  EXPECT_EQ(gif->ImageCount, 1);
  out.width = gif->SWidth;
  out.height = gif->SHeight;
  out.version = bytes.ToString().substr(0, 6);
  const ColorMapObject* map = gif->SColorMap;
  out.colors = map->ColorCount;
  GraphicsControlBlock gcb;
  if (DGifSavedExtensionToGCB(gif, 0, &gcb) == GIF_OK) out.transparent = gcb.TransparentColor;
  const SavedImage& image = gif->SavedImages[0];
  for (int i = 0; i < out.width * out.height; ++i) {
    int index = image.RasterBits[i];
    EXPECT_LT(index, map->ColorCount);
    out.rgb.push_back(map->Colors[index].Red);
    out.rgb.push_back(map->Colors[index].Green);
    out.rgb.push_back(map->Colors[index].Blue);
    out.clear.push_back(index == out.transparent);
  }
  DGifCloseFile(gif, &error);
  return out;
}

Status GifError(const RasterView& raster) {
  auto encoded = EncodeGif(raster, {});
  EXPECT_FALSE(encoded.ok());
  if (encoded.ok()) return Status::OK();
  EXPECT_EQ(KindOf(encoded.status()), ErrorKind::kInvalidArgument);
  return encoded.status();
}

TEST(GifEncoderTest, GrayIsExact) {
  auto data = MakeRaster(1, 33, 47);
  auto encoded = EncodeGif(View(data, 0, 33, 47), {});
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  EXPECT_EQ(encoded->media_type, "image/gif");
  DecodedGif gif = Decode(*encoded->bytes);
  EXPECT_EQ(gif.version, "GIF89a");
  EXPECT_EQ(gif.width, 47);
  EXPECT_EQ(gif.height, 33);
  EXPECT_EQ(gif.transparent, NO_TRANSPARENT_COLOR);
  for (size_t i = 0; i < data.size(); ++i) {
    ASSERT_EQ(gif.rgb[3 * i], data[i]);
    ASSERT_EQ(gif.rgb[3 * i + 2], data[i]);
  }
}

TEST(GifEncoderTest, GrayAlphaHasATransparentIndex) {
  auto data = MakeRaster(2, 20, 30);
  for (int i = 0; i < 600; ++i) data[600 + i] = i % 2 ? 255 : 10;
  auto encoded = EncodeGif(View(data, 2, 20, 30), {});
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  DecodedGif gif = Decode(*encoded->bytes);
  EXPECT_EQ(gif.transparent, 255);
  for (int i = 0; i < 600; ++i) {
    ASSERT_EQ(gif.clear[i], i % 2 == 0) << i;
    if (i % 2) ASSERT_LE(std::abs(int{gif.rgb[3 * i]} - int{data[i]}), 1) << i;
  }
}

TEST(GifEncoderTest, FewColoursAreExact) {
  // A classified map: 5 colours, and transparent nodata.
  const uint8_t classes[5][3] = {
      {255, 0, 0}, {0, 128, 0}, {17, 34, 51}, {250, 250, 250}, {0, 0, 0}};
  const int height = 40, width = 50, plane = height * width;
  std::vector<uint8_t> data(4 * plane);
  for (int i = 0; i < plane; ++i) {
    const uint8_t* c = classes[(i / 7) % 5];
    for (int b = 0; b < 3; ++b) data[b * plane + i] = c[b];
    data[3 * plane + i] = i % 11 == 0 ? 0 : 255;
  }
  auto encoded = EncodeGif(View(data, 4, height, width), {});
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  DecodedGif gif = Decode(*encoded->bytes);
  EXPECT_EQ(gif.colors, 256);  // 5 colours + the transparent index 255
  EXPECT_EQ(gif.transparent, 255);
  for (int i = 0; i < plane; ++i) {
    ASSERT_EQ(gif.clear[i], i % 11 == 0) << i;
    if (gif.clear[i]) continue;
    for (int b = 0; b < 3; ++b) ASSERT_EQ(gif.rgb[3 * i + b], data[b * plane + i]) << i;
  }
}

TEST(GifEncoderTest, OpaqueFewColoursUseASmallPalette) {
  std::vector<uint8_t> data(3 * 16 * 16, 0);
  for (int i = 0; i < 256; ++i) data[i] = i < 128 ? 200 : 10;  // two colours
  auto encoded = EncodeGif(View(data, 3, 16, 16), {});
  ASSERT_TRUE(encoded.ok());
  DecodedGif gif = Decode(*encoded->bytes);
  EXPECT_EQ(gif.colors, 2);
  EXPECT_EQ(gif.transparent, NO_TRANSPARENT_COLOR);
  EXPECT_EQ(gif.rgb[0], 200);
  EXPECT_EQ(gif.rgb[3 * 200], 10);
}

TEST(GifEncoderTest, ManyColoursAreDitheredOnTheColourCube) {
  const int height = 64, width = 64, plane = height * width;
  auto data = MakeRaster(3, height, width);
  auto encoded = EncodeGif(View(data, 3, height, width), {});
  ASSERT_TRUE(encoded.ok());
  DecodedGif gif = Decode(*encoded->bytes);
  std::set<uint32_t> used;
  double error[3] = {};
  for (int i = 0; i < plane; ++i) {
    used.insert(gif.rgb[3 * i] << 16 | gif.rgb[3 * i + 1] << 8 | gif.rgb[3 * i + 2]);
    for (int b = 0; b < 3; ++b) {
      int diff = int{gif.rgb[3 * i + b]} - int{data[b * plane + i]};
      ASSERT_LE(std::abs(diff), 51) << "pixel " << i << " band " << b;  // one cube step
      error[b] += diff;
    }
  }
  EXPECT_LE(used.size(), 252u);
  // Dithering keeps the local average: the mean error is far below one step.
  for (double e : error) EXPECT_LT(std::abs(e / plane), 6.0);
}

TEST(GifEncoderTest, Errors) {
  std::vector<int16_t> wide(4);
  EXPECT_EQ(GifError(View(wide, 0, 2, 2, "int16")).message(),
            "GIF encodes uint8 rasters, got dtype 'int16': scale the values to 0-255 and cast to "
            "uint8 first");
  std::vector<uint8_t> data(4);
  RasterView huge = View(data, 0, 0, 0);
  huge.shape = {70000, 1};
  huge.size_bytes = -1;
  EXPECT_EQ(GifError(huge).message(),
            "GIF needs a height and width from 1 to 65535, got shape [70000, 1]");
}

}  // namespace
}  // namespace terrafuse::encode

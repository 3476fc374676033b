#include <gtest/gtest.h>
#include <webp/decode.h>

#include <cmath>

#include "terrafuse/encode/more_formats.h"
#include "terrafuse/encode/more_formats_testing_internal.h"

namespace terrafuse::encode {
namespace {

using testing::MakeRaster;
using testing::View;

struct DecodedWebp {
  WebPBitstreamFeatures features{};
  std::vector<uint8_t> rgba;  // interleaved RGBA
};

DecodedWebp Decode(const arrow::Buffer& webp) {
  DecodedWebp out;
  EXPECT_EQ(WebPGetFeatures(webp.data(), static_cast<size_t>(webp.size()), &out.features),
            VP8_STATUS_OK);
  int width = 0, height = 0;
  uint8_t* rgba = WebPDecodeRGBA(webp.data(), static_cast<size_t>(webp.size()), &width, &height);
  EXPECT_NE(rgba, nullptr);
  if (rgba) {
    out.rgba.assign(rgba, rgba + static_cast<size_t>(width) * height * 4);
    WebPFree(rgba);
  }
  return out;
}

Status WebpError(const RasterView& raster, const EncodeOptions& options = {},
                 int quality = kDefaultWebpQuality) {
  auto encoded = EncodeWebp(raster, options, quality);
  EXPECT_FALSE(encoded.ok());
  if (encoded.ok()) return Status::OK();
  EXPECT_EQ(KindOf(encoded.status()), ErrorKind::kInvalidArgument);
  return encoded.status();
}

class WebpBands : public ::testing::TestWithParam<int> {};

TEST_P(WebpBands, DecodesBackCloseToTheInput) {
  const int bands = GetParam();
  const int height = 45, width = 67;
  auto data = MakeRaster(bands, height, width);
  if (bands == 2 || bands == 4) {
    // A transparent block, to see alpha survive exactly.
    uint8_t* alpha = data.data() + static_cast<size_t>(bands - 1) * height * width;
    for (int i = 0; i < height * width; ++i) alpha[i] = (i % width) < 20 ? 0 : 255;
  }
  auto encoded = EncodeWebp(View(data, bands, height, width), {});
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  EXPECT_EQ(encoded->media_type, "image/webp");
  int w = 0, h = 0;
  ASSERT_TRUE(
      WebPGetInfo(encoded->bytes->data(), static_cast<size_t>(encoded->bytes->size()), &w, &h));
  EXPECT_EQ(w, width);
  EXPECT_EQ(h, height);
  DecodedWebp webp = Decode(*encoded->bytes);
  EXPECT_EQ(webp.features.has_alpha != 0, bands == 2 || bands == 4);
  EXPECT_EQ(webp.features.format, 1);  // lossy
  const size_t plane = static_cast<size_t>(width) * height;
  const int colors = bands <= 2 ? 1 : 3;
  double error = 0;
  size_t opaque = 0;
  for (size_t i = 0; i < plane; ++i) {
    if (bands == 2 || bands == 4) {
      ASSERT_EQ(webp.rgba[i * 4 + 3], data[(bands - 1) * plane + i]) << "alpha of pixel " << i;
      // Lossy WebP may change the colour of transparent pixels.
      if (webp.rgba[i * 4 + 3] == 0) continue;
    }
    ++opaque;
    for (int c = 0; c < 3; ++c) {
      error += std::abs(int{webp.rgba[i * 4 + c]} - int{data[(colors == 1 ? 0 : c) * plane + i]});
    }
  }
  EXPECT_LT(error / static_cast<double>(opaque * 3), colors == 1 ? 3.0 : 6.0);
}

INSTANTIATE_TEST_SUITE_P(Bands, WebpBands, ::testing::Values(1, 2, 3, 4));

TEST(WebpEncoderTest, QualityAndMethodChangeTheOutput) {
  auto data = MakeRaster(3, 64, 64, 9);
  auto low = EncodeWebp(View(data, 3, 64, 64), {}, 10);
  auto high = EncodeWebp(View(data, 3, 64, 64), {}, 95);
  ASSERT_TRUE(low.ok() && high.ok());
  EXPECT_LT(low->bytes->size(), high->bytes->size());
  for (int method : {0, 6}) {
    EncodeOptions options;
    options.compression_level = method;
    auto encoded = EncodeWebp(View(data, 3, 64, 64), options);
    ASSERT_TRUE(encoded.ok()) << method;
    EXPECT_EQ(Decode(*encoded->bytes).rgba.size(), 64u * 64 * 4);
  }
}

TEST(WebpEncoderTest, Errors) {
  std::vector<uint16_t> wide(4);
  EXPECT_EQ(WebpError(View(wide, 0, 2, 2, "uint16")).message(),
            "WebP encodes uint8 rasters, got dtype 'uint16': scale the values to 0-255 and cast "
            "to uint8 first");
  auto data = MakeRaster(1, 4, 4);
  EncodeOptions options;
  options.compression_level = 7;
  EXPECT_EQ(WebpError(View(data, 1, 4, 4), options).message(),
            "WebP compression level (libwebp's method) must be from 0 to 6, got 7");
  EXPECT_EQ(WebpError(View(data, 1, 4, 4), {}, 101).message(),
            "WebP quality must be from 0 to 100, got 101");
  RasterView huge = View(data, 0, 0, 0);
  huge.shape = {1, 16384};
  huge.size_bytes = -1;
  EXPECT_EQ(WebpError(huge).message(),
            "WebP needs a height and width from 1 to 16383, got shape [1, 16384]");
}

}  // namespace
}  // namespace terrafuse::encode

#include <gtest/gtest.h>
#include <spng.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "terrafuse/encode/encoder.h"

namespace terrafuse::encode {
namespace {

struct Decoded {
  spng_ihdr ihdr{};
  std::vector<uint8_t> pixels;  // interleaved, as stored in the PNG
};

Decoded DecodePng(const arrow::Buffer& png) {
  Decoded out;
  spng_ctx* ctx = spng_ctx_new(0);
  EXPECT_EQ(spng_set_png_buffer(ctx, png.data(), static_cast<size_t>(png.size())), 0);
  EXPECT_EQ(spng_get_ihdr(ctx, &out.ihdr), 0);
  size_t size = 0;
  EXPECT_EQ(spng_decoded_image_size(ctx, SPNG_FMT_PNG, &size), 0);
  out.pixels.resize(size);
  EXPECT_EQ(spng_decode_image(ctx, out.pixels.data(), size, SPNG_FMT_PNG, 0), 0);
  spng_ctx_free(ctx);
  return out;
}

// A band-major raster with distinct, somewhat compressible values.
std::vector<uint8_t> MakeRaster(int bands, int height, int width) {
  std::vector<uint8_t> data(static_cast<size_t>(bands) * height * width);
  std::mt19937 rng(42);
  for (int b = 0; b < bands; ++b) {
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        data[(static_cast<size_t>(b) * height + y) * width + x] =
            static_cast<uint8_t>(x * (b + 1) + y * 3 + (rng() % 4));
      }
    }
  }
  return data;
}

Status PngError(const RasterView& raster, const EncodeOptions& options = {}) {
  auto encoded = EncodePng(raster, options);
  EXPECT_FALSE(encoded.ok());
  EXPECT_EQ(KindOf(encoded.status()), ErrorKind::kInvalidArgument);
  return encoded.status();
}

class PngBands : public ::testing::TestWithParam<int> {};

TEST_P(PngBands, DecodesBackToTheInput) {
  const int bands = GetParam();
  const int height = 37, width = 53;
  std::vector<uint8_t> data = MakeRaster(bands, height, width);
  auto encoded = EncodePng(
      RasterView{data.data(), {bands, height, width}, "uint8", static_cast<int64_t>(data.size())},
      {});
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  EXPECT_EQ(encoded->media_type, "image/png");
  Decoded png = DecodePng(*encoded->bytes);
  const uint8_t expected_color[] = {0, SPNG_COLOR_TYPE_GRAYSCALE, SPNG_COLOR_TYPE_GRAYSCALE_ALPHA,
                                    SPNG_COLOR_TYPE_TRUECOLOR, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA};
  EXPECT_EQ(png.ihdr.color_type, expected_color[bands]);
  EXPECT_EQ(png.ihdr.width, static_cast<uint32_t>(width));
  EXPECT_EQ(png.ihdr.height, static_cast<uint32_t>(height));
  EXPECT_EQ(png.ihdr.bit_depth, 8);
  ASSERT_EQ(png.pixels.size(), data.size());
  for (int b = 0; b < bands; ++b) {
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        ASSERT_EQ(png.pixels[(static_cast<size_t>(y) * width + x) * bands + b],
                  data[(static_cast<size_t>(b) * height + y) * width + x])
            << "band " << b << " y " << y << " x " << x;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EncodePng, PngBands, ::testing::Values(1, 2, 3, 4));

TEST(EncodePngTest, TwoDimensionalIsGray) {
  std::vector<uint8_t> data = MakeRaster(1, 4, 3);
  for (int level : {0, 9}) {
    EncodeOptions options;
    options.compression_level = level;
    auto encoded = EncodePng(RasterView{data.data(), {4, 3}}, options).ValueOrDie();
    Decoded png = DecodePng(*encoded.bytes);
    EXPECT_EQ(png.ihdr.color_type, SPNG_COLOR_TYPE_GRAYSCALE);
    EXPECT_EQ(png.pixels, data);
  }
}

// 256x256 RGBA tiles: smooth ones go through libdeflate's matching, noisy ones through
// literals only (UseMatching): both decode back, each at about the size it should have.
TEST(EncodePngTest, SmoothAndNoisyTilesDecodeBack) {
  constexpr size_t kSide = 256, kPlane = kSide * kSide;
  std::vector<uint8_t> smooth(4 * kPlane);
  for (size_t i = 0; i < smooth.size(); ++i) smooth[i] = static_cast<uint8_t>((i % kSide) / 8);
  std::vector<uint8_t> noisy(smooth.size()), imagery(smooth.size());
  std::mt19937 rng(7);
  for (auto& v : noisy) v = static_cast<uint8_t>(rng());
  std::normal_distribution<double> noise(0, 8);
  for (size_t i = 0; i < imagery.size(); ++i) {
    imagery[i] = i >= 3 * kPlane ? 255 : static_cast<uint8_t>(std::clamp(128 + noise(rng), 0.0, 255.0));
  }
  std::vector<size_t> sizes;
  for (const auto* data : {&smooth, &noisy, &imagery}) {
    const std::vector<int64_t> shape = {4, kSide, kSide};
    auto encoded = EncodePng(RasterView{data->data(), shape}, {}).ValueOrDie();
    Decoded png = DecodePng(*encoded.bytes);
    ASSERT_EQ(png.pixels.size(), data->size());
    for (size_t i = 0; i < kPlane; ++i) {
      for (size_t b = 0; b < 4; ++b) ASSERT_EQ(png.pixels[i * 4 + b], (*data)[b * kPlane + i]);
    }
    sizes.push_back(static_cast<size_t>(encoded.bytes->size()));
  }
  EXPECT_LT(sizes[0], 4000);                              // matched: rows repeat
  EXPECT_GT(sizes[1], 4 * kPlane);                        // random bytes do not shrink
  EXPECT_LT(sizes[1], 4 * kPlane + 2000);                 // ... nor grow much
  EXPECT_LT(sizes[2], 3 * kPlane * 7 / 8);  // ~6 bits per noisy sample (entropy 5.6), alpha 2
}

TEST(EncodePngTest, Tile256RgbaIsFast) {
  std::vector<uint8_t> data = MakeRaster(4, 256, 256);
  RasterView raster{data.data(), {4, 256, 256}};
  ASSERT_TRUE(EncodePng(raster, {}).ok());
  double ms = 1e9;
  for (int i = 0; i < 20; ++i) {
    auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(EncodePng(raster, {}).ok());
    ms = std::min(
        ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count());
  }
  // Reported, not asserted: timing belongs to bench/encode (STYLE.md §16).
  std::printf("256x256 RGBA PNG (noisy gradient), best of 20: %.3f ms\n", ms);
}

TEST(EncodePngTest, Errors) {
  uint8_t pixels[16] = {};
  EXPECT_EQ(PngError(RasterView{pixels, {2, 2}, "float32"}).message(),
            "PNG encodes uint8 rasters, got dtype 'float32': scale the values to 0-255 and cast "
            "to uint8 first");
  EXPECT_EQ(
      PngError(RasterView{pixels, {16}}).message(),
      "PNG needs a raster of shape (bands, height, width) or (height, width), got shape [16]");
  EXPECT_EQ(PngError(RasterView{pixels, {5, 1, 1}}).message(),
            "PNG needs 1 to 4 bands (gray, gray+alpha, RGB, RGBA), got 5 in shape [5, 1, 1]");
  EXPECT_EQ(PngError(RasterView{pixels, {256, 256, 3}}).message(),
            "PNG needs 1 to 4 bands (gray, gray+alpha, RGB, RGBA), got 256 in shape [256, 256, 3]: "
            "it looks band-last, transpose it to (bands, height, width)");
  EXPECT_EQ(PngError(RasterView{pixels, {0, 4}}).message(),
            "PNG needs a height and width from 1 to 2^31-1, got shape [0, 4]");
  EXPECT_EQ(PngError(RasterView{pixels, {3, 2, 2}, "uint8", 10}).message(),
            "Raster of shape [3, 2, 2] and dtype uint8 needs 12 bytes, got 10");
  EXPECT_EQ(PngError(RasterView{pixels, {4, 65536, 65536}}).message(),
            "Raster of shape [4, 65536, 65536] is too large for PNG: at most 2147483648 bytes of "
            "pixels");
  EncodeOptions options;
  options.compression_level = 12;
  EXPECT_EQ(PngError(RasterView{pixels, {2, 2}}, options).message(),
            "PNG compression level must be from 0 to 9, got 12");
}

}  // namespace
}  // namespace terrafuse::encode

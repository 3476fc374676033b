#include <gtest/gtest.h>
// clang-format off
#include <cstdio>
#include <jpeglib.h>
// clang-format on

#include <cmath>
#include <csetjmp>

#include "terrafuse/encode/more_formats.h"
#include "terrafuse/encode/more_formats_testing_internal.h"

namespace terrafuse::encode {
namespace {

using testing::MakeRaster;
using testing::View;

struct DecodedJpeg {
  int width = 0, height = 0, components = 0;
  std::vector<uint8_t> pixels;  // interleaved
};

struct ErrorJump {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
};

[[noreturn]] void Jump(j_common_ptr cinfo) {
  std::longjmp(reinterpret_cast<ErrorJump*>(cinfo->err)->jump, 1);
}

bool DecodeInto(const arrow::Buffer& jpeg, DecodedJpeg* out) {
  jpeg_decompress_struct cinfo;
  ErrorJump err;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = Jump;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, jpeg.data(), static_cast<unsigned long>(jpeg.size()));
  jpeg_read_header(&cinfo, TRUE);
  jpeg_start_decompress(&cinfo);
  out->width = static_cast<int>(cinfo.output_width);
  out->height = static_cast<int>(cinfo.output_height);
  out->components = cinfo.output_components;
  out->pixels.resize(static_cast<size_t>(out->width) * out->height * out->components);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out->pixels.data() +
                   static_cast<size_t>(cinfo.output_scanline) * out->width * out->components;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

DecodedJpeg Decode(const arrow::Buffer& jpeg) {
  DecodedJpeg out;
  EXPECT_TRUE(DecodeInto(jpeg, &out)) << "libjpeg cannot decode the output";
  return out;
}

// Mean absolute difference between decoded pixels and the first `components` bands.
double MeanError(const DecodedJpeg& jpeg, const std::vector<uint8_t>& data, int components) {
  const size_t plane = static_cast<size_t>(jpeg.width) * jpeg.height;
  double sum = 0;
  for (int c = 0; c < components; ++c) {
    for (size_t i = 0; i < plane; ++i) {
      sum += std::abs(int{jpeg.pixels[i * components + c]} - int{data[c * plane + i]});
    }
  }
  return sum / static_cast<double>(plane * components);
}

Status JpegError(const RasterView& raster, int quality = kDefaultJpegQuality) {
  auto encoded = EncodeJpeg(raster, {}, quality);
  EXPECT_FALSE(encoded.ok());
  if (encoded.ok()) return Status::OK();
  EXPECT_EQ(KindOf(encoded.status()), ErrorKind::kInvalidArgument);
  return encoded.status();
}

class JpegBands : public ::testing::TestWithParam<int> {};

TEST_P(JpegBands, DecodesBackCloseToTheInput) {
  const int bands = GetParam();
  const int height = 61, width = 83;
  auto data = MakeRaster(bands, height, width);
  auto encoded = EncodeJpeg(View(data, bands, height, width), {});
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  EXPECT_EQ(encoded->media_type, "image/jpeg");
  EXPECT_EQ(encoded->bytes->ToString().substr(0, 3), "\xFF\xD8\xFF");
  DecodedJpeg jpeg = Decode(*encoded->bytes);
  EXPECT_EQ(jpeg.width, width);
  EXPECT_EQ(jpeg.height, height);
  const int components = bands <= 2 ? 1 : 3;
  EXPECT_EQ(jpeg.components, components);
  // The test raster has sharp colour edges (its gradients wrap), which 4:2:0 chroma
  // subsampling blurs: colour errs more than gray.
  EXPECT_LT(MeanError(jpeg, data, components), components == 1 ? 2.0 : 6.0);
}

INSTANTIATE_TEST_SUITE_P(Bands, JpegBands, ::testing::Values(1, 2, 3, 4));

TEST(JpegEncoderTest, AlphaIsDropped) {
  auto rgba = MakeRaster(4, 20, 30);
  std::vector<uint8_t> rgb(rgba.begin(), rgba.begin() + 3 * 20 * 30);
  auto a = EncodeJpeg(View(rgba, 4, 20, 30), {});
  auto b = EncodeJpeg(View(rgb, 3, 20, 30), {});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(a->bytes->Equals(*b->bytes));
}

TEST(JpegEncoderTest, TwoDimensionalIsGray) {
  auto data = MakeRaster(1, 10, 12);
  auto encoded = EncodeJpeg(View(data, 0, 10, 12), {});
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  EXPECT_EQ(Decode(*encoded->bytes).components, 1);
}

TEST(JpegEncoderTest, QualityTradesSizeForError) {
  auto data = MakeRaster(3, 64, 64, 7);
  auto low = EncodeJpeg(View(data, 3, 64, 64), {}, 30);
  auto high = EncodeJpeg(View(data, 3, 64, 64), {}, 98);
  ASSERT_TRUE(low.ok() && high.ok());
  EXPECT_LT(low->bytes->size(), high->bytes->size());
  EXPECT_LT(MeanError(Decode(*high->bytes), data, 3), MeanError(Decode(*low->bytes), data, 3));
}

TEST(JpegEncoderTest, LargeOutputGrowsTheBuffer) {
  // Noise compresses badly: the output outgrows the first guess of its size several times.
  std::vector<uint8_t> data(3 * 512 * 512);
  std::mt19937 rng(3);
  for (auto& v : data) v = static_cast<uint8_t>(rng());
  auto encoded = EncodeJpeg(View(data, 3, 512, 512), {}, 100);
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  EXPECT_GT(encoded->bytes->size(), 512 * 512);
  DecodedJpeg jpeg = Decode(*encoded->bytes);
  EXPECT_EQ(jpeg.width, 512);
}

TEST(JpegEncoderTest, Errors) {
  std::vector<float> floats(4, 0.5f);
  EXPECT_EQ(JpegError(View(floats, 0, 2, 2, "float32")).message(),
            "JPEG encodes uint8 rasters, got dtype 'float32': scale the values to 0-255 and "
            "cast to uint8 first");
  auto data = MakeRaster(5, 4, 6);
  EXPECT_EQ(JpegError(View(data, 5, 4, 6)).message(),
            "JPEG needs 1 to 4 bands (gray, gray+alpha, RGB, RGBA), got 5 in shape [5, 4, 6]");
}

TEST(JpegEncoderTest, ShapeErrors) {
  std::vector<uint8_t> data(6 * 4 * 3);
  RasterView band_last = View(data, 0, 0, 0);
  band_last.shape = {6, 4, 3};
  EXPECT_EQ(JpegError(band_last).message(),
            "JPEG needs 1 to 4 bands (gray, gray+alpha, RGB, RGBA), got 6 in shape [6, 4, 3]: it "
            "looks band-last, transpose it to (bands, height, width)");
  RasterView flat = View(data, 0, 0, 0);
  flat.shape = {72};
  EXPECT_EQ(JpegError(flat).message(),
            "JPEG needs a raster of shape (bands, height, width) or (height, width), got shape "
            "[72]");
  RasterView wrong_size = View(data, 0, 0, 0);
  wrong_size.shape = {5, 5};
  EXPECT_EQ(JpegError(wrong_size).message(),
            "Raster of shape [5, 5] and dtype uint8 needs 25 bytes, got 72");
  RasterView empty = View(data, 0, 0, 0);
  empty.shape = {0, 4};
  empty.size_bytes = 0;
  EXPECT_EQ(JpegError(empty).message(),
            "JPEG needs a height and width from 1 to 65500, got shape [0, 4]");
  RasterView huge = View(data, 0, 0, 0);
  huge.shape = {1, 70000};
  huge.size_bytes = -1;
  EXPECT_EQ(JpegError(huge).message(),
            "JPEG needs a height and width from 1 to 65500, got shape [1, 70000]");
}

TEST(JpegEncoderTest, QualityOutOfRange) {
  auto data = MakeRaster(1, 4, 4);
  EXPECT_EQ(JpegError(View(data, 1, 4, 4), 0).message(),
            "JPEG quality must be from 1 to 100, got 0");
  EXPECT_EQ(JpegError(View(data, 1, 4, 4), 101).message(),
            "JPEG quality must be from 1 to 100, got 101");
}

}  // namespace
}  // namespace terrafuse::encode

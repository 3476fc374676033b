#include <gtest/gtest.h>
#include <tiffio.h>

#include <cstring>
#include <mutex>

#include "terrafuse/encode/more_formats.h"
#include "terrafuse/encode/more_formats_testing_internal.h"

namespace terrafuse::encode {
namespace {

using testing::MakeRaster;
using testing::View;

// libtiff knows the GeoTIFF tags only when told: register them for every file this test
// process opens, chaining to any earlier extender.
TIFFExtendProc previous_extender = nullptr;

const TIFFFieldInfo kGeoTiffFields[] = {
    {33550, TIFF_VARIABLE, TIFF_VARIABLE, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1,
     const_cast<char*>("ModelPixelScaleTag")},
    {33922, TIFF_VARIABLE, TIFF_VARIABLE, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1,
     const_cast<char*>("ModelTiepointTag")},
    {34735, TIFF_VARIABLE, TIFF_VARIABLE, TIFF_SHORT, FIELD_CUSTOM, 1, 1,
     const_cast<char*>("GeoKeyDirectoryTag")},
};

void ExtendWithGeoTiff(TIFF* tif) {
  TIFFMergeFieldInfo(tif, kGeoTiffFields, 3);
  if (previous_extender) previous_extender(tif);
}

void RegisterGeoTiffTags() {
  static std::once_flag once;
  std::call_once(once, [] { previous_extender = TIFFSetTagExtender(ExtendWithGeoTiff); });
}

// A read-only view of encoded bytes for TIFFClientOpen.
struct Reader {
  const arrow::Buffer* buffer;
  int64_t pos = 0;
};

tmsize_t Read(thandle_t h, void* data, tmsize_t n) {
  auto* r = static_cast<Reader*>(h);
  int64_t count = std::min<int64_t>(n, r->buffer->size() - r->pos);
  if (count <= 0) return 0;
  std::memcpy(data, r->buffer->data() + r->pos, static_cast<size_t>(count));
  r->pos += count;
  return count;
}
tmsize_t NoWrite(thandle_t, void*, tmsize_t) { return -1; }
toff_t Seek(thandle_t h, toff_t off, int whence) {
  auto* r = static_cast<Reader*>(h);
  int64_t base = whence == SEEK_CUR ? r->pos : whence == SEEK_END ? r->buffer->size() : 0;
  r->pos = base + static_cast<int64_t>(off);
  return static_cast<toff_t>(r->pos);
}
int Close(thandle_t) { return 0; }
toff_t Size(thandle_t h) { return static_cast<toff_t>(static_cast<Reader*>(h)->buffer->size()); }
int Map(thandle_t, void**, toff_t*) { return 0; }
void Unmap(thandle_t, void*, toff_t) {}

// An opened TIFF over encoded bytes.
class OpenTiff {
 public:
  explicit OpenTiff(const arrow::Buffer& bytes) : reader_{&bytes} {
    RegisterGeoTiffTags();
    tif_ = TIFFClientOpen("test", "r", &reader_, Read, NoWrite, Seek, Close, Size, Map, Unmap);
    EXPECT_NE(tif_, nullptr);
  }
  ~OpenTiff() {
    if (tif_) TIFFClose(tif_);
  }
  TIFF* get() const { return tif_; }

  template <typename T>
  T Tag(ttag_t tag) const {
    T value{};
    EXPECT_EQ(TIFFGetFieldDefaulted(tif_, tag, &value), 1) << "tag " << tag;
    return value;
  }

  // The values of a GeoTIFF array tag, empty when absent.
  template <typename T>
  std::vector<T> Array(ttag_t tag) const {
    uint16_t count = 0;
    T* values = nullptr;
    if (!TIFFGetField(tif_, tag, &count, &values)) return {};
    return std::vector<T>(values, values + count);
  }

  // All pixels, interleaved as stored.
  std::vector<uint8_t> Pixels() const {
    std::vector<uint8_t> out;
    const tmsize_t strip_size = TIFFStripSize(tif_);
    std::vector<uint8_t> strip(static_cast<size_t>(strip_size));
    for (uint32_t s = 0; s < TIFFNumberOfStrips(tif_); ++s) {
      tmsize_t n = TIFFReadEncodedStrip(tif_, s, strip.data(), strip_size);
      EXPECT_GT(n, 0) << "strip " << s;
      if (n <= 0) break;
      out.insert(out.end(), strip.begin(), strip.begin() + n);
    }
    return out;
  }

 private:
  Reader reader_;
  TIFF* tif_ = nullptr;
};

// The band-major `data` interleaved: what the TIFF must hold.
std::vector<uint8_t> Interleaved(const std::vector<uint8_t>& data, int bands, int height, int width,
                                 int element) {
  std::vector<uint8_t> out(data.size());
  const size_t plane = static_cast<size_t>(height) * width;
  for (int b = 0; b < bands; ++b) {
    for (size_t i = 0; i < plane; ++i) {
      std::memcpy(&out[(i * bands + b) * element], &data[(b * plane + i) * element], element);
    }
  }
  return out;
}

Status TiffError(const RasterView& raster, const EncodeOptions& options = {},
                 const std::optional<std::array<double, 4>>& bounds = std::nullopt) {
  auto encoded = EncodeTiff(raster, bounds, options);
  EXPECT_FALSE(encoded.ok());
  if (encoded.ok()) return Status::OK();
  EXPECT_EQ(KindOf(encoded.status()), ErrorKind::kInvalidArgument);
  return encoded.status();
}

struct TiffCase {
  std::string dtype;
  int element;
  uint16_t sample_format;
  int bands;
  uint16_t photometric;
  std::vector<uint16_t> extra;
};

class TiffCases : public ::testing::TestWithParam<TiffCase> {};

TEST_P(TiffCases, RoundTripsExactly) {
  const TiffCase& c = GetParam();
  const int height = 97, width = 301;  // several strips for the wide types
  std::vector<uint8_t> data = MakeRaster(1, 1, c.bands * height * width * c.element, 5);
  if (c.dtype.starts_with("float")) {
    // Finite floats: keep only the bytes of real numbers.
    for (size_t i = 0; i < data.size(); i += c.element) {
      double v = static_cast<double>(i % 1000) / 7.0 - 50;
      if (c.element == 4) {
        float f = static_cast<float>(v);
        std::memcpy(&data[i], &f, 4);
      } else {
        std::memcpy(&data[i], &v, 8);
      }
    }
  }
  RasterView view = View(data, c.bands, height, width, c.dtype);
  auto encoded = EncodeTiff(view, {});
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  EXPECT_EQ(encoded->media_type, "image/tiff");
  EXPECT_EQ(encoded->bytes->ToString().substr(0, 4), std::string("II*\0", 4));
  OpenTiff tiff(*encoded->bytes);
  ASSERT_NE(tiff.get(), nullptr);
  EXPECT_EQ(tiff.Tag<uint32_t>(TIFFTAG_IMAGEWIDTH), static_cast<uint32_t>(width));
  EXPECT_EQ(tiff.Tag<uint32_t>(TIFFTAG_IMAGELENGTH), static_cast<uint32_t>(height));
  EXPECT_EQ(tiff.Tag<uint16_t>(TIFFTAG_SAMPLESPERPIXEL), c.bands);
  EXPECT_EQ(tiff.Tag<uint16_t>(TIFFTAG_BITSPERSAMPLE), c.element * 8);
  EXPECT_EQ(tiff.Tag<uint16_t>(TIFFTAG_SAMPLEFORMAT), c.sample_format);
  EXPECT_EQ(tiff.Tag<uint16_t>(TIFFTAG_PHOTOMETRIC), c.photometric);
  EXPECT_EQ(tiff.Tag<uint16_t>(TIFFTAG_COMPRESSION), COMPRESSION_ADOBE_DEFLATE);
  EXPECT_EQ(tiff.Tag<uint16_t>(TIFFTAG_PREDICTOR), c.sample_format == SAMPLEFORMAT_IEEEFP
                                                       ? PREDICTOR_FLOATINGPOINT
                                                       : PREDICTOR_HORIZONTAL);
  uint16_t extra_count = 0;
  uint16_t* extra = nullptr;
  TIFFGetFieldDefaulted(tiff.get(), TIFFTAG_EXTRASAMPLES, &extra_count, &extra);
  EXPECT_EQ(std::vector<uint16_t>(extra, extra + extra_count), c.extra);
  EXPECT_TRUE(tiff.Array<double>(33550).empty()) << "no GeoTIFF tags without bounds";
  EXPECT_TRUE(tiff.Pixels() == Interleaved(data, c.bands, height, width, c.element));
  EXPECT_FALSE(TIFFReadDirectory(tiff.get())) << "one image only";
}

INSTANTIATE_TEST_SUITE_P(
    Types, TiffCases,
    ::testing::Values(
        TiffCase{"uint8", 1, SAMPLEFORMAT_UINT, 1, PHOTOMETRIC_MINISBLACK, {}},
        TiffCase{
            "uint8", 1, SAMPLEFORMAT_UINT, 2, PHOTOMETRIC_MINISBLACK, {EXTRASAMPLE_UNASSALPHA}},
        TiffCase{"uint8", 1, SAMPLEFORMAT_UINT, 3, PHOTOMETRIC_RGB, {}},
        TiffCase{"uint8", 1, SAMPLEFORMAT_UINT, 4, PHOTOMETRIC_RGB, {EXTRASAMPLE_UNASSALPHA}},
        TiffCase{"uint8", 1, SAMPLEFORMAT_UINT, 6, PHOTOMETRIC_MINISBLACK,
                 std::vector<uint16_t>(5, EXTRASAMPLE_UNSPECIFIED)},
        TiffCase{"int8", 1, SAMPLEFORMAT_INT, 1, PHOTOMETRIC_MINISBLACK, {}},
        TiffCase{"uint16",
                 2,
                 SAMPLEFORMAT_UINT,
                 3,
                 PHOTOMETRIC_MINISBLACK,
                 {EXTRASAMPLE_UNSPECIFIED, EXTRASAMPLE_UNSPECIFIED}},
        TiffCase{"int16", 2, SAMPLEFORMAT_INT, 1, PHOTOMETRIC_MINISBLACK, {}},
        TiffCase{"uint32", 4, SAMPLEFORMAT_UINT, 1, PHOTOMETRIC_MINISBLACK, {}},
        TiffCase{
            "int32", 4, SAMPLEFORMAT_INT, 2, PHOTOMETRIC_MINISBLACK, {EXTRASAMPLE_UNSPECIFIED}},
        TiffCase{"float32", 4, SAMPLEFORMAT_IEEEFP, 1, PHOTOMETRIC_MINISBLACK, {}},
        TiffCase{"float32", 4, SAMPLEFORMAT_IEEEFP, 4, PHOTOMETRIC_MINISBLACK,
                 std::vector<uint16_t>(3, EXTRASAMPLE_UNSPECIFIED)},
        TiffCase{"float64", 8, SAMPLEFORMAT_IEEEFP, 1, PHOTOMETRIC_MINISBLACK, {}}),
    [](const auto& info) {
      return info.param.dtype + "_" + std::to_string(info.param.bands) + "bands";
    });

TEST(TiffEncoderTest, BoundsAddGeoTiffTags) {
  auto data = MakeRaster(3, 256, 512);
  std::array<double, 4> bounds{-122.5, 37.0, -121.5, 38.5};
  auto encoded = EncodeTiff(View(data, 3, 256, 512), bounds, {});
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  OpenTiff tiff(*encoded->bytes);
  EXPECT_EQ(tiff.Array<double>(33550), (std::vector<double>{1.0 / 512, 1.5 / 256, 0}));
  EXPECT_EQ(tiff.Array<double>(33922), (std::vector<double>{0, 0, 0, -122.5, 38.5, 0}));
  EXPECT_EQ(tiff.Array<uint16_t>(34735),
            (std::vector<uint16_t>{1,    1, 0, 4,        // header: 4 keys
                                   1024, 0, 1, 2,        // model type: geographic
                                   1025, 0, 1, 1,        // raster type: pixel is area
                                   2048, 0, 1, 4326,     // geographic CRS: EPSG:4326
                                   2054, 0, 1, 9102}));  // angular unit: degree
  EXPECT_TRUE(tiff.Pixels() == Interleaved(data, 3, 256, 512, 1));
}

TEST(TiffEncoderTest, WebMercatorBoundsAreProjected) {
  auto data = MakeRaster(1, 256, 256);
  // Tile 0/0/0.
  const double edge = 20037508.342789244;
  auto encoded = EncodeTiff(View(data, 1, 256, 256),
                            std::array<double, 4>{-edge, -edge, edge, edge}, {}, kEpsgWebMercator);
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  OpenTiff tiff(*encoded->bytes);
  EXPECT_EQ(tiff.Array<double>(33550), (std::vector<double>{2 * edge / 256, 2 * edge / 256, 0}));
  EXPECT_EQ(tiff.Array<double>(33922), (std::vector<double>{0, 0, 0, -edge, edge, 0}));
  EXPECT_EQ(tiff.Array<uint16_t>(34735),
            (std::vector<uint16_t>{1,    1, 0, 4,        // header: 4 keys
                                   1024, 0, 1, 1,        // model type: projected
                                   1025, 0, 1, 1,        // raster type: pixel is area
                                   3072, 0, 1, 3857,     // projected CRS: EPSG:3857
                                   3076, 0, 1, 9001}));  // linear unit: metre
}

TEST(TiffEncoderTest, CompressionChoices) {
  auto data = MakeRaster(1, 64, 64);
  size_t sizes[3] = {};
  int k = 0;
  for (const auto& [name, scheme] :
       std::vector<std::pair<std::string, uint16_t>>{{"none", COMPRESSION_NONE},
                                                     {"lzw", COMPRESSION_LZW},
                                                     {"deflate", COMPRESSION_ADOBE_DEFLATE}}) {
    EncodeOptions options;
    options.compression = name;
    auto encoded = EncodeTiff(View(data, 1, 64, 64), options);
    ASSERT_TRUE(encoded.ok()) << name << ": " << encoded.status().ToString();
    OpenTiff tiff(*encoded->bytes);
    EXPECT_EQ(tiff.Tag<uint16_t>(TIFFTAG_COMPRESSION), scheme) << name;
    EXPECT_TRUE(tiff.Pixels() == data) << name;
    sizes[k++] = static_cast<size_t>(encoded->bytes->size());
  }
  EXPECT_GT(sizes[0], sizes[1]);
  EXPECT_GT(sizes[0], sizes[2]);
  EncodeOptions fast;
  fast.compression_level = 1;
  auto encoded = EncodeTiff(View(data, 1, 64, 64), fast);
  ASSERT_TRUE(encoded.ok());
  EXPECT_TRUE(OpenTiff(*encoded->bytes).Pixels() == data);
}

TEST(TiffEncoderTest, Errors) {
  std::vector<uint8_t> flags(4);
  EXPECT_EQ(TiffError(View(flags, 0, 2, 2, "bool")).message(),
            "TIFF encodes uint8, int8, uint16, int16, uint32, int32, float32 or float64 rasters, "
            "got dtype 'bool': cast to one of these first");
  std::vector<uint16_t> data(6);
  EXPECT_EQ(TiffError(View(data, 0, 2, 2, "uint16")).message(),
            "Raster of shape [2, 2] and dtype uint16 needs 8 bytes, got 12");
  EncodeOptions zstd;
  zstd.compression = "zstd";
  EXPECT_EQ(TiffError(View(data, 0, 2, 3, "uint16"), zstd).message(),
            "Unknown TIFF compression 'zstd': use deflate (default), lzw or none");
  EncodeOptions level;
  level.compression_level = 10;
  EXPECT_EQ(TiffError(View(data, 0, 2, 3, "uint16"), level).message(),
            "TIFF deflate level must be from 1 to 9, got 10");
  EXPECT_EQ(
      TiffError(View(data, 0, 2, 3, "uint16"), {}, std::array<double, 4>{0, 0, std::nan(""), 1})
          .message(),
      "GeoTIFF bounds must be finite numbers [xmin, ymin, xmax, ymax], got [0, 0, nan, 1]");
  auto unknown_crs =
      EncodeTiff(View(data, 0, 2, 3, "uint16"), std::array<double, 4>{0, 0, 1, 1}, {}, 32633);
  ASSERT_FALSE(unknown_crs.ok());
  EXPECT_EQ(unknown_crs.status().message(),
            "GeoTIFF bounds must be in EPSG:4326 or EPSG:3857, got EPSG:32633");
  EXPECT_EQ(
      TiffError(View(data, 0, 2, 3, "uint16"), {}, std::array<double, 4>{10, 0, 5, 1}).message(),
      "GeoTIFF bounds [xmin, ymin, xmax, ymax] need xmin < xmax and ymin < ymax, got "
      "[10, 0, 5, 1]");
}

}  // namespace
}  // namespace terrafuse::encode

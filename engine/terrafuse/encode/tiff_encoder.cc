// `tiff` (and `tif`): libtiff writing into memory through client procs, pixel-interleaved
// strips, deflate with a predictor by default; GeoTIFF tags when bounds are given.
#include <arrow/buffer.h>
#include <tiffio.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "terrafuse/encode/more_formats.h"
#include "terrafuse/encode/raster_internal.h"
#include "terrafuse/encode/text_internal.h"

namespace terrafuse::encode {

namespace {

// Strips of about this many bytes before compression: zlib's window is 32 KiB, so larger
// strips compress hardly better and readers of a window would decode more.
constexpr int64_t kStripBytes = 64 * 1024;
constexpr int kDefaultDeflateLevel = 6;
// Rasters from this size on are written as BigTIFF (64-bit offsets), which classic TIFF
// readers cannot open; below it the output stays under classic TIFF's 4 GiB.
constexpr int64_t kBigTiffBytes = int64_t{1} << 31;
constexpr int64_t kMaxTiffBytes = int64_t{1} << 34;

// GeoTIFF 1.1 tags and keys (OGC 19-008r4).
constexpr ttag_t kModelPixelScaleTag = 33550;
constexpr ttag_t kModelTiepointTag = 33922;
constexpr ttag_t kGeoKeyDirectoryTag = 34735;
constexpr uint16_t kGtModelTypeGeoKey = 1024;
constexpr uint16_t kGtRasterTypeGeoKey = 1025;
constexpr uint16_t kGeographicTypeGeoKey = 2048;
constexpr uint16_t kGeogAngularUnitsGeoKey = 2054;
constexpr uint16_t kProjectedCsTypeGeoKey = 3072;
constexpr uint16_t kProjLinearUnitsGeoKey = 3076;
constexpr uint16_t kModelTypeProjected = 1;
constexpr uint16_t kModelTypeGeographic = 2;
constexpr uint16_t kRasterPixelIsArea = 1;
constexpr uint16_t kAngularDegree = 9102;
constexpr uint16_t kLinearMetre = 9001;

const TIFFFieldInfo kGeoTiffFields[] = {
    {kModelPixelScaleTag, TIFF_VARIABLE, TIFF_VARIABLE, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1,
     const_cast<char*>("ModelPixelScaleTag")},
    {kModelTiepointTag, TIFF_VARIABLE, TIFF_VARIABLE, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1,
     const_cast<char*>("ModelTiepointTag")},
    {kGeoKeyDirectoryTag, TIFF_VARIABLE, TIFF_VARIABLE, TIFF_SHORT, FIELD_CUSTOM, 1, 1,
     const_cast<char*>("GeoKeyDirectoryTag")},
};

struct SampleType {
  uint16_t format;  // SAMPLEFORMAT_*
  int bytes;
};

std::optional<SampleType> SampleTypeOf(const std::string& dtype) {
  if (dtype == "uint8") return SampleType{SAMPLEFORMAT_UINT, 1};
  if (dtype == "int8") return SampleType{SAMPLEFORMAT_INT, 1};
  if (dtype == "uint16") return SampleType{SAMPLEFORMAT_UINT, 2};
  if (dtype == "int16") return SampleType{SAMPLEFORMAT_INT, 2};
  if (dtype == "uint32") return SampleType{SAMPLEFORMAT_UINT, 4};
  if (dtype == "int32") return SampleType{SAMPLEFORMAT_INT, 4};
  if (dtype == "float32") return SampleType{SAMPLEFORMAT_IEEEFP, 4};
  if (dtype == "float64") return SampleType{SAMPLEFORMAT_IEEEFP, 8};
  return std::nullopt;
}

// A growable in-memory file for libtiff, which seeks back to patch offsets.
struct MemoryFile {
  std::shared_ptr<arrow::ResizableBuffer> buffer;
  int64_t size = 0;
  int64_t pos = 0;
  std::string error;  // the first error libtiff reported
};

tmsize_t ReadProc(thandle_t handle, void* data, tmsize_t n) {
  auto* file = static_cast<MemoryFile*>(handle);
  int64_t available = std::max<int64_t>(0, file->size - file->pos);
  int64_t count = std::min<int64_t>(n, available);
  if (count > 0) std::memcpy(data, file->buffer->data() + file->pos, static_cast<size_t>(count));
  file->pos += count;
  return static_cast<tmsize_t>(count);
}

tmsize_t WriteProc(thandle_t handle, void* data, tmsize_t n) {
  auto* file = static_cast<MemoryFile*>(handle);
  const int64_t end = file->pos + n;
  if (end > file->buffer->capacity()) {
    int64_t capacity = std::max<int64_t>(end, file->buffer->capacity() * 2);
    if (!file->buffer->Reserve(capacity).ok()) return -1;
  }
  uint8_t* bytes = file->buffer->mutable_data();
  if (file->pos > file->size) {
    std::memset(bytes + file->size, 0, static_cast<size_t>(file->pos - file->size));
  }
  std::memcpy(bytes + file->pos, data, static_cast<size_t>(n));
  file->pos = end;
  file->size = std::max(file->size, end);
  return n;
}

toff_t SeekProc(thandle_t handle, toff_t offset, int whence) {
  auto* file = static_cast<MemoryFile*>(handle);
  int64_t base = whence == SEEK_CUR ? file->pos : whence == SEEK_END ? file->size : 0;
  int64_t target = base + static_cast<int64_t>(offset);
  if (target < 0) return static_cast<toff_t>(-1);
  file->pos = target;
  return static_cast<toff_t>(target);
}

int CloseProc(thandle_t) { return 0; }

toff_t SizeProc(thandle_t handle) {
  return static_cast<toff_t>(static_cast<MemoryFile*>(handle)->size);
}

int MapProc(thandle_t, void**, toff_t*) { return 0; }
void UnmapProc(thandle_t, void*, toff_t) {}

int OnTiffError(TIFF*, void* user_data, const char* module, const char* fmt, va_list ap) {
  auto* file = static_cast<MemoryFile*>(user_data);
  if (file->error.empty()) {
    char message[512];
    std::vsnprintf(message, sizeof(message), fmt, ap);
    file->error = module ? std::string(module) + ": " + message : message;
  }
  return 1;
}

// Warnings would go to stderr; none concern the caller.
int OnTiffWarning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

struct OpenOptions {
  TIFFOpenOptions* options = TIFFOpenOptionsAlloc();
  ~OpenOptions() { TIFFOpenOptionsFree(options); }
};

struct TiffHandle {
  TIFF* tif = nullptr;
  ~TiffHandle() {
    if (tif) TIFFClose(tif);
  }
};

struct Compression {
  uint16_t scheme = COMPRESSION_ADOBE_DEFLATE;
  int level = kDefaultDeflateLevel;
};

Result<Compression> ParseCompression(const EncodeOptions& options) {
  Compression out;
  const std::string& name = options.compression;
  if (name.empty() || name == "deflate") {
    out.level = options.compression_level.value_or(kDefaultDeflateLevel);
    if (out.level < 1 || out.level > 9) {
      return InvalidArgument("TIFF deflate level must be from 1 to 9, got ", out.level);
    }
  } else if (name == "lzw") {
    out.scheme = COMPRESSION_LZW;
  } else if (name == "none") {
    out.scheme = COMPRESSION_NONE;
  } else {
    return InvalidArgument("Unknown TIFF compression '", name,
                           "': use deflate (default), lzw or none");
  }
  return out;
}

// "[-122.5, 37, -121.5, 38.5]", numbers in their shortest exact form.
std::string BoundsText(const std::array<double, 4>& b) {
  std::string out = "[";
  for (size_t i = 0; i < b.size(); ++i) {
    if (i) out += ", ";
    internal::AppendDouble(&out, b[i]);
  }
  return out + "]";
}

Status CheckBounds(const std::array<double, 4>& b) {
  for (double v : b) {
    if (!std::isfinite(v)) {
      return InvalidArgument("GeoTIFF bounds must be finite numbers [xmin, ymin, xmax, ymax], got ",
                             BoundsText(b));
    }
  }
  if (!(b[0] < b[2]) || !(b[1] < b[3])) {
    return InvalidArgument(
        "GeoTIFF bounds [xmin, ymin, xmax, ymax] need xmin < xmax and "
        "ymin < ymax, got ",
        BoundsText(b));
  }
  return Status::OK();
}

Status TiffError(const MemoryFile& file, const char* what) {
  return Internal("TIFF encoding failed (", what, ")",
                  file.error.empty() ? std::string() : ": " + file.error);
}

}  // namespace

Result<Encoded> EncodeTiff(const RasterView& raster,
                           const std::optional<std::array<double, 4>>& bounds,
                           const EncodeOptions& options, int epsg) {
  std::optional<SampleType> sample = SampleTypeOf(raster.dtype);
  if (!sample) {
    return InvalidArgument(
        "TIFF encodes uint8, int8, uint16, int16, uint32, int32, float32 or float64 rasters, "
        "got dtype '",
        raster.dtype, "': cast to one of these first");
  }
  ARROW_ASSIGN_OR_RAISE(
      auto layout,
      internal::CheckRasterShape(raster, {"TIFF", UINT16_MAX, UINT32_MAX >> 1, kMaxTiffBytes}));
  ARROW_ASSIGN_OR_RAISE(Compression compression, ParseCompression(options));
  if (bounds) {
    if (epsg != kEpsgLngLat && epsg != kEpsgWebMercator) {
      return InvalidArgument("GeoTIFF bounds must be in EPSG:4326 or EPSG:3857, got EPSG:", epsg);
    }
    ARROW_RETURN_NOT_OK(CheckBounds(*bounds));
  }

  const int64_t row_bytes = layout.width * layout.bands * sample->bytes;
  const int64_t total_bytes = row_bytes * layout.height;
  MemoryFile file;
  ARROW_ASSIGN_OR_RAISE(file.buffer, arrow::AllocateResizableBuffer(0));
  ARROW_RETURN_NOT_OK(file.buffer->Reserve(std::min<int64_t>(total_bytes / 2 + 1024, 1 << 24)));
  OpenOptions open_options;
  TIFFOpenOptionsSetErrorHandlerExtR(open_options.options, OnTiffError, &file);
  TIFFOpenOptionsSetWarningHandlerExtR(open_options.options, OnTiffWarning, &file);
  TiffHandle tiff;
  tiff.tif = TIFFClientOpenExt("memory", total_bytes >= kBigTiffBytes ? "w8l" : "wl", &file,
                               ReadProc, WriteProc, SeekProc, CloseProc, SizeProc, MapProc,
                               UnmapProc, open_options.options);
  if (!tiff.tif) return TiffError(file, "open");
  TIFF* tif = tiff.tif;

  const bool rgb = raster.dtype == "uint8" && (layout.bands == 3 || layout.bands == 4);
  const bool gray_alpha = raster.dtype == "uint8" && layout.bands == 2;
  const int64_t rows_per_strip = std::max<int64_t>(1, kStripBytes / row_bytes);
  bool ok =
      TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, static_cast<uint32_t>(layout.width)) &&
      TIFFSetField(tif, TIFFTAG_IMAGELENGTH, static_cast<uint32_t>(layout.height)) &&
      TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, static_cast<int>(sample->bytes * 8)) &&
      TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, static_cast<int>(layout.bands)) &&
      TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, static_cast<int>(sample->format)) &&
      TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG) &&
      TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, rgb ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK) &&
      TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, static_cast<uint32_t>(rows_per_strip)) &&
      TIFFSetField(tif, TIFFTAG_COMPRESSION, static_cast<int>(compression.scheme));
  if (ok && compression.scheme != COMPRESSION_NONE) {
    int predictor =
        sample->format == SAMPLEFORMAT_IEEEFP ? PREDICTOR_FLOATINGPOINT : PREDICTOR_HORIZONTAL;
    ok = TIFFSetField(tif, TIFFTAG_PREDICTOR, predictor);
    if (ok && compression.scheme == COMPRESSION_ADOBE_DEFLATE) {
      ok = TIFFSetField(tif, TIFFTAG_ZIPQUALITY, compression.level);
    }
  }
  // Samples beyond gray or RGB: alpha for the uint8 image conventions, else unspecified.
  const int64_t extra = layout.bands - (rgb ? 3 : 1);
  if (ok && extra > 0) {
    std::vector<uint16_t> kinds(static_cast<size_t>(extra), EXTRASAMPLE_UNSPECIFIED);
    if (gray_alpha || (rgb && layout.bands == 4)) kinds[0] = EXTRASAMPLE_UNASSALPHA;
    ok = TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, static_cast<int>(extra), kinds.data());
  }
  if (ok && bounds) {
    const auto& b = *bounds;
    ok = TIFFMergeFieldInfo(tif, kGeoTiffFields, 3) == 0;
    const double scale[3] = {(b[2] - b[0]) / static_cast<double>(layout.width),
                             (b[3] - b[1]) / static_cast<double>(layout.height), 0.0};
    const double tiepoint[6] = {0.0, 0.0, 0.0, b[0], b[3], 0.0};
    // Version 1.1.0 and 4 keys, sorted by key id: model type, raster type, CRS, unit.
    const bool geographic = epsg == kEpsgLngLat;
    // clang-format off
    const uint16_t keys[] = {
        1, 1, 0, 4,
        kGtModelTypeGeoKey, 0, 1, geographic ? kModelTypeGeographic : kModelTypeProjected,
        kGtRasterTypeGeoKey, 0, 1, kRasterPixelIsArea,
        geographic ? kGeographicTypeGeoKey : kProjectedCsTypeGeoKey, 0, 1,
        static_cast<uint16_t>(epsg),
        geographic ? kGeogAngularUnitsGeoKey : kProjLinearUnitsGeoKey, 0, 1,
        geographic ? kAngularDegree : kLinearMetre};
    // clang-format on
    ok = ok && TIFFSetField(tif, kModelPixelScaleTag, 3, scale) &&
         TIFFSetField(tif, kModelTiepointTag, 6, tiepoint) &&
         TIFFSetField(tif, kGeoKeyDirectoryTag, static_cast<int>(std::size(keys)), keys);
  }
  if (!ok) return TiffError(file, "tags");

  const auto* data = static_cast<const uint8_t*>(raster.data);
  std::vector<uint8_t> strip(static_cast<size_t>(rows_per_strip * row_bytes));
  for (int64_t y0 = 0, s = 0; y0 < layout.height; y0 += rows_per_strip, ++s) {
    const int64_t rows = std::min(rows_per_strip, layout.height - y0);
    for (int64_t r = 0; r < rows; ++r) {
      internal::InterleaveRowBytes(data, layout, y0 + r, strip.data() + r * row_bytes);
    }
    if (TIFFWriteEncodedStrip(tif, static_cast<uint32_t>(s), strip.data(),
                              static_cast<tmsize_t>(rows * row_bytes)) < 0) {
      return TiffError(file, "strip");
    }
  }
  if (!TIFFWriteDirectory(tif)) return TiffError(file, "directory");
  TIFFClose(tif);
  tiff.tif = nullptr;
  if (!file.error.empty()) return TiffError(file, "close");
  ARROW_RETURN_NOT_OK(file.buffer->Resize(file.size, /*shrink_to_fit=*/true));
  return Encoded{std::move(file.buffer), media_type::kTiff};
}

Result<Encoded> EncodeTiff(const RasterView& raster, const EncodeOptions& options) {
  return EncodeTiff(raster, std::nullopt, options);
}

}  // namespace terrafuse::encode

// Output encoders: an Arrow table (vector) or a raster in, the bytes of a response body and
// its media type out. Each format is registered under its user-facing name (`csv`,
// `geojson`, `png`, ...) in an EncoderRegistry, filled by RegisterBuiltins (STYLE.md §9).
#pragma once

#include <arrow/buffer.h>
#include <arrow/table.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "terrafuse/common/status.h"
#include "terrafuse/tiles/tile_math.h"

namespace terrafuse::encode {

/// The media types the built-in encoders answer with.
namespace media_type {
inline constexpr char kCsv[] = "text/csv";
inline constexpr char kJson[] = "application/json";
inline constexpr char kGeoJson[] = "application/geo+json";
inline constexpr char kParquet[] = "application/vnd.apache.parquet";
inline constexpr char kFeather[] = "application/vnd.apache.arrow.file";
inline constexpr char kPng[] = "image/png";
inline constexpr char kNpy[] = "application/x-npy";
inline constexpr char kMvt[] = "application/vnd.mapbox-vector-tile";
}  // namespace media_type

/// An encoded response body and its media type ("application/geo+json").
struct Encoded {
  std::shared_ptr<arrow::Buffer> bytes;
  std::string media_type;
};

/// Options shared by the encoders; each reads the ones it understands and ignores the rest.
struct EncodeOptions {
  /// Codec of the binary table formats: parquet takes "zstd" (default), "snappy", "gzip",
  /// "lz4" or "none"; feather takes "lz4" (default), "zstd" or "none". Empty: the default.
  std::string compression;
  /// Level of that codec, or of PNG's zlib stream (0-9); unset: the format's default.
  std::optional<int> compression_level;
  /// The tile being rendered: `mvt` projects and clips to it (and needs it); others ignore it.
  std::optional<tiles::Tile> tile;
  /// `mvt`: the layer's extent (tile width in integer units) and the clip buffer around the
  /// tile, in the same units.
  int mvt_extent = 4096;
  int mvt_buffer = 64;
};

/// A raster in C order: band-major `{bands, height, width}` or single-band `{height, width}`.
/// The caller keeps `data` alive during encoding.
struct RasterView {
  const void* data = nullptr;
  std::vector<int64_t> shape;
  /// numpy's name of the element type: "uint8", "float32", ...
  std::string dtype = "uint8";
  /// Size of `data` in bytes when known (checked against shape and dtype), else -1.
  int64_t size_bytes = -1;
};

enum class EncoderKind { kVector, kRaster };

/// What the registry knows about one format; drives the docs and a capabilities route.
struct EncoderInfo {
  std::string name;
  EncoderKind kind = EncoderKind::kVector;
  std::string media_type;
  std::string description;
};

using VectorEncodeFn = std::function<Result<Encoded>(const arrow::Table&, const EncodeOptions&)>;
using RasterEncodeFn = std::function<Result<Encoded>(const RasterView&, const EncodeOptions&)>;

/// Output formats by user-facing name. Filled once at start-up, then read-only: concurrent
/// Encode calls on a filled registry are safe.
class EncoderRegistry {
 public:
  /// Registers a table format. Fails with AlreadyExists when `info.name` is taken.
  Status AddVector(EncoderInfo info, VectorEncodeFn fn);
  /// Registers a raster format. Fails with AlreadyExists when `info.name` is taken.
  Status AddRaster(EncoderInfo info, RasterEncodeFn fn);

  /// Returns the format called `name` (case-insensitive), or nullptr when there is none.
  const EncoderInfo* Find(std::string_view name) const;
  /// Returns the format called `name`, or InvalidArgument naming it and the known formats.
  Result<const EncoderInfo*> Get(std::string_view name) const;

  /// Encodes `table` as the table format `format`.
  Result<Encoded> Encode(std::string_view format, const arrow::Table& table,
                         const EncodeOptions& options = {}) const;
  /// Encodes `raster` as the raster format `format`.
  Result<Encoded> EncodeRaster(std::string_view format, const RasterView& raster,
                               const EncodeOptions& options = {}) const;

  /// Returns every format, sorted by name.
  std::vector<EncoderInfo> List() const;
  /// Returns the names of the formats of one kind, sorted.
  std::vector<std::string> Names(EncoderKind kind) const;

 private:
  struct Entry {
    EncoderInfo info;
    VectorEncodeFn vector;
    RasterEncodeFn raster;
  };
  Status Add(Entry entry);
  const Entry* FindEntry(std::string_view name) const;
  Result<const Entry*> GetEntry(std::string_view name, EncoderKind kind) const;

  std::map<std::string, Entry, std::less<>> entries_;
};

/// Registers the built-in formats: csv, json, geojson, parquet, feather (tables) and png
/// (rasters).
Status RegisterBuiltins(EncoderRegistry& registry);

/// The encoders themselves, callable without a registry.
Result<Encoded> EncodeCsv(const arrow::Table& table, const EncodeOptions& options);
Result<Encoded> EncodeJson(const arrow::Table& table, const EncodeOptions& options);
Result<Encoded> EncodeGeoJson(const arrow::Table& table, const EncodeOptions& options);
Result<Encoded> EncodeParquet(const arrow::Table& table, const EncodeOptions& options);
Result<Encoded> EncodeFeather(const arrow::Table& table, const EncodeOptions& options);
Result<Encoded> EncodePng(const RasterView& raster, const EncodeOptions& options);
/// Registers the Mapbox Vector Tile encoder (mvt_encoder.cc).
Status RegisterMvt(EncoderRegistry& registry);
/// A Mapbox Vector Tile of `options.tile` with one layer, `udf` (mvt_encoder.cc).
Result<Encoded> EncodeMvt(const arrow::Table& table, const EncodeOptions& options);
/// Registers jpeg/webp/tiff/gif rasters and html/xml/excel tables (more_formats.cc).
Status RegisterMoreFormats(EncoderRegistry& registry);
/// NumPy .npy bytes of any bool/integer/float raster (exact round trips for the SDK).
Result<Encoded> EncodeNpy(const RasterView& raster, const EncodeOptions& options);

}  // namespace terrafuse::encode

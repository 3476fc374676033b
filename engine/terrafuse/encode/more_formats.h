// The output formats beyond the core ones of encoder.h: JPEG, WebP, TIFF (GeoTIFF) and GIF
// rasters, and HTML, XML and Excel (xlsx) tables. RegisterMoreFormats (encoder.h) puts them
// in the registry under the names Fused users spell: jpeg (+ jpg), webp, tiff (+ tif), gif,
// html, xml, excel.
#pragma once

#include <array>
#include <optional>

#include "terrafuse/encode/encoder.h"

namespace terrafuse::encode {

namespace media_type {
inline constexpr char kJpeg[] = "image/jpeg";
inline constexpr char kWebp[] = "image/webp";
inline constexpr char kTiff[] = "image/tiff";
inline constexpr char kGif[] = "image/gif";
inline constexpr char kHtml[] = "text/html; charset=utf-8";
inline constexpr char kXml[] = "application/xml";
inline constexpr char kXlsx[] = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
}  // namespace media_type

/// JPEG quality (1-100) used when none is given.
inline constexpr int kDefaultJpegQuality = 85;
/// WebP quality (0-100, lossy) used when none is given.
inline constexpr int kDefaultWebpQuality = 80;
/// The CRSs GeoTIFF output knows: longitude/latitude (WGS 84) and Web Mercator.
inline constexpr int kEpsgLngLat = 4326;
inline constexpr int kEpsgWebMercator = 3857;

/// Encodes a uint8 raster as baseline JPEG (libjpeg-turbo, 4:2:0 chroma subsampling for
/// colour): 1 band gray, 3 RGB; the alpha of 2 (gray+alpha) and 4 (RGBA) bands is dropped.
/// `quality` is 1-100. `options` is unused.
Result<Encoded> EncodeJpeg(const RasterView& raster, const EncodeOptions& options,
                           int quality = kDefaultJpegQuality);

/// Encodes a uint8 raster as lossy WebP (libwebp; alpha kept losslessly): 1 band gray, 2
/// gray+alpha, 3 RGB, 4 RGBA, at most 16383 pixels a side. `quality` is 0-100;
/// `options.compression_level` is libwebp's method, 0 (fastest) to 6 (smallest), default 2.
Result<Encoded> EncodeWebp(const RasterView& raster, const EncodeOptions& options,
                           int quality = kDefaultWebpQuality);

/// Encodes a raster as TIFF (libtiff), pixel-interleaved in strips. Takes uint8, int8,
/// uint16, int16, uint32, int32, float32 and float64, any number of bands; uint8 follows
/// the image convention (2 gray+alpha, 3 RGB, 4 RGBA), other band counts and dtypes are
/// gray with extra samples. `options.compression` is "deflate" (default), "lzw" or "none";
/// `options.compression_level` the deflate level, 1-9 (default 6). Horizontal differencing
/// (predictor 2, or 3 for floats) precedes compression.
///
/// With `bounds` = {xmin, ymin, xmax, ymax}, adds the GeoTIFF tags ModelPixelScale (33550),
/// ModelTiepoint (33922) and GeoKeyDirectory (34735: pixel-is-area, and CRS `epsg`), so that
/// GDAL and QGIS place the image. `epsg` is 4326 (bounds in degrees: a raster on a
/// longitude/latitude grid, as UDFs return `(array, bounds)`) or 3857 (bounds in metres: a
/// Web Mercator tile, tiles::XyBounds); the bounds must be finite with xmin < xmax and
/// ymin < ymax.
Result<Encoded> EncodeTiff(const RasterView& raster,
                           const std::optional<std::array<double, 4>>& bounds,
                           const EncodeOptions& options, int epsg = kEpsgLngLat);
/// As above, without georeferencing (what the registry's `tiff` does).
Result<Encoded> EncodeTiff(const RasterView& raster, const EncodeOptions& options);

/// Encodes a uint8 raster as GIF89a (giflib): 1 band with a 256-level gray palette; 2
/// bands gray+alpha; 3 RGB and 4 RGBA with their exact colours when there are at most 256
/// (255 with transparency), else a 6x7x6 colour cube with ordered (4x4 Bayer) dithering.
/// Alpha below 128 becomes the transparent index. At most 65535 pixels a side. `options` is
/// unused.
Result<Encoded> EncodeGif(const RasterView& raster, const EncodeOptions& options);

/// Encodes a table as a self-contained UTF-8 HTML document holding one `<table>`: a header
/// row of column names, then one `<tr>` per row. Text is escaped; geometry is WKT, dates and
/// times ISO 8601, nested values JSON text, other binary base64, nulls empty cells.
Result<Encoded> EncodeHtml(const arrow::Table& table, const EncodeOptions& options);

/// Encodes a table as XML: `<rows><row><name>value</name>...</row>...</rows>`. Element
/// names are the column names made valid XML names (other characters become `_`, a `_`
/// goes in front of names that do not start with a letter or `_` or that start with "xml",
/// duplicates get `_2`, `_3`, ...). Values as in EncodeHtml; nulls are empty elements;
/// NaN and infinities are `NaN`, `INF` and `-INF` (xs:double).
Result<Encoded> EncodeXml(const arrow::Table& table, const EncodeOptions& options);

/// Encodes a table as an Excel workbook (xlsx, written directly) of one sheet: a bold,
/// frozen header row, then numbers as numbers, bools as booleans, dates, timestamps (UTC)
/// and times as Excel dates with a date format (dates before 1900 as ISO 8601 text),
/// strings as strings (cut to Excel's 32767 characters), nulls and NaN as empty cells,
/// infinities as `inf`/`-inf`, geometry as WKT, other types as in EncodeHtml.
/// `options.compression_level` is the zlib level of the parts, 0-9 (default 1). At most
/// 1048575 rows and 16384 columns; an InvalidArgument otherwise.
Result<Encoded> EncodeExcel(const arrow::Table& table, const EncodeOptions& options);

}  // namespace terrafuse::encode

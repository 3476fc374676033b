// Registers the formats of more_formats.h. Fused spells some formats two ways
// (`dtype_out_raster=jpg` or `jpeg`, `tif` or `tiff`); the registry has no aliases, so both
// names are registered, the short one described as the other's alias.
#include "terrafuse/encode/more_formats.h"

namespace terrafuse::encode {

namespace {

Result<Encoded> EncodeJpegDefault(const RasterView& raster, const EncodeOptions& options) {
  return EncodeJpeg(raster, options);
}

Result<Encoded> EncodeWebpDefault(const RasterView& raster, const EncodeOptions& options) {
  return EncodeWebp(raster, options);
}

Result<Encoded> EncodeTiffPlain(const RasterView& raster, const EncodeOptions& options) {
  return EncodeTiff(raster, options);
}

}  // namespace

Status RegisterMoreFormats(EncoderRegistry& registry) {
  const std::string jpeg =
      "JPEG (quality 85) of a uint8 raster: 1 band gray, 3 RGB; alpha (2 or 4 bands) dropped";
  ARROW_RETURN_NOT_OK(registry.AddRaster({"jpeg", EncoderKind::kRaster, media_type::kJpeg, jpeg},
                                         EncodeJpegDefault));
  ARROW_RETURN_NOT_OK(
      registry.AddRaster({"jpg", EncoderKind::kRaster, media_type::kJpeg, "Alias of jpeg: " + jpeg},
                         EncodeJpegDefault));
  ARROW_RETURN_NOT_OK(registry.AddRaster(
      {"webp", EncoderKind::kRaster, media_type::kWebp,
       "Lossy WebP (quality 80, alpha lossless) of a uint8 raster: 1 band gray, 2 gray+alpha, "
       "3 RGB, 4 RGBA"},
      EncodeWebpDefault));
  const std::string tiff =
      "TIFF (deflate) of a uint8, int8, uint16, int16, uint32, int32, float32 or float64 raster "
      "of any band count";
  ARROW_RETURN_NOT_OK(
      registry.AddRaster({"tiff", EncoderKind::kRaster, media_type::kTiff, tiff}, EncodeTiffPlain));
  ARROW_RETURN_NOT_OK(registry.AddRaster(
      {"tif", EncoderKind::kRaster, media_type::kTiff, "Alias of tiff: " + tiff}, EncodeTiffPlain));
  ARROW_RETURN_NOT_OK(registry.AddRaster(
      {"gif", EncoderKind::kRaster, media_type::kGif,
       "GIF of a uint8 raster (1 to 4 bands), at most 256 colours; alpha below 128 transparent"},
      EncodeGif));
  ARROW_RETURN_NOT_OK(registry.AddVector({"html", EncoderKind::kVector, media_type::kHtml,
                                          "An HTML page holding the table; geometry as WKT"},
                                         EncodeHtml));
  ARROW_RETURN_NOT_OK(
      registry.AddVector({"xml", EncoderKind::kVector, media_type::kXml,
                          "XML <rows><row><column>value</column>...</row></rows>; geometry as WKT"},
                         EncodeXml));
  ARROW_RETURN_NOT_OK(registry.AddVector(
      {"excel", EncoderKind::kVector, media_type::kXlsx,
       "An Excel workbook (xlsx) of one sheet with typed cells; geometry as WKT"},
      EncodeExcel));
  return Status::OK();
}

}  // namespace terrafuse::encode

#include "terrafuse/encode/binary_format_internal.h"

#include <arrow/util/key_value_metadata.h>

#include "terrafuse/encode/geo_metadata.h"

namespace terrafuse::encode::internal {

namespace {

std::string CodecName(arrow::Compression::type codec) {
  switch (codec) {
    case arrow::Compression::UNCOMPRESSED:
      return "none";
    case arrow::Compression::LZ4:
    case arrow::Compression::LZ4_FRAME:
      return "lz4";
    default:
      return arrow::util::Codec::GetCodecAsString(codec);
  }
}

}  // namespace

Result<arrow::Compression::type> ParseCompression(
    std::string_view name, std::string_view format,
    const std::vector<arrow::Compression::type>& allowed, arrow::Compression::type fallback) {
  if (name.empty()) return fallback;
  std::string names;
  for (auto codec : allowed) {
    if (CodecName(codec) == name) return codec;
    if (codec == arrow::Compression::UNCOMPRESSED && name == "uncompressed") return codec;
    if (!names.empty()) names += ", ";
    names += CodecName(codec);
  }
  return InvalidArgument("Unknown compression '", name, "' for ", format, ": use one of ", names);
}

Result<std::shared_ptr<arrow::Schema>> SchemaWithGeoMetadata(const arrow::Table& table) {
  std::shared_ptr<arrow::Schema> schema = table.schema();
  ARROW_ASSIGN_OR_RAISE(GeoInfo geo, ReadGeoInfo(*schema));
  if (geo.has_geo_metadata || geo.columns.empty()) return schema;
  auto metadata =
      schema->metadata() ? schema->metadata()->Copy() : std::make_shared<arrow::KeyValueMetadata>();
  metadata->Append("geo", MakeGeoMetadata(geo));
  return schema->WithMetadata(std::move(metadata));
}

}  // namespace terrafuse::encode::internal

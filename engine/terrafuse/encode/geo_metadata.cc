#include "terrafuse/encode/geo_metadata.h"

#include <arrow/extension_type.h>
#include <arrow/util/key_value_metadata.h>

#include <algorithm>
#include <cctype>

#include "terrafuse/common/json_reader.h"
#include "terrafuse/encode/text_internal.h"

namespace terrafuse::encode {

namespace {



bool IsWkbExtension(std::string_view name) { return name == "geoarrow.wkb" || name == "ogc.wkb"; }

bool IsBinaryStorage(const arrow::DataType& type) {
  switch (StorageTypeOf(type).id()) {
    case arrow::Type::BINARY:
    case arrow::Type::LARGE_BINARY:
    case arrow::Type::BINARY_VIEW:
      return true;
    default:
      return false;
  }
}

// The extension name of a field: from a registered extension type, else from its metadata
// (an unregistered extension arrives through the C data interface as metadata only).
std::string ExtensionName(const arrow::Field& field) {
  if (field.type()->id() == arrow::Type::EXTENSION) {
    return static_cast<const arrow::ExtensionType&>(*field.type()).extension_name();
  }
  if (field.metadata()) {
    auto name = field.metadata()->Get("ARROW:extension:name");
    if (name.ok()) return *name;
  }
  return "";
}

std::string ExtensionMetadata(const arrow::Field& field) {
  if (field.type()->id() == arrow::Type::EXTENSION) {
    return static_cast<const arrow::ExtensionType&>(*field.type()).Serialize();
  }
  if (field.metadata()) {
    auto value = field.metadata()->Get("ARROW:extension:metadata");
    if (value.ok()) return *value;
  }
  return "";
}

Result<GeoInfo> FromGeoMetadata(const arrow::Schema& schema, const std::string& text) {
  auto parsed = ParseJson(text);
  if (!parsed.ok()) {
    return InvalidArgument("Schema metadata 'geo' is not GeoParquet metadata: ",
                           parsed.status().message());
  }
  const JsonValue& geo = *parsed;
  const JsonValue* columns = geo.Find("columns");
  if (!geo.IsObject() || !columns || !columns->IsObject()) {
    return InvalidArgument(
        "Schema metadata 'geo' is not GeoParquet metadata: expected an object with a "
        "'columns' object");
  }
  GeoInfo info;
  info.has_geo_metadata = true;
  for (const auto& [name, column] : columns->members) {
    int index = schema.GetFieldIndex(name);
    if (index < 0) continue;
    GeometryColumn out;
    out.field_index = index;
    out.name = name;
    if (const JsonValue* encoding = column.Find("encoding"); encoding && encoding->IsString()) {
      out.encoding = encoding->string;
    }
    if (const JsonValue* crs = column.Find("crs")) out.crs_json = std::string(crs->raw);
    info.columns.push_back(std::move(out));
  }
  std::sort(info.columns.begin(), info.columns.end(),
            [](const auto& a, const auto& b) { return a.field_index < b.field_index; });
  std::string primary;
  if (const JsonValue* p = geo.Find("primary_column"); p && p->IsString()) primary = p->string;
  for (size_t i = 0; i < info.columns.size(); ++i) {
    if (info.columns[i].name == primary) info.primary = static_cast<int>(i);
  }
  if (info.primary < 0 && !info.columns.empty()) info.primary = 0;
  return info;
}

GeoInfo FromExtensions(const arrow::Schema& schema) {
  GeoInfo info;
  for (int i = 0; i < schema.num_fields(); ++i) {
    const arrow::Field& field = *schema.field(i);
    if (!IsWkbExtension(ExtensionName(field)) || !IsBinaryStorage(*field.type())) continue;
    GeometryColumn column;
    column.field_index = i;
    column.name = field.name();
    // GeoArrow metadata is {"crs": ..., "edges": ...}; an unreadable one just loses the CRS.
    std::string metadata = ExtensionMetadata(field);
    if (!metadata.empty()) {
      auto parsed = ParseJson(metadata);
      if (parsed.ok()) {
        if (const JsonValue* crs = parsed->Find("crs")) column.crs_json = std::string(crs->raw);
      }
    }
    info.columns.push_back(std::move(column));
  }
  for (size_t i = 0; i < info.columns.size(); ++i) {
    if (info.columns[i].name == "geometry") info.primary = static_cast<int>(i);
  }
  if (info.primary < 0 && !info.columns.empty()) info.primary = 0;
  return info;
}

}  // namespace

const GeometryColumn* GeoInfo::FindByField(int field_index) const {
  for (const auto& column : columns) {
    if (column.field_index == field_index) return &column;
  }
  return nullptr;
}

Result<GeoInfo> ReadGeoInfo(const arrow::Schema& schema) {
  if (schema.metadata()) {
    auto geo = schema.metadata()->Get("geo");
    if (geo.ok()) return FromGeoMetadata(schema, *geo);
  }
  return FromExtensions(schema);
}

Status RequireWkb(const GeoInfo& info, const arrow::Schema& schema, std::string_view format) {
  for (const auto& column : info.columns) {
    std::string encoding = column.encoding;
    std::transform(encoding.begin(), encoding.end(), encoding.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (encoding != "wkb") {
      return InvalidArgument("Cannot write geometry column '", column.name, "' as ", format,
                             ": its GeoParquet encoding is '", column.encoding,
                             "'; only WKB geometry columns are supported");
    }
    const auto& type = schema.field(column.field_index)->type();
    if (!IsBinaryStorage(*type)) {
      return InvalidArgument("Cannot write geometry column '", column.name, "' as ", format,
                             ": WKB must be binary, large_binary or binary_view, got ",
                             type->ToString());
    }
  }
  return Status::OK();
}

std::string MakeGeoMetadata(const GeoInfo& info) {
  std::string out = R"({"version":"1.1.0","primary_column":)";
  const GeometryColumn* primary = info.Primary();
  AppendJsonString(&out, primary ? primary->name : "");
  out += R"(,"columns":{)";
  for (size_t i = 0; i < info.columns.size(); ++i) {
    const GeometryColumn& column = info.columns[i];
    if (i) out.push_back(',');
    AppendJsonString(&out, column.name);
    out += R"(:{"encoding":)";
    AppendJsonString(&out, column.encoding);
    out += R"(,"geometry_types":[])";
    // GeoParquet reads a missing "crs" as OGC:CRS84 but GeoArrow as unknown: say "unknown".
    out += R"(,"crs":)";
    out += column.crs_json.empty() ? "null" : column.crs_json;
    out.push_back('}');
  }
  out += "}}";
  return out;
}

const arrow::Array& StorageOf(const arrow::Array& array) {
  if (array.type_id() == arrow::Type::EXTENSION) {
    return *static_cast<const arrow::ExtensionArray&>(array).storage();
  }
  return array;
}

const arrow::DataType& StorageTypeOf(const arrow::DataType& type) {
  if (type.id() == arrow::Type::EXTENSION) {
    return *static_cast<const arrow::ExtensionType&>(type).storage_type();
  }
  return type;
}

}  // namespace terrafuse::encode

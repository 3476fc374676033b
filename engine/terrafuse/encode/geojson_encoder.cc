// `geojson`: a FeatureCollection of the primary geometry column, the other columns as
// properties (other geometry columns as WKT). A table without geometry gives features with
// a null geometry.
#include <arrow/table.h>

#include "terrafuse/encode/encoder.h"
#include "terrafuse/encode/geo_metadata.h"
#include "terrafuse/encode/json_value_writer_internal.h"
#include "terrafuse/encode/text_internal.h"

namespace terrafuse::encode {

Result<Encoded> EncodeGeoJson(const arrow::Table& table, const EncodeOptions&) {
  const arrow::Schema& schema = *table.schema();
  ARROW_ASSIGN_OR_RAISE(GeoInfo geo, ReadGeoInfo(schema));
  ARROW_RETURN_NOT_OK(RequireWkb(geo, schema, "geojson"));
  const GeometryColumn* primary = geo.Primary();
  const int geometry_index = primary ? primary->field_index : -1;

  ARROW_ASSIGN_OR_RAISE(auto writers, internal::MakeColumnWriters(
                                          schema, geo, internal::GeometryStyle::kWkt, "geojson"));
  std::unique_ptr<internal::JsonValueWriter> geometry_writer;
  if (primary) {
    ARROW_ASSIGN_OR_RAISE(geometry_writer,
                          internal::MakeGeometryWriter(*schema.field(geometry_index)->type(),
                                                       internal::GeometryStyle::kGeoJson));
  }
  // Property columns in order, each with its '"name":' key ('{' or ',' in front).
  std::vector<int> properties;
  std::vector<std::string> keys;
  for (int j = 0; j < schema.num_fields(); ++j) {
    if (j == geometry_index) continue;
    std::string key(1, properties.empty() ? '{' : ',');
    AppendJsonString(&key, schema.field(j)->name());
    key.push_back(':');
    keys.push_back(std::move(key));
    properties.push_back(j);
  }

  static constexpr std::string_view kFeature = R"({"type":"Feature","properties":)";
  static constexpr std::string_view kGeometry = R"(,"geometry":)";
  std::string out;
  int64_t key_bytes = 0;
  for (const auto& key : keys) key_bytes += static_cast<int64_t>(key.size());
  out.reserve(static_cast<size_t>(
      internal::EstimateJsonBytes(table, key_bytes + kFeature.size() + kGeometry.size() + 32)));
  out.append(R"({"type":"FeatureCollection","features":[)");
  arrow::TableBatchReader reader(table);
  int64_t row = 0;
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    ARROW_RETURN_NOT_OK(reader.ReadNext(&batch));
    if (!batch) break;
    for (int j : properties) writers[j]->Bind(batch->column(j));
    if (geometry_writer) geometry_writer->Bind(batch->column(geometry_index));
    for (int64_t i = 0; i < batch->num_rows(); ++i, ++row) {
      if (row) out.push_back(',');
      out.append(kFeature);
      if (keys.empty()) out.push_back('{');
      for (size_t k = 0; k < properties.size(); ++k) {
        out.append(keys[k]);
        Status st = writers[properties[k]]->Append(i, &out);
        if (!st.ok()) {
          return internal::RowError(st, row, schema.field(properties[k])->name(), "geojson");
        }
      }
      out.push_back('}');
      out.append(kGeometry);
      if (geometry_writer) {
        Status st = geometry_writer->Append(i, &out);
        if (!st.ok()) return internal::RowError(st, row, primary->name, "geojson");
      } else {
        out.append("null", 4);
      }
      out.push_back('}');
    }
  }
  out.append("]}");
  return Encoded{arrow::Buffer::FromString(std::move(out)), media_type::kGeoJson};
}

}  // namespace terrafuse::encode

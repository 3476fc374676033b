// `json`: an array of row objects, `[{"name":"a","geometry":"POINT (1 2)"},...]`.
#include <arrow/table.h>

#include "terrafuse/encode/encoder.h"
#include "terrafuse/encode/geo_metadata.h"
#include "terrafuse/encode/json_value_writer_internal.h"
#include "terrafuse/encode/text_internal.h"

namespace terrafuse::encode {

Result<Encoded> EncodeJson(const arrow::Table& table, const EncodeOptions&) {
  const arrow::Schema& schema = *table.schema();
  ARROW_ASSIGN_OR_RAISE(GeoInfo geo, ReadGeoInfo(schema));
  ARROW_RETURN_NOT_OK(RequireWkb(geo, schema, "json"));
  ARROW_ASSIGN_OR_RAISE(auto writers, internal::MakeColumnWriters(
                                          schema, geo, internal::GeometryStyle::kWkt, "json"));
  // '"name":' per column, with '{' or ',' in front.
  std::vector<std::string> keys;
  for (int j = 0; j < schema.num_fields(); ++j) {
    std::string key(1, j == 0 ? '{' : ',');
    AppendJsonString(&key, schema.field(j)->name());
    key.push_back(':');
    keys.push_back(std::move(key));
  }

  std::string out;
  int64_t key_bytes = 0;
  for (const auto& key : keys) key_bytes += static_cast<int64_t>(key.size());
  out.reserve(static_cast<size_t>(internal::EstimateJsonBytes(table, key_bytes + 2)));
  out.push_back('[');
  arrow::TableBatchReader reader(table);
  int64_t row = 0;
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    ARROW_RETURN_NOT_OK(reader.ReadNext(&batch));
    if (!batch) break;
    for (int j = 0; j < batch->num_columns(); ++j) writers[j]->Bind(batch->column(j));
    for (int64_t i = 0; i < batch->num_rows(); ++i, ++row) {
      if (row) out.push_back(',');
      if (keys.empty()) out.push_back('{');
      for (size_t j = 0; j < writers.size(); ++j) {
        out.append(keys[j]);
        Status st = writers[j]->Append(i, &out);
        if (!st.ok()) return internal::RowError(st, row, schema.field(j)->name(), "json");
      }
      out.push_back('}');
    }
  }
  out.push_back(']');
  return Encoded{arrow::Buffer::FromString(std::move(out)), media_type::kJson};
}

}  // namespace terrafuse::encode

// `html`: a self-contained UTF-8 HTML document holding the table, for a browser tab or an
// iframe: `<thead>` of column names, one `<tr>` per row, cells escaped.
#include <arrow/table.h>

#include "terrafuse/encode/geo_metadata.h"
#include "terrafuse/encode/json_value_writer_internal.h"
#include "terrafuse/encode/more_formats.h"
#include "terrafuse/encode/table_text_internal.h"

namespace terrafuse::encode {

namespace {

// pandas' spellings (DataFrame.to_html).
constexpr internal::NonFiniteText kHtmlNonFinite{"NaN", "inf", "-inf"};

constexpr char kHead[] =
    "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>udf</title>\n<style>"
    "table{border-collapse:collapse;font:13px/1.4 system-ui,sans-serif}"
    "th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}"
    "thead th{background:#f4f4f4;position:sticky;top:0}"
    "</style>\n</head>\n<body>\n<table class=\"dataframe\">\n";

}  // namespace

Result<Encoded> EncodeHtml(const arrow::Table& table, const EncodeOptions&) {
  const arrow::Schema& schema = *table.schema();
  ARROW_ASSIGN_OR_RAISE(GeoInfo geo, ReadGeoInfo(schema));
  ARROW_RETURN_NOT_OK(RequireWkb(geo, schema, "html"));
  ARROW_ASSIGN_OR_RAISE(auto writers,
                        internal::MakeCellTextWriters(schema, geo, kHtmlNonFinite, "html"));
  std::string out;
  out.reserve(static_cast<size_t>(
      internal::EstimateJsonBytes(table, 10 + 9 * static_cast<int64_t>(writers.size()))));
  out.append(kHead);
  out.append("<thead>\n<tr>");
  for (const auto& field : schema.fields()) {
    out.append("<th>");
    internal::AppendXmlText(&out, field->name());
    out.append("</th>");
  }
  out.append("</tr>\n</thead>\n<tbody>\n");

  arrow::TableBatchReader reader(table);
  int64_t row = 0;
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    ARROW_RETURN_NOT_OK(reader.ReadNext(&batch));
    if (!batch) break;
    for (int j = 0; j < batch->num_columns(); ++j) writers[j]->Bind(batch->column(j));
    for (int64_t i = 0; i < batch->num_rows(); ++i, ++row) {
      out.append("<tr>");
      for (size_t j = 0; j < writers.size(); ++j) {
        out.append("<td>");
        if (!writers[j]->IsNull(i)) {
          Status st = writers[j]->Append(i, &out);
          if (!st.ok()) {
            return internal::RowError(st, row, schema.field(static_cast<int>(j))->name(), "html");
          }
        }
        out.append("</td>");
      }
      out.append("</tr>\n");
    }
  }
  out.append("</tbody>\n</table>\n</body>\n</html>\n");
  return Encoded{arrow::Buffer::FromString(std::move(out)), media_type::kHtml};
}

}  // namespace terrafuse::encode

// `csv`: Arrow's CSV writer, after turning the columns it cannot write into text: geometry
// (WKB) into WKT, nested values (lists, structs, maps) into their JSON text, other binary
// into base64, string views into strings.
#include <arrow/buffer_builder.h>
#include <arrow/csv/writer.h>
#include <arrow/io/memory.h>
#include <arrow/table.h>
#include <arrow/util/bitmap_ops.h>

#include "terrafuse/encode/encoder.h"
#include "terrafuse/encode/geo_metadata.h"
#include "terrafuse/encode/json_value_writer_internal.h"
#include "terrafuse/encode/text_internal.h"
#include "terrafuse/encode/wkb.h"

namespace terrafuse::encode {

namespace {

enum class TextForm { kAsIs, kJson, kBase64, kString };

TextForm TextFormOf(const arrow::DataType& type) {
  switch (StorageTypeOf(type).id()) {
    case arrow::Type::LIST:
    case arrow::Type::LARGE_LIST:
    case arrow::Type::FIXED_SIZE_LIST:
    case arrow::Type::LIST_VIEW:
    case arrow::Type::LARGE_LIST_VIEW:
    case arrow::Type::STRUCT:
    case arrow::Type::MAP:
      return TextForm::kJson;
    case arrow::Type::BINARY:
    case arrow::Type::LARGE_BINARY:
    case arrow::Type::BINARY_VIEW:
      return TextForm::kBase64;
    case arrow::Type::STRING_VIEW:
      return TextForm::kString;
    default:
      return TextForm::kAsIs;
  }
}

// Calls append(i, &text) for each non-null row of `chunk` and returns the texts as a
// large_string array (nulls stay null).
template <typename AppendFn>
Result<std::shared_ptr<arrow::Array>> ToText(const arrow::Array& chunk, AppendFn&& append) {
  const int64_t n = chunk.length();
  arrow::TypedBufferBuilder<int64_t> offsets;
  ARROW_RETURN_NOT_OK(offsets.Reserve(n + 1));
  offsets.UnsafeAppend(0);
  std::string text;
  for (int64_t i = 0; i < n; ++i) {
    if (!chunk.IsNull(i)) ARROW_RETURN_NOT_OK(append(i, &text));
    offsets.UnsafeAppend(static_cast<int64_t>(text.size()));
  }
  ARROW_ASSIGN_OR_RAISE(auto offsets_buffer, offsets.Finish());
  std::shared_ptr<arrow::Buffer> validity;
  if (chunk.null_count() > 0) {
    ARROW_ASSIGN_OR_RAISE(validity, arrow::AllocateBitmap(n));
    arrow::internal::CopyBitmap(chunk.null_bitmap_data(), chunk.offset(), n,
                                validity->mutable_data(), 0);
  }
  return std::make_shared<arrow::LargeStringArray>(n, std::move(offsets_buffer),
                                                   arrow::Buffer::FromString(std::move(text)),
                                                   std::move(validity), chunk.null_count());
}

// The bytes of row i of a binary-like array (binary, large_binary, *_view).
std::string_view ViewOf(const arrow::Array& array, int64_t i) {
  switch (array.type_id()) {
    case arrow::Type::BINARY:
      return static_cast<const arrow::BinaryArray&>(array).GetView(i);
    case arrow::Type::LARGE_BINARY:
      return static_cast<const arrow::LargeBinaryArray&>(array).GetView(i);
    case arrow::Type::BINARY_VIEW:
      return static_cast<const arrow::BinaryViewArray&>(array).GetView(i);
    default:
      return static_cast<const arrow::StringViewArray&>(array).GetView(i);
  }
}

}  // namespace

Result<Encoded> EncodeCsv(const arrow::Table& table, const EncodeOptions&) {
  const arrow::Schema& schema = *table.schema();
  ARROW_ASSIGN_OR_RAISE(GeoInfo geo, ReadGeoInfo(schema));
  ARROW_RETURN_NOT_OK(RequireWkb(geo, schema, "csv"));

  std::vector<std::shared_ptr<arrow::Field>> fields;
  std::vector<std::shared_ptr<arrow::ChunkedArray>> columns;
  for (int j = 0; j < schema.num_fields(); ++j) {
    const auto& field = schema.field(j);
    const auto& column = table.column(j);
    bool geometry = geo.FindByField(j) != nullptr;
    TextForm form = geometry ? TextForm::kAsIs : TextFormOf(*field->type());
    if (!geometry && form == TextForm::kAsIs) {
      fields.push_back(field);
      columns.push_back(column);
      continue;
    }
    std::unique_ptr<internal::JsonValueWriter> writer;
    if (form == TextForm::kJson) {
      ARROW_ASSIGN_OR_RAISE(auto writers,
                            internal::MakeColumnWriters(arrow::Schema({field}), GeoInfo{},
                                                        internal::GeometryStyle::kWkt, "csv"));
      writer = std::move(writers[0]);
    }
    arrow::ArrayVector chunks;
    int64_t first_row = 0;
    for (const auto& chunk : column->chunks()) {
      const arrow::Array& storage = StorageOf(*chunk);
      Result<std::shared_ptr<arrow::Array>> text;
      if (geometry) {
        text = WkbArrayToWkt(storage);
        if (!text.ok()) {
          return InvalidArgument("Cannot write column '", field->name(),
                                 "' as csv: ", text.status().message());
        }
      } else if (form == TextForm::kJson) {
        writer->Bind(chunk);
        text = ToText(*chunk, [&](int64_t i, std::string* out) {
          Status st = writer->Append(i, out);
          return st.ok() ? st : internal::RowError(st, first_row + i, field->name(), "csv");
        });
      } else if (form == TextForm::kBase64) {
        text = ToText(storage, [&](int64_t i, std::string* out) {
          internal::AppendBase64(out, ViewOf(storage, i));
          return Status::OK();
        });
      } else {
        text = ToText(storage, [&](int64_t i, std::string* out) {
          out->append(ViewOf(storage, i));
          return Status::OK();
        });
      }
      ARROW_RETURN_NOT_OK(text.status());
      chunks.push_back(std::move(text).ValueUnsafe());
      first_row += chunk->length();
    }
    fields.push_back(arrow::field(field->name(), arrow::large_utf8()));
    columns.push_back(
        std::make_shared<arrow::ChunkedArray>(std::move(chunks), arrow::large_utf8()));
  }
  auto text_table =
      arrow::Table::Make(arrow::schema(std::move(fields)), std::move(columns), table.num_rows());

  auto options = arrow::csv::WriteOptions::Defaults();
  options.include_header = true;
  ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::BufferOutputStream::Create());
  Status st = arrow::csv::WriteCSV(*text_table, options, sink.get());
  if (!st.ok()) {
    return MakeError(
        KindOf(st), arrow::internal::JoinToString("Cannot write the table as csv: ", st.message()));
  }
  ARROW_ASSIGN_OR_RAISE(auto bytes, sink->Finish());
  return Encoded{std::move(bytes), media_type::kCsv};
}

}  // namespace terrafuse::encode

// `parquet`: Arrow's Parquet writer (zstd by default), with the Arrow schema stored so that
// types and schema metadata (GeoParquet `geo`, pandas) survive the round trip.
#include <arrow/io/memory.h>
#include <arrow/table.h>
#include <parquet/arrow/writer.h>
#include <parquet/exception.h>
#include <parquet/properties.h>

#include "terrafuse/encode/binary_format_internal.h"
#include "terrafuse/encode/encoder.h"

namespace terrafuse::encode {

namespace {

// Rows per row group: large enough for good compression, small enough that readers can
// skip row groups of a big result.
constexpr int64_t kRowGroupRows = 128 * 1024;

}  // namespace

Result<Encoded> EncodeParquet(const arrow::Table& table, const EncodeOptions& options) {
  using arrow::Compression;
  ARROW_ASSIGN_OR_RAISE(
      Compression::type codec,
      internal::ParseCompression(options.compression, "parquet",
                                 {Compression::ZSTD, Compression::SNAPPY, Compression::GZIP,
                                  Compression::LZ4, Compression::UNCOMPRESSED},
                                 Compression::ZSTD));
  ARROW_ASSIGN_OR_RAISE(auto schema, internal::SchemaWithGeoMetadata(table));
  auto with_metadata = arrow::Table::Make(schema, table.columns(), table.num_rows());

  parquet::WriterProperties::Builder builder;
  builder.compression(codec);
  if (options.compression_level) builder.compression_level(*options.compression_level);
  auto properties = builder.build();
  auto arrow_properties = parquet::ArrowWriterProperties::Builder().store_schema()->build();

  ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::BufferOutputStream::Create());
  Status st;
  try {
    st = parquet::arrow::WriteTable(*with_metadata, arrow::default_memory_pool(), sink,
                                    kRowGroupRows, properties, arrow_properties);
  } catch (const parquet::ParquetException& e) {
    st = Status::Invalid(e.what());
  }
  if (!st.ok()) {
    return MakeError(KindOf(st), arrow::internal::JoinToString(
                                     "Cannot write the table as parquet: ", st.message()));
  }
  ARROW_ASSIGN_OR_RAISE(auto bytes, sink->Finish());
  return Encoded{std::move(bytes), media_type::kParquet};
}

}  // namespace terrafuse::encode

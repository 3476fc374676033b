// `feather`: Feather v2, which is the Arrow IPC file format (lz4 by default, as pyarrow).
#include <arrow/io/memory.h>
#include <arrow/ipc/writer.h>
#include <arrow/table.h>

#include "terrafuse/encode/binary_format_internal.h"
#include "terrafuse/encode/encoder.h"

namespace terrafuse::encode {

Result<Encoded> EncodeFeather(const arrow::Table& table, const EncodeOptions& options) {
  using arrow::Compression;
  ARROW_ASSIGN_OR_RAISE(Compression::type codec,
                        internal::ParseCompression(
                            options.compression, "feather",
                            {Compression::LZ4_FRAME, Compression::ZSTD, Compression::UNCOMPRESSED},
                            Compression::LZ4_FRAME));
  ARROW_ASSIGN_OR_RAISE(auto schema, internal::SchemaWithGeoMetadata(table));
  auto write_options = arrow::ipc::IpcWriteOptions::Defaults();
  if (codec != Compression::UNCOMPRESSED) {
    ARROW_ASSIGN_OR_RAISE(
        write_options.codec,
        arrow::util::Codec::Create(
            codec, options.compression_level.value_or(arrow::util::kUseDefaultCompressionLevel)));
  }
  ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::BufferOutputStream::Create());
  ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeFileWriter(sink, schema, write_options));
  // The table's own schema may lack the `geo` metadata just added: write it under ours.
  auto with_metadata = arrow::Table::Make(schema, table.columns(), table.num_rows());
  ARROW_RETURN_NOT_OK(writer->WriteTable(*with_metadata));
  ARROW_RETURN_NOT_OK(writer->Close());
  ARROW_ASSIGN_OR_RAISE(auto bytes, sink->Finish());
  return Encoded{std::move(bytes), media_type::kFeather};
}

}  // namespace terrafuse::encode

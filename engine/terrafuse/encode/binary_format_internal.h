// What the binary table formats (parquet, feather) share: codec names and keeping the
// geometry columns described by GeoParquet `geo` metadata.
#pragma once

#include <arrow/table.h>
#include <arrow/util/compression.h>

#include <memory>
#include <string_view>
#include <vector>

#include "terrafuse/common/status.h"

namespace terrafuse::encode::internal {

/// Returns the codec called `name` ("zstd", "snappy", "lz4", "none", ...), which must be one
/// of `allowed`; empty `name` gives `fallback`. InvalidArgument names the allowed codecs.
Result<arrow::Compression::type> ParseCompression(
    std::string_view name, std::string_view format,
    const std::vector<arrow::Compression::type>& allowed, arrow::Compression::type fallback);

/// Returns `table`'s schema, with GeoParquet `geo` metadata added when the table has
/// geometry columns marked only by GeoArrow extension metadata.
Result<std::shared_ptr<arrow::Schema>> SchemaWithGeoMetadata(const arrow::Table& table);

}  // namespace terrafuse::encode::internal

// Reading an ingested table (spec/table-format.md) back: the chunk metadata in `_sample`,
// one chunk (= one row group), and everything that meets a bounding box, reading only the
// row groups whose chunk box meets it and then filtering rows exactly.
#pragma once

#include <arrow/filesystem/filesystem.h>
#include <arrow/table.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "terrafuse/common/status.h"

namespace terrafuse::ingest {

/// One row per chunk: file_id, chunk_id, bbox_minx, bbox_miny, bbox_maxx, bbox_maxy (and
/// whatever else the writer stored), decoded from `<table>/_sample`'s `fused:_metadata`.
Result<std::shared_ptr<arrow::Table>> ReadChunksMetadata(std::shared_ptr<arrow::fs::FileSystem> fs,
                                                         const std::string& table);

/// Row group `chunk_id` of `<table>/<file_id>.parquet`; `columns` empty reads all.
Result<std::shared_ptr<arrow::Table>> ReadChunk(std::shared_ptr<arrow::fs::FileSystem> fs, const std::string& table,
                                                const std::string& file_id, int64_t chunk_id,
                                                const std::vector<std::string>& columns);

struct ReadStats {
  int64_t chunks_total = 0;
  int64_t chunks_read = 0;  // row groups decoded: their box and some row's bbox met the bounds
  int64_t rows_read = 0;
};

/// The rows whose geometry intersects `bounds` = (minx, miny, maxx, maxy). Reads only the
/// chunks whose box meets `bounds`, of those only the row groups where the bbox covering
/// column has a row meeting it, then keeps rows exactly (bbox test, then GEOS for
/// non-point geometries that are not inside the box). `columns` empty reads all; the
/// geometry column is always returned.
Result<std::shared_ptr<arrow::Table>> ReadTable(std::shared_ptr<arrow::fs::FileSystem> fs, const std::string& table,
                                                const std::array<double, 4>& bounds,
                                                const std::vector<std::string>& columns, ReadStats* stats = nullptr);

}  // namespace terrafuse::ingest

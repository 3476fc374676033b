// fused.ingest in the engine: stream a table in batches, geo-partition it and write the
// Fused table layout (spec/table-format.md): <file_id>.parquet data files with one row group
// per chunk, GeoParquet 1.1 `geo` metadata with a bbox covering column, lz4, and `_sample`
// carrying `fused:format_version = "5"` and `fused:_metadata`.
//
// Memory is bounded by `memory_budget`, whatever the input's size: pass 1 streams the input
// once, spilling the rows to a local Arrow IPC file and keeping a bounded deterministic
// sample of their centroids (every row while it fits); pass 2 builds the KD-tree on the
// sample; pass 3 reads the spill once more, places each row with the tree's cuts and
// appends it to a bucket file of whole chunks; pass 4 writes the table a bucket at a time.
#pragma once

#include <arrow/filesystem/filesystem.h>
#include <arrow/record_batch.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "terrafuse/common/status.h"

namespace terrafuse::storage {
struct StorageConfig;
}  // namespace terrafuse::storage

namespace terrafuse::ingest {

struct IngestOptions {
  std::string partitioning_method = "rows";  // rows | area | length | coords
  std::optional<double> max_per_file;        // None: 1/10 of the total
  std::optional<double> max_per_chunk;       // None: total/target_num_chunks, else 1/100
  int64_t target_num_chunks = 0;             // 0: not given
  double max_width_ratio = 2;
  double max_height_ratio = 2;
  std::string split_method = "mean";   // mean | median
  std::string force_utm = "chunk";     // file | chunk | "" (None)
  bool split_identical_centroids = true;
  std::string subdivide_method;        // "" | area
  std::optional<double> subdivide_start;
  std::optional<double> subdivide_stop;
  std::string geometry_column;         // WKB column; "" = from `geo` metadata, else "geometry"
  std::string lon_column, lat_column;  // build points from these instead
  bool drop_out_of_bounds = false;
  bool overwrite = false;
  std::string partitioning_schema_input;  // path (same file system) of an earlier table
  // lz4 (Parquet's LZ4_RAW): ~2 s less CPU per 10 M points than zstd to write, row-centred
  // reads 1.5-3x faster; tables ~25% bigger (docs/ingest.md, "The codec").
  std::string compression = "zstd";       // zstd | lz4 | snappy | gzip | none
  std::optional<int> compression_level;   // zstd 1..22, gzip 1..9; unset: the codec's default
  std::string spill_dir;                  // local directory; "" = the system temp dir
  int64_t memory_budget = 0;              // bytes; 0 = TERRAFUSE_INGEST_MEMORY, else RAM/4
  std::string crs_projjson;               // written as the `geo` crs; "" = omitted (OGC:CRS84)
};

/// Read by another thread while Ingest runs (the progress bar); `cancel` stops it.
struct IngestProgress {
  std::atomic<int64_t> rows_total{-1};  // -1 when unknown
  std::atomic<int64_t> rows_read{0};
  std::atomic<int64_t> rows_written{0};
  std::atomic<bool> cancel{false};
};

struct IngestResult {
  int64_t num_rows = 0;
  int32_t num_files = 0;
  int64_t num_chunks = 0;
  int64_t rows_dropped = 0;  // drop_out_of_bounds
};

/// Ingests `input` into the table directory `output` on `fs`. The table appears only when
/// complete (written beside it, then moved); an existing `output` is replaced only with
/// `overwrite`.
Result<IngestResult> Ingest(std::shared_ptr<arrow::RecordBatchReader> input,
                            std::shared_ptr<arrow::fs::FileSystem> fs, const std::string& output,
                            const IngestOptions& options, IngestProgress* progress = nullptr);

struct InputOptions {
  std::string format;                // parquet | csv | "" (by file suffix)
  std::vector<std::string> columns;  // load only these ("" = all)
  char csv_delimiter = ',';
  int64_t batch_bytes = 64 << 20;    // about this much data per batch (at most 64 k rows)
};

/// The ingest's memory budget in bytes: `option` when > 0, else the environment variable
/// TERRAFUSE_INGEST_MEMORY (bytes, or with a K/KB/M/MB/G/GB suffix), else 1/4 of the RAM.
Result<int64_t> MemoryBudget(int64_t option);

/// Opens Parquet or CSV files as one stream of batches. All files must share one schema;
/// `total_rows` is set when known from metadata (Parquet), else -1.
Result<std::shared_ptr<arrow::RecordBatchReader>> OpenInput(std::shared_ptr<arrow::fs::FileSystem> fs,
                                                           const std::vector<std::string>& paths,
                                                           const InputOptions& options,
                                                           int64_t* total_rows = nullptr);

/// A file system and the path in it for a local path, file://, fd:// or s3:// URL, through
/// the storage layer (so fd:// means the same place as in the files API, root-contained).
Result<std::pair<std::shared_ptr<arrow::fs::FileSystem>, std::string>> ResolvePath(
    const std::string& url, const storage::StorageConfig& config);

}  // namespace terrafuse::ingest

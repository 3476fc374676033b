// fused._core.ingest: the partitioner and table reader (engine/terrafuse/ingest/), wrapped by
// python/fused/_ingest.py and python/fused/_table.py. Inputs arrive as file paths or an
// Arrow C stream; tables leave as Arrow C stream capsules (zero-copy into pyarrow).
#include <arrow/c/abi.h>
#include <arrow/c/bridge.h>
#include <arrow/record_batch.h>
#include <arrow/table.h>
#include <nanobind/stl/array.h>
#include <nanobind/stl/map.h>

#include "binding_core.h"
#include "terrafuse/ingest/ingest.h"
#include "terrafuse/storage/file_system.h"
#include "terrafuse/ingest/table_reader.h"

namespace terrafuse::bindings {

namespace {

using ingest::IngestOptions;
using ingest::IngestProgress;

std::shared_ptr<arrow::RecordBatchReader> ImportStream(nb::handle data) {
  if (!nb::hasattr(data, "__arrow_c_stream__")) {
    throw StatusError(InvalidArgument("ingest input must be an Arrow table or reader (__arrow_c_stream__), got '",
                                      nb::type_name(data.type()).c_str(), "'"));
  }
  nb::object capsule = data.attr("__arrow_c_stream__")();
  auto* stream = static_cast<ArrowArrayStream*>(PyCapsule_GetPointer(capsule.ptr(), "arrow_array_stream"));
  if (!stream) throw nb::python_error();
  return ValueOrThrow(arrow::ImportRecordBatchReader(stream));
}

// A PyCapsule "arrow_array_stream" holding `table`; python wraps it for pyarrow.
nb::object ExportTable(std::shared_ptr<arrow::Table> table) {
  auto* stream = new ArrowArrayStream;
  auto reader = std::make_shared<arrow::TableBatchReader>(std::move(table));
  Status st = arrow::ExportRecordBatchReader(reader, stream);
  if (!st.ok()) {
    delete stream;
    ThrowIfError(st);
  }
  PyObject* capsule = PyCapsule_New(stream, "arrow_array_stream", [](PyObject* cap) {
    auto* s = static_cast<ArrowArrayStream*>(PyCapsule_GetPointer(cap, "arrow_array_stream"));
    if (s->release) s->release(s);
    delete s;
  });
  return nb::steal(capsule);
}

template <typename T>
std::optional<T> Opt(const nb::dict& d, const char* key) {
  if (!d.contains(key) || d[key].is_none()) return std::nullopt;
  return nb::cast<T>(d[key]);
}

// Options come as a dict of the engine's names (the SDK maps Fused's parameter names).
IngestOptions ToOptions(const nb::dict& d) {
  static const char* kKnown[] = {"partitioning_method", "max_per_file", "max_per_chunk", "target_num_chunks",
                                 "max_width_ratio", "max_height_ratio", "split_method", "force_utm",
                                 "split_identical_centroids", "subdivide_method", "subdivide_start",
                                 "subdivide_stop", "geometry_column", "lon_column", "lat_column",
                                 "drop_out_of_bounds", "overwrite", "partitioning_schema_input",
                                 "compression", "compression_level", "spill_dir", "crs_projjson", "memory_budget"};
  for (auto [k, v] : d) {
    std::string key = nb::cast<std::string>(k);
    if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown)) {
      throw StatusError(InvalidArgument("unknown ingest option '", key, "'"));
    }
  }
  IngestOptions o;
  if (auto v = Opt<std::string>(d, "partitioning_method")) o.partitioning_method = *v;
  o.max_per_file = Opt<double>(d, "max_per_file");
  o.max_per_chunk = Opt<double>(d, "max_per_chunk");
  if (auto v = Opt<int64_t>(d, "target_num_chunks")) o.target_num_chunks = *v;
  if (auto v = Opt<double>(d, "max_width_ratio")) o.max_width_ratio = *v;
  if (auto v = Opt<double>(d, "max_height_ratio")) o.max_height_ratio = *v;
  if (auto v = Opt<std::string>(d, "split_method")) o.split_method = *v;
  if (d.contains("force_utm")) o.force_utm = Opt<std::string>(d, "force_utm").value_or("");
  if (auto v = Opt<bool>(d, "split_identical_centroids")) o.split_identical_centroids = *v;
  if (auto v = Opt<std::string>(d, "subdivide_method")) o.subdivide_method = *v;
  o.subdivide_start = Opt<double>(d, "subdivide_start");
  o.subdivide_stop = Opt<double>(d, "subdivide_stop");
  if (auto v = Opt<std::string>(d, "geometry_column")) o.geometry_column = *v;
  if (auto v = Opt<std::string>(d, "lon_column")) o.lon_column = *v;
  if (auto v = Opt<std::string>(d, "lat_column")) o.lat_column = *v;
  if (auto v = Opt<bool>(d, "drop_out_of_bounds")) o.drop_out_of_bounds = *v;
  if (auto v = Opt<bool>(d, "overwrite")) o.overwrite = *v;
  if (auto v = Opt<std::string>(d, "partitioning_schema_input")) o.partitioning_schema_input = *v;
  if (d.contains("compression")) o.compression = Opt<std::string>(d, "compression").value_or("none");
  o.compression_level = Opt<int>(d, "compression_level");
  if (auto v = Opt<std::string>(d, "spill_dir")) o.spill_dir = *v;
  if (auto v = Opt<int64_t>(d, "memory_budget")) o.memory_budget = *v;
  if (auto v = Opt<std::string>(d, "crs_projjson")) o.crs_projjson = *v;
  return o;
}

nb::dict Ingest(nb::object input, std::vector<std::string> paths, std::string format,
                std::vector<std::string> columns, std::string output, nb::dict options_dict,
                const storage::StorageConfig& storage, IngestProgress* progress) {
  IngestOptions options = ToOptions(options_dict);
  std::shared_ptr<arrow::RecordBatchReader> reader;
  if (!input.is_none()) reader = ImportStream(input);
  Result<ingest::IngestResult> result;
  {
    nb::gil_scoped_release release;
    result = [&]() -> Result<ingest::IngestResult> {
      ARROW_ASSIGN_OR_RAISE(auto out, ingest::ResolvePath(output, storage));
      if (!options.partitioning_schema_input.empty()) {
        ARROW_ASSIGN_OR_RAISE(auto schema_in, ingest::ResolvePath(options.partitioning_schema_input, storage));
        options.partitioning_schema_input = schema_in.second;
      }
      if (!reader) {
        if (paths.empty()) return InvalidArgument("ingest needs an input");
        ARROW_ASSIGN_OR_RAISE(auto first, ingest::ResolvePath(paths[0], storage));
        std::vector<std::string> resolved;
        for (const auto& p : paths) {
          ARROW_ASSIGN_OR_RAISE(auto r, ingest::ResolvePath(p, storage));
          resolved.push_back(r.second);
        }
        ingest::InputOptions in;
        in.format = format;
        in.columns = columns;
        ARROW_ASSIGN_OR_RAISE(int64_t budget, ingest::MemoryBudget(options.memory_budget));
        in.batch_bytes = budget / 32;  // a few batches are in memory at once
        int64_t total = -1;
        ARROW_ASSIGN_OR_RAISE(reader, ingest::OpenInput(first.first, resolved, in, &total));
        if (progress) progress->rows_total.store(total);
      }
      return ingest::Ingest(reader, out.first, out.second, options, progress);
    }();
  }
  auto r = ValueOrThrow(std::move(result));
  nb::dict d;
  d["num_rows"] = r.num_rows;
  d["num_files"] = r.num_files;
  d["num_chunks"] = r.num_chunks;
  d["rows_dropped"] = r.rows_dropped;
  return d;
}

template <typename F>
nb::object ReadWithGilReleased(F&& f) {
  Result<std::shared_ptr<arrow::Table>> table;
  {
    nb::gil_scoped_release release;
    table = f();
  }
  return ExportTable(ValueOrThrow(std::move(table)));
}

}  // namespace

void InitIngest(nb::module_& m) {
  nb::module_ g = m.def_submodule("ingest", "Geo-partitioned tables: fused.ingest and its readers.");
  nb::class_<IngestProgress>(g, "IngestProgress", "Counters of a running ingest, readable from another thread.")
      .def(nb::init<>())
      .def_prop_ro("rows_total", [](const IngestProgress& p) { return p.rows_total.load(); })
      .def_prop_ro("rows_read", [](const IngestProgress& p) { return p.rows_read.load(); })
      .def_prop_ro("rows_written", [](const IngestProgress& p) { return p.rows_written.load(); })
      .def("cancel", [](IngestProgress& p) { p.cancel.store(true); }, "Stop the ingest at the next batch.");
  g.def("ingest", &Ingest, "input"_a.none(), "paths"_a, "format"_a, "columns"_a, "output"_a, "options"_a,
        "storage"_a, "progress"_a.none() = nb::none(),
        nb::sig("def ingest(input: object | None, paths: list[str], format: str, columns: list[str], "
                "output: str, options: dict, storage: fused._core.StorageConfig, "
                "progress: IngestProgress | None = None) -> dict"),
        "Ingest an Arrow stream (`input`) or Parquet/CSV files (`paths`) into the table `output`.");
  g.def(
      "read_chunks_metadata",
      [](std::string table, const storage::StorageConfig& storage) {
        return ReadWithGilReleased([&]() -> Result<std::shared_ptr<arrow::Table>> {
          ARROW_ASSIGN_OR_RAISE(auto r, ingest::ResolvePath(table, storage));
          return ingest::ReadChunksMetadata(r.first, r.second);
        });
      },
      "table"_a, "storage"_a,
      nb::sig("def read_chunks_metadata(table: str, storage: fused._core.StorageConfig) -> object"),
      "The chunk metadata of a table as an Arrow stream capsule.");
  g.def(
      "read_chunk",
      [](std::string table, std::string file_id, int64_t chunk_id, std::vector<std::string> columns,
         const storage::StorageConfig& storage) {
        return ReadWithGilReleased([&]() -> Result<std::shared_ptr<arrow::Table>> {
          ARROW_ASSIGN_OR_RAISE(auto r, ingest::ResolvePath(table, storage));
          return ingest::ReadChunk(r.first, r.second, file_id, chunk_id, columns);
        });
      },
      "table"_a, "file_id"_a, "chunk_id"_a, "columns"_a, "storage"_a,
      nb::sig("def read_chunk(table: str, file_id: str, chunk_id: int, columns: list[str], "
              "storage: fused._core.StorageConfig) -> object"),
      "One chunk (row group) of a table as an Arrow stream capsule.");
  g.def(
      "read_table",
      [](std::string table, std::array<double, 4> bounds, std::vector<std::string> columns,
         const storage::StorageConfig& storage) {
        ingest::ReadStats stats;
        nb::object capsule = ReadWithGilReleased([&]() -> Result<std::shared_ptr<arrow::Table>> {
          ARROW_ASSIGN_OR_RAISE(auto r, ingest::ResolvePath(table, storage));
          return ingest::ReadTable(r.first, r.second, bounds, columns, &stats);
        });
        nb::dict d;
        d["chunks_total"] = stats.chunks_total;
        d["chunks_read"] = stats.chunks_read;
        d["rows_read"] = stats.rows_read;
        return nb::make_tuple(capsule, d);
      },
      "table"_a, "bounds"_a, "columns"_a, "storage"_a,
      nb::sig("def read_table(table: str, bounds: tuple[float, float, float, float], columns: list[str], "
              "storage: fused._core.StorageConfig) -> tuple[object, dict]"),
      "Rows meeting `bounds`, reading only the chunks that meet it; returns (capsule, stats).");
}

}  // namespace terrafuse::bindings

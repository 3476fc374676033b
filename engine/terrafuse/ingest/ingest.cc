#include "terrafuse/ingest/ingest.h"
#include "terrafuse/storage/file_system.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/filesystem/api.h>
#include <arrow/csv/api.h>
#include <arrow/io/api.h>
#include <arrow/ipc/api.h>
#include <arrow/util/base64.h>
#include <arrow/util/byte_size.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/schema.h>
#include <parquet/arrow/writer.h>
#include <parquet/properties.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_set>
#include <future>
#include <thread>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "terrafuse/ingest/geometry.h"
#include "terrafuse/ingest/partitioner.h"
#include "terrafuse/ingest/table_reader.h"

namespace terrafuse::ingest {

namespace {

using nlohmann::json;

Status Cancelled() { return MakeError(ErrorKind::kInvalidArgument, "ingest cancelled"); }

std::string Trim(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

std::string Parent(const std::string& path) {
  auto pos = path.rfind('/');
  return pos == std::string::npos ? std::string() : path.substr(0, pos);
}

std::string BaseName(const std::string& path) {
  auto pos = path.rfind('/');
  return pos == std::string::npos ? path : path.substr(pos + 1);
}

// A local scratch directory, removed with everything in it when the ingest ends.
class SpillDir {
 public:
  static Result<SpillDir> Make(const std::string& parent) {
    std::error_code ec;
    std::filesystem::path base = parent.empty() ? std::filesystem::temp_directory_path(ec) : std::filesystem::path(parent);
    std::string pattern = (base / "terrafuse-ingest-XXXXXX").string();
    if (!mkdtemp(pattern.data())) return ErrnoError(errno, "cannot create the ingest spill directory in", base.string());
    return SpillDir(pattern);
  }
  SpillDir(SpillDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  ~SpillDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  explicit SpillDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

struct GeoInput {
  std::string column;  // primary geometry column from `geo`
  std::string covering;  // bbox covering column to drop (recomputed)
  json crs;              // null when absent
};

GeoInput ParseGeo(const arrow::Schema& schema) {
  GeoInput out;
  auto md = schema.metadata();
  if (!md) return out;
  auto idx = md->FindKey("geo");
  if (idx < 0) return out;
  json geo = json::parse(md->value(idx), nullptr, /*allow_exceptions=*/false);
  if (!geo.is_object()) return out;
  out.column = geo.value("primary_column", "");
  if (geo.contains("columns") && geo["columns"].contains(out.column)) {
    const json& col = geo["columns"][out.column];
    if (col.contains("crs")) out.crs = col["crs"];
    if (col.contains("covering") && col["covering"].contains("bbox")) {
      const json& xmin = col["covering"]["bbox"]["xmin"];
      if (xmin.is_array() && !xmin.empty() && xmin[0].is_string()) out.covering = xmin[0];
    }
  }
  return out;
}

bool IsWgs84(const json& crs) {
  if (crs.is_null()) return true;  // absent/unknown: GeoParquet's default is OGC:CRS84
  if (crs.is_object() && crs.contains("id")) {
    const json& id = crs["id"];
    std::string auth = id.value("authority", "");
    std::string code = id["code"].is_string() ? id["code"].get<std::string>() : id["code"].dump();
    return (auth == "EPSG" && code == "4326") || (auth == "OGC" && code == "CRS84");
  }
  return false;
}

// The encoding of a number column by its type: floats split into byte streams, 64-bit
// integers and times as deltas (see WriterProps); nullopt for other types.
std::optional<parquet::Encoding::type> NumberEncoding(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::FLOAT:
    case arrow::Type::DOUBLE:
      return parquet::Encoding::BYTE_STREAM_SPLIT;
    case arrow::Type::INT64:
    case arrow::Type::TIMESTAMP:
    case arrow::Type::DATE64:
    case arrow::Type::TIME64:
    case arrow::Type::DURATION:
      return parquet::Encoding::DELTA_BINARY_PACKED;
    default:
      return std::nullopt;
  }
}

// Rows of the input that RepeatingColumns looks at: the first ones, a fixed number, so the
// choice (and the table) does not depend on the batch size or the memory budget.
constexpr int64_t kProbeRows = 8192;

// The float, double and 64-bit integer columns whose values repeat in `probe` (at most one
// distinct value in two rows, e.g. a speed rounded to 0.01): their dictionary is small and
// decodes faster than split or delta-coded values. Others keep the encodings WriterProps
// gives them by type.
Result<std::set<std::string>> RepeatingColumns(const std::shared_ptr<arrow::Schema>& schema,
                                               const arrow::RecordBatchVector& probe, int geometry_index) {
  std::set<std::string> out;
  ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches(schema, probe));
  if (table->num_rows() < 1024) return out;  // too few rows to tell
  for (int i = 0; i < schema->num_fields(); ++i) {
    if (i == geometry_index || !NumberEncoding(*schema->field(i)->type())) continue;
    // Distinct bit patterns (what a dictionary keys on), counted up to half the rows.
    int width = schema->field(i)->type()->byte_width();
    std::unordered_set<uint64_t> seen;
    int64_t limit = table->num_rows() / 2;
    for (const auto& piece : table->column(i)->chunks()) {
      const uint8_t* values = piece->data()->buffers[1]->data() + piece->offset() * width;
      for (int64_t r = 0; r < piece->length() && static_cast<int64_t>(seen.size()) <= limit; ++r) {
        if (piece->IsNull(r)) continue;
        uint64_t bits = 0;
        std::memcpy(&bits, values + r * width, width);
        seen.insert(bits);
      }
    }
    if (static_cast<int64_t>(seen.size()) <= limit) out.insert(schema->field(i)->name());
  }
  return out;
}

// A fixed pseudo-random 64-bit hash (splitmix64): picks the sample, the same every run.
uint64_t Mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

// What pass 1 keeps: totals, a bounded sample of the rows' centroids, and the rows: in
// memory while they fit in a share of the budget (`held`), else all in the spill file.
struct Collected {
  std::shared_ptr<arrow::Schema> schema;  // of the rows kept (= output without bbox)
  int geometry_index = -1;
  arrow::RecordBatchVector held;  // the rows, unless spilled
  std::set<std::string> repeating;  // number columns whose values repeat (RepeatingColumns)
  int64_t held_bytes = 0;
  bool spilled = false;
  int64_t num_rows = 0;     // rows kept; a row's number is its position among them
  double total_weight = 0;  // of the partitioning measure, over all rows
  int64_t dropped = 0;
  // The sample: rows whose hash has its `level` low bits zero, about 2^-level of them. It is
  // every row (level 0) until it outgrows `sample_cap`; then it halves, as often as needed.
  std::vector<double> x, y, weight;
  std::vector<int64_t> row;
  int level = 0;
  int64_t sample_cap = INT64_MAX;

  bool InSample(int64_t r, int at_level) const { return (Mix(r) & ((uint64_t{1} << at_level) - 1)) == 0; }

  void Add(double cx, double cy, double w) {
    int64_t r = num_rows++;
    total_weight += w;
    if (!InSample(r, level)) return;
    x.push_back(cx);
    y.push_back(cy);
    weight.push_back(w);
    row.push_back(r);
    while (static_cast<int64_t>(row.size()) > sample_cap) {
      ++level;
      size_t keep = 0;
      for (size_t i = 0; i < row.size(); ++i) {
        if (!InSample(row[i], level)) continue;
        x[keep] = x[i], y[keep] = y[i], weight[keep] = weight[i], row[keep] = row[i];
        ++keep;
      }
      x.resize(keep), y.resize(keep), weight.resize(keep), row.resize(keep);
    }
  }
};

enum class Method { kRows, kArea, kLength, kCoords };

Result<Method> ParseMethod(const std::string& m) {
  if (m == "rows") return Method::kRows;
  if (m == "area") return Method::kArea;
  if (m == "length") return Method::kLength;
  if (m == "coords") return Method::kCoords;
  return InvalidArgument("partitioning_method must be one of 'rows', 'area', 'length', 'coords', got '", m, "'");
}

Result<std::shared_ptr<arrow::Array>> ToFloat64(const std::shared_ptr<arrow::Array>& a, const std::string& name) {
  if (!arrow::is_numeric(a->type_id())) {
    return InvalidArgument("lonlat column '", name, "' must be numeric, got ", a->type()->ToString());
  }
  ARROW_ASSIGN_OR_RAISE(arrow::Datum d, arrow::compute::Cast(a, arrow::float64()));
  return d.make_array();
}

class Pass1 {
 public:
  Pass1(const IngestOptions& options, Method method, IngestProgress* progress)
      : options_(options), method_(method), progress_(progress) {}

  Status Run(arrow::RecordBatchReader* reader, const std::string& spill_path, int64_t hold_limit, Collected* out) {
    auto in_schema = reader->schema();
    GeoInput geo = ParseGeo(*in_schema);
    if (!IsWgs84(geo.crs)) {
      return InvalidArgument("the input CRS is not WGS84 (EPSG:4326 / OGC:CRS84): reproject it first ",
                             "(fused.ingest does this for GeoDataFrames and GDAL inputs)");
    }
    bool lonlat = !options_.lon_column.empty();
    std::string geom_name = options_.geometry_column;
    if (geom_name.empty()) geom_name = geo.column.empty() ? "geometry" : geo.column;
    std::vector<int> keep;  // input columns copied to the output
    for (int i = 0; i < in_schema->num_fields(); ++i) {
      const auto& f = in_schema->field(i);
      bool is_bbox = f->name() == (geo.covering.empty() ? "bbox" : geo.covering) &&
                     f->type()->id() == arrow::Type::STRUCT;
      if (!lonlat && f->name() == geom_name) continue;
      if (is_bbox) continue;
      if (lonlat && f->name() == "geometry") {
        return InvalidArgument("the input has a 'geometry' column and lonlat_cols: drop one of them");
      }
      keep.push_back(i);
    }
    if (lonlat) {
      for (const auto* col : {&options_.lon_column, &options_.lat_column}) {
        if (in_schema->GetFieldIndex(*col) < 0) {
          return InvalidArgument("lonlat_cols: column '", *col, "' not found; the input has columns ",
                                 ColumnList(*in_schema));
        }
      }
      geom_name = "geometry";
    } else {
      int gi = in_schema->GetFieldIndex(geom_name);
      if (gi < 0) {
        return InvalidArgument("no geometry column '", geom_name,
                               "' in the input; pass lonlat_cols=(lon, lat) for point data. Columns: ",
                               ColumnList(*in_schema));
      }
      auto t = in_schema->field(gi)->type()->id();
      if (t != arrow::Type::BINARY && t != arrow::Type::LARGE_BINARY && t != arrow::Type::BINARY_VIEW) {
        return InvalidArgument("geometry column '", geom_name, "' must hold WKB (binary), got ",
                               in_schema->field(gi)->type()->ToString());
      }
    }
    arrow::FieldVector fields;
    for (int i : keep) fields.push_back(in_schema->field(i));
    fields.push_back(arrow::field(geom_name, arrow::binary()));
    out->geometry_index = static_cast<int>(fields.size()) - 1;
    out->schema = arrow::schema(fields);

    // The rows stay in memory up to `hold_limit` bytes (no disk pass for an input that fits);
    // past it, those held and all later ones go to the spill file.
    std::shared_ptr<arrow::io::OutputStream> sink;
    std::shared_ptr<arrow::ipc::RecordBatchWriter> writer;
    auto keep_rows = [&](const std::shared_ptr<arrow::RecordBatch>& rows) -> Status {
      if (!writer) {
        int64_t bytes = arrow::util::TotalBufferSize(*rows);
        if (out->held_bytes + bytes <= hold_limit) {
          out->held.push_back(rows);
          out->held_bytes += bytes;
          return Status::OK();
        }
        ARROW_ASSIGN_OR_RAISE(sink, arrow::io::FileOutputStream::Open(spill_path));
        ARROW_ASSIGN_OR_RAISE(writer, arrow::ipc::MakeFileWriter(sink, out->schema));
        for (const auto& held : out->held) ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(*held));
        out->held.clear();
        out->held_bytes = 0;
        out->spilled = true;
      }
      return writer->WriteRecordBatch(*rows);
    };
    if (options_.subdivide_method == "area") {
      ARROW_ASSIGN_OR_RAISE(geos_, GeosOps::Make());
    }

    // Reading the next batch (decoding the input) and building its points runs on a helper
    // thread while this one scans and spills the current batch.
    struct Fetched {
      std::shared_ptr<arrow::RecordBatch> batch;
      std::shared_ptr<arrow::Array> points;  // lonlat_cols
    };
    auto fetch = [&](int64_t first_row) -> Result<Fetched> {
      Fetched f;
      ARROW_RETURN_NOT_OK(reader->ReadNext(&f.batch));
      if (!f.batch) return f;
      if (!f.batch->schema()->Equals(*in_schema, /*check_metadata=*/false)) {
        return InvalidArgument("mixed schemas: a batch has schema ", f.batch->schema()->ToString(),
                               " instead of ", in_schema->ToString());
      }
      if (lonlat) {
        ARROW_ASSIGN_OR_RAISE(f.points, BuildPoints(*f.batch, first_row));
      }
      return f;
    };
    int64_t input_row = 0;
    arrow::RecordBatchVector probe;  // the first kept rows, to tell which columns repeat
    int64_t probe_rows = 0;
    std::future<Result<Fetched>> ahead = std::async(std::launch::async, fetch, int64_t{0});
    while (true) {
      Result<Fetched> fetched = ahead.get();
      if (!fetched.ok()) return fetched.status();
      std::shared_ptr<arrow::RecordBatch> batch = fetched->batch;
      if (!batch) break;
      ahead = std::async(std::launch::async, fetch, input_row + batch->num_rows());
      if (progress_ && progress_->cancel.load()) return Cancelled();  // (~future waits for the helper)
      std::shared_ptr<arrow::Array> geometry;
      if (lonlat) {
        geometry = fetched->points;
      } else {
        geometry = batch->GetColumnByName(geom_name);
        if (geometry->type_id() != arrow::Type::BINARY) {
          ARROW_ASSIGN_OR_RAISE(arrow::Datum d, arrow::compute::Cast(geometry, arrow::binary()));
          geometry = d.make_array();
        }
      }
      std::vector<int64_t> take;  // rows of the batch to keep (repeated for subdivided rows)
      ARROW_ASSIGN_OR_RAISE(geometry, ScanBatch(static_cast<const arrow::BinaryArray&>(*geometry),
                                                input_row, &take, out));
      arrow::ArrayVector columns;
      for (int i : keep) columns.push_back(batch->column(i));
      std::shared_ptr<arrow::RecordBatch> kept;
      if (static_cast<int64_t>(take.size()) == batch->num_rows() && identity_) {
        columns.push_back(geometry);
        kept = arrow::RecordBatch::Make(out->schema, batch->num_rows(), columns);
      } else {
        arrow::Int64Builder ib;
        ARROW_RETURN_NOT_OK(ib.AppendValues(take));
        ARROW_ASSIGN_OR_RAISE(auto indices, ib.Finish());
        auto partial = arrow::RecordBatch::Make(
            arrow::schema(arrow::FieldVector(fields.begin(), fields.end() - 1)), batch->num_rows(), columns);
        ARROW_ASSIGN_OR_RAISE(arrow::Datum taken, arrow::compute::Take(partial, indices));
        auto cols = taken.record_batch()->columns();
        cols.push_back(geometry);
        kept = arrow::RecordBatch::Make(out->schema, static_cast<int64_t>(take.size()), cols);
      }
      if (kept->num_rows() > 0) ARROW_RETURN_NOT_OK(keep_rows(kept));
      if (probe_rows < kProbeRows && kept->num_rows() > 0) {
        probe.push_back(kept->Slice(0, std::min(kept->num_rows(), kProbeRows - probe_rows)));
        probe_rows += probe.back()->num_rows();
      }
      input_row += batch->num_rows();
      if (progress_) progress_->rows_read.store(input_row);
    }
    ARROW_ASSIGN_OR_RAISE(out->repeating, RepeatingColumns(out->schema, probe, out->geometry_index));
    if (!writer) return Status::OK();
    ARROW_RETURN_NOT_OK(writer->Close());
    return sink->Close();
  }

 private:
  static std::string ColumnList(const arrow::Schema& schema) {
    std::string s = "[";
    for (int i = 0; i < schema.num_fields(); ++i) s += (i ? ", '" : "'") + schema.field(i)->name() + "'";
    return s + "]";
  }

  Result<std::shared_ptr<arrow::Array>> BuildPoints(const arrow::RecordBatch& batch, int64_t first_row) {
    ARROW_ASSIGN_OR_RAISE(auto lon, ToFloat64(batch.GetColumnByName(options_.lon_column), options_.lon_column));
    ARROW_ASSIGN_OR_RAISE(auto lat, ToFloat64(batch.GetColumnByName(options_.lat_column), options_.lat_column));
    const auto& lons = static_cast<const arrow::DoubleArray&>(*lon);
    const auto& lats = static_cast<const arrow::DoubleArray&>(*lat);
    arrow::BinaryBuilder builder;
    ARROW_RETURN_NOT_OK(builder.Reserve(batch.num_rows()));
    ARROW_RETURN_NOT_OK(builder.ReserveData(batch.num_rows() * 21));
    std::string wkb;
    for (int64_t i = 0; i < batch.num_rows(); ++i) {
      if (lons.IsNull(i) || lats.IsNull(i)) {
        return InvalidArgument("row ", first_row + i, ": lonlat_cols value is null (", options_.lon_column, ", ",
                               options_.lat_column, ")");
      }
      wkb.clear();
      AppendPointWkb(lons.Value(i), lats.Value(i), &wkb);
      builder.UnsafeAppend(wkb);
    }
    return builder.Finish();
  }

  // Scans every geometry: centroid, weight, bounds check, subdivision. Returns the
  // geometry column of the kept rows and fills `take` with their batch row indices.
  Result<std::shared_ptr<arrow::Array>> ScanBatch(const arrow::BinaryArray& geoms, int64_t first_row,
                                                  std::vector<int64_t>* take, Collected* out) {
    identity_ = true;
    std::optional<arrow::BinaryBuilder> rebuilt;
    GeomInfo info;
    for (int64_t i = 0; i < geoms.length(); ++i) {
      int64_t row = first_row + i;
      if (geoms.IsNull(i)) return InvalidArgument("row ", row, ": the geometry is null");
      std::string_view wkb = geoms.GetView(i);
      Status st = ScanWkb(wkb, &info);
      if (!st.ok()) return InvalidArgument("row ", row, ": ", st.message());
      if (info.empty()) return InvalidArgument("row ", row, ": the geometry is empty");
      if (!(info.minx >= -180 && info.maxx <= 180 && info.miny >= -90 && info.maxy <= 90)) {
        if (options_.drop_out_of_bounds) {
          ++out->dropped;
          SwitchToRebuilt(geoms, i, &rebuilt);
          continue;
        }
        return InvalidArgument("row ", row, ": coordinates outside WGS84 bounds (", info.minx, ", ", info.miny,
                               ", ", info.maxx, ", ", info.maxy,
                               "); reproject to EPSG:4326 or pass drop_out_of_bounds=True");
      }
      if (geos_ && options_.subdivide_start && info.area > *options_.subdivide_start) {
        ARROW_ASSIGN_OR_RAISE(auto pieces, geos_->Subdivide(wkb, *options_.subdivide_stop));
        SwitchToRebuilt(geoms, i, &rebuilt);
        for (const std::string& piece : pieces) {
          GeomInfo pinfo;
          ARROW_RETURN_NOT_OK(ScanWkb(piece, &pinfo));
          if (pinfo.empty()) continue;
          Keep(pinfo, out);
          take->push_back(i);
          ARROW_RETURN_NOT_OK(rebuilt->Append(piece));
        }
        continue;
      }
      Keep(info, out);
      take->push_back(i);
      if (rebuilt) ARROW_RETURN_NOT_OK(rebuilt->Append(wkb));
    }
    if (!rebuilt) return std::make_shared<arrow::BinaryArray>(geoms.data());
    return rebuilt->Finish();
  }

  // From the first dropped or split row on, geometries are copied into a new array.
  void SwitchToRebuilt(const arrow::BinaryArray& geoms, int64_t upto, std::optional<arrow::BinaryBuilder>* rebuilt) {
    identity_ = false;
    if (*rebuilt) return;
    rebuilt->emplace();
    for (int64_t j = 0; j < upto; ++j) (void)(*rebuilt)->Append(geoms.GetView(j));
  }

  void Keep(const GeomInfo& info, Collected* out) {
    double w = 1;
    switch (method_) {
      case Method::kRows:
        break;
      case Method::kArea:
        w = info.area;
        break;
      case Method::kLength:
        w = info.length;
        break;
      case Method::kCoords:
        w = static_cast<double>(info.num_coords);
        break;
    }
    out->Add((info.minx + info.maxx) / 2, (info.miny + info.maxy) / 2, w);
  }

  const IngestOptions& options_;
  Method method_;
  IngestProgress* progress_;
  std::unique_ptr<GeosOps> geos_;
  bool identity_ = true;
};

// partitioning_schema_input: the boxes of an earlier table in its (file, chunk) order; a
// row goes to the box that holds its centroid (the nearest box when none does).
struct Boxes {
  std::vector<double> x0, y0, x1, y1;
  std::vector<int64_t> file;  // the earlier table's file of each box (runs of equal values)

  int64_t Find(double x, double y) const {
    double best = HUGE_VAL;
    int64_t best_box = 0;
    for (size_t b = 0; b < x0.size(); ++b) {
      double dx = std::max({x0[b] - x, 0.0, x - x1[b]});
      double dy = std::max({y0[b] - y, 0.0, y - y1[b]});
      double d = dx * dx + dy * dy;
      if (d < best) {
        best = d;
        best_box = static_cast<int64_t>(b);
        if (d == 0) break;
      }
    }
    return best_box;
  }
};

Result<Boxes> LoadBoxes(const arrow::Table& meta) {
  auto col = [&](const char* name) -> Result<std::shared_ptr<arrow::Array>> {
    auto chunked = meta.GetColumnByName(name);
    if (!chunked) return InvalidArgument("partitioning_schema_input has no '", name, "' column");
    ARROW_ASSIGN_OR_RAISE(auto combined, arrow::Concatenate(chunked->chunks()));
    ARROW_ASSIGN_OR_RAISE(arrow::Datum d, arrow::compute::Cast(combined, arrow::float64()));
    return d.make_array();
  };
  ARROW_ASSIGN_OR_RAISE(auto fid, col("file_id"));
  ARROW_ASSIGN_OR_RAISE(auto cid, col("chunk_id"));
  ARROW_ASSIGN_OR_RAISE(auto bx0, col("bbox_minx"));
  ARROW_ASSIGN_OR_RAISE(auto by0, col("bbox_miny"));
  ARROW_ASSIGN_OR_RAISE(auto bx1, col("bbox_maxx"));
  ARROW_ASSIGN_OR_RAISE(auto by1, col("bbox_maxy"));
  auto v = [](const std::shared_ptr<arrow::Array>& a) { return static_cast<const arrow::DoubleArray&>(*a).raw_values(); };
  const double *f = v(fid), *k = v(cid), *x0 = v(bx0), *y0 = v(by0), *x1 = v(bx1), *y1 = v(by1);
  int64_t nb = meta.num_rows();
  if (nb == 0) return InvalidArgument("partitioning_schema_input has no chunks");
  std::vector<int64_t> order(nb);
  for (int64_t i = 0; i < nb; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return std::make_pair(f[a], k[a]) < std::make_pair(f[b], k[b]);
  });
  Boxes boxes;
  int64_t file = -1;
  for (int64_t i = 0; i < nb; ++i) {
    int64_t b = order[i];
    boxes.x0.push_back(x0[b]);
    boxes.y0.push_back(y0[b]);
    boxes.x1.push_back(x1[b]);
    boxes.y1.push_back(y1[b]);
    if (i == 0 || f[b] != f[order[i - 1]]) ++file;
    boxes.file.push_back(file);
  }
  return boxes;
}

// The chunks in output order, before empty ones are dropped: the file of each (runs of
// equal values) and the rule placing a row (centroid, row number) in one.
struct Layout {
  std::vector<int64_t> chunk_file;
  std::function<int64_t(double, double, int64_t)> find;
  std::vector<int64_t> estimate;  // rows of each chunk, from the sample: plans the buckets
  std::vector<int32_t> chunk_of_row;  // when the sample was every row: each row's chunk, as `find` says
};

struct ChunkMeta {
  int32_t file_id, chunk_id;
  int64_t num_rows;
  double minx = HUGE_VAL, miny = HUGE_VAL, maxx = -HUGE_VAL, maxy = -HUGE_VAL;
};

json GeoMetadata(const std::string& geom, const std::set<std::string>& types, const double bbox[4],
                 const std::string& crs_projjson) {
  json col = {{"encoding", "WKB"},
              {"geometry_types", json(std::vector<std::string>(types.begin(), types.end()))},
              {"bbox", {bbox[0], bbox[1], bbox[2], bbox[3]}},
              {"covering",
               {{"bbox",
                 {{"xmin", {"bbox", "xmin"}}, {"ymin", {"bbox", "ymin"}}, {"xmax", {"bbox", "xmax"}},
                  {"ymax", {"bbox", "ymax"}}}}}}};
  if (!crs_projjson.empty()) col["crs"] = json::parse(crs_projjson, nullptr, /*allow_exceptions=*/false);
  return {{"version", "1.1.0"}, {"primary_column", geom}, {"columns", {{geom, col}}}};
}

uint32_t Interleave16(uint32_t x) {
  x = (x | (x << 8)) & 0x00FF00FF;
  x = (x | (x << 4)) & 0x0F0F0F0F;
  x = (x | (x << 2)) & 0x33333333;
  x = (x | (x << 1)) & 0x55555555;
  return x;
}

// Position of (x, y), each in [0, 2^16), along a Hilbert curve of order 16: the same values
// as the textbook loop over bits (Wikipedia's xy2d), computed without branches by a prefix
// scan over the bits (the public-domain formulation from threadlocalmutex.com): the loop's
// mispredicted branches cost ~90 ns a row.
uint32_t Hilbert16(uint32_t x, uint32_t y) {
  uint32_t A, B, C, D;
  {
    uint32_t a = x ^ y, b = 0xFFFF ^ a, c = 0xFFFF ^ (x | y), d = x & (y ^ 0xFFFF);
    A = a | (b >> 1);
    B = (a >> 1) ^ a;
    C = ((c >> 1) ^ (b & (d >> 1))) ^ c;
    D = ((a & (c >> 1)) ^ (d >> 1)) ^ d;
  }
  for (int s = 2; s <= 4; s *= 2) {
    uint32_t a = A, b = B, c = C, d = D;
    A = (a & (a >> s)) ^ (b & (b >> s));
    B = (a & (b >> s)) ^ (b & ((a ^ b) >> s));
    C ^= (a & (c >> s)) ^ (b & (d >> s));
    D ^= (b & (c >> s)) ^ ((a ^ b) & (d >> s));
  }
  {
    uint32_t c = C, d = D;
    C ^= (A & (c >> 8)) ^ (B & (d >> 8));
    D ^= (B & (c >> 8)) ^ ((A ^ B) & (d >> 8));
  }
  uint32_t a = C ^ (C >> 1), b = D ^ (D >> 1);
  uint32_t i0 = x ^ y, i1 = b | (0xFFFF ^ (i0 | a));
  return (Interleave16(i1) << 1) | Interleave16(i0);
}

// Rows per data page: a chunk (65,536 rows by default) is cut into pages small enough that
// a reader using the page index decodes little more than the rows that meet its box. At
// 10 M points, 2,048 read as fast as 1,024 (which costs ~1 s more CPU to write: zstd sets
// up per page) and faster than 512 or 4,096.
constexpr int64_t kRowsPerPage = 2048;


// The Parquet codec named by the ingest's `compression` option (validated before).
arrow::Compression::type CodecOf(const std::string& name) {
  if (name == "zstd") return arrow::Compression::ZSTD;
  if (name == "lz4") return arrow::Compression::LZ4;  // written as Parquet's LZ4_RAW
  if (name == "snappy") return arrow::Compression::SNAPPY;
  if (name == "gzip") return arrow::Compression::GZIP;
  return arrow::Compression::UNCOMPRESSED;
}

std::shared_ptr<parquet::WriterProperties> WriterProps(const IngestOptions& o, const std::string& geom,
                                                       const arrow::Schema& schema,
                                                       const std::set<std::string>& repeating) {
  // Geometry and bbox values are nearly all distinct: dictionary encoding only costs time,
  // and min/max statistics of WKB bytes mean nothing (the bbox columns carry them).
  // Dictionaries only for types whose values repeat in practice (strings, small integers,
  // booleans); floats, 64-bit integers and timestamps are mostly distinct, and a 65k-row
  // chunk of them never outgrows the dictionary page, so it would be built in vain.
  parquet::WriterProperties::Builder b;
  b.compression(CodecOf(o.compression))->max_row_group_length(INT64_MAX);
  // Unset: the codec's default level in Arrow, which pyarrow (so Fused's writer) uses too;
  // for zstd level 1, as small as level 3 at 10 M points (+0.2%) and ~0.7 s less CPU.
  if (o.compression_level) b.compression_level(*o.compression_level);
  b.disable_dictionary()->disable_statistics(geom);
  // Rows are in Hilbert order inside a chunk, so the page index (min/max of the bbox columns
  // per page, and where each page starts) lets a reader skip most pages of a chunk.
  b.max_rows_per_page(kRowsPerPage)->enable_write_page_index();
  // Encodings that leave zstd (or any codec) less to do and decode faster: floats split into
  // byte streams (the exponent bytes of nearby values compress; ~30% less decoding at 10 M
  // points), 64-bit integers and times as deltas. Both are read by pyarrow, GeoPandas and
  // DuckDB. Nested fields (the bbox covering column) by their leaves' paths.
  std::function<void(const std::string&, const arrow::DataType&)> encode = [&](const std::string& path,
                                                                               const arrow::DataType& type) {
    if (auto encoding = NumberEncoding(type)) b.encoding(path, *encoding);
    if (type.id() == arrow::Type::STRUCT) {
      for (const auto& child : type.fields()) encode(path + "." + child->name(), *child->type());
    }
  };
  // Numbers whose values repeat (RepeatingColumns) get a dictionary too, capped at 64 KiB: a
  // column that outgrows it goes on in the encoding above, so a small-box read never
  // decodes a big dictionary for a few pages.
  b.dictionary_pagesize_limit(64 << 10);
  for (const auto& field : schema.fields()) {
    encode(field->name(), *field->type());
    if (repeating.count(field->name())) b.enable_dictionary(field->name());
    switch (field->type()->id()) {
      case arrow::Type::STRING:
      case arrow::Type::LARGE_STRING:
      case arrow::Type::INT8:
      case arrow::Type::INT16:
      case arrow::Type::INT32:
      case arrow::Type::UINT8:
      case arrow::Type::UINT16:
      case arrow::Type::UINT32:
      case arrow::Type::DICTIONARY:
        b.enable_dictionary(field->name());
        break;
      default:
        break;
    }
  }
  return b.build();
}

Result<std::unique_ptr<parquet::arrow::FileWriter>> OpenParquetWriter(const arrow::Schema& schema,
                                                                     std::shared_ptr<arrow::io::OutputStream> sink,
                                                                     const IngestOptions& o, const std::string& geom,
                                                                     const std::set<std::string>& repeating) {
  // Columns of a row group are encoded and compressed in parallel (deterministic output).
  auto arrow_props = parquet::ArrowWriterProperties::Builder().store_schema()->set_use_threads(true)->build();
  return parquet::arrow::FileWriter::Open(schema, arrow::default_memory_pool(), std::move(sink),
                                          WriterProps(o, geom, schema, repeating), arrow_props);
}

// Writes `table` (the `_sample`) as one row group.
Status WriteParquet(arrow::fs::FileSystem* fs, const std::string& path, const std::shared_ptr<arrow::Table>& table,
                    const IngestOptions& o, const std::string& geom, const std::set<std::string>& repeating) {
  ARROW_ASSIGN_OR_RAISE(auto sink, fs->OpenOutputStream(path));
  ARROW_ASSIGN_OR_RAISE(auto writer, OpenParquetWriter(*table->schema(), sink, o, geom, repeating));
  ARROW_RETURN_NOT_OK(writer->WriteTable(*table, std::max<int64_t>(table->num_rows(), 1)));
  ARROW_RETURN_NOT_OK(writer->Close());
  return sink->Close();
}

// The bbox covering column of a WKB column, and per-chunk bounds / geometry types.
Result<std::shared_ptr<arrow::Array>> BboxColumn(const arrow::BinaryArray& geoms, std::vector<ChunkMeta>* chunks,
                                                 const std::vector<int64_t>& sizes, std::set<std::string>* types) {
  // float32 bounds rounded outward (GeoParquet's advice): half the bytes of doubles, and
  // still a box that contains the geometry. Chunk boxes in _sample stay exact doubles.
  int64_t n = geoms.length();
  std::vector<std::shared_ptr<arrow::Buffer>> bufs(4);
  std::vector<float*> vals(4);
  for (int j = 0; j < 4; ++j) {
    ARROW_ASSIGN_OR_RAISE(bufs[j], arrow::AllocateBuffer(n * 4));
    vals[j] = reinterpret_cast<float*>(bufs[j]->mutable_data());
  }
  auto down = [](double v) {
    float f = static_cast<float>(v);
    return f > v ? std::nextafter(f, -HUGE_VALF) : f;
  };
  auto up = [](double v) {
    float f = static_cast<float>(v);
    return f < v ? std::nextafter(f, HUGE_VALF) : f;
  };
  int64_t row = 0;
  GeomInfo info;
  uint64_t seen_types = 0;
  for (size_t c = 0; c < sizes.size(); ++c) {
    ChunkMeta& m = (*chunks)[c];
    for (int64_t i = 0; i < sizes[c]; ++i, ++row) {
      ARROW_RETURN_NOT_OK(ScanWkb(geoms.GetView(row), &info));
      vals[0][row] = down(info.minx);
      vals[1][row] = down(info.miny);
      vals[2][row] = up(info.maxx);
      vals[3][row] = up(info.maxy);
      m.minx = std::min(m.minx, info.minx);
      m.miny = std::min(m.miny, info.miny);
      m.maxx = std::max(m.maxx, info.maxx);
      m.maxy = std::max(m.maxy, info.maxy);
      seen_types |= uint64_t{1} << (info.type + (info.has_z ? 8 : 0));
    }
  }
  for (uint32_t t = 0; t < 16; ++t) {
    if (seen_types & (uint64_t{1} << t)) types->insert(GeometryTypeName(t % 8, t >= 8));
  }
  arrow::ArrayVector children;
  for (int j = 0; j < 4; ++j) children.push_back(std::make_shared<arrow::FloatArray>(n, bufs[j]));
  return arrow::StructArray::Make(children, std::vector<std::string>{"xmin", "ymin", "xmax", "ymax"});
}

std::string MetadataBase64(const std::vector<ChunkMeta>& chunks) {
  arrow::Int64Builder fid, cid, rows;
  arrow::DoubleBuilder b[4];
  for (const ChunkMeta& m : chunks) {
    (void)fid.Append(m.file_id);
    (void)cid.Append(m.chunk_id);
    (void)rows.Append(m.num_rows);
    (void)b[0].Append(m.minx);
    (void)b[1].Append(m.miny);
    (void)b[2].Append(m.maxx);
    (void)b[3].Append(m.maxy);
  }
  arrow::ArrayVector cols(7);
  (void)fid.Finish(&cols[0]);
  (void)cid.Finish(&cols[1]);
  for (int j = 0; j < 4; ++j) (void)b[j].Finish(&cols[2 + j]);
  (void)rows.Finish(&cols[6]);
  auto schema = arrow::schema({arrow::field("file_id", arrow::int64()), arrow::field("chunk_id", arrow::int64()),
                               arrow::field("bbox_minx", arrow::float64()), arrow::field("bbox_miny", arrow::float64()),
                               arrow::field("bbox_maxx", arrow::float64()), arrow::field("bbox_maxy", arrow::float64()),
                               arrow::field("num_rows", arrow::int64())});
  auto table = arrow::Table::Make(schema, cols);
  auto sink = arrow::io::BufferOutputStream::Create().ValueOrDie();
  (void)parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), sink, INT64_MAX);
  auto buffer = sink->Finish().ValueOrDie();
  return arrow::util::base64_encode(std::string_view(reinterpret_cast<const char*>(buffer->data()), buffer->size()));
}

// TERRAFUSE_INGEST_TIMING=1 prints each phase's wall and process CPU seconds to stderr
// (how the phases in docs/ingest.md were measured).
class PhaseTimer {
 public:
  PhaseTimer() : on_(std::getenv("TERRAFUSE_INGEST_TIMING") != nullptr) { Lap(nullptr); }
  void Lap(const char* phase) {
    if (!on_) return;
    auto wall = std::chrono::steady_clock::now();
    double cpu = static_cast<double>(std::clock()) / CLOCKS_PER_SEC;
    if (phase) {
      struct rusage usage {};
      getrusage(RUSAGE_SELF, &usage);
      std::fprintf(stderr, "ingest %-10s %6.2f s wall %6.2f s cpu, peak RSS %5.2f GB\n", phase,
                   std::chrono::duration<double>(wall - wall_).count(), cpu - cpu_, usage.ru_maxrss / 1048576.0);
    }
    wall_ = wall;
    cpu_ = cpu;
  }

 private:
  bool on_;
  std::chrono::steady_clock::time_point wall_;
  double cpu_ = 0;
};

// Passes 3 and 4: scatters the rows into buckets of whole chunks, then writes the table a
// bucket at a time. Rows held in memory go to buckets in memory; spilled rows to bucket
// files, of which memory holds about two per writing thread; a bucket is at most budget/8
// (and 128 MB) of rows, or one chunk when a chunk is bigger.
class Writer {
 public:
  Writer(arrow::fs::FileSystem* fs, std::string dir, const IngestOptions& options, std::string crs,
         IngestProgress* progress)
      : fs_(fs), dir_(std::move(dir)), options_(options), crs_(std::move(crs)), progress_(progress) {}

  Status Run(const std::string& spill_dir, const std::string& spill_path, Collected& c, const Layout& layout,
             int64_t budget) {
    std::string geom_name = c.schema->field(c.geometry_index)->name();
    repeating_ = c.repeating;
    int64_t num_chunks = static_cast<int64_t>(layout.chunk_file.size());
    const std::vector<int64_t>& estimate = layout.estimate;
    std::error_code ec;
    double kept_bytes = c.spilled ? static_cast<double>(std::filesystem::file_size(spill_path, ec)) : c.held_bytes;
    double row_bytes = c.num_rows > 0 ? kept_bytes / c.num_rows : 1;
    double bucket_bytes = std::min<double>(budget / 8.0, kMaxBucketBytes);
    int64_t cap = std::max<int64_t>(1, static_cast<int64_t>(bucket_bytes / std::max(row_bytes, 1.0)));
    cap = std::max<int64_t>(cap, (c.num_rows + kMaxBuckets - 1) / kMaxBuckets);  // bounded open files
    PlanBuckets(layout.chunk_file, estimate, cap);
    counts_.assign(num_chunks, 0);
    PhaseTimer timer;
    ARROW_RETURN_NOT_OK(Scatter(spill_dir, spill_path, c, layout, budget));
    timer.Lap("scatter");
    std::filesystem::remove(spill_path, ec);  // the buckets hold every row now
    // Empty chunks (possible with a sample or earlier boxes) are left out; files and chunks
    // are numbered densely, in order.
    dense_file_.assign(num_chunks, -1);
    dense_chunk_.assign(num_chunks, -1);
    int32_t files = 0, chunk = 0;
    int64_t last = -1;
    for (int64_t k = 0; k < num_chunks; ++k) {
      if (counts_[k] == 0) continue;
      if (layout.chunk_file[k] != last) {
        ++files;
        chunk = 0;
        last = layout.chunk_file[k];
      }
      dense_file_[k] = files - 1;
      dense_chunk_[k] = chunk++;
    }
    num_files_ = files;
    // Jobs hold whole files and are independent: two threads write them; the results are
    // merged in job order, so the output is the same.
    std::vector<std::vector<FileOutput>> outputs(jobs_.size());
    std::atomic<size_t> next{0};
    auto worker = [&]() -> Status {
      for (size_t j = next++; j < jobs_.size(); j = next++) {
        ARROW_RETURN_NOT_OK(WriteJob(c, jobs_[j], geom_name, &outputs[j]));
      }
      return Status::OK();
    };
    int threads = std::clamp<int>(static_cast<int>(std::thread::hardware_concurrency()), 1, 2);
    std::vector<Status> results(threads);
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back([&, t] { results[t] = worker(); });
    results[0] = worker();
    for (auto& th : pool) th.join();
    for (const Status& st : results) ARROW_RETURN_NOT_OK(st);
    timer.Lap("write");
    std::shared_ptr<arrow::Table> sample;
    for (auto& job_outputs : outputs) {
      for (FileOutput& out : job_outputs) {
        chunks_.insert(chunks_.end(), out.chunks.begin(), out.chunks.end());
        for (int j = 0; j < 2; ++j) all_bbox_[j] = std::min(all_bbox_[j], out.bbox[j]);
        for (int j = 2; j < 4; ++j) all_bbox_[j] = std::max(all_bbox_[j], out.bbox[j]);
        all_types_.insert(out.types.begin(), out.types.end());
        if (!sample) sample = out.sample;
      }
    }
    return WriteSample(sample, c, geom_name);
  }

  int64_t num_chunks() const { return static_cast<int64_t>(chunks_.size()); }
  int32_t num_files() const { return num_files_; }

 private:
  static constexpr int64_t kSampleRows = 1000;
  static constexpr int64_t kMaxBuckets = 512;  // open files during the scatter
  static constexpr double kMaxBucketBytes = 128.0 * (1 << 20);

  struct Bucket {
    int64_t c0, c1;  // chunks [c0, c1)
    std::string path;              // spilled rows: the bucket's file
    arrow::RecordBatchVector held;  // else its rows
  };
  struct Job {
    size_t b0, b1;  // buckets [b0, b1): whole files
  };

  // Buckets of about `cap` estimated rows: several whole small files, or a run of chunks of
  // one big file; a job is one bucket of small files or all the buckets of a big one.
  void PlanBuckets(const std::vector<int64_t>& chunk_file, const std::vector<int64_t>& estimate, int64_t cap) {
    int64_t n = static_cast<int64_t>(chunk_file.size());
    int64_t rows = 0;        // in the last bucket
    bool open_small = false;  // the last job is one bucket of whole small files
    bucket_of_chunk_.assign(n, 0);
    for (int64_t k = 0; k < n;) {
      int64_t end = k, file_rows = 0;
      while (end < n && chunk_file[end] == chunk_file[k]) file_rows += estimate[end++];
      if (file_rows <= cap) {
        if (open_small && rows + file_rows <= cap) {
          buckets_.back().c1 = end;
          rows += file_rows;
        } else {
          buckets_.push_back({k, end, {}, {}});
          jobs_.push_back({buckets_.size() - 1, buckets_.size()});
          rows = file_rows;
          open_small = true;
        }
      } else {
        jobs_.push_back({buckets_.size(), buckets_.size()});
        for (int64_t j = k; j < end; ++j) {
          if (jobs_.back().b1 == jobs_.back().b0 || rows + estimate[j] > cap) {
            buckets_.push_back({j, j, {}, {}});
            ++jobs_.back().b1;
            rows = 0;
          }
          buckets_.back().c1 = j + 1;
          rows += estimate[j];
        }
        open_small = false;
      }
      k = end;
    }
    for (size_t b = 0; b < buckets_.size(); ++b) {
      for (int64_t k = buckets_[b].c0; k < buckets_[b].c1; ++k) bucket_of_chunk_[k] = static_cast<int32_t>(b);
    }
  }

  // One sequential read of the spill: each row's chunk, from its centroid and number, and
  // the row appended (with its chunk) to that chunk's bucket.
  Status Scatter(const std::string& spill_dir, const std::string& spill_path, Collected& c,
                 const Layout& layout, int64_t budget) {
    std::shared_ptr<arrow::ipc::RecordBatchFileReader> spill;
    if (c.spilled) {
      // Read, not mapped: a mapping of the whole spill would stay resident until the end.
      ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::ReadableFile::Open(spill_path));
      ARROW_ASSIGN_OR_RAISE(spill, arrow::ipc::RecordBatchFileReader::Open(file));
    }
    auto schema = c.schema->AddField(c.schema->num_fields(), arrow::field(kChunkColumn, arrow::int32())).ValueOrDie();
    bucket_schema_ = schema;
    size_t nb = buckets_.size();
    std::vector<std::shared_ptr<arrow::io::OutputStream>> sinks(nb);
    std::vector<std::shared_ptr<arrow::ipc::RecordBatchWriter>> writers(nb);
    // Buffered: a batch of the spill sends a small piece to each bucket.
    int64_t buffer = std::clamp<int64_t>(budget / 8 / std::max<int64_t>(nb, 1), 16 << 10, 1 << 20);
    for (size_t b = 0; b < nb && spill; ++b) {
      buckets_[b].path = spill_dir + "/bucket-" + std::to_string(b) + ".arrow";
      ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::FileOutputStream::Open(buckets_[b].path));
      ARROW_ASSIGN_OR_RAISE(sinks[b], arrow::io::BufferedOutputStream::Create(buffer, arrow::default_memory_pool(), file));
      ARROW_ASSIGN_OR_RAISE(writers[b], arrow::ipc::MakeFileWriter(sinks[b], schema));
    }
    // Reading a batch and placing its rows (WKB scan and tree walk) runs on a helper thread
    // one batch ahead of the buckets' writing; the results are consumed in batch order.
    struct Placed {
      std::shared_ptr<arrow::RecordBatch> batch;
      std::vector<int32_t> chunk_of;
    };
    auto place = [&](int i, int64_t first_row) -> Result<Placed> {
      Placed p;
      if (spill) {
        ARROW_ASSIGN_OR_RAISE(p.batch, spill->ReadRecordBatch(i));
      } else {
        p.batch = c.held[i];
      }
      const auto& geoms = static_cast<const arrow::BinaryArray&>(*p.batch->column(c.geometry_index));
      p.chunk_of.resize(p.batch->num_rows());
      if (!layout.chunk_of_row.empty()) {
        std::copy_n(layout.chunk_of_row.begin() + first_row, p.batch->num_rows(), p.chunk_of.begin());
        return p;
      }
      GeomInfo info;
      for (int64_t r = 0; r < p.batch->num_rows(); ++r) {
        ARROW_RETURN_NOT_OK(ScanWkb(geoms.GetView(r), &info));
        p.chunk_of[r] = static_cast<int32_t>(layout.find((info.minx + info.maxx) / 2, (info.miny + info.maxy) / 2,
                                                         first_row + r));
      }
      return p;
    };
    std::vector<std::vector<int64_t>> local(nb);
    int64_t row = 0;
    int num_batches = spill ? spill->num_record_batches() : static_cast<int>(c.held.size());
    std::future<Result<Placed>> ahead;
    if (num_batches > 0) ahead = std::async(std::launch::async, place, 0, int64_t{0});
    for (int i = 0; i < num_batches; ++i) {
      Result<Placed> placed = ahead.get();
      if (!placed.ok()) return placed.status();
      const std::shared_ptr<arrow::RecordBatch> batch = placed->batch;
      const std::vector<int32_t>& chunk_of = placed->chunk_of;
      if (!spill) c.held[i].reset();  // its rows move to the buckets
      if (i + 1 < num_batches) ahead = std::async(std::launch::async, place, i + 1, row + batch->num_rows());
      if (progress_ && progress_->cancel.load()) return Cancelled();  // (~future waits for the helper)
      for (auto& l : local) l.clear();
      for (int64_t r = 0; r < batch->num_rows(); ++r, ++row) {
        int64_t k = chunk_of[r];
        ++counts_[k];
        local[bucket_of_chunk_[k]].push_back(r);
      }
      for (size_t b = 0; b < nb; ++b) {
        if (local[b].empty()) continue;
        arrow::Int32Builder chunks;
        ARROW_RETURN_NOT_OK(chunks.Reserve(static_cast<int64_t>(local[b].size())));
        for (int64_t r : local[b]) chunks.UnsafeAppend(chunk_of[r]);
        ARROW_ASSIGN_OR_RAISE(auto chunk_array, chunks.Finish());
        std::shared_ptr<arrow::RecordBatch> part = batch;
        if (static_cast<int64_t>(local[b].size()) != batch->num_rows()) {  // else every row: no copy
          arrow::Int64Builder ib;
          ARROW_RETURN_NOT_OK(ib.AppendValues(local[b]));
          ARROW_ASSIGN_OR_RAISE(auto indices, ib.Finish());
          ARROW_ASSIGN_OR_RAISE(arrow::Datum taken, arrow::compute::Take(batch, indices));
          part = taken.record_batch();
        }
        ARROW_ASSIGN_OR_RAISE(part, part->AddColumn(part->num_columns(), schema->fields().back(), chunk_array));
        if (spill) {
          ARROW_RETURN_NOT_OK(writers[b]->WriteRecordBatch(*part));
        } else {
          buckets_[b].held.push_back(std::move(part));
        }
      }
    }
    c.held.clear();
    for (size_t b = 0; b < nb && spill; ++b) {
      ARROW_RETURN_NOT_OK(writers[b]->Close());
      ARROW_RETURN_NOT_OK(sinks[b]->Close());
    }
    return Status::OK();
  }

  struct FileOutput {
    int32_t file_id = -1;
    std::shared_ptr<arrow::io::OutputStream> sink;
    std::unique_ptr<parquet::arrow::FileWriter> writer;
    std::vector<ChunkMeta> chunks;
    double bbox[4] = {HUGE_VAL, HUGE_VAL, -HUGE_VAL, -HUGE_VAL};
    std::set<std::string> types;
    std::shared_ptr<arrow::Table> sample;  // first rows, kept for file 0 only
  };

  // Reads each bucket of the job whole, orders its rows by chunk and inside a chunk along a
  // Hilbert curve, and appends one row group per chunk to the chunk's file.
  Status WriteJob(const Collected& c, const Job& job, const std::string& geom_name, std::vector<FileOutput>* outs) {
    for (size_t b = job.b0; b < job.b1; ++b) {
      if (progress_ && progress_->cancel.load()) return Cancelled();
      Bucket& bucket = buckets_[b];
      std::shared_ptr<arrow::RecordBatch> rows;
      {
        arrow::RecordBatchVector batches = std::move(bucket.held);
        if (!bucket.path.empty()) {
          // Mapped, not read: the rows are gathered straight from the page cache (a bucket is
          // this ingest's own file in its temp dir, read whole and then dropped).
          ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::MemoryMappedFile::Open(bucket.path, arrow::io::FileMode::READ));
          ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchFileReader::Open(file));
          for (int i = 0; i < reader->num_record_batches(); ++i) {
            ARROW_ASSIGN_OR_RAISE(auto batch, reader->ReadRecordBatch(i));
            batches.push_back(batch);
          }
        }
        ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches(bucket_schema_, batches));
        batches.clear();
        // A stable counting sort by chunk.
        int64_t n = table->num_rows();
        std::vector<int64_t> offsets(bucket.c1 - bucket.c0 + 1, 0);
        for (int64_t k = bucket.c0; k < bucket.c1; ++k) offsets[k - bucket.c0 + 1] = offsets[k - bucket.c0] + counts_[k];
        arrow::Int64Builder perm_builder;
        ARROW_RETURN_NOT_OK(perm_builder.AppendEmptyValues(n));
        ARROW_ASSIGN_OR_RAISE(auto perm, perm_builder.Finish());
        auto* p = const_cast<int64_t*>(static_cast<const arrow::Int64Array&>(*perm).raw_values());
        int64_t pos = 0;
        for (const auto& piece : table->GetColumnByName(kChunkColumn)->chunks()) {
          const auto& chunk_ids = static_cast<const arrow::Int32Array&>(*piece);
          for (int64_t i = 0; i < chunk_ids.length(); ++i, ++pos) p[offsets[chunk_ids.Value(i) - bucket.c0]++] = pos;
        }
        ARROW_RETURN_NOT_OK(HilbertOrder(*table->column(c.geometry_index), offsets, p));
        ARROW_ASSIGN_OR_RAISE(table, table->RemoveColumn(table->num_columns() - 1));
        ARROW_ASSIGN_OR_RAISE(rows, GatherRows(*table, perm));
      }
      // The rows of each file in the bucket, chunk by chunk.
      int64_t offset = 0;
      for (int64_t k = bucket.c0; k < bucket.c1;) {
        if (counts_[k] == 0) {
          ++k;
          continue;
        }
        int32_t f = dense_file_[k];
        std::vector<int64_t> sizes;
        std::vector<ChunkMeta> chunk_meta;
        for (; k < bucket.c1 && (counts_[k] == 0 || dense_file_[k] == f); ++k) {
          if (counts_[k] == 0) continue;
          sizes.push_back(counts_[k]);
          chunk_meta.push_back({f, dense_chunk_[k], counts_[k]});
        }
        int64_t n = 0;
        for (int64_t size : sizes) n += size;
        if (outs->empty() || outs->back().file_id != f) {
          if (!outs->empty()) ARROW_RETURN_NOT_OK(CloseFile(&outs->back(), geom_name));
          outs->emplace_back();
          outs->back().file_id = f;
        }
        ARROW_RETURN_NOT_OK(Append(rows->Slice(offset, n), sizes, chunk_meta, geom_name, &outs->back()));
        offset += n;
      }
    }
    if (!outs->empty()) ARROW_RETURN_NOT_OK(CloseFile(&outs->back(), geom_name));
    return Status::OK();
  }

  // The rows `perm` (positions in `table`) of every column, as one batch. Fixed-width and
  // binary columns without nulls are copied row by row straight from their pieces: Arrow's
  // Take of a chunked column concatenates the pieces first, a second copy of every byte.
  static Result<std::shared_ptr<arrow::RecordBatch>> GatherRows(const arrow::Table& table,
                                                                const std::shared_ptr<arrow::Array>& perm) {
    int64_t n = perm->length();
    const int64_t* p = static_cast<const arrow::Int64Array&>(*perm).raw_values();
    // Each output row's piece and index in it (the same pieces in every column of a table
    // made from record batches).
    std::vector<int32_t> piece(n), index(n);
    {
      std::vector<int64_t> starts{0};
      for (const auto& chunk : table.column(0)->chunks()) starts.push_back(starts.back() + chunk->length());
      std::vector<int32_t> piece_of(table.num_rows()), index_of(table.num_rows());
      for (size_t k = 0; k + 1 < starts.size(); ++k) {
        for (int64_t r = starts[k]; r < starts[k + 1]; ++r) {
          piece_of[r] = static_cast<int32_t>(k);
          index_of[r] = static_cast<int32_t>(r - starts[k]);
        }
      }
      for (int64_t i = 0; i < n; ++i) piece[i] = piece_of[p[i]], index[i] = index_of[p[i]];
    }
    arrow::ArrayVector columns;
    for (const auto& col : table.columns()) {
      const auto& type = col->type();
      bool fixed = arrow::is_fixed_width(type->id()) && type->id() != arrow::Type::BOOL &&
                   type->id() != arrow::Type::DICTIONARY && type->byte_width() > 0;
      bool binary = type->id() == arrow::Type::BINARY || type->id() == arrow::Type::STRING;
      if (col->null_count() > 0 || !(fixed || binary)) {
        ARROW_ASSIGN_OR_RAISE(arrow::Datum taken, arrow::compute::Take(col, perm));
        ARROW_ASSIGN_OR_RAISE(auto one, arrow::Concatenate(taken.chunked_array()->chunks()));
        columns.push_back(one);
        continue;
      }
      if (fixed) {
        int w = type->byte_width();
        std::vector<const uint8_t*> base;
        for (const auto& chunk : col->chunks()) base.push_back(chunk->data()->buffers[1]->data() + chunk->offset() * w);
        ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::Buffer> values, arrow::AllocateBuffer(n * w));
        uint8_t* out = values->mutable_data();
        if (w == 8) {
          for (int64_t i = 0; i < n; ++i) std::memcpy(out + i * 8, base[piece[i]] + int64_t{index[i]} * 8, 8);
        } else if (w == 4) {
          for (int64_t i = 0; i < n; ++i) std::memcpy(out + i * 4, base[piece[i]] + int64_t{index[i]} * 4, 4);
        } else {
          for (int64_t i = 0; i < n; ++i) std::memcpy(out + i * w, base[piece[i]] + int64_t{index[i]} * w, w);
        }
        columns.push_back(arrow::MakeArray(arrow::ArrayData::Make(type, n, {nullptr, values}, 0)));
        continue;
      }
      std::vector<const arrow::BinaryArray*> pieces;
      for (const auto& chunk : col->chunks()) pieces.push_back(static_cast<const arrow::BinaryArray*>(chunk.get()));
      ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::Buffer> offsets, arrow::AllocateBuffer((n + 1) * 4));
      auto* off = reinterpret_cast<int32_t*>(offsets->mutable_data());
      int64_t total = 0;
      off[0] = 0;
      for (int64_t i = 0; i < n; ++i) {
        total += pieces[piece[i]]->value_length(index[i]);
        if (total > INT32_MAX) return InvalidArgument("a chunk holds over 2 GB of one column; lower partitioning_maximum_per_chunk");
        off[i + 1] = static_cast<int32_t>(total);
      }
      ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::Buffer> data, arrow::AllocateBuffer(total));
      uint8_t* out = data->mutable_data();
      for (int64_t i = 0; i < n; ++i) {
        std::string_view v = pieces[piece[i]]->GetView(index[i]);
        std::memcpy(out + off[i], v.data(), v.size());
      }
      columns.push_back(arrow::MakeArray(arrow::ArrayData::Make(type, n, {nullptr, offsets, data}, 0)));
    }
    return arrow::RecordBatch::Make(table.schema(), n, columns);
  }

  // Orders the rows of each chunk along a Hilbert curve over the chunk's box of centroids,
  // ties by position (deterministic). `ends[k]` is where chunk k ends in `perm`, which
  // holds row positions in `geoms` grouped by chunk.
  static Status HilbertOrder(const arrow::ChunkedArray& geoms, const std::vector<int64_t>& ends, int64_t* perm) {
    std::vector<double> cx(geoms.length()), cy(geoms.length());
    GeomInfo info;
    int64_t row = 0;
    for (const auto& piece : geoms.chunks()) {
      const auto& wkbs = static_cast<const arrow::BinaryArray&>(*piece);
      for (int64_t i = 0; i < wkbs.length(); ++i, ++row) {
        ARROW_RETURN_NOT_OK(ScanWkb(wkbs.GetView(i), &info));
        cx[row] = info.empty() ? 0 : (info.minx + info.maxx) / 2;
        cy[row] = info.empty() ? 0 : (info.miny + info.maxy) / 2;
      }
    }
    std::vector<uint32_t> keys, keys2;
    std::vector<int64_t> rows, rows2;
    for (size_t k = 0; k + 1 < ends.size(); ++k) {
      int64_t begin = k == 0 ? 0 : ends[k - 1], end = ends[k];
      if (end - begin < 2) continue;
      double box[4] = {HUGE_VAL, HUGE_VAL, -HUGE_VAL, -HUGE_VAL};
      for (int64_t i = begin; i < end; ++i) {
        box[0] = std::min(box[0], cx[perm[i]]);
        box[1] = std::min(box[1], cy[perm[i]]);
        box[2] = std::max(box[2], cx[perm[i]]);
        box[3] = std::max(box[3], cy[perm[i]]);
      }
      double sx = box[2] > box[0] ? 65535.0 / (box[2] - box[0]) : 0;
      double sy = box[3] > box[1] ? 65535.0 / (box[3] - box[1]) : 0;
      auto cell = [](double v) { return v > 0 ? (v < 65535 ? static_cast<uint32_t>(v) : 65535u) : 0u; };  // NaN: 0
      keys.resize(end - begin);
      for (int64_t i = begin; i < end; ++i) {
        keys[i - begin] = Hilbert16(cell((cx[perm[i]] - box[0]) * sx), cell((cy[perm[i]] - box[1]) * sy));
      }
      // A stable LSD radix sort of the rows by key (ties keep their order): std::sort of
      // every chunk cost more than the rest of the ordering.
      int64_t m = end - begin;
      rows.assign(perm + begin, perm + end);
      keys2.resize(m);
      rows2.resize(m);
      for (int shift = 0; shift < 32; shift += 8) {
        size_t count[257] = {0};
        for (int64_t i = 0; i < m; ++i) ++count[((keys[i] >> shift) & 0xFF) + 1];
        for (int d = 0; d < 256; ++d) count[d + 1] += count[d];
        for (int64_t i = 0; i < m; ++i) {
          size_t at = count[(keys[i] >> shift) & 0xFF]++;
          keys2[at] = keys[i];
          rows2[at] = rows[i];
        }
        keys.swap(keys2);
        rows.swap(rows2);
      }
      std::copy(rows.begin(), rows.end(), perm + begin);
    }
    return Status::OK();
  }

  // Appends the chunks (`sizes` rows each) in `batch` to the file, with the bbox column.
  Status Append(std::shared_ptr<arrow::RecordBatch> batch, const std::vector<int64_t>& sizes,
                std::vector<ChunkMeta> chunk_meta, const std::string& geom_name, FileOutput* out) {
    int geometry_index = batch->schema()->GetFieldIndex(geom_name);
    ARROW_ASSIGN_OR_RAISE(auto bbox, BboxColumn(static_cast<const arrow::BinaryArray&>(*batch->column(geometry_index)),
                                                &chunk_meta, sizes, &out->types));
    out->chunks.insert(out->chunks.end(), chunk_meta.begin(), chunk_meta.end());
    ARROW_ASSIGN_OR_RAISE(batch, batch->AddColumn(batch->num_columns(), arrow::field("bbox", bbox->type()), bbox));
    auto table = arrow::Table::Make(batch->schema(), batch->columns(), batch->num_rows());
    if (!out->writer) {
      ARROW_ASSIGN_OR_RAISE(out->sink, fs_->OpenOutputStream(dir_ + "/" + std::to_string(out->file_id) + ".parquet"));
      ARROW_ASSIGN_OR_RAISE(out->writer,
                            OpenParquetWriter(*table->schema(), out->sink, options_, geom_name, repeating_));
    }
    int64_t offset = 0;
    for (int64_t size : sizes) {
      ARROW_RETURN_NOT_OK(out->writer->WriteTable(*table->Slice(offset, size), size));
      offset += size;
    }
    int64_t have = out->sample ? out->sample->num_rows() : 0;
    if (out->file_id == 0 && have < kSampleRows) {  // the sample: the first rows of file 0
      auto more = table->Slice(0, std::min<int64_t>(table->num_rows(), kSampleRows - have));
      if (out->sample) {
        ARROW_ASSIGN_OR_RAISE(more, arrow::ConcatenateTables({out->sample, more}));
      }
      out->sample = more;
    }
    if (progress_) progress_->rows_written.fetch_add(table->num_rows());
    return Status::OK();
  }

  Status CloseFile(FileOutput* out, const std::string& geom_name) {
    for (const ChunkMeta& m : out->chunks) {
      out->bbox[0] = std::min(out->bbox[0], m.minx);
      out->bbox[1] = std::min(out->bbox[1], m.miny);
      out->bbox[2] = std::max(out->bbox[2], m.maxx);
      out->bbox[3] = std::max(out->bbox[3], m.maxy);
    }
    // The file's `geo` metadata is known only now; the footer is written at Close.
    ARROW_RETURN_NOT_OK(out->writer->AddKeyValueMetadata(
        arrow::key_value_metadata({"geo"}, {GeoMetadata(geom_name, out->types, out->bbox, crs_).dump()})));
    ARROW_RETURN_NOT_OK(out->writer->Close());
    out->writer.reset();
    return out->sink->Close();
  }

  Status WriteSample(std::shared_ptr<arrow::Table> sample, const Collected& c, const std::string& geom_name) {
    if (!sample) {  // empty input: a sample with the schema and no rows
      arrow::FieldVector fields = c.schema->fields();
      fields.push_back(arrow::field("bbox", arrow::struct_({arrow::field("xmin", arrow::float32()),
                                                            arrow::field("ymin", arrow::float32()),
                                                            arrow::field("xmax", arrow::float32()),
                                                            arrow::field("ymax", arrow::float32())})));
      ARROW_ASSIGN_OR_RAISE(sample, arrow::Table::MakeEmpty(arrow::schema(fields)));
    }
    double bbox[4];
    std::copy(all_bbox_, all_bbox_ + 4, bbox);
    if (chunks_.empty()) std::fill(bbox, bbox + 4, 0.0);
    auto md = arrow::key_value_metadata(
        {"geo", "fused:format_version", "fused:_metadata"},
        {GeoMetadata(geom_name, all_types_, bbox, crs_).dump(), "5", MetadataBase64(chunks_)});
    auto table = sample->ReplaceSchemaMetadata(md);
    return WriteParquet(fs_, dir_ + "/_sample", table, options_, geom_name, repeating_);
  }

  static constexpr const char* kChunkColumn = "__terrafuse_chunk";

  arrow::fs::FileSystem* fs_;
  std::string dir_;
  const IngestOptions& options_;
  std::string crs_;
  IngestProgress* progress_;
  std::vector<Bucket> buckets_;
  std::vector<Job> jobs_;
  std::shared_ptr<arrow::Schema> bucket_schema_;  // the rows' and their chunk's
  std::set<std::string> repeating_;               // Collected::repeating
  std::vector<int32_t> bucket_of_chunk_;
  std::vector<int64_t> counts_;  // rows of each chunk
  std::vector<int32_t> dense_file_, dense_chunk_;
  int32_t num_files_ = 0;
  std::vector<ChunkMeta> chunks_;
  double all_bbox_[4] = {HUGE_VAL, HUGE_VAL, -HUGE_VAL, -HUGE_VAL};
  std::set<std::string> all_types_;
};

Status ValidateOptions(const IngestOptions& o) {
  if (o.split_method != "mean" && o.split_method != "median") {
    return InvalidArgument("partitioning_split_method must be 'mean' or 'median', got '", o.split_method, "'");
  }
  if (o.force_utm != "" && o.force_utm != "file" && o.force_utm != "chunk") {
    return InvalidArgument("partitioning_force_utm must be 'file', 'chunk' or None, got '", o.force_utm, "'");
  }
  if (o.max_per_file && !(*o.max_per_file > 0)) {
    return InvalidArgument("partitioning_maximum_per_file must be > 0, got ", *o.max_per_file);
  }
  if (o.max_per_chunk && !(*o.max_per_chunk > 0)) {
    return InvalidArgument("partitioning_maximum_per_chunk must be > 0, got ", *o.max_per_chunk);
  }
  if (o.target_num_chunks < 0) return InvalidArgument("target_num_chunks must be > 0, got ", o.target_num_chunks);
  if (o.lon_column.empty() != o.lat_column.empty()) {
    return InvalidArgument("lonlat_cols needs both a longitude and a latitude column");
  }
  if (!o.subdivide_method.empty()) {
    if (o.subdivide_method != "area") {
      return InvalidArgument("subdivide_method must be 'area' or None, got '", o.subdivide_method, "'");
    }
    if (!o.subdivide_start || !o.subdivide_stop) {
      return InvalidArgument("subdivide_method='area' needs subdivide_start and subdivide_stop");
    }
    if (!(*o.subdivide_stop > 0)) {
      return InvalidArgument("subdivide_stop must be > 0 (0 would subdivide forever), got ", *o.subdivide_stop);
    }
    if (*o.subdivide_start < *o.subdivide_stop) {
      return InvalidArgument("subdivide_start (", *o.subdivide_start, ") must be >= subdivide_stop (",
                             *o.subdivide_stop, ")");
    }
  }
  if (o.memory_budget < 0) return InvalidArgument("memory_budget must be >= 0 bytes, got ", o.memory_budget);
  const std::string& c = o.compression;
  if (c != "zstd" && c != "lz4" && c != "snappy" && c != "gzip" && c != "none") {
    return InvalidArgument("compression must be 'zstd', 'lz4', 'snappy', 'gzip' or None, got '", c, "'");
  }
  if (o.compression_level) {
    int top = c == "zstd" ? 22 : c == "gzip" ? 9 : 0;
    if (top == 0) return InvalidArgument("compression_level applies to zstd and gzip, not to '", c, "'");
    if (*o.compression_level < 1 || *o.compression_level > top) {
      return InvalidArgument("compression_level of ", c, " must be 1..", top, ", got ", *o.compression_level);
    }
  }
  return Status::OK();
}

std::atomic<int64_t> g_temp_counter{0};

// Budget bytes per sampled row: the sample, the partitioner's copy and order (72 bytes),
// vector growth, and room for the batches and buckets in memory at the same time.
constexpr int64_t kSampleBytesPerRow = 256;


}  // namespace

namespace {

// A local directory is renamed into place at once. Object stores have no directory rename:
// there the files move one by one with `_sample` last, so the table only looks valid (readers
// start from `_sample`) once all its data is there.
Status MoveTableIntoPlace(arrow::fs::FileSystem* fs, const std::string& tmp, const std::string& output) {
  if (fs->type_name() == "local") return fs->Move(tmp, output);
  arrow::fs::FileSelector selector;
  selector.base_dir = tmp;
  selector.recursive = true;
  ARROW_ASSIGN_OR_RAISE(std::vector<arrow::fs::FileInfo> infos, fs->GetFileInfo(selector));
  std::vector<std::string> files;
  for (const auto& info : infos) {
    if (info.IsFile()) files.push_back(info.path());
  }
  std::stable_partition(files.begin(), files.end(),
                        [](const std::string& f) { return BaseName(f) != "_sample"; });
  for (const std::string& file : files) {
    ARROW_RETURN_NOT_OK(fs->Move(file, output + file.substr(tmp.size())));
  }
  return fs->DeleteDir(tmp);
}

}  // namespace

Result<IngestResult> Ingest(std::shared_ptr<arrow::RecordBatchReader> input, std::shared_ptr<arrow::fs::FileSystem> fs,
                            const std::string& output_path, const IngestOptions& options, IngestProgress* progress) {
  ARROW_RETURN_NOT_OK(ValidateOptions(options));
  ARROW_ASSIGN_OR_RAISE(Method method, ParseMethod(options.partitioning_method));
  std::string output = Trim(output_path);
  ARROW_ASSIGN_OR_RAISE(auto existing, fs->GetFileInfo(output));
  if (existing.type() != arrow::fs::FileType::NotFound && !options.overwrite) {
    return AlreadyExists("ingest output '", output, "' exists; pass overwrite=True to replace it");
  }
  std::shared_ptr<arrow::Table> schema_boxes;
  if (!options.partitioning_schema_input.empty()) {
    // A table directory (its chunk boxes), or a Parquet file of boxes such as a saved
    // get_chunks_metadata() frame.
    const std::string& boxes = options.partitioning_schema_input;
    ARROW_ASSIGN_OR_RAISE(auto info, fs->GetFileInfo(boxes));
    if (info.type() == arrow::fs::FileType::Directory) {
      ARROW_ASSIGN_OR_RAISE(schema_boxes, ReadChunksMetadata(fs, boxes));
    } else if (info.type() == arrow::fs::FileType::File) {
      ARROW_ASSIGN_OR_RAISE(auto file, fs->OpenInputFile(boxes));
      auto reader = parquet::arrow::OpenFile(file, arrow::default_memory_pool());
      if (!reader.ok()) {
        return InvalidArgument("partitioning_schema_input '", boxes, "' is not a Parquet file: ",
                               reader.status().message());
      }
      ARROW_ASSIGN_OR_RAISE(schema_boxes, (*reader)->ReadTable());
    } else {
      return NotFound("partitioning_schema_input '", boxes, "' does not exist");
    }
  }

  // Pass 1: stream the input, spill the rows, keep a bounded sample of their centroids.
  ARROW_ASSIGN_OR_RAISE(int64_t budget, MemoryBudget(options.memory_budget));
  ARROW_ASSIGN_OR_RAISE(SpillDir spill_dir, SpillDir::Make(options.spill_dir));
  std::string spill_path = spill_dir.path() + "/rows.arrow";
  Collected collected;
  collected.sample_cap = std::max<int64_t>(budget / kSampleBytesPerRow, 1 << 14);
  PhaseTimer timer;
  Pass1 pass1(options, method, progress);
  // A quarter of the budget holds the rows (the partition and the writers use the rest).
  ARROW_RETURN_NOT_OK(pass1.Run(input.get(), spill_path, budget / 4, &collected));
  timer.Lap(collected.spilled ? "read+spill" : "read");
  int64_t n = collected.num_rows;

  // Pass 2: partition the sample (every row unless the input outgrew the budget); its cuts
  // place every row.
  Partitioning partitioning;
  Boxes boxes;
  Layout layout;
  if (schema_boxes) {
    ARROW_ASSIGN_OR_RAISE(boxes, LoadBoxes(*schema_boxes));
    layout.chunk_file = boxes.file;
    layout.find = [&boxes](double x, double y, int64_t) { return boxes.Find(x, y); };
    layout.estimate.assign(boxes.file.size(), 0);
    for (size_t i = 0; i < collected.row.size(); ++i) {
      layout.estimate[boxes.Find(collected.x[i], collected.y[i])] += int64_t{1} << collected.level;
    }
  } else {
    double total = collected.total_weight;
    if (method != Method::kRows && n > 0 && !(total > 0)) {
      return InvalidArgument("partitioning_method='", options.partitioning_method,
                             "' needs geometries with a positive ", options.partitioning_method,
                             ", but the total is 0 (points?); use partitioning_method='rows'");
    }
    PartitionOptions po;
    const double* mpf = options.max_per_file ? &*options.max_per_file : nullptr;
    const double* mpc = options.max_per_chunk ? &*options.max_per_chunk : nullptr;
    ResolveMaxima(total, mpf, mpc, options.target_num_chunks, &po.max_per_file, &po.max_per_chunk);
    if (method == Method::kRows || method == Method::kCoords) {  // whole counts: 1/3 of 20,000 rows is 6,667
      po.max_per_file = std::ceil(po.max_per_file);
      po.max_per_chunk = std::ceil(po.max_per_chunk);
    }
    double scale = std::ldexp(1.0, -collected.level);  // the sample's share of the rows
    po.max_per_file *= scale;
    po.max_per_chunk *= scale;
    po.max_width_ratio = options.max_width_ratio;
    po.max_height_ratio = options.max_height_ratio;
    po.split_method = options.split_method == "median" ? SplitMethod::kMedian : SplitMethod::kMean;
    po.force_utm = options.force_utm == "file"    ? ForceUtm::kFile
                   : options.force_utm == "chunk" ? ForceUtm::kChunk
                                                  : ForceUtm::kNone;
    po.split_identical_centroids = options.split_identical_centroids;
    PartitionInput pin{collected.x.data(), collected.y.data(),
                       method == Method::kRows ? nullptr : collected.weight.data(),
                       static_cast<int64_t>(collected.row.size()), collected.row.data()};
    ARROW_ASSIGN_OR_RAISE(partitioning, Partition(pin, po));
    if (collected.level == 0) {  // every row was partitioned: its chunk is known without `find`
      layout.chunk_of_row.resize(n);
      for (int64_t k = 0; k < partitioning.num_chunks(); ++k) {
        for (int64_t i = partitioning.chunk_offsets[k]; i < partitioning.chunk_offsets[k + 1]; ++i) {
          layout.chunk_of_row[partitioning.order[i]] = static_cast<int32_t>(k);
        }
      }
    }
    partitioning.order = {};
    layout.chunk_file.assign(partitioning.chunk_file.begin(), partitioning.chunk_file.end());
    layout.find = [&partitioning](double x, double y, int64_t row) { return partitioning.FindChunk(x, y, row); };
    for (int64_t k = 0; k < partitioning.num_chunks(); ++k) {  // the chunks were cut from the sample
      layout.estimate.push_back((partitioning.chunk_offsets[k + 1] - partitioning.chunk_offsets[k]) << collected.level);
    }
  }

  timer.Lap("partition");
  // Passes 3 and 4: scatter the spill into buckets, write beside the output, move into place.
  std::string parent = Parent(output);
  std::string tmp = (parent.empty() ? "" : parent + "/") + "." + BaseName(output) + ".tmp-" +
                    std::to_string(getpid()) + "-" + std::to_string(g_temp_counter++);
  if (!parent.empty()) ARROW_RETURN_NOT_OK(fs->CreateDir(parent, /*recursive=*/true));
  ARROW_RETURN_NOT_OK(fs->CreateDir(tmp, /*recursive=*/true));
  Writer writer(fs.get(), tmp, options, options.crs_projjson, progress);
  Status st = writer.Run(spill_dir.path(), spill_path, collected, layout, budget);
  if (st.ok() && progress && progress->cancel.load()) st = Cancelled();
  if (st.ok()) {
    ARROW_ASSIGN_OR_RAISE(existing, fs->GetFileInfo(output));
    if (existing.type() == arrow::fs::FileType::Directory) {
      st = fs->DeleteDir(output);
    } else if (existing.type() == arrow::fs::FileType::File) {
      st = fs->DeleteFile(output);
    }
    if (st.ok()) st = MoveTableIntoPlace(fs.get(), tmp, output);
  }
  if (!st.ok()) {
    (void)fs->DeleteDir(tmp);
    return st;
  }
  IngestResult result;
  result.num_rows = n;
  result.num_files = writer.num_files();
  result.num_chunks = writer.num_chunks();
  result.rows_dropped = collected.dropped;
  return result;
}

Result<int64_t> MemoryBudget(int64_t option) {
  if (option > 0) return option;
  if (const char* env = std::getenv("TERRAFUSE_INGEST_MEMORY"); env && *env) {
    char* end = nullptr;
    double v = std::strtod(env, &end);
    std::string unit = end ? end : "";
    double scale = unit.empty() ? 1 : unit == "K" || unit == "KB" ? 1 << 10 : unit == "M" || unit == "MB" ? 1 << 20
                                    : unit == "G" || unit == "GB" ? 1 << 30 : 0;
    if (!(v > 0) || scale == 0) {
      return InvalidArgument("TERRAFUSE_INGEST_MEMORY must be a size in bytes such as 512MB or 4GB, got '", env, "'");
    }
    return static_cast<int64_t>(v * scale);
  }
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page / 4 : int64_t{2} << 30;
}

Result<std::pair<std::shared_ptr<arrow::fs::FileSystem>, std::string>> ResolvePath(
    const std::string& url, const storage::StorageConfig& config) {
  ARROW_ASSIGN_OR_RAISE(storage::Location where, storage::ResolveUri(url, config));
  return std::make_pair(where.fs, where.path);
}

// --- input ------------------------------------------------------------------------------

namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return s;
}

Result<std::string> FormatOf(const std::string& path, const std::string& format) {
  if (!format.empty()) {
    if (format != "parquet" && format != "csv") {
      return InvalidArgument("input format must be 'parquet' or 'csv', got '", format, "'");
    }
    return format;
  }
  std::string p = Lower(path);
  auto ends = [&](const char* s) { return p.size() >= strlen(s) && p.compare(p.size() - strlen(s), strlen(s), s) == 0; };
  if (ends(".parquet") || ends(".pq") || ends(".geoparquet")) return std::string("parquet");
  if (ends(".csv") || ends(".txt") || ends(".tsv")) return std::string("csv");
  return InvalidArgument("cannot tell the format of '", path, "' from its suffix; pass format='parquet' or 'csv'");
}

// Files read one after another as one stream; each must have the first file's schema.
class ChainedReader : public arrow::RecordBatchReader {
 public:
  using Opener = std::function<Result<std::shared_ptr<arrow::RecordBatchReader>>(const std::string&)>;

  static Result<std::shared_ptr<ChainedReader>> Make(std::vector<std::string> paths, Opener opener) {
    if (paths.empty()) return InvalidArgument("no input files");
    ARROW_ASSIGN_OR_RAISE(auto first, opener(paths[0]));
    auto r = std::shared_ptr<ChainedReader>(new ChainedReader(std::move(paths), std::move(opener)));
    r->schema_ = first->schema();
    r->current_ = std::move(first);
    return r;
  }

  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }

  Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override {
    while (true) {
      if (!current_) {
        *batch = nullptr;
        return Status::OK();
      }
      Status st = current_->ReadNext(batch);
      if (!st.ok()) return InvalidArgument("reading '", paths_[index_], "': ", st.message());
      if (*batch) return Status::OK();
      current_ = nullptr;
      if (++index_ >= paths_.size()) continue;
      ARROW_ASSIGN_OR_RAISE(current_, opener_(paths_[index_]));
      if (!current_->schema()->Equals(*schema_, /*check_metadata=*/false)) {
        return InvalidArgument("mixed schemas: '", paths_[index_], "' has columns ",
                               current_->schema()->ToString(), " but '", paths_[0], "' has ",
                               schema_->ToString());
      }
    }
  }

 private:
  ChainedReader(std::vector<std::string> paths, Opener opener) : paths_(std::move(paths)), opener_(std::move(opener)) {}
  std::vector<std::string> paths_;
  Opener opener_;
  size_t index_ = 0;
  std::shared_ptr<arrow::Schema> schema_;
  std::shared_ptr<arrow::RecordBatchReader> current_;
};

// Keeps the parquet::arrow::FileReader alive as long as its batch reader.
class OwningReader : public arrow::RecordBatchReader {
 public:
  OwningReader(std::unique_ptr<parquet::arrow::FileReader> file, std::unique_ptr<arrow::RecordBatchReader> reader,
               std::shared_ptr<arrow::Schema> schema)
      : file_(std::move(file)), reader_(std::move(reader)), schema_(std::move(schema)) {}
  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }
  Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override {
    ARROW_RETURN_NOT_OK(reader_->ReadNext(batch));
    if (*batch) *batch = arrow::RecordBatch::Make(schema_, (*batch)->num_rows(), (*batch)->columns());
    return Status::OK();
  }

 private:
  std::unique_ptr<parquet::arrow::FileReader> file_;
  std::unique_ptr<arrow::RecordBatchReader> reader_;
  std::shared_ptr<arrow::Schema> schema_;
};

}  // namespace

Result<std::shared_ptr<arrow::RecordBatchReader>> OpenInput(std::shared_ptr<arrow::fs::FileSystem> fs,
                                                           const std::vector<std::string>& paths,
                                                           const InputOptions& options, int64_t* total_rows) {
  int64_t total = 0;
  bool total_known = true;
  for (const std::string& path : paths) {
    ARROW_ASSIGN_OR_RAISE(auto info, fs->GetFileInfo(path));
    if (info.type() != arrow::fs::FileType::File) {
      return NotFound("input file '", path, "' ", info.type() == arrow::fs::FileType::Directory
                                                       ? "is a directory (pass file_suffix to read its files)"
                                                       : "does not exist");
    }
    ARROW_ASSIGN_OR_RAISE(std::string format, FormatOf(path, options.format));
    if (format != "parquet") {
      total_known = false;
      continue;
    }
    auto file = fs->OpenInputFile(path);
    if (!file.ok()) return IOError("cannot open '", path, "': ", file.status().message());
    auto reader = parquet::arrow::OpenFile(*file, arrow::default_memory_pool());
    if (!reader.ok()) return InvalidArgument("'", path, "' is not a readable Parquet file: ", reader.status().message());
    total += (*reader)->parquet_reader()->metadata()->num_rows();
  }
  if (total_rows) *total_rows = total_known ? total : -1;
  auto columns = options.columns;
  char delimiter = options.csv_delimiter;
  std::string forced = options.format;
  int64_t batch_bytes = options.batch_bytes;
  auto opener = [fs, columns, delimiter, forced, batch_bytes](const std::string& path) -> Result<std::shared_ptr<arrow::RecordBatchReader>> {
    ARROW_ASSIGN_OR_RAISE(std::string format, FormatOf(path, forced));
    if (format == "csv") {
      auto stream = fs->OpenInputStream(path);
      if (!stream.ok()) return IOError("cannot open '", path, "': ", stream.status().message());
      auto read = arrow::csv::ReadOptions::Defaults();
      read.block_size = static_cast<int32_t>(std::clamp<int64_t>(batch_bytes, 1 << 20, 16 << 20));
      auto parse = arrow::csv::ParseOptions::Defaults();
      parse.delimiter = delimiter;
      auto convert = arrow::csv::ConvertOptions::Defaults();
      convert.include_columns = columns;
      auto reader = arrow::csv::StreamingReader::Make(arrow::io::default_io_context(), *stream, read, parse, convert);
      if (!reader.ok()) return InvalidArgument("'", path, "' is not a readable CSV file: ", reader.status().message());
      return std::shared_ptr<arrow::RecordBatchReader>(*reader);
    }
    auto file = fs->OpenInputFile(path);
    if (!file.ok()) return IOError("cannot open '", path, "': ", file.status().message());
    parquet::arrow::FileReaderBuilder builder;
    Status st = builder.Open(*file);
    if (!st.ok()) return InvalidArgument("'", path, "' is not a readable Parquet file: ", st.message());
    // Batches of about batch_bytes (wide rows, fewer rows), at most 64 k rows.
    auto meta = builder.raw_reader()->metadata();
    int64_t bytes = 0;
    for (int i = 0; i < meta->num_row_groups(); ++i) bytes += meta->RowGroup(i)->total_byte_size();
    double width = meta->num_rows() > 0 ? static_cast<double>(bytes) / meta->num_rows() : 1;
    parquet::ArrowReaderProperties props;
    props.set_batch_size(std::clamp<int64_t>(static_cast<int64_t>(batch_bytes / std::max(width, 1.0)), 1024, 65536));
    props.set_use_threads(true);
    std::unique_ptr<parquet::arrow::FileReader> reader;
    ARROW_RETURN_NOT_OK(builder.properties(props)->Build(&reader));
    std::shared_ptr<arrow::Schema> schema;
    ARROW_RETURN_NOT_OK(reader->GetSchema(&schema));
    std::vector<int> indices;
    arrow::FieldVector fields;
    if (columns.empty()) {
      for (int i = 0; i < schema->num_fields(); ++i) indices.push_back(i);
    } else {
      for (const std::string& c : columns) {
        int i = schema->GetFieldIndex(c);
        if (i < 0) return InvalidArgument("load_columns: column '", c, "' not found in '", path, "'");
        indices.push_back(i);
      }
    }
    for (int i : indices) fields.push_back(schema->field(i));
    std::vector<int> row_groups(reader->num_row_groups());
    for (int i = 0; i < reader->num_row_groups(); ++i) row_groups[i] = i;
    // Column indices of the Arrow schema become leaf indices for the Parquet reader.
    std::vector<int> leaves;
    const auto& manifest = reader->manifest();
    std::function<void(const parquet::arrow::SchemaField&)> collect = [&](const parquet::arrow::SchemaField& f) {
      if (f.column_index >= 0) leaves.push_back(f.column_index);
      for (const auto& child : f.children) collect(child);
    };
    for (int i : indices) collect(manifest.schema_fields[i]);
    ARROW_ASSIGN_OR_RAISE(auto batches, reader->GetRecordBatchReader(row_groups, leaves));
    auto out_schema = arrow::schema(fields, schema->metadata());
    return std::shared_ptr<arrow::RecordBatchReader>(
        std::make_shared<OwningReader>(std::move(reader), std::move(batches), out_schema));
  };
  ARROW_ASSIGN_OR_RAISE(auto chained, ChainedReader::Make(paths, opener));
  return std::shared_ptr<arrow::RecordBatchReader>(chained);
}

}  // namespace terrafuse::ingest

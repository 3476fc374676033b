#include "terrafuse/ingest/table_reader.h"

#include <arrow/api.h>
#include <arrow/filesystem/filesystem.h>
#include <arrow/compute/api.h>
#include <arrow/io/api.h>
#include <arrow/util/base64.h>
#include <arrow/util/compression.h>
#include <arrow/util/task_group.h>
#include <arrow/util/thread_pool.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/schema.h>
#include <parquet/file_reader.h>
#include <parquet/column_reader.h>
#include <parquet/encoding.h>
#include <parquet/exception.h>
#include <parquet/metadata.h>
#include <parquet/page_index.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <zstd.h>

#include "terrafuse/ingest/geometry.h"

namespace terrafuse::ingest {

namespace {

std::string Trim(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

// What a small read would otherwise parse again on every call: the footers of the files of
// tables read before and their decoded chunk metadata (a bbox query of a few ms spent about
// 1.5 ms on them). An entry is used only while its file has the same size and modification
// time, so a table written again (overwrite) is parsed again.
class ParsedCache {
 public:
  template <typename T>
  std::shared_ptr<T> Find(const std::string& key, const arrow::fs::FileInfo& info) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.size != info.size() || it->second.mtime != info.mtime()) return nullptr;
    return std::static_pointer_cast<T>(it->second.value);
  }
  void Put(const std::string& key, const arrow::fs::FileInfo& info, std::shared_ptr<void> value) {
    // Some stores keep whole seconds of modification time (S3): a file written again within
    // the second of the entry, at the same size, would look unchanged. Only files settled
    // for a while are kept.
    if (std::chrono::system_clock::now() - info.mtime() < kSettled) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (entries_.size() >= kMaxEntries) entries_.clear();  // bounded; parsing again is cheap
    entries_[key] = Entry{info.size(), info.mtime(), std::move(value)};
  }

 private:
  static constexpr size_t kMaxEntries = 1024;
  static constexpr std::chrono::seconds kSettled{10};
  struct Entry {
    int64_t size;
    arrow::fs::TimePoint mtime;
    std::shared_ptr<void> value;
  };
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

ParsedCache& Parsed() {
  static auto* cache = new ParsedCache;  // never destroyed: readers may run at exit
  return *cache;
}

// The cache key of a file: its URI (filesystem objects are made per call, so not their
// address), else its filesystem's type and path.
std::string ParsedKey(const arrow::fs::FileSystem* fs, const std::string& path, std::string_view what) {
  Result<std::string> uri = fs->MakeUri(path);
  return std::string(what) + ":" + (uri.ok() ? *uri : fs->type_name() + ":" + path);
}

Result<arrow::fs::FileInfo> ExistingFile(arrow::fs::FileSystem* fs, const std::string& path) {
  auto info = fs->GetFileInfo(path);
  if (!info.ok()) return IOError("cannot open '", path, "': ", info.status().message());
  if (info->type() == arrow::fs::FileType::NotFound) return NotFound("'", path, "' does not exist");
  if (info->type() != arrow::fs::FileType::File) return IOError("cannot open '", path, "': not a file");
  return std::move(*info);
}

// `source`, when given, is set to the file the reader reads (for reads by page).
Result<std::unique_ptr<parquet::arrow::FileReader>> OpenParquet(
    arrow::fs::FileSystem* fs, const std::string& path,
    std::shared_ptr<arrow::io::RandomAccessFile>* source = nullptr) {
  ARROW_ASSIGN_OR_RAISE(arrow::fs::FileInfo info, ExistingFile(fs, path));
  auto file = fs->OpenInputFile(info);
  if (!file.ok()) return IOError("cannot open '", path, "': ", file.status().message());
  if (source) *source = *file;
  const std::string key = ParsedKey(fs, path, "footer");
  std::shared_ptr<parquet::FileMetaData> footer = Parsed().Find<parquet::FileMetaData>(key, info);
  std::unique_ptr<parquet::arrow::FileReader> reader;
  try {
    auto contents = parquet::ParquetFileReader::Open(*file, parquet::default_reader_properties(), footer);
    if (!footer) Parsed().Put(key, info, contents->metadata());
    auto made = parquet::arrow::FileReader::Make(arrow::default_memory_pool(), std::move(contents),
                                                 parquet::default_arrow_reader_properties());
    if (!made.ok()) {
      return InvalidArgument("'", path, "' is not a readable Parquet file: ", made.status().message());
    }
    reader = std::move(*made);
  } catch (const parquet::ParquetException& e) {
    return InvalidArgument("'", path, "' is not a readable Parquet file: ", e.what());
  }
  return reader;
}

// Leaf column indices of the top-level fields named `names` (all fields when empty).
Result<std::vector<int>> LeafIndices(parquet::arrow::FileReader* reader, const std::vector<std::string>& names,
                                     const std::string& path) {
  const auto& manifest = reader->manifest();
  std::vector<int> leaves;
  std::function<void(const parquet::arrow::SchemaField&)> collect = [&](const parquet::arrow::SchemaField& f) {
    if (f.column_index >= 0) leaves.push_back(f.column_index);
    for (const auto& child : f.children) collect(child);
  };
  if (names.empty()) {
    for (const auto& f : manifest.schema_fields) collect(f);
    return leaves;
  }
  for (const std::string& name : names) {
    bool found = false;
    for (const auto& f : manifest.schema_fields) {
      if (f.field->name() == name) {
        collect(f);
        found = true;
        break;
      }
    }
    if (!found) return InvalidArgument("column '", name, "' not found in '", path, "'");
  }
  return leaves;
}

struct GeoColumns {
  std::string geometry = "geometry";
  std::string bbox;          // covering column, "" when none
  bool points_only = false;  // geometry_types says only points
};

// From the file's footer: the `geo` key of a data file is added at close, after the
// Arrow schema stored in the file was written.
GeoColumns GeoColumnsOf(parquet::arrow::FileReader* reader) {
  GeoColumns out;
  auto md = reader->parquet_reader()->metadata()->key_value_metadata();
  if (!md) return out;
  int idx = md->FindKey("geo");
  if (idx < 0) return out;
  auto geo = nlohmann::json::parse(md->value(idx), nullptr, false);
  if (!geo.is_object()) return out;
  out.geometry = geo.value("primary_column", out.geometry);
  try {
    const auto& types = geo.at("columns").at(out.geometry).at("geometry_types");
    out.points_only = types.is_array() && !types.empty();
    for (const auto& t : types) out.points_only = out.points_only && (t == "Point" || t == "Point Z");
  } catch (const nlohmann::json::exception&) {
    out.points_only = false;
  }
  try {
    out.bbox = geo.at("columns").at(out.geometry).at("covering").at("bbox").at("xmin").at(0).get<std::string>();
  } catch (const nlohmann::json::exception&) {
    out.bbox.clear();
  }
  return out;
}

std::string FileIdString(const arrow::Array& a, int64_t i) {
  auto scalar = a.GetScalar(i).ValueOrDie();
  if (a.type_id() == arrow::Type::DOUBLE) {
    return std::to_string(static_cast<int64_t>(static_cast<const arrow::DoubleScalar&>(*scalar).value));
  }
  if (a.type_id() == arrow::Type::STRING || a.type_id() == arrow::Type::LARGE_STRING) {
    return std::string(static_cast<const arrow::BaseBinaryScalar&>(*scalar).view());
  }
  return scalar->ToString();
}

// Which rows of row groups `rgs` may meet `b`, from the bbox covering column alone (four
// floats a row: far cheaper to decode than the rest). Empty when the column is unusable.
Result<std::vector<uint8_t>> BboxCandidates(parquet::arrow::FileReader* reader, const std::vector<int>& rgs,
                                            const std::string& bbox, const std::array<double, 4>& b,
                                            const std::string& path) {
  std::vector<uint8_t> out;
  ARROW_ASSIGN_OR_RAISE(auto leaves, LeafIndices(reader, {bbox}, path));
  ARROW_ASSIGN_OR_RAISE(auto table, reader->ReadRowGroups(rgs, leaves));
  auto column = table->GetColumnByName(bbox);
  if (!column || column->type()->id() != arrow::Type::STRUCT) return out;
  out.reserve(table->num_rows());
  for (const auto& piece : column->chunks()) {
    const auto& st = static_cast<const arrow::StructArray&>(*piece);
    std::array<std::shared_ptr<arrow::Array>, 4> v;
    const char* names[4] = {"xmin", "ymin", "xmax", "ymax"};
    for (int j = 0; j < 4; ++j) {
      auto child = st.GetFieldByName(names[j]);
      if (!child || !arrow::is_floating(child->type_id())) return std::vector<uint8_t>{};
      ARROW_ASSIGN_OR_RAISE(arrow::Datum d, arrow::compute::Cast(child, arrow::float64()));
      v[j] = d.make_array();
    }
    auto raw = [&](int j) { return static_cast<const arrow::DoubleArray&>(*v[j]).raw_values(); };
    const double *x0 = raw(0), *y0 = raw(1), *x1 = raw(2), *y1 = raw(3);
    for (int64_t i = 0; i < st.length(); ++i) {
      // A null box (or a null row) stays a candidate: the exact test decides.
      bool known = st.IsValid(i) && v[0]->IsValid(i) && v[1]->IsValid(i) && v[2]->IsValid(i) && v[3]->IsValid(i);
      out.push_back(!known || !(x0[i] > b[2] || x1[i] < b[0] || y0[i] > b[3] || y1[i] < b[1]));
    }
  }
  return out;
}

// Which rows of row groups `rgs` meet `b`, from the WKB of a point table (decoded once: the
// column is returned in `geoms` to be reused).
Result<std::vector<uint8_t>> PointCandidates(parquet::arrow::FileReader* reader, const std::vector<int>& rgs,
                                             const std::string& geometry, const std::array<double, 4>& b,
                                             const std::string& path, std::shared_ptr<arrow::ChunkedArray>* geoms) {
  ARROW_ASSIGN_OR_RAISE(auto leaves, LeafIndices(reader, {geometry}, path));
  ARROW_ASSIGN_OR_RAISE(auto table, reader->ReadRowGroups(rgs, leaves));
  *geoms = table->column(0);
  std::vector<uint8_t> out;
  out.reserve(table->num_rows());
  GeomInfo info;
  for (const auto& piece : (*geoms)->chunks()) {
    if (piece->type_id() != arrow::Type::BINARY) return std::vector<uint8_t>{};  // the general path decides
    const auto& wkbs = static_cast<const arrow::BinaryArray&>(*piece);
    for (int64_t i = 0; i < wkbs.length(); ++i) {
      bool hit = false;
      if (wkbs.IsValid(i)) {
        ARROW_RETURN_NOT_OK(ScanWkb(wkbs.GetView(i), &info));
        // Any box overlap: for a point that is the exact answer; others are tested again.
        hit = !(info.empty() || info.minx > b[2] || info.maxx < b[0] || info.miny > b[3] || info.maxy < b[1]);
      }
      out.push_back(hit);
    }
  }
  return out;
}

// Rows [begin, end) of a row group, sorted and disjoint.
using Ranges = std::vector<std::pair<int64_t, int64_t>>;

Ranges Intersect(const Ranges& a, const Ranges& b) {
  Ranges out;
  for (size_t i = 0, j = 0; i < a.size() && j < b.size();) {
    int64_t lo = std::max(a[i].first, b[j].first), hi = std::min(a[i].second, b[j].second);
    if (lo < hi) out.emplace_back(lo, hi);
    if (a[i].second < b[j].second) {
      ++i;
    } else {
      ++j;
    }
  }
  return out;
}

// The first row of each page of a column chunk, then the row group's row count; nullopt
// when the offset index does not describe pages following each other from row 0 (the
// readers by page then read whole row groups).
std::optional<std::vector<int64_t>> PageStarts(const parquet::OffsetIndex& index, int64_t num_rows) {
  std::vector<int64_t> starts;
  for (const auto& page : index.page_locations()) {
    if (starts.empty() ? page.first_row_index != 0 : page.first_row_index <= starts.back()) return std::nullopt;
    starts.push_back(page.first_row_index);
  }
  if (starts.empty() || starts.back() >= num_rows) return std::nullopt;
  starts.push_back(num_rows);
  return starts;
}

template <typename T>
bool PageBounds(const parquet::ColumnIndex& index, std::vector<double>* mins, std::vector<double>* maxs) {
  auto typed = dynamic_cast<const parquet::TypedColumnIndex<T>*>(&index);
  if (!typed) return false;
  mins->assign(typed->min_values().begin(), typed->min_values().end());
  maxs->assign(typed->max_values().begin(), typed->max_values().end());
  return true;
}

// The rows of a row group that may meet `b` by the page index of the bbox covering column
// (min/max of xmin, ymin, xmax, ymax per page); nullopt when the file has no usable one.
std::optional<Ranges> PageCandidates(parquet::RowGroupPageIndexReader* index, const std::array<int, 4>& leaves,
                                     int64_t num_rows, const std::array<double, 4>& b) {
  Ranges out{{0, num_rows}};
  for (int j = 0; j < 4; ++j) {
    auto column_index = index->GetColumnIndex(leaves[j]);
    auto offset_index = index->GetOffsetIndex(leaves[j]);
    if (!column_index || !offset_index) return std::nullopt;
    std::vector<double> mins, maxs;
    if (!PageBounds<parquet::FloatType>(*column_index, &mins, &maxs) &&
        !PageBounds<parquet::DoubleType>(*column_index, &mins, &maxs)) {
      return std::nullopt;
    }
    std::optional<std::vector<int64_t>> page_starts = PageStarts(*offset_index, num_rows);
    if (!page_starts) return std::nullopt;
    const std::vector<int64_t>& starts = *page_starts;
    size_t pages = starts.size() - 1;
    const auto& null_pages = column_index->null_pages();
    if (null_pages.size() != pages || mins.size() != pages || maxs.size() != pages) return std::nullopt;
    bool counts = column_index->has_null_counts() && column_index->null_counts().size() == pages;
    Ranges keep;
    for (size_t p = 0; p < pages; ++p) {
      // A page with nulls keeps its rows: a null box leaves the decision to the exact test.
      bool nulls = null_pages[p] || !counts || column_index->null_counts()[p] > 0;
      bool meets = j == 0 ? mins[p] <= b[2] : j == 1 ? mins[p] <= b[3] : j == 2 ? maxs[p] >= b[0] : maxs[p] >= b[1];
      if (!nulls && !meets) continue;
      if (!keep.empty() && keep.back().second == starts[p]) {
        keep.back().second = starts[p + 1];
      } else {
        keep.emplace_back(starts[p], starts[p + 1]);
      }
    }
    out = Intersect(out, keep);
  }
  return out;
}

// Whether a Parquet time unit is an Arrow one: the values then need no conversion.
bool SameUnit(parquet::LogicalType::TimeUnit::unit parquet_unit, const arrow::DataType& type) {
  auto unit = type.id() == arrow::Type::TIMESTAMP ? static_cast<const arrow::TimestampType&>(type).unit()
              : type.id() == arrow::Type::TIME32  ? static_cast<const arrow::Time32Type&>(type).unit()
              : type.id() == arrow::Type::TIME64  ? static_cast<const arrow::Time64Type&>(type).unit()
                                                  : arrow::TimeUnit::SECOND;
  using Unit = parquet::LogicalType::TimeUnit;
  return (parquet_unit == Unit::MILLIS && unit == arrow::TimeUnit::MILLI) ||
         (parquet_unit == Unit::MICROS && unit == arrow::TimeUnit::MICRO) ||
         (parquet_unit == Unit::NANOS && unit == arrow::TimeUnit::NANO);
}

// Whether the page readers below decode this leaf to `type` exactly as the Arrow reader
// would: flat columns of booleans, numbers, dates, times and timestamps whose values are
// the stored ones (same unit), binary or strings.
bool PlainLeaf(const parquet::ColumnDescriptor& descr, const arrow::DataType& type) {
  if (descr.max_repetition_level() != 0 || descr.max_definition_level() > 1) return false;
  auto logical = descr.logical_type();
  bool plain = !logical || logical->is_none() || (logical->is_int() && type.id() != arrow::Type::UINT32 &&
                                                  type.id() != arrow::Type::UINT64);
  auto time_unit = [&]() -> parquet::LogicalType::TimeUnit::unit {
    if (logical && logical->is_timestamp()) {
      return static_cast<const parquet::TimestampLogicalType&>(*logical).time_unit();
    }
    if (logical && logical->is_time()) return static_cast<const parquet::TimeLogicalType&>(*logical).time_unit();
    return parquet::LogicalType::TimeUnit::UNKNOWN;
  };
  switch (descr.physical_type()) {
    case parquet::Type::BOOLEAN:
      return type.id() == arrow::Type::BOOL;
    case parquet::Type::INT32:
      return (plain && type.id() == arrow::Type::INT32) ||
             (logical && logical->is_date() && type.id() == arrow::Type::DATE32) ||
             (logical && logical->is_time() && type.id() == arrow::Type::TIME32 && SameUnit(time_unit(), type));
    case parquet::Type::INT64:
      return (plain && type.id() == arrow::Type::INT64) ||
             (logical && logical->is_timestamp() && type.id() == arrow::Type::TIMESTAMP &&
              SameUnit(time_unit(), type)) ||
             (logical && logical->is_time() && type.id() == arrow::Type::TIME64 && SameUnit(time_unit(), type));
    case parquet::Type::FLOAT:
      return plain && type.id() == arrow::Type::FLOAT;
    case parquet::Type::DOUBLE:
      return plain && type.id() == arrow::Type::DOUBLE;
    case parquet::Type::BYTE_ARRAY:
      return type.id() == arrow::Type::BINARY || (type.id() == arrow::Type::STRING && logical && logical->is_string());
    default:
      return false;
  }
}

// Where the pages of a file are read from: its file, and whether it is remote (a request
// per run of pages would cost more there than reading the bytes between them).
struct PageSource {
  std::shared_ptr<arrow::io::RandomAccessFile> file;
  bool remote = false;
};

constexpr const char* kBadOffsetIndex = "the offset index points outside the file";

// The bytes of the pages `keep` of a column chunk (its dictionary page first, if any), one
// after another: a stream a page reader decodes as if the other pages were never written.
// Only those bytes are read (a whole column chunk is ~16x more than a small box needs).
Result<std::shared_ptr<arrow::Buffer>> KeptPages(const PageSource& source, const parquet::ColumnChunkMetaData& chunk,
                                                 const std::vector<parquet::PageLocation>& pages,
                                                 const std::vector<uint8_t>& keep) {
  std::vector<std::pair<int64_t, int64_t>> spans;  // [offset, end), adjacent pages merged
  auto add = [&](int64_t offset, int64_t length) {
    if (!spans.empty() && spans.back().second == offset) {
      spans.back().second += length;
    } else {
      spans.emplace_back(offset, offset + length);
    }
  };
  if (chunk.has_dictionary_page()) add(chunk.dictionary_page_offset(), pages[0].offset - chunk.dictionary_page_offset());
  for (size_t p = 0; p < pages.size(); ++p) {
    if (!keep[p]) continue;
    if (pages[p].offset < 0 || pages[p].compressed_page_size <= 0) return IOError(kBadOffsetIndex);
    add(pages[p].offset, pages[p].compressed_page_size);
  }
  int64_t total = 0;
  for (const auto& [begin, end] : spans) total += end - begin;
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::ResizableBuffer> out, arrow::AllocateResizableBuffer(total));
  std::shared_ptr<arrow::Buffer> whole;  // remote: one read from the first kept byte to the last
  if (source.remote && !spans.empty()) {
    ARROW_ASSIGN_OR_RAISE(whole, source.file->ReadAt(spans.front().first, spans.back().second - spans.front().first));
  }
  int64_t at = 0;
  for (const auto& [begin, end] : spans) {
    if (whole) {
      if (whole->size() < end - spans.front().first) return IOError(kBadOffsetIndex);
      std::memcpy(out->mutable_data() + at, whole->data() + (begin - spans.front().first), end - begin);
    } else {
      ARROW_ASSIGN_OR_RAISE(int64_t got, source.file->ReadAt(begin, end - begin, out->mutable_data() + at));
      if (got != end - begin) return IOError(kBadOffsetIndex);
    }
    at += end - begin;
  }
  return out;
}

// An unsigned LEB128 varint at `*p` (Thrift's compact integers and Parquet's RLE run
// headers); advances `*p`. False when it runs past `end` or over 64 bits.
bool ReadVarint(const uint8_t** p, const uint8_t* end, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t byte = *(*p)++;
    *v |= uint64_t{byte & 0x7fu} << shift;
    if (!(byte & 0x80)) return true;
  }
  return false;
}

// Thrift compact protocol, as much as reading a page header's leading fields needs.
class CompactReader {
 public:
  CompactReader(const uint8_t* p, const uint8_t* end) : p_(p), end_(end) {}
  bool I32(int32_t* v) {
    uint64_t u;
    if (!ReadVarint(&p_, end_, &u)) return false;
    *v = static_cast<int32_t>((u >> 1) ^ (~(u & 1) + 1));  // zigzag
    return true;
  }
  // The next field of the current struct: false at its end or on bad input.
  bool Field(int* id, int* type) {
    if (p_ >= end_ || *p_ == 0) return false;
    uint8_t byte = *p_++;
    *type = byte & 0x0f;
    if (byte >> 4) {
      *id = last_ + (byte >> 4);
    } else {
      int32_t v;
      if (!I32(&v)) return false;
      *id = v;
    }
    last_ = *id;
    return true;
  }
  void EnterStruct() { last_ = 0; }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  int last_ = 0;
};

// The fields of a page header that the page walker needs: a v1 data page's or a dictionary
// page's. nullopt for other pages (v2 data pages, index pages) or headers it does not follow:
// the general reader then decides.
struct PageHeader {
  bool dictionary = false;
  int32_t uncompressed = -1, compressed = -1, num_values = -1, encoding = -1, level_encoding = -1;
};
std::optional<PageHeader> ParsePageHeader(const uint8_t* p, const uint8_t* end) {
  constexpr int kI32 = 5, kStruct = 12;
  constexpr int kDataPage = 0, kDictionaryPage = 2;
  CompactReader in(p, end);
  PageHeader h;
  int32_t page_type = -1;
  int id, type;
  while (in.Field(&id, &type)) {
    if (type == kI32 && id <= 4) {  // type, uncompressed size, compressed size, crc
      int32_t v;
      if (!in.I32(&v)) return std::nullopt;
      if (id == 1) page_type = v;
      if (id == 2) h.uncompressed = v;
      if (id == 3) h.compressed = v;
      continue;
    }
    // data_page_header (5) or dictionary_page_header (7): their leading i32 fields are
    // num_values, encoding (and for data pages the levels' encodings); the rest is not needed.
    bool data = id == 5 && page_type == kDataPage, dictionary = id == 7 && page_type == kDictionaryPage;
    if (type != kStruct || !(data || dictionary)) return std::nullopt;
    h.dictionary = dictionary;
    in.EnterStruct();
    while (in.Field(&id, &type) && type == kI32 && id <= 4) {
      int32_t v;
      if (!in.I32(&v)) return std::nullopt;
      if (id == 1) h.num_values = v;
      if (id == 2) h.encoding = v;
      if (id == 3 && data) h.level_encoding = v;
    }
    if (h.uncompressed < 0 || h.compressed < 0 || h.num_values < 0 || h.encoding < 0 ||
        (data && h.level_encoding < 0)) {
      return std::nullopt;
    }
    return h;
  }
  return std::nullopt;
}

// Definition levels of a flat optional column: Parquet's RLE/bit-packed hybrid at bit width 1.
bool DecodeLevels(const uint8_t* p, const uint8_t* end, int32_t n, std::vector<uint8_t>* out) {
  out->clear();
  out->reserve(n);
  while (static_cast<int32_t>(out->size()) < n) {
    uint64_t header;
    if (!ReadVarint(&p, end, &header)) return false;
    uint64_t count = header >> 1;
    if (count == 0) return false;
    if (header & 1) {  // `count` groups of 8 levels, a byte each
      if (static_cast<uint64_t>(end - p) < count) return false;
      for (uint64_t g = 0; g < count; ++g, ++p) {
        for (int bit = 0; bit < 8 && static_cast<int32_t>(out->size()) < n; ++bit) out->push_back((*p >> bit) & 1);
      }
    } else {  // a run of `count` equal levels
      if (p >= end) return false;
      uint8_t level = *p++ & 1;
      out->insert(out->end(), std::min<uint64_t>(count, n - out->size()), level);
    }
  }
  return true;
}

// Decompresses pages. zstd (the ingest's codec) through one context per thread: Arrow's codec
// makes a context for every page, and making one was ~6% of a small-box read's CPU.
class PageDecompressor {
 public:
  static Result<PageDecompressor> Make(arrow::Compression::type codec) {
    PageDecompressor d;
    d.codec_ = codec;
    if (codec != arrow::Compression::UNCOMPRESSED && codec != arrow::Compression::ZSTD) {
      ARROW_ASSIGN_OR_RAISE(d.arrow_, arrow::util::Codec::Create(codec));
    }
    return d;
  }
  static bool Supports(arrow::Compression::type codec) {
    return codec == arrow::Compression::UNCOMPRESSED || codec == arrow::Compression::ZSTD ||
           codec == arrow::Compression::LZ4 || codec == arrow::Compression::SNAPPY ||
           codec == arrow::Compression::GZIP;
  }
  bool compressed() const { return codec_ != arrow::Compression::UNCOMPRESSED; }
  // Whether `in` decompressed to exactly `out_size` bytes at `out`.
  bool Decompress(const uint8_t* in, int64_t in_size, uint8_t* out, int64_t out_size) {
    if (codec_ == arrow::Compression::ZSTD) {
      thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> context(ZSTD_createDCtx(), ZSTD_freeDCtx);
      if (!context) return false;
      size_t n = ZSTD_decompressDCtx(context.get(), out, out_size, in, in_size);
      return !ZSTD_isError(n) && static_cast<int64_t>(n) == out_size;
    }
    auto n = arrow_->Decompress(in_size, in, out_size, out);
    return n.ok() && *n == out_size;
  }

 private:
  arrow::Compression::type codec_ = arrow::Compression::UNCOMPRESSED;
  std::unique_ptr<arrow::util::Codec> arrow_;
};

// One decompressed page of a flat column, as PageWalker hands it out.
struct Page {
  bool dictionary = false;              // the dictionary page (then first_row is 0)
  int64_t first_row = 0;                // of a data page, in the row group
  int32_t num_values = 0;
  int32_t present = 0;                  // values that are not null
  const std::vector<uint8_t>* levels;   // one a value (1 = present); empty when none is null
  parquet::Encoding::type encoding;
  const uint8_t* values;                // the encoded values of the page...
  const uint8_t* end;                   // ...up to here
};

// Walks the kept pages of a flat column chunk (its dictionary page first, if any), each
// decompressed into one reused buffer. Only v1 data pages that hold the rows the offset index
// says are followed: for anything else `Next` sets `*unsupported`, and the caller falls back
// to the Arrow reader.
class PageWalker {
 public:
  static Result<std::optional<PageWalker>> Open(const PageSource& source, const parquet::ColumnChunkMetaData& chunk,
                                                const parquet::ColumnDescriptor& descr,
                                                const parquet::OffsetIndex& index, int64_t num_rows,
                                                std::vector<uint8_t> keep) {
    if (descr.max_repetition_level() != 0 || descr.max_definition_level() > 1 || chunk.crypto_metadata() ||
        !PageDecompressor::Supports(chunk.compression()) || index.page_locations().empty() ||
        (chunk.has_dictionary_page() && !(chunk.dictionary_page_offset() > 0 &&
                                          chunk.dictionary_page_offset() < index.page_locations()[0].offset))) {
      return std::nullopt;
    }
    PageWalker w(descr);
    ARROW_ASSIGN_OR_RAISE(w.decompressor_, PageDecompressor::Make(chunk.compression()));
    ARROW_ASSIGN_OR_RAISE(w.bytes_, KeptPages(source, chunk, index.page_locations(), keep));
    ARROW_ASSIGN_OR_RAISE(w.page_buffer_, arrow::AllocateResizableBuffer(0));
    w.pages_ = index.page_locations();
    w.starts_ = *PageStarts(index, num_rows);  // callers checked them
    w.keep_ = std::move(keep);
    w.at_ = w.bytes_->data();
    if (chunk.has_dictionary_page()) w.dictionary_size_ = w.pages_[0].offset - chunk.dictionary_page_offset();
    return std::optional<PageWalker>(std::move(w));
  }

  // The next page: false after the last. A page in a layout not followed sets `*unsupported`;
  // a damaged one is an error.
  Result<bool> Next(Page* page, bool* unsupported) {
    *unsupported = false;
    const uint8_t* start = at_;
    page->dictionary = dictionary_size_ > 0 && start == bytes_->data();
    size_t p = 0;
    if (page->dictionary) {
      at_ += dictionary_size_;
      page->first_row = 0;
    } else {
      while (p_ < keep_.size() && !keep_[p_]) ++p_;
      if (p_ == keep_.size()) return false;
      p = p_++;
      at_ += pages_[p].compressed_page_size;  // KeptPages checked the sizes
      page->first_row = starts_[p];
    }
    auto header = ParsePageHeader(start, at_);
    if (!header || header->dictionary != page->dictionary || header->compressed > at_ - start ||
        (!page->dictionary && (header->num_values != starts_[p + 1] - starts_[p] ||
                               (descr_.max_definition_level() == 1 && header->level_encoding != parquet::Encoding::RLE)))) {
      *unsupported = true;
      return true;
    }
    const uint8_t* body = at_ - header->compressed;
    const uint8_t* end = at_;
    if (decompressor_.compressed()) {
      ARROW_RETURN_NOT_OK(page_buffer_->Resize(header->uncompressed, /*shrink_to_fit=*/false));
      if (!decompressor_.Decompress(body, header->compressed, page_buffer_->mutable_data(), header->uncompressed)) {
        return Corrupt();
      }
      body = page_buffer_->data();
      end = body + header->uncompressed;
    }
    page->num_values = header->num_values;
    page->present = header->num_values;
    page->encoding = static_cast<parquet::Encoding::type>(header->encoding);
    levels_.clear();
    if (!page->dictionary && descr_.max_definition_level() == 1) {
      uint32_t length;
      if (end - body < 4) return Corrupt();
      std::memcpy(&length, body, 4);
      body += 4;
      if (length > static_cast<uint64_t>(end - body) || !DecodeLevels(body, body + length, page->num_values, &levels_)) {
        return Corrupt();
      }
      body += length;
      page->present = static_cast<int32_t>(std::count(levels_.begin(), levels_.end(), 1));
      if (page->present == page->num_values) levels_.clear();
    }
    page->levels = &levels_;
    page->values = body;
    page->end = end;
    return true;
  }

  Status Corrupt() const { return IOError("a page of column '", descr_.path()->ToDotString(), "' is corrupt"); }

 private:
  explicit PageWalker(const parquet::ColumnDescriptor& descr) : descr_(descr) {}
  const parquet::ColumnDescriptor& descr_;
  PageDecompressor decompressor_;
  std::shared_ptr<arrow::Buffer> bytes_;
  std::unique_ptr<arrow::ResizableBuffer> page_buffer_;
  std::vector<parquet::PageLocation> pages_;
  std::vector<int64_t> starts_;
  std::vector<uint8_t> keep_;
  std::vector<uint8_t> levels_;
  const uint8_t* at_ = nullptr;
  size_t p_ = 0;
  int64_t dictionary_size_ = 0;
};

// Whether parquet's decoders read values of physical type `type` in `encoding` (dictionary
// indices aside): the encodings Parquet writers use for booleans and numbers.
bool NumberDecoding(parquet::Type::type type, parquet::Encoding::type encoding) {
  if (type == parquet::Type::BOOLEAN) return encoding == parquet::Encoding::PLAIN || encoding == parquet::Encoding::RLE;
  bool integer = type == parquet::Type::INT32 || type == parquet::Type::INT64;
  return encoding == parquet::Encoding::PLAIN || encoding == parquet::Encoding::BYTE_STREAM_SPLIT ||
         (integer && encoding == parquet::Encoding::DELTA_BINARY_PACKED);
}

// Booleans stored a byte each (parquet's decoders and record reader), as an Arrow bitmap.
Result<std::shared_ptr<arrow::Buffer>> PackBooleans(const uint8_t* bytes, int64_t n) {
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::Buffer> bits, arrow::AllocateEmptyBitmap(n));
  for (int64_t i = 0; i < n; ++i) {
    if (bytes[i]) arrow::bit_util::SetBit(bits->mutable_data(), i);
  }
  return bits;
}

// The values at `rows` (sorted row numbers) of a flat column of booleans or fixed-width
// numbers, decoded straight from the pages the walker keeps: no record reader, no levels
// turned into bitmaps and no Take afterwards. nullopt when a page is in a layout the walker
// does not follow.
template <typename DType>
Result<std::optional<std::shared_ptr<arrow::Array>>> GatherNumbers(PageWalker* walker,
                                                                   const parquet::ColumnDescriptor& descr,
                                                                   const std::shared_ptr<arrow::DataType>& type,
                                                                   const std::vector<int64_t>& rows) {
  using T = typename DType::c_type;
  constexpr bool kBoolean = std::is_same_v<T, bool>;
  using Slot = std::conditional_t<kBoolean, uint8_t, T>;  // booleans a byte each, packed at the end
  const auto n = static_cast<int64_t>(rows.size());
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::Buffer> values, arrow::AllocateBuffer(n * sizeof(Slot)));
  Slot* out = reinterpret_cast<Slot*>(values->mutable_data());
  std::shared_ptr<arrow::Buffer> validity;  // made at the first null
  int64_t nulls = 0;
  std::unique_ptr<parquet::DictDecoder<DType>> dictionary;
  std::map<parquet::Encoding::type, std::unique_ptr<parquet::TypedDecoder<DType>>> decoders;
  std::vector<Slot> decoded;
  size_t r = 0;
  Page page;
  bool unsupported;
  try {
    while (true) {
      ARROW_ASSIGN_OR_RAISE(bool more, walker->Next(&page, &unsupported));
      if (!more) break;
      if (unsupported) return std::nullopt;
      if (page.dictionary) {
        if (kBoolean ||
            (page.encoding != parquet::Encoding::PLAIN && page.encoding != parquet::Encoding::PLAIN_DICTIONARY)) {
          return std::nullopt;  // Parquet has no boolean dictionaries
        }
        auto plain = parquet::MakeTypedDecoder<DType>(parquet::Encoding::PLAIN, &descr);
        plain->SetData(page.num_values, page.values, static_cast<int>(page.end - page.values));
        dictionary = parquet::MakeDictDecoder<DType>(&descr);
        dictionary->SetDict(plain.get());
        continue;
      }
      parquet::TypedDecoder<DType>* decoder;
      if (page.encoding == parquet::Encoding::RLE_DICTIONARY || page.encoding == parquet::Encoding::PLAIN_DICTIONARY) {
        if (!dictionary) return walker->Corrupt();
        decoder = dictionary.get();
      } else if (NumberDecoding(DType::type_num, page.encoding)) {
        auto& made = decoders[page.encoding];
        if (!made) made = parquet::MakeTypedDecoder<DType>(page.encoding, &descr);
        decoder = made.get();
      } else {
        return std::nullopt;
      }
      decoder->SetData(page.present, page.values, static_cast<int>(page.end - page.values));
      decoded.resize(page.present);
      if (decoder->Decode(reinterpret_cast<T*>(decoded.data()), page.present) != page.present) {
        return walker->Corrupt();
      }
      const int64_t first = page.first_row, last = first + page.num_values;
      if (r < rows.size() && rows[r] < first) return walker->Corrupt();  // a row in no kept page
      if (page.levels->empty()) {
        for (; r < rows.size() && rows[r] < last; ++r) out[r] = decoded[rows[r] - first];
        continue;
      }
      const std::vector<uint8_t>& levels = *page.levels;
      int64_t i = 0, k = 0;  // value i of the page is present value k
      for (; r < rows.size() && rows[r] < last; ++r) {
        for (; i < rows[r] - first; ++i) k += levels[i];
        if (levels[i]) {
          out[r] = decoded[k];
          continue;
        }
        if (!validity) {
          ARROW_ASSIGN_OR_RAISE(validity, arrow::AllocateEmptyBitmap(n));
          arrow::bit_util::SetBitsTo(validity->mutable_data(), 0, n, true);
        }
        arrow::bit_util::ClearBit(validity->mutable_data(), static_cast<int64_t>(r));
        out[r] = Slot{};
        ++nulls;
      }
    }
  } catch (const parquet::ParquetException& e) {
    return IOError("cannot read column '", descr.path()->ToDotString(), "': ", e.what());
  }
  if (r != rows.size()) return walker->Corrupt();
  if constexpr (kBoolean) {
    ARROW_ASSIGN_OR_RAISE(values, PackBooleans(out, n));
  }
  return std::optional<std::shared_ptr<arrow::Array>>(
      arrow::MakeArray(arrow::ArrayData::Make(type, n, {std::move(validity), std::move(values)}, nulls)));
}

// The values at `rows` of a column of booleans or fixed-width numbers, by GatherNumbers;
// nullopt for other columns and layouts.
Result<std::optional<std::shared_ptr<arrow::Array>>> ReadNumbers(
    const PageSource& source, const parquet::ColumnChunkMetaData& chunk, const parquet::ColumnDescriptor& descr,
    const std::shared_ptr<arrow::DataType>& type, const parquet::OffsetIndex& index, int64_t num_rows,
    const std::vector<uint8_t>& keep, const std::vector<int64_t>& rows) {
  auto physical = descr.physical_type();
  if (physical != parquet::Type::BOOLEAN && physical != parquet::Type::INT32 && physical != parquet::Type::INT64 &&
      physical != parquet::Type::FLOAT && physical != parquet::Type::DOUBLE) {
    return std::nullopt;
  }
  ARROW_ASSIGN_OR_RAISE(std::optional<PageWalker> walker, PageWalker::Open(source, chunk, descr, index, num_rows, keep));
  if (!walker) return std::nullopt;
  switch (physical) {
    case parquet::Type::BOOLEAN:
      return GatherNumbers<parquet::BooleanType>(&*walker, descr, type, rows);
    case parquet::Type::INT32:
      return GatherNumbers<parquet::Int32Type>(&*walker, descr, type, rows);
    case parquet::Type::INT64:
      return GatherNumbers<parquet::Int64Type>(&*walker, descr, type, rows);
    case parquet::Type::FLOAT:
      return GatherNumbers<parquet::FloatType>(&*walker, descr, type, rows);
    default:
      return GatherNumbers<parquet::DoubleType>(&*walker, descr, type, rows);
  }
}

// Decodes only the pages of leaf `leaf` (row group `rg`) that hold some row of `rows`
// (sorted row numbers) and sets `positions` to where each of those rows is in the result
// (left empty when the result is exactly those rows, in order).
Result<std::shared_ptr<arrow::Array>> ReadPages(parquet::ParquetFileReader* file, const PageSource& source, int rg,
                                                int leaf, const std::shared_ptr<arrow::DataType>& type,
                                                const parquet::OffsetIndex& index, const std::vector<int64_t>& rows,
                                                std::vector<int64_t>* positions) {
  int64_t num_rows = file->metadata()->RowGroup(rg)->num_rows();
  std::vector<int64_t> starts = *PageStarts(index, num_rows);  // ByPages checked them
  size_t pages = starts.size() - 1;
  std::vector<uint8_t> keep(pages, 0);
  for (auto row = rows.begin(); row != rows.end();) {
    auto p = std::upper_bound(starts.begin(), starts.end() - 1, *row) - starts.begin() - 1;
    keep[p] = 1;
    row = std::lower_bound(row, rows.end(), starts[p + 1]);
  }
  positions->clear();
  const parquet::ColumnDescriptor* descr = file->metadata()->schema()->Column(leaf);
  try {
    auto chunk = file->metadata()->RowGroup(rg)->ColumnChunk(leaf);
    ARROW_ASSIGN_OR_RAISE(std::optional<std::shared_ptr<arrow::Array>> gathered,
                          ReadNumbers(source, *chunk, *descr, type, index, num_rows, keep, rows));
    if (gathered) return *gathered;
    positions->reserve(rows.size());
    int64_t decoded = 0;
    for (size_t i = 0, p = 0; i < rows.size();) {
      while (!keep[p]) ++p;
      for (; i < rows.size() && rows[i] < starts[p + 1]; ++i) positions->push_back(decoded + rows[i] - starts[p]);
      decoded += starts[p + 1] - starts[p];
      ++p;
    }
    ARROW_ASSIGN_OR_RAISE(auto bytes, KeptPages(source, *chunk, index.page_locations(), keep));
    // A flat leaf has one value (or null) a row, so the pages kept hold `decoded` values.
    auto pager = parquet::PageReader::Open(std::make_shared<arrow::io::BufferReader>(std::move(bytes)), decoded,
                                           chunk->compression(), parquet::default_reader_properties(), *descr);
    auto records = parquet::internal::RecordReader::Make(descr, parquet::internal::LevelInfo::ComputeLevelInfo(descr),
                                                         arrow::default_memory_pool(), false, false, type);
    records->SetPageReader(std::move(pager));
    records->Reserve(decoded);
    for (int64_t got = 0; got < decoded;) {
      int64_t n = records->ReadRecords(decoded - got);
      if (n == 0) return IOError("column '", descr->path()->ToDotString(), "' ends before its page index says");
      got += n;
    }
    if (descr->physical_type() == parquet::Type::BYTE_ARRAY) {
      auto chunks = dynamic_cast<parquet::internal::BinaryRecordReader&>(*records).GetBuilderChunks();
      std::shared_ptr<arrow::Array> out;
      if (chunks.size() == 1) {
        out = chunks[0];
      } else {
        ARROW_ASSIGN_OR_RAISE(out, arrow::Concatenate(chunks));
      }
      if (out->type()->Equals(*type)) return out;
      auto data = out->data()->Copy();  // binary and string share their layout
      data->type = type;
      return arrow::MakeArray(data);
    }
    std::shared_ptr<arrow::Buffer> validity;
    if (descr->max_definition_level() > 0) validity = records->ReleaseIsValid();
    int64_t nulls = records->null_count();
    std::shared_ptr<arrow::Buffer> values = records->ReleaseValues();
    if (descr->physical_type() == parquet::Type::BOOLEAN) {  // the record reader's booleans are bytes
      ARROW_ASSIGN_OR_RAISE(values, PackBooleans(values->data(), records->values_written()));
    }
    return arrow::MakeArray(arrow::ArrayData::Make(type, records->values_written(),
                                                   {nulls > 0 ? validity : nullptr, std::move(values)}, nulls));
  } catch (const parquet::ParquetException& e) {
    return IOError("cannot read column '", descr->path()->ToDotString(), "': ", e.what());
  }
}

// Whether a geometry meets `b` exactly: by its box, then GEOS when the box only overlaps.
Result<bool> Meets(std::string_view wkb, const std::array<double, 4>& b, std::unique_ptr<GeosOps>* geos) {
  GeomInfo info;
  ARROW_RETURN_NOT_OK(ScanWkb(wkb, &info));
  bool hit = !(info.empty() || info.minx > b[2] || info.maxx < b[0] || info.miny > b[3] || info.maxy < b[1]);
  bool inside = info.minx >= b[0] && info.maxx <= b[2] && info.miny >= b[1] && info.maxy <= b[3];
  if (hit && !inside && info.type != 1 && info.type != 4) {  // bbox overlaps only: ask GEOS
    if (!*geos) {
      ARROW_ASSIGN_OR_RAISE(*geos, GeosOps::Make());
    }
    return (*geos)->IntersectsBox(wkb, b);
  }
  return hit;
}

std::string_view WkbAt(const arrow::Array& a, int64_t i) {
  return a.type_id() == arrow::Type::BINARY ? static_cast<const arrow::BinaryArray&>(a).GetView(i)
                                            : static_cast<const arrow::LargeBinaryArray&>(a).GetView(i);
}

const parquet::arrow::SchemaField* FieldNamed(parquet::arrow::FileReader* reader, const std::string& name) {
  for (const auto& f : reader->manifest().schema_fields) {
    if (f.field->name() == name) return &f;
  }
  return nullptr;
}

// Whether DecodeRows reads `field` by pages: a plain, unencrypted leaf with a usable offset
// index (see PageStarts) whose first page follows the dictionary page, if any.
bool ByPages(parquet::ParquetFileReader* file, int rg, parquet::RowGroupPageIndexReader* index,
             const parquet::arrow::SchemaField& field) {
  if (field.column_index < 0 || !field.children.empty() ||
      !PlainLeaf(*file->metadata()->schema()->Column(field.column_index), *field.field->type())) {
    return false;
  }
  auto offsets = index->GetOffsetIndex(field.column_index);
  if (!offsets || !PageStarts(*offsets, file->metadata()->RowGroup(rg)->num_rows())) return false;
  auto chunk = file->metadata()->RowGroup(rg)->ColumnChunk(field.column_index);
  int64_t first = offsets->page_locations()[0].offset;
  return !chunk->crypto_metadata() &&
         (!chunk->has_dictionary_page() || (chunk->dictionary_page_offset() > 0 && chunk->dictionary_page_offset() < first));
}

// Values of one top-level field in row group `rg` covering the rows `rows` (sorted), and
// where each of those rows is among the values (empty when the values are those rows): only
// the pages holding them when ByPages, else the whole column chunk (through the Arrow reader).
Result<std::shared_ptr<arrow::Array>> DecodeRows(parquet::arrow::FileReader* reader, const PageSource& source,
                                                 parquet::RowGroupPageIndexReader* index, int rg,
                                                 const parquet::arrow::SchemaField& field,
                                                 const std::vector<int64_t>& rows, std::vector<int64_t>* positions) {
  parquet::ParquetFileReader* file = reader->parquet_reader();
  if (ByPages(file, rg, index, field)) {
    return ReadPages(file, source, rg, field.column_index, field.field->type(),
                     *index->GetOffsetIndex(field.column_index), rows, positions);
  }
  std::vector<int> leaves;
  std::function<void(const parquet::arrow::SchemaField&)> collect = [&](const parquet::arrow::SchemaField& f) {
    if (f.column_index >= 0) leaves.push_back(f.column_index);
    for (const auto& child : f.children) collect(child);
  };
  collect(field);
  ARROW_ASSIGN_OR_RAISE(auto table, reader->ReadRowGroup(rg, leaves));
  *positions = rows;
  if (table->column(0)->num_chunks() == 1) return table->column(0)->chunk(0);
  return arrow::Concatenate(table->column(0)->chunks());
}

// The values at `positions` (all of them, in order, when `positions` is empty).
Result<std::shared_ptr<arrow::Array>> TakeRows(const std::shared_ptr<arrow::Array>& values,
                                               const std::vector<int64_t>& positions) {
  if (positions.empty() || (static_cast<int64_t>(positions.size()) == values->length() &&
                            positions.back() == values->length() - 1)) {
    return values;  // every value, in order
  }
  // Fixed-width values without nulls (most attribute columns) are gathered directly: the
  // positions are in range by construction, so Take's index checks and its int64 index
  // array are pure overhead here (~5% of a row-centred read's CPU).
  const auto* fixed = dynamic_cast<const arrow::FixedWidthType*>(values->type().get());
  int width = fixed ? fixed->bit_width() : 0;
  if (values->null_count() == 0 && values->type_id() != arrow::Type::DICTIONARY && (width == 32 || width == 64)) {
    auto n = static_cast<int64_t>(positions.size());
    ARROW_ASSIGN_OR_RAISE(auto buffer, arrow::AllocateBuffer(n * (width / 8)));
    const auto& data = *values->data();
    if (width == 64) {
      const auto* in = data.GetValues<uint64_t>(1);
      auto* out = reinterpret_cast<uint64_t*>(buffer->mutable_data());
      for (int64_t i = 0; i < n; ++i) out[i] = in[positions[i]];
    } else {
      const auto* in = data.GetValues<uint32_t>(1);
      auto* out = reinterpret_cast<uint32_t*>(buffer->mutable_data());
      for (int64_t i = 0; i < n; ++i) out[i] = in[positions[i]];
    }
    return arrow::MakeArray(arrow::ArrayData::Make(values->type(), n, {nullptr, std::move(buffer)}, 0));
  }
  arrow::Int64Builder builder;
  ARROW_RETURN_NOT_OK(builder.AppendValues(positions));
  ARROW_ASSIGN_OR_RAISE(auto indices, builder.Finish());
  ARROW_ASSIGN_OR_RAISE(arrow::Datum taken, arrow::compute::Take(values, indices));
  return taken.make_array();
}

// The hits among the candidate rows of row group `rg`, tested straight from the pages of its
// WKB column, and their geometries (a binary array): no Arrow array of all the candidates is
// built, which in a small-box read took about half the geometry's CPU. Only for the layout
// the ingest writes (flat WKB, PLAIN, v1 data pages, no dictionary); nullopt otherwise.
struct PageHits {
  std::vector<int64_t> rows;
  std::shared_ptr<arrow::Array> geometry;
  int64_t decoded = 0;
};
Result<std::optional<PageHits>> HitsFromPages(parquet::ParquetFileReader* file, const PageSource& source, int rg,
                                               int leaf, const parquet::OffsetIndex& index, const Ranges& candidates,
                                               const std::array<double, 4>& b, std::unique_ptr<GeosOps>* geos) {
  const parquet::ColumnDescriptor* descr = file->metadata()->schema()->Column(leaf);
  auto chunk = file->metadata()->RowGroup(rg)->ColumnChunk(leaf);
  if (descr->physical_type() != parquet::Type::BYTE_ARRAY || chunk->has_dictionary_page()) return std::nullopt;
  const int64_t num_rows = file->metadata()->RowGroup(rg)->num_rows();
  std::optional<std::vector<int64_t>> page_starts = PageStarts(index, num_rows);
  if (!page_starts) return std::nullopt;
  const std::vector<int64_t>& starts = *page_starts;
  std::vector<uint8_t> keep(starts.size() - 1, 0);
  for (size_t p = 0, r = 0; p < keep.size() && r < candidates.size(); ++p) {
    while (r < candidates.size() && candidates[r].second <= starts[p]) ++r;
    keep[p] = r < candidates.size() && candidates[r].first < starts[p + 1];
  }
  ARROW_ASSIGN_OR_RAISE(std::optional<PageWalker> walker,
                        PageWalker::Open(source, *chunk, *descr, index, num_rows, std::move(keep)));
  if (!walker) return std::nullopt;
  PageHits out;
  // From Arrow's pool, which keeps freed memory: system allocations of these sizes cost a
  // page fault per 4 KiB on every read.
  arrow::TypedBufferBuilder<int32_t> offsets;
  arrow::BufferBuilder data;
  ARROW_RETURN_NOT_OK(offsets.Append(0));
  size_t r = 0;  // the candidate range at hand
  Page page;
  bool unsupported;
  while (true) {
    ARROW_ASSIGN_OR_RAISE(bool more, walker->Next(&page, &unsupported));
    if (!more) break;
    if (unsupported || page.encoding != parquet::Encoding::PLAIN) return std::nullopt;
    const uint8_t* body = page.values;
    const uint8_t* end = page.end;
    const std::vector<uint8_t>& levels = *page.levels;
    out.decoded += page.num_values;
    ARROW_RETURN_NOT_OK(data.Reserve(end - body));  // the hits' WKB is at most the page's
    for (int32_t i = 0; i < page.num_values; ++i) {
      if (!levels.empty() && !levels[i]) continue;
      uint32_t length;
      if (end - body < 4) return walker->Corrupt();
      std::memcpy(&length, body, 4);
      body += 4;
      if (length > static_cast<uint64_t>(end - body)) return walker->Corrupt();
      std::string_view wkb(reinterpret_cast<const char*>(body), length);
      body += length;
      int64_t row = page.first_row + i;
      while (r < candidates.size() && candidates[r].second <= row) ++r;
      if (r == candidates.size() || row < candidates[r].first) continue;
      ARROW_ASSIGN_OR_RAISE(bool hit, Meets(wkb, b, geos));
      if (!hit) continue;
      out.rows.push_back(row);
      if (data.length() + wkb.size() > INT32_MAX) return std::nullopt;  // too big for a binary array
      data.UnsafeAppend(wkb.data(), static_cast<int64_t>(wkb.size()));
      ARROW_RETURN_NOT_OK(offsets.Append(static_cast<int32_t>(data.length())));
    }
  }
  std::shared_ptr<arrow::Buffer> offsets_buffer, data_buffer;
  ARROW_RETURN_NOT_OK(offsets.Finish(&offsets_buffer));
  ARROW_RETURN_NOT_OK(data.Finish(&data_buffer));
  out.geometry = arrow::MakeArray(arrow::ArrayData::Make(arrow::binary(), static_cast<int64_t>(out.rows.size()),
                                                         {nullptr, offsets_buffer, data_buffer}, 0));
  return out;
}

// ReadTable for one file written with a page index: in each row group only the pages whose
// bbox ranges meet `b` are decoded (the geometry first, tested exactly, then the other
// columns' pages that hold a hit). False when the file has no usable page index.
Result<bool> ReadByPages(parquet::arrow::FileReader* reader, const PageSource& source, const std::string& path,
                         const GeoColumns& geo,
                         const arrow::Schema& file_schema, const std::vector<std::string>& names,
                         const std::vector<int>& rgs, const std::array<double, 4>& b,
                         std::vector<std::shared_ptr<arrow::Table>>* parts, ReadStats* stats) {
  if (geo.bbox.empty()) return false;
  const parquet::arrow::SchemaField* bbox = FieldNamed(reader, geo.bbox);
  const parquet::arrow::SchemaField* geometry = FieldNamed(reader, geo.geometry);
  if (!bbox || !geometry) return false;
  std::array<int, 4> bbox_leaves{-1, -1, -1, -1};
  const char* corner[4] = {"xmin", "ymin", "xmax", "ymax"};
  for (const auto& child : bbox->children) {
    for (int j = 0; j < 4; ++j) {
      if (child.field->name() == corner[j] && child.children.empty()) bbox_leaves[j] = child.column_index;
    }
  }
  if (std::find(bbox_leaves.begin(), bbox_leaves.end(), -1) != bbox_leaves.end()) return false;
  std::vector<const parquet::arrow::SchemaField*> fields;
  arrow::FieldVector out_fields;
  for (const std::string& name : names) {
    const parquet::arrow::SchemaField* f = FieldNamed(reader, name);
    if (!f) return InvalidArgument("column '", name, "' not found in '", path, "'");
    fields.push_back(f);
    out_fields.push_back(file_schema.field(file_schema.GetFieldIndex(name)));
  }
  auto out_schema = arrow::schema(out_fields, file_schema.metadata());
  parquet::ParquetFileReader* file = reader->parquet_reader();
  std::shared_ptr<parquet::PageIndexReader> page_index;
  std::vector<std::shared_ptr<parquet::RowGroupPageIndexReader>> indices;
  std::vector<Ranges> candidates;
  try {
    page_index = file->GetPageIndexReader();
    if (!page_index) return false;
    for (int rg : rgs) {
      indices.push_back(page_index->RowGroup(rg));
      if (!indices.back()) return false;
      auto ranges = PageCandidates(indices.back().get(), bbox_leaves, file->metadata()->RowGroup(rg)->num_rows(), b);
      if (!ranges) return false;
      candidates.push_back(std::move(*ranges));
    }
  } catch (const parquet::ParquetException& e) {
    return false;  // an unreadable page index: read the whole row groups
  }
  // Per row group: the geometry's candidate pages are decoded and tested exactly, then each
  // other column's pages holding a hit are decoded as a task of its own, so that two
  // threads stay busy even with few row groups.
  struct Group {
    std::vector<int64_t> hits;
    arrow::ArrayVector columns;
    int64_t decoded = -1;
  };
  std::vector<Group> groups(rgs.size());
  auto read_column = [&](int i, size_t c) -> Status {
    std::vector<int64_t> positions;
    ARROW_ASSIGN_OR_RAISE(auto values, DecodeRows(reader, source, indices[i].get(), rgs[i], *fields[c], groups[i].hits,
                                                  &positions));
    ARROW_ASSIGN_OR_RAISE(groups[i].columns[c], TakeRows(values, positions));
    return Status::OK();
  };
  std::shared_ptr<arrow::internal::TaskGroup> tasks;
  auto read_geometry = [&](int i) -> Status {
    if (candidates[i].empty()) return Status::OK();
    Group& g = groups[i];
    std::unique_ptr<GeosOps> geos;
    std::shared_ptr<arrow::Array> hit_geoms;
    std::optional<PageHits> from_pages;
    if (geometry->field->type()->id() == arrow::Type::BINARY && geometry->children.empty() &&
        geometry->column_index >= 0) {
      if (auto offsets = indices[i]->GetOffsetIndex(geometry->column_index)) {
        ARROW_ASSIGN_OR_RAISE(from_pages, HitsFromPages(file, source, rgs[i], geometry->column_index, *offsets,
                                                        candidates[i], b, &geos));
      }
    }
    if (from_pages) {
      g.decoded = from_pages->decoded;
      g.hits = std::move(from_pages->rows);
      hit_geoms = std::move(from_pages->geometry);
    } else {
      std::vector<int64_t> rows;
      for (const auto& [begin, end] : candidates[i]) {
        for (int64_t r = begin; r < end; ++r) rows.push_back(r);
      }
      std::vector<int64_t> positions;
      ARROW_ASSIGN_OR_RAISE(auto geoms,
                            DecodeRows(reader, source, indices[i].get(), rgs[i], *geometry, rows, &positions));
      if (geoms->type_id() != arrow::Type::BINARY && geoms->type_id() != arrow::Type::LARGE_BINARY) {
        return InvalidArgument("geometry column '", geo.geometry, "' of '", path, "' is not WKB");
      }
      g.decoded = geoms->length();
      std::vector<int64_t> hit_positions;
      for (size_t k = 0; k < rows.size(); ++k) {
        if (geoms->IsNull(positions[k])) continue;
        ARROW_ASSIGN_OR_RAISE(bool hit, Meets(WkbAt(*geoms, positions[k]), b, &geos));
        if (hit) {
          g.hits.push_back(rows[k]);
          hit_positions.push_back(positions[k]);
        }
      }
      if (g.hits.empty()) return Status::OK();
      ARROW_ASSIGN_OR_RAISE(hit_geoms, TakeRows(geoms, hit_positions));
    }
    if (g.hits.empty()) return Status::OK();
    g.columns.resize(fields.size());
    for (size_t c = 0; c < fields.size(); ++c) {
      if (fields[c] == geometry) {
        g.columns[c] = hit_geoms;
      } else {
        tasks->Append([&read_column, i, c] { return read_column(i, c); });
      }
    }
    return Status::OK();
  };
  // On the CPU pool when every column is read by pages (the Arrow reader is not safe to
  // share across threads: it pre-buffers into the file reader's state), else in order.
  bool parallel = true;
  for (size_t i = 0; i < rgs.size() && parallel; ++i) {
    for (const parquet::arrow::SchemaField* f : fields) parallel = parallel && ByPages(file, rgs[i], indices[i].get(), *f);
  }
  tasks = parallel ? arrow::internal::TaskGroup::MakeThreaded(arrow::internal::GetCpuThreadPool())
                   : arrow::internal::TaskGroup::MakeSerial();
  for (size_t i = 0; i < rgs.size(); ++i) {
    tasks->Append([&read_geometry, i] { return read_geometry(static_cast<int>(i)); });
  }
  ARROW_RETURN_NOT_OK(tasks->Finish());
  std::vector<std::shared_ptr<arrow::Table>> tables(rgs.size());
  std::vector<int64_t> decoded(rgs.size(), -1);
  for (size_t i = 0; i < rgs.size(); ++i) {
    decoded[i] = groups[i].decoded;
    if (!groups[i].hits.empty()) {
      tables[i] = arrow::Table::Make(out_schema, groups[i].columns, static_cast<int64_t>(groups[i].hits.size()));
    }
  }
  for (size_t i = 0; i < rgs.size(); ++i) {
    if (stats && decoded[i] >= 0) {
      stats->chunks_read += 1;
      stats->rows_read += decoded[i];
    }
    if (tables[i]) parts->push_back(tables[i]);
  }
  return true;
}

// The chunk metadata stored in a table's _sample (fused:_metadata), decoded.
Result<std::shared_ptr<arrow::Table>> ParseChunksMetadata(arrow::fs::FileSystem* fs, const std::string& path);

}  // namespace

Result<std::shared_ptr<arrow::Table>> ReadChunksMetadata(std::shared_ptr<arrow::fs::FileSystem> fs,
                                                         const std::string& table) {
  std::string path = Trim(table) + "/_sample";
  ARROW_ASSIGN_OR_RAISE(arrow::fs::FileInfo info, ExistingFile(fs.get(), path));
  const std::string key = ParsedKey(fs.get(), path, "chunks");
  if (auto known = Parsed().Find<arrow::Table>(key, info)) return known;
  ARROW_ASSIGN_OR_RAISE(auto chunks, ParseChunksMetadata(fs.get(), path));
  Parsed().Put(key, info, chunks);
  return chunks;
}

namespace {

Result<std::shared_ptr<arrow::Table>> ParseChunksMetadata(arrow::fs::FileSystem* fs, const std::string& path) {
  ARROW_ASSIGN_OR_RAISE(auto reader, OpenParquet(fs, path));
  auto md = reader->parquet_reader()->metadata()->key_value_metadata();
  int version = md ? md->FindKey("fused:format_version") : -1;
  if (version < 0) return InvalidArgument("'", path, "' has no Fused metadata (fused:format_version)");
  if (md->value(version) != "5") {
    return InvalidArgument("'", path, "' has Fused format version ", md->value(version), "; only 5 is supported");
  }
  int meta = md->FindKey("fused:_metadata");
  if (meta < 0) return InvalidArgument("'", path, "' has no fused:_metadata");
  auto decoded = arrow::util::base64_decode(md->value(meta));
  if (!decoded.ok()) return InvalidArgument("'", path, "': fused:_metadata is not base64");
  std::string bytes = std::move(*decoded);
  std::shared_ptr<arrow::Buffer> buffer = arrow::Buffer::FromString(std::move(bytes));
  auto source = std::make_shared<arrow::io::BufferReader>(buffer);
  auto meta_reader = parquet::arrow::OpenFile(source, arrow::default_memory_pool());
  if (!meta_reader.ok()) return InvalidArgument("'", path, "': fused:_metadata is not a Parquet table");
  std::shared_ptr<arrow::Table> out;
  ARROW_ASSIGN_OR_RAISE(out, (*meta_reader)->ReadTable());
  // The bytes must outlive the table's buffers (zero-copy reads).
  return out->CombineChunks();
}

}  // namespace

Result<std::shared_ptr<arrow::Table>> ReadChunk(std::shared_ptr<arrow::fs::FileSystem> fs, const std::string& table,
                                                const std::string& file_id, int64_t chunk_id,
                                                const std::vector<std::string>& columns) {
  std::string path = Trim(table) + "/" + file_id + ".parquet";
  ARROW_ASSIGN_OR_RAISE(auto reader, OpenParquet(fs.get(), path));
  if (chunk_id < 0 || chunk_id >= reader->num_row_groups()) {
    return NotFound("chunk ", chunk_id, " not in '", path, "', which has ", reader->num_row_groups(), " chunks");
  }
  ARROW_ASSIGN_OR_RAISE(auto leaves, LeafIndices(reader.get(), columns, path));
  return reader->ReadRowGroups({static_cast<int>(chunk_id)}, leaves);
}

Result<std::shared_ptr<arrow::Table>> ReadTable(std::shared_ptr<arrow::fs::FileSystem> fs, const std::string& table,
                                                const std::array<double, 4>& b, const std::vector<std::string>& columns,
                                                ReadStats* stats) {
  if (!(b[0] <= b[2] && b[1] <= b[3])) {
    return InvalidArgument("bounds must be (minx, miny, maxx, maxy) with min <= max, got (", b[0], ", ", b[1], ", ",
                           b[2], ", ", b[3], ")");
  }
  ARROW_ASSIGN_OR_RAISE(auto meta, ReadChunksMetadata(fs, table));
  auto col = [&](const char* name) -> Result<std::shared_ptr<arrow::Array>> {
    auto c = meta->GetColumnByName(name);
    if (!c) return InvalidArgument("chunk metadata of '", table, "' has no '", name, "' column");
    if (c->num_chunks() == 0) return arrow::MakeArrayOfNull(arrow::float64(), 0);
    return c->chunk(0);
  };
  ARROW_ASSIGN_OR_RAISE(auto fid, col("file_id"));
  ARROW_ASSIGN_OR_RAISE(auto cid, col("chunk_id"));
  std::array<std::shared_ptr<arrow::Array>, 4> box;
  const char* names[4] = {"bbox_minx", "bbox_miny", "bbox_maxx", "bbox_maxy"};
  for (int j = 0; j < 4; ++j) {
    ARROW_ASSIGN_OR_RAISE(auto raw, col(names[j]));
    ARROW_ASSIGN_OR_RAISE(arrow::Datum d, arrow::compute::Cast(raw, arrow::float64()));
    box[j] = d.make_array();
  }
  ARROW_ASSIGN_OR_RAISE(arrow::Datum cid_d, arrow::compute::Cast(cid, arrow::int64()));
  std::shared_ptr<arrow::Array> cid_array = cid_d.make_array();
  const auto& chunk_ids = static_cast<const arrow::Int64Array&>(*cid_array);
  auto v = [&](int j, int64_t i) { return static_cast<const arrow::DoubleArray&>(*box[j]).Value(i); };
  std::map<std::string, std::vector<int>> wanted;  // ordered: deterministic output
  std::vector<std::string> file_order;
  for (int64_t i = 0; i < meta->num_rows(); ++i) {
    if (v(0, i) > b[2] || v(2, i) < b[0] || v(1, i) > b[3] || v(3, i) < b[1]) continue;
    std::string f = FileIdString(*fid, i);
    if (!wanted.count(f)) file_order.push_back(f);
    wanted[f].push_back(static_cast<int>(chunk_ids.Value(i)));
  }
  if (stats) {
    stats->chunks_total = meta->num_rows();
    stats->chunks_read = 0;
    stats->rows_read = 0;
  }
  std::unique_ptr<GeosOps> geos;
  std::vector<std::shared_ptr<arrow::Table>> parts;
  std::shared_ptr<arrow::Schema> schema;
  std::string root = Trim(table);
  for (const std::string& f : file_order) {
    std::string path = root + "/" + f + ".parquet";
    PageSource source{nullptr, fs->type_name() != "local"};
    ARROW_ASSIGN_OR_RAISE(auto reader, OpenParquet(fs.get(), path, &source.file));
    reader->set_use_threads(true);  // decode the columns of the chosen row groups in parallel
    std::shared_ptr<arrow::Schema> file_schema;
    ARROW_RETURN_NOT_OK(reader->GetSchema(&file_schema));
    GeoColumns geo = GeoColumnsOf(reader.get());
    // The rows are filtered by their WKB (exact), so the bbox column is read only when asked for.
    std::vector<std::string> names = columns;
    bool want_bbox = !columns.empty() && std::find(columns.begin(), columns.end(), geo.bbox) != columns.end();
    if (columns.empty()) {
      for (const auto& field : file_schema->fields()) {
        if (field->name() != geo.bbox || geo.bbox.empty()) names.push_back(field->name());
      }
    } else if (std::find(names.begin(), names.end(), geo.geometry) == names.end()) {
      names.push_back(geo.geometry);
    }
    ARROW_ASSIGN_OR_RAISE(auto leaves, LeafIndices(reader.get(), names, path));
    std::vector<int> rgs = wanted[f];
    for (int rg : rgs) {
      if (rg < 0 || rg >= reader->num_row_groups()) {
        return InvalidArgument("chunk metadata names chunk ", rg, " of '", path, "', which has ",
                               reader->num_row_groups());
      }
    }
    // Tables written with a page index (rows in Hilbert order inside a chunk): read by pages.
    size_t before = parts.size();
    ARROW_ASSIGN_OR_RAISE(bool by_pages,
                          ReadByPages(reader.get(), source, path, geo, *file_schema, names, rgs, b, &parts, stats));
    if (by_pages) {
      if (!schema && parts.size() > before) schema = parts[before]->schema();
      for (size_t i = before; i < parts.size(); ++i) parts[i] = parts[i]->ReplaceSchemaMetadata(schema->metadata());
      continue;
    }
    // One column first tells which rows can meet the bounds: the WKB of a point table (exact,
    // and reused below), else the bbox covering column (four floats a row). Row groups with
    // no such row are not decoded further.
    std::vector<uint8_t> all, candidates;
    std::shared_ptr<arrow::ChunkedArray> geoms_all;
    if (geo.points_only && file_schema->GetFieldIndex(geo.geometry) >= 0) {
      ARROW_ASSIGN_OR_RAISE(all, PointCandidates(reader.get(), rgs, geo.geometry, b, path, &geoms_all));
      if (all.empty()) geoms_all = nullptr;
    } else if (!geo.bbox.empty() && file_schema->GetFieldIndex(geo.bbox) >= 0) {
      ARROW_ASSIGN_OR_RAISE(all, BboxCandidates(reader.get(), rgs, geo.bbox, b, path));
    }
    arrow::ArrayVector kept_geoms;  // geoms_all's rows of the row groups kept
    if (!all.empty()) {
      std::vector<int> hit_rgs;
      int64_t offset = 0;
      for (int rg : rgs) {
        int64_t n = reader->parquet_reader()->metadata()->RowGroup(rg)->num_rows();
        auto first = all.begin() + offset, last = first + n;
        if (std::find(first, last, 1) != last) {
          hit_rgs.push_back(rg);
          candidates.insert(candidates.end(), first, last);
          if (geoms_all) {
            auto slice = geoms_all->Slice(offset, n)->chunks();
            kept_geoms.insert(kept_geoms.end(), slice.begin(), slice.end());
          }
        }
        offset += n;
      }
      rgs = std::move(hit_rgs);
      if (rgs.empty()) continue;
    }
    std::shared_ptr<arrow::Table> t;
    if (geoms_all) {  // the other columns, then the geometry put back in its place
      std::vector<std::string> others;
      for (const std::string& name : names) {
        if (name != geo.geometry) others.push_back(name);
      }
      auto geometry = std::make_shared<arrow::ChunkedArray>(kept_geoms, geoms_all->type());
      auto geometry_field = file_schema->field(file_schema->GetFieldIndex(geo.geometry));
      if (others.empty()) {
        t = arrow::Table::Make(arrow::schema({geometry_field}), {geometry}, geometry->length());
      } else {
        ARROW_ASSIGN_OR_RAISE(auto other_leaves, LeafIndices(reader.get(), others, path));
        ARROW_ASSIGN_OR_RAISE(t, reader->ReadRowGroups(rgs, other_leaves));
        // Where a read of all `names` puts it: in their order.
        int position = static_cast<int>(std::find(names.begin(), names.end(), geo.geometry) - names.begin());
        ARROW_ASSIGN_OR_RAISE(t, t->AddColumn(position, geometry_field, geometry));
      }
    } else {
      ARROW_ASSIGN_OR_RAISE(t, reader->ReadRowGroups(rgs, leaves));
    }
    if (stats) {
      stats->chunks_read += static_cast<int64_t>(rgs.size());
      stats->rows_read += t->num_rows();
    }
    auto geom_col = t->GetColumnByName(geo.geometry);
    if (!geom_col) return InvalidArgument("'", path, "' has no geometry column '", geo.geometry, "'");
    // The mask is built chunk by chunk: no concatenated copy of the rows read.
    arrow::ArrayVector masks;
    int64_t row = 0;
    for (const auto& geoms : geom_col->chunks()) {
      if (geoms->type_id() != arrow::Type::BINARY && geoms->type_id() != arrow::Type::LARGE_BINARY) {
        return InvalidArgument("geometry column '", geo.geometry, "' of '", path, "' is not WKB");
      }
      arrow::BooleanBuilder keep;
      ARROW_RETURN_NOT_OK(keep.Reserve(geoms->length()));
      for (int64_t i = 0; i < geoms->length(); ++i, ++row) {
        if (geoms->IsNull(i) || (!candidates.empty() && !candidates[row])) {
          keep.UnsafeAppend(false);
          continue;
        }
        ARROW_ASSIGN_OR_RAISE(bool hit, Meets(WkbAt(*geoms, i), b, &geos));
        keep.UnsafeAppend(hit);
      }
      ARROW_ASSIGN_OR_RAISE(auto mask_piece, keep.Finish());
      masks.push_back(mask_piece);
    }
    auto mask = std::make_shared<arrow::ChunkedArray>(masks, arrow::boolean());
    ARROW_ASSIGN_OR_RAISE(arrow::Datum filtered, arrow::compute::Filter(t, mask));
    auto ft = filtered.table();
    if (!want_bbox && !geo.bbox.empty()) {
      int bi = ft->schema()->GetFieldIndex(geo.bbox);
      if (bi >= 0) {
        ARROW_ASSIGN_OR_RAISE(ft, ft->RemoveColumn(bi));
      }
    }
    if (!schema) schema = ft->schema();
    parts.push_back(ft->ReplaceSchemaMetadata(schema->metadata()));
  }
  if (parts.empty()) {
    // No chunk meets the bounds: an empty table with the table's schema.
    ARROW_ASSIGN_OR_RAISE(auto sample, OpenParquet(fs.get(), root + "/_sample"));
    std::shared_ptr<arrow::Schema> s;
    ARROW_RETURN_NOT_OK(sample->GetSchema(&s));
    GeoColumns geo = GeoColumnsOf(sample.get());
    arrow::FieldVector fields;
    for (const auto& f : s->fields()) {
      bool requested = columns.empty() ? f->name() != geo.bbox
                                       : (std::find(columns.begin(), columns.end(), f->name()) != columns.end() ||
                                          f->name() == geo.geometry);
      if (requested) fields.push_back(f);
    }
    return arrow::Table::MakeEmpty(arrow::schema(fields, s->metadata()));
  }
  return arrow::ConcatenateTables(parts);
}

}  // namespace terrafuse::ingest

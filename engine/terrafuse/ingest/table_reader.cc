#include "terrafuse/ingest/table_reader.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/io/api.h>
#include <arrow/util/base64.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/schema.h>
#include <parquet/file_reader.h>
#include <parquet/metadata.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "terrafuse/ingest/geometry.h"

namespace terrafuse::ingest {

namespace {

std::string Trim(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

Result<std::unique_ptr<parquet::arrow::FileReader>> OpenParquet(arrow::fs::FileSystem* fs, const std::string& path) {
  auto file = fs->OpenInputFile(path);
  if (!file.ok()) {
    auto info = fs->GetFileInfo(path);
    if (info.ok() && info->type() == arrow::fs::FileType::NotFound) return NotFound("'", path, "' does not exist");
    return IOError("cannot open '", path, "': ", file.status().message());
  }
  auto reader = parquet::arrow::OpenFile(*file, arrow::default_memory_pool());
  if (!reader.ok()) return InvalidArgument("'", path, "' is not a readable Parquet file: ", reader.status().message());
  return std::move(*reader);
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

}  // namespace

Result<std::shared_ptr<arrow::Table>> ReadChunksMetadata(std::shared_ptr<arrow::fs::FileSystem> fs,
                                                         const std::string& table) {
  std::string path = Trim(table) + "/_sample";
  ARROW_ASSIGN_OR_RAISE(auto reader, OpenParquet(fs.get(), path));
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
    ARROW_ASSIGN_OR_RAISE(auto reader, OpenParquet(fs.get(), path));
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
    GeomInfo info;
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
        std::string_view wkb = geoms->type_id() == arrow::Type::BINARY
                                   ? static_cast<const arrow::BinaryArray&>(*geoms).GetView(i)
                                   : static_cast<const arrow::LargeBinaryArray&>(*geoms).GetView(i);
        ARROW_RETURN_NOT_OK(ScanWkb(wkb, &info));
        bool hit = !(info.empty() || info.minx > b[2] || info.maxx < b[0] || info.miny > b[3] || info.maxy < b[1]);
        bool inside = info.minx >= b[0] && info.maxx <= b[2] && info.miny >= b[1] && info.maxy <= b[3];
        if (hit && !inside && info.type != 1 && info.type != 4) {  // bbox overlaps only: ask GEOS
          if (!geos) {
            ARROW_ASSIGN_OR_RAISE(geos, GeosOps::Make());
          }
          ARROW_ASSIGN_OR_RAISE(hit, geos->IntersectsBox(wkb, b));
        }
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

// `mvt`: a Mapbox Vector Tile (spec 2.1) of one tile with one layer, `udf` (version 2,
// extent 4096 by default).
//
// - Geometry: the primary geometry column (WKB) in longitude/latitude (EPSG:4326, OGC:CRS84,
//   or no CRS given) or web mercator (EPSG:3857), projected to the tile's pixels, clipped to
//   the tile plus a buffer (64 units by default) and quantised to the extent
//   (mvt_geometry_internal.h). Rows whose geometry is null, empty or wholly outside are
//   dropped. Multi* geometries are one feature; a GeometryCollection is split by type into
//   up to three features with the same properties (points, then lines, then polygons).
// - Properties: every other column; nulls (and NaN) omitted. Strings, booleans, integers
//   (uint_value, or sint_value when negative), float32 (float_value) and float64
//   (double_value) keep their type; dictionary columns their value type; other columns are
//   strings: dates and timestamps ISO 8601, other geometry columns WKT, binary base64,
//   lists, structs and maps JSON text. Keys and values are deduplicated.
// - No feature left: zero bytes, a valid empty tile.
#include <arrow/table.h>
#include <arrow/util/float16.h>

#include <bit>
#include <cmath>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <protozero/pbf_writer.hpp>

#include "terrafuse/encode/encoder.h"
#include "terrafuse/encode/geo_metadata.h"
#include "terrafuse/common/json_reader.h"
#include "terrafuse/encode/json_value_writer_internal.h"
#include "terrafuse/encode/mvt_geometry_internal.h"

namespace terrafuse::encode {

namespace {

using internal::MvtGeometry;
using internal::MvtGeometryEncoder;
using internal::MvtGeomType;
using internal::MvtInputCrs;

constexpr char kLayerName[] = "udf";
constexpr uint32_t kLayerVersion = 2;

// vector_tile.proto field numbers.
namespace field {
constexpr protozero::pbf_tag_type kTileLayers = 3;
constexpr protozero::pbf_tag_type kLayerName = 1;
constexpr protozero::pbf_tag_type kLayerFeatures = 2;
constexpr protozero::pbf_tag_type kLayerKeys = 3;
constexpr protozero::pbf_tag_type kLayerValues = 4;
constexpr protozero::pbf_tag_type kLayerExtent = 5;
constexpr protozero::pbf_tag_type kLayerVersion = 15;
constexpr protozero::pbf_tag_type kFeatureTags = 2;
constexpr protozero::pbf_tag_type kFeatureType = 3;
constexpr protozero::pbf_tag_type kFeatureGeometry = 4;
}  // namespace field

// Value's fields in vector_tile.proto, used as the kind of a value.
enum class ValueKind : uint8_t {
  kString = 1,
  kFloat = 2,
  kDouble = 3,
  kUint = 5,
  kSint = 6,
  kBool = 7,
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// The layer's values, each stored once (by kind and value) in order of first use.
class ValueTable {
 public:
  uint32_t Number(ValueKind kind, uint64_t bits) {
    auto [it, inserted] =
        numbers_[static_cast<int>(kind)].try_emplace(bits, static_cast<uint32_t>(entries_.size()));
    if (inserted) entries_.push_back({kind, bits, nullptr});
    return it->second;
  }

  uint32_t String(std::string_view s) {
    auto it = strings_.find(s);
    if (it != strings_.end()) return it->second;
    it = strings_.emplace(std::string(s), static_cast<uint32_t>(entries_.size())).first;
    entries_.push_back({ValueKind::kString, 0, &it->first});  // node keys do not move
    return it->second;
  }

  void Write(protozero::pbf_writer* layer) const {
    for (const Entry& e : entries_) {
      protozero::pbf_writer value(*layer, field::kLayerValues);
      switch (e.kind) {
        case ValueKind::kString:
          value.add_string(static_cast<int>(e.kind), *e.string);
          break;
        case ValueKind::kFloat:
          value.add_float(static_cast<int>(e.kind),
                          std::bit_cast<float>(static_cast<uint32_t>(e.bits)));
          break;
        case ValueKind::kDouble:
          value.add_double(static_cast<int>(e.kind), std::bit_cast<double>(e.bits));
          break;
        case ValueKind::kUint:
          value.add_uint64(static_cast<int>(e.kind), e.bits);
          break;
        case ValueKind::kSint:
          value.add_sint64(static_cast<int>(e.kind), static_cast<int64_t>(e.bits));
          break;
        case ValueKind::kBool:
          value.add_bool(static_cast<int>(e.kind), e.bits != 0);
          break;
      }
    }
  }

 private:
  struct Entry {
    ValueKind kind;
    uint64_t bits;
    const std::string* string;
  };
  std::unordered_map<uint64_t, uint32_t> numbers_[8];
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> strings_;
  std::vector<Entry> entries_;
};

constexpr int64_t kNoValue = -1;

// One property column, bound to each chunk in turn: interns the value of a row.
class PropertyColumn {
 public:
  virtual ~PropertyColumn() = default;

  void Bind(const std::shared_ptr<arrow::Array>& array) {
    array_ = array.get();
    DoBind(array);
  }

  // Sets `*index` to the value of row `i` in `values`, or kNoValue when it has none.
  Status Get(int64_t i, ValueTable* values, int64_t* index) {
    if (array_->IsNull(i)) {
      *index = kNoValue;
      return Status::OK();
    }
    return GetValue(i, values, index);
  }

 protected:
  virtual void DoBind(const std::shared_ptr<arrow::Array>& array) = 0;
  // Row `i` is not null.
  virtual Status GetValue(int64_t i, ValueTable* values, int64_t* index) = 0;

  const arrow::Array* array_ = nullptr;
};

class BoolColumn : public PropertyColumn {
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    typed_ = static_cast<const arrow::BooleanArray*>(a.get());
  }
  Status GetValue(int64_t i, ValueTable* values, int64_t* index) override {
    *index = values->Number(ValueKind::kBool, typed_->Value(i));
    return Status::OK();
  }
  const arrow::BooleanArray* typed_ = nullptr;
};

template <typename CType>
class IntColumn : public PropertyColumn {
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    values_ = a->data()->GetValues<CType>(1);
  }
  Status GetValue(int64_t i, ValueTable* values, int64_t* index) override {
    CType v = values_[i];
    if constexpr (std::is_signed_v<CType>) {
      if (v < 0) {
        *index = values->Number(ValueKind::kSint, static_cast<uint64_t>(static_cast<int64_t>(v)));
        return Status::OK();
      }
    }
    *index = values->Number(ValueKind::kUint, static_cast<uint64_t>(v));
    return Status::OK();
  }
  const CType* values_ = nullptr;
};

// float32 and float16 as float_value, float64 as double_value; NaN is no value.
template <typename CType>
class FloatColumn : public PropertyColumn {
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    values_ = a->data()->GetValues<CType>(1);
  }
  Status GetValue(int64_t i, ValueTable* values, int64_t* index) override {
    if constexpr (std::is_same_v<CType, double>) {
      double v = values_[i];
      *index =
          std::isnan(v) ? kNoValue : values->Number(ValueKind::kDouble, std::bit_cast<uint64_t>(v));
    } else {
      float v;
      if constexpr (std::is_same_v<CType, float>) {
        v = values_[i];
      } else {  // float16 bits
        v = arrow::util::Float16::FromBits(values_[i]).ToFloat();
      }
      *index =
          std::isnan(v) ? kNoValue : values->Number(ValueKind::kFloat, std::bit_cast<uint32_t>(v));
    }
    return Status::OK();
  }
  const CType* values_ = nullptr;
};

template <typename ArrayType>
class StringColumn : public PropertyColumn {
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    typed_ = static_cast<const ArrayType*>(a.get());
  }
  Status GetValue(int64_t i, ValueTable* values, int64_t* index) override {
    *index = values->String(typed_->GetView(i));
    return Status::OK();
  }
  const ArrayType* typed_ = nullptr;
};

// Looks each dictionary entry up once per chunk.
class DictionaryColumn : public PropertyColumn {
 public:
  explicit DictionaryColumn(std::unique_ptr<PropertyColumn> values) : values_(std::move(values)) {}

 private:
  static constexpr int64_t kUnknown = -2;

  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    typed_ = static_cast<const arrow::DictionaryArray*>(a.get());
    values_->Bind(typed_->dictionary());
    cache_.assign(static_cast<size_t>(typed_->dictionary()->length()), kUnknown);
  }
  Status GetValue(int64_t i, ValueTable* values, int64_t* index) override {
    int64_t code = typed_->GetValueIndex(i);
    if (code < 0 || code >= static_cast<int64_t>(cache_.size())) {
      return InvalidArgument("dictionary index ", code, " is out of range (the dictionary has ",
                             cache_.size(), " values)");
    }
    int64_t& cached = cache_[static_cast<size_t>(code)];
    if (cached == kUnknown) ARROW_RETURN_NOT_OK(values_->Get(code, values, &cached));
    *index = cached;
    return Status::OK();
  }

  std::unique_ptr<PropertyColumn> values_;
  const arrow::DictionaryArray* typed_ = nullptr;
  std::vector<int64_t> cache_;
};

// Any other type, and geometry columns besides the primary one: the text the json encoder
// writes (WKT for geometry), unquoted when it is a JSON string.
class TextColumn : public PropertyColumn {
 public:
  explicit TextColumn(std::unique_ptr<internal::JsonValueWriter> writer)
      : writer_(std::move(writer)) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override { writer_->Bind(a); }
  Status GetValue(int64_t i, ValueTable* values, int64_t* index) override {
    text_.clear();
    ARROW_RETURN_NOT_OK(writer_->Append(i, &text_));
    if (!text_.empty() && text_[0] == '"') {
      ARROW_ASSIGN_OR_RAISE(JsonValue parsed, ParseJson(text_));
      *index = values->String(parsed.string);
    } else {
      *index = values->String(text_);
    }
    return Status::OK();
  }

  std::unique_ptr<internal::JsonValueWriter> writer_;
  std::string text_;
};

// Returns the reader of a property column of `type`, or nullptr for the null type (never a
// value).
Result<std::unique_ptr<PropertyColumn>> MakePropertyColumn(const arrow::DataType& type,
                                                           bool is_geometry) {
  if (is_geometry) {
    ARROW_ASSIGN_OR_RAISE(auto writer,
                          internal::MakeGeometryWriter(type, internal::GeometryStyle::kWkt));
    return std::make_unique<TextColumn>(std::move(writer));
  }
  switch (type.id()) {
    case arrow::Type::NA:
      return nullptr;
    case arrow::Type::BOOL:
      return std::make_unique<BoolColumn>();
    case arrow::Type::INT8:
      return std::make_unique<IntColumn<int8_t>>();
    case arrow::Type::INT16:
      return std::make_unique<IntColumn<int16_t>>();
    case arrow::Type::INT32:
      return std::make_unique<IntColumn<int32_t>>();
    case arrow::Type::INT64:
      return std::make_unique<IntColumn<int64_t>>();
    case arrow::Type::UINT8:
      return std::make_unique<IntColumn<uint8_t>>();
    case arrow::Type::UINT16:
      return std::make_unique<IntColumn<uint16_t>>();
    case arrow::Type::UINT32:
      return std::make_unique<IntColumn<uint32_t>>();
    case arrow::Type::UINT64:
      return std::make_unique<IntColumn<uint64_t>>();
    case arrow::Type::HALF_FLOAT:
      return std::make_unique<FloatColumn<uint16_t>>();
    case arrow::Type::FLOAT:
      return std::make_unique<FloatColumn<float>>();
    case arrow::Type::DOUBLE:
      return std::make_unique<FloatColumn<double>>();
    case arrow::Type::STRING:
      return std::make_unique<StringColumn<arrow::StringArray>>();
    case arrow::Type::LARGE_STRING:
      return std::make_unique<StringColumn<arrow::LargeStringArray>>();
    case arrow::Type::STRING_VIEW:
      return std::make_unique<StringColumn<arrow::StringViewArray>>();
    case arrow::Type::DICTIONARY: {
      const auto& value_type = *static_cast<const arrow::DictionaryType&>(type).value_type();
      ARROW_ASSIGN_OR_RAISE(auto values, MakePropertyColumn(value_type, false));
      if (!values) return nullptr;
      return std::make_unique<DictionaryColumn>(std::move(values));
    }
    default: {
      ARROW_ASSIGN_OR_RAISE(auto writer, internal::MakeJsonValueWriter(type));
      return std::make_unique<TextColumn>(std::move(writer));
    }
  }
}

// What the primary geometry column's CRS makes of its coordinates: no CRS (GeoParquet's
// default, OGC:CRS84), any geographic CRS and EPSG:4326 are longitude/latitude; EPSG:3857
// (and its aliases) is web mercator; anything else is an error.
Result<MvtInputCrs> InputCrs(const GeometryColumn& column) {
  if (column.crs_json.empty() || column.crs_json == "null") return MvtInputCrs::kLonLat;
  auto parsed = ParseJson(column.crs_json);
  if (!parsed.ok()) return MvtInputCrs::kLonLat;  // unreadable: assume the default
  const JsonValue& crs = *parsed;
  std::string name;
  auto is_mercator_code = [](std::string_view authority, std::string_view code) {
    return (authority == "EPSG" || authority == "epsg") &&
           (code == "3857" || code == "900913" || code == "3785" || code == "102100" ||
            code == "102113");
  };
  if (crs.IsString()) {
    const std::string& s = crs.string;
    size_t colon = s.find(':');
    if (colon != std::string::npos) {
      std::string_view authority(s.data(), colon), code(s.data() + colon + 1, s.size() - colon - 1);
      if (is_mercator_code(authority, code)) return MvtInputCrs::kWebMercator;
      if (code == "4326" || code == "CRS84" || code == "4979") return MvtInputCrs::kLonLat;
    }
    name = s;
  } else if (crs.IsObject()) {
    if (const auto* id = crs.Find("id"); id && id->IsObject()) {
      const auto* authority = id->Find("authority");
      const auto* code = id->Find("code");
      if (authority && authority->IsString() && code) {
        std::string code_text = code->IsString() ? code->string : std::string(code->raw);
        if (is_mercator_code(authority->string, code_text)) return MvtInputCrs::kWebMercator;
      }
    }
    if (const auto* type = crs.Find("type"); type && type->IsString()) {
      if (type->string == "GeographicCRS" || type->string == "GeodeticCRS") {
        return MvtInputCrs::kLonLat;
      }
    }
    if (const auto* n = crs.Find("name"); n && n->IsString()) {
      if (n->string == "WGS 84 / Pseudo-Mercator") return MvtInputCrs::kWebMercator;
      name = n->string;
    }
  } else {
    return MvtInputCrs::kLonLat;
  }
  return InvalidArgument("Cannot write geometry column '", column.name, "' as mvt: its CRS '",
                         name.empty() ? column.crs_json : name,
                         "' is neither longitude/latitude (EPSG:4326) nor web mercator "
                         "(EPSG:3857); reproject it first, e.g. gdf.to_crs(4326)");
}

// Views the WKB values of a binary, large_binary or binary_view chunk.
class WkbColumn {
 public:
  void Bind(const std::shared_ptr<arrow::Array>& array) {
    const arrow::Array& storage = StorageOf(*array);
    array_ = &storage;
    type_ = storage.type_id();
  }
  bool IsNull(int64_t i) const { return array_->IsNull(i); }
  std::string_view Value(int64_t i) const {
    switch (type_) {
      case arrow::Type::BINARY:
        return static_cast<const arrow::BinaryArray*>(array_)->GetView(i);
      case arrow::Type::LARGE_BINARY:
        return static_cast<const arrow::LargeBinaryArray*>(array_)->GetView(i);
      default:
        return static_cast<const arrow::BinaryViewArray*>(array_)->GetView(i);
    }
  }

 private:
  const arrow::Array* array_ = nullptr;
  arrow::Type::type type_ = arrow::Type::BINARY;
};

struct Property {
  int field_index;
  std::unique_ptr<PropertyColumn> reader;
  int64_t key = kNoValue;  // index in the layer's keys, assigned on first use
};

}  // namespace

Result<Encoded> EncodeMvt(const arrow::Table& table, const EncodeOptions& options) {
  if (!options.tile) {
    return InvalidArgument(
        "mvt encodes a tile: call it through a /tiles/{z}/{x}/{y} route (or pass the tile to "
        "encode)");
  }
  const arrow::Schema& schema = *table.schema();
  ARROW_ASSIGN_OR_RAISE(GeoInfo geo, ReadGeoInfo(schema));
  const GeometryColumn* primary = geo.Primary();
  if (!primary) {
    return InvalidArgument(
        "mvt needs a geometry column: the table has none (return a GeoDataFrame, or WKB marked "
        "by GeoParquet 'geo' or GeoArrow metadata)");
  }
  ARROW_RETURN_NOT_OK(RequireWkb(geo, schema, "mvt"));
  ARROW_ASSIGN_OR_RAISE(MvtInputCrs crs, InputCrs(*primary));
  ARROW_ASSIGN_OR_RAISE(
      MvtGeometryEncoder geometry_encoder,
      MvtGeometryEncoder::Make(*options.tile, options.mvt_extent, options.mvt_buffer, crs));

  std::vector<Property> properties;
  std::vector<std::string> keys;
  std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>> key_index;
  for (int j = 0; j < schema.num_fields(); ++j) {
    if (j == primary->field_index) continue;
    const arrow::Field& f = *schema.field(j);
    auto reader = MakePropertyColumn(*f.type(), geo.FindByField(j) != nullptr);
    if (!reader.ok()) {
      return MakeError(KindOf(reader.status()),
                       arrow::internal::JoinToString("Cannot write column '", f.name(),
                                                     "' as mvt: ", reader.status().message()));
    }
    if (*reader) properties.push_back({j, std::move(reader).ValueUnsafe()});
  }

  std::string out;
  ValueTable values;
  MvtGeometry geometry;
  std::vector<uint32_t> tags;
  int64_t num_features = 0;
  {
    protozero::pbf_writer tile(out);
    protozero::pbf_writer layer(tile, field::kTileLayers);
    layer.add_string(field::kLayerName, kLayerName);

    WkbColumn wkb;
    arrow::TableBatchReader batches(table);
    int64_t row = 0;
    while (true) {
      std::shared_ptr<arrow::RecordBatch> batch;
      ARROW_RETURN_NOT_OK(batches.ReadNext(&batch));
      if (!batch) break;
      wkb.Bind(batch->column(primary->field_index));
      for (auto& p : properties) p.reader->Bind(batch->column(p.field_index));
      for (int64_t i = 0; i < batch->num_rows(); ++i, ++row) {
        if (wkb.IsNull(i)) continue;
        Status st = geometry_encoder.Encode(wkb.Value(i), &geometry);
        if (!st.ok()) return internal::RowError(st, row, primary->name, "mvt");
        if (geometry.Empty()) continue;

        tags.clear();
        for (auto& p : properties) {
          int64_t value;
          st = p.reader->Get(i, &values, &value);
          if (!st.ok()) {
            return internal::RowError(st, row, schema.field(p.field_index)->name(), "mvt");
          }
          if (value == kNoValue) continue;
          if (p.key == kNoValue) {
            const std::string& name = schema.field(p.field_index)->name();
            auto [it, inserted] = key_index.try_emplace(name, static_cast<int64_t>(keys.size()));
            if (inserted) keys.push_back(name);
            p.key = it->second;
          }
          tags.push_back(static_cast<uint32_t>(p.key));
          tags.push_back(static_cast<uint32_t>(value));
        }

        for (MvtGeomType type :
             {MvtGeomType::kPoint, MvtGeomType::kLineString, MvtGeomType::kPolygon}) {
          const std::vector<uint32_t>& commands = geometry.Of(type);
          if (commands.empty()) continue;
          protozero::pbf_writer feature(layer, field::kLayerFeatures);
          if (!tags.empty())
            feature.add_packed_uint32(field::kFeatureTags, tags.begin(), tags.end());
          feature.add_enum(field::kFeatureType, static_cast<int32_t>(type));
          feature.add_packed_uint32(field::kFeatureGeometry, commands.begin(), commands.end());
          ++num_features;
        }
      }
    }

    if (num_features == 0) {
      layer.rollback();
    } else {
      for (const std::string& key : keys) layer.add_string(field::kLayerKeys, key);
      values.Write(&layer);
      layer.add_uint32(field::kLayerExtent, static_cast<uint32_t>(options.mvt_extent));
      layer.add_uint32(field::kLayerVersion, kLayerVersion);
    }
  }
  return Encoded{arrow::Buffer::FromString(std::move(out)), media_type::kMvt};
}

Status RegisterMvt(EncoderRegistry& registry) {
  return registry.AddVector(
      {"mvt", EncoderKind::kVector, media_type::kMvt,
       "Mapbox Vector Tile of the requested tile: one layer 'udf', geometry clipped to the tile "
       "plus a 64-unit buffer and quantised to 4096; other columns as properties"},
      EncodeMvt);
}

}  // namespace terrafuse::encode

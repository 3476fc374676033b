#include "terrafuse/encode/json_value_writer_internal.h"

#include <arrow/extension_type.h>
#include <arrow/util/byte_size.h>
#include <arrow/util/float16.h>
#include <arrow/visit_type_inline.h>

#include "terrafuse/encode/text_internal.h"
#include "terrafuse/encode/wkb.h"

namespace terrafuse::encode::internal {

namespace {

class NullWriter : public JsonValueWriter {
  void DoBind(const std::shared_ptr<arrow::Array>&) override {}
  Status AppendValue(int64_t, std::string* out) override {
    out->append("null", 4);
    return Status::OK();
  }
};

class BoolWriter : public JsonValueWriter {
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    array_typed_ = static_cast<const arrow::BooleanArray*>(a.get());
  }
  Status AppendValue(int64_t i, std::string* out) override {
    if (array_typed_->Value(i)) {
      out->append("true", 4);
    } else {
      out->append("false", 5);
    }
    return Status::OK();
  }
  const arrow::BooleanArray* array_typed_ = nullptr;
};

template <typename CType>
class NumberWriter : public JsonValueWriter {
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    values_ = a->data()->GetValues<CType>(1);
  }
  Status AppendValue(int64_t i, std::string* out) override {
    if constexpr (std::is_floating_point_v<CType>) {
      AppendJsonDouble(out, static_cast<double>(values_[i]));
    } else {
      AppendInt(out, values_[i]);
    }
    return Status::OK();
  }
  const CType* values_ = nullptr;
};

class HalfFloatWriter : public JsonValueWriter {
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    values_ = a->data()->GetValues<uint16_t>(1);
  }
  Status AppendValue(int64_t i, std::string* out) override {
    AppendJsonDouble(out, arrow::util::Float16::FromBits(values_[i]).ToDouble());
    return Status::OK();
  }
  const uint16_t* values_ = nullptr;
};

template <typename ArrayType>
class StringWriter : public JsonValueWriter {
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    typed_ = static_cast<const ArrayType*>(a.get());
  }
  Status AppendValue(int64_t i, std::string* out) override {
    AppendJsonString(out, typed_->GetView(i));
    return Status::OK();
  }
  const ArrayType* typed_ = nullptr;
};

// Binary that is not geometry: a base64 string (JSON has no bytes).
template <typename ArrayType>
class Base64Writer : public JsonValueWriter {
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    typed_ = static_cast<const ArrayType*>(a.get());
  }
  Status AppendValue(int64_t i, std::string* out) override {
    out->push_back('"');
    AppendBase64(out, typed_->GetView(i));
    out->push_back('"');
    return Status::OK();
  }
  const ArrayType* typed_ = nullptr;
};

// Exact decimal text as a JSON number.
template <typename ArrayType>
class DecimalWriter : public JsonValueWriter {
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    typed_ = static_cast<const ArrayType*>(a.get());
  }
  Status AppendValue(int64_t i, std::string* out) override {
    out->append(typed_->FormatValue(i));
    return Status::OK();
  }
  const ArrayType* typed_ = nullptr;
};

template <typename CType>
class DateWriter : public JsonValueWriter {
 public:
  explicit DateWriter(int64_t units_per_day) : units_per_day_(units_per_day) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    values_ = a->data()->GetValues<CType>(1);
  }
  Status AppendValue(int64_t i, std::string* out) override {
    int64_t v = values_[i];
    int64_t days = v / units_per_day_;
    if (v % units_per_day_ != 0 && v < 0) --days;
    out->push_back('"');
    AppendIsoDate(out, days);
    out->push_back('"');
    return Status::OK();
  }
  int64_t units_per_day_;
  const CType* values_ = nullptr;
};

struct UnitScale {
  int64_t ticks_per_second;
  int digits;
};

UnitScale ScaleOf(arrow::TimeUnit::type unit) {
  switch (unit) {
    case arrow::TimeUnit::SECOND:
      return {1, 0};
    case arrow::TimeUnit::MILLI:
      return {1000, 3};
    case arrow::TimeUnit::MICRO:
      return {1000000, 6};
    default:
      return {1000000000, 9};
  }
}

class TimestampWriter : public JsonValueWriter {
 public:
  TimestampWriter(arrow::TimeUnit::type unit, bool utc) : scale_(ScaleOf(unit)), utc_(utc) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    values_ = a->data()->GetValues<int64_t>(1);
  }
  Status AppendValue(int64_t i, std::string* out) override {
    out->push_back('"');
    AppendIsoTimestamp(out, values_[i], scale_.ticks_per_second, scale_.digits);
    if (utc_) out->push_back('Z');
    out->push_back('"');
    return Status::OK();
  }
  UnitScale scale_;
  bool utc_;
  const int64_t* values_ = nullptr;
};

template <typename CType>
class TimeWriter : public JsonValueWriter {
 public:
  explicit TimeWriter(arrow::TimeUnit::type unit) : scale_(ScaleOf(unit)) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    values_ = a->data()->GetValues<CType>(1);
  }
  Status AppendValue(int64_t i, std::string* out) override {
    int64_t v = values_[i];
    out->push_back('"');
    AppendIsoTime(out, v / scale_.ticks_per_second, v % scale_.ticks_per_second, scale_.digits);
    out->push_back('"');
    return Status::OK();
  }
  UnitScale scale_;
  const CType* values_ = nullptr;
};

// ISO 8601 durations in seconds: "PT90S", "-PT0.5S".
class DurationWriter : public JsonValueWriter {
 public:
  explicit DurationWriter(arrow::TimeUnit::type unit) : scale_(ScaleOf(unit)) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    values_ = a->data()->GetValues<int64_t>(1);
  }
  Status AppendValue(int64_t i, std::string* out) override {
    int64_t v = values_[i];
    out->push_back('"');
    uint64_t magnitude = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
    if (v < 0) out->push_back('-');
    out->append("PT", 2);
    uint64_t ticks = static_cast<uint64_t>(scale_.ticks_per_second);
    AppendInt(out, magnitude / ticks);
    uint64_t fraction = magnitude % ticks;
    if (fraction != 0) {
      char buf[9];
      for (int d = scale_.digits - 1; d >= 0; --d) {
        buf[d] = static_cast<char>('0' + fraction % 10);
        fraction /= 10;
      }
      int len = scale_.digits;
      while (len > 0 && buf[len - 1] == '0') --len;
      out->push_back('.');
      out->append(buf, len);
    }
    out->append("S\"", 2);
    return Status::OK();
  }
  UnitScale scale_;
  const int64_t* values_ = nullptr;
};

class DictionaryWriter : public JsonValueWriter {
 public:
  explicit DictionaryWriter(std::unique_ptr<JsonValueWriter> values) : values_(std::move(values)) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    typed_ = static_cast<const arrow::DictionaryArray*>(a.get());
    dictionary_ = typed_->dictionary();
    values_->Bind(dictionary_);
  }
  Status AppendValue(int64_t i, std::string* out) override {
    return values_->Append(typed_->GetValueIndex(i), out);
  }
  std::unique_ptr<JsonValueWriter> values_;
  const arrow::DictionaryArray* typed_ = nullptr;
  std::shared_ptr<arrow::Array> dictionary_;
};

template <typename ArrayType>
class ListWriter : public JsonValueWriter {
 public:
  explicit ListWriter(std::unique_ptr<JsonValueWriter> values) : values_(std::move(values)) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    typed_ = static_cast<const ArrayType*>(a.get());
    values_->Bind(typed_->values());
  }
  Status AppendValue(int64_t i, std::string* out) override {
    int64_t begin = typed_->value_offset(i);
    int64_t end = begin + typed_->value_length(i);
    out->push_back('[');
    for (int64_t k = begin; k < end; ++k) {
      if (k != begin) out->push_back(',');
      ARROW_RETURN_NOT_OK(values_->Append(k, out));
    }
    out->push_back(']');
    return Status::OK();
  }
  std::unique_ptr<JsonValueWriter> values_;
  const ArrayType* typed_ = nullptr;
};

class StructWriter : public JsonValueWriter {
 public:
  StructWriter(std::vector<std::string> keys, std::vector<std::unique_ptr<JsonValueWriter>> fields)
      : keys_(std::move(keys)), fields_(std::move(fields)) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    const auto& typed = static_cast<const arrow::StructArray&>(*a);
    for (size_t k = 0; k < fields_.size(); ++k) fields_[k]->Bind(typed.field(static_cast<int>(k)));
  }
  Status AppendValue(int64_t i, std::string* out) override {
    out->push_back('{');
    for (size_t k = 0; k < fields_.size(); ++k) {
      if (k) out->push_back(',');
      out->append(keys_[k]);
      ARROW_RETURN_NOT_OK(fields_[k]->Append(i, out));
    }
    out->push_back('}');
    return Status::OK();
  }
  std::vector<std::string> keys_;  // '"name":'
  std::vector<std::unique_ptr<JsonValueWriter>> fields_;
};

// Maps with string keys become objects; others a list of [key, value] pairs.
class MapWriter : public JsonValueWriter {
 public:
  MapWriter(bool string_keys, std::unique_ptr<JsonValueWriter> keys,
            std::unique_ptr<JsonValueWriter> items)
      : string_keys_(string_keys), keys_(std::move(keys)), items_(std::move(items)) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    typed_ = static_cast<const arrow::MapArray*>(a.get());
    keys_->Bind(typed_->keys());
    items_->Bind(typed_->items());
  }
  Status AppendValue(int64_t i, std::string* out) override {
    int64_t begin = typed_->value_offset(i);
    int64_t end = begin + typed_->value_length(i);
    out->push_back(string_keys_ ? '{' : '[');
    for (int64_t k = begin; k < end; ++k) {
      if (k != begin) out->push_back(',');
      if (!string_keys_) out->push_back('[');
      ARROW_RETURN_NOT_OK(keys_->Append(k, out));
      out->push_back(string_keys_ ? ':' : ',');
      ARROW_RETURN_NOT_OK(items_->Append(k, out));
      if (!string_keys_) out->push_back(']');
    }
    out->push_back(string_keys_ ? '}' : ']');
    return Status::OK();
  }
  bool string_keys_;
  std::unique_ptr<JsonValueWriter> keys_;
  std::unique_ptr<JsonValueWriter> items_;
  const arrow::MapArray* typed_ = nullptr;
};

class ExtensionWriter : public JsonValueWriter {
 public:
  explicit ExtensionWriter(std::unique_ptr<JsonValueWriter> storage)
      : storage_(std::move(storage)) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    storage_->Bind(static_cast<const arrow::ExtensionArray&>(*a).storage());
  }
  Status AppendValue(int64_t i, std::string* out) override { return storage_->Append(i, out); }
  std::unique_ptr<JsonValueWriter> storage_;
};

template <typename ArrayType>
class GeometryWriter : public JsonValueWriter {
 public:
  explicit GeometryWriter(GeometryStyle style) : style_(style) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    storage_ = a->type_id() == arrow::Type::EXTENSION
                   ? static_cast<const arrow::ExtensionArray&>(*a).storage()
                   : a;
    typed_ = static_cast<const ArrayType*>(storage_.get());
  }
  Status AppendValue(int64_t i, std::string* out) override {
    if (style_ == GeometryStyle::kGeoJson) return AppendGeoJson(typed_->GetView(i), out);
    out->push_back('"');  // WKT never needs escaping
    ARROW_RETURN_NOT_OK(AppendWkt(typed_->GetView(i), out));
    out->push_back('"');
    return Status::OK();
  }
  GeometryStyle style_;
  std::shared_ptr<arrow::Array> storage_;
  const ArrayType* typed_ = nullptr;
};

struct WriterMaker {
  std::unique_ptr<JsonValueWriter> out;

  template <typename T>
  Status Set() {
    out = std::make_unique<T>();
    return Status::OK();
  }

  Status Visit(const arrow::NullType&) { return Set<NullWriter>(); }
  Status Visit(const arrow::BooleanType&) { return Set<BoolWriter>(); }
  Status Visit(const arrow::HalfFloatType&) { return Set<HalfFloatWriter>(); }

  template <typename T>
  requires(arrow::is_integer_type<T>::value || arrow::is_floating_type<T>::value) &&
      (!std::is_same_v<T, arrow::HalfFloatType>)Status Visit(const T&) {
    return Set<NumberWriter<typename T::c_type>>();
  }

  Status Visit(const arrow::StringType&) { return Set<StringWriter<arrow::StringArray>>(); }
  Status Visit(const arrow::LargeStringType&) {
    return Set<StringWriter<arrow::LargeStringArray>>();
  }
  Status Visit(const arrow::StringViewType&) { return Set<StringWriter<arrow::StringViewArray>>(); }
  Status Visit(const arrow::BinaryType&) { return Set<Base64Writer<arrow::BinaryArray>>(); }
  Status Visit(const arrow::LargeBinaryType&) {
    return Set<Base64Writer<arrow::LargeBinaryArray>>();
  }
  Status Visit(const arrow::BinaryViewType&) { return Set<Base64Writer<arrow::BinaryViewArray>>(); }
  Status Visit(const arrow::FixedSizeBinaryType&) {
    return Set<Base64Writer<arrow::FixedSizeBinaryArray>>();
  }
  Status Visit(const arrow::Decimal32Type&) { return Set<DecimalWriter<arrow::Decimal32Array>>(); }
  Status Visit(const arrow::Decimal64Type&) { return Set<DecimalWriter<arrow::Decimal64Array>>(); }
  Status Visit(const arrow::Decimal128Type&) {
    return Set<DecimalWriter<arrow::Decimal128Array>>();
  }
  Status Visit(const arrow::Decimal256Type&) {
    return Set<DecimalWriter<arrow::Decimal256Array>>();
  }

  Status Visit(const arrow::Date32Type&) {
    out = std::make_unique<DateWriter<int32_t>>(1);
    return Status::OK();
  }
  Status Visit(const arrow::Date64Type&) {
    out = std::make_unique<DateWriter<int64_t>>(86400000);
    return Status::OK();
  }
  Status Visit(const arrow::TimestampType& t) {
    out = std::make_unique<TimestampWriter>(t.unit(), !t.timezone().empty());
    return Status::OK();
  }
  Status Visit(const arrow::Time32Type& t) {
    out = std::make_unique<TimeWriter<int32_t>>(t.unit());
    return Status::OK();
  }
  Status Visit(const arrow::Time64Type& t) {
    out = std::make_unique<TimeWriter<int64_t>>(t.unit());
    return Status::OK();
  }
  Status Visit(const arrow::DurationType& t) {
    out = std::make_unique<DurationWriter>(t.unit());
    return Status::OK();
  }
  Status Visit(const arrow::DictionaryType& t) {
    ARROW_ASSIGN_OR_RAISE(auto values, MakeJsonValueWriter(*t.value_type()));
    out = std::make_unique<DictionaryWriter>(std::move(values));
    return Status::OK();
  }
  Status Visit(const arrow::ListType& t) { return List<arrow::ListArray>(t); }
  Status Visit(const arrow::LargeListType& t) { return List<arrow::LargeListArray>(t); }
  Status Visit(const arrow::FixedSizeListType& t) { return List<arrow::FixedSizeListArray>(t); }
  Status Visit(const arrow::ListViewType& t) { return List<arrow::ListViewArray>(t); }
  Status Visit(const arrow::LargeListViewType& t) { return List<arrow::LargeListViewArray>(t); }
  Status Visit(const arrow::MapType& t) {
    ARROW_ASSIGN_OR_RAISE(auto keys, MakeJsonValueWriter(*t.key_type()));
    ARROW_ASSIGN_OR_RAISE(auto items, MakeJsonValueWriter(*t.item_type()));
    auto key_id = t.key_type()->id();
    bool string_keys = key_id == arrow::Type::STRING || key_id == arrow::Type::LARGE_STRING ||
                       key_id == arrow::Type::STRING_VIEW;
    out = std::make_unique<MapWriter>(string_keys, std::move(keys), std::move(items));
    return Status::OK();
  }
  Status Visit(const arrow::StructType& t) {
    std::vector<std::string> keys;
    std::vector<std::unique_ptr<JsonValueWriter>> fields;
    for (const auto& field : t.fields()) {
      std::string key;
      AppendJsonString(&key, field->name());
      key.push_back(':');
      keys.push_back(std::move(key));
      ARROW_ASSIGN_OR_RAISE(auto writer, MakeJsonValueWriter(*field->type()));
      fields.push_back(std::move(writer));
    }
    out = std::make_unique<StructWriter>(std::move(keys), std::move(fields));
    return Status::OK();
  }
  Status Visit(const arrow::ExtensionType& t) {
    ARROW_ASSIGN_OR_RAISE(auto storage, MakeJsonValueWriter(*t.storage_type()));
    out = std::make_unique<ExtensionWriter>(std::move(storage));
    return Status::OK();
  }
  Status Visit(const arrow::DataType& t) {
    return MakeError(ErrorKind::kNotImplemented,
                     arrow::internal::JoinToString("type ", t.ToString(), " has no JSON form"));
  }

  template <typename ArrayType, typename ListType>
  Status List(const ListType& t) {
    ARROW_ASSIGN_OR_RAISE(auto values, MakeJsonValueWriter(*t.value_type()));
    out = std::make_unique<ListWriter<ArrayType>>(std::move(values));
    return Status::OK();
  }
};

}  // namespace

Result<std::unique_ptr<JsonValueWriter>> MakeJsonValueWriter(const arrow::DataType& type) {
  WriterMaker maker;
  ARROW_RETURN_NOT_OK(arrow::VisitTypeInline(type, &maker));
  return std::move(maker.out);
}

Result<std::unique_ptr<JsonValueWriter>> MakeGeometryWriter(const arrow::DataType& type,
                                                            GeometryStyle style) {
  switch (StorageTypeOf(type).id()) {
    case arrow::Type::BINARY:
      return std::make_unique<GeometryWriter<arrow::BinaryArray>>(style);
    case arrow::Type::LARGE_BINARY:
      return std::make_unique<GeometryWriter<arrow::LargeBinaryArray>>(style);
    case arrow::Type::BINARY_VIEW:
      return std::make_unique<GeometryWriter<arrow::BinaryViewArray>>(style);
    default:
      return InvalidArgument("WKB must be binary, large_binary or binary_view, got ",
                             type.ToString());
  }
}

Result<std::vector<std::unique_ptr<JsonValueWriter>>> MakeColumnWriters(const arrow::Schema& schema,
                                                                        const GeoInfo& geo,
                                                                        GeometryStyle style,
                                                                        std::string_view format) {
  std::vector<std::unique_ptr<JsonValueWriter>> writers;
  for (int j = 0; j < schema.num_fields(); ++j) {
    const arrow::Field& field = *schema.field(j);
    Result<std::unique_ptr<JsonValueWriter>> writer = geo.FindByField(j)
                                                          ? MakeGeometryWriter(*field.type(), style)
                                                          : MakeJsonValueWriter(*field.type());
    if (!writer.ok()) {
      return MakeError(KindOf(writer.status()),
                       arrow::internal::JoinToString("Cannot write column '", field.name(), "' as ",
                                                     format, ": ", writer.status().message()));
    }
    writers.push_back(std::move(writer).ValueUnsafe());
  }
  return writers;
}

int64_t EstimateJsonBytes(const arrow::Table& table, int64_t bytes_per_row) {
  int64_t data = 0;
  for (const auto& column : table.columns()) data += arrow::util::TotalBufferSize(*column);
  return data / 2 * 5 + table.num_rows() * bytes_per_row + 64;
}

Status RowError(const Status& status, int64_t row, std::string_view column,
                std::string_view format) {
  return MakeError(KindOf(status),
                   arrow::internal::JoinToString("Cannot write row ", row, " of column '", column,
                                                 "' as ", format, ": ", status.message()));
}

}  // namespace terrafuse::encode::internal

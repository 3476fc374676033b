#include "terrafuse/encode/table_text_internal.h"

#include <arrow/util/float16.h>
#include <arrow/visit_type_inline.h>

#include <cmath>

#include "terrafuse/encode/json_value_writer_internal.h"
#include "terrafuse/encode/text_internal.h"

namespace terrafuse::encode::internal {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence starting at `p` (a byte >= 0x80), or 0.
int Utf8SequenceLength(const unsigned char* p, const unsigned char* end) {
  auto cont = [&](int k, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return p + k < end && p[k] >= lo && p[k] <= hi;
  };
  const unsigned char c = p[0];
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;  // no surrogates
  if (c >= 0xE1 && c <= 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

// Bytes that need a look: controls (but tab and newline), markup characters, non-ASCII.
struct ByteClasses {
  bool special[256] = {};
  constexpr ByteClasses() {
    for (int c = 0; c < 256; ++c) special[c] = c < 0x20 || c >= 0x80;
    special['\t'] = special['\n'] = false;
    special['&'] = special['<'] = special['>'] = true;
  }
};
constexpr ByteClasses kByteClasses;

}  // namespace

void AppendXmlText(std::string* out, std::string_view s) {
  const bool* special = kByteClasses.special;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  const auto* run = p;  // start of the bytes copied as they are
  while (p < end) {
    if (!special[*p]) {
      ++p;
      continue;
    }
    out->append(reinterpret_cast<const char*>(run), static_cast<size_t>(p - run));
    const unsigned char c = *p;
    int length = 1;
    switch (c) {
      case '&':
        out->append("&amp;");
        break;
      case '<':
        out->append("&lt;");
        break;
      case '>':
        out->append("&gt;");
        break;
      case '\r':
        out->append("&#13;");
        break;
      default:
        if (c < 0x80) {
          out->append(kReplacement);  // a control character
          break;
        }
        length = Utf8SequenceLength(p, end);
        // U+FFFE and U+FFFF are not XML characters either.
        if (length == 0 || (length == 3 && c == 0xEF && p[1] == 0xBF && p[2] >= 0xBE)) {
          out->append(kReplacement);
          length = length == 0 ? 1 : length;
        } else {
          out->append(reinterpret_cast<const char*>(p), static_cast<size_t>(length));
        }
    }
    p += length;
    run = p;
  }
  out->append(reinterpret_cast<const char*>(run), static_cast<size_t>(p - run));
}

namespace {

class NullText : public CellTextWriter {
  void DoBind(const std::shared_ptr<arrow::Array>&) override {}
  Status Append(int64_t, std::string*) override { return Status::OK(); }
};

class BoolText : public CellTextWriter {
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    typed_ = static_cast<const arrow::BooleanArray*>(a.get());
  }
  Status Append(int64_t i, std::string* out) override {
    out->append(typed_->Value(i) ? "true" : "false");
    return Status::OK();
  }
  const arrow::BooleanArray* typed_ = nullptr;
};

template <typename CType>
class IntText : public CellTextWriter {
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    values_ = a->data()->GetValues<CType>(1);
  }
  Status Append(int64_t i, std::string* out) override {
    AppendInt(out, values_[i]);
    return Status::OK();
  }
  const CType* values_ = nullptr;
};

void AppendFloatText(std::string* out, double v, const NonFiniteText& non_finite) {
  if (std::isnan(v)) {
    out->append(non_finite.nan);
  } else if (std::isinf(v)) {
    out->append(v > 0 ? non_finite.infinity : non_finite.negative_infinity);
  } else {
    AppendDouble(out, v);
  }
}

template <typename CType>
class FloatText : public CellTextWriter {
 public:
  explicit FloatText(NonFiniteText non_finite) : non_finite_(non_finite) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    values_ = a->data()->GetValues<CType>(1);
  }
  Status Append(int64_t i, std::string* out) override {
    if constexpr (std::is_same_v<CType, uint16_t>) {
      AppendFloatText(out, arrow::util::Float16::FromBits(values_[i]).ToDouble(), non_finite_);
    } else {
      AppendFloatText(out, static_cast<double>(values_[i]), non_finite_);
    }
    return Status::OK();
  }
  NonFiniteText non_finite_;
  const CType* values_ = nullptr;
};

template <typename ArrayType>
class StringText : public CellTextWriter {
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    typed_ = static_cast<const ArrayType*>(a.get());
  }
  Status Append(int64_t i, std::string* out) override {
    AppendXmlText(out, typed_->GetView(i));
    return Status::OK();
  }
  const ArrayType* typed_ = nullptr;
};

// Values whose JSON form is a string that never needs escaping (ISO 8601 dates and times,
// base64, WKT): that string without its quotes.
class UnquotedJsonText : public CellTextWriter {
 public:
  explicit UnquotedJsonText(std::unique_ptr<JsonValueWriter> json) : json_(std::move(json)) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override { json_->Bind(a); }
  Status Append(int64_t i, std::string* out) override {
    const size_t start = out->size();
    ARROW_RETURN_NOT_OK(json_->Append(i, out));
    if (out->size() >= start + 2 && (*out)[start] == '"') {
      out->pop_back();
      out->erase(start, 1);
    }
    return Status::OK();
  }
  std::unique_ptr<JsonValueWriter> json_;
};

// Decimals and nested values: their JSON text (numbers, arrays, objects), escaped.
class JsonText : public CellTextWriter {
 public:
  explicit JsonText(std::unique_ptr<JsonValueWriter> json) : json_(std::move(json)) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override { json_->Bind(a); }
  Status Append(int64_t i, std::string* out) override {
    scratch_.clear();
    ARROW_RETURN_NOT_OK(json_->Append(i, &scratch_));
    AppendXmlText(out, scratch_);
    return Status::OK();
  }
  std::unique_ptr<JsonValueWriter> json_;
  std::string scratch_;
};

class DictionaryText : public CellTextWriter {
 public:
  explicit DictionaryText(std::unique_ptr<CellTextWriter> values) : values_(std::move(values)) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    typed_ = static_cast<const arrow::DictionaryArray*>(a.get());
    values_->Bind(typed_->dictionary());
  }
  Status Append(int64_t i, std::string* out) override {
    const int64_t index = typed_->GetValueIndex(i);
    if (values_->IsNull(index)) return Status::OK();
    return values_->Append(index, out);
  }
  std::unique_ptr<CellTextWriter> values_;
  const arrow::DictionaryArray* typed_ = nullptr;
};

class ExtensionText : public CellTextWriter {
 public:
  explicit ExtensionText(std::unique_ptr<CellTextWriter> storage) : storage_(std::move(storage)) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    storage_->Bind(static_cast<const arrow::ExtensionArray&>(*a).storage());
  }
  Status Append(int64_t i, std::string* out) override { return storage_->Append(i, out); }
  std::unique_ptr<CellTextWriter> storage_;
};

struct TextWriterMaker {
  NonFiniteText non_finite;
  std::unique_ptr<CellTextWriter> out;

  template <typename T, typename... Args>
  Status Set(Args&&... args) {
    out = std::make_unique<T>(std::forward<Args>(args)...);
    return Status::OK();
  }
  Status Unquoted(const arrow::DataType& type) {
    ARROW_ASSIGN_OR_RAISE(auto json, MakeJsonValueWriter(type));
    return Set<UnquotedJsonText>(std::move(json));
  }
  Status Json(const arrow::DataType& type) {
    ARROW_ASSIGN_OR_RAISE(auto json, MakeJsonValueWriter(type));
    return Set<JsonText>(std::move(json));
  }

  Status Visit(const arrow::NullType&) { return Set<NullText>(); }
  Status Visit(const arrow::BooleanType&) { return Set<BoolText>(); }
  Status Visit(const arrow::HalfFloatType&) { return Set<FloatText<uint16_t>>(non_finite); }
  Status Visit(const arrow::FloatType&) { return Set<FloatText<float>>(non_finite); }
  Status Visit(const arrow::DoubleType&) { return Set<FloatText<double>>(non_finite); }

  template <typename T>
  requires arrow::is_integer_type<T>::value Status Visit(const T&) {
    return Set<IntText<typename T::c_type>>();
  }

  Status Visit(const arrow::StringType&) { return Set<StringText<arrow::StringArray>>(); }
  Status Visit(const arrow::LargeStringType&) { return Set<StringText<arrow::LargeStringArray>>(); }
  Status Visit(const arrow::StringViewType&) { return Set<StringText<arrow::StringViewArray>>(); }
  // Binary (base64), dates, times, timestamps, durations: the json forms, unquoted.
  Status Visit(const arrow::BaseBinaryType& t) { return Unquoted(t); }
  Status Visit(const arrow::BinaryViewType& t) { return Unquoted(t); }
  Status Visit(const arrow::FixedSizeBinaryType& t) {
    if (t.id() != arrow::Type::FIXED_SIZE_BINARY) return Json(t);  // decimals
    return Unquoted(t);
  }
  Status Visit(const arrow::TemporalType& t) { return Unquoted(t); }
  Status Visit(const arrow::DictionaryType& t) {
    TextWriterMaker values{non_finite, nullptr};
    ARROW_RETURN_NOT_OK(arrow::VisitTypeInline(*t.value_type(), &values));
    return Set<DictionaryText>(std::move(values.out));
  }
  Status Visit(const arrow::ExtensionType& t) {
    TextWriterMaker storage{non_finite, nullptr};
    ARROW_RETURN_NOT_OK(arrow::VisitTypeInline(*t.storage_type(), &storage));
    return Set<ExtensionText>(std::move(storage.out));
  }
  // Lists, structs, maps, decimals; the json writer refuses what has no JSON form.
  Status Visit(const arrow::DataType& t) { return Json(t); }
};

}  // namespace

Result<std::unique_ptr<CellTextWriter>> MakeCellTextWriter(const arrow::DataType& type,
                                                           const NonFiniteText& non_finite) {
  TextWriterMaker maker{non_finite, nullptr};
  ARROW_RETURN_NOT_OK(arrow::VisitTypeInline(type, &maker));
  return std::move(maker.out);
}

Result<std::unique_ptr<CellTextWriter>> MakeWktCellWriter(const arrow::DataType& type) {
  ARROW_ASSIGN_OR_RAISE(auto json, MakeGeometryWriter(type, GeometryStyle::kWkt));
  return std::make_unique<UnquotedJsonText>(std::move(json));
}

Result<std::vector<std::unique_ptr<CellTextWriter>>> MakeCellTextWriters(
    const arrow::Schema& schema, const GeoInfo& geo, const NonFiniteText& non_finite,
    std::string_view format) {
  std::vector<std::unique_ptr<CellTextWriter>> writers;
  for (int j = 0; j < schema.num_fields(); ++j) {
    const arrow::Field& field = *schema.field(j);
    auto writer = geo.FindByField(j) ? MakeWktCellWriter(*field.type())
                                     : MakeCellTextWriter(*field.type(), non_finite);
    if (!writer.ok()) {
      return MakeError(KindOf(writer.status()),
                       arrow::internal::JoinToString("Cannot write column '", field.name(), "' as ",
                                                     format, ": ", writer.status().message()));
    }
    writers.push_back(std::move(writer).ValueUnsafe());
  }
  return writers;
}

}  // namespace terrafuse::encode::internal

// `xml`: `<rows><row><name>value</name>...</row>...</rows>`, one element per column named
// after it (made a valid XML name), the shape pandas.read_xml and spreadsheet XML imports
// read as a table.
#include <arrow/table.h>

#include <set>

#include "terrafuse/common/json_reader.h"
#include "terrafuse/encode/geo_metadata.h"
#include "terrafuse/encode/json_value_writer_internal.h"
#include "terrafuse/encode/more_formats.h"
#include "terrafuse/encode/table_text_internal.h"

namespace terrafuse::encode {

namespace {

// xs:double's spellings.
constexpr internal::NonFiniteText kXmlNonFinite{"NaN", "INF", "-INF"};

// Decodes the UTF-8 code point at `s[*pos]`, advancing `*pos`; -1 for an invalid sequence
// (one byte is skipped).
int32_t NextCodePoint(std::string_view s, size_t* pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + *pos;
  if (*p < 0x80) {
    ++*pos;
    return *p;
  }
  uint32_t code;
  const int length = Utf8Sequence(p, reinterpret_cast<const unsigned char*>(s.data()) + s.size(), &code);
  *pos += length > 0 ? length : 1;
  return length > 0 ? static_cast<int32_t>(code) : -1;
}

// XML 1.0 (fifth edition) NameStartChar, without ':' (namespaces).
bool IsNameStart(int32_t c) {
  return (c >= 'A' && c <= 'Z') || c == '_' || (c >= 'a' && c <= 'z') || (c >= 0xC0 && c <= 0xD6) ||
         (c >= 0xD8 && c <= 0xF6) || (c >= 0xF8 && c <= 0x2FF) || (c >= 0x370 && c <= 0x37D) ||
         (c >= 0x37F && c <= 0x1FFF) || (c >= 0x200C && c <= 0x200D) ||
         (c >= 0x2070 && c <= 0x218F) || (c >= 0x2C00 && c <= 0x2FEF) ||
         (c >= 0x3001 && c <= 0xD7FF) || (c >= 0xF900 && c <= 0xFDCF) ||
         (c >= 0xFDF0 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0xEFFFF);
}

bool IsNameChar(int32_t c) {
  return IsNameStart(c) || c == '-' || c == '.' || (c >= '0' && c <= '9') || c == 0xB7 ||
         (c >= 0x300 && c <= 0x36F) || (c >= 0x203F && c <= 0x2040);
}

bool StartsWithXml(std::string_view name) {
  if (name.size() < 3) return false;
  auto lower = [](char c) { return static_cast<char>(c | 0x20); };
  return lower(name[0]) == 'x' && lower(name[1]) == 'm' && lower(name[2]) == 'l';
}

// `name` as an XML element name: characters that cannot appear become '_', and a '_' goes in
// front when the first cannot start a name or the name starts with the reserved "xml".
std::string ElementName(std::string_view name) {
  std::string out;
  size_t pos = 0;
  bool first = true;
  while (pos < name.size()) {
    const size_t start = pos;
    const int32_t c = NextCodePoint(name, &pos);
    if (first && c >= 0 && !IsNameStart(c) && IsNameChar(c)) out.push_back('_');
    if (c >= 0 && IsNameChar(c)) {
      out.append(name.substr(start, pos - start));
    } else {
      out.push_back('_');
    }
    first = false;
  }
  if (out.empty() || StartsWithXml(out)) out.insert(0, 1, '_');
  return out;
}

}  // namespace

Result<Encoded> EncodeXml(const arrow::Table& table, const EncodeOptions&) {
  const arrow::Schema& schema = *table.schema();
  ARROW_ASSIGN_OR_RAISE(GeoInfo geo, ReadGeoInfo(schema));
  ARROW_RETURN_NOT_OK(RequireWkb(geo, schema, "xml"));
  ARROW_ASSIGN_OR_RAISE(auto writers,
                        internal::MakeCellTextWriters(schema, geo, kXmlNonFinite, "xml"));
  // "<name>", "</name>" and "<name/>" per column, names unique.
  std::vector<std::string> open, close, empty;
  std::set<std::string, std::less<>> taken;
  int64_t tag_bytes = 0;
  for (const auto& field : schema.fields()) {
    std::string base = ElementName(field->name());
    std::string name = base;
    for (int k = 2; taken.count(name); ++k) name = base + "_" + std::to_string(k);
    taken.insert(name);
    open.push_back("<" + name + ">");
    close.push_back("</" + name + ">");
    empty.push_back("<" + name + "/>");
    tag_bytes += 2 * static_cast<int64_t>(name.size()) + 5;
  }

  std::string out;
  out.reserve(static_cast<size_t>(internal::EstimateJsonBytes(table, tag_bytes + 12)));
  out.append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rows>\n");
  arrow::TableBatchReader reader(table);
  int64_t row = 0;
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    ARROW_RETURN_NOT_OK(reader.ReadNext(&batch));
    if (!batch) break;
    for (int j = 0; j < batch->num_columns(); ++j) writers[j]->Bind(batch->column(j));
    for (int64_t i = 0; i < batch->num_rows(); ++i, ++row) {
      out.append("<row>");
      for (size_t j = 0; j < writers.size(); ++j) {
        if (writers[j]->IsNull(i)) {
          out.append(empty[j]);
          continue;
        }
        out.append(open[j]);
        Status st = writers[j]->Append(i, &out);
        if (!st.ok()) {
          return internal::RowError(st, row, schema.field(static_cast<int>(j))->name(), "xml");
        }
        out.append(close[j]);
      }
      out.append("</row>\n");
    }
  }
  out.append("</rows>\n");
  return Encoded{arrow::Buffer::FromString(std::move(out)), media_type::kXml};
}

}  // namespace terrafuse::encode

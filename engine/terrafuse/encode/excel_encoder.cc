// `excel`: an xlsx workbook (Office Open XML) of one sheet, written directly: five fixed XML
// parts and the sheet, streamed into a ZIP container (zip_writer_internal.h). Cells keep
// their types: numbers, booleans, dates and times (Excel serial numbers with a date
// format), inline strings; what Excel has no type for becomes text.
//
// Not libxlsxwriter: Debian's build links libcrypto, and pyarrow's libparquet exports its own
// OpenSSL symbols, which then take the place of libcrypto's internal ones in any Python
// process that imports fused._core (hashlib crashes on import).
#include <arrow/table.h>
#include <arrow/util/decimal.h>
#include <arrow/util/float16.h>
#include <arrow/visit_type_inline.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "terrafuse/encode/geo_metadata.h"
#include "terrafuse/encode/json_value_writer_internal.h"
#include "terrafuse/encode/more_formats.h"
#include "terrafuse/encode/table_text_internal.h"
#include "terrafuse/encode/text_internal.h"
#include "terrafuse/encode/zip_writer_internal.h"

namespace terrafuse::encode {

namespace {

// Excel's limits: rows (the header takes one), columns, characters in a cell.
constexpr int64_t kMaxRows = 1048575;
constexpr int64_t kMaxColumns = 16384;
constexpr int64_t kMaxCellChars = 32767;

// zlib level of the parts. Measured on bench/encode's 20,000 rows: level 1 takes 120 ms for
// 5.0 MB where level 6 takes 420 ms for 4.6 MB (the XML itself takes under 30 ms).
constexpr int kDefaultLevel = 1;
// The sheet's XML goes to the ZIP stream in pieces of about this size.
constexpr size_t kFlushBytes = 256 * 1024;

// Excel serial dates: days since 1899-12-30, except that Excel counts a 1900-02-29 that
// never was, so serials 1-59 (1900-01-01 to 1900-02-28) are one less than that.
constexpr int64_t kSerialOfEpoch = 25569;          // 1970-01-01
constexpr int64_t kFirstDay = -25567;              // 1900-01-01, serial 1
constexpr int64_t kFirstDayAfterLeapBug = -25508;  // 1900-03-01, serial 61
constexpr int64_t kLastDay = 2932896;              // 9999-12-31
constexpr int64_t kSecondsPerDay = 86400;

constexpr internal::NonFiniteText kExcelNonFinite{"NaN", "inf", "-inf"};

// Cell styles: indexes into cellXfs of kStyles.
enum class Style { kNone = 0, kHeader = 1, kDate = 2, kDateTime = 3, kTime = 4 };

constexpr char kXmlDeclaration[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n";

constexpr char kContentTypes[] =
    "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">"
    "<Default Extension=\"rels\" "
    "ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>"
    "<Default Extension=\"xml\" ContentType=\"application/xml\"/>"
    "<Override PartName=\"/xl/workbook.xml\" "
    "ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/>"
    "<Override PartName=\"/xl/worksheets/sheet1.xml\" "
    "ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>"
    "<Override PartName=\"/xl/styles.xml\" "
    "ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml\"/>"
    "</Types>";

constexpr char kRootRelationships[] =
    "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
    "<Relationship Id=\"rId1\" "
    "Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" "
    "Target=\"xl/workbook.xml\"/></Relationships>";

constexpr char kWorkbook[] =
    "<workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" "
    "xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\">"
    "<sheets><sheet name=\"Sheet1\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>";

constexpr char kWorkbookRelationships[] =
    "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
    "<Relationship Id=\"rId1\" "
    "Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" "
    "Target=\"worksheets/sheet1.xml\"/>"
    "<Relationship Id=\"rId2\" "
    "Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles\" "
    "Target=\"styles.xml\"/></Relationships>";

// The cellXfs follow enum Style.
constexpr char kStyles[] =
    "<styleSheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">"
    "<numFmts count=\"3\"><numFmt numFmtId=\"164\" formatCode=\"yyyy-mm-dd\"/>"
    "<numFmt numFmtId=\"165\" formatCode=\"yyyy-mm-dd hh:mm:ss\"/>"
    "<numFmt numFmtId=\"166\" formatCode=\"hh:mm:ss\"/></numFmts>"
    "<fonts count=\"2\"><font><sz val=\"11\"/><name val=\"Calibri\"/><family val=\"2\"/></font>"
    "<font><b/><sz val=\"11\"/><name val=\"Calibri\"/><family val=\"2\"/></font></fonts>"
    "<fills count=\"2\"><fill><patternFill patternType=\"none\"/></fill>"
    "<fill><patternFill patternType=\"gray125\"/></fill></fills>"
    "<borders count=\"1\"><border><left/><right/><top/><bottom/><diagonal/></border></borders>"
    "<cellStyleXfs count=\"1\"><xf numFmtId=\"0\" fontId=\"0\" fillId=\"0\" borderId=\"0\"/>"
    "</cellStyleXfs>"
    "<cellXfs count=\"5\"><xf numFmtId=\"0\" fontId=\"0\" fillId=\"0\" borderId=\"0\" xfId=\"0\"/>"
    "<xf numFmtId=\"0\" fontId=\"1\" fillId=\"0\" borderId=\"0\" xfId=\"0\" applyFont=\"1\"/>"
    "<xf numFmtId=\"164\" fontId=\"0\" fillId=\"0\" borderId=\"0\" xfId=\"0\" "
    "applyNumberFormat=\"1\"/>"
    "<xf numFmtId=\"165\" fontId=\"0\" fillId=\"0\" borderId=\"0\" xfId=\"0\" "
    "applyNumberFormat=\"1\"/>"
    "<xf numFmtId=\"166\" fontId=\"0\" fillId=\"0\" borderId=\"0\" xfId=\"0\" "
    "applyNumberFormat=\"1\"/></cellXfs>"
    "<cellStyles count=\"1\"><cellStyle name=\"Normal\" xfId=\"0\" builtinId=\"0\"/></cellStyles>"
    "</styleSheet>";

// "A", "B", ..., "Z", "AA", ... for column 0, 1, ...
std::string ColumnLetters(int64_t index) {
  std::string out;
  for (int64_t n = index + 1; n > 0; n = (n - 1) / 26) {
    out.insert(out.begin(), static_cast<char>('A' + (n - 1) % 26));
  }
  return out;
}

// The serial of day `days` since 1970-01-01, or nothing when Excel cannot show it.
std::optional<double> DaySerial(int64_t days) {
  if (days < kFirstDay || days > kLastDay) return std::nullopt;
  return static_cast<double>(days + kSerialOfEpoch - (days < kFirstDayAfterLeapBug ? 1 : 0));
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// Appends the cells of one sheet row: `<c r="B2" s="2" t="b">...</c>`.
class CellWriter {
 public:
  CellWriter(std::string* out, const std::vector<std::string>& columns)
      : out_(out), columns_(columns) {}

  void SetRow(int64_t row) {
    row_text_.clear();
    internal::AppendInt(&row_text_, row);
  }

  void Number(size_t col, double value, Style style = Style::kNone) {
    if (std::isnan(value)) return;  // an empty cell, as pandas writes NaN
    if (std::isinf(value)) {
      EscapedText(col, value > 0 ? kExcelNonFinite.infinity : kExcelNonFinite.negative_infinity);
      return;
    }
    Open(col, style, nullptr);
    out_->append("<v>");
    internal::AppendDouble(out_, value);
    out_->append("</v></c>");
  }

  void Bool(size_t col, bool value) {
    Open(col, Style::kNone, "b");
    out_->append(value ? "<v>1</v></c>" : "<v>0</v></c>");
  }

  /// `text` is escaped XML text already (table_text_internal.h).
  void EscapedText(size_t col, std::string_view text, Style style = Style::kNone) {
    text = CutToCellLimit(text);
    Open(col, style, "inlineStr");
    const bool spaces = !text.empty() && (MaySpace(text.front()) || MaySpace(text.back()));
    out_->append(spaces ? "<is><t xml:space=\"preserve\">" : "<is><t>");
    out_->append(text);
    out_->append("</t></is></c>");
  }

  void Text(size_t col, std::string_view text, Style style = Style::kNone) {
    scratch_.clear();
    internal::AppendXmlText(&scratch_, text);
    EscapedText(col, scratch_, style);
  }

 private:
  // Whether an escaped text starting or ending with `c` may start or end with white space,
  // which XML would drop without xml:space (an entity may be "&#13;").
  static bool MaySpace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '&' || c == ';';
  }

  // Excel holds 32767 characters a cell: keep the characters before that (an entity such
  // as "&amp;" is one character).
  static std::string_view CutToCellLimit(std::string_view text) {
    if (static_cast<int64_t>(text.size()) <= kMaxCellChars) return text;
    int64_t chars = 0;
    for (size_t k = 0; k < text.size(); ++k) {
      const auto c = static_cast<unsigned char>(text[k]);
      if ((c & 0xC0) == 0x80) continue;  // inside a UTF-8 sequence
      if (++chars > kMaxCellChars) return text.substr(0, k);
      if (c == '&') k = std::min(text.find(';', k), text.size() - 1);
    }
    return text;
  }

  void Open(size_t col, Style style, const char* type) {
    out_->append("<c r=\"");
    out_->append(columns_[col]);
    out_->append(row_text_);
    out_->push_back('"');
    if (style != Style::kNone) {
      out_->append(" s=\"");
      out_->push_back(static_cast<char>('0' + static_cast<int>(style)));  // one digit
      out_->push_back('"');
    }
    if (type) {
      out_->append(" t=\"");
      out_->append(type);
      out_->push_back('"');
    }
    out_->push_back('>');
  }

  std::string* out_;
  const std::vector<std::string>& columns_;
  std::string row_text_;
  std::string scratch_;
};

class ExcelColumn {
 public:
  virtual ~ExcelColumn() = default;
  void Bind(const std::shared_ptr<arrow::Array>& array) {
    array_ = array;
    DoBind(array);
  }
  bool IsNull(int64_t i) const { return array_->IsNull(i); }
  /// Writes row `i` of the bound chunk, known not to be null, as cell `col` of the row.
  virtual Status Write(CellWriter& cells, size_t col, int64_t i) = 0;

 protected:
  virtual void DoBind(const std::shared_ptr<arrow::Array>& array) = 0;
  std::shared_ptr<arrow::Array> array_;
};

class BoolColumn : public ExcelColumn {
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    typed_ = static_cast<const arrow::BooleanArray*>(a.get());
  }
  Status Write(CellWriter& cells, size_t col, int64_t i) override {
    cells.Bool(col, typed_->Value(i));
    return Status::OK();
  }
  const arrow::BooleanArray* typed_ = nullptr;
};

template <typename CType>
class NumberColumn : public ExcelColumn {
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    values_ = a->data()->GetValues<CType>(1);
  }
  Status Write(CellWriter& cells, size_t col, int64_t i) override {
    if constexpr (std::is_same_v<CType, uint16_t>) {  // half floats
      cells.Number(col, arrow::util::Float16::FromBits(values_[i]).ToDouble());
    } else {
      cells.Number(col, static_cast<double>(values_[i]));
    }
    return Status::OK();
  }
  const CType* values_ = nullptr;
};

// Decimals as numbers (Excel has only doubles), through their exact text.
template <typename ArrayType>
class DecimalColumn : public ExcelColumn {
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    typed_ = static_cast<const ArrayType*>(a.get());
  }
  Status Write(CellWriter& cells, size_t col, int64_t i) override {
    std::string text = typed_->FormatValue(i);
    double value = 0;
    std::from_chars(text.data(), text.data() + text.size(), value);
    cells.Number(col, value);
    return Status::OK();
  }
  const ArrayType* typed_ = nullptr;
};

// Strings and whatever Excel has no type for: the cell's text.
class TextColumn : public ExcelColumn {
 public:
  explicit TextColumn(std::unique_ptr<internal::CellTextWriter> text) : text_(std::move(text)) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override { text_->Bind(a); }
  Status Write(CellWriter& cells, size_t col, int64_t i) override {
    buffer_.clear();
    ARROW_RETURN_NOT_OK(text_->Append(i, &buffer_));
    cells.EscapedText(col, buffer_);
    return Status::OK();
  }
  std::unique_ptr<internal::CellTextWriter> text_;
  std::string buffer_;
};

// Dates and timestamps: ticks since the epoch, `ticks_per_day` a day. Out of Excel's range
// (before 1900 or after 9999), the ISO 8601 text instead.
template <typename CType>
class DateTimeColumn : public ExcelColumn {
 public:
  DateTimeColumn(int64_t ticks_per_day, bool with_time,
                 std::unique_ptr<internal::CellTextWriter> iso)
      : ticks_per_day_(ticks_per_day), with_time_(with_time), iso_(std::move(iso)) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    values_ = a->data()->GetValues<CType>(1);
    iso_->Bind(a);
  }
  Status Write(CellWriter& cells, size_t col, int64_t i) override {
    const int64_t v = values_[i];
    const int64_t days = FloorDiv(v, ticks_per_day_);
    std::optional<double> serial = DaySerial(days);
    if (!serial) {
      buffer_.clear();
      ARROW_RETURN_NOT_OK(iso_->Append(i, &buffer_));
      cells.EscapedText(col, buffer_);
    } else if (!with_time_) {
      cells.Number(col, *serial, Style::kDate);
    } else {
      const double fraction =
          static_cast<double>(v - days * ticks_per_day_) / static_cast<double>(ticks_per_day_);
      cells.Number(col, *serial + fraction, Style::kDateTime);
    }
    return Status::OK();
  }
  int64_t ticks_per_day_;
  bool with_time_;
  std::unique_ptr<internal::CellTextWriter> iso_;
  std::string buffer_;
  const CType* values_ = nullptr;
};

// Times of day: the fraction of a day.
template <typename CType>
class TimeColumn : public ExcelColumn {
 public:
  explicit TimeColumn(int64_t ticks_per_day) : ticks_per_day_(ticks_per_day) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    values_ = a->data()->GetValues<CType>(1);
  }
  Status Write(CellWriter& cells, size_t col, int64_t i) override {
    cells.Number(col, static_cast<double>(values_[i]) / static_cast<double>(ticks_per_day_),
                 Style::kTime);
    return Status::OK();
  }
  int64_t ticks_per_day_;
  const CType* values_ = nullptr;
};

class DictionaryColumn : public ExcelColumn {
 public:
  explicit DictionaryColumn(std::unique_ptr<ExcelColumn> values) : values_(std::move(values)) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    typed_ = static_cast<const arrow::DictionaryArray*>(a.get());
    values_->Bind(typed_->dictionary());
  }
  Status Write(CellWriter& cells, size_t col, int64_t i) override {
    const int64_t index = typed_->GetValueIndex(i);
    if (values_->IsNull(index)) return Status::OK();
    return values_->Write(cells, col, index);
  }
  std::unique_ptr<ExcelColumn> values_;
  const arrow::DictionaryArray* typed_ = nullptr;
};

class ExtensionColumn : public ExcelColumn {
 public:
  explicit ExtensionColumn(std::unique_ptr<ExcelColumn> storage) : storage_(std::move(storage)) {}

 private:
  void DoBind(const std::shared_ptr<arrow::Array>& a) override {
    storage_->Bind(static_cast<const arrow::ExtensionArray&>(*a).storage());
  }
  Status Write(CellWriter& cells, size_t col, int64_t i) override {
    return storage_->Write(cells, col, i);
  }
  std::unique_ptr<ExcelColumn> storage_;
};

int64_t TicksPerDay(arrow::TimeUnit::type unit) {
  switch (unit) {
    case arrow::TimeUnit::SECOND:
      return kSecondsPerDay;
    case arrow::TimeUnit::MILLI:
      return kSecondsPerDay * 1000;
    case arrow::TimeUnit::MICRO:
      return kSecondsPerDay * 1000000;
    default:
      return kSecondsPerDay * 1000000000;
  }
}

struct ColumnMaker {
  std::unique_ptr<ExcelColumn> out;

  template <typename T, typename... Args>
  Status Set(Args&&... args) {
    out = std::make_unique<T>(std::forward<Args>(args)...);
    return Status::OK();
  }
  Result<std::unique_ptr<internal::CellTextWriter>> Text(const arrow::DataType& type) {
    return internal::MakeCellTextWriter(type, kExcelNonFinite);
  }

  Status Visit(const arrow::BooleanType&) { return Set<BoolColumn>(); }
  Status Visit(const arrow::HalfFloatType&) { return Set<NumberColumn<uint16_t>>(); }
  template <typename T>
  requires(arrow::is_integer_type<T>::value || arrow::is_floating_type<T>::value) &&
      (!std::is_same_v<T, arrow::HalfFloatType>)Status Visit(const T&) {
    return Set<NumberColumn<typename T::c_type>>();
  }
  Status Visit(const arrow::Decimal32Type&) { return Set<DecimalColumn<arrow::Decimal32Array>>(); }
  Status Visit(const arrow::Decimal64Type&) { return Set<DecimalColumn<arrow::Decimal64Array>>(); }
  Status Visit(const arrow::Decimal128Type&) {
    return Set<DecimalColumn<arrow::Decimal128Array>>();
  }
  Status Visit(const arrow::Decimal256Type&) {
    return Set<DecimalColumn<arrow::Decimal256Array>>();
  }
  Status Visit(const arrow::Date32Type& t) {
    ARROW_ASSIGN_OR_RAISE(auto iso, Text(t));
    return Set<DateTimeColumn<int32_t>>(1, false, std::move(iso));
  }
  Status Visit(const arrow::Date64Type& t) {
    ARROW_ASSIGN_OR_RAISE(auto iso, Text(t));
    return Set<DateTimeColumn<int64_t>>(kSecondsPerDay * 1000, false, std::move(iso));
  }
  Status Visit(const arrow::TimestampType& t) {
    ARROW_ASSIGN_OR_RAISE(auto iso, Text(t));
    return Set<DateTimeColumn<int64_t>>(TicksPerDay(t.unit()), true, std::move(iso));
  }
  Status Visit(const arrow::Time32Type& t) {
    return Set<TimeColumn<int32_t>>(TicksPerDay(t.unit()));
  }
  Status Visit(const arrow::Time64Type& t) {
    return Set<TimeColumn<int64_t>>(TicksPerDay(t.unit()));
  }
  Status Visit(const arrow::DictionaryType& t) {
    ColumnMaker values;
    ARROW_RETURN_NOT_OK(arrow::VisitTypeInline(*t.value_type(), &values));
    return Set<DictionaryColumn>(std::move(values.out));
  }
  Status Visit(const arrow::ExtensionType& t) {
    ColumnMaker storage;
    ARROW_RETURN_NOT_OK(arrow::VisitTypeInline(*t.storage_type(), &storage));
    return Set<ExtensionColumn>(std::move(storage.out));
  }
  // Strings, and as text what Excel has no type for.
  Status Visit(const arrow::DataType& t) {
    ARROW_ASSIGN_OR_RAISE(auto text, Text(t));
    return Set<TextColumn>(std::move(text));
  }
};

Result<std::vector<std::unique_ptr<ExcelColumn>>> MakeColumns(const arrow::Schema& schema,
                                                              const GeoInfo& geo) {
  std::vector<std::unique_ptr<ExcelColumn>> columns;
  for (int j = 0; j < schema.num_fields(); ++j) {
    const arrow::Field& field = *schema.field(j);
    Status st;
    ColumnMaker maker;
    if (geo.FindByField(j)) {
      auto wkt = internal::MakeWktCellWriter(*field.type());
      st = wkt.status();
      if (st.ok()) maker.out = std::make_unique<TextColumn>(std::move(wkt).ValueUnsafe());
    } else {
      st = arrow::VisitTypeInline(*field.type(), &maker);
    }
    if (!st.ok()) {
      return MakeError(KindOf(st),
                       arrow::internal::JoinToString("Cannot write column '", field.name(),
                                                     "' as excel: ", st.message()));
    }
    columns.push_back(std::move(maker.out));
  }
  return columns;
}

Status AddPart(internal::ZipWriter& zip, std::string_view name, std::string_view xml) {
  ARROW_RETURN_NOT_OK(zip.BeginMember(name));
  ARROW_RETURN_NOT_OK(zip.Write(kXmlDeclaration));
  ARROW_RETURN_NOT_OK(zip.Write(xml));
  return zip.EndMember();
}

}  // namespace

Result<Encoded> EncodeExcel(const arrow::Table& table, const EncodeOptions& options) {
  const arrow::Schema& schema = *table.schema();
  if (table.num_rows() > kMaxRows) {
    return InvalidArgument("Table has ", table.num_rows(), " rows: excel holds at most ", kMaxRows,
                           " below the header row; use csv or parquet instead");
  }
  if (schema.num_fields() > kMaxColumns) {
    return InvalidArgument("Table has ", schema.num_fields(), " columns: excel holds at most ",
                           kMaxColumns, "; use csv or parquet instead");
  }
  const int level = options.compression_level.value_or(kDefaultLevel);
  if (level < 0 || level > 9) {
    return InvalidArgument("Excel (zip) compression level must be from 0 to 9, got ", level);
  }
  ARROW_ASSIGN_OR_RAISE(GeoInfo geo, ReadGeoInfo(schema));
  ARROW_RETURN_NOT_OK(RequireWkb(geo, schema, "excel"));
  ARROW_ASSIGN_OR_RAISE(auto columns, MakeColumns(schema, geo));

  internal::ZipWriter zip(level);
  ARROW_RETURN_NOT_OK(AddPart(zip, "[Content_Types].xml", kContentTypes));
  ARROW_RETURN_NOT_OK(AddPart(zip, "_rels/.rels", kRootRelationships));
  ARROW_RETURN_NOT_OK(AddPart(zip, "xl/workbook.xml", kWorkbook));
  ARROW_RETURN_NOT_OK(AddPart(zip, "xl/_rels/workbook.xml.rels", kWorkbookRelationships));
  ARROW_RETURN_NOT_OK(AddPart(zip, "xl/styles.xml", kStyles));

  std::vector<std::string> letters;
  for (int j = 0; j < schema.num_fields(); ++j) letters.push_back(ColumnLetters(j));
  std::string xml = kXmlDeclaration;
  xml.append("<worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">");
  if (!letters.empty()) {
    xml.append("<dimension ref=\"A1:");
    xml.append(letters.back());
    internal::AppendInt(&xml, table.num_rows() + 1);
    xml.append("\"/>");
  }
  // The header row stays in view when scrolling.
  xml.append(
      "<sheetViews><sheetView workbookViewId=\"0\"><pane ySplit=\"1\" topLeftCell=\"A2\" "
      "activePane=\"bottomLeft\" state=\"frozen\"/></sheetView></sheetViews><sheetData>");
  CellWriter cells(&xml, letters);
  cells.SetRow(1);
  xml.append("<row r=\"1\">");
  for (int j = 0; j < schema.num_fields(); ++j) {
    cells.Text(static_cast<size_t>(j), schema.field(j)->name(), Style::kHeader);
  }
  xml.append("</row>");
  ARROW_RETURN_NOT_OK(zip.BeginMember("xl/worksheets/sheet1.xml"));

  arrow::TableBatchReader reader(table);
  int64_t row = 0;
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    ARROW_RETURN_NOT_OK(reader.ReadNext(&batch));
    if (!batch) break;
    for (int j = 0; j < batch->num_columns(); ++j) columns[j]->Bind(batch->column(j));
    for (int64_t i = 0; i < batch->num_rows(); ++i, ++row) {
      cells.SetRow(row + 2);
      xml.append("<row r=\"");
      internal::AppendInt(&xml, row + 2);
      xml.append("\">");
      for (size_t j = 0; j < columns.size(); ++j) {
        if (columns[j]->IsNull(i)) continue;
        Status st = columns[j]->Write(cells, j, i);
        if (!st.ok()) {
          return internal::RowError(st, row, schema.field(static_cast<int>(j))->name(), "excel");
        }
      }
      xml.append("</row>");
      if (xml.size() >= kFlushBytes) {
        ARROW_RETURN_NOT_OK(zip.Write(xml));
        xml.clear();
      }
    }
  }
  xml.append("</sheetData></worksheet>");
  ARROW_RETURN_NOT_OK(zip.Write(xml));
  ARROW_RETURN_NOT_OK(zip.EndMember());
  ARROW_ASSIGN_OR_RAISE(auto bytes, zip.Finish());
  return Encoded{std::move(bytes), media_type::kXlsx};
}

}  // namespace terrafuse::encode

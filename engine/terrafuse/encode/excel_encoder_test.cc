#include <gtest/gtest.h>

#include "terrafuse/encode/more_formats.h"
#include "terrafuse/encode/more_formats_testing_internal.h"

namespace terrafuse::encode {
namespace {

using testing::Count;
using testing::FromJson;
using testing::SampleTable;
using testing::Unzip;

std::string SheetXml(const arrow::Table& table) {
  auto encoded = EncodeExcel(table, {});
  EXPECT_TRUE(encoded.ok()) << encoded.status().ToString();
  if (!encoded.ok()) return "";
  EXPECT_EQ(encoded->media_type,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
  EXPECT_EQ(encoded->bytes->ToString().substr(0, 4), "PK\x03\x04");
  auto members = Unzip(*encoded->bytes);
  EXPECT_TRUE(members.count("[Content_Types].xml"));
  EXPECT_TRUE(members.count("xl/workbook.xml"));
  EXPECT_TRUE(members.count("xl/worksheets/sheet1.xml"));
  const std::string& styles = members["xl/styles.xml"];
  for (const char* format : {"yyyy-mm-dd", "yyyy-mm-dd hh:mm:ss", "hh:mm:ss"}) {
    EXPECT_NE(styles.find(std::string("formatCode=\"") + format + "\""), std::string::npos)
        << format;
  }
  return members["xl/worksheets/sheet1.xml"];
}

// The <c> element of cell `ref` ("B2"), or "" when the sheet has none.
std::string Cell(const std::string& sheet, const std::string& ref) {
  size_t begin = sheet.find("<c r=\"" + ref + "\"");
  if (begin == std::string::npos) return "";
  size_t self_closing = sheet.find("/>", begin);
  size_t end = sheet.find("</c>", begin);
  if (self_closing < end && sheet.find('>', begin) == self_closing + 1) {
    return sheet.substr(begin, self_closing + 2 - begin);
  }
  return sheet.substr(begin, end + 4 - begin);
}

TEST(ExcelEncoderTest, WritesTypedCellsBelowABoldHeader) {
  std::string sheet = SheetXml(*SampleTable());
  EXPECT_EQ(Count(sheet, "<row "), 4);
  EXPECT_NE(sheet.find("<pane ySplit=\"1\""), std::string::npos) << "header row frozen";
  // Header: inline strings in the header style.
  EXPECT_EQ(Cell(sheet, "A1"), "<c r=\"A1\" s=\"1\" t=\"inlineStr\"><is><t>id</t></is></c>");
  EXPECT_EQ(Cell(sheet, "G1"), "<c r=\"G1\" s=\"1\" t=\"inlineStr\"><is><t>geometry</t></is></c>");
  // Row 2: number, escaped string, boolean, number, datetime, date, WKT.
  EXPECT_EQ(Cell(sheet, "A2"), "<c r=\"A2\"><v>1</v></c>");
  EXPECT_EQ(Cell(sheet, "B2"),
            "<c r=\"B2\" t=\"inlineStr\"><is><t>a&lt;b &amp; c&gt;d</t></is></c>");
  EXPECT_EQ(Cell(sheet, "C2"), "<c r=\"C2\" t=\"b\"><v>1</v></c>");
  EXPECT_EQ(Cell(sheet, "D2"), "<c r=\"D2\"><v>0.5</v></c>");
  // Styles: 1 header, 2 date, 3 datetime, 4 time.
  EXPECT_EQ(Cell(sheet, "E2"), "<c r=\"E2\" s=\"3\"><v>25569</v></c>");
  EXPECT_EQ(Cell(sheet, "F2"), "<c r=\"F2\" s=\"2\"><v>25569</v></c>");
  EXPECT_EQ(Cell(sheet, "G2"), "<c r=\"G2\" t=\"inlineStr\"><is><t>POINT (1 2)</t></is></c>");
  // Row 3: nulls are absent cells.
  EXPECT_EQ(Cell(sheet, "A3"), "");
  EXPECT_EQ(Cell(sheet, "C3"), "<c r=\"C3\" t=\"b\"><v>0</v></c>");
  EXPECT_EQ(Cell(sheet, "F3"), "<c r=\"F3\" s=\"2\"><v>44569</v></c>");  // 2022-01-08
  // Row 4: 1970-01-02T00:24:00.5 is day 25570 and 1440.5 s.
  EXPECT_EQ(Cell(sheet, "D4"), "<c r=\"D4\"><v>1e+20</v></c>");
  EXPECT_NE(Cell(sheet, "E4").find("<v>25570.01667245"), std::string::npos) << Cell(sheet, "E4");
  EXPECT_EQ(Cell(sheet, "G4"),
            "<c r=\"G4\" t=\"inlineStr\"><is><t>LINESTRING (0 0, 1.5 1)</t></is></c>");
}

TEST(ExcelEncoderTest, DatesOutsideExcelsCalendarAreText) {
  // 1899-12-31, 1900-01-01 (serial 1), 1900-02-28 (59), 1900-03-01 (61).
  auto table = arrow::Table::Make(arrow::schema({arrow::field("d", arrow::date32())}),
                                  {FromJson(arrow::date32(), "[-25568, -25567, -25509, -25508]")});
  std::string sheet = SheetXml(*table);
  EXPECT_EQ(Cell(sheet, "A2"), "<c r=\"A2\" t=\"inlineStr\"><is><t>1899-12-31</t></is></c>");
  EXPECT_EQ(Cell(sheet, "A3"), "<c r=\"A3\" s=\"2\"><v>1</v></c>");
  EXPECT_EQ(Cell(sheet, "A4"), "<c r=\"A4\" s=\"2\"><v>59</v></c>");
  EXPECT_EQ(Cell(sheet, "A5"), "<c r=\"A5\" s=\"2\"><v>61</v></c>");
  EXPECT_NE(sheet.find("<dimension ref=\"A1:A5\"/>"), std::string::npos);
}

TEST(ExcelEncoderTest, NonFiniteNumbersAndOtherTypes) {
  auto schema = arrow::schema({arrow::field("x", arrow::float64()),
                               arrow::field("t", arrow::time64(arrow::TimeUnit::MICRO)),
                               arrow::field("l", arrow::list(arrow::int32())),
                               arrow::field("cat", arrow::dictionary(arrow::int8(), arrow::utf8())),
                               arrow::field("dec", arrow::decimal128(10, 3))});
  auto dict = arrow::DictionaryArray::FromArrays(FromJson(arrow::int8(), "[1, 0, null]"),
                                                 FromJson(arrow::utf8(), R"(["p", "q"])"))
                  .ValueOrDie();
  auto table = arrow::Table::Make(
      schema, {FromJson(arrow::float64(), "[NaN, Inf, -Inf]"),
               FromJson(arrow::time64(arrow::TimeUnit::MICRO), "[43200000000, 0, null]"),
               FromJson(arrow::list(arrow::int32()), "[[1, 2], [], null]"), dict,
               FromJson(arrow::decimal128(10, 3), R"(["1.250", "-0.001", null])")});
  std::string sheet = SheetXml(*table);
  EXPECT_EQ(Cell(sheet, "A2"), "") << "NaN is an empty cell";
  EXPECT_EQ(Cell(sheet, "A3"), "<c r=\"A3\" t=\"inlineStr\"><is><t>inf</t></is></c>");
  EXPECT_EQ(Cell(sheet, "A4"), "<c r=\"A4\" t=\"inlineStr\"><is><t>-inf</t></is></c>");
  EXPECT_EQ(Cell(sheet, "B2"), "<c r=\"B2\" s=\"4\"><v>0.5</v></c>");
  EXPECT_EQ(Cell(sheet, "C2"), "<c r=\"C2\" t=\"inlineStr\"><is><t>[1,2]</t></is></c>");
  EXPECT_EQ(Cell(sheet, "D2"), "<c r=\"D2\" t=\"inlineStr\"><is><t>q</t></is></c>");
  EXPECT_EQ(Cell(sheet, "D4"), "");
  EXPECT_EQ(Cell(sheet, "E2"), "<c r=\"E2\"><v>1.25</v></c>");
  EXPECT_EQ(Cell(sheet, "E3"), "<c r=\"E3\"><v>-0.001</v></c>");
}

TEST(ExcelEncoderTest, LongTextIsCutToExcelsLimit) {
  std::string text(40000, 'x');
  text.replace(32766, 2, "\u00e9");  // a 2-byte character across the limit stays whole
  auto table = arrow::Table::Make(arrow::schema({arrow::field("s", arrow::utf8())}),
                                  {FromJson(arrow::utf8(), "[\"" + text + "\"]")});
  std::string sheet = SheetXml(*table);
  std::string expected = std::string(32766, 'x') + "\u00e9";
  EXPECT_NE(sheet.find("<t>" + expected + "</t>"), std::string::npos);
}

TEST(ExcelEncoderTest, TooManyRowsOrColumns) {
  auto rows = arrow::Table::Make(arrow::schema({arrow::field("n", arrow::null())}),
                                 {std::make_shared<arrow::NullArray>(1048576)});
  auto encoded = EncodeExcel(*rows, {});
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(KindOf(encoded.status()), ErrorKind::kInvalidArgument);
  EXPECT_EQ(encoded.status().message(),
            "Table has 1048576 rows: excel holds at most 1048575 below the header row; use csv "
            "or parquet instead");
  arrow::FieldVector fields;
  arrow::ArrayVector columns;
  for (int i = 0; i < 16385; ++i) {
    fields.push_back(arrow::field("c" + std::to_string(i), arrow::null()));
    columns.push_back(std::make_shared<arrow::NullArray>(0));
  }
  encoded = EncodeExcel(*arrow::Table::Make(arrow::schema(fields), columns), {});
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(encoded.status().message(),
            "Table has 16385 columns: excel holds at most 16384; use csv or parquet instead");
}

TEST(ExcelEncoderTest, EqualTablesGiveEqualBytesAtAnyLevel) {
  auto table = SampleTable();
  auto a = EncodeExcel(*table, {});
  auto b = EncodeExcel(*table, {});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(a->bytes->Equals(*b->bytes));
  EncodeOptions stored;
  stored.compression_level = 0;
  auto c = EncodeExcel(*table, stored);
  ASSERT_TRUE(c.ok());
  EXPECT_GT(c->bytes->size(), a->bytes->size());
  EXPECT_EQ(Unzip(*c->bytes), Unzip(*a->bytes));
  EncodeOptions bad;
  bad.compression_level = 10;
  auto d = EncodeExcel(*table, bad);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().message(), "Excel (zip) compression level must be from 0 to 9, got 10");
}

TEST(ExcelEncoderTest, LongEscapedTextCountsEntitiesAsOneCharacter) {
  std::string text(40000, '&');
  text[0] = ' ';
  auto table = arrow::Table::Make(arrow::schema({arrow::field("s", arrow::utf8())}),
                                  {FromJson(arrow::utf8(), "[\"" + text + "\"]")});
  std::string sheet = SheetXml(*table);
  std::string expected = " ";
  for (int i = 1; i < 32767; ++i) expected += "&amp;";
  EXPECT_NE(sheet.find("<t xml:space=\"preserve\">" + expected + "</t>"), std::string::npos);
}

TEST(ExcelEncoderTest, ManyRowsStreamThroughTheZip) {
  const int n = 100000;
  arrow::Int64Builder ids;
  arrow::StringBuilder names;
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(ids.Append(i).ok());
    ASSERT_TRUE(names.Append("name " + std::to_string(i)).ok());
  }
  auto table = arrow::Table::Make(
      arrow::schema({arrow::field("id", arrow::int64()), arrow::field("name", arrow::utf8())}),
      {ids.Finish().ValueOrDie(), names.Finish().ValueOrDie()});
  std::string sheet = SheetXml(*table);
  EXPECT_EQ(Count(sheet, "<row "), n + 1);
  EXPECT_NE(sheet.find("<c r=\"B100001\" t=\"inlineStr\"><is><t>name 99999</t></is></c>"),
            std::string::npos);
}

}  // namespace
}  // namespace terrafuse::encode

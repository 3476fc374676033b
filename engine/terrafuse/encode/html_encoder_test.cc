#include <gtest/gtest.h>

#include "terrafuse/encode/more_formats.h"
#include "terrafuse/encode/more_formats_testing_internal.h"

namespace terrafuse::encode {
namespace {

using testing::Count;
using testing::FromJson;
using testing::kGeo;
using testing::SampleTable;
using testing::WkbArray;

std::string Html(const arrow::Table& table) {
  auto encoded = EncodeHtml(table, {});
  EXPECT_TRUE(encoded.ok()) << encoded.status().ToString();
  if (!encoded.ok()) return "";
  EXPECT_EQ(encoded->media_type, "text/html; charset=utf-8");
  return encoded->bytes->ToString();
}

// The part between <table ...> and </table>.
std::string TableOf(const std::string& html) {
  size_t begin = html.find("<thead>");
  size_t end = html.find("</table>");
  EXPECT_NE(begin, std::string::npos);
  EXPECT_NE(end, std::string::npos);
  return html.substr(begin, end - begin);
}

TEST(HtmlEncoderTest, WritesADocumentWithTheTable) {
  std::string html = Html(*SampleTable());
  EXPECT_TRUE(html.starts_with("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">"));
  EXPECT_TRUE(html.ends_with("</table>\n</body>\n</html>\n"));
  EXPECT_EQ(TableOf(html),
            "<thead>\n<tr><th>id</th><th>name</th><th>flag</th><th>value</th><th>when</th>"
            "<th>day</th><th>geometry</th></tr>\n</thead>\n<tbody>\n"
            "<tr><td>1</td><td>a&lt;b &amp; c&gt;d</td><td>true</td><td>0.5</td>"
            "<td>1970-01-01T00:00:00.000000Z</td><td>1970-01-01</td><td>POINT (1 2)</td></tr>\n"
            "<tr><td></td><td></td><td>false</td><td></td><td></td><td>2022-01-08</td><td></td>"
            "</tr>\n"
            "<tr><td>3</td><td>say \"hi\"\n\u00e9</td><td></td><td>1e+20</td>"
            "<td>1970-01-02T00:24:00.500000Z</td><td></td><td>LINESTRING (0 0, 1.5 1)</td>"
            "</tr>\n</tbody>\n");
  EXPECT_EQ(Count(html, "<tr>"), 4);
  EXPECT_EQ(Count(html, "<td>"), 21);
}

TEST(HtmlEncoderTest, EscapesColumnNamesAndNestedValues) {
  auto schema =
      arrow::schema({arrow::field("<b>&", arrow::list(arrow::utf8())),
                     arrow::field("x", arrow::float32()), arrow::field("raw", arrow::binary()),
                     arrow::field("cat", arrow::dictionary(arrow::int8(), arrow::utf8()))});
  auto dict = arrow::DictionaryArray::FromArrays(FromJson(arrow::int8(), "[1, 0, null]"),
                                                 FromJson(arrow::utf8(), R"(["<a>", "b"])"))
                  .ValueOrDie();
  auto table = arrow::Table::Make(
      schema, {FromJson(arrow::list(arrow::utf8()), R"([["<i>", "&"], [], null])"),
               FromJson(arrow::float32(), "[NaN, Inf, -Inf]"),
               FromJson(arrow::binary(), R"(["hi", "", null])"), dict});
  EXPECT_EQ(TableOf(Html(*table)),
            "<thead>\n<tr><th>&lt;b&gt;&amp;</th><th>x</th><th>raw</th><th>cat</th></tr>\n"
            "</thead>\n<tbody>\n"
            "<tr><td>[\"&lt;i&gt;\",\"&amp;\"]</td><td>NaN</td><td>aGk=</td><td>b</td></tr>\n"
            "<tr><td>[]</td><td>inf</td><td></td><td>&lt;a&gt;</td></tr>\n"
            "<tr><td></td><td>-inf</td><td></td><td></td></tr>\n</tbody>\n");
}

TEST(HtmlEncoderTest, EmptyTableHasOnlyTheHeader) {
  std::string html = Html(*SampleTable()->Slice(0, 0));
  EXPECT_EQ(Count(html, "<tr>"), 1);
  EXPECT_NE(html.find("<tbody>\n</tbody>"), std::string::npos);
}

TEST(HtmlEncoderTest, ErrorsNameTheColumn) {
  auto interval = arrow::Table::Make(arrow::schema({arrow::field("span", arrow::month_interval())}),
                                     {FromJson(arrow::month_interval(), "[1]")});
  auto encoded = EncodeHtml(*interval, {});
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(KindOf(encoded.status()), ErrorKind::kNotImplemented);
  EXPECT_EQ(encoded.status().message(),
            "Cannot write column 'span' as html: type month_interval has no JSON form");

  auto schema = arrow::schema({arrow::field("geometry", arrow::binary())},
                              arrow::key_value_metadata({"geo"}, {kGeo}));
  auto bad = arrow::Table::Make(schema, {WkbArray({testing::Point(1, 2), std::string("\x01", 1)})});
  encoded = EncodeHtml(*bad, {});
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(KindOf(encoded.status()), ErrorKind::kInvalidArgument);
  EXPECT_EQ(encoded.status().message(),
            "Cannot write row 1 of column 'geometry' as html: invalid WKB: truncated at byte 0 "
            "of 1");
}

}  // namespace
}  // namespace terrafuse::encode

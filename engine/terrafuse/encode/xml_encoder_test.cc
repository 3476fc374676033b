#include <gtest/gtest.h>

#include "terrafuse/encode/more_formats.h"
#include "terrafuse/encode/more_formats_testing_internal.h"

namespace terrafuse::encode {
namespace {

using testing::Count;
using testing::FromJson;
using testing::SampleTable;

std::string Xml(const arrow::Table& table) {
  auto encoded = EncodeXml(table, {});
  EXPECT_TRUE(encoded.ok()) << encoded.status().ToString();
  if (!encoded.ok()) return "";
  EXPECT_EQ(encoded->media_type, "application/xml");
  return encoded->bytes->ToString();
}

TEST(XmlEncoderTest, WritesOneElementPerCell) {
  EXPECT_EQ(Xml(*SampleTable()),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rows>\n"
            "<row><id>1</id><name>a&lt;b &amp; c&gt;d</name><flag>true</flag><value>0.5</value>"
            "<when>1970-01-01T00:00:00.000000Z</when><day>1970-01-01</day>"
            "<geometry>POINT (1 2)</geometry></row>\n"
            "<row><id/><name/><flag>false</flag><value/><when/><day>2022-01-08</day><geometry/>"
            "</row>\n"
            "<row><id>3</id><name>say \"hi\"\n\u00e9</name><flag/><value>1e+20</value>"
            "<when>1970-01-02T00:24:00.500000Z</when><day/>"
            "<geometry>LINESTRING (0 0, 1.5 1)</geometry></row>\n"
            "</rows>\n");
}

TEST(XmlEncoderTest, ColumnNamesBecomeValidUniqueElementNames) {
  const std::vector<std::string> names = {"a b",          "a_b",   "1st",   "",
                                          "xml_id",       "XMLns", "ns:x",  "caf\u00e9",
                                          "\u4e2d\u6587", "-x",    "a.b-c", "a_b"};
  arrow::FieldVector fields;
  arrow::ArrayVector columns;
  for (const auto& name : names) {
    fields.push_back(arrow::field(name, arrow::int32()));
    columns.push_back(FromJson(arrow::int32(), "[7]"));
  }
  auto table = arrow::Table::Make(arrow::schema(fields), columns);
  EXPECT_EQ(Xml(*table),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rows>\n<row>"
            "<a_b>7</a_b><a_b_2>7</a_b_2><_1st>7</_1st><_>7</_><_xml_id>7</_xml_id>"
            "<_XMLns>7</_XMLns><ns_x>7</ns_x><caf\u00e9>7</caf\u00e9>"
            "<\u4e2d\u6587>7</\u4e2d\u6587><_-x>7</_-x><a.b-c>7</a.b-c><a_b_3>7</a_b_3>"
            "</row>\n</rows>\n");
}

TEST(XmlEncoderTest, NonFiniteNumbersAreXsDoubles) {
  auto table = arrow::Table::Make(arrow::schema({arrow::field("x", arrow::float64())}),
                                  {FromJson(arrow::float64(), "[NaN, Inf, -Inf, -0.0]")});
  EXPECT_EQ(Xml(*table),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rows>\n<row><x>NaN</x></row>\n"
            "<row><x>INF</x></row>\n<row><x>-INF</x></row>\n<row><x>-0</x></row>\n</rows>\n");
}

TEST(XmlEncoderTest, ControlCharactersAndBadUtf8AreReplaced) {
  auto table = arrow::Table::Make(arrow::schema({arrow::field("s", arrow::utf8())}),
                                  {FromJson(arrow::utf8(), R"(["bell\u0007 cr\r"])")});
  EXPECT_EQ(Xml(*table),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rows>\n"
            "<row><s>bell\xEF\xBF\xBD cr&#13;</s></row>\n</rows>\n");
}

TEST(XmlEncoderTest, EmptyTableIsAnEmptyRoot) {
  std::string xml = Xml(*SampleTable()->Slice(0, 0));
  EXPECT_EQ(xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rows>\n</rows>\n");
}

TEST(XmlEncoderTest, ChunksDoNotChangeTheOutput) {
  auto table = SampleTable();
  auto chunked = arrow::ConcatenateTables({table->Slice(0, 1), table->Slice(1, 2)}).ValueOrDie();
  ASSERT_EQ(chunked->column(0)->num_chunks(), 2);
  EXPECT_EQ(Xml(*chunked), Xml(*table));
  EXPECT_EQ(Count(Xml(*chunked), "<row>"), 3);
}

}  // namespace
}  // namespace terrafuse::encode

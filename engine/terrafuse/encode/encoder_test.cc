#include "terrafuse/encode/encoder.h"

#include <arrow/builder.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>
#include <arrow/json/from_string.h>
#include <arrow/util/key_value_metadata.h>
#include <gtest/gtest.h>
#include <parquet/arrow/reader.h>

#include "terrafuse/encode/geo_metadata.h"
#include "terrafuse/encode/testing_internal.h"

namespace terrafuse::encode {
namespace {

using testing::Line;
using testing::Point;
using testing::Wkb;

constexpr char kGeo[] = R"({"version":"1.1.0","primary_column":"geometry","columns":{"geometry":)"
                        R"({"encoding":"WKB","geometry_types":["Point","LineString"]}}})";

std::shared_ptr<arrow::Array> FromJson(const std::shared_ptr<arrow::DataType>& type,
                                       std::string_view json) {
  auto array = arrow::json::ArrayFromJSONString(type, json);
  EXPECT_TRUE(array.ok()) << array.status().ToString();
  return *array;
}

std::shared_ptr<arrow::Array> WkbArray(const std::vector<std::optional<std::string>>& values) {
  arrow::BinaryBuilder builder;
  for (const auto& v : values) {
    EXPECT_TRUE((v ? builder.Append(*v) : builder.AppendNull()).ok());
  }
  return builder.Finish().ValueOrDie();
}

// Three rows of every common type, with a null in each column, and WKB geometry.
std::shared_ptr<arrow::Table> SampleTable(bool with_geo_metadata = true) {
  auto schema = arrow::schema({
      arrow::field("id", arrow::int64()),
      arrow::field("name", arrow::utf8()),
      arrow::field("flag", arrow::boolean()),
      arrow::field("value", arrow::float64()),
      arrow::field("when", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
      arrow::field("day", arrow::date32()),
      arrow::field("geometry", arrow::binary()),
  });
  if (with_geo_metadata) {
    schema = schema->WithMetadata(arrow::key_value_metadata({"geo"}, {kGeo}));
  }
  return arrow::Table::Make(
      schema,
      {
          FromJson(arrow::int64(), "[1, null, 3]"),
          FromJson(arrow::utf8(), R"(["a", null, "say \"hi\"\n\u00e9"])"),
          FromJson(arrow::boolean(), "[true, false, null]"),
          FromJson(arrow::float64(), "[0.5, null, 1e20]"),
          FromJson(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), "[0, null, 87840500000]"),
          FromJson(arrow::date32(), "[0, 19000, null]"),
          WkbArray({Point(1, 2), std::nullopt, Line({0, 0, 1.5, 1})}),
      });
}

std::string Text(const Encoded& encoded) { return encoded.bytes->ToString(); }

std::string EncodeText(const EncoderRegistry& registry, std::string_view format,
                       const arrow::Table& table) {
  auto encoded = registry.Encode(format, table);
  EXPECT_TRUE(encoded.ok()) << encoded.status().ToString();
  return encoded.ok() ? Text(*encoded) : "";
}

class EncoderTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(RegisterBuiltins(registry_).ok()); }

  std::string Encode(std::string_view format, const arrow::Table& table) {
    return EncodeText(registry_, format, table);
  }
  Status EncodeError(std::string_view format, const arrow::Table& table,
                     const EncodeOptions& options = {}) {
    auto encoded = registry_.Encode(format, table, options);
    EXPECT_FALSE(encoded.ok());
    return encoded.status();
  }

  EncoderRegistry registry_;
};

// ---------------------------------------------------------------------------------------
// Registry

TEST_F(EncoderTest, RegistryListsTheBuiltins) {
  EXPECT_EQ(registry_.Names(EncoderKind::kVector),
            (std::vector<std::string>{"csv", "excel", "feather", "geojson", "html", "json", "mvt",
                                      "parquet", "xml"}));
  EXPECT_EQ(registry_.Names(EncoderKind::kRaster),
            (std::vector<std::string>{"gif", "jpeg", "jpg", "npy", "png", "tif", "tiff", "webp"}));
  ASSERT_NE(registry_.Find("GeoJSON"), nullptr);
  EXPECT_EQ(registry_.Find("GeoJSON")->media_type, "application/geo+json");
  EXPECT_EQ(registry_.Find("xlsx"), nullptr);
  EXPECT_EQ(registry_.List().size(), 17u);
}

TEST_F(EncoderTest, UnknownFormatNamesTheKnownOnes) {
  auto info = registry_.Get("xlsx");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(KindOf(info.status()), ErrorKind::kInvalidArgument);
  EXPECT_EQ(info.status().message(),
            "Unknown output format 'xlsx': known formats are csv, excel, feather, geojson, gif, "
            "html, jpeg, jpg, json, mvt, npy, parquet, png, tif, tiff, webp, xml");
  Status st = EncodeError("shapefile", *SampleTable());
  EXPECT_EQ(st.message(),
            "Unknown output format 'shapefile': formats for tables are csv, excel, feather, "
            "geojson, html, json, mvt, parquet, xml");
}

TEST_F(EncoderTest, FormatOfTheOtherKindIsRejected) {
  EXPECT_EQ(EncodeError("png", *SampleTable()).message(),
            "Output format 'png' encodes rasters, not tables: formats for tables are csv, "
            "excel, feather, geojson, html, json, mvt, parquet, xml");
  uint8_t pixel = 0;
  auto raster = registry_.EncodeRaster("csv", RasterView{&pixel, {1, 1}});
  ASSERT_FALSE(raster.ok());
  EXPECT_EQ(raster.status().message(),
            "Output format 'csv' encodes tables, not rasters: formats for rasters are gif, jpeg, "
            "jpg, npy, png, tif, tiff, webp");
}

TEST_F(EncoderTest, NpyHasAnAlignedHeaderAndTheExactBytes) {
  const float values[6] = {0, 0.5f, 1, 1.5f, 2, 2.5f};
  auto npy = registry_.EncodeRaster("npy", RasterView{values, {2, 3}, "float32", sizeof(values)});
  ASSERT_TRUE(npy.ok()) << npy.status().ToString();
  std::string bytes = npy->bytes->ToString();
  ASSERT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u);
  EXPECT_NE(bytes.find("'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), std::string::npos);
  EXPECT_EQ(bytes.substr(10 + header_len), std::string(reinterpret_cast<const char*>(values), sizeof(values)));
  EXPECT_EQ(npy->media_type, "application/x-npy");
  auto bad = registry_.EncodeRaster("npy", RasterView{values, {2, 3}, "complex64"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "npy cannot encode dtype 'complex64': use a bool, integer or float array");
  auto wrong_size = registry_.EncodeRaster("npy", RasterView{values, {2, 2}, "float32", sizeof(values)});
  EXPECT_FALSE(wrong_size.ok());
}

TEST_F(EncoderTest, DuplicateRegistrationFails) {
  Status st = registry_.AddVector({"CSV", EncoderKind::kVector, "text/csv", ""}, EncodeCsv);
  EXPECT_EQ(KindOf(st), ErrorKind::kAlreadyExists);
  EXPECT_EQ(st.message(), "Output format 'CSV' is registered twice");
}

// ---------------------------------------------------------------------------------------
// csv

TEST_F(EncoderTest, CsvWritesGeometryAsWkt) {
  auto encoded = registry_.Encode("csv", *SampleTable()).ValueOrDie();
  EXPECT_EQ(encoded.media_type, "text/csv");
  EXPECT_EQ(Text(encoded),
            "\"id\",\"name\",\"flag\",\"value\",\"when\",\"day\",\"geometry\"\n"
            "1,\"a\",true,0.5,1970-01-01 00:00:00.000000Z,1970-01-01,\"POINT (1 2)\"\n"
            ",,false,,,2022-01-08,\n"
            "3,\"say \"\"hi\"\"\n\xc3\xa9\",,1e+20,1970-01-02 00:24:00.500000Z,,"
            "\"LINESTRING (0 0, 1.5 1)\"\n");
}

TEST_F(EncoderTest, CsvWritesNestedValuesAsJsonAndBytesAsBase64) {
  auto list_type = arrow::list(arrow::int32());
  auto struct_type = arrow::struct_({arrow::field("k", arrow::utf8())});
  auto table = arrow::Table::Make(
      arrow::schema({arrow::field("xs", list_type), arrow::field("s", struct_type),
                     arrow::field("b", arrow::binary()), arrow::field("v", arrow::utf8_view())}),
      {FromJson(list_type, "[[1, 2], null]"), FromJson(struct_type, R"([{"k": "v"}, null])"),
       WkbArray({std::string("\x00\xff", 2), std::nullopt}),
       FromJson(arrow::utf8_view(), R"(["a view", null])")});
  EXPECT_EQ(
      Encode("csv", *table),
      "\"xs\",\"s\",\"b\",\"v\"\n\"[1,2]\",\"{\"\"k\"\":\"\"v\"\"}\",\"AP8=\",\"a view\"\n,,,\n");
}

// ---------------------------------------------------------------------------------------
// json

TEST_F(EncoderTest, JsonWritesRowObjects) {
  auto encoded = registry_.Encode("json", *SampleTable()).ValueOrDie();
  EXPECT_EQ(encoded.media_type, "application/json");
  EXPECT_EQ(Text(encoded),
            R"([{"id":1,"name":"a","flag":true,"value":0.5,"when":"1970-01-01T00:00:00.000000Z",)"
            R"~("day":"1970-01-01","geometry":"POINT (1 2)"},)~"
            R"({"id":null,"name":null,"flag":false,"value":null,"when":null,)"
            R"("day":"2022-01-08","geometry":null},)"
            R"({"id":3,"name":"say \"hi\"\n)"
            "\xc3\xa9"
            R"(","flag":null,"value":1e+20,"when":"1970-01-02T00:24:00.500000Z",)"
            R"~("day":null,"geometry":"LINESTRING (0 0, 1.5 1)"}])~");
}

TEST_F(EncoderTest, JsonOfAnEmptyTableIsAnEmptyArray) {
  auto table = SampleTable()->Slice(0, 0);
  EXPECT_EQ(Encode("json", *table), "[]");
  auto no_columns = arrow::Table::Make(arrow::schema({}), arrow::ArrayVector{}, 2);
  EXPECT_EQ(Encode("json", *no_columns), "[{},{}]");
}

TEST_F(EncoderTest, JsonIsTheSameForAnyChunking) {
  auto table = SampleTable();
  std::vector<std::shared_ptr<arrow::Table>> parts = {table->Slice(0, 1), table->Slice(1, 2)};
  auto chunked = arrow::ConcatenateTables(parts).ValueOrDie();
  ASSERT_EQ(chunked->column(0)->num_chunks(), 2);
  EXPECT_EQ(Encode("json", *chunked), Encode("json", *table));
  EXPECT_EQ(Encode("geojson", *chunked), Encode("geojson", *table));
  EXPECT_EQ(Encode("csv", *chunked), Encode("csv", *table));
}

TEST_F(EncoderTest, JsonTypes) {
  auto dict_type = arrow::dictionary(arrow::int8(), arrow::utf8());
  auto map_type = arrow::map(arrow::utf8(), arrow::int64());
  auto int_map_type = arrow::map(arrow::int32(), arrow::utf8());
  auto schema = arrow::schema({
      arrow::field("u64", arrow::uint64()),
      arrow::field("f32", arrow::float32()),
      arrow::field("ts_ns", arrow::timestamp(arrow::TimeUnit::NANO)),
      arrow::field("t", arrow::time32(arrow::TimeUnit::MILLI)),
      arrow::field("dur", arrow::duration(arrow::TimeUnit::MILLI)),
      arrow::field("dec", arrow::decimal128(10, 3)),
      arrow::field("bin", arrow::binary()),
      arrow::field("dict", dict_type),
      arrow::field("m", map_type),
      arrow::field("im", int_map_type),
      arrow::field("nothing", arrow::null()),
  });
  auto dict = arrow::DictionaryArray::FromArrays(dict_type, FromJson(arrow::int8(), "[1]"),
                                                 FromJson(arrow::utf8(), R"(["x", "y"])"))
                  .ValueOrDie();
  auto table =
      arrow::Table::Make(schema, {
                                     FromJson(arrow::uint64(), "[18446744073709551615]"),
                                     FromJson(arrow::float32(), "[0.1]"),
                                     FromJson(arrow::timestamp(arrow::TimeUnit::NANO), "[-1]"),
                                     FromJson(arrow::time32(arrow::TimeUnit::MILLI), "[45296789]"),
                                     FromJson(arrow::duration(arrow::TimeUnit::MILLI), "[-1500]"),
                                     FromJson(arrow::decimal128(10, 3), R"(["-12.345"])"),
                                     FromJson(arrow::binary(), R"(["hi!"])"),
                                     dict,
                                     FromJson(map_type, R"([[["a", 1], ["b", null]]])"),
                                     FromJson(int_map_type, R"([[[7, "x"]]])"),
                                     FromJson(arrow::null(), "[null]"),
                                 });
  EXPECT_EQ(Encode("json", *table),
            R"([{"u64":18446744073709551615,"f32":0.10000000149011612,)"
            R"("ts_ns":"1969-12-31T23:59:59.999999999","t":"12:34:56.789","dur":"-PT1.5S",)"
            R"("dec":-12.345,"bin":"aGkh","dict":"y","m":{"a":1,"b":null},"im":[[7,"x"]],)"
            R"("nothing":null}])");
}

TEST_F(EncoderTest, JsonRejectsTypesWithoutAJsonForm) {
  auto type = arrow::month_interval();
  auto table =
      arrow::Table::Make(arrow::schema({arrow::field("months", type)}), {FromJson(type, "[1]")});
  Status st = EncodeError("json", *table);
  EXPECT_EQ(KindOf(st), ErrorKind::kNotImplemented);
  EXPECT_EQ(st.message(),
            "Cannot write column 'months' as json: type month_interval has no JSON form");
}

// ---------------------------------------------------------------------------------------
// geojson

TEST_F(EncoderTest, GeoJsonWritesAFeatureCollection) {
  auto table = SampleTable()->SelectColumns({0, 1, 6}).ValueOrDie();
  auto encoded = registry_.Encode("geojson", *table).ValueOrDie();
  EXPECT_EQ(encoded.media_type, "application/geo+json");
  EXPECT_EQ(Text(encoded),
            R"({"type":"FeatureCollection","features":[)"
            R"({"type":"Feature","properties":{"id":1,"name":"a"},)"
            R"("geometry":{"type":"Point","coordinates":[1,2]}},)"
            R"({"type":"Feature","properties":{"id":null,"name":null},"geometry":null},)"
            R"({"type":"Feature","properties":{"id":3,"name":"say \"hi\"\n)"
            "\xc3\xa9"
            R"("},"geometry":{"type":"LineString","coordinates":[[0,0],[1.5,1]]}}]})");
}

TEST_F(EncoderTest, GeoJsonUsesThePrimaryColumnAndWritesOthersAsWkt) {
  constexpr char kTwoColumns[] =
      R"({"primary_column":"b","columns":{"a":{"encoding":"WKB"},"b":{"encoding":"WKB"}}})";
  auto schema =
      arrow::schema({arrow::field("a", arrow::binary()), arrow::field("b", arrow::binary())},
                    arrow::key_value_metadata({"geo"}, {kTwoColumns}));
  auto table = arrow::Table::Make(schema, {WkbArray({Point(1, 2)}), WkbArray({Point(3, 4)})});
  EXPECT_EQ(
      Encode("geojson", *table),
      R"({"type":"FeatureCollection","features":[{"type":"Feature",)"
      R"~("properties":{"a":"POINT (1 2)"},"geometry":{"type":"Point","coordinates":[3,4]}}]})~");
}

TEST_F(EncoderTest, GeoJsonWithoutGeometryHasNullGeometries) {
  auto table = SampleTable()->SelectColumns({0}).ValueOrDie()->Slice(0, 1);
  EXPECT_EQ(Encode("geojson", *table),
            R"({"type":"FeatureCollection","features":[{"type":"Feature",)"
            R"("properties":{"id":1},"geometry":null}]})");
  EXPECT_EQ(Encode("geojson", *table->Slice(0, 0)),
            R"({"type":"FeatureCollection","features":[]})");
}

TEST_F(EncoderTest, GeometryFoundThroughGeoArrowExtensionMetadata) {
  auto field = arrow::field("geom", arrow::binary(),
                            arrow::key_value_metadata({"ARROW:extension:name"}, {"geoarrow.wkb"}));
  auto table = arrow::Table::Make(arrow::schema({field}), {WkbArray({Point(5, 6)})});
  EXPECT_EQ(Encode("json", *table), R"~([{"geom":"POINT (5 6)"}])~");
  EXPECT_EQ(Encode("geojson", *table),
            R"({"type":"FeatureCollection","features":[{"type":"Feature","properties":{},)"
            R"("geometry":{"type":"Point","coordinates":[5,6]}}]})");
}

TEST_F(EncoderTest, InvalidWkbNamesRowAndColumn) {
  auto schema = arrow::schema({arrow::field("geometry", arrow::binary())},
                              arrow::key_value_metadata({"geo"}, {kGeo}));
  auto table =
      arrow::Table::Make(schema, {WkbArray({Point(1, 2), std::string("\x01\x07\x00\x00", 4)})});
  for (const char* format : {"json", "geojson"}) {
    Status st = EncodeError(format, *table);
    EXPECT_EQ(KindOf(st), ErrorKind::kInvalidArgument);
    EXPECT_EQ(st.message(), std::string("Cannot write row 1 of column 'geometry' as ") + format +
                                ": invalid WKB: truncated at byte 0 of 4");
  }
  EXPECT_EQ(EncodeError("csv", *table).message(),
            "Cannot write column 'geometry' as csv: row 1: invalid WKB: truncated at byte 0 of 4");
}

TEST_F(EncoderTest, BadGeoMetadataIsAnError) {
  auto schema = arrow::schema({arrow::field("g", arrow::binary())},
                              arrow::key_value_metadata({"geo"}, {"{\"columns\": [1,"}));
  auto table = arrow::Table::Make(schema, {WkbArray({Point(1, 2)})});
  EXPECT_EQ(EncodeError("json", *table).message(),
            "Schema metadata 'geo' is not GeoParquet metadata: invalid JSON at byte 15: "
            "unexpected end");
  auto native = arrow::schema(
      {arrow::field("g", arrow::binary())},
      arrow::key_value_metadata({"geo"}, {R"({"columns":{"g":{"encoding":"point"}}})"}));
  EXPECT_EQ(EncodeError("csv", *arrow::Table::Make(native, {WkbArray({Point(1, 2)})})).message(),
            "Cannot write geometry column 'g' as csv: its GeoParquet encoding is 'point'; only "
            "WKB geometry columns are supported");
}

// ---------------------------------------------------------------------------------------
// parquet and feather

std::shared_ptr<arrow::Table> ReadParquet(const std::shared_ptr<arrow::Buffer>& bytes) {
  auto input = std::make_shared<arrow::io::BufferReader>(bytes);
  auto reader = parquet::arrow::OpenFile(input, arrow::default_memory_pool()).ValueOrDie();
  return reader->ReadTable().ValueOrDie();
}

std::shared_ptr<arrow::Table> ReadFeather(const std::shared_ptr<arrow::Buffer>& bytes) {
  auto input = std::make_shared<arrow::io::BufferReader>(bytes);
  auto reader = arrow::ipc::RecordBatchFileReader::Open(input).ValueOrDie();
  return reader->ToTable().ValueOrDie();
}

std::string GeoOf(const arrow::Table& table) {
  return table.schema()->metadata()->Get("geo").ValueOr("");
}

TEST_F(EncoderTest, ParquetRoundTripsTheTableAndItsGeoMetadata) {
  auto table = SampleTable();
  for (const char* codec : {"", "snappy", "zstd", "none"}) {
    EncodeOptions options;
    options.compression = codec;
    auto encoded = registry_.Encode("parquet", *table, options).ValueOrDie();
    EXPECT_EQ(encoded.media_type, "application/vnd.apache.parquet");
    EXPECT_EQ(encoded.bytes->ToString().substr(0, 4), "PAR1");
    auto back = ReadParquet(encoded.bytes);
    EXPECT_TRUE(back->Equals(*table)) << codec << "\n" << back->ToString();
    EXPECT_EQ(GeoOf(*back), kGeo);
  }
}

TEST_F(EncoderTest, FeatherRoundTripsTheTableAndItsGeoMetadata) {
  auto table = SampleTable();
  for (const char* codec : {"", "zstd", "none"}) {
    EncodeOptions options;
    options.compression = codec;
    auto encoded = registry_.Encode("feather", *table, options).ValueOrDie();
    EXPECT_EQ(encoded.media_type, "application/vnd.apache.arrow.file");
    EXPECT_EQ(encoded.bytes->ToString().substr(0, 6), "ARROW1");
    auto back = ReadFeather(encoded.bytes);
    EXPECT_TRUE(back->Equals(*table)) << codec;
    EXPECT_EQ(GeoOf(*back), kGeo);
  }
}

TEST_F(EncoderTest, BinaryFormatsAddGeoMetadataForGeoArrowColumns) {
  auto field =
      arrow::field("geom", arrow::binary(),
                   arrow::key_value_metadata({"ARROW:extension:name", "ARROW:extension:metadata"},
                                             {"geoarrow.wkb", R"({"crs": "EPSG:3857"})"}));
  auto table = arrow::Table::Make(arrow::schema({field}), {WkbArray({Point(5, 6)})});
  constexpr char kExpected[] =
      R"({"version":"1.1.0","primary_column":"geom","columns":{"geom":{"encoding":"WKB",)"
      R"("geometry_types":[],"crs":"EPSG:3857"}}})";
  EXPECT_EQ(GeoOf(*ReadParquet(registry_.Encode("parquet", *table).ValueOrDie().bytes)), kExpected);
  EXPECT_EQ(GeoOf(*ReadFeather(registry_.Encode("feather", *table).ValueOrDie().bytes)), kExpected);
}

TEST_F(EncoderTest, UnknownCompressionIsAnError) {
  EncodeOptions options;
  options.compression = "brotli9";
  EXPECT_EQ(EncodeError("parquet", *SampleTable(), options).message(),
            "Unknown compression 'brotli9' for parquet: use one of zstd, snappy, gzip, lz4, none");
  EXPECT_EQ(EncodeError("feather", *SampleTable(), options).message(),
            "Unknown compression 'brotli9' for feather: use one of lz4, zstd, none");
}

}  // namespace
}  // namespace terrafuse::encode

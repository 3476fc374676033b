// The `mvt` encoder, read back with protozero's pbf_reader: layer fields, geometry commands
// decoded to tile coordinates, properties through the keys and values tables.
#include <arrow/builder.h>
#include <arrow/json/from_string.h>
#include <arrow/util/key_value_metadata.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <numbers>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <protozero/pbf_reader.hpp>

#include "terrafuse/encode/encoder.h"
#include "terrafuse/encode/mvt_geometry_internal.h"
#include "terrafuse/encode/testing_internal.h"

namespace terrafuse::encode {
namespace {

using testing::Wkb;
using tiles::Tile;

// ---------------------------------------------------------------------------------------
// A small MVT reader

struct XY {
  int64_t x, y;
  friend bool operator==(const XY&, const XY&) = default;
};
std::ostream& operator<<(std::ostream& os, const XY& p) {
  return os << "(" << p.x << " " << p.y << ")";
}
using Path = std::vector<XY>;

struct Feature {
  int type = 0;
  std::vector<uint32_t> tags;
  // Points: one part of one point each; lines: one part per MoveTo; polygons: one per ring.
  std::vector<Path> parts;
  // Properties as "key" -> "kind:value" ("uint:3", "string:a").
  std::map<std::string, std::string> properties;
};

struct Layer {
  std::string name;
  uint32_t version = 1;  // the proto default
  uint32_t extent = 4096;
  std::vector<std::string> keys;
  std::vector<std::string> values;  // "kind:value"
  std::vector<Feature> features;
};

int32_t UnZigZag(uint32_t v) { return static_cast<int32_t>((v >> 1) ^ (~(v & 1) + 1)); }

std::string ReadValue(protozero::pbf_reader value) {
  std::string out;
  int fields = 0;
  while (value.next()) {
    ++fields;
    switch (value.tag()) {
      case 1:
        out = "string:" + value.get_string();
        break;
      case 2:
        out = "float:" + std::to_string(value.get_float());
        break;
      case 3: {
        std::ostringstream s;
        s << value.get_double();
        out = "double:" + s.str();
        break;
      }
      case 4:
        out = "int:" + std::to_string(value.get_int64());
        break;
      case 5:
        out = "uint:" + std::to_string(value.get_uint64());
        break;
      case 6:
        out = "sint:" + std::to_string(value.get_sint64());
        break;
      case 7:
        out = std::string("bool:") + (value.get_bool() ? "true" : "false");
        break;
      default:
        value.skip();
    }
  }
  EXPECT_EQ(fields, 1) << "a Value has exactly one field";
  return out;
}

// Decodes the command integers of one feature, checking the command structure of its type.
std::vector<Path> ReadGeometry(int type, const std::vector<uint32_t>& commands) {
  std::vector<Path> parts;
  int64_t x = 0, y = 0;
  size_t i = 0;
  while (i < commands.size()) {
    uint32_t id = commands[i] & 7, count = commands[i] >> 3;
    ++i;
    EXPECT_GE(count, 1u);
    if (id == 1) {  // MoveTo
      if (type == 1) {
        EXPECT_TRUE(parts.empty()) << "points: a single MoveTo";
      } else {
        EXPECT_EQ(count, 1u);
      }
      for (uint32_t k = 0; k < count; ++k, i += 2) {
        EXPECT_LE(i + 2, commands.size());
        if (i + 2 > commands.size()) return parts;
        x += UnZigZag(commands[i]);
        y += UnZigZag(commands[i + 1]);
        parts.push_back({{x, y}});
      }
    } else if (id == 2) {  // LineTo
      EXPECT_NE(type, 1);
      EXPECT_FALSE(parts.empty());
      if (parts.empty()) return parts;
      for (uint32_t k = 0; k < count; ++k, i += 2) {
        EXPECT_LE(i + 2, commands.size());
        if (i + 2 > commands.size()) return parts;
        x += UnZigZag(commands[i]);
        y += UnZigZag(commands[i + 1]);
        parts.back().push_back({x, y});
      }
    } else if (id == 7) {  // ClosePath
      EXPECT_EQ(type, 3);
      EXPECT_EQ(count, 1u);
    } else {
      ADD_FAILURE() << "unknown command " << id;
      return parts;
    }
  }
  if (type == 3) {  // every ring is MoveTo, LineTo(n >= 2), ClosePath
    for (const Path& ring : parts) EXPECT_GE(ring.size(), 3u);
  }
  return parts;
}

// Returns the one layer of `tile`, or nullopt for an empty tile.
std::optional<Layer> ReadTile(const std::string& bytes) {
  protozero::pbf_reader tile(bytes);
  std::optional<Layer> out;
  while (tile.next()) {
    EXPECT_EQ(tile.tag(), 3u);
    EXPECT_FALSE(out.has_value()) << "one layer";
    Layer layer;
    protozero::pbf_reader l = tile.get_message();
    while (l.next()) {
      switch (l.tag()) {
        case 1:
          layer.name = l.get_string();
          break;
        case 2: {
          protozero::pbf_reader f = l.get_message();
          Feature feature;
          std::vector<uint32_t> geometry;
          while (f.next()) {
            switch (f.tag()) {
              case 2: {
                auto range = f.get_packed_uint32();
                feature.tags.assign(range.begin(), range.end());
                break;
              }
              case 3:
                feature.type = f.get_enum();
                break;
              case 4: {
                auto range = f.get_packed_uint32();
                geometry.assign(range.begin(), range.end());
                break;
              }
              default:
                ADD_FAILURE() << "unexpected feature field " << f.tag();
                f.skip();
            }
          }
          feature.parts = ReadGeometry(feature.type, geometry);
          layer.features.push_back(std::move(feature));
          break;
        }
        case 3:
          layer.keys.push_back(l.get_string());
          break;
        case 4:
          layer.values.push_back(ReadValue(l.get_message()));
          break;
        case 5:
          layer.extent = l.get_uint32();
          break;
        case 15:
          layer.version = l.get_uint32();
          break;
        default:
          ADD_FAILURE() << "unexpected layer field " << l.tag();
          l.skip();
      }
    }
    for (Feature& feature : layer.features) {
      EXPECT_EQ(feature.tags.size() % 2, 0u);
      for (size_t k = 0; k + 1 < feature.tags.size(); k += 2) {
        EXPECT_LT(feature.tags[k], layer.keys.size());
        EXPECT_LT(feature.tags[k + 1], layer.values.size());
        if (feature.tags[k] < layer.keys.size() && feature.tags[k + 1] < layer.values.size()) {
          feature.properties[layer.keys[feature.tags[k]]] = layer.values[feature.tags[k + 1]];
        }
      }
    }
    out = std::move(layer);
  }
  return out;
}

// Twice the signed area of a ring in tile coordinates (positive: clockwise on screen).
int64_t Area2(const Path& ring) {
  int64_t sum = 0;
  for (size_t i = 0; i < ring.size(); ++i) {
    const XY& a = ring[i];
    const XY& b = ring[(i + 1) % ring.size()];
    sum += a.x * b.y - b.x * a.y;
  }
  return sum;
}

// ---------------------------------------------------------------------------------------
// Input tables

constexpr double kPi = std::numbers::pi;

// Longitude/latitude of the point at tile pixel (px, py) of `tile` with an extent of 4096:
// lets tests state geometries in the coordinates they expect back.
std::pair<double, double> LonLat(const Tile& tile, double px, double py, int extent = 4096) {
  const double n = std::ldexp(1.0, tile.z);
  double wx = (tile.x + px / extent) / n;  // world fraction, 0 at the west edge
  double wy = (tile.y + py / extent) / n;  // 0 at the north edge
  double lon = wx * 360.0 - 180.0;
  double lat = std::atan(std::sinh(kPi * (1 - 2 * wy))) * 180.0 / kPi;
  return {lon, lat};
}

// WKB builders in tile pixels of `tile`.
class Geo {
 public:
  explicit Geo(Tile tile, int extent = 4096) : tile_(tile), extent_(extent) {}

  std::string Point(double px, double py) const {
    return Wkb().Header(1).Part(Coord(px, py)).str();
  }
  std::string Line(std::vector<std::pair<double, double>> pts) const {
    Wkb w;
    w.Header(2).U32(static_cast<uint32_t>(pts.size()));
    for (auto [x, y] : pts) w.Part(Coord(x, y));
    return w.str();
  }
  // Rings are closed here (first point repeated).
  std::string Polygon(std::vector<std::vector<std::pair<double, double>>> rings) const {
    Wkb w;
    w.Header(3).U32(static_cast<uint32_t>(rings.size()));
    for (auto& ring : rings) {
      ring.push_back(ring.front());
      w.U32(static_cast<uint32_t>(ring.size()));
      for (auto [x, y] : ring) w.Part(Coord(x, y));
    }
    return w.str();
  }
  std::string Box(double x0, double y0, double x1, double y1) const {
    return Polygon({{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}}});
  }
  static std::string Multi(uint32_t type, const std::vector<std::string>& parts) {
    Wkb w;
    w.Header(type).U32(static_cast<uint32_t>(parts.size()));
    for (const auto& p : parts) w.Part(p);
    return w.str();
  }

 private:
  std::string Coord(double px, double py) const {
    auto [lon, lat] = LonLat(tile_, px, py, extent_);
    std::string out(16, '\0');
    std::memcpy(out.data(), &lon, 8);
    std::memcpy(out.data() + 8, &lat, 8);
    return out;
  }
  Tile tile_;
  int extent_;
};

constexpr char kGeo[] = R"({"version":"1.1.0","primary_column":"geometry","columns":{"geometry":)"
                        R"({"encoding":"WKB","geometry_types":[]}}})";

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

// A table of `geometries` (with `geo` metadata, and `geo` given) plus `columns`.
std::shared_ptr<arrow::Table> GeoTable(
    const std::vector<std::optional<std::string>>& geometries,
    std::vector<std::pair<std::string, std::shared_ptr<arrow::Array>>> columns = {},
    std::string geo = kGeo) {
  arrow::FieldVector fields;
  arrow::ArrayVector arrays;
  for (auto& [name, array] : columns) {
    fields.push_back(arrow::field(name, array->type()));
    arrays.push_back(array);
  }
  fields.push_back(arrow::field("geometry", arrow::binary()));
  arrays.push_back(WkbArray(geometries));
  auto schema = arrow::schema(fields)->WithMetadata(arrow::key_value_metadata({"geo"}, {geo}));
  return arrow::Table::Make(schema, arrays);
}

EncodeOptions ForTile(Tile tile) {
  EncodeOptions options;
  options.tile = tile;
  return options;
}

std::string EncodeBytes(const arrow::Table& table, const EncodeOptions& options) {
  auto encoded = EncodeMvt(table, options);
  EXPECT_TRUE(encoded.ok()) << encoded.status().ToString();
  if (!encoded.ok()) return "";
  EXPECT_EQ(encoded->media_type, "application/vnd.mapbox-vector-tile");
  return encoded->bytes->ToString();
}

Layer EncodeLayer(const arrow::Table& table, const EncodeOptions& options) {
  std::optional<Layer> layer = ReadTile(EncodeBytes(table, options));
  EXPECT_TRUE(layer.has_value()) << "expected a layer";
  return layer.value_or(Layer{});
}

const Tile kTile{1205, 1539, 12};  // somewhere in Europe
const Geo kGeoTile(kTile);

// ---------------------------------------------------------------------------------------
// Layer, registry and errors

TEST(MvtTest, RegisteredAsMvt) {
  EncoderRegistry registry;
  ASSERT_TRUE(RegisterMvt(registry).ok());
  const EncoderInfo* info = registry.Find("MVT");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->kind, EncoderKind::kVector);
  EXPECT_EQ(info->media_type, "application/vnd.mapbox-vector-tile");
  auto encoded = registry.Encode("mvt", *GeoTable({kGeoTile.Point(10, 20)}), ForTile(kTile));
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
}

TEST(MvtTest, OneLayerNamedUdfVersion2Extent4096) {
  Layer layer = EncodeLayer(*GeoTable({kGeoTile.Point(10, 20)}), ForTile(kTile));
  EXPECT_EQ(layer.name, "udf");
  EXPECT_EQ(layer.version, 2u);
  EXPECT_EQ(layer.extent, 4096u);
  ASSERT_EQ(layer.features.size(), 1u);
  EXPECT_EQ(layer.features[0].type, 1);
  EXPECT_EQ(layer.features[0].parts, (std::vector<Path>{{{10, 20}}}));
  EXPECT_TRUE(layer.keys.empty());
}

TEST(MvtTest, WithoutATileIsAnError) {
  auto encoded = EncodeMvt(*GeoTable({kGeoTile.Point(10, 20)}), EncodeOptions{});
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(KindOf(encoded.status()), ErrorKind::kInvalidArgument);
  EXPECT_EQ(encoded.status().message(),
            "mvt encodes a tile: call it through a /tiles/{z}/{x}/{y} route (or pass the tile "
            "to encode)");
}

TEST(MvtTest, WithoutGeometryIsAnError) {
  auto table = arrow::Table::Make(arrow::schema({arrow::field("a", arrow::int64())}),
                                  {FromJson(arrow::int64(), "[1]")});
  auto encoded = EncodeMvt(*table, ForTile(kTile));
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(KindOf(encoded.status()), ErrorKind::kInvalidArgument);
  EXPECT_EQ(encoded.status().message(),
            "mvt needs a geometry column: the table has none (return a GeoDataFrame, or WKB "
            "marked by GeoParquet 'geo' or GeoArrow metadata)");
}

TEST(MvtTest, BadTileExtentAndBufferAreErrors) {
  auto table = GeoTable({kGeoTile.Point(10, 20)});
  auto encoded = EncodeMvt(*table, ForTile({4096, 0, 12}));
  ASSERT_FALSE(encoded.ok());
  EXPECT_NE(encoded.status().message().find("4096"), std::string::npos)
      << encoded.status().message();

  EncodeOptions options = ForTile(kTile);
  options.mvt_extent = 0;
  encoded = EncodeMvt(*table, options);
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(encoded.status().message(), "Invalid MVT extent 0: it must be between 1 and 16777216");

  options = ForTile(kTile);
  options.mvt_buffer = -1;
  encoded = EncodeMvt(*table, options);
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(encoded.status().message(),
            "Invalid MVT buffer -1: it must be between 0 and the extent (4096)");
}

TEST(MvtTest, MalformedWkbNamesTheRowAndColumn) {
  std::string truncated = kGeoTile.Point(1, 2).substr(0, 12);
  auto encoded = EncodeMvt(*GeoTable({kGeoTile.Point(1, 2), truncated}), ForTile(kTile));
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(KindOf(encoded.status()), ErrorKind::kInvalidArgument);
  EXPECT_EQ(encoded.status().message(),
            "Cannot write row 1 of column 'geometry' as mvt: invalid WKB: truncated at byte 5 "
            "of 12");
  encoded = EncodeMvt(*GeoTable({kGeoTile.Point(1, 2) + "x"}), ForTile(kTile));
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(encoded.status().message(),
            "Cannot write row 0 of column 'geometry' as mvt: invalid WKB: 1 unexpected bytes "
            "after the geometry at byte 21");
  encoded = EncodeMvt(*GeoTable({"\x02" + kGeoTile.Point(1, 2).substr(1)}), ForTile(kTile));
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(encoded.status().message(),
            "Cannot write row 0 of column 'geometry' as mvt: invalid WKB: byte order 2 at byte 0 "
            "(expected 0 or 1)");
  encoded = EncodeMvt(*GeoTable({Wkb().Header(9).str()}), ForTile(kTile));
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(encoded.status().message(),
            "Cannot write row 0 of column 'geometry' as mvt: invalid WKB: unknown geometry "
            "type code 9 at byte 1");
}

TEST(MvtTest, AColumnWithoutATextFormIsAnError) {
  auto table =
      GeoTable({kGeoTile.Point(1, 2)}, {{"months", FromJson(arrow::month_interval(), "[3]")}});
  auto encoded = EncodeMvt(*table, ForTile(kTile));
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(KindOf(encoded.status()), ErrorKind::kNotImplemented);
  EXPECT_EQ(encoded.status().message().rfind("Cannot write column 'months' as mvt: ", 0), 0u)
      << encoded.status().message();
}

TEST(MvtTest, AProjectedCrsOtherThanWebMercatorIsAnError) {
  std::string geo =
      R"({"version":"1.1.0","primary_column":"geometry","columns":{"geometry":{"encoding":"WKB",)"
      R"("crs":{"type":"ProjectedCRS","name":"ETRS89 / UTM zone 32N","id":{"authority":"EPSG",)"
      R"("code":25832}}}}})";
  auto encoded = EncodeMvt(*GeoTable({kGeoTile.Point(1, 2)}, {}, geo), ForTile(kTile));
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(encoded.status().message(),
            "Cannot write geometry column 'geometry' as mvt: its CRS 'ETRS89 / UTM zone 32N' is "
            "neither longitude/latitude (EPSG:4326) nor web mercator (EPSG:3857); reproject it "
            "first, e.g. gdf.to_crs(4326)");
}

TEST(MvtTest, WebMercatorInputIsNotProjectedAgain) {
  std::string geo =
      R"({"version":"1.1.0","primary_column":"geometry","columns":{"geometry":{"encoding":"WKB",)"
      R"("crs":{"type":"ProjectedCRS","name":"WGS 84 / Pseudo-Mercator","id":{"authority":"EPSG",)"
      R"("code":3857}}}}})";
  // Tile 0/0/0 spans +-20037508.34 m: (0, 0) is its centre, (-half, half) its top left.
  const double half = 20037508.342789244;
  auto table =
      GeoTable({Wkb().Header(1).Coords({0, 0}).str(), Wkb().Header(1).Coords({-half, half}).str(),
                Wkb().Header(1).Coords({half / 2, -half / 2}).str()},
               {}, geo);
  Layer layer = EncodeLayer(*table, ForTile({0, 0, 0}));
  ASSERT_EQ(layer.features.size(), 3u);
  EXPECT_EQ(layer.features[0].parts, (std::vector<Path>{{{2048, 2048}}}));
  EXPECT_EQ(layer.features[1].parts, (std::vector<Path>{{{0, 0}}}));
  EXPECT_EQ(layer.features[2].parts, (std::vector<Path>{{{3072, 3072}}}));
  // A CRS given as a string works too.
  std::string geo_string =
      R"({"version":"1.1.0","primary_column":"geometry","columns":{"geometry":{"encoding":"WKB",)"
      R"("crs":"EPSG:3857"}}})";
  layer = EncodeLayer(*GeoTable({Wkb().Header(1).Coords({0, 0}).str()}, {}, geo_string),
                      ForTile({0, 0, 0}));
  ASSERT_EQ(layer.features.size(), 1u);
  EXPECT_EQ(layer.features[0].parts, (std::vector<Path>{{{2048, 2048}}}));
}

TEST(MvtTest, LonLatProjectionMatchesMercantile) {
  // Tile 0/0/0: (0, 0) is the centre; the map's corners are the tile's.
  auto table = GeoTable({Wkb().Header(1).Coords({0, 0}).str(),
                         Wkb().Header(1).Coords({-180, 85.0511287798066}).str(),
                         Wkb().Header(1).Coords({90, -66.51326044311186}).str()});
  Layer layer = EncodeLayer(*table, ForTile({0, 0, 0}));
  ASSERT_EQ(layer.features.size(), 3u);
  EXPECT_EQ(layer.features[0].parts, (std::vector<Path>{{{2048, 2048}}}));
  EXPECT_EQ(layer.features[1].parts, (std::vector<Path>{{{0, 0}}}));
  EXPECT_EQ(layer.features[2].parts, (std::vector<Path>{{{3072, 3072}}}));
}

// ---------------------------------------------------------------------------------------
// Empty tiles

TEST(MvtTest, NothingInTheTileIsZeroBytes) {
  auto outside = GeoTable({kGeoTile.Point(-200, 10), kGeoTile.Box(5000, 5000, 6000, 6000),
                           kGeoTile.Line({{-500, -500}, {-100, -300}}), std::nullopt,
                           Wkb().Header(1).Coords({NAN, NAN}).str(),  // POINT EMPTY
                           Wkb().Header(3).U32(0).str(),              // POLYGON EMPTY
                           Geo::Multi(7, {})},                        // empty collection
                          {{"a", FromJson(arrow::int64(), "[1, 2, 3, 4, 5, 6, 7]")}});
  EXPECT_EQ(EncodeBytes(*outside, ForTile(kTile)), "");
  EXPECT_EQ(EncodeBytes(*outside->Slice(0, 0), ForTile(kTile)), "");
}

// ---------------------------------------------------------------------------------------
// Points

TEST(MvtTest, PointsAreQuantisedAndDroppedOutsideTheBuffer) {
  auto table = GeoTable({kGeoTile.Point(10.4, 10.6), kGeoTile.Point(-63.9999, 4159.9999),
                         kGeoTile.Point(-64.5, 100), kGeoTile.Point(100, 4160.6),
                         kGeoTile.Point(4095.7, 0.2)});
  Layer layer = EncodeLayer(*table, ForTile(kTile));
  ASSERT_EQ(layer.features.size(), 3u);
  EXPECT_EQ(layer.features[0].parts, (std::vector<Path>{{{10, 11}}}));
  EXPECT_EQ(layer.features[1].parts, (std::vector<Path>{{{-64, 4160}}}));
  EXPECT_EQ(layer.features[2].parts, (std::vector<Path>{{{4096, 0}}}));
}

TEST(MvtTest, MultiPointIsOneMoveTo) {
  auto table = GeoTable({Geo::Multi(4, {kGeoTile.Point(1, 2), kGeoTile.Point(5000, 5000),
                                        kGeoTile.Point(3, 1), kGeoTile.Point(3, 1)})});
  Layer layer = EncodeLayer(*table, ForTile(kTile));
  ASSERT_EQ(layer.features.size(), 1u);
  EXPECT_EQ(layer.features[0].type, 1);
  EXPECT_EQ(layer.features[0].parts, (std::vector<Path>{{{1, 2}}, {{3, 1}}, {{3, 1}}}));
}

// ---------------------------------------------------------------------------------------
// Lines

TEST(MvtTest, LinesInsideAreKeptWithoutRepeatedPoints) {
  auto table = GeoTable({kGeoTile.Line({{0, 0}, {0.2, 0.3}, {100, 50}, {100, 50}, {200, 4000}})});
  Layer layer = EncodeLayer(*table, ForTile(kTile));
  ASSERT_EQ(layer.features.size(), 1u);
  EXPECT_EQ(layer.features[0].type, 2);
  EXPECT_EQ(layer.features[0].parts, (std::vector<Path>{{{0, 0}, {100, 50}, {200, 4000}}}));
}

TEST(MvtTest, LinesAreClippedAtTheBuffer) {
  auto table = GeoTable({
      kGeoTile.Line({{-1000, 100}, {5000, 100}}),                           // across
      kGeoTile.Line({{100, 100}, {100, -1000}, {200, -1000}, {200, 100}}),  // out and back in
      kGeoTile.Line({{-100, 0}, {0, -100}}),                                // cuts a corner
      kGeoTile.Line({{-1000, 0}, {0, -1000}}),                              // passes by it
      kGeoTile.Line({{-100, -100}, {-70, 5000}}),                           // wholly outside
  });
  Layer layer = EncodeLayer(*table, ForTile(kTile));
  ASSERT_EQ(layer.features.size(), 3u);
  EXPECT_EQ(layer.features[0].parts, (std::vector<Path>{{{-64, 100}, {4160, 100}}}));
  EXPECT_EQ(layer.features[1].parts,
            (std::vector<Path>{{{100, 100}, {100, -64}}, {{200, -64}, {200, 100}}}));
  EXPECT_EQ(layer.features[2].parts, (std::vector<Path>{{{-64, -36}, {-36, -64}}}));
}

TEST(MvtTest, LinesCollapsingToAPointAreDropped) {
  auto table = GeoTable({kGeoTile.Line({{10.1, 10.1}, {10.3, 9.8}, {9.9, 10.2}})});
  EXPECT_EQ(EncodeBytes(*table, ForTile(kTile)), "");
}

TEST(MvtTest, MultiLineStringIsOneFeature) {
  auto table = GeoTable(
      {Geo::Multi(5, {kGeoTile.Line({{0, 0}, {10, 0}}), kGeoTile.Line({{-500, -500}, {-400, -500}}),
                      kGeoTile.Line({{20, 20}, {30, 40}})})});
  Layer layer = EncodeLayer(*table, ForTile(kTile));
  ASSERT_EQ(layer.features.size(), 1u);
  EXPECT_EQ(layer.features[0].type, 2);
  EXPECT_EQ(layer.features[0].parts, (std::vector<Path>{{{0, 0}, {10, 0}}, {{20, 20}, {30, 40}}}));
}

// ---------------------------------------------------------------------------------------
// Polygons

TEST(MvtTest, PolygonsAreClippedToTheBufferBox) {
  auto table = GeoTable({kGeoTile.Box(-1000, -1000, 1000, 1000)});
  Layer layer = EncodeLayer(*table, ForTile(kTile));
  ASSERT_EQ(layer.features.size(), 1u);
  EXPECT_EQ(layer.features[0].type, 3);
  ASSERT_EQ(layer.features[0].parts.size(), 1u);
  const Path& ring = layer.features[0].parts[0];
  EXPECT_GT(Area2(ring), 0);
  EXPECT_EQ(Area2(ring), 2 * 1064 * 1064);
  for (const XY& p : ring) {
    EXPECT_TRUE((p.x == -64 || p.x == 1000) && (p.y == -64 || p.y == 1000)) << p;
  }
}

TEST(MvtTest, APolygonCoveringTheTileIsTheBufferBox) {
  auto table = GeoTable({kGeoTile.Box(-9000, -9000, 9000, 9000)});
  Layer layer = EncodeLayer(*table, ForTile(kTile));
  ASSERT_EQ(layer.features.size(), 1u);
  ASSERT_EQ(layer.features[0].parts.size(), 1u);
  EXPECT_EQ(Area2(layer.features[0].parts[0]), 2 * 4224 * 4224);
}

TEST(MvtTest, ARingAroundTheTileButOutsideItIsDropped) {
  // An L around the top-left corner, outside the buffer: its bounding box covers the tile,
  // and what the clipper leaves of it has no area.
  auto table = GeoTable({kGeoTile.Polygon(
      {{{-500, -500}, {5000, -500}, {5000, -100}, {-100, -100}, {-100, 5000}, {-500, 5000}}})});
  EXPECT_EQ(EncodeBytes(*table, ForTile(kTile)), "");
}

TEST(MvtTest, ATileInsideAHoleIsEmpty) {
  auto table =
      GeoTable({kGeoTile.Polygon({{{-9000, -9000}, {9000, -9000}, {9000, 9000}, {-9000, 9000}},
                                  {{-5000, -5000}, {-5000, 5000}, {5000, 5000}, {5000, -5000}}})});
  EXPECT_EQ(EncodeBytes(*table, ForTile(kTile)), "");
}

TEST(MvtTest, ExteriorsAreClockwiseAndHolesCounterClockwise) {
  // The exterior given counter-clockwise on screen, the hole clockwise: both are turned.
  auto table = GeoTable({kGeoTile.Polygon({{{0, 0}, {0, 100}, {100, 100}, {100, 0}},
                                           {{10, 10}, {20, 10}, {20, 20}, {10, 20}}}),
                         // and the other way round: kept as given
                         kGeoTile.Polygon({{{0, 0}, {100, 0}, {100, 100}, {0, 100}},
                                           {{10, 10}, {10, 20}, {20, 20}, {20, 10}}})});
  Layer layer = EncodeLayer(*table, ForTile(kTile));
  ASSERT_EQ(layer.features.size(), 2u);
  for (const Feature& f : layer.features) {
    ASSERT_EQ(f.parts.size(), 2u);
    EXPECT_EQ(Area2(f.parts[0]), 2 * 100 * 100);
    EXPECT_EQ(Area2(f.parts[1]), -2 * 10 * 10);
    EXPECT_EQ(f.parts[0][0], (XY{0, 0})) << "rings start where the input does";
  }
  EXPECT_EQ(layer.features[1].parts, (std::vector<Path>{{{0, 0}, {100, 0}, {100, 100}, {0, 100}},
                                                        {{10, 10}, {10, 20}, {20, 20}, {20, 10}}}));
}

TEST(MvtTest, DegenerateRingsAreRemovedAfterQuantisation) {
  auto table = GeoTable({
      kGeoTile.Box(10.1, 10.1, 10.3, 10.3),                            // one point
      kGeoTile.Polygon({{{0, 0}, {100, 0.2}, {200, 0.1}}}),            // flat: no area
      kGeoTile.Polygon({{{0, 0}, {100, 0}, {100, 100}, {0, 100}},      // a hole that
                        {{50.1, 50.1}, {50.2, 50.1}, {50.2, 50.3}}}),  // vanishes
      kGeoTile.Polygon(
          {{{0, 0}, {0.1, 0}, {0.1, 0.1}}, {{1, 1}, {2, 1}, {2, 2}}}),  // exterior gone
  });
  Layer layer = EncodeLayer(*table, ForTile(kTile));
  ASSERT_EQ(layer.features.size(), 1u);
  EXPECT_EQ(layer.features[0].parts, (std::vector<Path>{{{0, 0}, {100, 0}, {100, 100}, {0, 100}}}));
}

TEST(MvtTest, HolesAreClippedAndDroppedWhenOutside) {
  auto table = GeoTable({kGeoTile.Polygon({{{-1000, 100}, {1000, 100}, {1000, 1000}, {-1000, 1000}},
                                           {{-900, 200}, {-800, 200}, {-800, 300}, {-900, 300}},
                                           {{-200, 200}, {100, 200}, {100, 300}, {-200, 300}}})});
  Layer layer = EncodeLayer(*table, ForTile(kTile));
  ASSERT_EQ(layer.features.size(), 1u);
  const auto& parts = layer.features[0].parts;
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(Area2(parts[0]), 2 * 1064 * 900);
  EXPECT_EQ(Area2(parts[1]), -2 * 164 * 100);
}

TEST(MvtTest, AConcavePolygonLeavingAndReenteringStaysOneRing) {
  // A U open to the top, whose arms leave the box: Sutherland-Hodgman keeps one ring, joined
  // along the buffer's edge (an edge of zero width there, outside the tile).
  auto table = GeoTable({kGeoTile.Polygon({{{100, -500},
                                            {200, -500},
                                            {200, 200},
                                            {300, 200},
                                            {300, -500},
                                            {400, -500},
                                            {400, 300},
                                            {100, 300}}})});
  Layer layer = EncodeLayer(*table, ForTile(kTile));
  ASSERT_EQ(layer.features.size(), 1u);
  ASSERT_EQ(layer.features[0].parts.size(), 1u);
  // Area: the U inside y >= -64: two arms 100 x 264 plus the base 300 x 100.
  EXPECT_EQ(Area2(layer.features[0].parts[0]), 2 * (2 * 100 * 264 + 300 * 100));
}

TEST(MvtTest, MultiPolygonIsOneFeatureWithSeveralExteriors) {
  auto table = GeoTable({Geo::Multi(6, {kGeoTile.Box(0, 0, 10, 10), kGeoTile.Box(8000, 0, 8010, 10),
                                        kGeoTile.Box(20, 20, 40, 40)})});
  Layer layer = EncodeLayer(*table, ForTile(kTile));
  ASSERT_EQ(layer.features.size(), 1u);
  EXPECT_EQ(layer.features[0].type, 3);
  ASSERT_EQ(layer.features[0].parts.size(), 2u);
  EXPECT_EQ(Area2(layer.features[0].parts[0]), 200);
  EXPECT_EQ(Area2(layer.features[0].parts[1]), 800);
}

TEST(MvtTest, ExtentAndBufferOptions) {
  Geo geo(kTile, 256);
  auto table = GeoTable({geo.Box(-50, -50, 100, 100), geo.Point(255.6, 3), geo.Point(256.4, 3)});
  EncodeOptions options = ForTile(kTile);
  options.mvt_extent = 256;
  options.mvt_buffer = 0;
  Layer layer = EncodeLayer(*table, options);
  EXPECT_EQ(layer.extent, 256u);
  ASSERT_EQ(layer.features.size(), 2u);
  EXPECT_EQ(layer.features[0].parts, (std::vector<Path>{{{0, 0}, {100, 0}, {100, 100}, {0, 100}}}));
  EXPECT_EQ(layer.features[1].parts, (std::vector<Path>{{{256, 3}}}));
}

// ---------------------------------------------------------------------------------------
// Collections and WKB variants

TEST(MvtTest, GeometryCollectionsAreSplitByType) {
  auto table = GeoTable(
      {Geo::Multi(7, {kGeoTile.Box(0, 0, 10, 10), kGeoTile.Point(1, 2),
                      Geo::Multi(7, {kGeoTile.Line({{0, 0}, {5, 5}}), kGeoTile.Point(3, 4)})})},
      {{"name", FromJson(arrow::utf8(), R"(["gc"])")}});
  Layer layer = EncodeLayer(*table, ForTile(kTile));
  ASSERT_EQ(layer.features.size(), 3u);
  EXPECT_EQ(layer.features[0].type, 1);
  EXPECT_EQ(layer.features[0].parts, (std::vector<Path>{{{1, 2}}, {{3, 4}}}));
  EXPECT_EQ(layer.features[1].type, 2);
  EXPECT_EQ(layer.features[1].parts, (std::vector<Path>{{{0, 0}, {5, 5}}}));
  EXPECT_EQ(layer.features[2].type, 3);
  for (const Feature& f : layer.features) {
    EXPECT_EQ(f.properties, (std::map<std::string, std::string>{{"name", "string:gc"}}));
  }
  EXPECT_EQ(layer.values.size(), 1u);
}

TEST(MvtTest, BigEndianEwkbWithZAndSrid) {
  auto [lon, lat] = LonLat(kTile, 30, 40);
  std::string wkb = Wkb(true).Header(0xA0000001u).U32(4326).Coords({lon, lat, 99}).str();
  Layer layer = EncodeLayer(*GeoTable({wkb}), ForTile(kTile));
  ASSERT_EQ(layer.features.size(), 1u);
  EXPECT_EQ(layer.features[0].parts, (std::vector<Path>{{{30, 40}}}));
  // ISO WKB LineString ZM.
  auto [lon2, lat2] = LonLat(kTile, 50, 60);
  wkb = Wkb().Header(3002).U32(2).Coords({lon, lat, 1, 2, lon2, lat2, 3, 4}).str();
  layer = EncodeLayer(*GeoTable({wkb}), ForTile(kTile));
  ASSERT_EQ(layer.features.size(), 1u);
  EXPECT_EQ(layer.features[0].parts, (std::vector<Path>{{{30, 40}, {50, 60}}}));
}

// ---------------------------------------------------------------------------------------
// Properties

TEST(MvtTest, PropertiesKeepTheirTypesAndNullsAreOmitted) {
  auto table = GeoTable({kGeoTile.Point(1, 1), kGeoTile.Point(2, 2), kGeoTile.Point(3, 3)},
                        {{"name", FromJson(arrow::utf8(), R"(["a", null, "é \"q\""])")},
                         {"count", FromJson(arrow::int64(), "[1, -2, null]")},
                         {"big", FromJson(arrow::uint64(), "[18446744073709551615, null, 0]")},
                         {"ratio", FromJson(arrow::float64(), "[0.5, NaN, null]")},
                         {"f32", FromJson(arrow::float32(), "[null, 1.5, null]")},
                         {"flag", FromJson(arrow::boolean(), "[true, false, null]")},
                         {"nothing", FromJson(arrow::null(), "[null, null, null]")}});
  Layer layer = EncodeLayer(*table, ForTile(kTile));
  ASSERT_EQ(layer.features.size(), 3u);
  EXPECT_EQ(layer.features[0].properties,
            (std::map<std::string, std::string>{{"name", "string:a"},
                                                {"count", "uint:1"},
                                                {"big", "uint:18446744073709551615"},
                                                {"ratio", "double:0.5"},
                                                {"flag", "bool:true"}}));
  EXPECT_EQ(layer.features[1].properties,
            (std::map<std::string, std::string>{
                {"count", "sint:-2"}, {"f32", "float:1.500000"}, {"flag", "bool:false"}}));
  EXPECT_EQ(layer.features[2].properties,
            (std::map<std::string, std::string>{{"name", "string:é \"q\""}, {"big", "uint:0"}}));
  EXPECT_EQ(layer.keys, (std::vector<std::string>{"name", "count", "big", "ratio", "flag", "f32"}));
}

TEST(MvtTest, KeysAndValuesAreDeduplicated) {
  auto table = GeoTable(
      {kGeoTile.Point(1, 1), kGeoTile.Point(2, 2), kGeoTile.Point(3, 3), kGeoTile.Point(-999, 0)},
      {{"a", FromJson(arrow::utf8(), R"(["x", "y", "x", "only outside"])")},
       {"b", FromJson(arrow::utf8(), R"(["y", "y", "x", "z"])")},
       {"n", FromJson(arrow::int32(), "[7, 7, 7, 8]")},
       {"m", FromJson(arrow::int64(), "[7, null, 1, 8]")},
       {"t", FromJson(arrow::boolean(), "[true, true, true, false]")},
       {"u", FromJson(arrow::utf8(), "[null, null, null, \"unused\"]")}});
  Layer layer = EncodeLayer(*table, ForTile(kTile));
  ASSERT_EQ(layer.features.size(), 3u);
  EXPECT_EQ(layer.keys, (std::vector<std::string>{"a", "b", "n", "m", "t"}));
  // 7 from int32 and int64 is one value; true is not 1; values of dropped rows are absent.
  EXPECT_EQ(layer.values,
            (std::vector<std::string>{"string:x", "string:y", "uint:7", "bool:true", "uint:1"}));
  EXPECT_EQ(layer.features[0].tags, (std::vector<uint32_t>{0, 0, 1, 1, 2, 2, 3, 2, 4, 3}));
  EXPECT_EQ(layer.features[2].properties, (std::map<std::string, std::string>{{"a", "string:x"},
                                                                              {"b", "string:x"},
                                                                              {"n", "uint:7"},
                                                                              {"m", "uint:1"},
                                                                              {"t", "bool:true"}}));
}

TEST(MvtTest, OtherTypesAreWrittenAsStrings) {
  auto dict_type = arrow::dictionary(arrow::int8(), arrow::utf8());
  auto dict = arrow::DictionaryArray::FromArrays(dict_type, FromJson(arrow::int8(), "[1, 0, 1]"),
                                                 FromJson(arrow::utf8(), R"(["low", "high"])"))
                  .ValueOrDie();
  auto list_type = arrow::list(arrow::int32());
  std::string geo =
      R"({"version":"1.1.0","primary_column":"geometry","columns":{"geometry":{"encoding":"WKB"},)"
      R"("other":{"encoding":"WKB"}}})";
  auto table = GeoTable(
      {kGeoTile.Point(1, 1), kGeoTile.Point(2, 2), kGeoTile.Point(3, 3)},
      {{"level", dict},
       {"when", FromJson(arrow::timestamp(arrow::TimeUnit::SECOND, "UTC"), "[0, null, 86400]")},
       {"day", FromJson(arrow::date32(), "[1, null, null]")},
       {"xs", FromJson(list_type, "[[1, 2], null, []]")},
       {"other", WkbArray({testing::Point(1, 2), std::nullopt, std::nullopt})}},
      geo);
  Layer layer = EncodeLayer(*table, ForTile(kTile));
  ASSERT_EQ(layer.features.size(), 3u);
  EXPECT_EQ(layer.features[0].properties,
            (std::map<std::string, std::string>{{"level", "string:high"},
                                                {"when", "string:1970-01-01T00:00:00Z"},
                                                {"day", "string:1970-01-02"},
                                                {"xs", "string:[1,2]"},
                                                {"other", "string:POINT (1 2)"}}));
  EXPECT_EQ(layer.features[1].properties,
            (std::map<std::string, std::string>{{"level", "string:low"}}));
  EXPECT_EQ(
      layer.features[2].properties,
      (std::map<std::string, std::string>{
          {"level", "string:high"}, {"when", "string:1970-01-02T00:00:00Z"}, {"xs", "string:[]"}}));
}

TEST(MvtTest, ChunkedTablesKeepRowNumbersAndValues) {
  auto first = GeoTable({kGeoTile.Point(1, 1), kGeoTile.Point(2, 2)},
                        {{"s", FromJson(arrow::utf8(), R"(["a", "b"])")}});
  auto second = GeoTable({kGeoTile.Point(3, 3), kGeoTile.Point(4, 4)},
                         {{"s", FromJson(arrow::utf8(), R"(["b", "c"])")}});
  auto table = arrow::ConcatenateTables({first, second}).ValueOrDie();
  ASSERT_EQ(table->column(0)->num_chunks(), 2);
  Layer layer = EncodeLayer(*table, ForTile(kTile));
  ASSERT_EQ(layer.features.size(), 4u);
  EXPECT_EQ(layer.values, (std::vector<std::string>{"string:a", "string:b", "string:c"}));
  EXPECT_EQ(layer.features[3].parts, (std::vector<Path>{{{4, 4}}}));

  auto bad = GeoTable({kGeoTile.Point(3, 3), std::string("\x01\x02", 2)},
                      {{"s", FromJson(arrow::utf8(), R"(["b", "c"])")}});
  auto encoded = EncodeMvt(*arrow::ConcatenateTables({first, bad}).ValueOrDie(), ForTile(kTile));
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(encoded.status().message(),
            "Cannot write row 3 of column 'geometry' as mvt: invalid WKB: truncated at byte 0 "
            "of 2");
}

// ---------------------------------------------------------------------------------------
// The geometry encoder on its own

TEST(MvtGeometryTest, CommandsOfAPolygonFollowTheSpecExample) {
  // Spec 4.3.5.5 example: POLYGON ((3 6, 8 12, 20 34, 3 6)) ->
  // [9, 6, 12, 18, 10, 12, 24, 44, 15].
  auto encoder = internal::MvtGeometryEncoder::Make(kTile, 4096, 64).ValueOrDie();
  internal::MvtGeometry geometry;
  ASSERT_TRUE(encoder.Encode(kGeoTile.Polygon({{{3, 6}, {8, 12}, {20, 34}}}), &geometry).ok());
  EXPECT_EQ(geometry.Of(internal::MvtGeomType::kPolygon),
            (std::vector<uint32_t>{9, 6, 12, 18, 10, 12, 24, 44, 15}));
  // The same ring wound the other way (negative area) is reversed, from the same start.
  ASSERT_TRUE(encoder.Encode(kGeoTile.Polygon({{{3, 6}, {20, 34}, {8, 12}}}), &geometry).ok());
  EXPECT_EQ(geometry.Of(internal::MvtGeomType::kPolygon),
            (std::vector<uint32_t>{9, 6, 12, 18, 10, 12, 24, 44, 15}));
}

TEST(MvtGeometryTest, CommandsOfPointsAndLinesFollowTheSpecExamples) {
  auto encoder = internal::MvtGeometryEncoder::Make(kTile, 4096, 64).ValueOrDie();
  internal::MvtGeometry geometry;
  // 4.3.5.1: POINT (25 17) -> [9, 50, 34].
  ASSERT_TRUE(encoder.Encode(kGeoTile.Point(25, 17), &geometry).ok());
  EXPECT_EQ(geometry.Of(internal::MvtGeomType::kPoint), (std::vector<uint32_t>{9, 50, 34}));
  // 4.3.5.2: MULTIPOINT (5 7, 3 2) -> [17, 10, 14, 3, 9].
  ASSERT_TRUE(
      encoder.Encode(Geo::Multi(4, {kGeoTile.Point(5, 7), kGeoTile.Point(3, 2)}), &geometry).ok());
  EXPECT_EQ(geometry.Of(internal::MvtGeomType::kPoint), (std::vector<uint32_t>{17, 10, 14, 3, 9}));
  // 4.3.5.4: MULTILINESTRING ((2 2, 2 10, 10 10), (1 1, 3 5)) ->
  // [9, 4, 4, 18, 0, 16, 16, 0, 9, 17, 17, 10, 4, 8].
  ASSERT_TRUE(encoder
                  .Encode(Geo::Multi(5, {kGeoTile.Line({{2, 2}, {2, 10}, {10, 10}}),
                                         kGeoTile.Line({{1, 1}, {3, 5}})}),
                          &geometry)
                  .ok());
  EXPECT_EQ(geometry.Of(internal::MvtGeomType::kLineString),
            (std::vector<uint32_t>{9, 4, 4, 18, 0, 16, 16, 0, 9, 17, 17, 10, 4, 8}));
  EXPECT_TRUE(geometry.Of(internal::MvtGeomType::kPoint).empty());
}

TEST(MvtGeometryTest, DeeplyNestedCollectionsAreRejected) {
  auto encoder = internal::MvtGeometryEncoder::Make(kTile, 4096, 64).ValueOrDie();
  internal::MvtGeometry geometry;
  std::string wkb = kGeoTile.Point(1, 1);
  for (int i = 0; i < 70; ++i) wkb = Geo::Multi(7, {wkb});
  Status st = encoder.Encode(wkb, &geometry);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("nested deeper than 64"), std::string::npos) << st.message();
  // A count larger than the bytes left is rejected before any loop.
  st = encoder.Encode(Wkb().Header(2).U32(1000000).str(), &geometry);
  EXPECT_EQ(st.message(), "invalid WKB: count 1000000 at byte 5 exceeds the remaining 0 bytes");
}

TEST(MvtGeometryTest, CorruptWkbIsAnErrorOrAGeometryNeverACrash) {
  auto encoder = internal::MvtGeometryEncoder::Make(kTile, 4096, 64).ValueOrDie();
  internal::MvtGeometry geometry;
  const std::string valid = Geo::Multi(
      7,
      {kGeoTile.Polygon({{{-100, -100}, {5000, 0}, {300, 5000}}, {{10, 10}, {20, 10}, {20, 20}}}),
       kGeoTile.Line({{-100, 5}, {5000, 7}}), kGeoTile.Point(1, 1)});
  ASSERT_TRUE(encoder.Encode(valid, &geometry).ok());
  int errors = 0;
  for (size_t i = 0; i < valid.size(); ++i) {
    for (uint8_t value : {0x00, 0x01, 0x07, 0x7f, 0xff}) {
      std::string corrupt = valid;
      corrupt[i] = static_cast<char>(value);
      errors += !encoder.Encode(corrupt, &geometry).ok();
    }
    errors += !encoder.Encode(std::string_view(valid).substr(0, i), &geometry).ok();
  }
  EXPECT_GT(errors, 0);
}

}  // namespace
}  // namespace terrafuse::encode

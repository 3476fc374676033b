// Test helpers of the formats in more_formats.h: rasters and tables stated by value.
#pragma once

#include <arrow/builder.h>
#include <arrow/json/from_string.h>
#include <arrow/table.h>
#include <arrow/util/key_value_metadata.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "terrafuse/encode/encoder.h"
#include "terrafuse/encode/testing_internal.h"

namespace terrafuse::encode::testing {

/// A band-major uint8 raster of smooth gradients plus a little noise.
inline std::vector<uint8_t> MakeRaster(int bands, int height, int width, uint32_t seed = 42) {
  std::vector<uint8_t> data(static_cast<size_t>(bands) * height * width);
  std::mt19937 rng(seed);
  for (int b = 0; b < bands; ++b) {
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        data[(static_cast<size_t>(b) * height + y) * width + x] =
            static_cast<uint8_t>(x * (b + 1) + y * 3 + (rng() % 4));
      }
    }
  }
  return data;
}

/// A view of `data` as a (bands, height, width) raster, or (height, width) when bands is 0.
template <typename T>
RasterView View(const std::vector<T>& data, int bands, int height, int width,
                std::string dtype = "uint8") {
  RasterView view;
  view.data = data.data();
  view.shape =
      bands ? std::vector<int64_t>{bands, height, width} : std::vector<int64_t>{height, width};
  view.dtype = std::move(dtype);
  view.size_bytes = static_cast<int64_t>(data.size() * sizeof(T));
  return view;
}

inline constexpr char kGeo[] =
    R"({"version":"1.1.0","primary_column":"geometry","columns":{"geometry":)"
    R"({"encoding":"WKB","geometry_types":["Point","LineString"]}}})";

inline std::shared_ptr<arrow::Array> FromJson(const std::shared_ptr<arrow::DataType>& type,
                                              std::string_view json) {
  auto array = arrow::json::ArrayFromJSONString(type, json);
  EXPECT_TRUE(array.ok()) << array.status().ToString();
  return *array;
}

inline std::shared_ptr<arrow::Array> WkbArray(
    const std::vector<std::optional<std::string>>& values) {
  arrow::BinaryBuilder builder;
  for (const auto& v : values) {
    EXPECT_TRUE((v ? builder.Append(*v) : builder.AppendNull()).ok());
  }
  return builder.Finish().ValueOrDie();
}

/// Three rows of the common types, a null in each column, text that needs escaping and
/// WKB geometry described by `geo` metadata.
inline std::shared_ptr<arrow::Table> SampleTable() {
  auto schema = arrow::schema(
      {
          arrow::field("id", arrow::int64()),
          arrow::field("name", arrow::utf8()),
          arrow::field("flag", arrow::boolean()),
          arrow::field("value", arrow::float64()),
          arrow::field("when", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
          arrow::field("day", arrow::date32()),
          arrow::field("geometry", arrow::binary()),
      },
      arrow::key_value_metadata({"geo"}, {kGeo}));
  return arrow::Table::Make(
      schema,
      {
          FromJson(arrow::int64(), "[1, null, 3]"),
          FromJson(arrow::utf8(), R"(["a<b & c>d", null, "say \"hi\"\n\u00e9"])"),
          FromJson(arrow::boolean(), "[true, false, null]"),
          FromJson(arrow::float64(), "[0.5, null, 1e20]"),
          FromJson(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), "[0, null, 87840500000]"),
          FromJson(arrow::date32(), "[0, 19000, null]"),
          WkbArray({Point(1, 2), std::nullopt, Line({0, 0, 1.5, 1})}),
      });
}

/// Counts the non-overlapping occurrences of `needle` in `text`.
inline int Count(std::string_view text, std::string_view needle) {
  int n = 0;
  for (size_t pos = text.find(needle); pos != std::string_view::npos;
       pos = text.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

inline uint32_t U32(const uint8_t* p) {
  return p[0] | p[1] << 8 | p[2] << 16 | uint32_t{p[3]} << 24;
}
inline uint16_t U16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

/// The members of a ZIP archive, inflated and checked (CRC, local headers): enough of the
/// format to read an xlsx back.
inline std::map<std::string, std::string> Unzip(const arrow::Buffer& zip) {
  std::map<std::string, std::string> out;
  const uint8_t* data = zip.data();
  const int64_t size = zip.size();
  int64_t eocd = size - 22;
  while (eocd >= 0 && U32(data + eocd) != 0x06054b50) --eocd;
  EXPECT_GE(eocd, 0) << "no end of central directory";
  if (eocd < 0) return out;
  const uint16_t entries = U16(data + eocd + 10);
  int64_t pos = U32(data + eocd + 16);
  for (int e = 0; e < entries; ++e) {
    EXPECT_EQ(U32(data + pos), 0x02014b50u);
    const uint16_t method = U16(data + pos + 10);
    const uint32_t crc = U32(data + pos + 16);
    const uint32_t compressed = U32(data + pos + 20);
    const uint32_t uncompressed = U32(data + pos + 24);
    const uint16_t name_length = U16(data + pos + 28);
    const uint16_t extra_length = U16(data + pos + 30);
    const uint16_t comment_length = U16(data + pos + 32);
    const uint32_t local = U32(data + pos + 42);
    std::string name(reinterpret_cast<const char*>(data + pos + 46), name_length);
    pos += 46 + name_length + extra_length + comment_length;
    const uint8_t* body = data + local + 30 + U16(data + local + 26) + U16(data + local + 28);
    std::string content(uncompressed, '\0');
    if (method == 0) {
      std::memcpy(content.data(), body, uncompressed);
    } else {
      EXPECT_EQ(method, 8) << name;
      z_stream z{};
      EXPECT_EQ(inflateInit2(&z, -MAX_WBITS), Z_OK);
      z.next_in = const_cast<Bytef*>(body);
      z.avail_in = compressed;
      z.next_out = reinterpret_cast<Bytef*>(content.data());
      z.avail_out = uncompressed;
      EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END) << name;
      inflateEnd(&z);
    }
    EXPECT_EQ(
        crc32(0, reinterpret_cast<const Bytef*>(content.data()), static_cast<uInt>(content.size())),
        crc)
        << name;
    // The local header repeats CRC and sizes.
    EXPECT_EQ(U32(data + local), 0x04034b50u) << name;
    EXPECT_EQ(U32(data + local + 14), crc) << name;
    EXPECT_EQ(U32(data + local + 18), compressed) << name;
    EXPECT_EQ(U32(data + local + 22), uncompressed) << name;
    out[name] = std::move(content);
  }
  return out;
}

}  // namespace terrafuse::encode::testing

#include "terrafuse/encode/more_formats.h"

#include <gtest/gtest.h>

#include "terrafuse/encode/more_formats_testing_internal.h"

namespace terrafuse::encode {
namespace {

using testing::MakeRaster;
using testing::SampleTable;
using testing::View;

class MoreFormatsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(RegisterMoreFormats(registry_).ok()); }
  EncoderRegistry registry_;
};

TEST_F(MoreFormatsTest, RegistersEveryNameFusedUses) {
  EXPECT_EQ(registry_.Names(EncoderKind::kRaster),
            (std::vector<std::string>{"gif", "jpeg", "jpg", "tif", "tiff", "webp"}));
  EXPECT_EQ(registry_.Names(EncoderKind::kVector),
            (std::vector<std::string>{"excel", "html", "xml"}));
  const std::pair<const char*, const char*> media[] = {
      {"jpeg", "image/jpeg"},
      {"jpg", "image/jpeg"},
      {"webp", "image/webp"},
      {"tiff", "image/tiff"},
      {"tif", "image/tiff"},
      {"gif", "image/gif"},
      {"html", "text/html; charset=utf-8"},
      {"xml", "application/xml"},
      {"excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
  };
  for (const auto& [name, type] : media) {
    const EncoderInfo* info = registry_.Find(name);
    ASSERT_NE(info, nullptr) << name;
    EXPECT_EQ(info->media_type, type) << name;
    EXPECT_FALSE(info->description.empty()) << name;
  }
}

TEST_F(MoreFormatsTest, AliasesEncodeLikeTheirFormatInAnyCase) {
  auto data = MakeRaster(3, 16, 24);
  for (const auto& [alias, format] :
       std::vector<std::pair<std::string, std::string>>{{"JPG", "jpeg"}, {"Tif", "tiff"}}) {
    auto a = registry_.EncodeRaster(alias, View(data, 3, 16, 24));
    auto b = registry_.EncodeRaster(format, View(data, 3, 16, 24));
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_TRUE(a->bytes->Equals(*b->bytes)) << alias;
    EXPECT_EQ(a->media_type, b->media_type);
  }
}

TEST_F(MoreFormatsTest, EveryFormatEncodesThroughTheRegistry) {
  auto data = MakeRaster(4, 8, 8);
  for (const auto& name : registry_.Names(EncoderKind::kRaster)) {
    auto encoded = registry_.EncodeRaster(name, View(data, 4, 8, 8));
    ASSERT_TRUE(encoded.ok()) << name << ": " << encoded.status().ToString();
    EXPECT_GT(encoded->bytes->size(), 0) << name;
  }
  auto table = SampleTable();
  for (const auto& name : registry_.Names(EncoderKind::kVector)) {
    auto encoded = registry_.Encode(name, *table);
    ASSERT_TRUE(encoded.ok()) << name << ": " << encoded.status().ToString();
    EXPECT_GT(encoded->bytes->size(), 0) << name;
  }
}

TEST_F(MoreFormatsTest, RegisteringTwiceFails) {
  Status st = RegisterMoreFormats(registry_);
  EXPECT_EQ(KindOf(st), ErrorKind::kAlreadyExists);
  EXPECT_EQ(st.message(), "Output format 'jpeg' is registered twice");
}

TEST_F(MoreFormatsTest, RegisterBuiltinsIncludesThem) {
  EncoderRegistry all;
  ASSERT_TRUE(RegisterBuiltins(all).ok());
  for (const char* name : {"jpeg", "jpg", "webp", "tiff", "tif", "gif", "html", "xml", "excel"}) {
    EXPECT_NE(all.Find(name), nullptr) << name;
  }
}

}  // namespace
}  // namespace terrafuse::encode

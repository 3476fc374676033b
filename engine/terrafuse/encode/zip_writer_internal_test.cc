#include "terrafuse/encode/zip_writer_internal.h"

#include <gtest/gtest.h>

#include <random>

#include "terrafuse/encode/more_formats_testing_internal.h"

namespace terrafuse::encode::internal {
namespace {

using testing::Unzip;

std::string Noise(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

TEST(ZipWriterTest, MembersReadBack) {
  const std::string big = Noise(300000, 1);  // several output steps, incompressible
  std::string repetitive;
  for (int i = 0; i < 50000; ++i) repetitive += "<row>" + std::to_string(i % 7) + "</row>";
  ZipWriter zip(6);
  ASSERT_TRUE(zip.AddMember("empty.txt", "").ok());
  ASSERT_TRUE(zip.AddMember("dir/big.bin", big).ok());
  ASSERT_TRUE(zip.BeginMember("streamed.xml").ok());
  for (size_t pos = 0; pos < repetitive.size(); pos += 1000) {
    ASSERT_TRUE(zip.Write(std::string_view(repetitive).substr(pos, 1000)).ok());
  }
  ASSERT_TRUE(zip.EndMember().ok());
  auto bytes = zip.Finish();
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_LT((*bytes)->size(), static_cast<int64_t>(big.size() + repetitive.size() / 10));
  auto members = Unzip(**bytes);
  ASSERT_EQ(members.size(), 3u);
  EXPECT_EQ(members["empty.txt"], "");
  EXPECT_TRUE(members["dir/big.bin"] == big);
  EXPECT_TRUE(members["streamed.xml"] == repetitive);
}

TEST(ZipWriterTest, EqualInputGivesEqualBytes) {
  auto write = [] {
    ZipWriter zip(1);
    EXPECT_TRUE(zip.AddMember("a", "hello").ok());
    return zip.Finish().ValueOrDie();
  };
  EXPECT_TRUE(write()->Equals(*write()));
}

TEST(ZipWriterTest, EmptyArchive) {
  ZipWriter zip(1);
  auto bytes = zip.Finish();
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ((*bytes)->size(), 22);  // the end of central directory only
  EXPECT_TRUE(Unzip(**bytes).empty());
}

}  // namespace
}  // namespace terrafuse::encode::internal

#include "terrafuse/encode/literal_zlib_internal.h"

#include <gtest/gtest.h>
#include <libdeflate.h>

#include <random>

namespace terrafuse::encode {
namespace {

// Writes the stream into a buffer one byte larger than size() and inflates it back.
std::vector<uint8_t> RoundTrip(const std::vector<uint8_t>& data) {
  LiteralZlib zlib(data.data(), data.size());
  std::vector<uint8_t> stream(zlib.size() + 1, 0xAB);
  zlib.Write(stream.data());
  EXPECT_EQ(stream.back(), 0xAB) << "wrote past size()";
  std::vector<uint8_t> out(data.size() + 1);
  size_t got = 0;
  libdeflate_decompressor* d = libdeflate_alloc_decompressor();
  const auto result = libdeflate_zlib_decompress(d, stream.data(), zlib.size(), out.data(), out.size(), &got);
  libdeflate_free_decompressor(d);
  EXPECT_EQ(result, LIBDEFLATE_SUCCESS);
  out.resize(got);
  return out;
}

TEST(LiteralZlibTest, DecodesBack) {
  std::mt19937 rng(3);
  std::vector<std::vector<uint8_t>> inputs = {{}, {7}, std::vector<uint8_t>(100000, 42)};
  std::vector<uint8_t> random(70001), two_values(40000), skewed;
  for (auto& v : random) v = static_cast<uint8_t>(rng());
  for (auto& v : two_values) v = rng() % 2 ? 0 : 255;
  // Fibonacci counts: an unlimited Huffman code would need 20+ bits for the rarest bytes.
  for (uint32_t s = 0, a = 1, b = 1; s < 24; ++s, b = a + b, a = b - a) skewed.insert(skewed.end(), a, static_cast<uint8_t>(s));
  std::shuffle(skewed.begin(), skewed.end(), rng);
  for (const auto& input : {random, two_values, skewed}) inputs.push_back(input);
  for (const auto& input : inputs) EXPECT_EQ(RoundTrip(input), input) << input.size() << " bytes";
}

TEST(LiteralZlibTest, NoiseTakesAboutItsEntropy) {
  // Uniform bytes cannot shrink: 8 bits each plus block headers.
  std::vector<uint8_t> random(1 << 18);
  std::mt19937 rng(5);
  for (auto& v : random) v = static_cast<uint8_t>(rng());
  EXPECT_LT(LiteralZlib(random.data(), random.size()).size(), random.size() + 1024);
  // Four values in equal parts: 2 bits each, but one of them 3 to leave room for the
  // end-of-block code.
  for (auto& v : random) v = static_cast<uint8_t>(rng() % 4);
  EXPECT_LT(LiteralZlib(random.data(), random.size()).size(), random.size() * 9 / 32 + 1024);
}

}  // namespace
}  // namespace terrafuse::encode

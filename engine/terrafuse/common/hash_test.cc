#include "terrafuse/common/hash.h"

#include <gtest/gtest.h>

namespace terrafuse {

TEST(HashTest, StreamingEqualsOneShot) {
  Hasher h;
  h.Update("hello ");
  h.Update("world");
  EXPECT_EQ(h.HexDigest(), HashHex("hello world"));
  EXPECT_EQ(h.HexDigest().size(), 32u);
}

TEST(HashTest, DifferentInputsDiffer) {
  EXPECT_NE(HashHex("a"), HashHex("b"));
  EXPECT_NE(HashHex("def f(): pass"), HashHex("def f():  pass"));  // whitespace counts
  EXPECT_NE(Hash64("a"), Hash64("b"));
}

}  // namespace terrafuse

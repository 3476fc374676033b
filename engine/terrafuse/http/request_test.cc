#include "terrafuse/http/request.h"

#include <gtest/gtest.h>

#include "terrafuse/http/log.h"

namespace terrafuse::http {
namespace {

TEST(ParseTargetTest, SplitsPathSegmentsAndQuery) {
  auto target = ParseTarget("/server/v1/run/file?dtype_out_vector=csv&year=2021");
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  EXPECT_EQ(target->path, "/server/v1/run/file");
  EXPECT_EQ(target->segments, (std::vector<std::string>{"server", "v1", "run", "file"}));
  EXPECT_EQ(target->query, (Params{{"dtype_out_vector", "csv"}, {"year", "2021"}}));
}

TEST(ParseTargetTest, DecodesPercentEscapesAndPlusInQueryOnly) {
  auto target = ParseTarget("/a%20b/c+d?name=New+York%2C%20NY&x=%3D%26");
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(target->path, "/a b/c+d");  // '+' is literal in paths
  EXPECT_EQ(target->segments, (std::vector<std::string>{"a b", "c+d"}));
  EXPECT_EQ(target->query, (Params{{"name", "New York, NY"}, {"x", "=&"}}));
}

TEST(ParseTargetTest, EncodedSlashStaysInsideItsSegment) {
  auto target = ParseTarget("/udfs/me%2Fother/x");
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(target->segments, (std::vector<std::string>{"udfs", "me/other", "x"}));
}

TEST(ParseTargetTest, KeepsRepeatedAndEmptyParametersInOrder) {
  auto target = ParseTarget("/?b=1&a&&b=2&=v");
  ASSERT_TRUE(target.ok());
  EXPECT_TRUE(target->segments.empty());
  EXPECT_EQ(target->query, (Params{{"b", "1"}, {"a", ""}, {"b", "2"}, {"", "v"}}));
}

TEST(ParseTargetTest, RootAndTrailingSlash) {
  EXPECT_TRUE(ParseTarget("/")->segments.empty());
  EXPECT_EQ(ParseTarget("/health/")->segments, (std::vector<std::string>{"health", ""}));
}

TEST(ParseTargetTest, RejectsMalformedEscapesNamingThem) {
  for (const char* bad : {"/a%zzb", "/a%2", "/a?x=%", "/a?x=%g1"}) {
    auto target = ParseTarget(bad);
    ASSERT_FALSE(target.ok()) << bad;
    EXPECT_EQ(KindOf(target.status()), ErrorKind::kInvalidArgument);
    EXPECT_NE(target.status().message().find("Invalid percent-escape"), std::string::npos)
        << target.status().message();
  }
  auto target = ParseTarget("/a%zzb");
  EXPECT_NE(target.status().message().find("'%zz'"), std::string::npos) << target.status().message();
}

TEST(ParseTargetTest, RejectsTargetsThatAreNotPaths) {
  for (const char* bad : {"", "*", "http://example.com/a", "a/b"}) {
    auto target = ParseTarget(bad);
    ASSERT_FALSE(target.ok()) << bad;
    EXPECT_NE(target.status().message().find("expected a path starting with '/'"), std::string::npos);
  }
}

TEST(RequestTest, LooksUpQueryPathParamsAndHeaders) {
  Request request;
  request.query = {{"a", "1"}, {"a", "2"}};
  request.path_params = {{"token", "fsh_x"}};
  request.headers.Add("Content-Type", "text/csv");
  EXPECT_EQ(request.Query("a"), "1");
  EXPECT_FALSE(request.Query("b").has_value());
  EXPECT_EQ(request.PathParam("token"), "fsh_x");
  EXPECT_EQ(request.headers.Find("content-TYPE"), "text/csv");
  EXPECT_FALSE(request.cancelled());
}

TEST(HeadersTest, SetReplacesCaseInsensitivelyAndAddAppends) {
  Headers headers;
  headers.Add("Vary", "Origin");
  headers.Add("vary", "Accept");
  EXPECT_EQ(headers.fields().size(), 2u);
  headers.Set("VARY", "*");
  ASSERT_EQ(headers.fields().size(), 1u);
  EXPECT_EQ(headers.Find("vary"), "*");
  headers.Remove("Vary");
  EXPECT_FALSE(headers.Has("vary"));
}

}  // namespace
TEST(RedactTokensTest, CutsSharedAndApiTokensOnly) {
  EXPECT_EQ(RedactTokens("/server/v1/realtime-shared/fsh_8KecVMwzZSbgGO3OBzSEfZvDhTALGdny/run/file"),
            "/server/v1/realtime-shared/fsh_8Kec.../run/file");
  EXPECT_EQ(RedactTokens("/x/tfk_abcdefghij"), "/x/tfk_abcd...");
  EXPECT_EQ(RedactTokens("/server/v1/realtime-shared/UDF_Hello/run/file"),
            "/server/v1/realtime-shared/UDF_Hello/run/file");
  EXPECT_EQ(RedactTokens("/fsh_"), "/fsh_");
  EXPECT_EQ(RedactTokens(""), "");
}

}  // namespace terrafuse::http

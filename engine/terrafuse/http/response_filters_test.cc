#include "terrafuse/http/response_filters.h"

#include <gtest/gtest.h>

namespace terrafuse::http {
namespace {

RangeOutcome Parse(std::string_view header, uint64_t size, ByteRange* range) {
  return ParseByteRange(header, size, range);
}

TEST(ByteRangeTest, ParsesTheThreeSingleRangeForms) {
  ByteRange range;
  ASSERT_EQ(Parse("bytes=0-9", 100, &range), RangeOutcome::kSatisfiable);
  EXPECT_EQ(range.first, 0u);
  EXPECT_EQ(range.last, 9u);
  ASSERT_EQ(Parse("bytes=90-", 100, &range), RangeOutcome::kSatisfiable);
  EXPECT_EQ(range.first, 90u);
  EXPECT_EQ(range.last, 99u);
  ASSERT_EQ(Parse("bytes=-10", 100, &range), RangeOutcome::kSatisfiable);
  EXPECT_EQ(range.first, 90u);
  EXPECT_EQ(range.last, 99u);
}

TEST(ByteRangeTest, ClampsPastTheEnd) {
  ByteRange range;
  ASSERT_EQ(Parse("bytes=50-1000", 100, &range), RangeOutcome::kSatisfiable);
  EXPECT_EQ(range.last, 99u);
  ASSERT_EQ(Parse("bytes=-1000", 100, &range), RangeOutcome::kSatisfiable);
  EXPECT_EQ(range.first, 0u);
  ASSERT_EQ(Parse("bytes=99-99", 100, &range), RangeOutcome::kSatisfiable);
  EXPECT_EQ(range.first, 99u);
}

TEST(ByteRangeTest, UnsatisfiableWhenStartingPastTheEnd) {
  ByteRange range;
  EXPECT_EQ(Parse("bytes=100-", 100, &range), RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(Parse("bytes=100-200", 100, &range), RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(Parse("bytes=-0", 100, &range), RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(Parse("bytes=0-", 0, &range), RangeOutcome::kUnsatisfiable);
}

TEST(ByteRangeTest, IgnoresWhatItCannotServe) {
  ByteRange range;
  for (const char* header : {"", "bytes", "items=0-1", "bytes=5-1", "bytes=a-b", "bytes=-", "bytes=0-1,5-6",
                             "bytes=+1-2", "bytes=1-+2", "bytes=99999999999999999999-"}) {
    EXPECT_EQ(Parse(header, 100, &range), RangeOutcome::kIgnore) << header;
  }
  EXPECT_EQ(Parse("bytes=-5", 0, &range), RangeOutcome::kIgnore);  // empty body: send it whole
  EXPECT_EQ(Parse(" bytes= 1-2 ", 100, &range), RangeOutcome::kSatisfiable);
}

TEST(IfNoneMatchTest, MatchesListsWildcardAndWeakTags) {
  EXPECT_TRUE(IfNoneMatchMatches("\"abc\"", "\"abc\""));
  EXPECT_TRUE(IfNoneMatchMatches("\"x\", \"abc\"", "\"abc\""));
  EXPECT_TRUE(IfNoneMatchMatches("W/\"abc\"", "\"abc\""));
  EXPECT_TRUE(IfNoneMatchMatches(" * ", "\"abc\""));
  EXPECT_FALSE(IfNoneMatchMatches("\"abd\"", "\"abc\""));
  EXPECT_FALSE(IfNoneMatchMatches("", "\"abc\""));
}

Request Get(std::vector<std::pair<std::string, std::string>> headers = {}) {
  Request request;
  request.method = "GET";
  request.request_id = "r1";
  for (auto& [name, value] : headers) request.headers.Add(name, value);
  return request;
}

TEST(FinalizeResponseTest, AddsCorsRequestIdAndETag) {
  Response response = Response::Text("hello");
  FinalizeResponse(Get(), response);
  EXPECT_EQ(response.headers.Find("Access-Control-Allow-Origin"), "*");
  EXPECT_EQ(response.headers.Find("X-Request-Id"), "r1");
  EXPECT_EQ(response.headers.Find("ETag"), BodyETag("hello"));
  EXPECT_EQ(BodyETag("hello").size(), 34u);
  EXPECT_EQ(response.headers.Find("Accept-Ranges"), "bytes");
}

TEST(FinalizeResponseTest, NotCacheableMeansNoETag) {
  Response response = Response::Text("live");
  response.cacheable = false;
  FinalizeResponse(Get(), response);
  EXPECT_FALSE(response.headers.Has("ETag"));
}

TEST(FinalizeResponseTest, MatchingIfNoneMatchGives304WithoutBody) {
  Response response = Response::Text("hello");
  FinalizeResponse(Get({{"If-None-Match", BodyETag("hello")}}), response);
  EXPECT_EQ(response.status, 304);
  EXPECT_TRUE(response.Body().empty());
  EXPECT_EQ(response.headers.Find("ETag"), BodyETag("hello"));

  Response changed = Response::Text("hello!");
  FinalizeResponse(Get({{"If-None-Match", BodyETag("hello")}}), changed);
  EXPECT_EQ(changed.status, 200);
}

TEST(FinalizeResponseTest, HandlerETagIsKept) {
  Response response = Response::Text("hello");
  response.headers.Set("ETag", "\"v7\"");
  FinalizeResponse(Get({{"If-None-Match", "\"v7\""}}), response);
  EXPECT_EQ(response.status, 304);
}

TEST(FinalizeResponseTest, RangeGives206WithContentRange) {
  Response response = Response::Text("abcdefghij");
  FinalizeResponse(Get({{"Range", "bytes=2-4"}}), response);
  EXPECT_EQ(response.status, 206);
  EXPECT_EQ(response.Body(), "cde");
  EXPECT_EQ(response.headers.Find("Content-Range"), "bytes 2-4/10");
  // The ETag is that of the whole body.
  EXPECT_EQ(response.headers.Find("ETag"), BodyETag("abcdefghij"));
}

TEST(FinalizeResponseTest, RangeSlicesSharedBuffersWithoutCopying) {
  auto buffer = std::make_shared<arrow::Buffer>("abcdefghij");
  Response response = Response::Bytes(buffer, "application/octet-stream");
  FinalizeResponse(Get({{"Range", "bytes=-3"}}), response);
  EXPECT_EQ(response.status, 206);
  EXPECT_EQ(response.Body(), "hij");
  EXPECT_EQ(response.Body().data(), reinterpret_cast<const char*>(buffer->data()) + 7);
}

TEST(FinalizeResponseTest, UnsatisfiableRangeGives416) {
  Response response = Response::Text("abcdefghij");
  FinalizeResponse(Get({{"Range", "bytes=10-"}}), response);
  EXPECT_EQ(response.status, 416);
  EXPECT_EQ(response.headers.Find("Content-Range"), "bytes */10");
  EXPECT_NE(response.body.find("range_not_satisfiable"), std::string::npos);
  EXPECT_EQ(response.headers.Find("Access-Control-Allow-Origin"), "*");
}

TEST(FinalizeResponseTest, StaleIfRangeGetsTheWholeBody) {
  Response response = Response::Text("abcdefghij");
  FinalizeResponse(Get({{"Range", "bytes=2-4"}, {"If-Range", "\"old\""}}), response);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.Body(), "abcdefghij");

  Response current = Response::Text("abcdefghij");
  FinalizeResponse(Get({{"Range", "bytes=2-4"}, {"If-Range", BodyETag("abcdefghij")}}), current);
  EXPECT_EQ(current.status, 206);
}

TEST(FinalizeResponseTest, ErrorsAndOtherMethodsAreLeftAlone) {
  Response error = Response::Text("nope", 404);
  FinalizeResponse(Get({{"Range", "bytes=0-1"}}), error);
  EXPECT_EQ(error.status, 404);
  EXPECT_FALSE(error.headers.Has("ETag"));

  Request post = Get({{"Range", "bytes=0-1"}});
  post.method = "POST";
  Response created = Response::Text("abc");
  FinalizeResponse(post, created);
  EXPECT_EQ(created.status, 200);
  EXPECT_EQ(created.Body(), "abc");
}

}  // namespace
}  // namespace terrafuse::http

#include "terrafuse/http/router.h"

#include <stdexcept>

#include <gtest/gtest.h>

#include "terrafuse/routes/services.h"

namespace terrafuse::http {
namespace {

// A handler that answers with the route's name, its parameters and extension.
Handler Named(std::string name) {
  return [name](const Request& request, Services&) -> Result<Response> {
    std::string text = name;
    for (const auto& [key, value] : request.path_params) text += " " + key + "=" + value;
    if (!request.extension.empty()) text += " ext=" + request.extension;
    return Response::Text(text);
  };
}

Request MakeRequest(std::string method, std::string target) {
  Request request;
  request.method = std::move(method);
  request.target = std::move(target);
  auto parsed = ParseTarget(request.target);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  request.path = parsed->path;
  request.segments = parsed->segments;
  request.query = parsed->query;
  request.request_id = "test-1";
  return request;
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(router_.Add("GET", "/health", Named("health")).ok());
    ASSERT_TRUE(router_.Add("GET", "/s/{token}/run/file", Named("file")).ok());
    ASSERT_TRUE(router_.Add("GET", "/s/{token}/run/tiles/{z}/{x}/{y}[.ext]", Named("tiles")).ok());
    ASSERT_TRUE(router_.Add("GET", "/udfs/{owner}/{name}", Named("get_udf")).ok());
    ASSERT_TRUE(router_.Add("DELETE", "/udfs/{owner}/{name}", Named("delete_udf")).ok());
    ASSERT_TRUE(router_.Add("GET", "/udfs/me/{name}", Named("my_udf")).ok());
  }

  Response Dispatch(std::string method, std::string target) {
    Request request = MakeRequest(std::move(method), std::move(target));
    return router_.Dispatch(request, services_);
  }

  Router router_;
  Services services_;
};

TEST_F(RouterTest, MatchesLiteralsAndExtractsParameters) {
  EXPECT_EQ(Dispatch("GET", "/health").body, "health");
  EXPECT_EQ(Dispatch("GET", "/s/fsh_1/run/file?x=1").body, "file token=fsh_1");
  EXPECT_EQ(Dispatch("DELETE", "/udfs/ana/roads").body, "delete_udf owner=ana name=roads");
}

TEST_F(RouterTest, StripsTheFileExtensionOfTheLastSegmentWhereAllowed) {
  EXPECT_EQ(Dispatch("GET", "/s/t/run/tiles/12/778/1548.mvt").body, "tiles token=t z=12 x=778 y=1548 ext=mvt");
  EXPECT_EQ(Dispatch("GET", "/s/t/run/tiles/12/778/1548").body, "tiles token=t z=12 x=778 y=1548");
  // Routes without "[.ext]" keep dots in their values.
  EXPECT_EQ(Dispatch("GET", "/udfs/ana/roads.v2").body, "get_udf owner=ana name=roads.v2");
}

TEST_F(RouterTest, LiteralSegmentsWinOverParameters) {
  EXPECT_EQ(Dispatch("GET", "/udfs/me/roads").body, "my_udf name=roads");
  EXPECT_EQ(Dispatch("GET", "/udfs/you/roads").body, "get_udf owner=you name=roads");
}

TEST_F(RouterTest, PercentDecodedSegmentsReachHandlers) {
  EXPECT_EQ(Dispatch("GET", "/udfs/ana/my%20udf").body, "get_udf owner=ana name=my udf");
}

TEST_F(RouterTest, UnknownPathIs404WithJsonError) {
  for (const char* path : {"/nope", "/health/", "/s/t/run", "/udfs/ana/x/y", "/s//run/file"}) {
    Response response = Dispatch("GET", path);
    EXPECT_EQ(response.status, 404) << path;
    EXPECT_NE(response.body.find("\"not_found\""), std::string::npos) << response.body;
  }
}

TEST_F(RouterTest, KnownPathWithOtherMethodIs405WithAllow) {
  Response response = Dispatch("POST", "/udfs/ana/roads");
  EXPECT_EQ(response.status, 405);
  EXPECT_EQ(response.headers.Find("Allow"), "GET, HEAD, DELETE, OPTIONS");
  EXPECT_NE(response.body.find("Method 'POST' is not allowed on '/udfs/ana/roads'"), std::string::npos)
      << response.body;
  EXPECT_EQ(Dispatch("DELETE", "/health").headers.Find("Allow"), "GET, HEAD, OPTIONS");
}

TEST_F(RouterTest, HeadUsesTheGetHandler) {
  Response response = Dispatch("HEAD", "/health");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "health");  // the server drops the body when writing
}

TEST_F(RouterTest, OptionsAnswersThePreflight) {
  Request request = MakeRequest("OPTIONS", "/udfs/ana/roads");
  request.headers.Add("Access-Control-Request-Method", "DELETE");
  request.headers.Add("Access-Control-Request-Headers", "authorization");
  Response response = router_.Dispatch(request, services_);
  EXPECT_EQ(response.status, 204);
  EXPECT_EQ(response.headers.Find("Access-Control-Allow-Methods"), "GET, HEAD, DELETE, OPTIONS");
  EXPECT_EQ(response.headers.Find("Access-Control-Allow-Headers"), "authorization");
  EXPECT_EQ(Dispatch("OPTIONS", "/nope").status, 404);
}

TEST_F(RouterTest, HandlerErrorsBecomeErrorResponses) {
  ASSERT_TRUE(router_.Add("GET", "/fails", [](const Request&, Services&) -> Result<Response> {
                       return UnprocessableEntity("Parameter 'year' expects an int, got 'abc'");
                     }).ok());
  Response response = Dispatch("GET", "/fails");
  EXPECT_EQ(response.status, 422);
  EXPECT_NE(response.body.find("Parameter 'year' expects an int, got 'abc'"), std::string::npos);
}

TEST_F(RouterTest, ExceptionsBecome500WithoutLeakingWhat) {
  ASSERT_TRUE(router_.Add("GET", "/throws", [](const Request&, Services&) -> Result<Response> {
                       throw std::runtime_error("secret internals");
                     }).ok());
  Response response = Dispatch("GET", "/throws");
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(response.body.find("secret"), std::string::npos) << response.body;
  EXPECT_NE(response.body.find("request_id=test-1"), std::string::npos) << response.body;
}

TEST(RouterValidationTest, RejectsMalformedPatternsNamingThem) {
  Router router;
  auto handler = Named("x");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"health", "must start with '/'"},
      {"/a//b", "empty segment"},
      {"/a/", "empty segment"},
      {"/a/{x", "parameters are whole segments"},
      {"/a/x{y}", "contains one of"},
      {"/a/{1x}", "parameters are whole segments"},
      {"/a/{x}/{x}", "appears twice"},
      {"/a[.ext]/b", "contains one of"},
  };
  for (const auto& [pattern, why] : bad) {
    Status status = router.Add("GET", pattern, handler);
    ASSERT_FALSE(status.ok()) << pattern;
    EXPECT_NE(status.message().find("'" + pattern + "'"), std::string::npos) << status.message();
    EXPECT_NE(status.message().find(why), std::string::npos) << status.message();
  }
  EXPECT_EQ(router.size(), 0u);
}

TEST(RouterValidationTest, RejectsDuplicatesBadMethodsAndMissingHandlers) {
  Router router;
  ASSERT_TRUE(router.Add("GET", "/a/{x}", Named("1")).ok());
  Status duplicate = router.Add("GET", "/a/{y}", Named("2"));
  ASSERT_FALSE(duplicate.ok());
  EXPECT_NE(duplicate.message().find("Duplicate route GET '/a/{y}'"), std::string::npos) << duplicate.message();
  EXPECT_FALSE(router.Add("GET", "/a/{x}[.ext]", Named("3")).ok());
  EXPECT_TRUE(router.Add("POST", "/a/{x}", Named("4")).ok());
  EXPECT_TRUE(router.Add("GET", "/a/b", Named("5")).ok());
  Status head = router.Add("HEAD", "/b", Named("6"));
  ASSERT_FALSE(head.ok());
  EXPECT_NE(head.message().find("HEAD and OPTIONS are automatic"), std::string::npos);
  EXPECT_FALSE(router.Add("GET", "/c", Handler()).ok());
}

TEST(RouterValidationTest, OnlyGetRoutesHaveFastOrAsyncHandlers) {
  Router router;
  AsyncHandler never = [](const Request&, Services&, Respond) { return false; };
  Status post = router.Add("POST", "/p", Named("1"), {}, never);
  ASSERT_FALSE(post.ok());
  EXPECT_NE(post.message().find("only GET routes answer fast or deferred"), std::string::npos) << post.message();
  ASSERT_TRUE(router.Add("GET", "/g/{x}[.ext]", Named("2"), {}, never).ok());
  ASSERT_TRUE(router.Add("GET", "/h", Named("3")).ok());
  Request request = MakeRequest("GET", "/g/7.mvt");
  ASSERT_NE(router.FindAsync(request), nullptr);
  EXPECT_EQ(*request.PathParam("x"), "7");
  EXPECT_EQ(request.extension, "mvt");
  Request plain = MakeRequest("GET", "/h");
  EXPECT_EQ(router.FindAsync(plain), nullptr);
  Request post_request = MakeRequest("POST", "/g/7");
  EXPECT_EQ(router.FindAsync(post_request), nullptr);
}

TEST(RouterValidationTest, RootPatternMatchesOnlyRoot) {
  Router router;
  ASSERT_TRUE(router.Add("GET", "/", Named("root")).ok());
  EXPECT_TRUE(router.Find("GET", {}).ok());
  EXPECT_FALSE(router.Find("GET", {"x"}).ok());
}

TEST(RouterValidationTest, PrefixPatternMatchesItsPathAndEverythingBelow) {
  Router router;
  ASSERT_TRUE(router.Add("GET", "/app/*", Named("app")).ok());
  ASSERT_TRUE(router.Add("GET", "/app/api", Named("api")).ok());
  EXPECT_TRUE(router.Find("GET", {"app"}).ok());
  EXPECT_TRUE(router.Find("GET", {"app", ""}).ok());
  EXPECT_TRUE(router.Find("GET", {"app", "a", "b", "c.js"}).ok());
  EXPECT_FALSE(router.Find("GET", {"other"}).ok());
  // The exact route still wins over the prefix.
  Request request = MakeRequest("GET", "/app/api");
  Services services;
  EXPECT_EQ(router.Dispatch(request, services).body, "api");
  EXPECT_FALSE(router.Add("GET", "/app/*", Named("again")).ok());
}

}  // namespace
}  // namespace terrafuse::http

namespace terrafuse::http {
namespace {

TEST(RouterUploadTest, UploadRoutesAreFoundOnlyForTheirMethodAndPath) {
  Router router;
  UploadHandler open = [](const Request&, Services&) -> Result<std::unique_ptr<BodySink>> {
    return InvalidArgument("not opened in this test");
  };
  EXPECT_FALSE(router.AddUpload("GET", "/up", open).ok());
  EXPECT_FALSE(router.AddUpload("PUT", "/up", UploadHandler()).ok());
  ASSERT_TRUE(router.AddUpload("PUT", "/up/{name}", open).ok());
  ASSERT_TRUE(router.Add("GET", "/up/{name}", Named("get")).ok());
  Request put = MakeRequest("PUT", "/up/file.bin");
  EXPECT_NE(router.FindUpload(put), nullptr);
  EXPECT_EQ(put.PathParam("name"), "file.bin");
  Request get = MakeRequest("GET", "/up/file.bin");
  EXPECT_EQ(router.FindUpload(get), nullptr);
  Request post = MakeRequest("POST", "/up/file.bin");
  EXPECT_EQ(router.FindUpload(post), nullptr);
}

}  // namespace
}  // namespace terrafuse::http

#include <gtest/gtest.h>

#include "terrafuse/http/response_filters.h"
#include "terrafuse/routes/builtin_routes.h"
#include "terrafuse/routes/metrics_routes.h"
#include "terrafuse/routes/services.h"

namespace terrafuse::routes {
namespace {

class RoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    services_.metrics = &metrics_;
    ASSERT_TRUE(RegisterBuiltinRoutes(router_, {.debug_routes = true}).ok());
  }

  http::Response Get(std::string target) {
    http::Request request;
    request.method = "GET";
    request.target = target;
    auto parsed = http::ParseTarget(target);
    EXPECT_TRUE(parsed.ok());
    request.path = parsed->path;
    request.segments = parsed->segments;
    request.query = parsed->query;
    request.request_id = "r";
    http::Response response = router_.Dispatch(request, services_);
    http::FinalizeResponse(request, response);
    return response;
  }

  http::ServerMetrics metrics_;
  Services services_;
  http::Router router_;
};

TEST_F(RoutesTest, HealthAnswersOkAtRootAndUnderTheApiPrefix) {
  for (const char* path : {"/health", "/server/v1/health"}) {
    http::Response response = Get(path);
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, R"({"status":"ok"})");
    EXPECT_EQ(response.headers.Find("Cache-Control"), "no-store");
    EXPECT_FALSE(response.headers.Has("ETag"));
  }
}

TEST_F(RoutesTest, MetricsRenderPrometheusText) {
  metrics_.CountResponse(200);
  metrics_.CountResponse(204);
  metrics_.CountResponse(404);
  metrics_.in_flight = 3;
  http::Response response = Get("/metrics");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.headers.Find("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = response.body;
  EXPECT_NE(text.find("# TYPE terrafuse_http_requests_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("terrafuse_http_requests_total{class=\"2xx\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("terrafuse_http_requests_total{class=\"4xx\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("terrafuse_http_requests_in_flight 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("terrafuse_uptime_seconds "), std::string::npos) << text;
}

TEST_F(RoutesTest, MetricsWithoutAServerAre503) {
  services_.metrics = nullptr;
  EXPECT_EQ(Get("/metrics").status, 503);
}

TEST_F(RoutesTest, DebugBytesServesCacheableBytes) {
  http::Response response = Get("/server/v1/_debug/bytes?n=30");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "abcdefghijklmnopqrstuvwxyzabcd");
  EXPECT_TRUE(response.headers.Has("ETag"));
  EXPECT_EQ(Get("/server/v1/_debug/bytes?n=0").body, "");
}

TEST_F(RoutesTest, DebugBytesValidatesItsParameters) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"/server/v1/_debug/bytes", "Missing query parameter 'n'"},
      {"/server/v1/_debug/bytes?n=abc", "Invalid n='abc': expected an integer between 0 and 67108864"},
      {"/server/v1/_debug/bytes?n=-1", "Invalid n='-1'"},
      {"/server/v1/_debug/bytes?n=1&delay_ms=1e3", "Invalid delay_ms='1e3'"},
  };
  for (const auto& [target, message] : bad) {
    http::Response response = Get(target);
    EXPECT_EQ(response.status, 400) << target;
    EXPECT_NE(response.body.find(message), std::string::npos) << response.body;
  }
}

TEST(BuiltinRoutesTest, DebugRoutesOnlyWhenAsked) {
  http::Router plain;
  ASSERT_TRUE(RegisterBuiltinRoutes(plain, {}).ok());
  http::Router debug;
  ASSERT_TRUE(RegisterBuiltinRoutes(debug, {.debug_routes = true}).ok());
  EXPECT_EQ(debug.size(), plain.size() + 1);
  EXPECT_FALSE(plain.Find("GET", {"server", "v1", "_debug", "bytes"}).ok());
}

}  // namespace
}  // namespace terrafuse::routes

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "terrafuse/http/response_filters.h"
#include "terrafuse/routes/services.h"
#include "terrafuse/routes/workbench_routes.h"

namespace terrafuse::routes {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

class WorkbenchRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tf_workbench_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    Write(dir_ / "web" / "index.html", "<html>app</html>");
    Write(dir_ / "web" / "assets" / "index-abc.js", "console.log(1)");
    Write(dir_ / "web" / "assets" / "index-abc.js.gz", "GZ");
    Write(dir_ / "web" / "basemap" / "land.geojson", "{}");
    Write(dir_ / "secret.txt", "secret");
    fs::create_symlink(dir_ / "secret.txt", dir_ / "web" / "leak.txt");
    services_.web_root = (dir_ / "web").string();
    ASSERT_TRUE(RegisterWorkbenchRoutes(router_).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  http::Response Get(std::string target, std::string accept_encoding = "") {
    http::Request request;
    request.method = "GET";
    request.target = target;
    auto parsed = http::ParseTarget(target);
    EXPECT_TRUE(parsed.ok()) << target;
    request.path = parsed->path;
    request.segments = parsed->segments;
    request.query = parsed->query;
    request.request_id = "r";
    if (!accept_encoding.empty()) request.headers.Set("Accept-Encoding", accept_encoding);
    http::Response response = router_.Dispatch(request, services_);
    http::FinalizeResponse(request, response);
    return response;
  }

  fs::path dir_;
  Services services_;
  http::Router router_;
};

TEST_F(WorkbenchRoutesTest, ServesIndexAtTheRootWithOrWithoutSlash) {
  for (const char* target : {"/workbench", "/workbench/", "/workbench/index.html"}) {
    http::Response response = Get(target);
    EXPECT_EQ(response.status, 200) << target;
    EXPECT_EQ(response.Body(), "<html>app</html>") << target;
    EXPECT_EQ(response.headers.Find("Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(response.headers.Find("Cache-Control"), "no-cache");
    EXPECT_TRUE(response.headers.Has("ETag"));
  }
}

TEST_F(WorkbenchRoutesTest, AppPathsFallBackToIndexButMissingAssetsAre404) {
  EXPECT_EQ(Get("/workbench/tokens").Body(), "<html>app</html>");
  EXPECT_EQ(Get("/workbench/catalog/Name-1").Body(), "<html>app</html>");
  http::Response missing = Get("/workbench/assets/nope.js");
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.Body().find("No workbench file '/workbench/assets/nope.js'"), std::string::npos) << missing.Body();
}

TEST_F(WorkbenchRoutesTest, HashedAssetsAreImmutableAndPrecompressed) {
  http::Response plain = Get("/workbench/assets/index-abc.js");
  EXPECT_EQ(plain.status, 200);
  EXPECT_EQ(plain.Body(), "console.log(1)");
  EXPECT_EQ(plain.headers.Find("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(plain.headers.Find("Cache-Control"), "public, max-age=31536000, immutable");
  EXPECT_FALSE(plain.headers.Has("Content-Encoding"));
  http::Response gzipped = Get("/workbench/assets/index-abc.js", "gzip, deflate, br");
  EXPECT_EQ(gzipped.Body(), "GZ");
  EXPECT_EQ(gzipped.headers.Find("Content-Encoding"), "gzip");
  EXPECT_EQ(gzipped.headers.Find("Vary"), "Accept-Encoding");
  EXPECT_NE(plain.headers.Find("ETag"), gzipped.headers.Find("ETag"));
  EXPECT_EQ(Get("/workbench/basemap/land.geojson").headers.Find("Content-Type"), "application/geo+json");
}

TEST_F(WorkbenchRoutesTest, AChangedFileIsServedFresh) {
  EXPECT_EQ(Get("/workbench/index.html").Body(), "<html>app</html>");
  Write(dir_ / "web" / "index.html", "<html>v2</html>");
  fs::last_write_time(dir_ / "web" / "index.html", fs::file_time_type::clock::now() + std::chrono::seconds(5));
  http::Response response = Get("/workbench/index.html");
  EXPECT_EQ(response.Body(), "<html>v2</html>");
  EXPECT_EQ(response.headers.Find("ETag"), http::BodyETag("<html>v2</html>"));
}

TEST_F(WorkbenchRoutesTest, NothingOutsideTheRootIsServed) {
  for (const char* target : {"/workbench/../secret.txt", "/workbench/%2e%2e/secret.txt", "/workbench/..%2Fsecret.txt",
                             "/workbench/leak.txt", "/workbench/.hidden.txt"}) {
    http::Response response = Get(target);
    EXPECT_EQ(response.status, 404) << target;
    EXPECT_EQ(response.Body().find("secret\""), std::string::npos);
  }
}

TEST_F(WorkbenchRoutesTest, AnUnbuiltWorkbenchSaysHowToBuildIt) {
  services_.web_root = (dir_ / "missing").string();
  http::Response response = Get("/workbench");
  EXPECT_EQ(response.status, 404);
  EXPECT_NE(response.Body().find("npm run build"), std::string::npos) << response.Body();
}

}  // namespace
}  // namespace terrafuse::routes

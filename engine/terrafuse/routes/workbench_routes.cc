#include "terrafuse/routes/workbench_routes.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <mutex>
#include <unordered_map>

#include <arrow/buffer.h>
#include <nlohmann/json.hpp>

#include "terrafuse/http/response_filters.h"

#include "terrafuse/routes/api_prefix.h"
#include "terrafuse/routes/services.h"
#include "terrafuse/udf/registry.h"

namespace terrafuse::routes {

namespace {

namespace fs = std::filesystem;
using http::Request;
using http::Response;

std::string_view ContentType(const fs::path& path) {
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},  {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},          {".geojson", "application/geo+json"},
      {".map", "application/json"},           {".svg", "image/svg+xml"},
      {".png", "image/png"},                  {".jpg", "image/jpeg"},
      {".ico", "image/x-icon"},               {".woff2", "font/woff2"},
      {".wasm", "application/wasm"},          {".txt", "text/plain; charset=utf-8"},
      {".pbf", "application/x-protobuf"},
  };
  const std::string ext = path.extension().string();
  for (const auto& [suffix, type] : kTypes) {
    if (ext == suffix) return type;
  }
  return "application/octet-stream";
}

struct CachedFile {
  fs::file_time_type mtime;
  std::shared_ptr<arrow::Buffer> body;
  std::string etag;
};

// The bundle is a few files read on every page load: keep them in memory (with their ETag,
// so responses are not hashed again) until the file changes on disk.
Result<CachedFile> ReadFile(const fs::path& path) {
  static std::mutex mutex;
  static auto* cache = new std::unordered_map<std::string, CachedFile>;
  std::error_code ec;
  const fs::file_time_type mtime = fs::last_write_time(path, ec);
  if (ec) return IOError("Cannot read '", path.string(), "'");
  {
    std::lock_guard<std::mutex> guard(mutex);
    auto it = cache->find(path.string());
    if (it != cache->end() && it->second.mtime == mtime) return it->second;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return IOError("Cannot read '", path.string(), "'");
  std::ostringstream out;
  out << in.rdbuf();
  std::string bytes = std::move(out).str();
  CachedFile file{mtime, nullptr, http::BodyETag(bytes)};
  file.body = arrow::Buffer::FromString(std::move(bytes));
  std::lock_guard<std::mutex> guard(mutex);
  if (cache->size() > 256) cache->clear();  // bounded: a bundle has a handful of files
  return (*cache)[path.string()] = std::move(file);
}

bool AcceptsGzip(const Request& request) {
  auto header = request.headers.Find("Accept-Encoding");
  return header && header->find("gzip") != std::string_view::npos;
}

// A path segment that may name a file under the root: no traversal, no separators
// (segments are percent-decoded one by one, so "%2F" would otherwise smuggle a '/').
bool SafeSegment(std::string_view segment) {
  return !segment.empty() && segment != "." && segment != ".." && segment.front() != '.' &&
         segment.find_first_of(std::string_view("/\\\0", 3)) == std::string_view::npos;
}

Result<Response> ServeWorkbench(const Request& request, Services& services) {
  if (services.web_root.empty() || !fs::is_regular_file(fs::path(services.web_root) / "index.html")) {
    return NotFound("The workbench is not built: run `npm ci && npm run build` in web/ (scripts/setup.sh does), "
                    "or pass --web-root DIR");
  }
  std::error_code ec;
  const fs::path root = fs::canonical(services.web_root, ec);
  if (ec) return NotFound("The workbench folder '", services.web_root, "' is missing");
  fs::path relative;
  for (size_t i = 1; i < request.segments.size(); ++i) {
    const std::string& segment = request.segments[i];
    if (segment.empty() && i + 1 == request.segments.size()) break;  // "/workbench/"
    if (!SafeSegment(segment)) return NotFound("No workbench file '", request.path, "'");
    relative /= segment;
  }
  fs::path file = root / relative;
  if (relative.empty() || fs::is_directory(file)) {
    file = root / "index.html";
  } else if (!fs::is_regular_file(file)) {
    // The app's own routes (/workbench/tokens, /workbench/catalog/x) load the app; a missing
    // asset (it has an extension) is a plain 404.
    if (relative.filename().has_extension()) return NotFound("No workbench file '", request.path, "'");
    file = root / "index.html";
  }
  // Symlinks must not lead out of the root.
  const fs::path resolved = fs::canonical(file, ec);
  if (ec || resolved.string().rfind(root.string() + "/", 0) != 0) {
    return NotFound("No workbench file '", request.path, "'");
  }

  Response response;
  response.headers.Set("Content-Type", std::string(ContentType(resolved)));
  // Vite names assets by content hash: they never change. Everything else (index.html, the
  // base map) is revalidated with the ETag on each load.
  const bool immutable = !relative.empty() && *relative.begin() == "assets";
  response.headers.Set("Cache-Control", immutable ? "public, max-age=31536000, immutable" : "no-cache");
  response.headers.Set("X-Content-Type-Options", "nosniff");
  const fs::path gzipped = resolved.string() + ".gz";
  response.headers.Set("Vary", "Accept-Encoding");
  const bool gzip = AcceptsGzip(request) && fs::is_regular_file(gzipped);
  ARROW_ASSIGN_OR_RAISE(CachedFile cached, ReadFile(gzip ? gzipped : resolved));
  if (gzip) response.headers.Set("Content-Encoding", "gzip");
  response.shared_body = cached.body;
  response.headers.Set("ETag", cached.etag);
  return response;
}

Result<Response> WhoAmI(const Request& request, Services& services) {
  auto header = request.headers.Find("Authorization");
  if (!header || header->empty()) {
    return Unauthenticated("This route needs an API token: send 'Authorization: Bearer <token>'");
  }
  ARROW_ASSIGN_OR_RAISE(std::string owner, services.registry->Authenticate(*header));
  Response response = Response::Json(nlohmann::json({{"owner", owner}}).dump());
  response.cacheable = false;
  return response;
}

}  // namespace

Status RegisterWorkbenchRoutes(http::Router& router) {
  ARROW_RETURN_NOT_OK(router.Add("GET", "/workbench/*", ServeWorkbench));
  return router.Add("GET", std::string(kApiPrefix) + "/whoami", WhoAmI);
}

}  // namespace terrafuse::routes

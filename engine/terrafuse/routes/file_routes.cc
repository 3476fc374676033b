#include "terrafuse/routes/file_routes.h"

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include <arrow/io/file.h>
#include <nlohmann/json.hpp>

#include "terrafuse/http/request.h"
#include "terrafuse/routes/api_prefix.h"
#include "terrafuse/routes/services.h"
#include "terrafuse/storage/file_system.h"
#include "terrafuse/storage/files.h"
#include "terrafuse/storage/signed_url.h"
#include "terrafuse/udf/crypto_internal.h"
#include "terrafuse/udf/registry.h"

namespace terrafuse::routes {

namespace {

using http::Request;
using http::Response;
using json = nlohmann::json;

// Signed URLs last an hour unless asked otherwise, and at most a week (as S3's do).
constexpr int64_t kDefaultSignedSeconds = 3600;
constexpr int64_t kMaxSignedSeconds = 7 * 24 * 3600;

std::string Route(std::string_view suffix) { return std::string(kApiPrefix) + std::string(suffix); }

Status RequireOwner(const Request& request, Services& services) {
  auto header = request.headers.Find("Authorization");
  if (!header || header->empty()) {
    return Unauthenticated("This route needs an API token: send 'Authorization: Bearer <token>'");
  }
  return services.registry->Authenticate(*header).status();
}

// The `path` parameter, an fd:// URI, resolved under the server's store.
Result<storage::Location> PathParam(const Request& request, Services& services) {
  if (!services.storage) return Unavailable("This server has no file storage configured");
  auto path = request.Query("path");
  if (!path || path->empty()) return InvalidArgument("Missing query parameter 'path': give an fd:// URI");
  if (!path->starts_with("fd://")) {
    return InvalidArgument("Invalid path '", *path, "': the server's files API takes fd:// URIs only");
  }
  return storage::ResolveUri(*path, *services.storage);
}

Result<int64_t> IntParam(const Request& request, std::string_view name, int64_t fallback) {
  auto text = request.Query(name);
  if (!text) return fallback;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size()) {
    return InvalidArgument("Invalid ", name, " '", *text, "': expected an integer");
  }
  return value;
}

std::string MediaType(std::string_view name) {
  static const std::pair<std::string_view, std::string_view> kTypes[] = {
      {".parquet", "application/vnd.apache.parquet"}, {".csv", "text/csv"},
      {".json", "application/json"},                  {".geojson", "application/geo+json"},
      {".txt", "text/plain; charset=utf-8"},          {".zip", "application/zip"},
      {".tif", "image/tiff"},                         {".tiff", "image/tiff"},
      {".png", "image/png"},                          {".jpg", "image/jpeg"},
      {".html", "text/html; charset=utf-8"}};
  for (const auto& [extension, type] : kTypes) {
    if (name.ends_with(extension)) return std::string(type);
  }
  return "application/octet-stream";
}

std::string Quote(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) continue;
    out.push_back(c);
  }
  return out;
}

// A file streams from storage; a directory is zipped to a temp file first (the archive's
// length must be known, and memory stays flat), which is unlinked at once and lives on
// only through the open handle.
Result<Response> Serve(const storage::Location& where, Services& services) {
  ARROW_ASSIGN_OR_RAISE(storage::FileEntry entry, storage::Stat(where));
  const std::string base = where.uri.substr(where.uri.rfind('/') + 1);
  if (entry.is_dir) {
    const std::string spool_dir = services.home + "/tmp";
    std::error_code ec;
    std::filesystem::create_directories(spool_dir, ec);
    ARROW_ASSIGN_OR_RAISE(std::string nonce, udf::internal::RandomAlnum(16));
    const std::string spool = spool_dir + "/zip-" + nonce;
    {
      auto out = arrow::io::FileOutputStream::Open(spool);
      if (!out.ok()) return IOError("Cannot create a temporary zip: ", out.status().message());
      Status written = storage::WriteZip(where, out->get());
      Status closed = (*out)->Close();
      if (!written.ok() || !closed.ok()) {
        ::unlink(spool.c_str());
        return written.ok() ? IOError("Cannot write a temporary zip: ", closed.message()) : written;
      }
    }
    auto file = arrow::io::ReadableFile::Open(spool);
    ::unlink(spool.c_str());
    if (!file.ok()) return IOError("Cannot read a temporary zip: ", file.status().message());
    ARROW_ASSIGN_OR_RAISE(int64_t size, (*file)->GetSize());
    Response response = Response::File(*file, size, "application/zip");
    response.headers.Set("Content-Disposition", "attachment; filename=\"" + Quote(base.empty() ? "fd" : base) + ".zip\"");
    response.headers.Set("Cache-Control", "no-store");
    return response;
  }
  auto file = where.fs->OpenInputFile(where.path);
  if (!file.ok()) return storage::Describe(file.status(), where, "read");
  Response response = Response::File(*file, entry.size, MediaType(base));
  // Size and modification time identify a version well enough for conditional requests.
  char etag[64];
  std::snprintf(etag, sizeof(etag), "\"%llx-%llx\"", static_cast<unsigned long long>(entry.size),
                static_cast<unsigned long long>(entry.modified_ms));
  response.headers.Set("ETag", etag);
  response.headers.Set("Cache-Control", "no-cache");
  return response;
}

json EntryJson(const storage::FileEntry& entry) {
  return {{"url", entry.uri}, {"name", entry.name}, {"size", entry.size},
          {"last_modified_ms", entry.modified_ms}, {"is_directory", entry.is_dir}};
}

Result<Response> ListFiles(const Request& request, Services& services) {
  ARROW_RETURN_NOT_OK(RequireOwner(request, services));
  ARROW_ASSIGN_OR_RAISE(storage::Location where, PathParam(request, services));
  const bool recursive = request.Query("recursive").value_or("false") == "true";
  ARROW_ASSIGN_OR_RAISE(std::vector<storage::FileEntry> entries, storage::List(where, recursive));
  json files = json::array();
  for (const auto& entry : entries) files.push_back(EntryJson(entry));
  Response response = Response::Json(json{{"files", files}}.dump());
  response.cacheable = false;
  return response;
}

Result<Response> Download(const Request& request, Services& services) {
  ARROW_RETURN_NOT_OK(RequireOwner(request, services));
  ARROW_ASSIGN_OR_RAISE(storage::Location where, PathParam(request, services));
  return Serve(where, services);
}

Result<Response> DeleteFiles(const Request& request, Services& services) {
  ARROW_RETURN_NOT_OK(RequireOwner(request, services));
  ARROW_ASSIGN_OR_RAISE(storage::Location where, PathParam(request, services));
  int64_t depth = 2;  // Fused's default
  if (request.Query("max_deletion_depth") == "unlimited") {
    depth = -1;
  } else {
    ARROW_ASSIGN_OR_RAISE(depth, IntParam(request, "max_deletion_depth", 2));
    if (depth < 0) return InvalidArgument("Invalid max_deletion_depth ", depth, ": use 0 or more, or 'unlimited'");
  }
  ARROW_RETURN_NOT_OK(storage::Delete(where, static_cast<int>(depth)));
  Response response = Response::Json(json{{"deleted", where.uri}}.dump());
  response.cacheable = false;
  return response;
}

// The server's own address as the client reached it, for absolute signed URLs.
std::string Origin(const Request& request) {
  std::string scheme = std::string(request.headers.Find("X-Forwarded-Proto").value_or("http"));
  if (scheme != "https") scheme = "http";
  std::string host = std::string(request.headers.Find("Host").value_or("127.0.0.1"));
  if (host.find_first_of("/?#@ \r\n") != std::string::npos) host = "127.0.0.1";
  return scheme + "://" + host;
}

std::string Encode(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out += {'%', hex[c >> 4], hex[c & 15]};
    }
  }
  return out;
}

Result<int64_t> ExpiresAt(const Request& request) {
  ARROW_ASSIGN_OR_RAISE(int64_t seconds, IntParam(request, "expires_in", kDefaultSignedSeconds));
  if (seconds <= 0 || seconds > kMaxSignedSeconds) {
    return InvalidArgument("Invalid expires_in ", seconds, ": use 1 to ", kMaxSignedSeconds, " seconds");
  }
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  return now + seconds;
}

std::string SignedUrl(const Request& request, Services& services, const std::string& uri, int64_t expires) {
  return Origin(request) + Route("/files/signed") + "?path=" + Encode(uri) + "&expires=" +
         std::to_string(expires) + "&signature=" + storage::SignPath(services.signing_key, uri, expires);
}

Result<Response> Sign(const Request& request, Services& services) {
  ARROW_RETURN_NOT_OK(RequireOwner(request, services));
  ARROW_ASSIGN_OR_RAISE(storage::Location where, PathParam(request, services));
  ARROW_ASSIGN_OR_RAISE(int64_t expires, ExpiresAt(request));
  Response response = Response::Json(
      json{{"url", SignedUrl(request, services, where.uri, expires)}, {"expires", expires}}.dump());
  response.cacheable = false;
  return response;
}

Result<Response> SignPrefix(const Request& request, Services& services) {
  ARROW_RETURN_NOT_OK(RequireOwner(request, services));
  ARROW_ASSIGN_OR_RAISE(storage::Location where, PathParam(request, services));
  ARROW_ASSIGN_OR_RAISE(int64_t expires, ExpiresAt(request));
  ARROW_ASSIGN_OR_RAISE(std::vector<storage::FileEntry> entries, storage::List(where, /*recursive=*/true));
  json urls = json::object();
  for (const auto& entry : entries) {
    if (!entry.is_dir) urls[entry.uri] = SignedUrl(request, services, entry.uri, expires);
  }
  Response response = Response::Json(json{{"urls", urls}, {"expires", expires}}.dump());
  response.cacheable = false;
  return response;
}

// No token: the signature is the credential, for this one path until it expires.
Result<Response> ServeSigned(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(storage::Location where, PathParam(request, services));
  ARROW_ASSIGN_OR_RAISE(int64_t expires, IntParam(request, "expires", 0));
  const std::string signature(request.Query("signature").value_or(""));
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  ARROW_RETURN_NOT_OK(storage::VerifySignedPath(services.signing_key, where.uri, expires, signature, now));
  return Serve(where, services);
}

class FileSink : public http::BodySink {
 public:
  FileSink(storage::Location where, std::unique_ptr<storage::AtomicWriter> writer)
      : where_(std::move(where)), writer_(std::move(writer)) {}
  Status Write(const char* data, size_t size) override { return writer_->Write(data, static_cast<int64_t>(size)); }
  Status Expect(uint64_t length) override { return writer_->Reserve(static_cast<int64_t>(length)); }
  bool CanSplice() const override { return writer_->can_splice(); }
  Status WriteFromPipe(int pipe_fd, size_t size) override {
    return writer_->WriteFromPipe(pipe_fd, static_cast<int64_t>(size));
  }
  Result<Response> Finish() override {
    ARROW_RETURN_NOT_OK(writer_->Commit());
    Response response = Response::Json(json{{"url", where_.uri}, {"size", writer_->bytes_written()}}.dump());
    response.cacheable = false;
    return response;
  }

 private:
  storage::Location where_;
  std::unique_ptr<storage::AtomicWriter> writer_;  // its destructor drops an unfinished upload
};

Result<std::unique_ptr<http::BodySink>> Upload(const Request& request, Services& services) {
  ARROW_RETURN_NOT_OK(RequireOwner(request, services));
  ARROW_ASSIGN_OR_RAISE(storage::Location where, PathParam(request, services));
  ARROW_ASSIGN_OR_RAISE(auto writer, storage::AtomicWriter::Open(where));
  return std::make_unique<FileSink>(std::move(where), std::move(writer));
}

}  // namespace

Status RegisterFileRoutes(http::Router& router) {
  ARROW_RETURN_NOT_OK(router.Add("GET", Route("/files/list"), ListFiles));
  ARROW_RETURN_NOT_OK(router.Add("GET", Route("/files/download"), Download));
  ARROW_RETURN_NOT_OK(router.AddUpload("PUT", Route("/files/upload"), Upload));
  ARROW_RETURN_NOT_OK(router.Add("DELETE", Route("/files"), DeleteFiles));
  ARROW_RETURN_NOT_OK(router.Add("POST", Route("/files/sign"), Sign));
  ARROW_RETURN_NOT_OK(router.Add("POST", Route("/files/sign_prefix"), SignPrefix));
  ARROW_RETURN_NOT_OK(router.Add("GET", Route("/files/signed"), ServeSigned));
  return Status::OK();
}

}  // namespace terrafuse::routes

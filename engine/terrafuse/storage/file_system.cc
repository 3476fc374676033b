#include "terrafuse/storage/file_system.h"

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <unordered_map>

#include <arrow/filesystem/localfs.h>
#include <arrow/filesystem/s3fs.h>

#include "terrafuse/storage/http_file_system.h"

namespace terrafuse::storage {

namespace {

namespace stdfs = std::filesystem;

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

// Paths the seeds use for the shared disk inside UDFs ("/mnt/cache" is the newer name).
constexpr std::string_view kMountPrefixes[] = {"/mount", "/mnt/cache"};

std::shared_ptr<arrow::fs::FileSystem> LocalFs() {
  static auto* fs = new std::shared_ptr<arrow::fs::FileSystem>(std::make_shared<arrow::fs::LocalFileSystem>());
  return *fs;
}

Result<Location> LocalLocation(std::string path, std::string uri) {
  std::error_code ec;
  stdfs::path absolute = stdfs::absolute(path, ec);
  if (ec) return InvalidArgument("Invalid path '", uri, "': ", ec.message());
  return Location{LocalFs(), absolute.lexically_normal().string(), std::move(uri), true};
}

Result<Location> ResolvePlain(std::string_view rest, const StorageConfig& config) {
  if (!config.allow_local) {
    return PermissionDenied("Local paths are not allowed here ('", rest, "'): use an fd:// URI");
  }
  if (rest.empty()) return InvalidArgument("Empty path: give a file path or a URI such as fd://dir/file");
  for (std::string_view prefix : kMountPrefixes) {
    if (rest == prefix || (rest.starts_with(prefix) && rest[prefix.size()] == '/')) {
      ARROW_ASSIGN_OR_RAISE(std::string relative, NormalizeRelative(rest.substr(prefix.size()), rest));
      ARROW_ASSIGN_OR_RAISE(std::string local, ContainLocal(config.shared_dir, relative, rest));
      return Location{LocalFs(), std::move(local), std::string(rest), true};
    }
  }
  if (rest.find('\0') != std::string_view::npos) return InvalidArgument("Invalid path: it contains a NUL byte");
  return LocalLocation(std::string(rest), std::string(rest));
}

Result<Location> ResolveFile(std::string_view rest, const StorageConfig& config) {
  if (!config.allow_local) {
    return PermissionDenied("file:// URIs are not allowed here ('file://", rest, "'): use an fd:// URI");
  }
  // file:///abs/path; "file://localhost/abs/path" names the same file.
  if (rest.starts_with("localhost/")) rest.remove_prefix(9);
  if (!rest.starts_with("/")) {
    return InvalidArgument("Invalid URI 'file://", rest, "': use file:///absolute/path");
  }
  return LocalLocation(std::string(rest), "file://" + std::string(rest));
}

// "s3://bucket/prefix" → {"bucket/prefix"}; refuses URIs without a bucket.
Result<std::string> S3Path(std::string_view rest, std::string_view uri) {
  ARROW_ASSIGN_OR_RAISE(std::string path, NormalizeRelative(rest, uri));
  if (path.empty()) return InvalidArgument("Invalid URI '", uri, "': name a bucket, as in s3://bucket/key");
  return path;
}

Result<Location> ResolveS3(std::string_view rest, const StorageConfig& config) {
  const std::string uri = "s3://" + std::string(rest);
  ARROW_ASSIGN_OR_RAISE(std::string path, S3Path(rest, uri));
  ARROW_ASSIGN_OR_RAISE(auto fs, S3FileSystemFor(config.s3));
  return Location{std::move(fs), path, "s3://" + path, false};
}

Result<Location> ResolveFd(std::string_view rest, const StorageConfig& config) {
  const std::string uri = "fd://" + std::string(rest);
  ARROW_ASSIGN_OR_RAISE(std::string relative, NormalizeRelative(rest, uri));
  const std::string normalized = "fd://" + relative;
  if (config.fd_root.starts_with("s3://")) {
    ARROW_ASSIGN_OR_RAISE(std::string root, S3Path(std::string_view(config.fd_root).substr(5), config.fd_root));
    ARROW_ASSIGN_OR_RAISE(auto fs, S3FileSystemFor(config.s3));
    return Location{std::move(fs), relative.empty() ? root : root + "/" + relative, normalized, false};
  }
  std::string root = config.fd_root.empty() ? config.home + "/fd" : config.fd_root;
  if (config.fd_root.starts_with("file://")) root = config.fd_root.substr(7);
  std::error_code ec;
  stdfs::create_directories(root, ec);
  if (ec) return IOError("Cannot create the fd:// root directory: ", ec.message());
  ARROW_ASSIGN_OR_RAISE(std::string local, ContainLocal(root, relative, normalized));
  return Location{LocalFs(), std::move(local), normalized, true};
}

// http(s)://host/path?query: read-only; the path on the file system is the whole URL.
Result<Location> ResolveHttp(std::string_view scheme, std::string_view rest, const StorageConfig& config) {
  std::string url = std::string(scheme) + "://" + std::string(rest);
  if (!config.allow_local) {
    // The server must not fetch arbitrary URLs for its clients.
    return PermissionDenied(scheme, ":// URLs are not allowed here ('", url, "'): use an fd:// URI");
  }
  static auto* fs = new std::shared_ptr<arrow::fs::FileSystem>(MakeHttpFileSystem());
  return Location{*fs, url, url, false};
}

}  // namespace

StorageConfig StorageConfig::FromEnvironment(std::string home) {
  StorageConfig config;
  config.home = std::move(home);
  config.fd_root = Env("TERRAFUSE_FD_ROOT");
  if (std::string shared = Env("TERRAFUSE_SHARED_DIR"); !shared.empty()) config.shared_dir = shared;
  config.s3.endpoint = Env("TERRAFUSE_S3_ENDPOINT");
  if (config.s3.endpoint.empty()) config.s3.endpoint = Env("AWS_ENDPOINT_URL");
  config.s3.region = Env("AWS_REGION");
  if (config.s3.region.empty()) config.s3.region = Env("AWS_DEFAULT_REGION");
  config.s3.access_key = Env("AWS_ACCESS_KEY_ID");
  config.s3.secret_key = Env("AWS_SECRET_ACCESS_KEY");
  config.s3.session_token = Env("AWS_SESSION_TOKEN");
  return config;
}

Result<std::string> NormalizeRelative(std::string_view path, std::string_view what) {
  if (path.find('\0') != std::string_view::npos) return InvalidArgument("Invalid path '", what, "': it contains a NUL byte");
  if (path.find('\\') != std::string_view::npos) {
    return InvalidArgument("Invalid path '", what, "': backslashes are not allowed");
  }
  std::string out;
  while (!path.empty()) {
    size_t slash = path.find('/');
    std::string_view part = path.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") return PermissionDenied("Invalid path '", what, "': '..' is not allowed");
    if (!out.empty()) out.push_back('/');
    out.append(part);
  }
  return out;
}

Result<std::string> ContainLocal(const std::string& root, const std::string& relative, std::string_view what) {
  std::error_code ec;
  stdfs::path canonical_root = stdfs::weakly_canonical(root, ec);
  if (ec) return IOError("Cannot resolve the storage root: ", ec.message());
  stdfs::path joined = relative.empty() ? canonical_root : canonical_root / relative;
  // Resolves every symlink along the part that exists; the rest is normalised lexically.
  stdfs::path resolved = stdfs::weakly_canonical(joined, ec);
  if (ec) return IOError("Cannot resolve '", what, "': ", ec.message());
  const std::string root_text = canonical_root.string();
  const std::string text = resolved.string();
  const bool inside = text == root_text || (text.size() > root_text.size() && text.starts_with(root_text) &&
                                            (root_text.ends_with('/') || text[root_text.size()] == '/'));
  if (!inside) return PermissionDenied("Access to '", what, "' is refused: it leads outside its storage root");
  // The joined path, not the resolved one: a symlink inside the root stays a symlink
  // (deleting it must not delete its target).
  return joined.string();
}

Status FileSystemRegistry::Register(std::string scheme, Resolver resolver) {
  if (resolvers_.count(scheme)) return AlreadyExists("File-system scheme '", scheme, "' is already registered");
  resolvers_.emplace(std::move(scheme), std::move(resolver));
  return Status::OK();
}

std::vector<std::string> FileSystemRegistry::Schemes() const {
  std::vector<std::string> out;
  for (const auto& [scheme, resolver] : resolvers_) {
    if (!scheme.empty()) out.push_back(scheme);
  }
  return out;
}

Result<Location> FileSystemRegistry::Resolve(std::string_view uri, const StorageConfig& config) const {
  std::string_view scheme;
  std::string_view rest = uri;
  if (size_t sep = uri.find("://"); sep != std::string_view::npos) {
    scheme = uri.substr(0, sep);
    rest = uri.substr(sep + 3);
  }
  auto it = resolvers_.find(scheme);
  if (it == resolvers_.end()) {
    std::string known;
    for (const std::string& s : Schemes()) known += (known.empty() ? "" : ", ") + s + "://";
    return InvalidArgument("Unsupported URI scheme '", scheme, "://' in '", uri, "': use ", known,
                           " or a local path");
  }
  return it->second(rest, config);
}

Status RegisterBuiltinFileSystems(FileSystemRegistry& registry) {
  ARROW_RETURN_NOT_OK(registry.Register("", ResolvePlain));
  ARROW_RETURN_NOT_OK(registry.Register("file", ResolveFile));
  ARROW_RETURN_NOT_OK(registry.Register("fd", ResolveFd));
  ARROW_RETURN_NOT_OK(registry.Register("s3", ResolveS3));
  for (const char* scheme : {"http", "https"}) {
    ARROW_RETURN_NOT_OK(registry.Register(scheme, [scheme](std::string_view rest, const StorageConfig& config) {
      return ResolveHttp(scheme, rest, config);
    }));
  }
  return Status::OK();
}

Result<Location> ResolveUri(std::string_view uri, const StorageConfig& config) {
  static const FileSystemRegistry* registry = [] {
    auto* r = new FileSystemRegistry;
    (void)RegisterBuiltinFileSystems(*r);
    return r;
  }();
  return registry->Resolve(uri, config);
}

namespace {
std::mutex s3_mutex;
std::unordered_map<std::string, std::shared_ptr<arrow::fs::FileSystem>>* s3_memo =
    new std::unordered_map<std::string, std::shared_ptr<arrow::fs::FileSystem>>;
bool s3_used = false;
}  // namespace

Result<std::shared_ptr<arrow::fs::FileSystem>> S3FileSystemFor(const S3Config& config) {
  const std::string key = config.endpoint + '\n' + config.region + '\n' + config.access_key + '\n' +
                          config.secret_key + '\n' + config.session_token;
  std::lock_guard<std::mutex> guard(s3_mutex);
  if (auto it = s3_memo->find(key); it != s3_memo->end()) return it->second;
  ARROW_RETURN_NOT_OK(arrow::fs::EnsureS3Initialized());
  s3_used = true;
  arrow::fs::S3Options options = config.access_key.empty()
                                     ? arrow::fs::S3Options::Defaults()
                                     : arrow::fs::S3Options::FromAccessKey(config.access_key, config.secret_key,
                                                                           config.session_token);
  std::string endpoint = config.endpoint;
  if (endpoint.starts_with("http://")) {
    options.scheme = "http";
    endpoint = endpoint.substr(7);
  } else if (endpoint.starts_with("https://")) {
    endpoint = endpoint.substr(8);
  }
  while (endpoint.ends_with('/')) endpoint.pop_back();
  options.endpoint_override = endpoint;
  // A custom endpoint has no region to discover: default it rather than ask AWS.
  options.region = !config.region.empty() ? config.region : endpoint.empty() ? options.region : "us-east-1";
  auto made = arrow::fs::S3FileSystem::Make(options);
  if (!made.ok()) return IOError("Cannot connect to S3", endpoint.empty() ? "" : " at " + endpoint, ": ",
                                 made.status().message());
  std::shared_ptr<arrow::fs::FileSystem> fs = *made;
  (*s3_memo)[key] = fs;
  return fs;
}

void FinalizeStorage() {
  std::lock_guard<std::mutex> guard(s3_mutex);
  s3_memo->clear();
  if (s3_used) (void)arrow::fs::EnsureS3Finalized();
}

}  // namespace terrafuse::storage

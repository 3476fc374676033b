// One file-system layer for the engine: a registry of URI schemes, each resolving a URI to
// an Arrow FileSystem and a path on it. Ingestion, the table reader, the server's file
// routes and the SDK all go through ResolveUri, so `fd://demo/x.parquet` means the same
// object everywhere.
//
//   plain path, file://   local files (LocalFileSystem), absolute path
//   fd://                 the team store: a directory (default <home>/fd) or an S3 bucket + prefix
//   s3://bucket/key       S3 or an S3-compatible server (endpoint from the config)
//   http(s)://host/path   read-only remote files (Range requests; http_file_system.h)
//
// Paths under a root (fd://) are contained: lexically normalised (no "..", no absolute
// escape), and on local roots also canonicalised so a symlink cannot lead outside.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/filesystem/filesystem.h>

#include "terrafuse/common/status.h"

namespace terrafuse::storage {

/// S3 connection settings; empty fields fall back to the AWS SDK's defaults (environment
/// variables AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, ~/.aws).
struct S3Config {
  /// "host:port" or "http://host:port" of an S3-compatible server (MinIO, moto).
  std::string endpoint;
  std::string region;
  std::string access_key;
  std::string secret_key;
  std::string session_token;
};

struct StorageConfig {
  /// The data home; fd:// defaults to <home>/fd.
  std::string home;
  /// Where fd:// lives: a local directory, or "s3://bucket/prefix". Empty: <home>/fd.
  std::string fd_root;
  /// The shared disk that /mount and /mnt/cache name (TERRAFUSE_SHARED_DIR, else /tmp/fused).
  std::string shared_dir = "/tmp/fused";
  S3Config s3;
  /// Accept plain paths and file:// (the SDK: yes; the server's file routes: no, only fd://).
  bool allow_local = true;

  /// Reads TERRAFUSE_FD_ROOT, TERRAFUSE_SHARED_DIR, TERRAFUSE_S3_ENDPOINT (or AWS_ENDPOINT_URL), AWS_REGION,
  /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN over `home`.
  static StorageConfig FromEnvironment(std::string home);
};

/// A resolved URI: the file system holding it and the path on that file system.
struct Location {
  std::shared_ptr<arrow::fs::FileSystem> fs;
  /// The path on `fs` (absolute for local files, "bucket/key" for S3).
  std::string path;
  /// The URI as the user wrote it, normalised (for messages: never the local root).
  std::string uri;
  /// True when `fs` is the local disk (atomic writes use temp file + rename there).
  bool local = false;
};

/// Normalises a path relative to a root: splits on '/', drops "" and ".", and refuses
/// "..", backslashes and NUL bytes with InvalidArgument naming `what`. Returns "" for the
/// root itself, else "a/b/c" (no leading or trailing slash).
Result<std::string> NormalizeRelative(std::string_view path, std::string_view what);

/// Joins a normalised relative path under a local root and checks, after resolving
/// symlinks of the part that exists, that it stays inside the root. Refuses with
/// PermissionDenied naming `what` otherwise.
Result<std::string> ContainLocal(const std::string& root, const std::string& relative, std::string_view what);

/// Maps schemes to resolvers. Thread-safe; file systems are made once and shared.
class FileSystemRegistry {
 public:
  /// Resolves the part of a URI after "scheme://" (or the whole plain path for "").
  using Resolver = std::function<Result<Location>(std::string_view rest, const StorageConfig& config)>;

  /// Adds a scheme ("" is plain paths). Fails with AlreadyExists for a repeated scheme.
  Status Register(std::string scheme, Resolver resolver);
  /// Resolves `uri`. Unknown schemes fail with InvalidArgument listing the known ones.
  Result<Location> Resolve(std::string_view uri, const StorageConfig& config) const;
  std::vector<std::string> Schemes() const;

 private:
  std::map<std::string, Resolver, std::less<>> resolvers_;
};

/// Registers "", file, fd, s3, http and https.
Status RegisterBuiltinFileSystems(FileSystemRegistry& registry);

/// Resolves `uri` with the built-in schemes (S3 clients are shared between calls with the
/// same S3 settings).
Result<Location> ResolveUri(std::string_view uri, const StorageConfig& config);

/// Returns the S3 file system for `config` (one per distinct config, made once).
Result<std::shared_ptr<arrow::fs::FileSystem>> S3FileSystemFor(const S3Config& config);

/// Finalises the AWS SDK if S3 was used; call once at the end of a program's main.
void FinalizeStorage();

}  // namespace terrafuse::storage

// Read-only http:// and https:// files for Arrow: a FileSystem whose paths are whole URLs
// and whose files read byte ranges with `Range: bytes=` GET requests (Parquet readers fetch
// only the footer and the column chunks they need). Built on Beast's HTTP parser over a
// plain socket, and over GnuTLS for https:// (never OpenSSL: pyarrow bundles its own and the
// two clash in one process). Certificates are checked against the system trust store plus
// an optional PEM bundle (TERRAFUSE_CA_BUNDLE, else SSL_CERT_FILE).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <arrow/filesystem/filesystem.h>

#include "terrafuse/common/status.h"

namespace terrafuse::storage {

struct HttpOptions {
  double connect_timeout_seconds = 10;
  /// Limit of one socket read or write (a stalled server), not of a whole transfer.
  double io_timeout_seconds = 30;
  int max_redirects = 5;
  /// A PEM file of extra trusted CAs (on top of the system store); empty: none.
  std::string ca_file;

  /// Defaults, with ca_file from TERRAFUSE_CA_BUNDLE (else SSL_CERT_FILE) and the timeouts
  /// from TERRAFUSE_HTTP_TIMEOUT (seconds, both).
  static HttpOptions FromEnvironment();
};

/// A read-only file system over http(s) URLs: GetFileInfo (size from the server),
/// OpenInputFile/OpenInputStream. Listing and every write fail with a clear error.
/// Without options, each opened file takes HttpOptions::FromEnvironment().
std::shared_ptr<arrow::fs::FileSystem> MakeHttpFileSystem(std::optional<HttpOptions> options = std::nullopt);

/// Reads `length` bytes at `offset` of `url` into a string (at most what the file has).
/// For tests and small fetches.
Result<std::string> HttpReadRange(std::string_view url, int64_t offset, int64_t length, const HttpOptions& options);

}  // namespace terrafuse::storage
